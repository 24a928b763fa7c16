"""Compare outputs whose provenance lines carry the time they were written."""

import xarray as xr


def untimed(history: str) -> list[str]:
    """The history lines without their leading timestamps."""
    return [line.split(" ", 1)[1] for line in history.splitlines()]


def assert_identical_untimed(a: xr.Dataset, b: xr.Dataset) -> None:
    """``xr.testing.assert_identical``, the history's timestamps aside (seconds may tick)."""
    a, b = a.copy(), b.copy()
    assert untimed(a.attrs.pop("history")) == untimed(b.attrs.pop("history"))
    xr.testing.assert_identical(a, b)
