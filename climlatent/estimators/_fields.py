"""Gridded variables as channel images: checks, stacking and standardisation.

The xarray side of the image estimators (`~climlatent.VAE`, `~climlatent.VED`):
variables sharing their dims, the last two being the grid, become the channels of
``(sample, channel, y, x)`` arrays, each channel standardised with its own mean and
standard deviation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from climlatent.checks import get_variable
from climlatent.errors import InputDataError
from climlatent.fitted_range import FittedRange


def variable_names(names: str | Sequence[str]) -> list[str]:
    """One name or several, as a list.

    Examples
    --------
    >>> variable_names("p"), variable_names(("p", "u"))
    (['p'], ['p', 'u'])
    """
    return [names] if isinstance(names, str) else list(names)


def gridded_fields(ds: xr.Dataset, names: list[str], role: str) -> list[xr.DataArray]:
    """The variables ``names`` of ``ds``, checked to share dims with a 2-D grid last.

    Examples
    --------
    >>> ds = xr.Dataset({"p": (("sample", "y", "x"), np.zeros((2, 3, 3)))})
    >>> [da.name for da in gridded_fields(ds, ["p"], "field")]
    ['p']
    """
    if not names:
        raise InputDataError(f"no {role} variables given")
    fields = [get_variable(ds, name, role) for name in names]
    dims = fields[0].dims
    for da in fields:
        if da.ndim < 3:
            raise InputDataError(
                f"{role} variable {da.name!r} has dims {da.dims}; it needs sample dims and "
                f"2 grid dims"
            )
        if da.dims != dims:
            raise InputDataError(
                f"{role} variable {da.name!r} has dims {da.dims}, but {names[0]!r} has {dims}"
            )
    return fields


def stack_fields(fields: list[xr.DataArray]) -> np.ndarray:
    """``(n, channels, ny, nx)`` float32, refusing NaN/inf with the variable named.

    Examples
    --------
    >>> da = xr.DataArray(np.zeros((2, 3, 3)), dims=("sample", "y", "x"), name="p")
    >>> stack_fields([da, da]).shape
    (2, 2, 3, 3)
    """
    ny, nx = fields[0].shape[-2:]
    arrays = []
    for da in fields:
        values = np.asarray(da.values, dtype=np.float32).reshape(-1, ny, nx)
        n_bad = int((~np.isfinite(values)).sum())
        if n_bad:
            raise InputDataError(f"variable {da.name!r} has {n_bad} NaN/inf value(s)")
        if not len(values):
            raise InputDataError(f"variable {da.name!r} has no samples")
        arrays.append(values)
    return np.stack(arrays, axis=1)


def field_ranges(fields: list[xr.DataArray], role: str, tolerance: float) -> dict[str, list[float]]:
    """Each training field's finite range (outliers refused, see `FittedRange.fit`).

    Examples
    --------
    >>> da = xr.DataArray(np.arange(8.0).reshape(2, 2, 2), dims=("sample", "y", "x"), name="p")
    >>> field_ranges([da], "field", 5.0)
    {'p': [0.0, 7.0]}
    """
    ranges = (FittedRange.fit(da, role, tolerance) for da in fields)
    return {r.name: [r.minimum, r.maximum] for r in ranges}


def check_field_ranges(
    fields: list[xr.DataArray], ranges: dict[str, list[float]], role: str, tolerance: float
) -> None:
    """Refuse new fields with values far outside their training range (see `FittedRange`).

    Examples
    --------
    >>> da = xr.DataArray(np.full((1, 2, 2), 1e30), dims=("sample", "y", "x"), name="p")
    >>> check_field_ranges([da], {"p": [0.0, 7.0]}, "field", 5.0)
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: field variable 'p' has 4 value(s) outside ...
    """
    for da in fields:
        if da.name in ranges:
            FittedRange(str(da.name), *ranges[da.name]).check(da, role, tolerance)


def field_moments(raw: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each channel of ``raw``, refusing constant ones.

    Examples
    --------
    >>> mean, std = field_moments(np.arange(8.0).reshape(2, 1, 2, 2), ["p"])
    >>> float(mean[0]), round(float(std[0]), 3)
    (3.5, 2.291)
    """
    mean = raw.mean(axis=(0, 2, 3), dtype=np.float64)
    std = raw.std(axis=(0, 2, 3), dtype=np.float64)
    constant = [name for name, s in zip(names, std, strict=True) if not s > 0]
    if constant:
        raise InputDataError(f"variable(s) {constant} are constant: nothing to learn")
    return mean, std


def standardise(raw: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(raw - mean) / std`` per channel (axis 1), as float32.

    Examples
    --------
    >>> standardise(np.full((1, 1, 2, 2), 3.0), np.array([1.0]), np.array([2.0]))[0, 0, 0, 0]
    np.float32(1.0)
    """
    shape = (1, -1, 1, 1)
    return ((raw - mean.reshape(shape)) / std.reshape(shape)).astype(np.float32)


def grid_coords(ds: xr.Dataset, dims: tuple) -> xr.Dataset:
    """The coordinates of ``ds`` along the grid ``dims``, as a Dataset.

    Examples
    --------
    >>> list(grid_coords(xr.Dataset(coords={"x": [0, 1], "t": [5]}), ("y", "x")).coords)
    ['x']
    """
    return xr.Dataset(coords={d: ds[d] for d in dims if d in ds.coords})
