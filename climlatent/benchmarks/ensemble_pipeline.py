"""Batch inference over a lazy ensemble: throughput, peak memory and schedulers.

Three measurements, printed as ratios from one run over member files written once
(one netCDF file per member, ``climlatent.batch.open_members``):

1. Throughput (fields/s) of :func:`climlatent.batch.emulate` (an ``LLAAE``) and
   :func:`~climlatent.batch.downscale` (a ``ProxyDownscaler``) computing a lazy
   ensemble read from the files, against the bare torch forward of the same model on
   the same fields, already stacked into tensors; both on one thread. Goal >= 0.85.
2. Peak resident memory of ``emulate_to_zarr`` over 2, 5, 10 and 20 members of the same
   size, each count in a fresh Python process (Linux ``VmHWM``; glibc told to return
   freed memory, as ``dask.distributed`` does for its workers). Goal: flat, < 10 %
   growth from 2 to 20 members.
3. ``emulate_to_zarr`` on a ``dask.distributed.LocalCluster`` of 2 single-threaded
   worker processes against dask's threaded scheduler with 2 threads (cluster
   start-up excluded, and printed).

Run ``python -m climlatent.benchmarks.ensemble_pipeline --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import xarray as xr

from climlatent import batch
from climlatent.batching import to_matrix
from climlatent.datasets import synthetic_biogeochem, synthetic_circulation
from climlatent.estimators import LLAAE, ProxyDownscaler
from climlatent.estimators._torch import INFERENCE_BATCH
from climlatent.io import to_netcdf
from climlatent.persistence import load

MEMBER_COUNTS = (2, 5, 10, 20)


def write_members(
    folder: Path, kind: str, n_members: int, n_years: int, grid: tuple[int, int]
) -> list[Path]:
    """Member files of a synthetic ensemble, one netCDF file per member (seeded by member).

    ``kind`` is ``"circulation"`` (daily ``psl`` on a ``grid`` of lat x lon cells) or
    ``"biogeochem"`` (daily coarse ``tos`` and ``rsds``, ``grid`` being the fine grid).

    Examples
    --------
    >>> [p.name for p in write_members(Path(tempfile.mkdtemp()), "circulation", 2, 1, (4, 6))]
    ['r01.nc', 'r02.nc']
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for member in range(n_members):
        if kind == "circulation":
            ds = synthetic_circulation(1, n_years, *grid, seed=member)[["psl"]]
        else:
            world = synthetic_biogeochem(1, n_years, *grid, freq="D", seed=member)
            ds = world.coarse[["tos", "rsds"]]
        label = f"r{member + 1:02d}"
        paths.append(to_netcdf(ds.assign_coords(member=[label]), folder / f"{label}.nc"))
    return paths


def _fit_models(folder: Path, grid: tuple[int, int], fine_grid: tuple[int, int]) -> dict[str, Path]:
    """An ``LLAAE`` (psl -> pr) and a ``ProxyDownscaler`` (tos, rsds -> chl), saved.

    Both are fitted on one year of one member for a few epochs: the benchmark times
    inference, whose cost does not depend on how well the model is trained.
    """
    circulation = synthetic_circulation(1, 1, *grid, seed=100)
    world = synthetic_biogeochem(1, 1, *fine_grid, freq="D", seed=100)
    models = {
        "emulate": LLAAE(latent_dim=16, epochs=1).fit(circulation, "pr", "psl"),
        "downscale": ProxyDownscaler(epochs=2).fit(
            world.coarse, world.fine, "chl", proxies={"tos": "exponential", "rsds": "quadratic"}
        ),
    }
    for method, est in models.items():
        est.save(folder / f"{method}.clm")
    return {method: folder / f"{method}.clm" for method in models}


def _raw_forward(est: LLAAE | ProxyDownscaler, ds: xr.Dataset) -> tuple[Callable, torch.Tensor]:
    """The model's torch forward and its input tensor for the fields of ``ds``."""
    if isinstance(est, ProxyDownscaler):
        drivers = est._drivers(ds, check_range=False)
        return est.module_, torch.from_numpy(est._driver_matrix(drivers))
    proxy = to_matrix(est.proxy_transform_.forward(est._prepare_proxy(ds)), est.proxy_layout_)
    return est.module_.emulate, torch.from_numpy(est.proxy_features(proxy))


def throughput(model: Path, files: Sequence[Path], method: str, repeats: int = 2) -> dict:
    """Fields per second of the lazy pipeline and of the bare forward, best of ``repeats``.

    Examples
    --------
    >>> folder = Path(tempfile.mkdtemp())
    >>> files = write_members(folder, "circulation", 1, 1, (4, 6))
    >>> LLAAE(latent_dim=2, epochs=1, filters=(4,)).fit(synthetic_circulation(1, 1, 4, 6),
    ...     "pr", "psl").save(folder / "m.clm")
    >>> sorted(throughput(folder / "m.clm", files, "emulate", repeats=1))
    ['fields', 'pipeline', 'raw']
    """
    est = load(model)
    with batch.open_members(files, batch.model_inputs(est)) as lazy:
        forward, tensor = _raw_forward(est, lazy.load())
    pipeline, raw = [], []
    with batch.scheduler("threads", n_workers=1, torch_threads=1), torch.inference_mode():
        for _ in range(repeats):
            started = time.perf_counter()
            with batch.open_members(files, batch.model_inputs(est)) as lazy:
                getattr(batch, method)(est, lazy).compute()
            pipeline.append(time.perf_counter() - started)
            started = time.perf_counter()
            for start in range(0, len(tensor), INFERENCE_BATCH):
                forward(tensor[start : start + INFERENCE_BATCH])
            raw.append(time.perf_counter() - started)
    return {"fields": len(tensor), "pipeline": min(pipeline), "raw": min(raw)}


def _peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (Linux ``VmHWM``).

    Unlike ``ru_maxrss``, it is not carried over from the parent through fork and exec.
    """
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))


def emulate_in_process(model: Path, files: Sequence[Path], store: Path) -> dict[str, float]:
    """``emulate_to_zarr`` on 2 threads in this process; peak RSS before and after.

    Examples
    --------
    >>> folder = Path(tempfile.mkdtemp())
    >>> files = write_members(folder, "circulation", 1, 1, (4, 6))
    >>> LLAAE(latent_dim=2, epochs=1, filters=(4,)).fit(synthetic_circulation(1, 1, 4, 6),
    ...     "pr", "psl").save(folder / "m.clm")
    >>> sorted(emulate_in_process(folder / "m.clm", files, folder / "pr.zarr"))
    ['peak_before_mb', 'peak_mb', 'seconds']
    """
    before = _peak_rss_mb()
    started = time.perf_counter()
    with batch.scheduler("threads", n_workers=2):
        batch.emulate_to_zarr(model, list(files), store)
    seconds = time.perf_counter() - started
    return {"peak_before_mb": before, "peak_mb": _peak_rss_mb(), "seconds": seconds}


def _peak_rss(model: Path, files: Sequence[Path], counts: Sequence[int]) -> dict[int, dict]:
    """:func:`emulate_in_process` over the first ``n`` files, in a fresh process per count."""
    # glibc returns freed memory to the system, as dask.distributed sets for its workers.
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    results = {}
    for n_members in counts:
        with tempfile.TemporaryDirectory() as scratch:
            command = [sys.executable, "-m", __spec__.name, "--worker", str(model)]
            command += ["--store", str(Path(scratch) / "pr.zarr"), *map(str, files[:n_members])]
            done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
        results[n_members] = json.loads(done.stdout.splitlines()[-1])
    return results


def _compare_schedulers(model: Path, files: Sequence[Path], folder: Path) -> dict[str, float]:
    """Seconds of ``emulate_to_zarr`` on 2 threads and on a 2-process LocalCluster."""
    seconds = {}
    for address in ("threads", "local"):
        started = time.perf_counter()
        with batch.scheduler(address, n_workers=2):
            seconds[f"{address}_startup"] = time.perf_counter() - started
            started = time.perf_counter()
            batch.emulate_to_zarr(model, list(files), folder / f"{address}.zarr")
            seconds[address] = time.perf_counter() - started
    return seconds


def main(argv: Sequence[str] | None = None) -> None:
    """Run the three measurements and print their figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=10, help="years of daily data per member")
    parser.add_argument("--grid", type=int, nargs=2, default=(32, 48), help="emulation grid")
    parser.add_argument(
        "--fine-grid", type=int, nargs=2, default=(64, 96), help="downscaling target grid"
    )
    parser.add_argument("--members", type=int, nargs="+", default=list(MEMBER_COUNTS))
    parser.add_argument("--throughput-members", type=int, default=4)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args, files = parser.parse_known_args(argv)
    if args.worker:
        result = emulate_in_process(Path(args.worker), [Path(f) for f in files], Path(args.store))
        print(json.dumps(result))
        return
    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp(prefix="climlatent-ensemble-"))
    try:
        _report(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _report(args: argparse.Namespace, folder: Path) -> None:
    grid, fine_grid = tuple(args.grid), tuple(args.fine_grid)
    models = _fit_models(folder, grid, fine_grid)
    psl = write_members(folder / "psl", "circulation", max(args.members), args.years, grid)
    drivers = write_members(
        folder / "drivers", "biogeochem", args.throughput_members, args.years, fine_grid
    )
    member_mb = psl[0].stat().st_size / 1e6
    print(
        f"{args.years} years of daily fields per member; emulation grid {grid[0]} x {grid[1]}, "
        f"downscaling {fine_grid[0] // 4} x {fine_grid[1] // 4} -> {fine_grid[0]} x {fine_grid[1]}"
    )
    print("1) throughput on one thread, lazy pipeline from files vs bare torch forward:")
    for method, files in (("emulate", psl), ("downscale", drivers)):
        rates = throughput(models[method], files[: args.throughput_members], method)
        pipeline, raw = rates["fields"] / rates["pipeline"], rates["fields"] / rates["raw"]
        print(
            f"   {method:9s} {rates['fields']:6d} fields: pipeline {pipeline:8.0f} fields/s, "
            f"raw forward {raw:8.0f} fields/s, ratio {pipeline / raw:.2f} (goal >= 0.85)"
        )
    print(
        f"2) peak RSS of emulate_to_zarr, {member_mb:.0f} MB of psl per member "
        "(MALLOC_TRIM_THRESHOLD_=65536):"
    )
    results = _peak_rss(models["emulate"], psl, args.members)
    for n_members, result in results.items():
        print(
            f"   {n_members:3d} members: peak {result['peak_mb']:6.0f} MB (after imports "
            f"{result['peak_before_mb']:4.0f} MB), {result['seconds']:5.1f} s"
        )
    low, high = results[min(results)]["peak_mb"], results[max(results)]["peak_mb"]
    print(
        f"   ratio peak RSS {max(results)}/{min(results)} members: {high / low:.3f} (goal: < 1.10)"
    )
    counted = psl[: args.throughput_members]
    seconds = _compare_schedulers(models["emulate"], counted, folder)
    fields = len(counted) * args.years * 365  # noleap calendar
    print(f"3) emulate_to_zarr of {len(counted)} members ({fields} fields):")
    print(
        f"   threaded scheduler, 2 threads: {fields / seconds['threads']:8.0f} fields/s; "
        f"LocalCluster, 2 worker processes: {fields / seconds['local']:8.0f} fields/s "
        f"(+ {seconds['local_startup']:.1f} s start-up)"
    )
    print(f"   ratio LocalCluster / threads: {seconds['threads'] / seconds['local']:.2f}")


if __name__ == "__main__":
    main()
