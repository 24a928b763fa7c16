"""Resumable region-by-region zarr writing: round trip, crash and kill -9 resume,
corruption detection, and the stores and locations it must refuse."""

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

import climlatent as cl
from climlatent.errors import ClimlatentError
from climlatent.store_log import REGIONS_LOG
from climlatent.store_status import INCOMPLETE, NOTE
from climlatent.zarr_store import (
    LOCK,
    MANIFEST,
    StoreMismatchError,
    StoreWriteError,
    read_manifest,
    write_zarr,
)

FINGERPRINT = {"model": "LLAAE", "config_sha256": "0f3a9c", "input": "synthetic r1-r2 2000"}
N_TIME, TIME_CHUNK = 60, 20
N_REGIONS = 2 * (N_TIME // TIME_CHUNK)  # one per member and time chunk, member-major


def ensemble(log: Path | None = None, fail: str | None = None, delay: float = 0.0):
    """Lazy member x time x lat x lon precipitation, float32 with a NaN mask, noleap time.

    With ``log``, computing a precipitation block appends its key (see ``block_key``) to
    that file, sleeps ``delay`` seconds, and raises once for the block keyed ``fail``.
    """
    rng = np.random.default_rng(42)
    values = rng.gamma(2.0, 1e-5, size=(2, N_TIME, 5, 6)).astype("float32")
    values[:, :, 0, :2] = np.nan  # masked cells, as over the ocean for a land-only field
    ds = xr.Dataset(
        {
            "pr": (
                ("member", "time", "lat", "lon"),
                values,
                {"units": "kg m-2 s-1", "standard_name": "precipitation_flux"},
            ),
            "sftlf": (("lat", "lon"), rng.uniform(0, 100, (5, 6)), {"units": "%"}),
        },
        coords={
            "member": ["r1i1p1f1", "r2i1p1f1"],
            "time": xr.date_range("2000-01-01", periods=N_TIME, calendar="noleap", use_cftime=True),
            "lat": ("lat", np.linspace(-40.0, 40.0, 5), {"units": "degrees_north"}),
            "lon": ("lon", np.arange(0.0, 360.0, 60.0), {"units": "degrees_east"}),
        },
        attrs={"title": "test ensemble"},
    ).chunk({"member": 1, "time": TIME_CHUNK})
    if log is not None:
        kwargs = {"log": str(log), "fail": fail, "delay": delay}
        ds["pr"] = ds["pr"].map_blocks(_logged_block, kwargs=kwargs, template=ds["pr"])
    return ds


def block_key(block: xr.DataArray) -> str:
    return f"{block['member'].values[0]} {block['time'].values[0]}"


def region_key(ds: xr.Dataset, index: int) -> str:
    """Key of the block written as region ``index`` (member-major order)."""
    member, chunk = divmod(index, N_TIME // TIME_CHUNK)
    return block_key(ds["pr"].isel(member=[member], time=[chunk * TIME_CHUNK]))


def _logged_block(block: xr.DataArray, log: str, fail: str | None, delay: float):
    key = block_key(block)
    with open(log, "a") as file:
        file.write(key + "\n")
    flag = Path(f"{log}.failed")
    if key == fail and not flag.exists():
        flag.touch()
        raise RuntimeError(f"simulated crash while computing block {key}")
    time.sleep(delay)
    return block


def computed_keys(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def statuses(store: Path) -> list[str]:
    try:
        manifest = read_manifest(store)
    except StoreMismatchError:  # no manifest yet
        return []
    return [entry["status"] for entry in manifest["regions"]]


def stored_bytes(store: Path) -> dict[str, bytes]:
    """Every file but the manifest, its log and the root attributes (they are timestamped)."""
    skip = {MANIFEST, REGIONS_LOG, ".zattrs", ".zmetadata"}
    files = (path for path in sorted(store.rglob("*")) if path.is_file())
    return {
        str(path.relative_to(store)): path.read_bytes()
        for path in files
        if str(path.relative_to(store)) not in skip
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The store of an uninterrupted run."""
    return write_zarr(
        ensemble(), tmp_path_factory.mktemp("reference") / "pr.zarr", fingerprint=FINGERPRINT
    )


def test_round_trip_equals_dataset(reference):
    ds = ensemble()
    for opened in (cl.io.open_dataset(reference), xr.open_zarr(reference)):
        xr.testing.assert_equal(opened, ds)  # values, NaN mask and cftime dates
        assert opened["pr"].dtype == np.float32 and opened["pr"].attrs == ds["pr"].attrs
        assert opened["pr"].encoding["_FillValue"] == np.float32(1e20)
        assert opened["pr"].encoding["chunks"] == (1, TIME_CHUNK, 5, 6)
        assert opened["time"].encoding["calendar"] == "noleap"
        assert opened["lat"].attrs["standard_name"] == "latitude"
        assert opened.attrs["Conventions"] == "CF-1.8" and opened.attrs["title"] == "test ensemble"
        assert "write_zarr" in opened.attrs["history"] and INCOMPLETE not in opened.attrs
    manifest = read_manifest(reference)
    assert manifest["fingerprint"] == FINGERPRINT
    assert manifest["regions_dims"] == ["member", "time"] and manifest["region_variables"] == ["pr"]
    assert manifest["regions"][1]["region"] == {"member": [0, 1], "time": [20, 40]}
    assert statuses(reference) == ["complete"] * N_REGIONS
    assert all(entry["checksum"].startswith("sha256:") for entry in manifest["regions"])


def test_store_exports_to_netcdf_with_cf_attributes(reference, tmp_path):
    plain = tmp_path / "plain.nc"
    xr.open_zarr(reference).to_netcdf(plain)
    path = cl.io.to_netcdf(cl.io.open_dataset(reference), tmp_path / "pr.nc", call="export")
    with netCDF4.Dataset(path) as nc:
        assert nc.Conventions == "CF-1.8" and "export" in nc.history
        assert nc["pr"]._FillValue == np.float32(1e20) and nc["pr"].units == "kg m-2 s-1"
        assert nc["time"].calendar == "noleap" and nc["lat"].axis == "Y"
    for exported in (path, plain):
        xr.testing.assert_equal(cl.io.open_dataset(exported, chunks=None), ensemble())


def test_in_memory_dataset_split_by_chunks(reference, tmp_path):
    store = write_zarr(
        ensemble().compute(),
        tmp_path / "pr.zarr",
        regions_dims=("member", "time", "realization"),  # absent dims are ignored
        chunks={"member": 1, "time": TIME_CHUNK},
        fingerprint=FINGERPRINT,
    )
    assert read_manifest(store)["regions_dims"] == ["member", "time"]
    assert stored_bytes(store) == stored_bytes(reference)


def test_variables_chunked_unevenly_are_written_in_their_largest_chunk(tmp_path):
    """Variables chunked 5 and 7 along time unify to 5, 2, 3, 4, 1, ... chunks, which
    zarr cannot store: the write failed with xarray's list of 200 chunk sizes."""
    ds = ensemble().compute()
    ds["tas"] = (ds["pr"] * 0 + 280.0).assign_attrs(units="K")
    mixed = ds.assign(pr=ds["pr"].chunk({"time": 5}), tas=ds["tas"].chunk({"time": 7}))
    store = write_zarr(mixed, tmp_path / "mixed.zarr", fingerprint=FINGERPRINT)
    opened = xr.open_zarr(store)
    assert opened["pr"].encoding["chunks"][1] == opened["tas"].encoding["chunks"][1] == 5
    xr.testing.assert_equal(cl.io.open_dataset(store).compute(), ds)


def test_resume_after_crash_recomputes_only_missing_regions(reference, tmp_path, capsys):
    store, log = tmp_path / "pr.zarr", tmp_path / "blocks.log"
    crashing = 3
    ds = ensemble(log=log, fail=region_key(ensemble(), crashing))
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_zarr(ds, store, fingerprint=FINGERPRINT)
    assert statuses(store) == ["complete"] * crashing + ["pending"] * (N_REGIONS - crashing)
    # A reader sees that the store is not finished: its pending regions read as NaN.
    assert xr.open_zarr(store).attrs[INCOMPLETE] == NOTE
    with pytest.warns(RuntimeWarning, match="is not finished"):
        half = cl.io.open_dataset(store)
    assert half["pr"].isel(member=1).isnull().all()

    write_zarr(ds, store, fingerprint=FINGERPRINT, progress=True)
    assert INCOMPLETE not in xr.open_zarr(store).attrs
    assert f"{N_REGIONS}/{N_REGIONS}" in capsys.readouterr().err
    keys = [region_key(ds, index) for index in range(N_REGIONS)]
    assert computed_keys(log) == keys[: crashing + 1] + keys[crashing:]  # done ones once
    assert stored_bytes(store) == stored_bytes(reference)


@pytest.mark.parametrize("given", ["path", "empty folder"])
def test_a_new_store_stopped_before_any_region_is_complete_is_removed(tmp_path, given):
    """No output that holds nothing: the rerun starts afresh (or fails the same way)."""
    folder = tmp_path / "out"
    folder.mkdir()
    store = folder / "pr.zarr"
    if given == "empty folder":
        store.mkdir()
    failing = ensemble(log=tmp_path / "blocks.log", fail=region_key(ensemble(), 0))
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_zarr(failing, store, fingerprint=FINGERPRINT)
    assert list(folder.iterdir()) == ([store] if given == "empty folder" else [])
    assert not store.exists() or not any(store.iterdir())
    write_zarr(ensemble(), store, fingerprint=FINGERPRINT)  # a new store, not a resume
    assert statuses(store) == ["complete"] * N_REGIONS


def start_writer(store: Path, log: Path) -> subprocess.Popen:
    """Another process writing ``ensemble()`` to ``store``, 0.4 s per block."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.path[:0] = [{str(Path(cl.__file__).parents[1])!r}, {str(Path(__file__).parent)!r}]
        from test_zarr_store import FINGERPRINT, ensemble
        from climlatent.zarr_store import write_zarr
        ds = ensemble(log={str(log)!r}, delay=0.4)
        write_zarr(ds, {str(store)!r}, fingerprint=FINGERPRINT)
        """
    )
    return subprocess.Popen([sys.executable, "-c", script], cwd=store.parent)


def wait_for_regions(writer: subprocess.Popen, store: Path, count: int) -> None:
    """Wait until ``writer`` has completed ``count`` regions of ``store``."""
    deadline = time.monotonic() + 60
    while statuses(store).count("complete") < count:
        assert writer.poll() is None, "the writer ended before it was interrupted"
        assert time.monotonic() < deadline, "the writer made no progress"
        time.sleep(0.02)


def test_resume_after_kill_9(reference, tmp_path):
    store = tmp_path / "pr.zarr"
    writer = start_writer(store, tmp_path / "blocks.log")
    try:
        wait_for_regions(writer, store, 2)
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    assert 2 <= statuses(store).count("complete") < N_REGIONS
    assert (store / LOCK).exists()  # left behind by the killed writer

    with pytest.warns(RuntimeWarning, match=f"taking over the lock of process {writer.pid}"):
        write_zarr(ensemble(), store, fingerprint=FINGERPRINT)
    assert statuses(store) == ["complete"] * N_REGIONS
    assert stored_bytes(store) == stored_bytes(reference)
    assert not (store / LOCK).exists()


@pytest.mark.parametrize("corruption", ["garbled", "swapped", "deleted"])
def test_corrupt_completed_region_is_rewritten(reference, tmp_path, corruption):
    store, log = tmp_path / "pr.zarr", tmp_path / "blocks.log"
    shutil.copytree(reference, store)
    chunk = store / "pr" / "0.1.0.0"  # region 1: member 0, time 20-40
    if corruption == "garbled":
        data = bytearray(chunk.read_bytes())
        data[len(data) // 2 :] = bytes(len(data) - len(data) // 2)
        chunk.write_bytes(bytes(data))
    elif corruption == "swapped":
        shutil.copyfile(store / "pr" / "0.0.0.0", chunk)
    else:
        chunk.unlink()
    ds = ensemble(log=log)
    with pytest.warns(RuntimeWarning, match="no longer match their checksum"):
        write_zarr(ds, store, fingerprint=FINGERPRINT)
    assert computed_keys(log) == [region_key(ds, 1)]
    assert stored_bytes(store) == stored_bytes(reference)


def test_verification_can_be_skipped(reference, tmp_path):
    store, log = tmp_path / "pr.zarr", tmp_path / "blocks.log"
    shutil.copytree(reference, store)
    (store / "pr" / "0.1.0.0").unlink()
    write_zarr(ensemble(log=log), store, fingerprint=FINGERPRINT, verify=False)
    assert computed_keys(log) == [] and not (store / "pr" / "0.1.0.0").exists()


def test_refuses_store_of_another_fingerprint(reference, tmp_path):
    store = tmp_path / "pr.zarr"
    shutil.copytree(reference, store)
    before = {path: path.read_bytes() for path in store.rglob("*") if path.is_file()}
    other = {**FINGERPRINT, "config_sha256": "77e1d2"}
    with pytest.raises(StoreMismatchError, match=re.escape(str(store))) as info:
        write_zarr(ensemble(), store, fingerprint=other)
    assert "another fingerprint (config_sha256: 0f3a9c -> 77e1d2);" in str(info.value)
    assert "LLAAE" not in str(info.value) and isinstance(info.value, ClimlatentError)
    assert {path: path.read_bytes() for path in store.rglob("*") if path.is_file()} == before


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda ds: ds.rename({"pr": "tas"}), "variables pr, tas"),
        (lambda ds: ds.isel(member=[0]), "dims member"),
        (lambda ds: ds.assign_coords(lat=ds["lat"] + 1.0), "coords lat"),
    ],
)
def test_refuses_store_of_other_data(reference, tmp_path, change, named):
    store = tmp_path / "pr.zarr"
    shutil.copytree(reference, store)
    with pytest.raises(StoreMismatchError, match=named):
        write_zarr(change(ensemble()), store, fingerprint=FINGERPRINT)
    assert statuses(store) == statuses(reference)


def _last_region_dropped(manifest):
    manifest["regions"].pop()


def _last_region_cut_short(manifest):
    manifest["regions"][-1]["time"][1] -= 1


def _no_region_variables(manifest):
    manifest["region_variables"] = []


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (_last_region_dropped, f"its {N_REGIONS - 1} regions are not the {N_REGIONS} blocks"),
        (
            _last_region_cut_short,
            f"its regions along time are .*not blocks from 0 to its size {N_TIME}",
        ),
        (_no_region_variables, r"its region variables \[\] are not \['pr'\]"),
    ],
    ids=["dropped", "cut-short", "no-variables"],
)
def test_refuses_a_manifest_whose_regions_do_not_cover_the_data(reference, tmp_path, edit, named):
    # the resume wrote only the listed regions and marked the store complete: the last
    # region's 560 unmasked pr values (member r2, times 40 to 59) read as missing values
    store = tmp_path / "pr.zarr"
    shutil.copytree(reference, store)
    (store / "pr" / f"1.{N_TIME // TIME_CHUNK - 1}.0.0").unlink()  # the last region unwritten
    (store / REGIONS_LOG).write_text(
        "".join((store / REGIONS_LOG).read_text().splitlines(True)[:-1])
    )
    manifest = json.loads((store / MANIFEST).read_text())
    edit(manifest)
    (store / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(StoreMismatchError, match=f"does not cover its data: {named}"):
        write_zarr(ensemble(), store, fingerprint=FINGERPRINT)


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("kind", ["xarray store", "folder", "file"])
def test_refuses_what_it_did_not_write(tmp_path, kind, overwrite):
    target = tmp_path / "pr.zarr"
    if kind == "xarray store":
        ensemble().to_zarr(target, zarr_format=2)
    elif kind == "folder":
        target.mkdir()
        (target / "notes.txt").write_text("field campaign notes")
    else:
        target.write_text("not a store")
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    with pytest.raises(StoreMismatchError, match="not written by write_zarr"):
        write_zarr(ensemble(), target, fingerprint=FINGERPRINT, overwrite=overwrite)
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before


def test_unwritable_location_is_named_and_nothing_marked(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        parent = locked
        if os.access(locked, os.W_OK):  # root ignores permission bits: use a file instead
            parent = tmp_path / "afile"
            parent.write_text("a regular file, not a folder")
        store = parent / "pr.zarr"
        with pytest.raises(StoreWriteError, match=re.escape(str(store))) as info:
            write_zarr(ensemble(), store, fingerprint=FINGERPRINT)
        assert isinstance(info.value, OSError) and not store.exists()
        assert list(tmp_path.rglob(MANIFEST)) == []
    finally:
        locked.chmod(0o700)


def disk_full_at(number: int, region_writes: list):
    """``Dataset.to_zarr`` recording each region written, the ``number``-th failing (ENOSPC)."""
    to_zarr = xr.Dataset.to_zarr

    def disk_fills_up(self, *args, **kwargs):
        if kwargs.get("region") is not None:
            region_writes.append(kwargs["region"])
            if len(region_writes) == number:
                raise OSError(errno.ENOSPC, "No space left on device")
        return to_zarr(self, *args, **kwargs)

    return disk_fills_up


def test_full_disk_marks_only_written_regions(reference, tmp_path, monkeypatch):
    store = tmp_path / "pr.zarr"
    monkeypatch.setattr(xr.Dataset, "to_zarr", disk_full_at(3, []))
    with pytest.raises(StoreWriteError, match="No space left on device") as info:
        write_zarr(ensemble(), store, fingerprint=FINGERPRINT)
    assert str(store) in str(info.value)
    assert statuses(store) == ["complete"] * 2 + ["pending"] * (N_REGIONS - 2)

    monkeypatch.undo()
    write_zarr(ensemble(), store, fingerprint=FINGERPRINT)
    assert stored_bytes(store) == stored_bytes(reference)


def test_on_a_cluster_a_failed_region_write_marks_only_the_regions_before_it(
    reference, tmp_path, monkeypatch
):
    from distributed import Client

    store, region_writes = tmp_path / "pr.zarr", []
    # The workers are threads of this process: they write with the patched method.
    monkeypatch.setattr(xr.Dataset, "to_zarr", disk_full_at(3, region_writes))
    with Client(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"):
        with pytest.raises(StoreWriteError, match="No space left on device") as info:
            write_zarr(ensemble(), store, fingerprint=FINGERPRINT)
    assert str(store) in str(info.value)
    # Two regions are in the cluster at a time, so the third write is of region 2, or
    # of region 1 when region 2 was written first; the regions before it are complete.
    complete = statuses(store).count("complete")
    failed = read_manifest(store)["regions"][complete]["region"]
    assert complete in (1, 2) and region_writes[2] == {d: slice(*b) for d, b in failed.items()}
    assert statuses(store) == ["complete"] * complete + ["pending"] * (N_REGIONS - complete)

    monkeypatch.undo()
    write_zarr(ensemble(), store, fingerprint=FINGERPRINT)
    assert stored_bytes(store) == stored_bytes(reference)


def test_next_region_is_computed_while_one_is_written_and_no_further(tmp_path, monkeypatch):
    store, log = tmp_path / "pr.zarr", tmp_path / "blocks.log"
    ds = ensemble(log=log)
    keys = [region_key(ds, index) for index in range(N_REGIONS)]
    to_zarr, seen = xr.Dataset.to_zarr, []

    def write_once_the_next_is_computed(self, *args, **kwargs):
        if kwargs.get("region") is not None:
            index = len(seen)
            deadline = time.monotonic() + 30
            while index + 1 < N_REGIONS and keys[index + 1] not in computed_keys(log):
                assert time.monotonic() < deadline, f"region {index + 1} was not computed"
                time.sleep(0.01)
            seen.append(computed_keys(log))
        return to_zarr(self, *args, **kwargs)

    monkeypatch.setattr(xr.Dataset, "to_zarr", write_once_the_next_is_computed)
    write_zarr(ds, store, fingerprint=FINGERPRINT)
    assert seen == [keys[: min(index + 2, N_REGIONS)] for index in range(N_REGIONS)]
    assert statuses(store) == ["complete"] * N_REGIONS


def test_manifest_is_written_once_and_each_region_appends_one_line(tmp_path, monkeypatch):
    store = tmp_path / "pr.zarr"
    to_zarr, seen = xr.Dataset.to_zarr, []

    def region_write(self, *args, **kwargs):
        result = to_zarr(self, *args, **kwargs)
        if kwargs.get("region") is not None:  # the state before this region is logged
            lines = (store / REGIONS_LOG).read_text().splitlines() if seen else []
            seen.append(((store / MANIFEST).read_bytes(), len(lines)))
        return result

    monkeypatch.setattr(xr.Dataset, "to_zarr", region_write)
    write_zarr(ensemble(), store, fingerprint=FINGERPRINT)
    assert [count for _, count in seen] == list(range(N_REGIONS))
    assert len({manifest for manifest, _ in seen}) == 1
    assert (store / MANIFEST).read_bytes() == seen[0][0]
    records = [json.loads(line) for line in (store / REGIONS_LOG).read_text().splitlines()]
    assert [record["region"] for record in records] == list(range(N_REGIONS))
    assert json.loads(seen[0][0])["regions"][1] == {"member": [0, 1], "time": [20, 40]}


def test_log_line_cut_short_by_a_crash_is_ignored(reference, tmp_path):
    store, log = tmp_path / "pr.zarr", tmp_path / "blocks.log"
    shutil.copytree(reference, store)
    lines = (store / REGIONS_LOG).read_text().splitlines(keepends=True)
    cut = lines[-1][: len(lines[-1]) // 2]  # the last region's line, half written
    (store / REGIONS_LOG).write_text("".join(lines[:-1]) + cut)
    assert statuses(store) == ["complete"] * (N_REGIONS - 1) + ["pending"]

    ds = ensemble(log=log)
    write_zarr(ds, store, fingerprint=FINGERPRINT)
    assert computed_keys(log) == [region_key(ds, N_REGIONS - 1)]
    assert statuses(store) == ["complete"] * N_REGIONS
    assert stored_bytes(store) == stored_bytes(reference)
    after = (store / REGIONS_LOG).read_text().splitlines()
    assert after[N_REGIONS - 1] == cut and json.loads(after[-1])["region"] == N_REGIONS - 1
