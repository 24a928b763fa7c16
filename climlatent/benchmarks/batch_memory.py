"""Peak memory of ``climlatent emulate`` and ``climlatent downscale``: members and years.

Each command runs as it would in a batch job, ``climlatent emulate MODEL 'members/*.nc'
--output X.zarr`` with its defaults, over member files written once (one daily netCDF
file per member: ``psl`` for an ``LLAAE`` emulator, coarse ``tos`` and ``rsds`` for a
``ProxyDownscaler``), in a subprocess started from a small interpreter whose
``os.wait4`` gives the command's peak resident set size (see
:func:`climlatent.benchmarks.regrid_cdo.run_measured`). The cases, side by side in
one run:

- 2, 20 and 200 members of 10 years;
- 2 members of 10 and of 100 years.

Goals: peak RSS 200/2 members <= 1.10 and 100/10 years <= 1.10 for both commands, with
their default ``--memory flat``; ``--memory flat reuse`` measures both policies on the
same member files.
The members are one synthetic member plus seeded noise each
(:func:`~climlatent.benchmarks.ensemble_pipeline.write_members`).

Run ``python -m climlatent.benchmarks.batch_memory --help`` (or ``climlatent bench
batch_memory --help``) for the options.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from climlatent.benchmarks.ensemble_pipeline import fit_models, write_members
from climlatent.benchmarks.regrid_cdo import run_measured
from climlatent.memory import POLICIES

GOAL = 1.10
#: (members, years) of each case, in the order they run.
CASES = ((2, 10), (20, 10), (200, 10), (2, 100))
#: The member files of each command (see ensemble_pipeline.write_members).
KINDS = {"emulate": "circulation", "downscale": "biogeochem"}


def measure(
    method: str,
    model: Path,
    folder: Path,
    store: Path,
    repeats: int,
    memory: str = "flat",
    options: Sequence[str] = (),
) -> tuple[float, float]:
    """Lowest peak RSS (MiB) of ``climlatent METHOD`` over ``folder``, and that run's seconds.

    ``memory`` is the command's ``--memory`` policy, ``options`` more of its options
    (``--device cuda --amp``).

    Examples
    --------
    >>> folder = Path(tempfile.mkdtemp())
    >>> models = fit_models(folder, (4, 6), (16, 16))
    >>> _ = write_members(folder / "members", "biogeochem", 2, 1, (16, 16))
    >>> peak, seconds = measure("downscale", models["downscale"], folder / "members",
    ...                         folder / "out.zarr", repeats=1)
    >>> peak > 100 and seconds > 0
    True
    """
    command = [sys.executable, "-m", "climlatent", method, str(model), str(folder / "*.nc")]
    command += ["--output", str(store), "--quiet", "--overwrite", "--memory", memory, *options]
    runs = [run_measured(command) for _ in range(repeats)]
    seconds, peak = min(runs, key=lambda run: run[1])
    return peak, seconds


def main(argv: Sequence[str] | None = None) -> None:
    """Write the members, run each case and print peak RSS per case and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, nargs=2, default=(16, 24), help="emulation grid")
    parser.add_argument(
        "--fine-grid", type=int, nargs=2, default=(32, 48), help="downscaling target grid"
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs per case (lowest kept)")
    parser.add_argument("--methods", nargs="+", default=["emulate", "downscale"])
    parser.add_argument(
        "--memory",
        nargs="+",
        choices=list(POLICIES),
        default=["flat"],
        help="the commands' --memory policies, each measured on the same member files",
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--amp", action="store_true", help="the commands' --amp (on CUDA)")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="climlatent-batch-memory-"))
    try:
        _report(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _report(args: argparse.Namespace, folder: Path) -> None:
    grids = {"emulate": tuple(args.grid), "downscale": tuple(args.fine_grid)}
    models = fit_models(folder, grids["emulate"], grids["downscale"])
    print(
        f"emulate: LLAAE on {grids['emulate'][0]} x {grids['emulate'][1]}; downscale: "
        f"ProxyDownscaler {grids['downscale'][0] // 4} x {grids['downscale'][1] // 4} -> "
        f"{grids['downscale'][0]} x {grids['downscale'][1]}; daily members; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; --device "
        f"{args.device}{' --amp' if args.amp else ''}"
    )
    options = ["--device", args.device, *(["--amp"] if args.amp else [])]
    for method in args.methods:
        peaks = {}
        for n_members, n_years in CASES:
            members = folder / f"{method}-{n_members}x{n_years}"
            write_members(members, KINDS[method], n_members, n_years, grids[method])
            for memory in args.memory:
                store = folder / "out.zarr"
                peak, seconds = measure(
                    method, models[method], members, store, args.repeats, memory, options
                )
                peaks[memory, n_members, n_years] = peak
                print(
                    f"climlatent {method:9s} --memory {memory:5s} {n_members:3d} members x "
                    f"{n_years:3d} years: peak RSS {peak:6.0f} MiB, {seconds:6.1f} s"
                )
            shutil.rmtree(members)
        for memory in args.memory:
            for label, high, low in (
                ("200/2 members", (200, 10), (2, 10)),
                ("100/10 years", (2, 100), (2, 10)),
            ):
                ratio = peaks[(memory, *high)] / peaks[(memory, *low)]
                verdict = "holds" if ratio <= GOAL else "missed"
                print(
                    f"   {method} --memory {memory} peak RSS ratio {label}: {ratio:.3f} "
                    f"(goal <= {GOAL}: {verdict})"
                )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
