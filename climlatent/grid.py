"""Grid discovery and geometry: axes through cf-xarray, cell areas, masks, grid checks.

Axes are found from CF metadata (``standard_name``, ``axis``, ``units``) through
cf-xarray, never from hard-coded names. Only when a dataset carries no CF metadata at
all does :func:`find_grid` fall back to cf-xarray's name heuristics
(``guess_coord_axis``), so ``lat``/``latitude``/``nav_lat`` are recognised either way.

Three horizontal grid kinds are recognised:

- ``"rectilinear"``: 1-D latitude and longitude coordinates, each its own dimension;
- ``"rotated_pole"``: 2-D latitude/longitude on ``grid_latitude``/``grid_longitude``
  dimensions (or with a ``rotated_latitude_longitude`` grid mapping);
- ``"curvilinear"``: any other 2-D latitude/longitude pair (ocean model grids).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Hashable
from dataclasses import dataclass

import cf_xarray  # noqa: F401  (registers the .cf accessor)
import cftime
import numpy as np
import xarray as xr

from climlatent.cell_edges import bounds_name, latitude_edges, longitude_widths
from climlatent.draws import REALIZATION_DIM
from climlatent.errors import InputDataError
from climlatent.monotonic import check_monotonic

EARTH_RADIUS = 6_371_000.0  # m, the mean Earth radius used for cell areas
MEMBER_DIM_NAMES = ("member", "realization", "member_id", "ensemble", "ens", "number")
TIME_DIM_NAMES = ("time",)


@dataclass(frozen=True)
class GridInfo:
    """Names of the horizontal coordinates and dimensions of a gridded dataset.

    Attributes
    ----------
    lat, lon : str
        Names of the latitude and longitude coordinate variables.
    y_dim, x_dim : str
        Names of the two horizontal dimensions, in the order they appear in the data.
    kind : {"rectilinear", "rotated_pole", "curvilinear"}
        The grid kind.

    Examples
    --------
    >>> GridInfo("lat", "lon", "lat", "lon", "rectilinear").spatial_dims
    ('lat', 'lon')
    """

    lat: str
    lon: str
    y_dim: str
    x_dim: str
    kind: str

    @property
    def spatial_dims(self) -> tuple[str, str]:
        """The horizontal dimensions ``(y_dim, x_dim)``."""
        return (self.y_dim, self.x_dim)


def _latitude_longitude(obj: xr.Dataset | xr.DataArray) -> tuple[str | None, str | None]:
    """The latitude and longitude coordinates cf-xarray finds, from one discovery."""
    found = obj.cf.coordinates
    # Not cell bounds (they may carry their coordinate's units and standard_name): not
    # named as a coordinate's bounds, nor spanning a dim no data variable has (the
    # vertices of lat_bnds(lat, bnds) when lat has lost its bounds attribute).
    candidates = {n for key in ("latitude", "longitude") for n in found.get(key, [])}
    bounds = {bounds_name(obj[name]) for name in obj.coords}
    fields = [obj] if isinstance(obj, xr.DataArray) else list(obj.data_vars.values())
    data_dims = {d for da in fields if da.name not in candidates | bounds for d in da.dims}

    def is_grid(name: Hashable) -> bool:
        return name not in bounds and (not data_dims or set(obj[name].dims) <= data_dims)

    lat, lon = ([n for n in found.get(key, []) if is_grid(n)] for key in ("latitude", "longitude"))
    if not (lat and lon):
        return (lat[0] if lat else None), (lon[0] if lon else None)

    def rank(pair: tuple[Hashable, Hashable]) -> tuple[int, int, int]:
        # The pair that most fields lie on (a file may hold two grids), then the one of
        # the largest fields, then the one of most dims.
        dims = set(obj[pair[0]].dims) | set(obj[pair[1]].dims)
        on = [da for da in fields if dims <= set(da.dims)]
        return len(on), sum(da.size for da in on), obj[pair[0]].ndim + obj[pair[1]].ndim

    return max(((a, b) for a in lat for b in lon), key=rank)


def find_grid(obj: xr.Dataset | xr.DataArray, name: str | None = None) -> GridInfo:
    """Find the horizontal grid of a Dataset or DataArray.

    Parameters
    ----------
    obj : xr.Dataset or xr.DataArray
        Gridded data.
    name : str, optional
        Name of the variable, used in error messages.

    Returns
    -------
    GridInfo
        Names of the latitude/longitude coordinates, the horizontal dims and the grid
        kind.

    Raises
    ------
    InputDataError
        No latitude or longitude is found, the coordinates are out of range, or a
        1-D coordinate is not strictly monotonic.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros((2, 3)), dims=("latitude", "longitude"),
    ...     coords={"latitude": [10.0, 20.0], "longitude": [0.0, 5.0, 10.0]})
    >>> find_grid(da).kind, find_grid(da).spatial_dims
    ('rectilinear', ('latitude', 'longitude'))
    """
    label = f"variable {name!r}" if name else "the dataset"
    lat, lon = _latitude_longitude(obj)
    if lat is None or lon is None:
        guessed = _latitude_longitude(obj.copy(deep=False).cf.guess_coord_axis())
        lat, lon = lat or guessed[0], lon or guessed[1]
    if lat is None or lon is None:
        missing = "latitude" if lat is None else "longitude"
        rotated = [repr(c) for c in obj.coords if obj[c].attrs.get("standard_name") in _ROTATED]
        advice = (
            f"it is on a rotated-pole grid ({', '.join(rotated)}), whose axes are not the "
            "geographic ones: give it the 2-D latitude and longitude of its cells"
            if rotated
            else f"give it a coordinate with standard_name '{missing}' "
            f"(or units 'degrees_{'north' if lat is None else 'east'}')"
        )
        raise InputDataError(f"{label} has no {missing} coordinate: {advice}")
    lat_da, lon_da = obj[lat], obj[lon]
    for coord, role in ((lat_da, "latitude"), (lon_da, "longitude")):
        _check_degrees(coord, role, label)
    if np.any(np.abs(lat_da.values) > 90):
        raise InputDataError(f"{label}: latitude coordinate {lat!r} has values outside [-90, 90]")
    if lat_da.ndim == 1 and lon_da.ndim == 1:
        check_monotonic(lat_da, name)
        check_monotonic(lon_da, name, longitude=True)
        return GridInfo(lat, lon, lat_da.dims[0], lon_da.dims[0], "rectilinear")
    if lat_da.ndim == 2 and lat_da.dims == lon_da.dims:
        y_dim, x_dim = lat_da.dims
        axes = obj.cf.axes
        rotated = any(
            obj[c].attrs.get("standard_name", "").startswith("grid_l")
            for c in axes.get("X", []) + axes.get("Y", [])
        ) or "rotated_latitude_longitude" in _grid_mappings(obj)
        return GridInfo(lat, lon, y_dim, x_dim, "rotated_pole" if rotated else "curvilinear")
    raise InputDataError(
        f"{label}: latitude {lat!r} has dims {lat_da.dims} and longitude {lon!r} has dims "
        f"{lon_da.dims}; expected both 1-D (rectilinear) or both 2-D on the same dims"
    )


_ROTATED = ("grid_latitude", "grid_longitude")  # CF standard names of rotated-pole axes

#: CF's spellings of degrees for latitude and longitude (``degrees_north``, ``degreeE``...).
_DEGREES = re.compile(r"^deg(ree)?s?([ _]?(north|east|n|e))?$", re.IGNORECASE)


def _check_degrees(coord: xr.DataArray, role: str, label: str) -> None:
    """Refuse a latitude or longitude whose ``units`` are an angle other than degrees.

    Cell areas, distances and the grid checks read the values as degrees: a latitude in
    radians (within +-1.6) passed as a band of the equator, every cell of about the same
    area. Units pint does not know, or without a dimension, are taken as degrees (as a
    coordinate without units is).
    """
    units = str(coord.attrs.get("units", "")).strip()
    if not units or _DEGREES.match(units) or not _is_other_angle_or_length(units):
        return
    raise InputDataError(
        f"{label}: {role} coordinate {coord.name!r} is in {units!r}; climlatent reads "
        f"{role}s in degrees ('degrees_{'north' if role == 'latitude' else 'east'}'): "
        "convert it first"
    )


@functools.lru_cache(maxsize=64)
def _is_other_angle_or_length(units: str) -> bool:
    """Whether ``units`` are an angle other than a degree (radians), or a length."""
    import pint

    from climlatent.units import units_quantity  # pint: imported where units are read

    try:
        quantity = units_quantity(units)
    except InputDataError:
        return False  # unknown to pint: not refused
    if quantity.units.dimensionality == units_quantity("m").units.dimensionality:
        return True
    if quantity.unitless:  # "1": a number, not an angle
        return False
    try:
        in_degrees = float(quantity.to("degree").magnitude)
    except pint.errors.DimensionalityError:
        return False
    return not np.isclose(in_degrees, 1.0)


def _grid_mappings(obj: xr.Dataset | xr.DataArray) -> set[str]:
    variables = obj.variables if isinstance(obj, xr.Dataset) else obj.coords.variables
    return {str(v.attrs.get("grid_mapping_name", "")) for v in variables.values()}


def find_time(obj: xr.Dataset | xr.DataArray) -> str | None:
    """Name of the time dimension, found through CF metadata, or ``None``.

    Examples
    --------
    >>> import xarray as xr, pandas as pd
    >>> find_time(xr.DataArray([1, 2], dims="t", coords={"t": pd.date_range("2000", periods=2)}))
    't'
    """
    for key in ("time", "T"):
        found = obj.cf.coordinates if key == "time" else obj.cf.axes
        names = found.get(key, [])
        for coord in names:
            if obj[coord].ndim == 1 and obj[coord].dims[0] in obj.dims:
                return obj[coord].dims[0]
    for dim in obj.dims:
        if dim in obj.coords and _is_datetime_like(obj[dim]):
            return str(dim)
    return next((d for d in TIME_DIM_NAMES if d in obj.dims), None)


def _is_datetime_like(coord: xr.DataArray) -> bool:
    if coord.dtype.kind == "M":
        return True
    return coord.size > 0 and isinstance(coord.values.flat[0], cftime.datetime)


def find_member(obj: xr.Dataset | xr.DataArray) -> str | None:
    """Name of the ensemble-member dimension, or ``None``.

    A dimension whose coordinate has CF ``standard_name: realization`` wins; otherwise
    the usual dimension names (``member``, ``realization``, ``member_id``, ...). Beside
    another member dim, ``realization`` holds climlatent's draws
    (:mod:`climlatent.draws`: an input with such a dim is not drawn from), so the other
    one is the members': a downscaled ensemble's draws are not taken for its members.

    Examples
    --------
    >>> import xarray as xr
    >>> find_member(xr.DataArray([[1, 2]], dims=("realization", "time")))
    'realization'
    >>> find_member(xr.DataArray([[[1, 2]]], dims=("realization", "ensemble", "time")))
    'ensemble'
    """
    cf = [
        d
        for d in obj.dims
        if d in obj.coords and obj[d].attrs.get("standard_name") == "realization"
    ]
    found = [*cf, *(d for d in MEMBER_DIM_NAMES if d in obj.dims)]
    members = [d for d in found if d != REALIZATION_DIM] or found
    return str(members[0]) if members else None


def scalar_member(obj: xr.Dataset | xr.DataArray) -> str | None:
    """Name of a scalar (0-d) member coordinate, as ``ds.sel(member="r2")`` leaves, or None.

    A coordinate with CF ``standard_name: realization``, or one of the usual member
    names but ``number`` (a scalar ``number`` is how cfgrib marks a product that is not
    an ensemble, 0 in every file).

    Examples
    --------
    >>> import xarray as xr
    >>> ds = xr.Dataset(coords={"member": ("member", ["r1", "r2"])})
    >>> scalar_member(ds.sel(member="r2")), scalar_member(ds)
    ('member', None)
    """
    for name, coord in obj.coords.items():
        if coord.ndim == 0 and (
            coord.attrs.get("standard_name") == "realization"
            or name in MEMBER_DIM_NAMES
            and name != "number"
        ):
            return str(name)
    return None


def find_vertical(obj: xr.Dataset | xr.DataArray) -> str | None:
    """Name of the vertical dimension (CF axis ``Z``), or ``None``.

    Examples
    --------
    >>> import xarray as xr
    >>> da = xr.DataArray([1.0, 2.0], dims="plev",
    ...     coords={"plev": ("plev", [1e5, 5e4], {"axis": "Z", "units": "Pa"})})
    >>> find_vertical(da)
    'plev'
    """
    names = obj.cf.axes.get("Z", []) + obj.cf.coordinates.get("vertical", [])
    for coord in names:
        if obj[coord].ndim == 1 and obj[coord].dims[0] in obj.dims:
            return obj[coord].dims[0]
    return None


def cell_area(obj: xr.Dataset | xr.DataArray, radius: float = EARTH_RADIUS) -> xr.DataArray:
    """Spherical cell areas in m2 on the horizontal grid of ``obj``.

    Rectilinear grids use the exact area of a latitude-longitude cell,
    ``R**2 * (sin(lat_north) - sin(lat_south)) * (lon_east - lon_west)``, with the edges
    taken from the CF ``bounds`` variables when present and inferred from midpoints
    otherwise (`latitude_edges`: within the poles; longitudes on the circle, so that
    a regional grid across the antimeridian, labelled -180..180, has its true widths).
    Curvilinear and rotated grids use the area spanned by the local tangent vectors of
    the grid on the sphere (finite differences of the cell centres), a second-order
    estimate.

    Parameters
    ----------
    obj : xr.Dataset or xr.DataArray
        Gridded data.
    radius : float
        Sphere radius in m.

    Returns
    -------
    xr.DataArray
        ``cell_area`` on the horizontal dims, CF ``standard_name: cell_area``, units m2.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros((180, 360)), dims=("lat", "lon"), coords={
    ...     "lat": np.arange(-89.5, 90), "lon": np.arange(0.5, 360)})
    >>> bool(np.isclose(cell_area(da).sum(), 4 * np.pi * EARTH_RADIUS**2))
    True
    """
    grid = find_grid(obj)
    lat, lon = obj[grid.lat], obj[grid.lon]
    coords = {grid.lat: lat, grid.lon: lon}
    if grid.kind == "rectilinear":
        area = radius**2 * _band_times_width(obj, grid, unit_single_cells=False)
        dims = (lat.dims[0], lon.dims[0])
    else:
        phi, lam = np.deg2rad(lat.values), np.deg2rad(lon.values)
        xyz = np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])
        d_y, d_x = np.gradient(xyz, axis=(1, 2))
        area = radius**2 * np.linalg.norm(np.cross(d_y, d_x, axis=0), axis=0)
        dims = lat.dims
    return xr.DataArray(
        area,
        dims=dims,
        coords=coords,
        name="cell_area",
        attrs={"standard_name": "cell_area", "units": "m2", "long_name": "grid cell area"},
    )


def area_weights(obj: xr.Dataset | xr.DataArray) -> xr.DataArray:
    """Cell areas up to a common factor: the weights of an area mean.

    `cell_area`, except on a rectilinear grid one cell wide or one cell tall (a
    meridional or zonal section, or a single cell) without bounds: its cells' common
    width (height) cannot be inferred from one midpoint, but it cancels in a weighted
    mean, so it is taken as 1. A DataArray cannot carry the bounds that `cell_area`
    would need there.

    Examples
    --------
    >>> section = xr.DataArray([[1.0], [3.0]], dims=("lat", "lon"),
    ...                        coords={"lat": [0.0, 60.0], "lon": [5.0]})
    >>> weights = area_weights(section)
    >>> round(float(weights[1, 0] / weights[0, 0]), 2)  # the 60N cell is half as wide
    0.5
    """
    try:
        return cell_area(obj)
    except InputDataError:
        grid = find_grid(obj)
        lat, lon = obj[grid.lat], obj[grid.lon]
        if grid.kind != "rectilinear" or (lat.size > 1 and lon.size > 1):
            raise
    weights = xr.DataArray(
        _band_times_width(obj, grid, unit_single_cells=True),
        dims=(lat.dims[0], lon.dims[0]),
        coords={grid.lat: lat, grid.lon: lon},
        name="cell_area",
    )
    return weights.assign_attrs(long_name="relative grid cell area", units="1")


def _band_times_width(
    obj: xr.Dataset | xr.DataArray, grid: GridInfo, unit_single_cells: bool
) -> np.ndarray:
    """A rectilinear grid's ``sin`` latitude bands times longitude widths (radians).

    With ``unit_single_cells`` a dim one cell long counts its cells as 1 (`area_weights`).
    """
    lat, lon = obj[grid.lat], obj[grid.lon]
    band, width = np.ones(1), np.ones(1)
    if not (unit_single_cells and lat.size == 1):
        band = np.abs(np.diff(np.sin(np.deg2rad(latitude_edges(lat, obj)))))
    if not (unit_single_cells and lon.size == 1):
        width = np.deg2rad(longitude_widths(lon, obj))
    return band[:, None] * width[None, :]


def regular_grid(lat_edges: np.ndarray, lon_edges: np.ndarray) -> xr.Dataset:
    """A cell-centred latitude/longitude grid with CF attributes and bounds, from edges.

    The bounds variables carry no ``units`` (CF lets them inherit them from their
    coordinate), so that cf-xarray never mistakes them for latitude or longitude.

    Examples
    --------
    >>> grid = regular_grid(np.linspace(30, 70, 5), np.linspace(-20, 40, 4))
    >>> grid.lat.values.tolist(), grid.lon.attrs["bounds"]
    ([35.0, 45.0, 55.0, 65.0], 'lon_bnds')
    """
    coords = {}
    for name, edges, units, axis, standard_name in (
        ("lat", lat_edges, "degrees_north", "Y", "latitude"),
        ("lon", lon_edges, "degrees_east", "X", "longitude"),
    ):
        edges = np.asarray(edges, dtype=float)
        attrs = {"units": units, "standard_name": standard_name, "long_name": standard_name}
        coords[name] = (
            name,
            0.5 * (edges[1:] + edges[:-1]),
            {**attrs, "axis": axis, "bounds": f"{name}_bnds"},
        )
        coords[f"{name}_bnds"] = ((name, "bnds"), np.stack([edges[:-1], edges[1:]], axis=1))
    return xr.Dataset(coords=coords)


def valid_mask(da: xr.DataArray, sample_dims: tuple[str, ...]) -> xr.DataArray:
    """Cells that hold a finite value in every sample (the NaN mask of a field).

    Parameters
    ----------
    da : xr.DataArray
        Field with the sample dims and horizontal dims.
    sample_dims : tuple of str
        Dims along which a cell must be finite everywhere to count as valid.

    Returns
    -------
    xr.DataArray
        Boolean mask on the remaining dims.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray([[1.0, np.nan], [2.0, 3.0]], dims=("time", "x"))
    >>> valid_mask(da, ("time",)).values.tolist()
    [True, False]
    """
    return np.isfinite(da).all(dim=list(sample_dims)).rename("valid_mask")


def land_mask(ds: xr.Dataset, threshold: float = 50.0) -> xr.DataArray:
    """Boolean land mask from the CF ``land_area_fraction`` variable of a Dataset.

    Parameters
    ----------
    ds : xr.Dataset
        Dataset holding a variable with ``standard_name: land_area_fraction``, in
        units convertible to ``%`` (``1``, ``percent``...).
    threshold : float
        Land fraction in percent above which a cell counts as land.

    Examples
    --------
    >>> import xarray as xr
    >>> ds = xr.Dataset({"sftlf": ("x", [0.0, 80.0],
    ...     {"standard_name": "land_area_fraction", "units": "%"})})
    >>> land_mask(ds).values.tolist()
    [False, True]
    >>> fraction = (ds.sftlf / 100).assign_attrs(ds.sftlf.attrs, units="1")
    >>> land_mask(ds.assign(sftlf=fraction)).values.tolist()
    [False, True]
    """
    names = ds.cf.standard_names.get("land_area_fraction", [])
    if not names:
        raise InputDataError("the dataset has no variable with standard_name 'land_area_fraction'")
    from climlatent.units import convert_units  # pint: imported where units are converted

    percent = convert_units(ds[names[0]], "%", names[0])
    return (percent > threshold).rename("land_mask")


def check_same_grid(
    reference: xr.Dataset | xr.DataArray,
    other: xr.Dataset | xr.DataArray,
    name: str,
    atol: float = 1e-6,
    grids: tuple[GridInfo, GridInfo] | None = None,
    refusal: str | None = None,
) -> None:
    """Raise if ``other`` is not on the same horizontal grid as ``reference``.

    Parameters
    ----------
    reference, other : xr.Dataset or xr.DataArray
        The grid a model was fitted on, and the data it is now given.
    name : str
        Variable being checked, named in the message.
    atol : float
        Tolerance on coordinate values, in degrees, or two float32 steps at the value,
        if larger: the same grid stored in float32 (as many CMIP files store it) is
        up to 1.5e-5 degrees off at 180.
    grids : (GridInfo, GridInfo), optional
        The grids of ``reference`` and ``other`` (`find_grid`), when found already: a
        check of many ensemble members against the first finds each grid once.
    refusal : str, optional
        The message's opening, before the coordinate at fault (default: not the fit's grid).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray(np.zeros((2, 2)), dims=("lat", "lon"),
    ...     coords={"lat": [0.0, 1.0], "lon": [0.0, 1.0]})
    >>> check_same_grid(a, a, "psl")
    >>> check_same_grid(a, a.assign_coords(lon=[0.0, 2.0]), "psl")
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: variable 'psl' is on a different grid ...
    """
    ref, new = grids or (find_grid(reference, name), find_grid(other, name))
    refusal = refusal or f"variable {name!r} is on a different grid than the model was fitted on"
    for ref_coord, new_coord in ((ref.lat, new.lat), (ref.lon, new.lon)):
        a, b = reference[ref_coord], other[new_coord]
        if b.ndim > 1 and b.dims != a.dims and set(b.dims) == set(a.dims):
            b = b.transpose(*a.dims)  # 2-D coordinates stored (x, y): the same cells
        if a.shape != b.shape:
            raise InputDataError(
                f"{refusal}: {new_coord!r} has shape {b.shape}, expected {a.shape}"
            )
        if np.array_equal(a.values, b.values):  # the usual case: no float64 temporaries
            continue
        a, b = np.asarray(a.values, float), np.asarray(b.values, float)
        excess = np.abs(a - b) - np.maximum(atol, 2 * np.spacing(np.abs(a).astype(np.float32)))
        if excess.size and excess.max() > 0:
            diff = float(np.max(np.abs(a - b)))
            raise InputDataError(
                f"{refusal}: {new_coord!r} differs by up to {diff:g} degrees (regrid it first)"
            )


def grid_dataset(obj: xr.Dataset | xr.DataArray) -> xr.Dataset:
    """The horizontal grid of ``obj`` as a small Dataset: coordinates, bounds and areas.

    This is what a fitted model stores to check, later, that new data is on its grid,
    and to lay predictions back onto it.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros((2, 3)), dims=("lat", "lon"),
    ...     coords={"lat": [10.0, 20.0], "lon": [0.0, 5.0, 10.0]})
    >>> sorted(grid_dataset(da).variables)
    ['cell_area', 'lat', 'lon']
    """
    grid = find_grid(obj)
    area = cell_area(obj)
    out = area.to_dataset()
    for coord in (grid.lat, grid.lon):
        out = out.assign_coords({coord: obj[coord]})
    return out.reset_coords(drop=False).set_coords([grid.lat, grid.lon])
