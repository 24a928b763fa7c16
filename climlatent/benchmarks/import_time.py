"""Start-up time of ``import climlatent``, ``climlatent --help``/``info`` vs ``import xarray``.

Each command runs in a fresh Python process, timed from outside (``subprocess``, wall
clock), the commands interleaved in every round so that they share the machine's load;
the figures are medians over the rounds. Goal: ``climlatent --help`` within 1.5x and
``import climlatent`` within 2x of ``import xarray`` (names resolve lazily, so neither
loads torch, pyro, matplotlib or cartopy). ``climlatent info`` describes two small
models saved for the run: an EOF regression (its module, the manifest, the grids and
the weights are read, checked as by loading, without torch) and an LLAAE (whose
estimator module needs torch).

Measured on 2 cores shared with other jobs (load average 2.3), 7 rounds: ``import
xarray`` 721 ms; ``import climlatent`` 0.04x (met); ``climlatent --help`` 0.09x (met);
``climlatent info`` 2.98x for the EOF regression and 6.91x for the LLAAE. Side by side
(5 rounds) with the code before estimators resolved lazily, ``info`` of the EOF model
took 3.94 s against 1.51 s now, of the LLAAE 3.82 s against 3.01 s (``import xarray``
0.50 s); what remains is pint and cf-xarray's units, xarray's netCDF reading and, for
the LLAAE, torch.

Run ``python -m climlatent.benchmarks.import_time --help`` for the options.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

COMMANDS = {
    "import xarray": [sys.executable, "-c", "import xarray"],
    "import climlatent": [sys.executable, "-c", "import climlatent"],
    "climlatent --help": [sys.executable, "-m", "climlatent", "--help"],
}
GOALS = {"import climlatent": 2.0, "climlatent --help": 1.5}


def _wall_time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def save_models(folder: str | Path) -> dict[str, list[str]]:
    """Save a small EOF regression and LLAAE in ``folder``; the ``climlatent info`` commands.

    Parameters
    ----------
    folder : str or path-like
        An existing folder.

    Returns
    -------
    dict
        Command name -> command line, one per model.

    Examples
    --------
    >>> import tempfile
    >>> sorted(save_models(tempfile.mkdtemp()))
    ['climlatent info (EOFRegression)', 'climlatent info (LLAAE)']
    """
    import climlatent as cl

    ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=6, n_lon=8)
    models = {
        "EOFRegression": cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=2),
        "LLAAE": cl.LLAAE(latent_dim=2, filters=(4, 8), epochs=1, progress=False),
    }
    commands = {}
    for name, estimator in models.items():
        path = Path(folder) / f"{name}.clm"
        estimator.fit(ds, "pr", "psl").save(path)
        commands[f"climlatent info ({name})"] = [
            sys.executable,
            "-m",
            "climlatent",
            "info",
            str(path),
        ]
    return commands


def measure(repeats: int = 7, commands: Mapping[str, list[str]] = COMMANDS) -> dict[str, float]:
    """Median wall time in seconds of each command, side by side.

    Parameters
    ----------
    repeats : int
        Rounds; each runs every command once, in a fresh process.
    commands : mapping
        Name -> command line; ``COMMANDS`` by default.

    Returns
    -------
    dict
        Command -> median seconds.

    Examples
    --------
    >>> times = measure(repeats=1)
    >>> sorted(times) == sorted(COMMANDS)
    True
    """
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            times[name].append(_wall_time(command))
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: Sequence[str] | None = None) -> None:
    """Print each command's median time and its ratio to ``import xarray``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="rounds (median taken)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        times = measure(args.repeats, {**COMMANDS, **save_models(folder)})
    reference = times["import xarray"]
    print(f"median of {args.repeats} fresh processes each")
    for name, seconds in times.items():
        ratio = seconds / reference
        goal = GOALS.get(name)
        verdict = (
            "" if goal is None else f"  goal <= {goal}x: {'met' if ratio <= goal else 'MISSED'}"
        )
        print(f"{name:32s} {seconds * 1e3:7.0f} ms  {ratio:4.2f}x{verdict}")


if __name__ == "__main__":
    main()
