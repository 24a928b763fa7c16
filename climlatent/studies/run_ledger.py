"""A study's finished runs, one CSV row each, so that a long study resumes where it stopped.

Each run of a study is a job (a dict of its settings); its row is the job plus its
results. :class:`RunLedger` keeps the rows in ``runs.partial.csv``, rewritten
atomically after each run (a crash never leaves half a file), and tells which jobs of
a plan are done, comparing the settings named by ``key`` (numbers as floats, so ``1``
and ``1.0`` read back from CSV are one setting). The runs of one study done on several
machines (some on a GPU, say) come together with :meth:`RunLedger.merge`. A run's row
and a merge from another process read and rewrite the file in turn, each holding an
exclusive lock on its folder (``flock``, POSIX; no lock file), so that neither
overwrites the rows of the other.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from climlatent.atomic import written_atomically


class RunLedger:
    """The finished runs of a study in ``path``.

    Parameters
    ----------
    path : Path
        The CSV file (created on the first :meth:`append`).
    key : sequence of str
        The settings that identify a run.

    Examples
    --------
    >>> import tempfile
    >>> ledger = RunLedger(Path(tempfile.mkdtemp()) / "runs.partial.csv", ["case", "seed"])
    >>> plan = [{"case": "a", "seed": 0}, {"case": "a", "seed": 1}]
    >>> ledger.append({"case": "a", "seed": 0, "score": 0.5})
    >>> [job["seed"] for job in RunLedger(ledger.path, ["case", "seed"]).missing(plan)]
    [1]
    """

    def __init__(self, path: Path, key: Sequence[str]) -> None:
        self.path, self.key = Path(path), tuple(key)
        self.rows: list[dict] = _read(self.path)

    def identity(self, job: dict, key: Sequence[str] | None = None) -> tuple:
        """The settings ``key`` (default the ledger's) of a job or row, as compared.

        Examples
        --------
        >>> import tempfile
        >>> ledger = RunLedger(Path(tempfile.mkdtemp()) / "runs.csv", ["case", "seed"])
        >>> ledger.identity({"case": "a", "seed": "1"}), ledger.identity({"case": "a"}, ["case"])
        (('a', 1.0), ('a',))
        """
        return tuple(_setting(job[name]) for name in (self.key if key is None else key))

    def missing(self, plan: Sequence[dict]) -> list[dict]:
        """The jobs of ``plan`` without a row, in plan order."""
        done = {self.identity(row) for row in self.rows}
        return [job for job in plan if self.identity(job) not in done]

    def append(self, row: dict) -> None:
        """Add a finished run and rewrite the file atomically.

        The file is read again first: rows merged into it since this ledger was
        opened (by `merge`, from another process) are kept, not overwritten.
        """
        with _locked(self.path.parent):
            self._write([*self._with(_read(self.path)), row])

    def merge(self, path: Path) -> int:
        """Add the runs of another ledger file that this one lacks; how many were added.

        Parameters
        ----------
        path : Path
            A ``runs.partial.csv`` of the same study, written elsewhere (another
            machine's runs). A run both hold stays as this ledger has it.

        Returns
        -------
        int
            Rows added.

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        ValueError
            Its rows lack a setting that identifies a run here (another study's).

        Examples
        --------
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> here, there = (RunLedger(folder / name, ["seed"]) for name in ("a.csv", "b.csv"))
        >>> here.append({"seed": 0, "score": 0.5})
        >>> there.append({"seed": 0, "score": 0.7}); there.append({"seed": 1, "score": 0.6})
        >>> here.merge(there.path), [row["score"] for row in RunLedger(here.path, ["seed"]).rows]
        (1, [0.5, 0.6])
        """
        if not Path(path).is_file():
            raise FileNotFoundError(f"no study ledger at {str(path)!r}")
        other = _read(Path(path))
        lacking = [name for name in self.key if other and name not in other[0]]
        if lacking:
            raise ValueError(f"{str(path)!r} is another study's ledger: no {', '.join(lacking)}")
        before = len(self.rows)
        with _locked(self.path.parent):
            self._write(self._with(_read(self.path) + other))
        return len(self.rows) - before

    def _with(self, rows: Sequence[dict]) -> list[dict]:
        """The ledger's rows, then those of ``rows`` whose runs it does not hold yet."""
        held = {self.identity(row) for row in self.rows}
        added = list(self.rows)
        for row in rows:
            if self.identity(row) not in held:
                held.add(self.identity(row))
                added.append(row)
        return added

    def _write(self, rows: list[dict]) -> None:
        """Rewrite the file with ``rows``, this ledger's once they are in it.

        An interrupted write (a Ctrl-C, a full disk) leaves the file and the ledger as
        they were: no run counts as done that the file does not hold.
        """
        with written_atomically(self.path, private_folder=False) as partial:
            pd.DataFrame(rows).to_csv(partial, index=False)
        self.rows = rows

    def status(self, plan: Sequence[dict], by: Sequence[str]) -> pd.DataFrame:
        """Runs done and planned per case (the settings ``by``).

        Examples
        --------
        >>> import tempfile
        >>> ledger = RunLedger(Path(tempfile.mkdtemp()) / "runs.csv", ["case", "seed"])
        >>> ledger.status([{"case": "a", "seed": 0}], ["case"]).to_dict("records")
        [{'case': 'a', 'done': 0, 'planned': 1}]
        """
        table = pd.DataFrame(plan)
        pending = {self.identity(job) for job in self.missing(plan)}
        table["done"] = [self.identity(job) not in pending for job in plan]
        grouped = table.groupby(list(by), sort=False)["done"]
        counts = pd.DataFrame({"done": grouped.sum().astype(int), "planned": grouped.size()})
        return counts.reset_index()


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (created if need be) until the block ends.

    The lock is ``flock`` on the folder itself: another process (or another open of
    the folder) waits for it, and it ends with the process, however that ends.
    """
    folder.mkdir(parents=True, exist_ok=True)
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # and the lock with it


def _read(path: Path) -> list[dict]:
    """The rows of a ledger file (none if it does not exist)."""
    return pd.read_csv(path).to_dict("records") if path.exists() else []


def _setting(value: object) -> object:
    """A setting as compared: numbers as float, anything else as its text."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
