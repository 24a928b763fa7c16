"""Boundary checks on input Datasets, each raising a message that names what to fix.

Estimators run these once, at the boundary, before any numerical work (the xsdba
habit): a variable missing from the Dataset, an empty selection, an undecoded or
unknown calendar, a time axis that is not sorted, proxy and target on different time
axes, an all-NaN field.
"""

from __future__ import annotations

import cftime
import numpy as np
import xarray as xr

from climlatent.errors import InputDataError
from climlatent.grid import check_monotonic, find_grid, find_time

KNOWN_CALENDARS = frozenset(
    {
        "standard",
        "gregorian",
        "proleptic_gregorian",
        "noleap",
        "365_day",
        "all_leap",
        "366_day",
        "360_day",
        "julian",
    }
)


def get_variable(ds: xr.Dataset, name: str, role: str) -> xr.DataArray:
    """Return ``ds[name]``, or raise naming the variable, its role and what is there.

    Examples
    --------
    >>> import xarray as xr
    >>> get_variable(xr.Dataset({"psl": ("x", [1.0])}), "pr", "target")
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: target variable 'pr' is not in the Dataset ...
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"expected an xarray.Dataset holding {role} {name!r}, got {type(ds)}")
    if name not in ds.data_vars:
        raise InputDataError(
            f"{role} variable {name!r} is not in the Dataset (data variables: "
            f"{', '.join(map(str, ds.data_vars)) or 'none'})"
        )
    return ds[name]


def calendar_of(da: xr.DataArray, time: str) -> str:
    """CF calendar of the time coordinate ``time`` of ``da``.

    Raises
    ------
    InputDataError
        The time coordinate is not decoded to datetimes (for example an unknown
        calendar kept as numbers), or its calendar is not a CF calendar.

    Examples
    --------
    >>> import xarray as xr
    >>> t = xr.date_range("2000-01-01", periods=3, calendar="360_day", use_cftime=True)
    >>> calendar_of(xr.DataArray([1, 2, 3], dims="time", coords={"time": t}), "time")
    '360_day'
    """
    values = da[time].values
    if values.dtype.kind == "M":
        return "proleptic_gregorian"
    first = values.flat[0] if values.size else None
    if not isinstance(first, cftime.datetime):
        attrs = {**da[time].encoding, **da[time].attrs}
        raise InputDataError(
            f"time coordinate {time!r} of variable {da.name!r} is not decoded to dates "
            f"(units {attrs.get('units')!r}, calendar {attrs.get('calendar')!r}); "
            f"open the data with climlatent.io.open_dataset or decode it with a CF calendar"
        )
    calendar = first.calendar
    if calendar not in KNOWN_CALENDARS:
        raise InputDataError(
            f"time coordinate {time!r} of variable {da.name!r} has unknown calendar "
            f"{calendar!r} (known: {', '.join(sorted(KNOWN_CALENDARS))})"
        )
    return calendar


def check_field(da: xr.DataArray, role: str) -> tuple[str | None, str | None]:
    """Check a field at the boundary; return its time dim and calendar.

    Checks: latitude/longitude found and monotonic, no empty dimension, the time axis
    (if any) decoded on a known calendar and strictly increasing, and at least one
    finite value.

    Parameters
    ----------
    da : xr.DataArray
        The field.
    role : str
        Its role (``"target"``, ``"proxy"``), named in messages.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = xr.date_range("2000-01-01", periods=2, calendar="noleap", use_cftime=True)
    >>> da = xr.DataArray(np.ones((2, 2, 2)), dims=("time", "lat", "lon"), name="tas",
    ...     coords={"time": t, "lat": [0.0, 1.0], "lon": [0.0, 1.0]})
    >>> check_field(da, "target")
    ('time', 'noleap')
    """
    find_grid(da, da.name)
    for dim, size in da.sizes.items():
        if size == 0:
            raise InputDataError(
                f"{role} variable {da.name!r} is empty along dimension {dim!r} "
                f"(an empty selection?)"
            )
    time = find_time(da)
    calendar = None
    if time is not None and time in da.coords:
        calendar = calendar_of(da, time)
        check_monotonic(da[time], da.name)
    if not bool(np.isfinite(da).any()):
        raise InputDataError(f"{role} variable {da.name!r} is all NaN")
    return time, calendar


def check_same_samples(target: xr.DataArray, proxy: xr.DataArray, time: str | None) -> None:
    """Raise unless target and proxy share the time axis (the samples to pair).

    Examples
    --------
    >>> import xarray as xr
    >>> a = xr.DataArray([1.0, 2.0], dims="time", coords={"time": [0, 1]}, name="pr")
    >>> check_same_samples(a, a.rename("psl"), "time")
    >>> check_same_samples(a, a.rename("psl").assign_coords(time=[1, 2]), "time")
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: target 'pr' and proxy 'psl' are on different ...
    """
    if time is None:
        return
    proxy_time = find_time(proxy)
    if proxy_time != time:
        raise InputDataError(
            f"target {target.name!r} and proxy {proxy.name!r} are on different time axes "
            f"({time!r} vs {proxy_time!r}); put them on one time coordinate first"
        )
    a, b = target[time].values, proxy[time].values
    if a.shape != b.shape or not np.all(a == b):
        raise InputDataError(
            f"target {target.name!r} and proxy {proxy.name!r} are on different time axes "
            f"({a.size} vs {b.size} steps, or different dates); align them first"
        )
