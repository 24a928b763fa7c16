"""Peak memory of regridding a dask-chunked ensemble: flat in the number of members.

Random member x time x lat x lon data on a 0.5 degree global grid, one dask chunk per
member (``n_time`` float64 fields, 1.98 MiB each: 71 MiB per member by default),
generated lazily with ``dask.array.random``, is regridded conservatively to 2 degrees
and reduced with ``.sum().compute()``. Each member count runs in a fresh Python process
that reports its own peak resident set size (``VmHWM``: that of its own memory, where
``ru_maxrss`` would count the benchmark process that started it), before the
computation (imports, weights) and after it. Goal: the peak for 10 members about that
for 2.

Run ``python -m climlatent.benchmarks.regrid_memory --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Sequence

import dask.array as dsa
import numpy as np
import xarray as xr

from climlatent.regrid import Regridder


def _global_grid(step: float) -> xr.Dataset:
    return xr.Dataset(
        coords={
            "lat": ("lat", np.arange(-90 + step / 2, 90, step), {"units": "degrees_north"}),
            "lon": ("lon", np.arange(step / 2, 360, step), {"units": "degrees_east"}),
        }
    )


def peak_rss_mib() -> float:
    """Peak resident set size of this process's own memory, in MiB.

    ``VmHWM`` from ``/proc/self/status`` (Linux): ``ru_maxrss`` of a process started by
    another holds the starter's peak too (Linux carries it across ``exec``), so a
    worker started by a large benchmark process would report that process's peak.
    Elsewhere ``ru_maxrss`` (KiB on Linux, bytes on macOS).

    Examples
    --------
    >>> peak_rss_mib() > 1
    True
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def regrid_ensemble(n_members: int, n_time: int = 36) -> dict[str, float]:
    """Regrid and reduce a lazy ensemble in this process; peak RSS before and after.

    Parameters
    ----------
    n_members : int
        Ensemble members, one dask chunk each.
    n_time : int
        Time steps per member (each a 0.5 degree global field).

    Returns
    -------
    dict
        ``peak_before_mb`` (imports and weights), ``peak_mb`` (both MiB), ``seconds``,
        ``total``.

    Examples
    --------
    >>> sorted(regrid_ensemble(n_members=1, n_time=1))
    ['peak_before_mb', 'peak_mb', 'seconds', 'total']
    """
    src, dst = _global_grid(0.5), _global_grid(2.0)
    regridder = Regridder(src, dst, method="conservative", engine="climlatent")
    shape = (n_members, n_time, src.lat.size, src.lon.size)
    data = dsa.random.default_rng(0).random(shape, chunks=(1, -1, -1, -1))
    ensemble = xr.DataArray(
        data, dims=("member", "time", "lat", "lon"), coords={"lat": src.lat, "lon": src.lon}
    )
    before = peak_rss_mib()
    started = time.perf_counter()
    total = float(regridder(ensemble).sum().compute())
    seconds = time.perf_counter() - started
    return {"peak_before_mb": before, "peak_mb": peak_rss_mib(), "seconds": seconds, "total": total}


def measure(member_counts: Sequence[int] = (2, 10), n_time: int = 36) -> dict[int, dict]:
    """Run :func:`regrid_ensemble` in a fresh subprocess for each member count.

    Examples
    --------
    >>> result = measure(member_counts=(1,), n_time=1)
    >>> result[1]["peak_mb"] >= result[1]["peak_before_mb"]
    True
    """
    results = {}
    for n_members in member_counts:
        command = [sys.executable, "-m", __spec__.name, "--worker", str(n_members)]
        done = subprocess.run(
            [*command, "--time", str(n_time)], capture_output=True, text=True, check=True
        )
        results[n_members] = json.loads(done.stdout.splitlines()[-1])
    return results


def main(argv: Sequence[str] | None = None) -> None:
    """Print the peak RSS per member count and the ratio of the extremes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[2, 10])
    parser.add_argument("--time", type=int, default=36, help="time steps per member")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(regrid_ensemble(args.worker, args.time)))
        return
    member_mb = args.time * 360 * 720 * 8 / 2**20
    print(f"conservative 0.5 -> 2 degrees, {member_mb:.0f} MiB per member (one chunk each)")
    results = measure(args.members, args.time)
    for n_members, result in results.items():
        print(
            f"{n_members:3d} members ({n_members * member_mb:5.0f} MiB): "
            f"peak RSS {result['peak_mb']:6.0f} MiB "
            f"(imports + weights {result['peak_before_mb']:4.0f} MiB), {result['seconds']:.1f} s"
        )
    low, high = results[min(results)], results[max(results)]
    print(
        f"ratio peak RSS {max(results)}/{min(results)} members: "
        f"{high['peak_mb'] / low['peak_mb']:.2f} (goal: about 1)"
    )


if __name__ == "__main__":
    main()
