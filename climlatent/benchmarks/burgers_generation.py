"""Throughput of the viscous Burgers generator: trajectories per second on a few cores.

Generates ``--n`` (default 1000) trajectories of each requested set of
:data:`climlatent.reference.burgers.DATASETS` (default: ``in_distribution``) with the
default grid (100 points, 101 saved times on [0, 1]) and ``--workers`` solver threads
(default 2), prints the wall time and samples per second, the internal resolution
and step, and the largest relative L1 error against the Cole-Hopf solution of the
first ``--check`` trajectories at t = 0.25, 0.5, 1.

Run ``python -m climlatent.benchmarks.burgers_generation --help`` for the
options.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np
import xarray as xr

from climlatent.reference.burgers.exact import cole_hopf
from climlatent.reference.burgers.generate import DATASETS, generate_set

CHECK_TIMES = (0.25, 0.5, 1.0)


def relative_l1_error(
    ds: xr.Dataset, n_check: int = 4, times: Sequence[float] = CHECK_TIMES
) -> float:
    r"""Largest relative L1 error of the noise-free ``u`` against Cole-Hopf.

    Parameters
    ----------
    ds : xarray.Dataset
        Output of :func:`~climlatent.reference.burgers.generate`.
    n_check : int
        Trajectories checked (the first ones).
    times : sequence of float
        Saved times checked.

    Returns
    -------
    float
        :math:`\max \sum_x |u - u_{exact}| / \sum_x |u_{exact}|` over the checked
        trajectories and times.

    Examples
    --------
    >>> ds = generate_set("in_distribution", n=1, nx=50, nt=4)
    >>> relative_l1_error(ds, times=(0.5,)) < 1e-6
    True
    """
    u = ds["u_clean"] if "u_clean" in ds else ds["u"]
    u = u.isel(sample=slice(0, n_check))
    exact = cole_hopf(u.isel(t=0).values, ds.x.values, np.asarray(times), float(ds.viscosity[0]))
    numeric = u.sel(t=list(times)).values
    errors = np.abs(numeric - exact).sum(axis=-1) / np.abs(exact).sum(axis=-1)
    return float(errors.max())


def measure(name: str, n: int, workers: int, seed: int = 0, n_check: int = 4) -> dict:
    """Generate ``n`` trajectories of the set ``name``; time it and check its accuracy.

    Parameters
    ----------
    name : str
        A set of :data:`~climlatent.reference.burgers.DATASETS`.
    n : int
        Trajectories.
    workers : int
        Solver threads.
    seed : int
        Seed.
    n_check : int
        Trajectories checked against Cole-Hopf.

    Returns
    -------
    dict
        ``seconds`` (wall), ``cpu_seconds`` (all threads), ``samples_per_second``
        (wall), ``resolution``, ``time_step``, ``error`` and ``megabytes`` (of ``u``).

    Examples
    --------
    >>> result = measure("ood2", n=2, workers=1, n_check=1)
    >>> result["resolution"], result["error"] < 1e-6
    (400, True)
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    ds = generate_set(name, n=n, seed=seed, workers=workers)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu_started,
        "samples_per_second": n / seconds,
        "resolution": ds.attrs["resolution"],
        "time_step": ds.attrs["time_step"],
        "error": relative_l1_error(ds, n_check),
        "megabytes": ds.u.nbytes / 1e6,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Print the throughput and accuracy of each requested set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="trajectories per set")
    parser.add_argument("--workers", type=int, default=2, help="solver threads")
    parser.add_argument("--sets", nargs="+", default=["in_distribution"], choices=sorted(DATASETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", type=int, default=4, help="trajectories checked")
    args = parser.parse_args(argv)
    print(
        f"{args.n} trajectories per set, nx=100, 101 saved times in [0, 1], "
        f"{args.workers} worker thread(s)"
    )
    for name in args.sets:
        result = measure(name, args.n, args.workers, args.seed, args.check)
        print(
            f"{name:16s} {result['seconds']:6.1f} s (CPU {result['cpu_seconds']:6.1f} s)  "
            f"{result['samples_per_second']:6.1f} samples/s  "
            f"N={result['resolution']:4d}  dt={result['time_step']:.2e}  "
            f"u {result['megabytes']:.0f} MB  "
            f"max rel L1 vs Cole-Hopf (t=0.25, 0.5, 1): {result['error']:.1e}"
        )


if __name__ == "__main__":
    main()
