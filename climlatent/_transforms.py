"""Private helpers of :mod:`climlatent.transforms`: calendar tables, time axis, checks.

Nothing here is public API. The day-of-year tables and :func:`_time_axis` serve
:class:`~climlatent.transforms.Anomalies`; the ``_check_*`` functions raise
:class:`~climlatent.errors.InputDataError` naming the variable (``_label``); ``_like``
puts a result back on its input's coordinates and attributes.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import cf_xarray  # noqa: F401  (registers the ``.cf`` accessor that finds the T axis)
import numpy as np
import xarray as xr

from climlatent.errors import InputDataError
from climlatent.physical_bounds import CLIPPED_ATTR

# Days in the day-of-year table of each calendar. Calendars with leap years use the
# table of a leap year, so a calendar date always has the same slot: 1 March is 61
# every year and slot 60 (29 February) holds leap days only.
_DAYS_IN_TABLE = {"360_day": 360, "noleap": 365, "365_day": 365} | dict.fromkeys(
    ("all_leap", "366_day", "standard", "gregorian", "proleptic_gregorian", "julian"), 366
)
_NOLEAP_MONTHS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MONTH_LENGTHS = {360: (30,) * 12, 365: _NOLEAP_MONTHS, 366: (31, 29, *_NOLEAP_MONTHS[2:])}
_LEAP_DAY_SLOT = 60


def _label(da: xr.DataArray) -> str:
    return repr(da.name) if da.name is not None else "(unnamed)"


def _as_dims(dims: str | Sequence[str]) -> tuple[str, ...]:
    """``dims`` as a tuple of distinct names, at least one (none: nothing was reduced)."""
    names = (dims,) if isinstance(dims, str) else tuple(dims) if isinstance(dims, Sequence) else ()
    if (
        not names
        or not all(isinstance(name, str) for name in names)
        or len(set(names)) < len(names)
    ):
        raise ValueError(f"dims must be one or more distinct dimension names, got {dims!r}")
    return names


def _check_dataarray(da: Any) -> None:
    if not isinstance(da, xr.DataArray):
        raise TypeError(
            f"expected an xarray.DataArray, got {type(da).__name__}; select one variable, "
            "e.g. ds['pr']"
        )


def _check_dims(da: xr.DataArray, dims: Sequence[str]) -> None:
    missing = [dim for dim in dims if dim not in da.dims]
    if missing:
        raise InputDataError(f"variable {_label(da)} has no dimension {missing}; dims {da.dims}")


def _check_aligned(da: xr.DataArray, params: xr.DataArray | xr.Dataset) -> None:
    """Fitted parameters must lie on ``da``'s dimensions, sizes and coordinate values."""
    missing = sorted(set(params.dims) - set(da.dims))
    if missing:
        raise InputDataError(f"variable {_label(da)} lacks dimensions {missing} of the fit")
    try:
        xr.align(da, params, join="exact", copy=False)
    except ValueError as error:
        raise InputDataError(f"variable {_label(da)} is not on the fitted grid: {error}") from None


def _then(out: xr.DataArray, op: Callable, param: xr.DataArray) -> xr.DataArray:
    """``op(out, param)`` for a new ``out`` aligned with ``param``, written into ``out``.

    ``op`` is ``operator.add``, ``sub``, ``mul`` or ``truediv``. In place (no second
    array the size of the field) when ``out`` is in memory and keeps the dtype ``op``
    would give: the same numbers. ``param``'s dims must be among ``out``'s (as
    :func:`_check_aligned` ensures).

    Examples
    --------
    >>> import operator
    >>> out = xr.DataArray([[1.0, 2.0]], dims=("time", "lat")) - 1.0
    >>> _then(out, operator.truediv, xr.DataArray([2.0, 4.0], dims="lat")).values
    array([[0.  , 0.25]])
    """
    if isinstance(out.data, np.ndarray) and np.result_type(out.dtype, param.dtype) == out.dtype:
        in_place = getattr(operator, f"i{op.__name__}")
        in_place(out.variable, param.variable)  # xarray broadcasts by dim name
        return out
    return op(out, param)


def _like(da: xr.DataArray, result: xr.DataArray, units: str | None) -> xr.DataArray:
    """``result``'s values with ``da``'s name, coordinates and attributes.

    A record of values set to a physical bound (``climlatent_clipped``, by an inner
    step of a pipeline) goes with the values.
    """
    out = da.copy(deep=False, data=result.transpose(*da.dims).data)
    out.attrs = dict(da.attrs)
    if CLIPPED_ATTR in result.attrs:
        out.attrs[CLIPPED_ATTR] = result.attrs[CLIPPED_ATTR]
    out.encoding = {}
    if units is not None:
        out.attrs["units"] = units
    return out


def _time_axis(da: xr.DataArray) -> tuple[xr.DataArray, str]:
    """The 1-D time coordinate of ``da`` and its calendar."""
    if "time" in da.dims:
        time = da["time"]
    else:
        try:
            time = da.cf["T"]
        except (KeyError, ValueError):
            raise InputDataError(
                f"variable {_label(da)} has no time axis: no 'time' dimension and no "
                f"coordinate with CF axis 'T' (dims {da.dims})"
            ) from None
    if time.ndim != 1 or time.dims[0] not in da.dims:
        raise InputDataError(f"variable {_label(da)}: time coordinate {time.name!r} is not 1-D")
    try:
        calendar = time.dt.calendar
    except (AttributeError, TypeError):
        declared = time.attrs.get("calendar", time.encoding.get("calendar"))
        hint = f" (calendar attribute {declared!r} not decoded)" if declared else ""
        raise InputDataError(
            f"variable {_label(da)}: time coordinate {time.name!r} holds {time.dtype} values, "
            f"not dates{hint}"
        ) from None
    if calendar not in _DAYS_IN_TABLE:
        raise InputDataError(
            f"variable {_label(da)}: time coordinate {time.name!r} has unsupported calendar "
            f"{calendar!r}; supported: {sorted(_DAYS_IN_TABLE)}"
        )
    return time, calendar


def _circular_window_sum(x: xr.DataArray, dim: str, window: int) -> xr.DataArray:
    """Centred moving sum of ``window`` steps along ``dim``, wrapping around."""
    half = window // 2
    return sum(x.roll({dim: shift}, roll_coords=False) for shift in range(-half, half + 1))


def _clip_round_off(values: np.ndarray, tolerance: float, label: str, kind: str) -> np.ndarray:
    """Set round-off negatives to 0, raise on larger ones; NaN passes through."""
    if np.any(values < -tolerance):
        raise InputDataError(
            f"variable {label} has negative values down to {np.nanmin(values):g}; {kind} needs "
            f"values >= 0 (down to -tolerance={tolerance:g} is taken as round-off)"
        )
    return np.maximum(values, 0)
