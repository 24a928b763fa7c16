"""Batch inference over a lazy ensemble: throughput and schedulers.

Two measurements, printed as ratios from one run over member files written once
(one netCDF file per member, ``climlatent.batch.open_members``):

1. Throughput (fields/s) of :func:`climlatent.batch.emulate` (an ``LLAAE``) and
   :func:`~climlatent.batch.downscale` (a ``ProxyDownscaler``) computing a lazy
   ensemble read from the files, in blocks of :func:`climlatent.batch.block_steps`
   time steps (the model batch: the command line's regions, which it splits among its
   workers), against the bare torch forward of the same model on the same fields,
   already stacked into tensors, in the batch size that runs fastest (scanned over
   powers of two from 8 to ``INFERENCE_BATCH``, and printed beside the one the
   pipeline's probe chose), on a thread of the pipeline's own pool, alternately,
   ``--repeats`` times: the median of the runs' ratios is printed, and the ratio of
   the fastest runs, which interference from other processes (slowing runs, never
   speeding them) does not bias. Goal >= 0.90. Measured twice: on one core (the
   pipeline on one dask thread, the forward on one torch thread: the pipeline's
   overhead per core), and on ``--cores`` (default: all of them; the pipeline as the
   command line runs it, one dask thread per core of one torch thread each, against
   the faster of the forward on as many torch threads and the forward cut in as many
   parts run side by side: what a user of the machine gets). The time the pipeline
   takes beyond the forward is printed beside the time its reading of the files alone
   takes, a floor the forward does not pay, and the time it takes before any block
   runs (opening, checks, graph), a fixed cost of each run. The untimed first run
   checks every block of the pipeline's output against the eager method's (a
   pipeline that skipped or misplaced blocks would not pass).
2. The store writers on dask's threaded scheduler with 2 threads (``emulate_to_zarr``
   and ``downscale_to_zarr``: the model, the writing of each region, reading it back
   and hashing it, the next region computed while one is written), and
   ``emulate_to_zarr`` on a ``dask.distributed.LocalCluster`` of 2 single-threaded
   worker processes (cluster start-up excluded, and printed).

``--device cuda`` runs both on the GPU, the model's float32 or, with ``--amp``, its
float16 autocast (``est.emulate(ds, amp=True)``): the bare forward then copies each
batch from pinned host memory to the device and its output back, and waits for the
device once at the end (what :func:`climlatent.estimators._torch.inference` does), in
the batch size that runs fastest among powers of two up to 65536 rows; it runs on one
thread (the pipeline's threads share the GPU).

``--memory`` sets the allocator's policy of the process first: glibc's own by default
(a notebook's), or that of the command line's ``--memory flat`` or ``reuse``
(:mod:`climlatent.memory`). Under glibc's own, a run's blocks are fresh pages or not
as glibc's thresholds happen to stand, and the pipeline's system time varies from run
to run (0.01-0.5 s on 2 cores, printed).

Peak memory against the number of members and the length of the record is measured
by :mod:`climlatent.benchmarks.batch_memory`.

Run ``python -m climlatent.benchmarks.ensemble_pipeline --help`` for the options.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import dask
import dask.array
import numpy as np
import torch
import xarray as xr

from climlatent import batch, memory
from climlatent.batching import to_matrix
from climlatent.datasets import synthetic_biogeochem, synthetic_circulation
from climlatent.estimators import LLAAE, ProxyDownscaler
from climlatent.estimators._torch import (
    INFERENCE_BATCH,
    PROBE_ROWS,
    LargestTensor,
    cpu_batch_size,
)
from climlatent.io import to_netcdf
from climlatent.persistence import load
from climlatent.precision import mixed_precision

GOAL = 0.90
#: Largest batch the bare forward's scan tries on CUDA (and rows it times each on).
CUDA_LARGEST_BATCH = 2**16
#: What `throughput` times, run by run.
RUNS = (
    "pipeline",
    "pipeline_system",
    "pipeline_faults",
    "raw_threads",
    "raw_split",
    "raw_kept",
    "read",
    "setup",
)


def write_members(
    folder: Path, kind: str, n_members: int, n_years: int, grid: tuple[int, int]
) -> list[Path]:
    """Member files of an ensemble, one daily netCDF file per member.

    ``kind`` is ``"circulation"`` (``psl`` on a ``grid`` of lat x lon cells) or
    ``"biogeochem"`` (coarse ``tos`` and ``rsds``, ``grid`` being the fine grid). Each
    member is one synthetic member plus noise seeded by the member (1 % of each
    variable's spread): the benchmarks time inference and measure its memory, which
    do not depend on what a member holds, and hundreds of members are written in
    seconds.

    Examples
    --------
    >>> files = write_members(Path(tempfile.mkdtemp()), "biogeochem", 2, 1, (16, 16))
    >>> [path.name for path in files], xr.open_dataset(files[1])["tos"].shape
    (['r01.nc', 'r02.nc'], (1, 365, 4, 4))
    """
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "circulation":
        base = synthetic_circulation(1, n_years, *grid, seed=0)[["psl"]]
    else:
        base = synthetic_biogeochem(1, n_years, *grid, freq="D", seed=0).coarse[["tos", "rsds"]]
    paths = []
    for member in range(n_members):
        rng = np.random.default_rng(member)
        label = f"r{member + 1:02d}"
        ds = base.assign_coords(member=[label])
        for name, da in base.data_vars.items():
            noise = rng.normal(0.0, 0.01 * float(da.std()), da.shape).astype(da.dtype)
            ds[name] = ds[name] + noise
            ds[name].attrs = da.attrs
        paths.append(to_netcdf(ds, folder / f"{label}.nc"))
    return paths


def fit_models(folder: Path, grid: tuple[int, int], fine_grid: tuple[int, int]) -> dict[str, Path]:
    """An ``LLAAE`` (psl -> pr) and a ``ProxyDownscaler`` (tos, rsds -> chl), saved.

    Both are fitted on one year of one member for a few epochs: the benchmarks time
    inference and measure its memory, which do not depend on how well the model is
    trained.

    Examples
    --------
    >>> models = fit_models(Path(tempfile.mkdtemp()), (4, 6), (16, 16))
    >>> sorted(models), models["emulate"].name
    (['downscale', 'emulate'], 'emulate.clm')
    """
    circulation = synthetic_circulation(1, 1, *grid, seed=100)
    world = synthetic_biogeochem(1, 1, *fine_grid, freq="D", seed=100)
    models = {
        "emulate": LLAAE(latent_dim=16, epochs=1, progress=False).fit(circulation, "pr", "psl"),
        "downscale": ProxyDownscaler(epochs=2, progress=False).fit(
            world.coarse, world.fine, "chl", proxies={"tos": "exponential", "rsds": "quadratic"}
        ),
    }
    for method, est in models.items():
        est.save(folder / f"{method}.clm")
    return {method: folder / f"{method}.clm" for method in models}


def _raw_forward(
    est: LLAAE | ProxyDownscaler, ds: xr.Dataset, amp: bool = False
) -> tuple[Callable, torch.Tensor]:
    """The model's torch forward and its input tensor for the fields of ``ds``.

    On CUDA the tensor is pinned in host memory, and the forward takes a batch of it
    to the device, runs the model (in float16 autocast with ``amp``) and copies the
    output back without blocking, as `inference` does.
    """
    if isinstance(est, ProxyDownscaler):
        drivers = est._model_inputs(est._input_fields(ds, check_range=False))[0]
        forward, tensor = est.module_, torch.from_numpy(drivers)
    else:
        proxy = to_matrix(est.proxy_transform_.forward(est._prepare_proxy(ds)), est.proxy_layout_)
        forward, tensor = est.module_.emulate, torch.from_numpy(est.proxy_features(proxy))
    if est.device_.type != "cuda":
        return forward, tensor

    def on_device(rows: torch.Tensor) -> torch.Tensor:
        with mixed_precision(est.device_, amp):
            out = forward(rows.to(est.device_, non_blocking=True))
        return out.float().to("cpu", non_blocking=True)

    return on_device, tensor.pin_memory()


def fastest_batch(
    forward: Callable, tensor: torch.Tensor, largest: int = INFERENCE_BATCH, rows: int = 2048
) -> int:
    """The batch size, a power of two from 8 to ``largest``, of the fastest forward.

    Each size runs over (at most) the first ``rows`` rows, twice, the faster counting,
    without gradients (as `_forward_seconds`, whichever thread it runs on).

    Examples
    --------
    >>> fastest_batch(torch.nn.Linear(3, 2), torch.ones(64, 3)) in (8, 16, 32, 64)
    True
    >>> linear, rows = torch.nn.Linear(3, 2), torch.ones(64, 3)  # the CUDA scan's keywords:
    >>> _on_cores(2, fastest_batch, linear, rows, largest=16) in (8, 16)  # on 2 threads
    True
    """
    head = tensor[:rows]
    seconds = {}
    for size in 2 ** np.arange(3, int(np.log2(largest)) + 1):
        if size // 2 >= len(head):  # one batch holds them all already
            break
        for _ in range(2):
            elapsed = _forward_seconds(forward, head, int(size))
            seconds[int(size)] = min(elapsed, seconds.get(int(size), elapsed))
    return min(seconds, key=seconds.get)


def throughput(
    model: Path,
    files: Sequence[Path],
    method: str,
    repeats: int = 3,
    threads: int = 1,
    device: str = "cpu",
    amp: bool = False,
) -> dict:
    """Seconds of the lazy pipeline and of the bare forward, ``repeats`` runs of each.

    The pipeline reads the files in blocks of :func:`climlatent.batch.block_steps`
    time steps and computes the output blocks, each dropped once computed (as a zarr
    store writes and frees it); the bare forward runs in :func:`fastest_batch` rows and
    its outputs are discarded; ``read`` is the pipeline's reading of its inputs alone
    (opening the files, reading and decoding every block), and ``setup`` the part of
    each pipeline run before any block runs (opening the files, checking the inputs
    from their coordinates, building the graph): fixed costs, which a longer record
    pays once. Both run on ``threads`` cores, the pipeline as the command line runs it
    (dask's threaded scheduler with ``threads`` workers of one torch thread each), the
    forward on a thread of the same pool, set to ``threads`` torch threads while it
    runs (its fastest batch found there), and, on more than one core, cut in
    ``threads`` parts run side by side on the pool's threads of one torch thread each
    (data parallel, as the pipeline's blocks are, in the fastest batch of one torch
    thread; each run's faster of the two counts as ``raw``). ``raw_kept`` (on the CPU) is
    the data-parallel forward keeping its output, a block of the pipeline's rows at a
    time: what the pipeline must write beyond the bare forward. A thread's speed at the
    same batches was measured to differ from another's by up to 1.6 times, either way,
    for the life of the thread (not the core it ran on, nor page faults: the cause was
    not found), so that a forward on the main thread against a pipeline on a pool
    thread compared threads, not the pipeline. They alternate, the forward first in
    every other repeat, so that a drift of the machine's speed weighs on both alike.
    One untimed run of each comes first (the first run of the pipeline in a process
    maps its memory afresh, about 0.6 s of system time on 2 members of a 64 x 96 grid,
    which later runs reuse). The pipeline's system time and page faults are recorded
    too: its blocks are fresh memory or reused as the allocator's thresholds stand
    (:mod:`climlatent.memory`), and fresh pages fault in. On ``device`` ``"cuda"`` (with
    ``amp``: float16 autocast) the forward is `_raw_forward`'s, on one thread, in the
    fastest batch up to ``CUDA_LARGEST_BATCH`` rows.

    Examples
    --------
    >>> folder = Path(tempfile.mkdtemp())
    >>> files = write_members(folder, "circulation", 1, 1, (4, 6))
    >>> LLAAE(latent_dim=2, epochs=1, filters=(4,), progress=False).fit(
    ...     synthetic_circulation(1, 1, 4, 6), "pr", "psl").save(folder / "m.clm")
    >>> rates = throughput(folder / "m.clm", files, "emulate", repeats=1)
    >>> rates["fields"], len(rates["pipeline"]), len(rates["raw_kept"]), len(rates["read"])
    (365, 1, 1, 1)
    >>> 0 < rates["setup"][0] < rates["pipeline"][0]
    True
    >>> both = throughput(folder / "m.clm", files, "emulate", repeats=1, threads=2)
    >>> both["raw"] == [min(both["raw_threads"][0], both["raw_split"][0])]
    True
    """
    est = load(model)
    cuda = batch.place(est, device).type == "cuda"
    steps = batch.block_steps(est)
    with batch.open_members(files, batch.model_inputs(est)) as lazy:
        eager = lazy.load()
        forward, tensor = _raw_forward(est, eager, amp)
        check = _Compare(getattr(batch, method)(est, eager, amp=amp)[est.target_].values, amp)
    runs: dict[str, list] = {key: [] for key in RUNS}
    split_parts = threads > 1 and not cuda
    scan = {"largest": CUDA_LARGEST_BATCH, "rows": 2 * CUDA_LARGEST_BATCH} if cuda else {}
    with batch.scheduler("threads", n_workers=threads, torch_threads=1), torch.inference_mode():
        with LargestTensor() as probe:
            forward(tensor[:PROBE_ROWS])
        pool = dask.config.get("pool")
        size = pool.submit(_on_cores, threads, fastest_batch, forward, tensor, **scan).result()
        part_size = pool.submit(fastest_batch, forward, tensor).result() if split_parts else size
        for repeat in range(repeats + 1):  # the first, untimed, warms both up
            for step in ("pipeline", "raw") if repeat % 2 else ("raw", "pipeline"):
                if step == "raw":
                    raw = pool.submit(_on_cores, threads, _forward_seconds, forward, tensor, size)
                    runs["raw_threads"].append(raw.result())
                    if split_parts:
                        split = _split_forward_seconds(pool, threads, forward, tensor, part_size)
                        runs["raw_split"].append(split)
                    if not cuda:  # on CUDA each batch's output is a new host tensor already
                        kept = _split_forward_seconds(
                            pool, threads, forward, tensor, part_size, kept=steps
                        )
                        runs["raw_kept"].append(kept)
                else:
                    target = check if repeat == 0 else _Discard()
                    for key, value in _pipeline_run(est, files, method, steps, amp, target).items():
                        runs[key].append(value)
                    if repeat == 0:
                        check.verify()
            started = time.perf_counter()
            with batch.open_members(files, batch.model_inputs(est), time_chunk=steps) as lazy:
                arrays = [v.data for v in lazy.data_vars.values()]
                dask.array.store(arrays, [_Discard()] * len(arrays), lock=False)
            runs["read"].append(time.perf_counter() - started)
    for values in runs.values():
        del values[:1]
    split = runs["raw_split"] or runs["raw_threads"]
    runs["raw"] = [min(pair) for pair in zip(runs["raw_threads"], split, strict=True)]
    return {
        "fields": len(tensor),
        **runs,
        "block_steps": steps,
        "fastest_batch": size,
        "fastest_part_batch": part_size,
        "probed_batch": cpu_batch_size(probe.bytes, PROBE_ROWS),
    }


def _pipeline_run(
    est: LLAAE | ProxyDownscaler,
    files: Sequence[Path],
    method: str,
    steps: int,
    amp: bool,
    target: Any = None,
) -> dict[str, float]:
    """One run of the lazy pipeline: its seconds (all, and before any block), kernel use.

    Each block goes to ``target`` (default: dropped, as a store frees it once written).
    """
    started, (system, faults) = time.perf_counter(), _kernel_usage()
    with batch.open_members(files, batch.model_inputs(est), time_chunk=steps) as lazy:
        out = getattr(batch, method)(est, lazy, amp=amp)[est.target_].data
        setup = time.perf_counter() - started  # before any block runs
        dask.array.store(out, target or _Discard(), lock=False)  # block by block, as a store
    seconds = time.perf_counter() - started
    system_after, faults_after = _kernel_usage()
    return {
        "pipeline": seconds,
        "setup": setup,
        "pipeline_system": system_after - system,
        "pipeline_faults": faults_after - faults,
    }


def _forward_seconds(
    forward: Callable, tensor: torch.Tensor, size: int, kept: int | None = None
) -> float:
    """Seconds of ``forward`` over the rows of ``tensor`` in batches of ``size``.

    Each batch's output is dropped, or with ``kept`` copied into one new array per
    ``kept`` rows, dropped when full: what the pipeline does with a block's output
    (writing it costs the forward of the benchmark's proxy downscaler, which is bound
    by memory, about a third more on one core: 0.56 against 0.42 s for 14600 fields of
    64 x 96). With a GPU, until it has done what the forward queued.
    """
    started = time.perf_counter()
    with torch.inference_mode():
        for block in range(0, len(tensor), kept or len(tensor)):
            rows = tensor[block : block + (kept or len(tensor))]
            out = None
            for start in range(0, len(rows), size):
                result = forward(rows[start : start + size])
                if kept:
                    if out is None:
                        out = torch.from_numpy(np.empty((len(rows), *result.shape[1:]), np.float32))
                    out[start : start + size].copy_(result)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started


def _split_forward_seconds(
    pool: Executor,
    threads: int,
    forward: Callable,
    tensor: torch.Tensor,
    size: int,
    kept: int | None = None,
) -> float:
    """Seconds of ``forward`` over ``tensor`` cut in ``threads`` parts, one per pool thread.

    The bare forward as data parallel, each thread of one torch thread as the
    pipeline's are; ``kept`` as in `_forward_seconds`.
    """
    started = time.perf_counter()
    parts = [
        pool.submit(_forward_seconds, forward, part, size, kept)
        for part in tensor.tensor_split(threads)
    ]
    for part in parts:
        part.result()
    return time.perf_counter() - started


def _on_cores(threads: int, func: Callable, *args: object, **kwargs: object) -> object:
    """``func(*args, **kwargs)`` on ``threads`` torch threads, then this thread's count again."""
    own = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return func(*args, **kwargs)
    finally:
        torch.set_num_threads(own)


class _Discard:
    """A store target that drops each block once computed, as a zarr region write frees it."""

    def __setitem__(self, key: object, value: np.ndarray) -> None:
        pass


class _Compare:
    """A store target that checks each block against the eager method's output.

    Examples
    --------
    >>> check = _Compare(np.arange(6.0).reshape(2, 3))
    >>> check[0:1, :] = np.arange(3.0)[None]
    >>> check.verify()
    Traceback (most recent call last):
    ...
    RuntimeError: the pipeline wrote 3 of 6 values
    >>> check[1:2, :] = np.arange(3.0, 6.0)[None]
    >>> check.verify()
    """

    def __init__(self, expected: np.ndarray, amp: bool = False) -> None:
        self.expected, self.rtol, self.written = expected, 1e-3 if amp else 1e-5, 0
        self.atol = self.rtol * float(np.nanmax(np.abs(expected), initial=0.0))
        self.lock = threading.Lock()

    def __setitem__(self, key: Any, value: np.ndarray) -> None:
        np.testing.assert_allclose(
            value, self.expected[key], rtol=self.rtol, atol=self.atol, equal_nan=True,
            err_msg="the lazy pipeline's output differs from the eager method's",
        )  # fmt: skip
        with self.lock:
            self.written += np.asarray(value).size

    def verify(self) -> None:
        """Every output value written once, then the expected output freed."""
        if self.written != self.expected.size:
            raise RuntimeError(f"the pipeline wrote {self.written} of {self.expected.size} values")
        self.expected = np.empty(0)


def _kernel_usage() -> tuple[float, int]:
    """CPU seconds this process has spent in the kernel, and its minor page faults.

    Fresh memory faults in page by page on first touch (huge pages where numpy asks
    for them and the kernel finds them, after compacting memory if need be).
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_stime, usage.ru_minflt


def _store_seconds(
    method: str, model: Path, files: Sequence[Path], store: Path, address: str, **options: Any
) -> tuple[float, float]:
    """Seconds of ``METHOD_to_zarr`` on 2 workers of ``address``, and of their start-up.

    ``options``: the writer's ``device`` and ``amp``.
    """
    started = time.perf_counter()
    with batch.scheduler(address, n_workers=2):
        startup = time.perf_counter() - started
        started = time.perf_counter()
        getattr(batch, f"{method}_to_zarr")(model, list(files), store, progress=False, **options)
        return time.perf_counter() - started, startup


def main(argv: Sequence[str] | None = None) -> None:
    """Run the two measurements and print their figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=10, help="years of daily data per member")
    parser.add_argument("--grid", type=int, nargs=2, default=(32, 48), help="emulation grid")
    parser.add_argument(
        "--fine-grid", type=int, nargs=2, default=(64, 96), help="downscaling target grid"
    )
    parser.add_argument("--throughput-members", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="throughput runs (median)")
    parser.add_argument(
        "--cores", type=int, default=os.cpu_count(), help="cores of the second throughput row"
    )
    parser.add_argument(
        "--memory",
        choices=["glibc", *memory.POLICIES],
        default="glibc",
        help="the allocator's policy for this process: glibc's own (a notebook's), or the "
        "command line's --memory flat or reuse (climlatent.memory)",
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--amp", action="store_true", help="float16 autocast (on CUDA)")
    args = parser.parse_args(argv)
    if args.memory != "glibc":
        memory.use_memory_policy(args.memory)
    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp(prefix="climlatent-ensemble-"))
    try:
        _report(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _report(args: argparse.Namespace, folder: Path) -> None:
    grid, fine_grid = tuple(args.grid), tuple(args.fine_grid)
    models = fit_models(folder, grid, fine_grid)
    n_members = args.throughput_members
    psl = write_members(folder / "psl", "circulation", n_members, args.years, grid)
    drivers = write_members(folder / "drivers", "biogeochem", n_members, args.years, fine_grid)
    print(
        f"{args.years} years of daily fields per member; emulation grid {grid[0]} x {grid[1]}, "
        f"downscaling {fine_grid[0] // 4} x {fine_grid[1] // 4} -> {fine_grid[0]} x "
        f"{fine_grid[1]}; allocator policy: {args.memory}; device {args.device}"
        f"{' (amp)' if args.amp else ''}"
    )
    options = {"device": args.device, "amp": args.amp}
    for threads in sorted({1, args.cores}):
        print(
            f"1) throughput on {threads} core(s), lazy pipeline from files vs bare torch "
            f"forward (median of {args.repeats}):"
        )
        for method, files in (("emulate", psl), ("downscale", drivers)):
            _print_throughput(method, models[method], files, args.repeats, threads, **options)
    fields = n_members * args.years * 365  # noleap calendar
    print(f"2) the store writers, {n_members} members ({fields} fields) each:")
    for method, files in (("emulate", psl), ("downscale", drivers)):
        seconds, _ = _store_seconds(
            method, models[method], files, folder / f"{method}.zarr", "threads", **options
        )
        print(
            f"   {method}_to_zarr, threaded scheduler, 2 threads: {fields / seconds:8.0f} fields/s"
        )
        if method == "emulate":  # and on a LocalCluster
            local, startup = _store_seconds(
                method, models[method], files, folder / "local.zarr", "local", **options
            )
            print(
                f"   {method}_to_zarr, LocalCluster, 2 worker processes: {fields / local:8.0f} "
                f"fields/s (+ {startup:.1f} s start-up); ratio LocalCluster / threads: "
                f"{seconds / local:.2f}"
            )


def _print_throughput(
    method: str, model: Path, files: Sequence[Path], repeats: int, threads: int, **options: Any
) -> None:
    rates = throughput(model, files, method, repeats, threads, **options)
    ratios = [raw / pipe for pipe, raw in zip(rates["pipeline"], rates["raw"], strict=True)]
    pipeline = rates["fields"] / statistics.median(rates["pipeline"])
    raw = rates["fields"] / statistics.median(rates["raw"])
    fastest = min(rates["raw"]) / min(rates["pipeline"])
    print(
        f"   {method:9s} {rates['fields']:6d} fields in blocks of "
        f"{rates['block_steps']} steps: pipeline {pipeline:8.0f} "
        f"fields/s, raw forward {raw:8.0f} fields/s, ratio median "
        f"{statistics.median(ratios):.2f} (runs {', '.join(f'{r:.2f}' for r in ratios)}), "
        f"of the fastest runs {fastest:.2f} (goal >= {GOAL}); raw forward's fastest batch "
        f"{rates['fastest_batch']} rows, "
        f"the pipeline's probed batch {rates['probed_batch']} rows; the pipeline's "
        f"system time median {statistics.median(rates['pipeline_system']):.2f} s "
        f"({statistics.median(rates['pipeline_faults']):.0f} page faults)"
    )
    if rates["raw_split"]:
        print(
            f"   {'':9s} raw forward medians: {statistics.median(rates['raw_threads']):.2f} s "
            f"on {threads} torch threads, {statistics.median(rates['raw_split']):.2f} s cut "
            f"in {threads} parts on as many threads of one torch thread, in batches of "
            f"{rates['fastest_part_batch']} rows (each run counts the faster)"
        )
    gap = statistics.median(rates["pipeline"]) - statistics.median(rates["raw"])
    print(
        f"   {'':9s} the pipeline's time beyond the raw forward: {gap:.2f} s, of which "
        f"reading its inputs alone takes {statistics.median(rates['read']):.2f} s, and "
        f"opening the files and building the graph, before any block runs, "
        f"{statistics.median(rates['setup']):.2f} s"
    )
    if rates["raw_kept"]:
        kept = [raw / pipe for pipe, raw in zip(rates["pipeline"], rates["raw_kept"], strict=True)]
        print(
            f"   {'':9s} the raw forward keeping its output in blocks of "
            f"{rates['block_steps']} rows, as the pipeline must: median "
            f"{statistics.median(rates['raw_kept']):.2f} s; ratio pipeline / kept forward "
            f"median {statistics.median(kept):.2f} (runs {', '.join(f'{r:.2f}' for r in kept)})"
        )


if __name__ == "__main__":
    main()
