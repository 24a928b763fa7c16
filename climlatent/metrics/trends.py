"""Linear trends along time, per cell, and the error of a predicted field's trends.

A downscaled scenario should warm (or green) as fast as the truth, cell by cell. The
trend of a cell is the least-squares slope of its values against the decimal year of
each time step (``year + (day of year - 1 + hour / 24) / days in year``, any CF calendar), in
units per decade; the trend error is the area-weighted root mean square over the
grid of the predicted minus the true trends (:func:`climlatent.metrics.rmse`).
"""

from __future__ import annotations

import xarray as xr

from climlatent.errors import InputDataError
from climlatent.grid import _is_datetime_like
from climlatent.metrics.skill import as_score, in_float64, paired, rmse

__all__ = ["linear_trend", "trend_error"]

YEARS_PER_DECADE = 10.0


def linear_trend(da: xr.DataArray, dim: str = "time") -> xr.DataArray:
    """Least-squares linear trend along the time dim ``dim``, per cell, per decade.

    Parameters
    ----------
    da : xr.DataArray
        Field with a datetime or cftime coordinate ``dim``.
    dim : str
        The time dim.

    Returns
    -------
    xr.DataArray
        The slope of ``da`` against decimal years times 10, without ``dim``; NaN
        where a cell has a missing value along ``dim``. Units ``"<units> (10 year)-1"``
        (UDUNITS has no decade) when ``da`` has units, and no other attribute of ``da``
        or of its time coordinate (a trend is not the field: `as_score`).

    Raises
    ------
    InputDataError
        ``dim`` is not a dim of ``da``, holds no dates, or has fewer than 2 steps.

    Examples
    --------
    >>> import xarray as xr
    >>> time = xr.date_range("2000-01-01", periods=3, freq="YS", calendar="noleap",
    ...     use_cftime=True)
    >>> warming = xr.DataArray([280.0, 280.1, 280.2], dims="time", coords={"time": time},
    ...     attrs={"units": "K"})
    >>> trend = linear_trend(warming)
    >>> round(float(trend), 12), trend.attrs["units"]
    (1.0, 'K (10 year)-1')
    """
    if dim not in da.dims:
        raise InputDataError(f"variable {da.name!r} has no dim {dim!r} (dims: {da.dims})")
    time = da[dim]
    if da.sizes[dim] < 2:
        raise InputDataError(f"variable {da.name!r}: a trend along {dim!r} needs 2 steps or more")
    if not _is_datetime_like(time):
        raise InputDataError(
            f"time coordinate {dim!r} of variable {da.name!r} holds no dates (decode it: "
            "xarray's decode_cf, or open the file with decode_times=True)"
        )
    day = time.dt.dayofyear - 1 + (time.dt.hour + time.dt.minute / 60) / 24
    years = time.dt.year + day / time.dt.days_in_year
    anomaly = years - years.mean()
    values = in_float64(da)  # a float16 field's mean overflows: its trend was NaN
    slope = (anomaly * (values - values.mean(dim))).sum(dim, skipna=False) / (anomaly**2).sum()
    units = da.attrs.get("units")
    per_decade = None if units is None else f"{units} (10 year)-1"
    return as_score(YEARS_PER_DECADE * slope, f"linear trend along {dim}", per_decade)


def trend_error(prediction: xr.DataArray, truth: xr.DataArray, dim: str = "time") -> xr.DataArray:
    """Area-weighted RMS over the grid of the per-cell trend error along ``dim``.

    Parameters
    ----------
    prediction, truth : xr.DataArray
        Fields on the same latitude/longitude grid and time coordinate ``dim``.
    dim : str
        The time dim.

    Returns
    -------
    xr.DataArray
        ``sqrt(area_mean((trend(prediction) - trend(truth)) ** 2))`` per decade, in
        the truth's units per decade, over the cells where both trends are finite
        (:func:`linear_trend`); other dims (e.g. ``member``) are kept.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> time = xr.date_range("2000-01-01", periods=20, freq="YS", calendar="360_day",
    ...     use_cftime=True)
    >>> truth = xr.DataArray(np.zeros((20, 2, 2)), dims=("time", "lat", "lon"),
    ...     coords={"time": time, "lat": [0.0, 1.0], "lon": [0.0, 1.0]}, attrs={"units": "K"})
    >>> warming = truth + 0.03 * np.arange(20.0)[:, None, None]  # 0.3 K per decade
    >>> error = trend_error(warming, truth)
    >>> round(float(error), 12), error.attrs["units"]
    (0.3, 'K (10 year)-1')
    """
    prediction, truth = paired(prediction, truth)
    return rmse(linear_trend(prediction, dim), linear_trend(truth, dim)).assign_attrs(
        long_name=f"root mean squared error of the linear trend along {dim}"
    )
