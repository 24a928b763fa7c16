"""Start-up time: ``import climlatent`` and ``climlatent --help`` against ``import xarray``.

Each command runs in a fresh Python process, timed from outside (``subprocess``, wall
clock), the three commands interleaved in every round so that they share the machine's
load; the figures are medians over the rounds. Goal: ``climlatent --help`` within 1.5x
and ``import climlatent`` within 2x of ``import xarray`` (names resolve lazily, so
neither loads torch, pyro, matplotlib or cartopy).

Run ``python -m climlatent.benchmarks.import_time --help`` for the options.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

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


def measure(repeats: int = 7) -> dict[str, float]:
    """Median wall time in seconds of each command in ``COMMANDS``, side by side.

    Parameters
    ----------
    repeats : int
        Rounds; each runs every command once, in a fresh process.

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
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(repeats):
        for name, command in COMMANDS.items():
            times[name].append(_wall_time(command))
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: Sequence[str] | None = None) -> None:
    """Print each command's median time and its ratio to ``import xarray``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="rounds (median taken)")
    args = parser.parse_args(argv)
    times = measure(args.repeats)
    reference = times["import xarray"]
    print(f"median of {args.repeats} fresh processes each")
    for name, seconds in times.items():
        ratio = seconds / reference
        goal = GOALS.get(name)
        verdict = (
            "" if goal is None else f"  goal <= {goal}x: {'met' if ratio <= goal else 'MISSED'}"
        )
        print(f"{name:20s} {seconds * 1e3:7.0f} ms  {ratio:4.2f}x{verdict}")


if __name__ == "__main__":
    main()
