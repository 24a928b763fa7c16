"""Resuming a zarr store never mixes inputs or writers: member files rewritten since the
store was started are refused by name, a moved data folder still resumes, a second
writer is refused by the store's lock, and the lock of a dead writer is taken over."""

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import xarray as xr
from test_batch import circulation_members, patch_predict, save_eof, write_members
from test_cli_batch import assert_one_line_error, invoke
from test_zarr_store import (
    FINGERPRINT,
    N_REGIONS,
    ensemble,
    start_writer,
    statuses,
    stored_bytes,
    wait_for_regions,
)

import climlatent as cl
from climlatent import batch
from climlatent.store_lock import LOCK, StoreLockedError
from climlatent.zarr_store import (
    MANIFEST,
    MANIFEST_FORMAT,
    StoreMismatchError,
    read_manifest,
    write_zarr,
)

MEMBERS = ["r1i1p1f1", "r2i1p1f1", "r3i1p1f1"]
# One region per member and year: r1's two and r2's first complete after the failure.
INTERRUPTED = ["complete"] * 3 + ["pending"] * 3


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_eof(circulation_members(), tmp_path_factory.mktemp("model") / "eof.clm")


def data_folder(root, model):
    """``root`` holding one file per member in members/ and the model."""
    write_members(circulation_members(), root / "members")
    shutil.copytree(model, root / "eof.clm")
    return root


def emulate(root, **options):
    """Emulate root/members/*.nc into root/pr.zarr, one region per member and year."""
    return batch.emulate_to_zarr(
        root / "eof.clm",
        str(root / "members" / "*.nc"),
        root / "pr.zarr",
        time_chunk=365,
        time_per_region=365,
        **options,
    )


def interrupted_run(root, monkeypatch):
    """A run of :func:`emulate` that fails in its fourth region."""
    patch_predict(monkeypatch, fail_at=4)
    with pytest.raises(OSError, match="simulated read error in block 4"):
        emulate(root)
    monkeypatch.undo()
    assert statuses(root / "pr.zarr") == INTERRUPTED


def manifest(store):
    return read_manifest(store)


def assert_same_store(store, reference):
    """Same stored bytes, and the same output and input checksum for every region."""
    assert stored_bytes(store) == stored_bytes(reference)
    regions = [manifest(path)["regions"] for path in (store, reference)]
    for entry in regions[0] + regions[1]:
        entry.pop("completed_at")
    assert regions[0] == regions[1]
    assert not (store / LOCK).exists()


def change_member(path, time_index):
    """Rewrite a member file with one value of psl changed: same shape, same metadata."""
    with xr.open_dataset(path) as ds:
        changed = ds.load()
    changed["psl"][{"member": 0, "time": time_index, "lat": 0, "lon": 0}] += 50.0
    cl.io.to_netcdf(changed, path)


@pytest.fixture(scope="module")
def reference(model, tmp_path_factory):
    """An uninterrupted run over unchanged member files."""
    root = data_folder(tmp_path_factory.mktemp("reference"), model)
    return emulate(root)


def test_unchanged_resume_computes_only_pending_regions(model, reference, tmp_path, monkeypatch):
    root = data_folder(tmp_path, model)
    interrupted_run(root, monkeypatch)
    calls = patch_predict(monkeypatch)
    emulate(root)
    assert len(calls) == 3
    assert_same_store(root / "pr.zarr", reference)
    assert all(entry["input_checksum"] for entry in manifest(reference)["regions"])
    assert "inputs" not in manifest(reference)["fingerprint"]


@pytest.mark.parametrize(
    ("member", "time_index", "refused"),
    [
        ("r1i1p1f1", 0, True),  # both of its regions complete
        ("r1i1p1f1", 700, True),  # in its second year: a complete region
        ("r2i1p1f1", 0, True),  # its first year is complete
        ("r2i1p1f1", 400, False),  # its second year: no completed region read it
        ("r3i1p1f1", 0, False),  # none of its regions complete
    ],
)
def test_member_file_changed_since_start(model, tmp_path, monkeypatch, member, time_index, refused):
    root = data_folder(tmp_path / "run", model)
    interrupted_run(root, monkeypatch)
    path = root / "members" / f"{member}.nc"
    change_member(path, time_index)
    changed = data_folder(tmp_path / "fresh", model)
    change_member(changed / "members" / f"{member}.nc", time_index)
    fresh = emulate(changed)  # the changed data, computed from scratch
    if not refused:
        emulate(root)
        assert_same_store(root / "pr.zarr", fresh)
        return
    before = manifest(root / "pr.zarr")
    with pytest.raises(StoreMismatchError) as info:
        emulate(root)
    message = str(info.value)
    assert f"member {member} ({path}): content changed since the store was started" in message
    assert "--overwrite" in message and "overwrite=True" in message
    assert [label for label in MEMBERS if label in message] == [member]
    assert manifest(root / "pr.zarr") == before and not (root / "pr.zarr" / LOCK).exists()

    emulate(root, overwrite=True)
    assert_same_store(root / "pr.zarr", fresh)


def test_command_line_names_the_changed_file_on_one_line(model, tmp_path, monkeypatch):
    root = data_folder(tmp_path, model)
    interrupted_run(root, monkeypatch)
    change_member(root / "members" / "r1i1p1f1.nc", 0)
    args = ["emulate", root / "eof.clm", root / "members" / "*.nc", "-o", root / "pr.zarr"]
    result = invoke(*args, "--time-chunk", 365, "--time-per-region", 365, "-q")
    assert_one_line_error(
        result,
        f"member r1i1p1f1 ({root / 'members' / 'r1i1p1f1.nc'}): content changed",
        "--overwrite",
    )
    result = invoke(*args, "--time-chunk", 365, "--time-per-region", 365, "-q", "--overwrite")
    assert result.exit_code == 0, result.output


def test_input_attribute_changed_since_start(model, tmp_path, monkeypatch):
    root = data_folder(tmp_path, model)
    interrupted_run(root, monkeypatch)
    for path in sorted((root / "members").glob("*.nc")):
        with xr.open_dataset(path) as ds:
            changed = ds.load()
        changed["psl"].attrs["long_name"] = "mean sea-level pressure"
        cl.io.to_netcdf(changed, path)
    with pytest.raises(StoreMismatchError, match=r"other inputs \(differing attrs psl\);"):
        emulate(root)


def test_data_folder_moved_with_its_store_resumes(model, reference, tmp_path, monkeypatch):
    before = data_folder(tmp_path / "before", model)
    interrupted_run(before, monkeypatch)
    after = shutil.move(before, tmp_path / "elsewhere" / "after")
    calls = patch_predict(monkeypatch)
    emulate(after)
    assert len(calls) == 3
    assert_same_store(after / "pr.zarr", reference)


@pytest.mark.parametrize(
    ("stored", "given", "named"),
    [
        (
            {"estimator": "LLAAE", "method": "emulate"},
            {"estimator": "EOFRegression", "method": "emulate"},
            "(estimator: LLAAE -> EOFRegression)",
        ),
        (
            {"config": {"latent_dim": 8, "epochs": 5}},
            {"config": {"latent_dim": 16, "epochs": 5}},
            "(config.latent_dim: 8 -> 16)",
        ),
        (
            {"weights_sha256": "a" * 64},
            {"weights_sha256": "b" * 64},
            f"(weights_sha256: {'a' * 16}... -> {'b' * 16}...)",
        ),
        ({"model": "demo"}, {"model": "demo", "seed": 3}, "(seed: (none) -> 3)"),
        ("demo", "other", "(fingerprint: demo -> other)"),
    ],
)
def test_fingerprint_refusal_names_only_what_differs(tmp_path, stored, given, named):
    ds = ensemble().isel(time=slice(0, 20))
    write_zarr(ds, tmp_path / "pr.zarr", fingerprint=stored)
    with pytest.raises(StoreMismatchError, match="another fingerprint") as info:
        write_zarr(ds, tmp_path / "pr.zarr", fingerprint=given)
    assert named in str(info.value) and "{" not in str(info.value)


def test_changed_input_without_sources_is_named_by_region(tmp_path):
    ds = ensemble()
    write_zarr(ds, tmp_path / "pr.zarr", fingerprint=FINGERPRINT, inputs=ds)
    changed = ds.copy(deep=True)
    changed["pr"][{"member": 1, "time": 25}] += 1.0
    with pytest.raises(StoreMismatchError) as info:
        write_zarr(ds, tmp_path / "pr.zarr", fingerprint=FINGERPRINT, inputs=changed)
    assert "member r2i1p1f1, time 2000-01-21 00:00:00 to 2000-02-09 00:00:00: content" in str(
        info.value
    )


def test_store_of_an_older_format_is_refused_then_overwritten(tmp_path):
    store = write_zarr(ensemble(), tmp_path / "pr.zarr", fingerprint=FINGERPRINT)
    expected = stored_bytes(store)
    old = {**manifest(store), "format": "climlatent-zarr-manifest-1"}
    (store / MANIFEST).write_text(json.dumps(old))
    with pytest.raises(StoreMismatchError, match="format climlatent-zarr-manifest-1, not"):
        write_zarr(ensemble(), store, fingerprint=FINGERPRINT)
    write_zarr(ensemble(), store, fingerprint=FINGERPRINT, overwrite=True)
    assert manifest(store)["format"] == MANIFEST_FORMAT == "climlatent-zarr-manifest-3"
    assert stored_bytes(store) == expected
    assert [path.name for path in tmp_path.iterdir()] == ["pr.zarr"]


def test_second_writer_is_refused(tmp_path):
    store = tmp_path / "pr.zarr"
    writer = start_writer(store, tmp_path / "blocks.log")
    try:
        wait_for_regions(writer, store, 1)
        with pytest.raises(StoreLockedError) as info:
            write_zarr(ensemble(), store, fingerprint=FINGERPRINT)
        with pytest.raises(StoreLockedError):
            write_zarr(ensemble(), store, fingerprint=FINGERPRINT, overwrite=True)
        assert writer.wait(timeout=60) == 0
    finally:
        writer.kill()
        writer.wait()
    assert f"being written by process {writer.pid} on {socket.gethostname()}" in str(info.value)
    assert "refusing a second writer" in str(info.value)
    reference = write_zarr(ensemble(), tmp_path / "reference.zarr", fingerprint=FINGERPRINT)
    assert statuses(store) == ["complete"] * N_REGIONS
    assert stored_bytes(store) == stored_bytes(reference) and not (store / LOCK).exists()


def ended_process() -> int:
    """The pid of a process of this host that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize(
    ("holder", "refused"),
    [
        (lambda: {"pid": ended_process(), "host": socket.gethostname()}, None),
        (lambda: {"pid": os.getppid(), "host": socket.gethostname()}, "process {pid} on {host}"),
        (lambda: {"pid": ended_process(), "host": "node17"}, "process {pid} on node17"),
        (lambda: None, "another process"),  # a lock file still being written
    ],
    ids=["dead here", "alive here", "other host", "empty"],
)
def test_stale_lock(tmp_path, holder, refused):
    store = write_zarr(ensemble(), tmp_path / "pr.zarr", fingerprint=FINGERPRINT)
    expected = stored_bytes(store)
    record = holder()
    text = "" if record is None else json.dumps({**record, "id": "0f3a"})
    (store / LOCK).write_text(text)
    if refused is None:
        with pytest.warns(RuntimeWarning, match=f"taking over the lock of process {record['pid']}"):
            write_zarr(ensemble(), store, fingerprint=FINGERPRINT)
        assert not (store / LOCK).exists() and stored_bytes(store) == expected
        return
    with pytest.raises(StoreLockedError) as info:
        write_zarr(ensemble(), store, fingerprint=FINGERPRINT)
    assert refused.format(**(record or {})) in str(info.value)
    assert f"delete {str(store / LOCK)!r}" in str(info.value)
    assert (store / LOCK).read_text() == text
