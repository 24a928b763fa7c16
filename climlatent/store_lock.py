"""One writer per folder: an exclusive lock file that names the process holding it.

The lock is a file created with ``O_CREAT | O_EXCL`` (atomic on local disks, NFS and
Lustre alike) holding the writer's process id, host and a random id. A second writer
finds it and is refused with the holder's name; a lock whose process ended without
releasing it (``kill -9``, a crash of the node's job) is taken over, with a warning,
when that process was on this host. A lock held from another host is never taken
over: its process cannot be checked from here.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import uuid
import warnings
from pathlib import Path

from climlatent.errors import ClimlatentError

LOCK = ".climlatent_lock"


class StoreLockedError(ClimlatentError, RuntimeError):
    """Another process is writing the store; the message names it and its host."""


def new_record() -> str:
    """The lock record of this process: pid, host and an id unique to one writer.

    Examples
    --------
    >>> import json, os
    >>> json.loads(new_record())["pid"] == os.getpid()
    True
    """
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "id": uuid.uuid4().hex})


def acquire(folder: Path, record: str) -> None:
    """Lock ``folder`` for the writer of ``record``, or refuse naming the holder.

    Parameters
    ----------
    folder : pathlib.Path
        The folder to lock (a store); the lock file is ``folder / LOCK``.
    record : str
        This writer's record, from :func:`new_record`.

    Raises
    ------
    StoreLockedError
        Another live process, or a process on another host, holds the lock.

    Warns
    -----
    RuntimeWarning
        The lock of a process of this host that no longer runs is taken over.

    Examples
    --------
    >>> import tempfile
    >>> folder, record = Path(tempfile.mkdtemp()), new_record()
    >>> acquire(folder, record)
    >>> acquire(folder, new_record())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    climlatent.store_lock.StoreLockedError: ... is being written by process ...
    >>> release(folder, record)
    """
    lock = folder / LOCK
    for attempt in range(2):
        try:
            with open(lock, "x", encoding="utf-8") as file:  # O_CREAT | O_EXCL
                file.write(record)
            return
        except FileExistsError:
            held = _read(lock)
        holder = json.loads(held or "{}")
        if attempt or holder.get("host") != socket.gethostname() or _alive(holder.get("pid")):
            break
        warnings.warn(
            f"{str(folder)!r}: taking over the lock of process {holder['pid']}, which ended "
            "without releasing it",
            RuntimeWarning,
            stacklevel=2,
        )
        # Moved aside rather than deleted: a lock taken over by another writer in the
        # meantime is put back, and that writer keeps it.
        aside = folder / f"{LOCK}.{uuid.uuid4().hex}"
        with contextlib.suppress(FileNotFoundError):
            os.rename(lock, aside)
            if _read(aside) != held:
                with contextlib.suppress(FileExistsError):
                    os.link(aside, lock)
            aside.unlink()
    by = f"process {holder['pid']} on {holder['host']}" if "pid" in holder else "another process"
    raise StoreLockedError(
        f"{str(folder)!r} is being written by {by}; refusing a second writer "
        f"(if no process writes it, delete {str(lock)!r})"
    )


def release(folder: Path, record: str) -> None:
    """Delete the lock of ``folder`` if this writer (``record``) holds it.

    Examples
    --------
    >>> import tempfile
    >>> folder, record = Path(tempfile.mkdtemp()), new_record()
    >>> acquire(folder, record)
    >>> release(folder, record)
    >>> (folder / LOCK).exists()
    False
    """
    with contextlib.suppress(OSError):
        if (folder / LOCK).read_text(encoding="utf-8") == record:
            (folder / LOCK).unlink()


def _read(lock: Path) -> str:
    """The lock's record; empty while its writer is still writing it, or if unreadable."""
    try:
        text = lock.read_text(encoding="utf-8")
        return text if isinstance(json.loads(text), dict) else ""
    except (OSError, ValueError):
        return ""


def _alive(pid: object) -> bool:
    """Whether process ``pid`` of this host runs, or cannot be told apart from running."""
    if not isinstance(pid, int):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
