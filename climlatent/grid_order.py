"""One internal order for rectilinear grids, so that coordinate order never changes a number.

Reanalyses store latitude north to south (ERA5), models south to north; longitudes come
as 0..360 or -180..180; files put ``lon`` before ``lat``. The same data in any of these
layouts must give the same answer to the last bit. Estimators and the regridder
therefore work on a *canonical* layout: latitude ascending; longitude wrapped into
[0, 360), rotated to start after the widest gap between cells (so a regional grid
across the Greenwich or date-line meridian stays contiguous; a global grid starts at
its smallest wrapped value) and unwrapped to increase (shifted values rounded to
1e-9 degrees); the two horizontal dims last, latitude first. :class:`GridOrder` records how
a caller's layout maps onto it, so outputs go back in the caller's order, and
:func:`conform` puts new data onto the order of a fitted grid after checking that it is
the same grid. Curvilinear grids (2-D latitude/longitude) have no such freedom and are
only checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from climlatent.errors import InputDataError
from climlatent.grid import GridInfo, bounds_name, check_same_grid, find_grid

__all__ = ["GridOrder", "canonical_order", "conform", "grid_layout", "in_layout"]

_LON_DECIMALS = 9  # canonical longitudes are rounded to 1e-9 degrees


def canonical_longitudes(lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Permutation to the canonical longitude order, and the canonical values.

    Examples
    --------
    >>> index, values = canonical_longitudes(np.array([-20.0, 0.0, 20.0]))
    >>> index.tolist(), values.tolist()
    ([0, 1, 2], [340.0, 360.0, 380.0])
    >>> canonical_longitudes(np.array([180.0, 270.0, 0.0, 90.0]))[1].tolist()
    [0.0, 90.0, 180.0, 270.0]
    """
    given = np.asarray(lon)
    lon = given.astype(float)
    # Spacings of a regular grid stored in float32 vary by a few of its steps at 360.
    single = np.issubdtype(given.dtype, np.floating) and given.dtype.itemsize < 8
    tolerance = max(1e-6, 1440.0 * float(np.finfo(given.dtype).eps)) if single else 1e-6
    wrapped = np.mod(lon, 360.0)  # exact for values already in [0, 360)
    # 360, and the round-off just below it (np.arange(-180, 180, 3.6) puts -3e-13 for
    # Greenwich, 359.9999999999997 wrapped): the meridian that starts the circle
    wrapped[np.round(wrapped, _LON_DECIMALS) >= 360.0] -= 360.0
    key = np.round(wrapped, _LON_DECIMALS)
    index = np.argsort(key, kind="stable")
    if index.size > 1:
        ascending = key[index]
        gaps = np.diff(np.append(ascending, ascending[0] + 360.0))
        if np.ptp(gaps) > tolerance:  # regional: start after the widest gap
            index = np.roll(index, -(int(np.argmax(gaps)) + 1))
    values = wrapped[index]
    values[values < values[0]] += 360.0
    moved = values != lon[index]  # shifted by whole turns: round off the round-off
    values[moved] = np.round(values[moved], _LON_DECIMALS)
    return index, values


@dataclass(frozen=True, eq=False)
class GridOrder:
    """How a field's horizontal layout maps onto the canonical one.

    Attributes
    ----------
    grid : GridInfo
        Names of the coordinates and dims.
    lat_index, lon_index : np.ndarray or None
        Caller index of each canonical latitude and longitude (None: a curvilinear
        grid, left as it is).
    canonical_lon, caller_lon : np.ndarray or None
        Longitude values in the canonical and in the caller's layout.
    spatial_order : tuple of str
        The two horizontal dims in the caller's order.

    Examples
    --------
    >>> da = xr.DataArray(np.arange(6.0).reshape(3, 2), dims=("lat", "lon"),
    ...     coords={"lat": [10.0, 0.0, -10.0], "lon": [-90.0, 90.0]})
    >>> order = GridOrder.of(da)
    >>> canonical = order.canonical(da)
    >>> canonical["lat"].values.tolist(), canonical["lon"].values.tolist()
    ([-10.0, 0.0, 10.0], [90.0, 270.0])
    >>> order.restore(canonical).equals(da)
    True
    """

    grid: GridInfo
    lat_index: np.ndarray | None
    lon_index: np.ndarray | None
    canonical_lon: np.ndarray | None
    caller_lon: np.ndarray | None
    spatial_order: tuple[str, str]

    @classmethod
    def of(cls, obj: xr.Dataset | xr.DataArray, name: str | None = None) -> GridOrder:
        """The order of ``obj``'s horizontal grid (found through CF metadata)."""
        grid = find_grid(obj, name)
        spatial = _spatial_order(obj, grid)
        if grid.kind != "rectilinear":
            return cls(grid, None, None, None, None, spatial)
        lat_index = np.argsort(np.asarray(obj[grid.lat].values, float), kind="stable")
        lon_index, canonical_lon = canonical_longitudes(obj[grid.lon].values)  # its dtype
        caller_lon = np.asarray(obj[grid.lon].values, float)
        repeated = np.flatnonzero(np.diff(np.round(canonical_lon, 6)) == 0)
        if repeated.size:
            first, second = caller_lon[lon_index[repeated[0] : repeated[0] + 2]]
            raise InputDataError(
                f"{'variable ' + repr(name) if name else 'the dataset'}: longitude "
                f"{grid.lon!r} holds one meridian twice ({first:g} and {second:g} degrees); "
                f"drop the repeated cyclic column"
            )
        return cls(grid, lat_index, lon_index, canonical_lon, caller_lon, spatial)

    @property
    def rectilinear(self) -> bool:
        """Whether the grid can be reordered (1-D latitude and longitude)."""
        return self.lat_index is not None

    @property
    def permuted(self) -> bool:
        """Whether the caller's cells come in another order than the canonical one."""
        return self.rectilinear and not (
            _is_identity(self.lat_index) and _is_identity(self.lon_index)
        )

    def canonical(self, obj: xr.Dataset | xr.DataArray) -> xr.Dataset | xr.DataArray:
        """``obj`` in the canonical layout (horizontal dims last, latitude first)."""
        y, x = self.grid.spatial_dims
        if self.permuted:
            obj = obj.isel({y: self.lat_index, x: self.lon_index})
        if self.rectilinear:
            obj = _relabel_lon(obj, self.grid.lon, self.canonical_lon)
        return _contiguous(_horizontal_last(obj, (y, x)))

    def restore(self, obj: xr.Dataset | xr.DataArray) -> xr.Dataset | xr.DataArray:
        """Canonical ``obj`` back in the caller's layout (coordinates, values, dim order)."""
        if self.permuted:
            y, x = self.grid.spatial_dims
            inverse = {y: np.argsort(self.lat_index), x: np.argsort(self.lon_index)}
            obj = obj.isel(inverse)
        if self.rectilinear:
            obj = _relabel_lon(obj, self.grid.lon, self.caller_lon)
        return _horizontal_last(obj, self.spatial_order)


def _is_identity(index: np.ndarray) -> bool:
    return bool(np.array_equal(index, np.arange(index.size)))


def _horizontal_last(
    obj: xr.Dataset | xr.DataArray, dims: tuple[str, str]
) -> xr.Dataset | xr.DataArray:
    """Variables holding both horizontal ``dims`` with them last, in that order."""
    if isinstance(obj, xr.DataArray):
        return obj.transpose(..., *dims) if set(dims) <= set(obj.dims) else obj
    moved = {
        n: v.transpose(..., *dims) for n, v in obj.data_vars.items() if set(dims) <= set(v.dims)
    }
    return obj.assign(moved) if moved else obj


def _contiguous(obj: xr.Dataset | xr.DataArray) -> xr.Dataset | xr.DataArray:
    """In-memory data in C order, so that reductions sum in the same order as for a copy."""
    if isinstance(obj, xr.Dataset):
        return obj.assign({name: _contiguous(var) for name, var in obj.data_vars.items()})
    if not isinstance(obj.data, np.ndarray) or obj.data.flags.c_contiguous:
        return obj
    return obj.copy(data=np.ascontiguousarray(obj.data))


def _spatial_order(obj: xr.Dataset | xr.DataArray, grid: GridInfo) -> tuple[str, str]:
    """The horizontal dims in the order of ``obj`` (its first variable holding both)."""
    variables = [obj] if isinstance(obj, xr.DataArray) else list(obj.variables.values())
    for var in variables:
        spatial = tuple(d for d in var.dims if d in grid.spatial_dims)
        if len(spatial) == 2:
            return spatial
    return grid.spatial_dims


def _relabel_lon(
    obj: xr.Dataset | xr.DataArray, name: str, values: np.ndarray
) -> xr.Dataset | xr.DataArray:
    """Give longitude ``name`` new values (a shift by whole turns), its bounds alike."""
    if name not in obj.coords:
        return obj
    coord = obj[name]
    shift = values - np.asarray(coord.values, float)
    if not shift.any():
        return obj
    out = obj.assign_coords({name: coord.copy(data=values.astype(coord.dtype))})
    bounds = bounds_name(coord)
    if isinstance(out, xr.Dataset) and bounds in out.variables:
        bnds = out[bounds]
        out[bounds] = bnds + xr.DataArray(shift, dims=coord.dims).astype(bnds.dtype)
        out[bounds].attrs = bnds.attrs
    return out


def conform(
    da: xr.DataArray, reference: xr.Dataset | xr.DataArray, name: str, atol: float = 1e-6
) -> xr.DataArray:
    """``da`` on the grid of ``reference`` in ``reference``'s order, or an error.

    The same cells in another order (latitude reversed, longitude in the other
    convention or rotated, dims transposed) are reordered without changing a value,
    and labelled with ``reference``'s coordinates (a grid within ``atol`` of it, such
    as latitudes converted from radians, is the fitted grid); another grid raises.

    Parameters
    ----------
    da : xr.DataArray
        New data.
    reference : xr.Dataset or xr.DataArray
        The grid a model was fitted on (or a regridder's source grid).
    name : str
        Variable named in messages.
    atol : float
        Tolerance on coordinate values, in degrees.

    Raises
    ------
    InputDataError
        The grids differ beyond reordering (see `climlatent.grid.check_same_grid`).

    Examples
    --------
    >>> ref = xr.Dataset(coords={"lat": [-10.0, 10.0], "lon": [0.0, 90.0, 180.0, 270.0]})
    >>> da = xr.DataArray(np.arange(8.0).reshape(4, 2), dims=("lon", "lat"), name="tas",
    ...     coords={"lat": [10.0, -10.0], "lon": [-180.0, -90.0, 0.0, 90.0]})
    >>> out = conform(da, ref, "tas")
    >>> out.dims, out["lon"].values.tolist(), float(out.sel(lat=10.0, lon=270.0))
    (('lat', 'lon'), [0.0, 90.0, 180.0, 270.0], 2.0)
    """
    order, theirs = canonical_order(da, reference, name, atol), GridOrder.of(reference, name)
    out = theirs.restore(order.canonical(da))
    if not theirs.rectilinear:
        return out
    # within atol (float32 coordinates of a CHIRPS or OISST file): labelled as fitted,
    # in the fitted dtype (restore relabels longitudes in the caller's)
    fitted = [name for name in (theirs.grid.lat, theirs.grid.lon) if name in out.coords]
    return out.assign_coords({name: out[name].copy(data=reference[name].values) for name in fitted})


def canonical_order(
    da: xr.DataArray, reference: xr.Dataset | xr.DataArray, name: str, atol: float = 1e-6
) -> GridOrder:
    """The order that puts ``da`` in the canonical layout of ``reference``'s grid.

    Only the coordinates are read: ``da`` is checked to hold the cells of
    ``reference`` (in any order), and ``order.canonical(da)`` then reorders its data
    once, lazily for dask or file-backed data; ``order.canonical`` of any block of
    ``da`` along its other dims puts that block in the same layout.

    Parameters
    ----------
    da : xr.DataArray
        New data.
    reference : xr.Dataset or xr.DataArray
        The grid a model was fitted on (or a regridder's source grid).
    name : str
        Variable named in messages.
    atol : float
        Tolerance on coordinate values, in degrees.

    Returns
    -------
    GridOrder
        The order of ``da`` (of ``reference`` for a curvilinear grid, which is only
        checked).

    Raises
    ------
    InputDataError
        The grids differ beyond reordering (see `climlatent.grid.check_same_grid`).

    Examples
    --------
    >>> ref = xr.Dataset(coords={"lat": [-10.0, 10.0], "lon": [0.0, 90.0, 180.0, 270.0]})
    >>> da = xr.DataArray(np.arange(8.0).reshape(4, 2), dims=("lon", "lat"), name="tas",
    ...     coords={"lat": [10.0, -10.0], "lon": [-180.0, -90.0, 0.0, 90.0]})
    >>> canonical = canonical_order(da, ref, "tas").canonical(da)
    >>> canonical.dims, canonical["lat"].values.tolist(), canonical.values[1].tolist()
    (('lat', 'lon'), [-10.0, 10.0], [4.0, 6.0, 0.0, 2.0])
    """
    mine, theirs = GridOrder.of(da, name), GridOrder.of(reference, name)
    if set(mine.grid.spatial_dims) != set(theirs.grid.spatial_dims):
        raise InputDataError(
            f"variable {name!r} has horizontal dims {mine.grid.spatial_dims}, the model "
            f"{theirs.grid.spatial_dims}; rename them to match"
        )
    if not (mine.rectilinear and theirs.rectilinear):
        check_same_grid(reference, da, name, atol)
        return theirs
    grid = da.coords.to_dataset()  # the check reads coordinates only, never the data
    check_same_grid(theirs.canonical(reference), mine.canonical(grid), name, atol)
    return mine


def grid_layout(da: xr.DataArray, name: str | None = None) -> xr.Dataset:
    """The horizontal layout of ``da`` as a small netCDF-writable Dataset.

    Its coordinates in ``da``'s order and an int8 ``layout`` variable on the horizontal
    dims in ``da``'s order: what `in_layout` needs to put a canonical field back.

    Examples
    --------
    >>> da = xr.DataArray(np.zeros((2, 3, 2)), dims=("time", "lon", "lat"), name="pr",
    ...     coords={"lat": [5.0, -5.0], "lon": [0.0, 120.0, 240.0]})
    >>> grid_layout(da)["layout"].dims
    ('lon', 'lat')
    """
    grid = find_grid(da, name)
    spatial = _spatial_order(da, grid)
    coords = {c: da[c].variable for c in (grid.lat, grid.lon, *spatial) if c in da.coords}
    layout = xr.Variable(spatial, np.zeros([da.sizes[d] for d in spatial], np.int8))
    return xr.Dataset({"layout": layout}, coords=coords)


def in_layout(layout: xr.Dataset | None, da: xr.DataArray) -> xr.DataArray:
    """Canonical ``da`` in the layout saved by `grid_layout` (unchanged for None).

    Examples
    --------
    >>> da = xr.DataArray(np.arange(6.0).reshape(3, 2), dims=("lon", "lat"), name="pr",
    ...     coords={"lat": [5.0, -5.0], "lon": [0.0, 120.0, 240.0]})
    >>> canonical = GridOrder.of(da).canonical(da)
    >>> in_layout(grid_layout(da), canonical).equals(da)
    True
    """
    return da if layout is None else GridOrder.of(layout).restore(da)
