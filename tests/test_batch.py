"""Batch inference: lazy emulation/downscaling over member files, the model shipped once,
schedulers, and the checks on member files."""

import atexit
import glob
import os
import pickle
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dask
import numpy as np
import pytest
import torch
import xarray as xr
from provenance import assert_identical_untimed

import climlatent as cl
from climlatent import batch, batching
from climlatent.errors import InputDataError
from climlatent.estimators._torch import inference

TIME_CHUNK = 365


def circulation_members(n_members: int = 3) -> xr.Dataset:
    """Two years of daily psl/pr for ``n_members`` members on a small grid."""
    return cl.datasets.synthetic_circulation(n_members=n_members, n_years=2, n_lat=6, n_lon=8)


def write_members(ds: xr.Dataset, folder: Path) -> list[Path]:
    """One netCDF file per member, named after it."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        cl.io.to_netcdf(ds.sel(member=[label]), folder / f"{label}.nc")
        for label in ds.member.values
    ]


def save_eof(ds: xr.Dataset, path: Path, n_eofs: int = 3) -> Path:
    est = cl.EOFRegression(n_proxy_eofs=n_eofs, n_target_eofs=n_eofs).fit(ds, "pr", "psl")
    est.save(path)
    return path


@pytest.fixture(scope="module")
def ensemble() -> xr.Dataset:
    return circulation_members()


@pytest.fixture(scope="module")
def member_files(ensemble, tmp_path_factory) -> list[Path]:
    return write_members(ensemble, tmp_path_factory.mktemp("batch") / "members")


@pytest.fixture(scope="module")
def model_path(ensemble, member_files) -> Path:
    return save_eof(ensemble, member_files[0].parent.parent / "eof.clm")


@pytest.fixture(scope="module")
def biogeochem():
    world = cl.datasets.synthetic_biogeochem(n_members=2, n_years=2, n_fine_lat=16, n_fine_lon=16)
    est = cl.ProxyDownscaler(epochs=2).fit(
        world.coarse, world.fine, "chl", proxies={"tos": "exponential", "rsds": "quadratic"}
    )
    return world, est


def patch_predict(monkeypatch, fail_at: int | None = None) -> list[int]:
    """Count the blocks dask computes; the ``fail_at``-th one fails like a bad read."""
    calls, original = [], batching._task

    def task(*blocks, **model):
        calls.append(len(calls) + 1)
        if calls[-1] == fail_at:
            raise OSError(f"simulated read error in block {fail_at}")
        return original(*blocks, **model)

    monkeypatch.setattr(batching, "_task", task)
    return calls


def test_emulate_is_lazy_until_computed_and_equals_eager(
    ensemble, member_files, model_path, monkeypatch
):
    calls = patch_predict(monkeypatch)
    est = cl.load(model_path)
    with batch.open_members(member_files, ["psl"], time_chunk=TIME_CHUNK) as lazy:
        out = batch.emulate(est, lazy)
        assert out["pr"].chunks == ((1, 1, 1), (365, 365), (6,), (8,))
        assert len(calls) == 0
        expected = est.emulate(ensemble)
        xr.testing.assert_allclose(out.compute(), expected, rtol=1e-6)
        assert len(calls) == 6
    lazy_attrs, eager_attrs = dict(out["pr"].attrs), dict(expected["pr"].attrs)
    # negative precipitation set to 0: counted where the values are at hand
    assert lazy_attrs.pop("climlatent_clipped") == (
        "values below the physical bound 0 kg m-2 s-1 set to it, uncounted"
    )
    assert " of 65700 values below the physical bound 0" in eager_attrs.pop("climlatent_clipped")
    assert lazy_attrs == eager_attrs
    assert "EOFRegression(" in out.attrs["history"].splitlines()[-1]


def test_downscale_is_lazy_and_equals_eager(biogeochem, monkeypatch):
    world, est = biogeochem
    calls = patch_predict(monkeypatch)
    out = batch.downscale(est, world.coarse.chunk(member=1, time=12))
    assert out["chl"].chunks == ((1, 1), (12, 12), (16,), (16,)) and len(calls) == 0
    xr.testing.assert_allclose(out.compute(), est.downscale(world.coarse), rtol=1e-5)
    assert len(calls) == 4


def test_seasonal_downscaler_downscales_each_block_with_its_dates(biogeochem, tmp_path):
    world, _ = biogeochem
    est = cl.ProxyDownscaler(group="time.month", epochs=2, progress=False).fit(
        world.coarse, world.fine, "chl", proxies={"tos": "exponential"}
    )
    expected = est.downscale(world.coarse)
    # the truth: the module on every row with the group `Grouper.row_index` gives its date
    inputs = est._model_inputs(est._input_fields(world.coarse, check_range=True))
    rows = inference(est.module_, *inputs, device=est.device_)
    grid = expected["chl"].transpose("member", "time", "lat", "lon").values.reshape(len(rows), -1)
    np.testing.assert_allclose(grid[:, est.fine_layout_.mask], rows, rtol=1e-6)
    assert len(np.unique(inputs[1])) == 12
    out = batch.downscale(est, world.coarse.chunk(member=1, time=5))  # blocks across years
    xr.testing.assert_allclose(out.compute(), expected, rtol=1e-5)
    est.save(tmp_path / "seasonal.clm")  # and through the store, region by region
    files = [
        cl.io.to_netcdf(world.coarse.sel(member=[label]), tmp_path / f"{label}.nc")
        for label in world.coarse.member.values
    ]
    store = batch.downscale_to_zarr(
        tmp_path / "seasonal.clm", files, tmp_path / "chl.zarr", time_chunk=5, progress=False
    )
    stored = xr.open_zarr(store)["chl"].load()
    xr.testing.assert_allclose(stored, expected["chl"].transpose(*stored.dims), rtol=1e-5)


def test_emulator_cannot_downscale(ensemble, model_path):
    with pytest.raises(cl.errors.ClimlatentError, match="EOFRegression cannot downscale"):
        batch.downscale(cl.load(model_path), ensemble.chunk(time=365))


def test_model_is_one_graph_node_that_every_task_depends_on(member_files, model_path):
    est = cl.load(model_path)
    with batch.open_members(member_files, ["psl"], time_chunk=TIME_CHUNK) as lazy:
        (optimized,) = dask.optimize(batch.emulate(est, lazy)["pr"].data)
    graph = dict(optimized.__dask_graph__())
    models = [key for key in graph if str(key).startswith("climlatent-model-")]
    assert len(models) == 1
    _, dependents = dask.core.get_deps(graph)
    assert len(dependents[models[0]]) == 6  # every (member, time) block
    model_bytes = len(pickle.dumps(graph[models[0]]))
    assert model_bytes > len(pickle.dumps(est))
    # the model and the coordinates that name a bad value are shared nodes, one each
    shared = [key for key in graph if str(key).startswith("climlatent-")]
    assert len(shared) == 2
    others = [len(pickle.dumps(task)) for key, task in graph.items() if key not in shared]
    assert max(others) < model_bytes / 5  # no task carries its own copy of the model


def test_distributed_workers_hold_the_model_once(ensemble, member_files, model_path):
    est = cl.load(model_path)
    with (
        batch.scheduler("local", n_workers=2, processes=False) as client,
        batch.open_members(member_files, ["psl"], time_chunk=TIME_CHUNK) as lazy,
    ):
        out = batch.emulate(est, lazy)
        first = out.isel(member=[0]).compute()  # two computations, as two zarr regions
        second = out.isel(member=slice(1, None)).compute()
        held = client.run(
            lambda dask_worker: sum("_MappedModel" in str(key) for key in dask_worker.data)
        )
        threads = client.run(torch.get_num_threads)
        tasks = _threads_seen_by_tasks()
    assert list(held.values()) == [1, 1]
    assert set(threads.values()) == {1} and tasks == {1}
    expected = est.emulate(ensemble)["pr"]
    xr.testing.assert_allclose(xr.concat([first, second], "member")["pr"], expected, rtol=1e-6)


def test_local_cluster_workers_keep_the_adaptive_mmap_threshold():
    key = "distributed.nanny.pre-spawn-environ"
    with batch.scheduler("local", n_workers=1) as client:
        trim = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
        threads = client.run(lambda: os.environ.get("OMP_NUM_THREADS"))
    assert list(trim.values()) == [None] and list(threads.values()) == ["1"]
    assert "MALLOC_TRIM_THRESHOLD_" in dask.config.get(key)  # dask's setting, restored


def _threads_seen_by_tasks(n_tasks: int = 8) -> set[int]:
    """The torch thread counts that dask tasks run with, after a torch operation each."""

    def task(_: int) -> int:
        time.sleep(0.01)  # so that every thread of the pool takes some
        torch.ones(64, 64) @ torch.ones(64, 64)
        return torch.get_num_threads()

    return set(dask.compute(*[dask.delayed(task, pure=False)(i) for i in range(n_tasks)]))


def test_threaded_scheduler_fixes_torch_threads_then_restores():
    before = torch.get_num_threads()
    with batch.scheduler("threads", n_workers=2, torch_threads=2) as client:
        assert client is None and torch.get_num_threads() == 2
        assert dask.config.get("scheduler") == "threads"
        assert _threads_seen_by_tasks() == {2}
    # threads that ran torch with 2 threads each keep them: a later run must not reuse them
    with batch.scheduler("threads", n_workers=2, torch_threads=1):
        assert _threads_seen_by_tasks() == {1}
    assert torch.get_num_threads() == before


def _counting_blocks(est, monkeypatch, fail: bool = False) -> list[int]:
    """The torch thread count each block of ``est`` runs on; every block raises if ``fail``."""
    seen, predict = [], est._predict_rows

    def counted(matrices, groups):
        seen.append(torch.get_num_threads())
        if fail:
            raise OSError("simulated failure inside a block")
        return predict(matrices, groups)

    monkeypatch.setattr(est, "_predict_rows", counted)
    return seen


def test_a_lazy_emulation_on_dask_threads_shares_the_cores_among_them(monkeypatch):
    ds = circulation_members(2)
    est = cl.EOFRegression(n_proxy_eofs=3, n_target_eofs=3).fit(ds, "pr", "psl")
    eager, seen = est.emulate(ds), _counting_blocks(est, monkeypatch)
    cores, previous = dask.system.CPU_COUNT, torch.get_num_threads()
    torch.set_num_threads(2 * cores)  # what new threads would take: more than their share
    try:
        with (
            ThreadPoolExecutor(2) as pool,  # fresh threads, as dask's own pool starts them
            dask.config.set(scheduler="threads", pool=pool, num_workers=2),
        ):
            lazy = est.emulate(ds.chunk(time=73)).compute()
            after = _threads_seen_by_tasks()  # the same threads, once the blocks ended
        later = ThreadPoolExecutor(1).submit(torch.get_num_threads).result()
    finally:
        torch.set_num_threads(previous)
    assert set(seen) == {max(1, cores // 2)}
    # the threads, and those started later, keep the process's count (it was the share)
    assert after == {2 * cores} and later == 2 * cores
    xr.testing.assert_allclose(lazy, eager)


def test_a_callers_thread_keeps_its_torch_threads_through_a_lazy_call(monkeypatch):
    ds = circulation_members(1)
    est = cl.EOFRegression(n_proxy_eofs=3, n_target_eofs=3).fit(ds, "pr", "psl")
    seen = _counting_blocks(est, monkeypatch, fail=True)
    cores = dask.system.CPU_COUNT

    def caller() -> tuple[int, int]:  # a user's thread computing on the synchronous scheduler
        torch.set_num_threads(3 * cores)
        with dask.config.set(scheduler="synchronous"), pytest.raises(OSError, match="simulated"):
            est.emulate(ds.chunk(time=73)).compute()
        return torch.get_num_threads(), ThreadPoolExecutor(1).submit(torch.get_num_threads).result()

    previous = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(1) as pool:
            own, later = pool.submit(caller).result()
    finally:
        torch.set_num_threads(previous)
    # the block ran on its share (dask's num_workers: one per core) and raised; before,
    # the share was the caller's count for good, and that of every thread started after
    assert seen == [1] and own == 3 * cores and later == 3 * cores


def test_unreachable_scheduler_fails_fast_with_a_clear_error():
    started = time.perf_counter()
    with pytest.raises(batch.SchedulerError, match="cannot reach the dask scheduler at 'tcp://"):
        with batch.scheduler("tcp://127.0.0.1:1", timeout=2):
            pass
    assert time.perf_counter() - started < 10


def test_emulate_to_zarr_equals_in_memory_emulation(ensemble, member_files, model_path, tmp_path):
    store = batch.emulate_to_zarr(
        model_path,
        str(member_files[0].parent / "*.nc"),
        tmp_path / "pr.zarr",
        time_chunk=100,
        time_per_region=300,
    )
    written = xr.open_zarr(store)
    assert written["pr"].encoding["chunks"] == (1, 300, 6, 8)
    expected = cl.load(model_path).emulate(ensemble)
    xr.testing.assert_allclose(written["pr"].load(), expected["pr"], rtol=1e-6)
    assert list(written.member.values) == list(ensemble.member.values)


def test_repeated_writes_on_the_threaded_scheduler_keep_one_pool(
    member_files, model_path, tmp_path
):
    """Each call computed its regions in a thread of its own, for which dask's threaded
    scheduler started a pool and registered its shutdown with atexit: one more pool
    (and hook) kept for the life of the process per call."""
    with dask.config.set(scheduler="threads"):
        batch.emulate_to_zarr(model_path, member_files, tmp_path / "0.zarr", progress=False)
        hooks, threads = atexit._ncallbacks(), len(threading.enumerate())
        for call in range(1, 4):
            batch.emulate_to_zarr(
                model_path, member_files, tmp_path / f"{call}.zarr", progress=False
            )
        assert (atexit._ncallbacks(), len(threading.enumerate())) == (hooks, threads)


def test_store_of_another_model_is_refused(ensemble, member_files, model_path, tmp_path):
    store = tmp_path / "pr.zarr"
    batch.emulate_to_zarr(model_path, member_files, store)
    other = save_eof(ensemble, tmp_path / "other.clm", n_eofs=2)
    with pytest.raises(cl.zarr_store.StoreMismatchError, match="fingerprint"):
        batch.emulate_to_zarr(other, member_files, store)


def test_members_are_selected_and_named_from_files(ensemble, tmp_path):
    # files without a member dimension: one member each, labelled by the file name
    for label in ("a", "b", "c"):
        cl.io.to_netcdf(ensemble.isel(member=0)[["psl"]], tmp_path / f"psl_{label}.nc")
    with batch.open_members(tmp_path / "psl_*.nc", ["psl"], members=["psl_c", "psl_a"]) as ds:
        assert list(ds.member.values) == ["psl_c", "psl_a"]
    with pytest.raises(InputDataError, match=r"member\(s\) \['r9'\] not found"):
        batch.open_members(str(tmp_path / "psl_*.nc"), ["psl"], members=["r9"])
    with pytest.raises(InputDataError, match=r"members selects none; the inputs hold \['psl_a'"):
        batch.open_members(tmp_path / "psl_*.nc", ["psl"], members=[])  # was 0 members


def test_members_of_a_glob_and_the_store_regions_are_in_natural_order(model_path, tmp_path):
    """r1, r2, ..., r10, r11: not r1, r10, r11, r2 (the files' text order)."""
    ensemble = circulation_members(n_members=11).isel(time=slice(0, 100))
    natural = [f"r{i}i1p1f1" for i in range(1, 12)]
    assert list(ensemble.member.values) == natural
    write_members(ensemble, tmp_path / "members")
    pattern = str(tmp_path / "members" / "r*.nc")
    with batch.open_members(pattern, ["psl"]) as ds:
        assert list(ds.member.values) == natural
    with cl.io.open_dataset(pattern) as ds:
        assert list(ds.member.values) == natural
        xr.testing.assert_equal(ds["psl"].load(), ensemble["psl"])
    store = batch.emulate_to_zarr(model_path, pattern, tmp_path / "pr.zarr", time_chunk=100)
    assert list(xr.open_zarr(store).member.values) == natural
    manifest = cl.zarr_store.read_manifest(store)
    first = [entry["region"]["member"][0] for entry in manifest["regions"]]
    assert first == sorted(first)  # regions written member by member, r1 first


def test_members_of_one_natural_value_keep_one_order_whatever_the_listing(tmp_path, monkeypatch):
    """r01.nc and r1.nc share the value 1: their members (named after the files) came in
    the directory listing's order (tmpfs lists the newest file first), so two copies of
    one folder gave two member orders, and a fit on them other weights."""
    ensemble = circulation_members(n_members=2).isel(time=slice(0, 10))
    for i, label in enumerate(["r1", "r01"]):
        cl.io.to_netcdf(ensemble.isel(member=i, drop=True), tmp_path / f"{label}.nc")
    pattern = str(tmp_path / "r*.nc")
    listed = glob.glob(pattern)
    orders = []
    for listing in (listed, listed[::-1]):  # the two orders a file system may list
        monkeypatch.setattr(glob, "glob", lambda _, listing=listing: list(listing))
        with batch.open_members(pattern, ["psl"]) as ds:
            orders.append(list(ds.member.values))
            np.testing.assert_array_equal(ds["psl"].values, ensemble["psl"].values[::-1])
    assert orders == [["r01", "r1"]] * 2


def test_member_on_another_grid_is_refused_naming_the_file(member_files, tmp_path):
    with xr.open_dataset(member_files[1]) as ds:
        shifted = ds.load()
    moved = cl.io.to_netcdf(shifted.assign_coords(lon=shifted.lon + 2.5), tmp_path / "moved.nc")
    with pytest.raises(InputDataError, match=rf"member file '{moved}' is on a different grid"):
        batch.open_members([member_files[0], moved], ["psl"])


def test_each_member_grid_is_found_once(member_files, monkeypatch):
    """Grid discovery (cf-xarray over every coordinate) once per member file, not per check."""
    found = []
    find_grid = cl.grid.find_grid
    for module in ("climlatent.grid", "climlatent.batch.members"):
        monkeypatch.setattr(f"{module}.find_grid", lambda *a: found.append(1) or find_grid(*a))
    with batch.open_members(member_files, ["psl"]) as ds:
        assert ds.sizes["member"] == len(member_files) > 1
    assert len(found) == len(member_files)


def test_catalog_entry_keeps_its_member_labels():
    source = f"{cl.catalog.default_catalog_path()}#synthetic_circulation"
    with batch.open_members(source, ["psl", "pr"], time_chunk=TIME_CHUNK) as ds:
        assert list(ds.member.values) == ["r1i1p1f1", "r2i1p1f1"]
        assert ds["pr"].chunks[:2] == ((1, 1), (365,) * 20)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("missing", "does not exist"),
        ("glob", "no file matches"),
        ("variable", "has no variable 'psl'"),
        ("duplicate", "is in both"),
        ("time", "different time axis"),
        ("units", "'psl' of member file .* is in 'hPa', but in 'Pa'"),
        ("order", "different grid than .*: the same cells in another order"),
    ],
)
def test_bad_member_inputs_are_named(member_files, tmp_path, change, message):
    first = member_files[0]
    if change == "missing":
        bad = tmp_path / "r9i1p1f1.nc"
    elif change == "glob":
        bad = tmp_path / "nothing*.nc"
    elif change == "duplicate":
        bad = first
    else:
        with xr.open_dataset(first) as ds:
            ds = ds.load().rename(member="realization")
        if change == "units":  # the same pressures in hPa: read as Pa, 100 times too small
            ds["psl"] = (ds["psl"] / 100).assign_attrs(ds["psl"].attrs, units="hPa")
        elif change == "order":  # told to regrid it
            ds = ds.sortby("lat", ascending=False)
        else:
            ds = ds.drop_vars("psl") if change == "variable" else ds.isel(time=slice(1, None))
        bad = cl.io.to_netcdf(ds.assign_coords(realization=["r8"]), tmp_path / "bad.nc")
    with pytest.raises((InputDataError, FileNotFoundError), match=message) as info:
        batch.open_members([first, bad], ["psl"])
    if change != "duplicate":
        assert str(bad) in str(info.value)


@pytest.mark.parametrize(
    "layout",
    [
        lambda ds: ds.sortby("lat", ascending=False),
        lambda ds: ds.assign_coords(lon=ds.lon % 360).sortby("lon"),
        lambda ds: ds.assign_coords(lon=ds.lon % 360).sortby(["lat", "lon"], ascending=False),
    ],
    ids=["latitude reversed", "longitudes from 0", "both"],
)
def test_member_in_another_layout_is_told_the_expression_that_reorders_it(
    ensemble, member_files, model_path, tmp_path, layout
):
    """The advice, followed literally, gives the member the emulation of the first's layout.

    It said "reorder it like the first (sortby)": for longitudes in another convention a
    sortby keeps the other labels, and the member was refused again.
    """
    with xr.open_dataset(member_files[1]) as ds:
        moved = cl.io.to_netcdf(layout(ds.load().drop_vars("lon_bnds")), tmp_path / "moved.nc")
    with pytest.raises(InputDataError, match="the same cells in another order") as info:
        batch.open_members([member_files[0], moved], ["psl"])
    expression = re.search(r"reorder it like the first: ds = (ds.*)$", str(info.value)).group(1)
    with xr.open_dataset(moved) as ds:
        fixed = cl.io.to_netcdf(eval(expression, {"ds": ds.load()}), tmp_path / "fixed.nc")
    store = batch.emulate_to_zarr(model_path, [member_files[0], fixed], tmp_path / "pr.zarr")
    expected = cl.load(model_path).emulate(ensemble.isel(member=[0, 1]))["pr"]
    np.testing.assert_allclose(xr.open_zarr(store)["pr"].values, expected.values, rtol=1e-6)


@pytest.mark.parametrize(("workers", "region", "calls_per_member"), [(1, 100, 8), (2, 160, 10)])
def test_default_region_is_split_among_the_workers_in_calls_of_at_most_a_block(
    member_files, model_path, tmp_path, monkeypatch, workers, region, calls_per_member
):
    est = cl.load(model_path)
    assert batch.block_steps(est) == 4096  # 6 x 8 cells: 192 bytes a step
    monkeypatch.setattr(batch.lazy, "BLOCK_BYTES", 6 * 8 * 4 * 100)  # 100 steps of float32
    monkeypatch.setattr(batch.store, "REGION_BYTES", 6 * 8 * 4 * 160)  # 160 steps
    assert batch.block_steps(est) == 100
    calls = patch_predict(monkeypatch)
    pattern = str(member_files[0].parent / "*.nc")
    with batch.scheduler("threads", n_workers=workers):
        store = batch.emulate_to_zarr(model_path, pattern, tmp_path / "pr.zarr", progress=False)
        # 730 days of each member: one worker, calls of a block (100 steps: 7 and one of
        # 30), one a region; two workers, a region of 160 split in calls of 80 (9 and one
        # of 10), two a region
        assert xr.open_zarr(store)["pr"].encoding["chunks"] == (1, region, 6, 8)
        assert len(calls) == 3 * calls_per_member
        small = batch.emulate_to_zarr(
            model_path, pattern, tmp_path / "small.zarr", time_chunk=30, progress=False
        )
    assert xr.open_zarr(small)["pr"].encoding["chunks"] == (1, 150, 6, 8)  # 5 calls a region


def test_member_files_open_at_once_are_a_window(ensemble, model_path, tmp_path, monkeypatch):
    from xarray.backends.file_manager import FILE_CACHE

    many = circulation_members(n_members=12).isel(time=slice(0, 50))
    write_members(many, tmp_path / "members")
    monkeypatch.setattr(batch.store, "OPEN_FILES", 3)
    open_counts, original = [], batching._task

    def task(*blocks, **model):
        open_counts.append(len(FILE_CACHE))
        return original(*blocks, **model)

    monkeypatch.setattr(batching, "_task", task)
    pattern = str(tmp_path / "members" / "*.nc")
    store = batch.emulate_to_zarr(model_path, pattern, tmp_path / "pr.zarr", progress=False)
    assert len(open_counts) == 12 and max(open_counts) <= 3
    expected = cl.load(model_path).emulate(many)["pr"]
    xr.testing.assert_allclose(xr.open_zarr(store)["pr"].load(), expected, rtol=1e-6)
    assert FILE_CACHE.maxsize == 128  # xarray's default again


def test_each_sample_reaches_the_model_once_in_its_block(ensemble, member_files, model_path):
    """Every (member, time) sample goes through the model once, in blocks of the chunks."""
    est = cl.load(model_path)
    seen, predict_rows = [], est._predict_rows

    def recording(matrices, groups):
        seen.append(matrices[0].copy())
        return predict_rows(matrices, groups)

    est._predict_rows = recording  # the shipped model is this object on the sync scheduler
    with batch.open_members(member_files, ["psl"], time_chunk=300) as lazy:
        batch.emulate(est, lazy).compute(scheduler="sync")
    assert sorted(len(rows) for rows in seen) == [130] * 3 + [300] * 6  # 730 days x 3 members
    proxy = est.proxy_transform_.forward(est._prepare_proxy(ensemble))  # eager, whole
    expected = batching.to_matrix(proxy, est.proxy_layout_)
    np.testing.assert_array_equal(
        np.sort(np.concatenate(seen).sum(axis=1)), np.sort(expected.sum(axis=1))
    )


def test_a_bad_value_in_a_later_block_is_named_where_the_eager_call_names_it(ensemble, model_path):
    """The range check of a lazy proxy runs per block; the message places the value in
    the whole field (its block's offset added), as the eager check does."""
    est = cl.load(model_path)
    psl = ensemble["psl"].copy()
    psl[dict(member=2, time=400, lat=3, lon=5)] = 1e20  # a fill value, block (2, 1)
    bad = ensemble.assign(psl=psl)
    with pytest.raises(InputDataError) as eager:
        est.emulate(bad)
    assert "member=r3i1p1f1" in str(eager.value) and "time=1982-02-05" in str(eager.value)
    lazy = est.emulate(bad.chunk(member=1, time=365))
    with pytest.raises(InputDataError) as blocks:
        lazy.compute(scheduler="sync")
    # the same value and place; the count is of one block ("at least 1", "one in a block")
    where = str(eager.value).split(" is ", 1)[1]
    assert "has at least 1 value(s)" in str(blocks.value) and where in str(blocks.value)


def test_lazy_fields_in_another_grid_layout_give_the_eager_numbers(ensemble, model_path):
    est = cl.load(model_path)
    flipped = ensemble.isel(lat=slice(None, None, -1)).transpose(
        "time", "lon", "lat", "member", ...
    )
    eager = est.emulate(flipped)
    lazy = est.emulate(flipped.chunk(time=300, member=2))
    assert lazy["pr"].chunks is not None
    assert_identical_untimed(lazy.compute(), eager)


def test_a_refused_value_in_a_store_run_names_its_member_file_and_time(
    member_files, model_path, tmp_path
):
    """A NaN in one member's proxy was refused without saying where in the ensemble."""
    with xr.open_dataset(member_files[1]) as ds:
        bad = ds.load()
    bad["psl"][0, 40, 2, 3] = np.nan
    path = cl.io.to_netcdf(bad, tmp_path / "bad.nc")
    with pytest.raises(InputDataError) as info:
        batch.emulate_to_zarr(
            model_path, [member_files[0], path], tmp_path / "o.zarr", time_per_region=100,
            progress=False,
        )  # fmt: skip
    label = str(bad.member.values[0])
    assert f"in member {label} ({path}), time " in str(info.value)
    assert "variable 'psl' has 1 non-finite value(s)" in str(info.value)
    time = bad.time.values
    assert f"time {time[0]} to {time[99]}:" in str(info.value)


def test_an_ensemble_keeps_only_the_global_attributes_its_member_files_share(tmp_path):
    """The first file's variant_label and tracking_id stood for every member."""
    ds = circulation_members(n_members=2)
    paths = write_members(ds, tmp_path)
    for index, path in enumerate(paths, 1):
        with xr.open_dataset(path) as opened:
            member = opened.load()
        member.attrs.update(variant_label=f"r{index}i1p1f1", institution="climlatent tests")
        cl.io.to_netcdf(member, tmp_path / f"cmip{index}.nc")
    files = [tmp_path / "cmip1.nc", tmp_path / "cmip2.nc"]
    with batch.open_members(files, ["psl"]) as ensemble:
        assert "variant_label" not in ensemble.attrs
        assert ensemble.attrs["institution"] == "climlatent tests"


def test_member_files_with_a_scalar_realization_are_labelled_by_it(tmp_path):
    """CMIP files, one member each with a scalar realization: the ensemble kept the first
    file's realization=1 for every member (labelled by file name); the distinct values
    are now the labels, repeated ones each member's own coordinate."""
    ds = circulation_members(n_members=3).isel(time=slice(0, 50))
    for number, label in zip((3, 1, 2), ds.member.values, strict=True):
        member = ds.sel(member=label).drop_vars("member")[["psl"]]
        member = member.assign_coords(realization=np.int32(number))
        cl.io.to_netcdf(member, tmp_path / f"psl_{label}.nc")
    with batch.open_members(tmp_path / "psl_*.nc", ["psl"]) as ens:
        assert ens.member.values.tolist() == [3, 1, 2] and "realization" not in ens.coords
        np.testing.assert_array_equal(ens["psl"].values, ds["psl"].values)
    with batch.open_members(tmp_path / "psl_*.nc", ["psl"], members=[2, 3]) as ens:
        np.testing.assert_array_equal(ens["psl"].values, ds["psl"].values[[2, 0]])
    member = ds.isel(member=1).drop_vars("member")[["psl"]].assign_coords(realization=3)
    cl.io.to_netcdf(member, tmp_path / "psl_r9.nc")  # realization 3 twice
    with batch.open_members(tmp_path / "psl_*.nc", ["psl"]) as ens:
        assert ens.member.values.tolist() == [f"psl_r{i}i1p1f1" for i in (1, 2, 3)] + ["psl_r9"]
        assert ens.realization.dims == ("member",)
        assert ens.realization.values.tolist() == [3, 1, 2, 3]
