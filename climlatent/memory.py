"""Memory of a long batch run: what it frees, returned to the system or reused.

glibc keeps memory a computation frees for the next one, and raises its thresholds as
large arrays come and go; over thousands of regions the resident size of a batch run
creeps up by megabytes per region (the arenas of its threads fragmented) although
nothing is held. :func:`use_memory_policy` chooses between giving freed memory back
at once (``"flat"``: peak memory flat in members and years, the command line's
default) and keeping it for the next block (``"reuse"``: about twice as fast, a higher
peak that grows with the length of the run). Where the C library is not glibc the
functions do nothing.
"""

from __future__ import annotations

import ctypes
import platform
import sys

#: ``M_TRIM_THRESHOLD`` and ``M_MMAP_THRESHOLD``, glibc's ``mallopt`` parameters.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
#: ``(mmap threshold, trim threshold)`` of each policy, in bytes. ``flat``: glibc's
#: initial mmap threshold (arrays from 128 KiB up are mapped on their own, returned
#: when freed), and the trim threshold ``dask.distributed`` gives its worker processes
#: (``MALLOC_TRIM_THRESHOLD_=65536``). ``reuse``: the largest mmap threshold glibc
#: allows (``DEFAULT_MMAP_THRESHOLD_MAX`` on 64 bits), which holds a block of
#: `climlatent.batch.lazy.BLOCK_BYTES`, and a trim threshold no region's blocks reach.
POLICIES = {"flat": (128 * 1024, 64 * 1024), "reuse": (32 * 2**20, 2**30)}


def use_memory_policy(policy: str) -> bool:
    """Set what this process's allocator does with the memory a batch run frees.

    ``"flat"`` gives it back to the system at once: free memory at the top of a heap
    beyond 64 KiB is returned and arrays from 128 KiB up are mapped on their own (as
    ``MALLOC_TRIM_THRESHOLD_=65536`` would at start-up), so that the peak does not
    grow with members or years; but every such array, a model's tensors of each batch
    among them, is fresh pages that fault in on first touch. ``"reuse"`` keeps freed
    memory on the heap for the next block. Under either, each region returns what it
    freed once written (:func:`release_free_memory`). Measured on 2 cores, side by
    side (``climlatent bench batch_memory --memory flat reuse``): 200 members x 10
    years took 34 s instead of 78 s to emulate and 41 s instead of 71 s to downscale
    with ``"reuse"``; its peak resident size was 8-50 % higher and grew with the run,
    to 1.13 (emulate) and 1.16 (downscale) times that of 2 members, against 1.05 and
    1.06 (``climlatent downscale`` of 4 members: 2.5 million page faults and 4.4 s of
    system time with ``"flat"``, 0.45 million and 1.6 s with ``"reuse"``).
    ``climlatent emulate`` and ``climlatent downscale`` set it (``--memory``).

    Parameters
    ----------
    policy : {"flat", "reuse"}
        A key of ``POLICIES``.

    Returns
    -------
    bool
        Whether the setting was applied (glibc).

    Raises
    ------
    ValueError
        An unknown policy (the known ones are named).

    Examples
    --------
    >>> import platform
    >>> use_memory_policy("flat") == (platform.libc_ver()[0] == "glibc")
    True
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown memory policy {policy!r}; one of {', '.join(POLICIES)}")
    if not _GLIBC:
        return False
    libc = ctypes.CDLL(None)
    mmap_threshold, trim_threshold = POLICIES[policy]
    settings = {_M_MMAP_THRESHOLD: mmap_threshold, _M_TRIM_THRESHOLD: trim_threshold}
    return all(libc.mallopt(param, value) == 1 for param, value in settings.items())


def release_free_memory() -> bool:
    """Return the free pages of every heap to the system (glibc's ``malloc_trim``).

    Also the pages in the middle of a heap, which a trim threshold cannot reach;
    :func:`climlatent.zarr_store.write_zarr` calls it after each region, so that a
    run's resident size after a region is what it held before it.

    Returns
    -------
    bool
        Whether memory was returned (False elsewhere than glibc).

    Examples
    --------
    >>> import numpy as np, platform
    >>> blocks = [np.ones(10_000) for _ in range(1000)]  # 80 kB each, on the heap
    >>> del blocks[::2]  # 500 holes of whole pages
    >>> release_free_memory() == (platform.libc_ver()[0] == "glibc")
    True
    """
    return _GLIBC and ctypes.CDLL(None).malloc_trim(0) == 1
