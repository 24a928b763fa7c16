"""Torch threads in the threads of dask's threaded scheduler: the cores shared out.

A thread that runs a torch operation takes the process's torch thread count at that
moment (one per core by default) and keeps it: on dask's threaded scheduler, with one
thread per core, every block of a lazy ``est.emulate(ds)`` would then run on as many
torch threads as there are cores, the square of the cores in all. The blocks that
climlatent hands to dask call `share_cores` first: a thread of the threaded scheduler
not configured yet is set to ``cores // dask threads`` torch threads (at least one),
once. The main thread (dask's synchronous scheduler, eager calls) and the workers of
``dask.distributed`` (whose processes start with one thread per worker, see
`climlatent.batch.scheduler`) are left as they are; so are threads configured by
`configure_thread` (the pool of `climlatent.batch.scheduler`).

``torch.set_num_threads`` also sets the count that threads started later take; the
main thread, which has its own, keeps it.

The thread count can change the last bit of a torch model's output: MKL and oneDNN
sum a small batch (the few rows left at the end of a block) in another order on one
thread than on two. So a dense torch model (LLAAE, ProxyLatentDownscaler) run eagerly,
on the synchronous scheduler, or with other worker or ``torch_threads`` counts agrees
to float32 rounding (one ulp, 1.2e-7 relative, in about 5e-5 of the values measured),
not bit for bit; runs with the same setting are bitwise equal, and so are
EOFRegression and ProxyDownscaler under any setting.
"""

from __future__ import annotations

import sys
import threading

import dask
import dask.system

__all__ = ["configure_thread", "share_cores"]

_THIS_THREAD = threading.local()


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


def share_cores() -> None:
    """Give a thread of dask's threaded scheduler its share of the cores, once.

    ``dask.system.CPU_COUNT // num_workers`` torch threads (dask's ``num_workers``
    setting, by default one per core), at least one. Nothing happens on the main
    thread, in a ``dask.distributed`` worker, in a thread already configured, or
    while torch is not loaded.

    Examples
    --------
    >>> import torch
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> def block():
    ...     share_cores()
    ...     return torch.get_num_threads()
    >>> with dask.config.set(num_workers=dask.system.CPU_COUNT):
    ...     with ThreadPoolExecutor(1) as pool:
    ...         pool.submit(block).result()
    1
    """
    if getattr(_THIS_THREAD, "configured", False) or "torch" not in sys.modules:
        return  # configured, or no torch in the process (numpy models): nothing to share
    if threading.current_thread() is threading.main_thread() or _in_distributed_worker():
        _THIS_THREAD.configured = True
        return
    workers = dask.config.get("num_workers", None) or dask.system.CPU_COUNT
    configure_thread(max(1, dask.system.CPU_COUNT // int(workers)))


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
