"""The fault table: every case against every estimator and the Regridder.

Each case asserts a clean climlatent error or a result equal to the clean run
(max |diff| 0, same NaNs); nothing silently wrong, no raw exception.
"""

import warnings

import pytest

from climlatent.benchmarks import fault_injection as fi

SLOW = {"LLAAE"}  # its fault table trains for seconds per case


@pytest.mark.parametrize(
    "subject",
    [pytest.param(s, marks=[pytest.mark.slow] if s.name in SLOW else []) for s in fi.SUBJECTS],
    ids=[s.name for s in fi.SUBJECTS],
)
def test_no_fault_is_silently_wrong_or_raw(subject):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # float16 overflow, on purpose
        outcomes = fi.table([subject])
    counts = fi.counts(outcomes)
    bad = outcomes[~outcomes["outcome"].isin(["clean error", "correct result"])]
    assert counts["silently wrong"] == counts["raw exception"] == 0, bad.to_string()
    expected = outcomes["expected"].map({"equal": "correct result", "error": "clean error"})
    assert (outcomes["outcome"] == expected).all()
    assert counts["tried"] >= 3
