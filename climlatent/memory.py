"""Memory of a long batch run: what it frees returned to the system, not kept by malloc.

glibc keeps memory a computation frees for the next one, and raises its thresholds as
large arrays come and go; over thousands of regions the resident size of a batch run
creeps up by megabytes per region (the arenas of its threads fragmented) although
nothing is held. Both functions do nothing where the C library is not glibc.
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


def return_freed_memory(threshold: int = TRIM_THRESHOLD) -> bool:
    """Have this process's allocator give freed memory back to the system at once.

    The setting ``MALLOC_TRIM_THRESHOLD_=65536``, which ``dask.distributed`` gives its
    worker processes, applied to this process from now on (the environment variable
    only takes effect at start-up): free memory at the top of a heap beyond
    ``threshold`` bytes is returned, and arrays of ``MMAP_THRESHOLD`` bytes or more are
    always mapped on their own.
    ``climlatent emulate`` and ``climlatent downscale`` call it.

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
    if not _GLIBC:
        return False
    libc = ctypes.CDLL(None)
    settings = {_M_MMAP_THRESHOLD: MMAP_THRESHOLD, _M_TRIM_THRESHOLD: threshold}
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
