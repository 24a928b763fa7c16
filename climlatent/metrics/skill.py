"""Area-weighted skill of a predicted field against the truth.

Every spatial average is weighted by the spherical cell area of the grid
(:func:`climlatent.grid.cell_area`) and skips NaN cells (masked land or ocean), so a
score on a lat/lon grid is not dominated by the many small high-latitude cells.

The fields a score compares must lie on the same coordinates (a prediction on
longitudes -180..180 against a truth on 0..360, or a time axis shifted by a day, is
refused, not scored on the overlap), and every term of a score is taken over the same
points: those where all of the fields are valid (a cell the prediction masks is left
out of the truth's variance as well).

A score is not the field it scores: it gets its own ``long_name`` and ``units``, and
none of the field's other attributes (``standard_name``, ``cell_methods``, ...).
"""

from __future__ import annotations

import functools
import operator

import numpy as np
import pint
import xarray as xr
from cf_xarray.units import units as ureg

from climlatent.errors import InputDataError
from climlatent.grid import area_weights, check_same_grid, find_grid
from climlatent.units import convert_units, difference_units, in_other_units


def as_score(da: xr.DataArray, long_name: str, units: str | None) -> xr.DataArray:
    """``da`` with only the attributes of a score: its long name and units (if known).

    Also those of any statistic that is no longer the field it was computed from (a
    trend, a GEV parameter, a return level): none of the field's ``standard_name``,
    ``cell_methods`` or ``valid_range`` (in which a reader would mask its values).

    Examples
    --------
    >>> import xarray as xr
    >>> field = xr.DataArray([0.5], attrs={"standard_name": "air_temperature", "units": "K"})
    >>> as_score(field, "trend", "K (10 year)-1").attrs
    {'long_name': 'trend', 'units': 'K (10 year)-1'}
    """
    attrs = {"long_name": long_name, **({"units": units} if units is not None else {})}
    return da.drop_attrs(deep=False).assign_attrs(attrs)


def paired(*fields: xr.DataArray) -> tuple[xr.DataArray, ...]:
    """The fields on the same coordinates and units, each NaN wherever any of them is.

    Fields in other units than the truth (the second field) are converted to its units,
    and to float64: a score's sums run over every step and member, and float32 sums of
    1.1 million pressures near 101325 Pa put their mean 694 Pa off (R2 0.92 for 0.86).

    Raises
    ------
    InputDataError
        The fields' coordinates differ along a dim they share (named), or their units
        cannot be converted to the truth's.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray([1.0, np.nan, 3.0], dims="time", coords={"time": [0, 1, 2]})
    >>> b = xr.DataArray([np.nan, 2.0, 3.0], dims="time", coords={"time": [0, 1, 2]})
    >>> [field.values.tolist() for field in paired(a, b)]
    [[nan, nan, 3.0], [nan, nan, 3.0]]
    >>> paired(a, b.assign_coords(time=[1, 2, 3]))
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: the fields scored against each other are not on ...
    """
    for field in fields:
        if not isinstance(field, xr.DataArray):
            raise TypeError(f"expected xarray.DataArrays (ds['name']) to score, got {type(field)}")
    truth = fields[min(1, len(fields) - 1)]
    fields = on_grid_of(in_units_of(fields, truth), truth)
    try:
        fields = xr.align(*fields, join="exact", copy=False)
    except ValueError as error:
        raise InputDataError(
            f"the fields scored against each other are not on the same coordinates: {error}"
        ) from None
    valid = functools.reduce(operator.and_, (field.notnull() for field in fields))
    return tuple(in_float64(field).where(valid) for field in fields)


def on_grid_of(fields: tuple[xr.DataArray, ...], truth: xr.DataArray) -> tuple[xr.DataArray, ...]:
    """``fields`` with the latitude and longitude of ``truth``, once checked to be its own.

    ``xr.align`` matches indexes only: on a curvilinear grid (2-D latitude and
    longitude), or with latitude and longitude on dims without an index, fields pair
    by position. A field holding the truth's latitude and longitude is refused unless
    they are the truth's (`climlatent.grid.check_same_grid`; the same cells in another
    order are refused too), and then takes the truth's (float32 copies of them no
    longer drop from a difference); a field without them pairs by position.

    Raises
    ------
    InputDataError
        A field's latitude or longitude differs from the truth's.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> truth = xr.DataArray([[1.0], [2.0]], dims=("y", "x"), coords={
    ...     "lat": (("y", "x"), [[0.0], [60.0]]), "lon": (("y", "x"), [[5.0], [5.0]])})
    >>> on_grid_of((truth[::-1], truth), truth)
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: the fields scored against each other are not on ...
    """
    try:
        grid = find_grid(truth, truth.name)
    except InputDataError:  # no latitude-longitude grid: paired by their dims
        return fields
    grid_coords = {c: truth[c].variable for c in (grid.lat, grid.lon) if c not in truth.indexes}
    out = []
    for field in fields:
        if field is not truth and grid_coords and {grid.lat, grid.lon} <= set(field.coords):
            refusal = (
                "the fields scored against each other are not on the same grid cell for "
                "cell, in the truth's order"
            )
            check_same_grid(truth, field, str(field.name), refusal=refusal)
            field = field.assign_coords(grid_coords)
        out.append(field)
    return tuple(out)


def in_float64(field: xr.DataArray) -> xr.DataArray:
    """``field`` in float64 (integers, booleans, float16 and float32; any byte order).

    A score's sums and means run in the field's dtype: a float16 field of 730 daily
    temperatures near 280 K summed to inf (a trend of NaN), and the spread of a
    float16 ensemble came out 0.45 % off the spread of the same values in float64.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> in_float64(xr.DataArray(np.array([280.0], ">f2"))).dtype
    dtype('float64')
    """
    return field.astype(np.promote_types(field.dtype, np.float64), copy=False)


def in_units_of(fields: tuple[xr.DataArray, ...], truth: xr.DataArray) -> tuple[xr.DataArray, ...]:
    """``fields`` in the units of ``truth``; fields without units stay as they are.

    A prediction in degC scored against a truth in K was 273.15 K off.

    Examples
    --------
    >>> import xarray as xr
    >>> k = xr.DataArray([273.15], attrs={"units": "K"}, name="tas")
    >>> c = xr.DataArray([0.0], attrs={"units": "degC"}, name="tas")
    >>> [float(f[0]) for f in in_units_of((c, k), k)]
    [273.15, 273.15]
    """
    units = truth.attrs.get("units")
    out = []
    for field in fields:
        own = field.attrs.get("units")
        if in_other_units(own, units):
            try:
                field = convert_units(field, str(units))
            except InputDataError as err:
                raise InputDataError(
                    f"{field.name!r} in {own!r} cannot be scored against {truth.name!r} in "
                    f"{units!r}: {err}"
                ) from err
        out.append(field)
    return tuple(out)


def _squared(units: str | None) -> str | None:
    """CF units of a squared difference of fields in ``units`` (None if unknown).

    Examples
    --------
    >>> _squared("K"), _squared("degC"), _squared("kg m-2 s-1"), _squared(None)
    ('K2', 'K2', 'kg2 m-4 s-2', None)
    """
    spread = difference_units(units)
    if spread is None:
        return None
    try:
        return format(ureg.Unit(spread) ** 2, "cf")
    except (pint.errors.PintError, ValueError, AttributeError, TypeError):
        return f"({spread})2"  # as UDUNITS writes a power of what it cannot name


def _dims(da: xr.DataArray, dims: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``dims`` as a tuple (one name given as a str), refused naming what ``da`` has.

    Examples
    --------
    >>> import xarray as xr
    >>> da = xr.DataArray([[1.0]], dims=("time", "member"), name="pr")
    >>> _dims(da, "time"), _dims(da, ["time", "member"])
    (('time',), ('time', 'member'))
    >>> _dims(da, ("year",))
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: variable 'pr' has no dim 'year' to score over ...
    """
    if not isinstance(da, xr.DataArray):
        raise TypeError(f"expected an xarray.DataArray (ds['name']), got {type(da)}")
    names = (dims,) if isinstance(dims, str) else tuple(dims)
    missing = [d for d in names if d not in da.dims]
    if missing:
        raise InputDataError(
            f"variable {da.name!r} has no dim {', '.join(map(repr, missing))} to score over "
            f"(dims: {da.dims})"
        )
    return names


def area_mean(da: xr.DataArray, dims: tuple[str, ...] = ()) -> xr.DataArray:
    """Area-weighted mean over the horizontal grid (and ``dims``), skipping NaNs.

    Parameters
    ----------
    da : xr.DataArray
        Field on a latitude/longitude grid.
    dims : tuple of str
        Further dims to average over (e.g. ``("time", "member")``).

    Returns
    -------
    xr.DataArray
        The mean, with the attributes of ``da`` and ``"area: mean"`` (then
        ``"<dim>: mean"`` for each of ``dims``) appended to its ``cell_methods``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray([[1.0, 1.0], [3.0, np.nan]], dims=("lat", "lon"),
    ...     coords={"lat": [0.0, 60.0], "lon": [0.0, 10.0]})
    >>> round(float(area_mean(da)), 12)  # the 60N cell has half the area of a 0N cell
    1.4
    """
    dims = _dims(da, dims)
    grid = find_grid(da, da.name)
    weights = area_weights(da).where(da.notnull(), 0.0)
    mean = da.weighted(weights.fillna(0.0)).mean((*grid.spatial_dims, *dims))
    methods = (da.attrs.get("cell_methods"), "area: mean", *(f"{dim}: mean" for dim in dims))
    return mean.assign_attrs(cell_methods=" ".join(filter(None, methods)))


def mse(prediction: xr.DataArray, truth: xr.DataArray, dims: tuple[str, ...] = ()) -> xr.DataArray:
    """Area-weighted mean squared error over the grid and ``dims``.

    Examples
    --------
    >>> import xarray as xr
    >>> a = xr.DataArray([[0.0, 2.0], [2.0, 0.0]], dims=("lat", "lon"),
    ...     coords={"lat": [-1.0, 1.0], "lon": [0.0, 1.0]})
    >>> float(mse(a, a * 0))
    2.0
    """
    prediction, truth = paired(prediction, truth)
    error = area_mean((prediction - truth) ** 2, dims)
    return as_score(error, "mean squared error", _squared(truth.attrs.get("units")))


def _skill(
    prediction: xr.DataArray, truth: xr.DataArray, reference: xr.DataArray, dims: tuple[str, ...]
) -> xr.DataArray:
    """``1 - MSE(prediction) / MSE(reference)`` of fields already `paired`.

    NaN where the reference's MSE is 0 (a perfect reference, or the mean of a constant
    truth): the score is undefined there, not -inf.
    """
    sse = area_mean((prediction - truth) ** 2, dims)
    reference_mse = area_mean((reference - truth) ** 2, dims)
    return 1 - sse / reference_mse.where(reference_mse > 0)


def rmse(prediction: xr.DataArray, truth: xr.DataArray, dims: tuple[str, ...] = ()) -> xr.DataArray:
    """Area-weighted root mean squared error over the grid and ``dims``.

    Examples
    --------
    >>> import xarray as xr
    >>> a = xr.DataArray([[0.0, 2.0], [2.0, 0.0]], dims=("lat", "lon"),
    ...     coords={"lat": [-1.0, 1.0], "lon": [0.0, 1.0]})
    >>> float(rmse(a, a * 0))
    1.4142135623730951
    """
    error = mse(prediction, truth, dims) ** 0.5
    return as_score(error, "root mean squared error", difference_units(truth.attrs.get("units")))


def mse_skill_score(
    prediction: xr.DataArray,
    truth: xr.DataArray,
    reference: xr.DataArray,
    dims: tuple[str, ...] = (),
) -> xr.DataArray:
    """MSE skill score ``1 - MSE(prediction) / MSE(reference)``: 1 is perfect, 0 no better.

    The reference is typically the training-period climatology. Where the reference is
    perfect (its MSE 0) the score is undefined: NaN.

    Examples
    --------
    >>> import xarray as xr
    >>> truth = xr.DataArray([[1.0, 3.0], [3.0, 1.0]], dims=("lat", "lon"),
    ...     coords={"lat": [-1.0, 1.0], "lon": [0.0, 1.0]})
    >>> float(mse_skill_score(truth, truth, truth * 0 + 2))
    1.0
    >>> float(mse_skill_score(truth * 0 + 2, truth, truth))
    nan
    """
    prediction, truth, reference = paired(prediction, truth, reference)
    skill = _skill(prediction, truth, reference, dims)
    return as_score(skill, "mean squared error skill score", "1")


def _mean(truth: xr.DataArray, dims: tuple[str, ...]) -> xr.DataArray:
    """Mean of ``truth`` over ``dims``, exactly the value of a cell constant along them.

    A plain mean of a constant 280.1 K is 6e-14 K off: an SST of 3e-26 K2, which made
    the R2 of a cell constant along time -7e25 rather than undefined.

    Examples
    --------
    >>> import xarray as xr
    >>> sst = xr.DataArray([271.35] * 7, dims="time")  # under sea ice
    >>> float(_mean(sst, ("time",)) - 271.35), float(sst.mean("time") - 271.35)
    (0.0, -5.684341886080802e-14)
    """
    low = truth.min(dims)
    return low + (truth - low).mean(dims)


def r2(
    prediction: xr.DataArray, truth: xr.DataArray, dims: tuple[str, ...] = ("time",)
) -> xr.DataArray:
    """Area-weighted coefficient of determination ``1 - SSE / SST`` over grid and ``dims``.

    ``SST`` is taken around the truth's own mean over ``dims`` in each cell, so R2
    measures how much of the variability along ``dims`` the prediction explains.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> truth = xr.DataArray(np.arange(8.0).reshape(2, 2, 2), dims=("time", "lat", "lon"),
    ...     coords={"lat": [-1.0, 1.0], "lon": [0.0, 1.0]})
    >>> float(r2(truth, truth)), float(r2(truth.mean("time") + 0 * truth, truth))
    (1.0, 0.0)

    NaN where the truth is constant along ``dims`` in every cell (R2 undefined).
    """
    prediction, truth = paired(prediction, truth)  # SST about the mean of valid steps
    dims = _dims(truth, dims)
    skill = _skill(prediction, truth, _mean(truth, dims), dims)
    return as_score(skill, "coefficient of determination", "1")


def r2_map(
    prediction: xr.DataArray, truth: xr.DataArray, dims: tuple[str, ...] = ("time",)
) -> xr.DataArray:
    """Coefficient of determination ``1 - SSE / SST`` along ``dims`` in every cell.

    Both sums run over the steps where the prediction and the truth are valid; NaN in
    a cell with no such step or whose truth is constant there (R2 undefined).

    Examples
    --------
    >>> import xarray as xr
    >>> truth = xr.DataArray([1.0, 2.0, 3.0], dims="time")
    >>> float(r2_map(truth + 0.1, truth))
    0.985
    """
    prediction, truth = paired(prediction, truth)
    dims = _dims(truth, dims)
    sse = ((prediction - truth) ** 2).sum(dims)
    sst = ((truth - _mean(truth, dims)) ** 2).sum(dims, min_count=1)
    r2 = (1 - sse / sst.where(sst > 0)).rename("r2")
    return as_score(r2, "coefficient of determination", "1")


def rmse_map(
    prediction: xr.DataArray, truth: xr.DataArray, dims: tuple[str, ...] = ("time",)
) -> xr.DataArray:
    """Root mean squared error along ``dims`` in every cell, in the truth's units.

    Examples
    --------
    >>> import xarray as xr
    >>> zeros = xr.DataArray([0.0, 0.0], dims="time")
    >>> float(rmse_map(xr.DataArray([1.0, 3.0], dims="time"), zeros))
    2.23606797749979
    """
    prediction, truth = paired(prediction, truth)
    dims = _dims(truth, dims)
    out = (((prediction - truth) ** 2).mean(dims) ** 0.5).rename("rmse")
    return as_score(out, "root mean squared error", difference_units(truth.attrs.get("units")))


def correlation(prediction: xr.DataArray, truth: xr.DataArray, dim: str = "time") -> xr.DataArray:
    """Pearson correlation along ``dim`` in every grid cell (a correlation map).

    NaN in a cell where either field is constant along ``dim`` (correlation undefined):
    tested on the values, as the float64 mean of a constant 0.1 is not exactly 0.1,
    which gave such a cell a correlation of 3e-17 where a constant 1.0 gave NaN.

    Examples
    --------
    >>> import xarray as xr
    >>> a = xr.DataArray([1.0, 2.0, 3.0], dims="time")
    >>> float(correlation(a, 2 * a + 1))
    1.0
    """
    prediction, truth = paired(prediction, truth)
    (dim,) = _dims(truth, dim)
    varies = (prediction.max(dim) > prediction.min(dim)) & (truth.max(dim) > truth.min(dim))
    corr = xr.corr(prediction, truth, dim=dim).clip(-1, 1).where(varies)  # round-off: 1 + 7e-16
    return as_score(corr, "Pearson correlation coefficient", "1")
