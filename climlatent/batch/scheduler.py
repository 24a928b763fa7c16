"""Where batch work runs: the threaded scheduler, a LocalCluster or a cluster by address."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import dask
import dask.local
import dask.system
import dask.threaded
import torch

from climlatent.dask_threads import configure_thread
from climlatent.errors import ClimlatentError, require_extra
from climlatent.graph_node import active_client

if TYPE_CHECKING:
    from distributed import Client


# dask's own pool class (it carries context variables into tasks) where dask has one
_POOL_CLASS = getattr(dask.threaded, "ContextAwareThreadPoolExecutor", ThreadPoolExecutor)


class SchedulerError(ClimlatentError, ConnectionError):
    """The dask scheduler named for a batch run cannot be reached."""


@contextlib.contextmanager
def scheduler(
    address: str = "threads",
    *,
    n_workers: int | None = None,
    torch_threads: int = 1,
    processes: bool = True,
    timeout: float = 10.0,
) -> Iterator[Client | None]:
    """Run the dask computations of the block on threads, a local cluster or a scheduler.

    Parameters
    ----------
    address : str
        ``"threads"`` (dask's threaded scheduler, on a pool of its own for the
        duration), ``"local"`` (a
        ``dask.distributed.LocalCluster`` of single-threaded workers) or the address
        of a running scheduler (``"tcp://host:8786"``).
    n_workers : int, optional
        Threads, or workers of the local cluster (default: dask's, from the cores).
    torch_threads : int
        Torch threads per worker, set on every worker by a worker plugin (on threads,
        by each thread of the pool as it starts, and in this process), so that workers
        do not oversubscribe the cores.
    processes : bool
        Local-cluster workers in separate processes (else in threads of this one).
    timeout : float
        Seconds to wait for the scheduler at ``address`` to answer.

    Yields
    ------
    distributed.Client or None
        The client; None on the threaded scheduler.

    Raises
    ------
    SchedulerError
        The scheduler at ``address`` does not answer within ``timeout`` seconds.

    Examples
    --------
    >>> with scheduler("threads", n_workers=2) as client:
    ...     print(client, dask.array.ones(4, chunks=2).sum().compute())
    None 4.0
    """
    with contextlib.ExitStack() as stack:
        stack.callback(torch.set_num_threads, torch.get_num_threads())
        if address == "threads":
            torch.set_num_threads(torch_threads)
            workers = n_workers or dask.system.CPU_COUNT
            pool = stack.enter_context(_torch_thread_pool(workers, torch_threads))
            settings = {"scheduler": "threads", "pool": pool, "num_workers": workers}
            stack.enter_context(dask.config.set(settings))
            yield None
            return
        require_extra("distributed", "dask", f"the dask scheduler {address!r}")
        from distributed import Client

        if address == "local":
            stack.enter_context(dask.config.set(_worker_environ()))
            client = Client(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=processes,
                dashboard_address=":0",
            )
        else:
            try:
                client = Client(address, timeout=timeout)
            except (OSError, ValueError) as err:
                reason = " ".join(str(err).split())
                raise SchedulerError(
                    f"cannot reach the dask scheduler at {address!r} within {timeout:g} s: {reason}"
                ) from err
        stack.enter_context(client)
        client.register_plugin(_torch_threads_plugin(torch_threads))
        yield client


def _torch_thread_pool(n_workers: int, torch_threads: int) -> ThreadPoolExecutor:
    """A fresh pool of ``n_workers`` threads, each set to ``torch_threads`` torch threads.

    dask's threaded scheduler keeps its pools for the life of the process, and a thread
    that has run a torch operation keeps the torch thread count it had then: a later
    ``torch.set_num_threads`` in the main thread does not reach it. A pool warmed with
    several torch threads each (a first ``est.downscale(ds)`` on dask's default pool,
    with torch's default of one thread per core) would oversubscribe the cores by that
    factor for the rest of the session. A pool of its own, whose threads set their
    count as they start, cannot.
    """
    return _POOL_CLASS(n_workers, initializer=configure_thread, initargs=(torch_threads,))


def _worker_environ() -> dict[str, dict]:
    """The environment of new dask worker processes, less ``MALLOC_TRIM_THRESHOLD_``.

    distributed sets it (to 64 KiB) so that workers hand freed memory back to the
    system; but any trim threshold also pins glibc's mmap threshold at 128 KiB, so
    every larger tensor of a model call is a fresh mapping whose pages fault in on
    first touch. Measured on 2 cores: a 50 -> 5000 linear layer ran 2.3 times slower
    in such a worker than in a thread, and ``emulate_to_zarr`` of 4 members on one
    worker took 9.4 s with it, 6.4 s without. Peak memory stays bounded by the blocks
    in flight.

    Examples
    --------
    >>> import distributed
    >>> "MALLOC_TRIM_THRESHOLD_" in _worker_environ()["distributed.nanny.pre-spawn-environ"]
    False
    """
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return {"distributed.nanny.pre-spawn-environ": environ}


def _torch_threads_plugin(n_threads: int) -> Any:
    """A worker plugin setting the torch thread count of each worker as it starts."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class TorchThreads(WorkerPlugin):
        name = "climlatent-torch-threads"

        def setup(self, worker: Any) -> None:
            torch.set_num_threads(n_threads)

    return TorchThreads()


def worker_count() -> int:
    """The workers dask computes on now: a client's threads, else the threaded pool's.

    Examples
    --------
    >>> with scheduler("threads", n_workers=3):
    ...     worker_count()
    3
    >>> with dask.config.set(scheduler="synchronous"):
    ...     worker_count()
    1
    """
    client = active_client()
    if client is not None:
        return max(1, sum(client.nthreads().values()))
    if dask.base.get_scheduler() is dask.local.get_sync:
        return 1
    # the threaded pool's own default: the cores this process may use (affinity, cgroups)
    return max(1, int(dask.config.get("num_workers", None) or dask.system.CPU_COUNT))
