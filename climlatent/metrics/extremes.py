"""Extremes of gridded fields: annual maxima, per-cell GEV fits and return levels.

The GEV shape follows the climate sign convention, as in
`climlatent.models.latents`: ``shape_xi > 0`` is a heavy upper tail (Frechet),
``shape_xi = 0`` Gumbel, ``shape_xi < 0`` a bounded upper tail.
`scipy.stats.genextreme`, which does the fitting, uses ``c = -shape_xi``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import xarray as xr
from scipy import optimize, special, stats

from climlatent.checks import calendar_of
from climlatent.errors import InputDataError
from climlatent.grid import find_time
from climlatent.metrics.skill import as_score
from climlatent.units import difference_units

__all__ = ["GEV_PARAMETERS", "annual_maxima", "fit_gev", "return_level"]

GEV_PARAMETERS = ("loc", "scale", "shape_xi")


def annual_maxima(
    da: xr.DataArray,
    time_dim: str | None = None,
    partial_years: bool = False,
    max_missing: float = 0.0,
) -> xr.DataArray:
    """Block maxima per calendar year, on any CF calendar (cftime included).

    Parameters
    ----------
    da : xr.DataArray
        Field with a decoded time axis; other dims (grid, member) are kept.
    time_dim : str, optional
        Name of the time dimension; found through CF metadata (a ``time`` coordinate,
        ``axis="T"``, datetime values, or the name ``time``) by default.
    partial_years : bool
        Keep the maximum of a year the time axis does not cover whole (its first
        step one step or more after 1 January, its last more than one step before
        the next, or two of its steps 1.5 steps or more apart: a step missing
        within it; steps counted in the calendar's months: a quarter is 3 whether
        of 90 or 92 days, a year 12 whether of 365 or 366): the maximum of a part
        of a year is not an annual maximum, and fitted as one it biases the GEV
        low. By default such a year is NaN, which `fit_gev` skips.
    max_missing : float
        The largest share of a year's time steps that may be NaN in a cell for its
        maximum to count: the maximum of the days left is lower than the year's (a
        cell missing every other day gave half a year's maximum). By default none may
        be missing (xclim's ``"any"`` policy); 1 keeps every year with a valid value.

    Returns
    -------
    xr.DataArray
        Maxima along a new ``year`` dimension (NaN for a cell's year with more
        missing steps than ``max_missing`` allows, and for an incomplete year unless
        ``partial_years``),
        with the attributes of ``da`` and ``"time: maximum"`` appended to
        ``cell_methods``.

    Raises
    ------
    InputDataError
        ``da`` has no time dimension, or its time axis is not decoded to dates.
    ValueError
        ``max_missing`` is not in [0, 1].

    Examples
    --------
    >>> import xarray as xr
    >>> t = xr.date_range("2000-01-01", periods=720, calendar="360_day", use_cftime=True)
    >>> pr = xr.DataArray(range(720), dims="time", coords={"time": t}, name="pr")
    >>> annual_maxima(pr).values.tolist()
    [359.0, 719.0]
    >>> gappy = pr.where(pr % 2 == 0)  # every other day missing
    >>> annual_maxima(gappy).values.tolist(), annual_maxima(gappy, max_missing=0.5).values.tolist()
    ([nan, nan], [358.0, 718.0])
    """
    time = time_dim or find_time(da)
    if time is None or time not in da.dims:
        raise InputDataError(
            f"variable {da.name!r} has no time dimension{f' {time!r}' if time else ''} "
            f"(dims: {da.dims}); "
            "pass time_dim= or add CF metadata (axis='T') to the time coordinate"
        )
    if not 0.0 <= max_missing <= 1.0:
        raise ValueError(f"max_missing must be a share in [0, 1], got {max_missing!r}")
    calendar_of(da, time)  # decoded dates on a CF calendar
    # a plain label: with the time attributes it inherits, readers took the year
    # numbers for times without units (iris; the CF checker called them an error)
    years = da[time].dt.year.rename("year")
    years.attrs = {"long_name": "year"}
    maxima = da.groupby(years).max(time, keep_attrs=True)
    missing = da.isnull().groupby(years).mean(time)
    maxima = maxima.where(missing <= max_missing).assign_attrs(maxima.attrs)
    complete = _complete_years(da[time], maxima["year"].values)
    if not (partial_years or complete.all()):
        maxima = maxima.where(xr.DataArray(complete, dims="year")).assign_attrs(maxima.attrs)
    methods = " ".join(filter(None, (da.attrs.get("cell_methods"), f"{time}: maximum")))
    return maxima.assign_attrs(cell_methods=methods)


def _complete_years(time: xr.DataArray, years: np.ndarray) -> np.ndarray:
    """Whether the steps of each of ``years`` span it, to within one time step.

    Counted in months of the calendar, whole from 1 January, so that a calendar step
    is one length in any year: a quarter (90 to 92 days) is 3 months, a year (365 or
    366 days) 12. A day is 1/31 of a month at the turn of every year (1/30 in a
    ``360_day`` calendar), where the ends are tested. Within the year a day is 1/28
    to 1/31 of a month, so two steps are taken for consecutive while less than 1.5
    steps apart (the median step, 1/31 of a month for daily data: February's 1/28
    passes, a missing day's 2/31 does not).
    """
    t = time.dt
    day = t.day - 1 + (t.hour + (t.minute + t.second / 60) / 60) / 24
    first_year = int(t.year.min())
    months = np.asarray(12 * (t.year - first_year) + t.month - 1 + day / t.days_in_month, float)
    distinct = np.unique(months)
    step = float(np.median(np.diff(distinct))) if distinct.size > 1 else np.inf
    round_off = 1e-9 * step  # of the fractions of months: a step is no less, no more
    of_step = t.year.values
    complete = np.ones(len(years), bool)
    for i, year in enumerate(years):
        inside = np.sort(months[of_step == year])
        start = 12.0 * (int(year) - first_year)
        begun = inside[0] - start < step - round_off
        gapless = inside.size < 2 or np.diff(inside).max() < 1.5 * step
        complete[i] = begun and gapless and start + 12 - inside[-1] <= step + round_off
    return complete


def _lmoment_estimates(x: np.ndarray) -> tuple[float, float, float]:
    """GEV ``(c, loc, scale)`` in scipy's sign from sample L-moments (Hosking 1985)."""
    x = np.sort(x)
    n = x.size
    rank = np.arange(n)
    b1 = np.mean(rank / (n - 1) * x)
    b2 = np.mean(rank * (rank - 1) / ((n - 1) * (n - 2)) * x)
    l1, l2, l3 = x.mean(), 2 * b1 - x.mean(), 6 * b2 - 6 * b1 + x.mean()
    z = 2 / (3 + l3 / l2) - math.log(2) / math.log(3)
    c = float(np.clip(7.8590 * z + 2.9554 * z**2, -0.5, 0.5))  # the approximation's range
    c = c if abs(c) > 1e-6 else 1e-6  # the Gumbel limit, close enough for an estimate
    gamma = special.gamma(1 + c)
    scale = l2 * c / ((1 - 2**-c) * gamma)
    return c, l1 - scale * (1 - gamma) / c, scale


def _fit_cell(x: np.ndarray, method: str, min_years: int) -> tuple[float, float, float]:
    """``(loc, scale, shape_xi)`` of one cell's maxima; NaN if too few or constant."""
    x = np.asarray(x[np.isfinite(x)], np.float64)  # float32 maxima: shape 2e-4 off
    if x.size < max(min_years, 3) or np.ptp(x) == 0:
        return math.nan, math.nan, math.nan
    # fitted standardised: scipy's optimiser stops at absolute tolerances (1e-4), which
    # left an MLE of maxima in kg m-2 s-1 (1e-3) near its start, in mm d-1 converged
    centre, spread = x.mean(), x.std()
    z = (x - centre) / spread
    c, loc, scale = _lmoment_estimates(z)
    if method == "mle":
        c, loc, scale = stats.genextreme.fit(z, c, loc=loc, scale=scale, optimizer=_fmin)
    return centre + spread * loc, spread * scale, -c


def _fmin(func: Callable, x0: np.ndarray, args: tuple = (), disp: int = 0) -> np.ndarray:
    """Nelder-Mead to 1e-8 of the standardised parameters (scipy's default stops at 1e-4)."""
    return optimize.fmin(func, x0, args=args, disp=disp, xtol=1e-8, ftol=1e-10)


def fit_gev(
    maxima: xr.DataArray, dim: str = "year", method: str = "mle", min_years: int = 3
) -> xr.Dataset:
    """Fit a GEV per cell to block maxima along ``dim``.

    Parameters
    ----------
    maxima : xr.DataArray
        Block maxima, e.g. from `annual_maxima`; may be dask-backed (the fit then runs
        lazily, chunk by chunk, with ``dim`` in one chunk).
    dim : str
        Dimension holding the maxima of one cell.
    method : {"mle", "lmoments"}
        Maximum likelihood by `scipy.stats.genextreme.fit`, started from the
        L-moment estimates; or the L-moment estimates themselves, steadier for short
        records (the MLE of a few dozen maxima can give a far-off shape).
    min_years : int
        Cells with fewer valid maxima (at least 3 are needed) or constant maxima get
        NaN parameters; NaNs within a cell are skipped.

    Returns
    -------
    xr.Dataset
        ``loc`` and ``scale`` (in the units of ``maxima``) and ``shape_xi`` (climate
        sign: > 0 heavy tail), on the other dims of ``maxima``; with their long names
        and units only (parameters are not the field: no ``standard_name``,
        ``cell_methods`` or ``valid_range`` of ``maxima``).

    Raises
    ------
    InputDataError
        ``dim`` is not a dimension of ``maxima``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from scipy import stats
    >>> x = stats.genextreme(c=-0.1, loc=10, scale=2).rvs(200, random_state=0)
    >>> params = fit_gev(xr.DataArray(x, dims="year", attrs={"units": "mm/day"}))
    >>> [round(float(params[p]), 2) for p in GEV_PARAMETERS], params["loc"].units
    ([10.01, 1.96, 0.09], 'mm/day')
    """
    if method not in ("mle", "lmoments"):
        raise ValueError(f"method must be 'mle' or 'lmoments', not {method!r}")
    if dim not in maxima.dims:
        raise InputDataError(
            f"variable {maxima.name!r} has no dimension {dim!r} (dims: {maxima.dims})"
        )
    if maxima.chunks is not None:
        maxima = maxima.chunk({dim: -1})
    params = xr.apply_ufunc(
        _fit_cell,
        maxima,
        input_core_dims=[[dim]],
        output_core_dims=[[], [], []],
        vectorize=True,
        dask="parallelized",
        output_dtypes=[float] * 3,
        kwargs={"method": method, "min_years": min_years},
    )
    units = maxima.attrs.get("units")
    steps = difference_units(units)  # degC: K
    attrs = [
        ("GEV location", units),
        ("GEV scale", steps),
        ("GEV shape (> 0: heavy upper tail; scipy's c = -shape_xi)", "1"),
    ]
    variables = {
        name: as_score(da, *a) for name, da, a in zip(GEV_PARAMETERS, params, attrs, strict=True)
    }
    return xr.Dataset(variables, attrs={"gev_fit_method": method})


def return_level(params: xr.Dataset, return_period: float | Sequence[float] = 20) -> xr.DataArray:
    """Level exceeded on average once every ``return_period`` years.

    The GEV quantile ``1 - 1 / T`` of annual maxima, from `fit_gev` parameters.

    Parameters
    ----------
    params : xr.Dataset
        ``loc``, ``scale`` and ``shape_xi`` (climate sign), as from `fit_gev`.
    return_period : float or sequence of float
        Return period(s) ``T`` in years, each > 1. A sequence adds a
        ``return_period`` dimension (last); a scalar becomes a scalar coordinate.

    Returns
    -------
    xr.DataArray
        The return level, with the ``units`` of ``params["loc"]`` and a long name
        alone (not the field's ``standard_name``, nor a ``valid_range`` it may exceed).

    Raises
    ------
    InputDataError
        ``params`` lacks one of the GEV parameters.

    Examples
    --------
    >>> import xarray as xr
    >>> params = xr.Dataset({"loc": 0.0, "scale": 1.0, "shape_xi": 0.0})
    >>> level = return_level(params, [2, 100])  # Gumbel: -log(-log(1 - 1 / T))
    >>> level.round(3).values.tolist()
    [0.367, 4.6]
    """
    missing = [name for name in GEV_PARAMETERS if name not in params]
    if missing:
        raise InputDataError(f"GEV parameters {missing} are not in the Dataset")
    periods = np.asarray(return_period, dtype=float)
    if not np.all(periods > 1):  # NaN included
        raise ValueError(f"return periods must exceed 1 year, not {return_period}")
    rp = xr.DataArray(periods, dims=("return_period",) * periods.ndim, attrs={"units": "year"})
    rp = rp.assign_coords(return_period=rp)
    level = xr.apply_ufunc(
        lambda loc, scale, xi, q: stats.genextreme.isf(q, -xi, loc, scale),
        params["loc"],
        params["scale"],
        params["shape_xi"],
        1 / rp,
        dask="parallelized",
        output_dtypes=[float],
    )
    units = params["loc"].attrs.get("units")
    return as_score(level.rename("return_level"), "GEV return level", units)
