"""Memory of a long batch run: two policies for what it frees.

glibc keeps memory a computation frees for the next one, and raises its thresholds as
large arrays come and go; over thousands of regions the resident size of a batch run
creeps up by megabytes per region (the arenas of its threads fragmented) although
nothing is held. :func:`return_freed_memory` gives freed memory back at once (peak
memory flat in members and years, the command line's default);
:func:`reuse_freed_memory` keeps it for the next block (about twice as fast, a higher
peak that grows with the length of the run). Where the C library is not
glibc they do nothing.
"""

from __future__ import annotations

import ctypes
import platform
import sys

#: ``M_TRIM_THRESHOLD`` and ``M_MMAP_THRESHOLD``, glibc's ``mallopt`` parameters.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Allocations from this size on are mapped on their own, returned when freed (glibc's
#: initial value, which it otherwise raises as large arrays are freed).
MMAP_THRESHOLD = 128 * 1024
_GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
#: Free memory at the top of a heap beyond this many bytes is returned to the system,
#: the value ``dask.distributed`` gives its worker processes (``MALLOC_TRIM_THRESHOLD_``).
TRIM_THRESHOLD = 64 * 1024
#: For :func:`reuse_freed_memory`: the largest mmap threshold glibc allows (its
#: ``DEFAULT_MMAP_THRESHOLD_MAX`` on 64 bits), which holds a block of
#: `climlatent.batch.lazy.BLOCK_BYTES`, and a trim threshold no region's blocks reach.
REUSE_MMAP_THRESHOLD, REUSE_TRIM_THRESHOLD = 32 * 2**20, 2**30


def return_freed_memory(threshold: int = TRIM_THRESHOLD) -> bool:
    """Have this process's allocator give freed memory back to the system at once.

    The setting ``MALLOC_TRIM_THRESHOLD_=65536``, which ``dask.distributed`` gives its
    worker processes, applied to this process from now on (the environment variable
    only takes effect at start-up): free memory at the top of a heap beyond
    ``threshold`` bytes is returned, and arrays of ``MMAP_THRESHOLD`` bytes or more are
    always mapped on their own.
    ``climlatent emulate`` and ``climlatent downscale`` call it by default
    (``--memory flat``).

    Parameters
    ----------
    threshold : int
        Bytes of free memory a heap may keep at its top.

    Returns
    -------
    bool
        Whether the setting was applied (glibc).

    Examples
    --------
    >>> import platform
    >>> return_freed_memory() == (platform.libc_ver()[0] == "glibc")
    True
    """
    return _mallopt(MMAP_THRESHOLD, threshold)


def reuse_freed_memory() -> bool:
    """Have this process's allocator keep freed memory for the next block.

    Fixes glibc's mmap threshold at ``REUSE_MMAP_THRESHOLD`` and its trim threshold at
    ``REUSE_TRIM_THRESHOLD``: the arrays of a model call (hundreds of kB per batch)
    and of a block (up to 32 MiB) come back from the heap instead of as fresh pages
    that fault in on first touch; each region still returns what it freed once written
    (:func:`release_free_memory`). Measured on 2 cores against
    :func:`return_freed_memory`, side by side (``climlatent bench batch_memory --memory
    flat reuse``): 200 members x 10 years took 34 s instead of 78 s to emulate and 41 s
    instead of 71 s to downscale; the peak resident size was 8-50 % higher and grew
    with the run, to 1.13 (emulate) and 1.16 (downscale) times that of 2 members
    (``climlatent downscale`` of 4 members: 2.5 million page faults and 4.4 s of system
    time -> 0.45 million and 1.6 s).

    Returns
    -------
    bool
        Whether the setting was applied (glibc).

    Examples
    --------
    >>> import platform
    >>> reuse_freed_memory() == (platform.libc_ver()[0] == "glibc")
    True
    """
    return _mallopt(REUSE_MMAP_THRESHOLD, REUSE_TRIM_THRESHOLD)


def _mallopt(mmap_threshold: int, trim_threshold: int) -> bool:
    """Set glibc's mmap and trim thresholds; False where the C library is not glibc."""
    if not _GLIBC:
        return False
    libc = ctypes.CDLL(None)
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
