"""The time axis of a dynamics model (VAEDLM): its values, requested times and units.

The dynamics' time is the time coordinate's value, not a date: a trajectory's
coordinate ``t`` in ``s`` from 0 to 1 at ``fit``. Data given later in other units
(``ms``) is converted to the fitted ones, or refused when it cannot be.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from climlatent.errors import InputDataError
from climlatent.estimators._fields import in_fitted_units
from climlatent.units import in_other_units


def time_values(da: xr.DataArray, need_two: bool) -> np.ndarray:
    """The values of the time coordinate (``da``'s last but one dim), checked.

    Raises
    ------
    InputDataError
        No coordinate, not numeric, not strictly increasing, or fewer than two times
        where ``need_two`` (to fit), naming the variable.

    Examples
    --------
    >>> da = xr.DataArray(np.zeros((3, 2)), dims=("t", "x"), coords={"t": [0, 1, 2]}, name="u")
    >>> time_values(da, need_two=True).tolist()
    [0.0, 1.0, 2.0]
    """
    time = da.dims[-2]
    if time not in da.coords:
        raise InputDataError(f"variable {da.name!r} has no coordinate for its time dim {time!r}")
    values = np.asarray(da[time].values)
    if values.dtype.kind not in "iuf":
        raise InputDataError(
            f"time coordinate {time!r} of variable {da.name!r} must be numeric, "
            f"got dtype {values.dtype}"
        )
    values = values.astype(np.float64)
    if len(values) > 1 and not (np.diff(values) > 0).all():
        raise InputDataError(
            f"time coordinate {time!r} of variable {da.name!r} must increase strictly"
        )
    if need_two and len(values) < 2:
        raise InputDataError(f"variable {da.name!r} needs at least two times to fit")
    return values


def requested_times(times: Any) -> np.ndarray:
    """``times`` asked for by a caller, as a non-empty 1-D float64 array of finite values.

    They become the output's time coordinate, so they must increase strictly: repeated
    or unordered times made a coordinate that the model itself refuses as input.

    Examples
    --------
    >>> requested_times(0.5).tolist()
    [0.5]
    >>> requested_times([0.5, 0.5])
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: times must increase strictly (they are the output's \
time coordinate): [0.5, 0.5]
    """
    values = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if values.ndim != 1 or not len(values) or not np.isfinite(values).all():
        raise InputDataError(f"times must be a non-empty 1-D array of finite numbers: {times}")
    if not np.all(np.diff(values) > 0):
        raise InputDataError(
            f"times must increase strictly (they are the output's time coordinate): {times}"
        )
    return values


def in_model_time_units(
    da: xr.DataArray, name: str, fitted_attrs: dict[str, Any], times: Any
) -> np.ndarray:
    """``times``, in the units of ``da``'s time coordinate ``name``, in the fitted units.

    A coordinate in other units than at ``fit`` (``ms`` for ``s``) is converted; one
    that cannot be (no ``units`` where the fitted coordinate had some, another
    dimension, another reference date of CF ``<units> since <date>``) is refused.

    Examples
    --------
    >>> da = xr.DataArray([0.0, 1.0], dims="t", coords={"t": ("t", [0, 500], {"units": "ms"})})
    >>> in_model_time_units(da, "t", {"units": "s"}, [0, 500]).tolist()
    [0.0, 0.5]
    """
    times = np.asarray(times, np.float64)
    fitted = fitted_attrs.get("units")
    units = da[name].attrs.get("units") if name in da.coords else None
    label = f"time coordinate {name!r} of variable {da.name!r}"
    if fitted is not None and units is None:
        raise InputDataError(
            f"{label} has no 'units' attribute; the model was fitted on {name!r} in "
            f"{fitted!r}: give it its units"
        )
    if not in_other_units(units, fitted):
        return times
    return np.asarray(in_fitted_units(times, units, fitted, label), np.float64)


def time_attrs(fitted_attrs: dict[str, Any], units: Any = None) -> dict[str, Any]:
    """The fitted time coordinate's attributes, with the caller's ``units`` when given.

    Examples
    --------
    >>> time_attrs({"units": "s", "long_name": "time"}, "ms")
    {'units': 'ms', 'long_name': 'time'}
    """
    return fitted_attrs if units is None else {**fitted_attrs, "units": units}
