"""Torch threads in the threads of dask's threaded scheduler: the cores shared out.

A thread that runs a torch operation takes the process's torch thread count at that
moment (one per core by default): on dask's threaded scheduler, with one thread per
core, every block of a lazy ``est.emulate(ds)`` would then run on as many torch
threads as there are cores, the square of the cores in all. The blocks that climlatent
hands to dask run inside `shared_cores`: a thread other than the main one runs the
block on ``cores // dask threads`` torch threads (at least one) and gets the process's
count back when the block ends, whether it returns or raises. The main thread (dask's
synchronous scheduler, eager calls) and the workers of ``dask.distributed`` (whose
processes start with one thread per worker, see `climlatent.batch.scheduler`) are left
as they are; so are threads configured by `configure_thread` (the pool of
`climlatent.batch.scheduler`).

``torch.set_num_threads`` also sets the count that threads started later take: a share
set for good by a block would reach every thread the process starts afterwards (a thread
pool started after a lazy emulation would run on one torch thread), and a user's own
thread computing a lazy result on dask's synchronous scheduler would keep it.

The thread count can change the last bit of a torch model's output: MKL and oneDNN
sum a small batch (the few rows left at the end of a block) in another order on one
thread than on two. So a dense torch model (LLAAE, ProxyLatentDownscaler) run eagerly,
on the synchronous scheduler, or with other worker or ``torch_threads`` counts agrees
to float32 rounding (one ulp, 1.2e-7 relative, in about 5e-5 of the values measured),
not bit for bit; runs with the same setting are bitwise equal, and so are
EOFRegression and ProxyDownscaler under any setting.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

import dask
import dask.system

__all__ = ["configure_thread", "shared_cores"]

_THIS_THREAD = threading.local()


class _Blocks:
    """The blocks running inside `shared_cores`, and the process's count outside them.

    A thread started while a block runs takes that block's share as its own count
    (``torch.set_num_threads`` sets the count of threads started later): each block
    therefore gives its thread back the count the process had when the first of the
    blocks running together started, not the count its thread had on entry.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.process = 0


_BLOCKS = _Blocks()


def configure_thread(n_threads: int) -> None:
    """Set the torch thread count of the calling thread, for good.

    Parameters
    ----------
    n_threads : int
        Torch (intra-op) threads of this thread's operations.

    Examples
    --------
    >>> import torch
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> with ThreadPoolExecutor(1, initializer=configure_thread, initargs=(1,)) as pool:
    ...     pool.submit(torch.get_num_threads).result()
    1
    """
    import torch  # here: the numpy estimators (EOFRegression) never load torch

    torch.set_num_threads(n_threads)
    _THIS_THREAD.configured = True


@contextlib.contextmanager
def shared_cores() -> Iterator[None]:
    """Run a block of dask's threaded scheduler on its share of the cores.

    ``dask.system.CPU_COUNT // num_workers`` torch threads (dask's ``num_workers``
    setting, by default one per core), at least one, while the block runs; at its end,
    also when it raises, the thread and the threads started later get back the count
    the process had before the blocks running together started (`_Blocks`). Nothing
    changes on the main thread, in a ``dask.distributed`` worker, in a thread
    configured by `configure_thread`, or while torch is not loaded.

    Examples
    --------
    >>> import torch
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> def block():
    ...     with shared_cores():
    ...         inside = torch.get_num_threads()
    ...     return inside, torch.get_num_threads()
    >>> with dask.config.set(num_workers=2 * dask.system.CPU_COUNT):
    ...     with ThreadPoolExecutor(1) as pool:
    ...         inside, after = pool.submit(block).result()
    >>> inside, after == torch.get_num_threads()
    (1, True)
    """
    torch = sys.modules.get("torch")  # none: no torch in the process (numpy models)
    if (
        torch is None
        or getattr(_THIS_THREAD, "configured", False)
        or threading.current_thread() is threading.main_thread()
        or _in_distributed_worker()
    ):
        yield
        return
    workers = dask.config.get("num_workers", None) or dask.system.CPU_COUNT
    with _BLOCKS.lock:
        if not _BLOCKS.running:  # no share set anywhere: this count is the process's
            _BLOCKS.process = torch.get_num_threads()
        _BLOCKS.running += 1
        torch.set_num_threads(max(1, dask.system.CPU_COUNT // int(workers)))
    try:
        yield
    finally:
        with _BLOCKS.lock:
            _BLOCKS.running -= 1
            torch.set_num_threads(_BLOCKS.process)


def _in_distributed_worker() -> bool:
    """Whether the calling thread runs a task of a ``dask.distributed`` worker."""
    try:
        from distributed import get_worker
    except ImportError:
        return False
    try:
        get_worker()
    except ValueError:
        return False
    return True
