"""Write a file or folder in full or not at all: never half-written output.

Shared by every writer of a single output (netCDF files, regridding weights, saved
models, training checkpoints), with :func:`same_path` for a writer to refuse an output
that is one of its inputs; it imports neither xarray nor torch.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def written_atomically(path: str | os.PathLike, private_folder: bool = True) -> Iterator[Path]:
    """A temporary path to write ``path`` to, renamed into place only on success.

    The temporary path lies in a private folder beside ``path`` (same file system, so
    the rename is atomic), which is removed whatever happens: an error, a full disk or
    a ``KeyboardInterrupt`` leaves neither a partial file at ``path`` nor a temporary
    one beside it, and what was at ``path`` before stays as it was. Should a thread
    still be writing when an error propagates, removing the folder keeps it from
    re-creating the file. A folder written replaces one at ``path``, moved into the
    private folder first and deleted with it.

    Parameters
    ----------
    path : str or os.PathLike
        The file or folder to write; its parent folder must exist.
    private_folder : bool
        False for a writer of one file in one thread (a training checkpoint every
        epoch): a temporary file beside ``path`` instead, removed on failure, as a
        folder made and removed costs 1-3 ms a write on a disk mounted with
        ``discard``.

    Yields
    ------
    pathlib.Path
        Where to write: a path of the same name as ``path``, not yet existing (with
        ``private_folder=False``, a hidden empty file beside it).

    Raises
    ------
    IsADirectoryError
        A file was written and ``path`` is a folder (nothing there is changed).

    Examples
    --------
    >>> folder = Path(tempfile.mkdtemp())
    >>> with written_atomically(folder / "a.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> sorted(p.name for p in folder.iterdir()), (folder / "a.txt").read_text()
    (['a.txt'], 'done')
    >>> with written_atomically(folder / "a.txt") as tmp:
    ...     _ = tmp.write_text("half")
    ...     raise OSError(27, "File too large")
    Traceback (most recent call last):
    ...
    OSError: [Errno 27] File too large
    >>> sorted(p.name for p in folder.iterdir()), (folder / "a.txt").read_text()
    (['a.txt'], 'done')
    >>> with written_atomically(folder / "a.txt", private_folder=False) as tmp:
    ...     _ = tmp.write_text("again")
    >>> sorted(p.name for p in folder.iterdir()), (folder / "a.txt").read_text()
    (['a.txt'], 'again')
    """
    target = Path(path)
    if not private_folder:
        descriptor, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(descriptor)
        try:
            yield Path(name)
            os.replace(name, target)
        finally:
            Path(name).unlink(missing_ok=True)
        return
    workdir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        tmp = workdir / target.name
        yield tmp
        replaced = workdir / "replaced"
        if tmp.is_dir() and target.is_dir() and not target.is_symlink():
            os.replace(target, replaced)
        try:
            os.replace(tmp, target)
        except BaseException:  # the folder written before goes back where it was
            if replaced.exists():
                os.replace(replaced, target)
            raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def same_path(first: str | os.PathLike, second: str | os.PathLike) -> bool:
    """Whether two paths name one file or folder, however spelt or linked.

    Parameters
    ----------
    first, second : str or os.PathLike
        Paths, existing or not: ``./a.nc``, ``../x/a.nc`` and a link to ``a.nc`` are
        ``a.nc``; a path that does not exist is compared by its absolute form, its
        links resolved.

    Returns
    -------
    bool
        True where writing ``first`` replaces ``second``.

    Examples
    --------
    >>> folder = Path(tempfile.mkdtemp())
    >>> (folder / "a.nc").touch()
    >>> (folder / "link.nc").symlink_to(folder / "a.nc")
    >>> same_path(folder / "link.nc", f"{folder}/./a.nc"), same_path(folder / "b", folder / "a.nc")
    (True, False)
    >>> same_path(folder / "new.pt", folder / ".." / folder.name / "new.pt")
    True
    """
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist (yet)
        return Path(first).resolve() == Path(second).resolve()
