"""The allocator settings of a batch run: freed blocks reused, not faulted in afresh."""

import platform
import subprocess
import sys

import pytest

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc")

#: After SETTING, take a 16 MiB array, write every page and free it, 20 times; print
#: the minor page faults of the first time and of the 19 others.
_LOOP = """
import resource, numpy as np
{setting}
faults = []
for _ in range(20):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = np.empty(2**21)
    block.fill(1.0)
    del block
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(faults[0], sum(faults[1:]))
"""


def _faults(setting: str) -> tuple[int, int]:
    code = _LOOP.format(setting=setting)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first, others = map(int, out.stdout.split())
    return first, others


@glibc
def test_a_freed_block_is_reused_without_faulting_in_again():
    first, others = _faults("import climlatent.memory as m\nm.use_memory_policy('reuse')")
    assert first >= 8  # 16 MiB: 8 huge pages at least
    assert others < 19  # not one fresh page per block


@glibc
def test_returned_blocks_fault_in_afresh_each_time():
    # The flat policy (as MALLOC_TRIM_THRESHOLD_=65536, which dask's nanny gives its
    # workers): the comparison the test above stands on.
    first, others = _faults("import climlatent.memory as m\nm.use_memory_policy('flat')")
    assert others >= 19 * 8  # 8 huge pages at least per block


def test_an_unknown_policy_is_refused_naming_the_known_ones():
    from climlatent.memory import use_memory_policy

    with pytest.raises(ValueError, match="unknown memory policy 'fast'; one of flat, reuse"):
        use_memory_policy("fast")
