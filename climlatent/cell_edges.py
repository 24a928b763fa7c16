"""Cell edges of 1-D latitude and longitude coordinates, from CF bounds or midpoints.

Edges in degrees, one more than the centres: from a coordinate's CF ``bounds``
variable when the dataset holds it, else halfway between neighbouring centres, the
outer ones as far out. Latitude edges stay within the poles (and reach them where CDO
puts them); longitude edges run without a break around the circle.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr

from climlatent.errors import InputDataError
from climlatent.monotonic import unwrapped_longitudes

POLAR_EDGE = 88.0  # degrees: an outer latitude edge inferred beyond it is the pole's (CDO's)


def bounds_name(coord: xr.DataArray) -> Hashable | None:
    """The name of the CF bounds variable of ``coord``, or None.

    Its ``bounds`` attribute, or where xarray moves it when it decodes the bounds as
    coordinates (``decode_coords="all"``, as :func:`climlatent.io.open_dataset` opens
    files): the coordinate's encoding.

    Examples
    --------
    >>> lat = xr.DataArray([0.0], dims="lat", attrs={"bounds": "lat_bnds"})
    >>> bounds_name(lat), bounds_name(lat.drop_attrs())
    ('lat_bnds', None)
    """
    return coord.attrs.get("bounds", coord.encoding.get("bounds"))


def _has_bounds(coord: xr.DataArray, obj: xr.Dataset | xr.DataArray) -> bool:
    """Whether ``obj`` holds the CF bounds variable of ``coord``."""
    return isinstance(obj, xr.Dataset) and bounds_name(coord) in obj.variables


def _bounds_1d(
    coord: xr.DataArray, obj: xr.Dataset | xr.DataArray, centres: np.ndarray
) -> np.ndarray:
    """Cell edges (n + 1) of a 1-D coordinate, from its CF bounds or midpoints.

    ``centres`` are the coordinate's values running without a break (a longitude's
    unwrapped). Bounds written (lower, upper) for every cell of a descending coordinate
    are taken in its direction, as CF writes them (each cell's second bound the next
    one's first); a longitude cell across the seam (``[175, -175]``) is taken on the
    circle, within 180 degrees.
    """
    if _has_bounds(coord, obj):
        bnds = np.asarray(obj[bounds_name(coord)].values, dtype=float)
        direction = np.sign(np.diff(centres[:2]))
        width = bnds[:, 1] - bnds[:, 0]
        width -= 360.0 * np.round(width / 360.0)  # latitudes: unchanged, within 180
        if direction.size and np.all(np.sign(width) == -direction):
            bnds = bnds[:, ::-1]
        return np.concatenate([bnds[:, 0], bnds[-1:, 1]])
    return _midpoint_edges(centres, coord.name)


def latitude_edges(lat: xr.DataArray, obj: xr.Dataset | xr.DataArray) -> np.ndarray:
    """Cell edges (n + 1) of a 1-D latitude in degrees, within [-90, 90].

    From its CF bounds, or halfway between centres; an outer edge inferred beyond
    ``POLAR_EDGE`` degrees goes to the pole, as CDO puts it: the polar rows of a
    Gaussian grid, whose edges by midpoints fall short of the pole, reach it.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> lat = xr.DataArray([82.0, 84.5, 87.0], dims="lat", name="lat")
    >>> latitude_edges(lat, lat).tolist()
    [80.75, 83.25, 85.75, 90.0]
    """
    edges = _bounds_1d(lat, obj, np.asarray(lat.values, dtype=float))
    if not _has_bounds(lat, obj):
        for end in (0, -1):
            if abs(edges[end]) > POLAR_EDGE:
                edges[end] = np.copysign(90.0, edges[end])
    return np.clip(edges, -90.0, 90.0)


def longitude_edges(lon: xr.DataArray, obj: xr.Dataset | xr.DataArray) -> np.ndarray:
    """Cell edges (n + 1) of a 1-D longitude in degrees, running without a break.

    From its CF bounds, or halfway between centres. Centres monotonic modulo 360 (a
    regional grid across the antimeridian stored -180..180) are unwrapped first
    (`unwrapped_longitudes`). Bounds that wrap around the circle (``[359.5, 0.5]`` for
    the cell at 0, or -180..180 bounds of 0..360 centres) are unwrapped, and the edges
    shifted by whole turns to lie about the first centre: a cell is never 359 degrees
    wide.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset(coords={"lon": ("lon", [0.0, 1.0], {"bounds": "lon_bnds"}),
    ...                         "lon_bnds": (("lon", "bnds"), [[359.5, 0.5], [0.5, 1.5]])})
    >>> longitude_edges(ds["lon"], ds).tolist()
    [-0.5, 0.5, 1.5]
    >>> lon = xr.DataArray([170.0, 180.0, -170.0], dims="lon", name="lon")
    >>> longitude_edges(lon, lon).tolist()
    [165.0, 175.0, 185.0, 195.0]
    """
    given = np.asarray(lon.values, dtype=float)
    unwrapped = unwrapped_longitudes(given)
    centres = given if unwrapped is None else unwrapped
    edges = _bounds_1d(lon, obj, centres)
    if _has_bounds(lon, obj):
        direction = np.sign(centres[-1] - centres[0]) or 1.0
        widths = np.diff(edges)
        # a cell across the seam: [175, -175], or [180, -175] shifted by a turn (by
        # `climlatent.grid_order`'s relabelling of its centre) to [540, 185]
        widths[widths * direction < 0] += 360.0 * direction
        widths[widths * direction > 360.0] -= 360.0 * direction
        edges = edges[0] + np.concatenate([[0.0], np.cumsum(widths)])
        edges += 360.0 * np.round((centres[0] - 0.5 * (edges[0] + edges[1])) / 360.0)
    return edges


def _midpoint_edges(centres: np.ndarray, name: object) -> np.ndarray:
    """Cell edges (n + 1) halfway between centres, the outer ones as far out."""
    if centres.size < 2:
        raise InputDataError(
            f"coordinate {name!r} has one point and no bounds: cell edges cannot be inferred"
        )
    mid = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate([[2 * centres[0] - mid[0]], mid, [2 * centres[-1] - mid[-1]]])


def continuous_longitudes(lon: np.ndarray) -> np.ndarray:
    """Longitudes relabelled to run without a break around the circle, if they have one.

    A regional grid across the antimeridian labelled -180..180 (or across Greenwich
    labelled 0..360) has its widest gap between neighbours, wider than 1.5 times the
    median spacing, inside its labels: the labels are shifted by 360 so that the gap
    falls at the back (``-175 ... -160, 160 ... 175`` becomes ``185 ... 200, 160 ...
    175``), and the grid's extent, centre and cell widths are its own. Grids without
    such a gap (global ones, and regional ones labelled without a break) come back as
    given.

    Examples
    --------
    >>> continuous_longitudes(np.array([-170.0, -160.0, 160.0, 170.0])).tolist()
    [190.0, 200.0, 160.0, 170.0]
    >>> continuous_longitudes(np.arange(0.0, 360.0, 90.0)).tolist()  # global: no break
    [0.0, 90.0, 180.0, 270.0]
    """
    ring = np.unique(np.round(np.mod(lon[np.isfinite(lon)], 360.0), 6))
    if ring.size < 3:
        return lon
    gaps = np.diff(np.append(ring, ring[0] + 360.0))
    widest = int(np.argmax(gaps))
    if gaps[widest] <= 1.5 * np.median(gaps):
        return lon
    start = ring[(widest + 1) % ring.size]  # the grid runs from here, eastwards
    # cut in the middle of the gap, far from every centre (not at ``start``, which is
    # rounded: a centre 1e-7 west of it went round the circle), and shift by whole turns
    cut = start - 0.5 * gaps[widest]
    return lon - 360.0 * np.floor((lon - cut) / 360.0)


def longitude_widths(lon: xr.DataArray, obj: xr.Dataset | xr.DataArray) -> np.ndarray:
    """Cell widths in degrees of a 1-D longitude, taken on the circle.

    From the CF bounds of each cell when present (a cell across the antimeridian,
    ``[175, -175]``, is 10 degrees wide), otherwise from the midpoints between
    neighbours of the `continuous_longitudes`: a regional grid across the antimeridian
    labelled -180..180 has the widths it has once relabelled 0..360.

    Examples
    --------
    >>> lon = xr.DataArray([170.0, 175.0, -180.0, -175.0], dims="lon", name="lon")
    >>> longitude_widths(lon, lon).tolist()
    [5.0, 5.0, 5.0, 5.0]
    """
    if _has_bounds(lon, obj):
        bounds = np.asarray(obj[bounds_name(lon)].values, dtype=float)
        width = np.abs(bounds[:, 1] - bounds[:, 0])
        return np.where((width > 180) & (width < 360), 360 - width, width)
    centres = continuous_longitudes(np.asarray(lon.values, dtype=float))
    order = np.argsort(centres, kind="stable")
    widths = np.empty_like(centres)
    widths[order] = np.diff(_midpoint_edges(centres[order], lon.name))
    return widths
