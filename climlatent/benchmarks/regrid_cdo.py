"""``climlatent regrid`` against CDO ``remapcon``: wall time, peak RSS, max |diff|.

A global 0.5 degree float32 field of daily steps (numpy: a zonal climate plus noise)
is written to a temporary folder; ``climlatent regrid SRC r180x90`` and
``cdo remapcon,r180x90 SRC`` (conservative, 0.5 to 2 degrees) run on it as
subprocesses, alternately, ``--repeats`` times each. Each child's peak resident set
size comes from ``os.wait4``; the figures are medians. The same two commands on a
one-step file of the same grid give the fixed cost (start-up, imports, weights) and
the memory floor; the peak above that floor is counted in blocks of the source.

Goals: wall-time ratio climlatent/CDO <= 1.5; peak RSS above the floor a few blocks,
the same for a longer record. Sizes are in MiB (2**20 bytes), as ``ru_maxrss`` counts
(KiB). The outputs must have the same cells (coordinates to 1e-9 degrees) and NaN in
the same cells. Skipped, with a message, when ``cdo`` is not on PATH.

Run ``python -m climlatent.benchmarks.regrid_cdo --help`` (or ``climlatent bench
regrid_cdo --help``) for the options.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from climlatent.grid import regular_grid
from climlatent.io import to_netcdf
from climlatent.regrid import smm

WALL_GOAL = 1.5


def make_source(path: Path, n_time: int, resolution: float = 0.5) -> Path:
    """Write a global float32 field of ``n_time`` daily steps on a regular grid.

    Examples
    --------
    >>> import tempfile
    >>> path = make_source(Path(tempfile.mkdtemp()) / "tas.nc", 2, resolution=30.0)
    >>> xr.open_dataset(path)["tas"].shape
    (2, 6, 12)
    """
    grid = regular_grid(
        np.linspace(-90.0, 90.0, round(180 / resolution) + 1),
        np.linspace(0.0, 360.0, round(360 / resolution) + 1),
    )
    lat, lon = np.meshgrid(np.deg2rad(grid.lat), np.deg2rad(grid.lon), indexing="ij")
    climate = 250.0 + 40.0 * np.cos(lat) ** 2 + 5.0 * np.sin(3 * lon) * np.cos(lat)
    noise = np.random.default_rng(0).normal(0.0, 2.0, (n_time, *climate.shape))
    tas = (climate + noise).astype(np.float32)
    ds = grid.assign(
        tas=(("time", "lat", "lon"), tas, {"standard_name": "air_temperature", "units": "K"})
    ).assign_coords(
        time=("time", np.arange(n_time, dtype=float), {"units": "days since 2000-01-01"})
    )
    return to_netcdf(ds, path)


# Runs a command and prints its wall seconds and peak RSS (KiB): a child forked from a
# big process starts with that process's pages counted in its peak, so the command is
# started from this small interpreter rather than from the benchmark itself.
_MEASURE = """
import os, subprocess, sys, time
start = time.perf_counter()
process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(process.pid, 0)
print(time.perf_counter() - start, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def run_measured(command: Sequence[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one subprocess; its output is discarded.

    Examples
    --------
    >>> seconds, peak_mib = run_measured([sys.executable, "-c", "pass"])
    >>> seconds > 0 and peak_mib > 1
    True
    """
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command], capture_output=True, text=True, check=True
    )
    seconds, peak_kib, status = done.stdout.split()
    if int(status):
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return float(seconds), int(peak_kib) / 1024  # ru_maxrss is in KiB on Linux


def commands(source: Path, folder: Path, grid: str, time_chunk: int | None) -> dict[str, list]:
    """The two commands regridding ``source`` to ``grid``, writing into ``folder``."""
    ours = [sys.executable, "-m", "climlatent", "regrid", str(source), grid, "--quiet"]
    ours += ["--output", str(folder / f"climlatent_{source.stem}.nc")]
    if time_chunk is not None:
        ours += ["--time-chunk", str(time_chunk)]
    cdo = ["cdo", "-s", f"remapcon,{grid}", str(source), str(folder / f"cdo_{source.stem}.nc")]
    return {"climlatent regrid": ours, "cdo remapcon": cdo}


def measure(
    source: Path, folder: Path, grid: str, repeats: int, time_chunk: int | None
) -> dict[str, tuple[float, float]]:
    """Median wall seconds and peak RSS (MiB) of each command, run alternately.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> src = make_source(folder / "tiny.nc", 2, resolution=30.0)
    >>> sorted(measure(src, folder, "r6x3", 1, None)) if shutil.which("cdo") else [
    ...     "cdo remapcon", "climlatent regrid"]
    ['cdo remapcon', 'climlatent regrid']
    """
    runs: dict[str, list[tuple[float, float]]] = {}
    for _ in range(repeats):
        for name, command in commands(source, folder, grid, time_chunk).items():
            runs.setdefault(name, []).append(run_measured(command))
    return {
        name: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs))
        for name, rs in runs.items()
    }


def max_difference(folder: Path, stem: str) -> float:
    """Largest absolute difference between the two outputs, where both are numbers.

    Raises
    ------
    AssertionError
        The outputs differ in shape or in their cells' coordinates (by more than
        1e-9 degrees), or one is NaN where the other is not: no difference to report.

    Examples
    --------
    >>> folder = Path(tempfile.mkdtemp())
    >>> grid = regular_grid(np.linspace(-90.0, 90.0, 3), np.linspace(0.0, 360.0, 3))
    >>> for tool, values in (("climlatent", [[1.0, 2.0], [3.0, np.nan]]),
    ...                      ("cdo", [[1.5, 2.0], [3.0, np.nan]])):
    ...     _ = to_netcdf(grid.assign(tas=(("lat", "lon"), values)), folder / f"{tool}_a.nc")
    >>> max_difference(folder, "a")
    0.5
    """
    with (
        xr.open_dataset(folder / f"climlatent_{stem}.nc") as ours,
        xr.open_dataset(folder / f"cdo_{stem}.nc") as cdo,
    ):
        for coord in ("lat", "lon"):
            np.testing.assert_allclose(
                ours[coord].values, cdo[coord].values, rtol=0, atol=1e-9, err_msg=coord
            )
        a, b = ours["tas"].values, cdo["tas"].values
        assert a.shape == b.shape, f"shapes {a.shape} and {b.shape}"
        nan_in_one = int((np.isnan(a) != np.isnan(b)).sum())
        assert not nan_in_one, f"{nan_in_one} cells NaN in one output only"
        both = ~np.isnan(a)
        return float(np.abs(a[both] - b[both]).max()) if both.any() else 0.0


def main(argv: Sequence[str] | None = None) -> None:
    """Print wall time, peak RSS and max |diff| of both tools, and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--time", type=int, nargs="+", default=[120, 480], help="daily steps, one file each"
    )
    parser.add_argument("--grid", default="r180x90", help="destination grid spec")
    parser.add_argument("--resolution", type=float, default=0.5, help="source degrees")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--time-chunk", type=int, help="time steps per block (climlatent)")
    args = parser.parse_args(argv)
    if shutil.which("cdo") is None:
        print("skipped: cdo is not on PATH (install the system package 'cdo')")
        return
    with tempfile.TemporaryDirectory(prefix="regrid_cdo_") as tmp:
        folder = Path(tmp)
        floor_source = make_source(folder / "steps_1.nc", 1, args.resolution)
        field_bytes = 4 * round(180 / args.resolution) * round(360 / args.resolution)
        field_mb = field_bytes / 2**20  # MiB, as the peaks
        block = args.time_chunk or max(1, smm.BLOCK_BYTES // field_bytes)  # as regrid_file
        cores = len(os.sched_getaffinity(0))
        print(
            f"conservative {args.resolution:g} degrees -> {args.grid}, float32, "
            f"{field_mb:.2f} MiB per step; block: {block} steps ({block * field_mb:.1f} MiB); "
            f"threads: cdo 1 (no -P), climlatent dask's default ({cores} cores)"
        )
        floor = measure(floor_source, folder, args.grid, args.repeats, args.time_chunk)
        print(
            f"fixed cost (1 step): climlatent {floor['climlatent regrid'][0]:.2f} s "
            f"{floor['climlatent regrid'][1]:.0f} MiB, cdo {floor['cdo remapcon'][0]:.2f} s "
            f"{floor['cdo remapcon'][1]:.0f} MiB"
        )
        for n_time in args.time:
            source = make_source(folder / f"steps_{n_time}.nc", n_time, args.resolution)
            result = measure(source, folder, args.grid, args.repeats, args.time_chunk)
            (ours_s, ours_mb), (cdo_s, cdo_mb) = result["climlatent regrid"], result["cdo remapcon"]
            above = ours_mb - floor["climlatent regrid"][1]
            print(
                f"{n_time} steps ({n_time * field_mb:.0f} MiB source): "
                f"climlatent {ours_s:.2f} s {ours_mb:.0f} MiB, cdo {cdo_s:.2f} s {cdo_mb:.0f} MiB; "
                f"ratio wall {ours_s / cdo_s:.2f} (goal <= {WALL_GOAL}), "
                f"RSS {ours_mb / cdo_mb:.1f}x cdo, above the 1-step floor {above:.0f} MiB = "
                f"{above / (block * field_mb):.1f} blocks; "
                f"max |diff| {max_difference(folder, source.stem):.3g} K"
            )
            source.unlink()


if __name__ == "__main__":
    main()
