"""Compare outputs whose provenance lines carry the time they were written."""

import re

import netCDF4
import numpy as np
import xarray as xr

from climlatent.io import to_netcdf
from climlatent.physical_bounds import CLIPPED_ATTR


def untimed(history: str) -> list[str]:
    """The history lines without their leading timestamps."""
    return [line.split(" ", 1)[1] for line in history.splitlines()]


def written_and_read(da: xr.DataArray, folder) -> tuple[np.ndarray, dict]:
    """``da`` written by `to_netcdf`, read back by netCDF4 as CF readers read it.

    Its values (NaN where missing: a fill value, or beyond the ``valid_range``) and its
    attributes in the file.
    """
    path = to_netcdf(da.rename("x"), folder / f"{da.name or 'x'}.nc")
    with netCDF4.Dataset(path) as nc:
        return np.ma.filled(nc["x"][:].astype(float), np.nan), nc["x"].__dict__


def _bound_phrases(note: str) -> list[str]:
    return re.findall(r"(?:below|above) the physical bound \S+ [^(,;]*?(?= \(| set)", note)


def assert_identical_untimed(a: xr.Dataset, b: xr.Dataset) -> None:
    """``xr.testing.assert_identical``, the history's timestamps aside (seconds may tick).

    A lazy output's record of values set to a physical bound is uncounted: it matches
    an eager output's counted record of the same bounds, or none (nothing was beyond).
    """
    a, b = a.copy(), b.copy()
    assert untimed(a.attrs.pop("history")) == untimed(b.attrs.pop("history"))
    for name in set(a.data_vars) & set(b.data_vars):
        notes = [a[name].attrs.get(CLIPPED_ATTR), b[name].attrs.get(CLIPPED_ATTR)]
        lazy = [note for note in notes if note and note.endswith("uncounted")]
        if lazy and lazy != notes:
            counted = [note for note in notes if note not in lazy]
            if counted[0] is not None:
                assert set(_bound_phrases(counted[0])) <= set(_bound_phrases(lazy[0])), notes
            a[name].attrs.pop(CLIPPED_ATTR, None)
            b[name].attrs.pop(CLIPPED_ATTR, None)
    xr.testing.assert_identical(a, b)
