"""Regridding weight engines: the exact climlatent engine and an xESMF adapter.

Every engine returns a ``scipy.sparse.csr_array`` of shape
``(n_dst_cells, n_src_cells)`` for grids flattened in C order, rows normalised so that
a row sums to the fraction of the destination cell the source domain covers.

The climlatent engine (numpy/scipy only):

- ``conservative``: exact spherical overlap areas of latitude-longitude cells. A cell
  spans a latitude band and a longitude interval, so the overlap of two cells is
  ``R**2 * (overlap in sin(lat)) * (overlap in lon)``: the weights are the Kronecker
  product of a latitude factor and a longitude factor, each normalised by the
  destination cell's extent. Longitudes are periodic (0..360 and -180..180 grids mix).
- ``bilinear``: the four surrounding source centres of each destination point, linear
  in degrees along each axis (as ``scipy.interpolate.RegularGridInterpolator``);
  periodic in longitude when the source grid is global, no weights outside its domain.
- ``nearest``: the source centre nearest along great circles (a KD-tree on unit-sphere
  xyz, where chord length orders points as arc length does), everywhere.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse

METHODS = ("conservative", "bilinear", "nearest")
XESMF_METHODS = {"conservative": "conservative", "bilinear": "bilinear", "nearest": "nearest_s2d"}
_DEG_TOL = 1e-9  # degrees: points this close to a source axis end are still inside


@dataclass(frozen=True)
class GridGeometry:
    """Cell centres and, for rectilinear grids, cell edges, in degrees.

    Attributes
    ----------
    lat, lon : np.ndarray
        Centres: 1-D for a rectilinear grid, 2-D ``(ny, nx)`` otherwise.
    lat_edges, lon_edges : np.ndarray or None
        The ``n + 1`` edges of each 1-D axis (latitudes within [-90, 90]); ``None``
        where a method needs no edges.

    Examples
    --------
    >>> g = GridGeometry(np.array([-45.0, 45.0]), np.arange(0.0, 360, 90),
    ...     np.array([-90.0, 0, 90]), np.arange(-45.0, 360, 90))
    >>> g.shape, g.is_global
    ((2, 4), True)
    """

    lat: np.ndarray
    lon: np.ndarray
    lat_edges: np.ndarray | None = None
    lon_edges: np.ndarray | None = None

    @property
    def rectilinear(self) -> bool:
        """Whether the centres are 1-D axes."""
        return self.lat.ndim == 1

    @property
    def shape(self) -> tuple[int, int]:
        """Horizontal shape ``(ny, nx)``."""
        return (self.lat.size, self.lon.size) if self.rectilinear else self.lat.shape

    @property
    def size(self) -> int:
        """Number of cells."""
        return self.shape[0] * self.shape[1]

    @property
    def is_global(self) -> bool:
        """Whether the longitude edges span the full 360 degrees (see `close_ring`)."""
        return self.lon_edges is not None and bool(np.ptp(self.lon_edges) >= 360.0 - 1e-9)

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """Latitude and longitude of every cell centre, 2-D ``(ny, nx)``."""
        if self.rectilinear:
            return tuple(np.meshgrid(self.lat, self.lon, indexing="ij"))
        return self.lat, self.lon

    def extent(self) -> tuple[float, float, float, float]:
        """``(lat_min, lat_max, lon_min, lon_max)`` from the edges, else the centres."""
        lat = self.lat if self.lat_edges is None else self.lat_edges
        lon = self.lon if self.lon_edges is None else self.lon_edges
        return (float(np.min(lat)), float(np.max(lat)), float(np.min(lon)), float(np.max(lon)))


def close_ring(lon_edges: np.ndarray) -> np.ndarray:
    """Longitude edges that span 360 degrees to within a hundredth of a cell, closed.

    The edges of longitudes stored in float32 miss a whole turn by their round-off
    (1e-5 degrees for a 0.1-degree grid), which would leave a sliver of the seam
    uncovered; the last edge is put a whole turn from the first.

    Examples
    --------
    >>> close_ring(np.array([-0.05, 179.95, 359.94999])).tolist()
    [-0.05, 179.95, 359.95]
    >>> close_ring(np.array([0.0, 10.0, 20.0])).tolist()  # regional: as it is
    [0.0, 10.0, 20.0]
    """
    span = lon_edges[-1] - lon_edges[0]
    slack = 0.01 * float(np.median(np.abs(np.diff(lon_edges))))
    if abs(abs(span) - 360.0) > slack:
        return lon_edges
    closed = lon_edges.copy()
    closed[-1] = closed[0] + np.copysign(360.0, span)
    return closed


def domains_overlap(src: GridGeometry, dst: GridGeometry) -> bool:
    """Whether two grids' latitude ranges and (periodic) longitude ranges intersect.

    Examples
    --------
    >>> a = GridGeometry(np.array([0.0, 10]), np.array([350.0, 355]))
    >>> domains_overlap(a, GridGeometry(np.array([5.0, 6]), np.array([-8.0, -6])))
    True
    >>> domains_overlap(a, GridGeometry(np.array([5.0, 6]), np.array([0.0, 3])))
    False
    """
    s_lat0, s_lat1, s_lon0, s_lon1 = src.extent()
    d_lat0, d_lat1, d_lon0, d_lon1 = dst.extent()
    if s_lat0 > d_lat1 or d_lat0 > s_lat1:
        return False
    return bool(
        (d_lon0 - s_lon0) % 360.0 <= s_lon1 - s_lon0 or (s_lon0 - d_lon0) % 360.0 <= d_lon1 - d_lon0
    )


def _intervals(edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.minimum(edges[:-1], edges[1:]), np.maximum(edges[:-1], edges[1:])


def _overlap_factor(
    src_edges: np.ndarray,
    dst_edges: np.ndarray,
    measure: Callable[[np.ndarray], np.ndarray],
    period: float | None,
) -> sparse.coo_array:
    """Overlap of 1-D cells as a fraction of each destination cell's measure.

    Source cells are sorted and, with a ``period``, repeated at every shift by the
    period that can reach a destination cell; candidate pairs come from a binary
    search, so the cost is linear in the number of overlapping pairs.
    """
    src_lo, src_hi = _intervals(src_edges)
    dst_lo, dst_hi = _intervals(dst_edges)
    order = np.argsort(src_lo)
    src_lo, src_hi = src_lo[order], src_hi[order]
    if period is not None:
        shifts = period * np.arange(
            np.floor((dst_lo.min() - src_hi.max()) / period),
            np.ceil((dst_hi.max() - src_lo.min()) / period) + 1,
        )
        src_lo = (src_lo[None, :] + shifts[:, None]).ravel()
        src_hi = (src_hi[None, :] + shifts[:, None]).ravel()
        order = np.tile(order, shifts.size)
    start = np.searchsorted(src_hi, dst_lo, side="right")
    counts = np.maximum(np.searchsorted(src_lo, dst_hi, side="left") - start, 0)
    rows = np.repeat(np.arange(dst_lo.size), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    cols = np.repeat(start, counts) + offsets
    overlap = measure(np.minimum(src_hi[cols], dst_hi[rows])) - measure(
        np.maximum(src_lo[cols], dst_lo[rows])
    )
    size = measure(dst_hi) - measure(dst_lo)
    keep = overlap > 0
    values = overlap[keep] / size[rows[keep]]
    return sparse.coo_array(
        (values, (rows[keep], order[cols[keep]])), shape=(dst_lo.size, src_edges.size - 1)
    )


def _sin_degrees(lat: np.ndarray) -> np.ndarray:
    return np.sin(np.deg2rad(lat))


def conservative_weights(src: GridGeometry, dst: GridGeometry) -> sparse.csr_array:
    """Exact first-order conservative weights between rectilinear lat-lon grids.

    Parameters
    ----------
    src, dst : GridGeometry
        Rectilinear grids with edges.

    Returns
    -------
    scipy.sparse.csr_array
        Overlap area over destination cell area, ``(n_dst_cells, n_src_cells)``.

    Examples
    --------
    >>> src = GridGeometry(np.array([-45.0, 45.0]), np.array([90.0, 270.0]),
    ...     np.array([-90.0, 0.0, 90.0]), np.array([0.0, 180.0, 360.0]))
    >>> dst = GridGeometry(np.array([0.0]), np.array([0.0]),
    ...     np.array([-90.0, 90.0]), np.array([-180.0, 180.0]))
    >>> conservative_weights(src, dst).toarray().round(3).tolist()
    [[0.25, 0.25, 0.25, 0.25]]
    """
    lat_factor = _overlap_factor(src.lat_edges, dst.lat_edges, _sin_degrees, None)
    lon_factor = _overlap_factor(src.lon_edges, dst.lon_edges, np.asarray, 360.0)
    return sparse.csr_array(sparse.kron(lat_factor, lon_factor))


def _brackets(
    centres: np.ndarray, points: np.ndarray, periodic: bool, wrap: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Neighbours along one axis: left index, right index, fraction, inside flag.

    ``wrap`` maps points into the 360 degrees starting at the first centre (longitude
    conventions); ``periodic`` also joins the last centre to the first.
    """
    order = np.argsort(centres)
    axis = centres[order]
    if wrap:
        origin = axis[0] - _DEG_TOL
        points = origin + np.mod(points - origin, 360.0)
    if periodic:
        axis = np.append(axis, axis[0] + 360.0)
        order = np.append(order, order[0])
    left = np.clip(np.searchsorted(axis, points, side="right") - 1, 0, axis.size - 2)
    span = axis[left + 1] - axis[left]
    frac = (points - axis[left]) / span
    inside = (frac >= -_DEG_TOL / span) & (frac <= 1.0 + _DEG_TOL / span)
    return order[left], order[left + 1], np.clip(frac, 0.0, 1.0), inside


def bilinear_weights(src: GridGeometry, dst: GridGeometry) -> sparse.csr_array:
    """Bilinear weights from a rectilinear source grid to the centres of ``dst``.

    Parameters
    ----------
    src : GridGeometry
        Rectilinear source grid with at least two centres per axis (edges tell
        whether it is global in longitude).
    dst : GridGeometry
        Any destination grid; its centres are the target points.

    Returns
    -------
    scipy.sparse.csr_array
        Up to four weights per destination point; none outside the source domain.

    Examples
    --------
    >>> src = GridGeometry(np.array([0.0, 10.0]), np.array([0.0, 10.0]))
    >>> dst = GridGeometry(np.array([2.5]), np.array([5.0]))
    >>> bilinear_weights(src, dst).toarray().tolist()
    [[0.375, 0.375, 0.125, 0.125]]
    """
    dst_lat, dst_lon = (a.ravel() for a in dst.points())
    y0, y1, fy, in_y = _brackets(src.lat, dst_lat, periodic=False, wrap=False)
    x0, x1, fx, in_x = _brackets(src.lon, dst_lon, periodic=src.is_global, wrap=True)
    rows = np.flatnonzero(in_y & in_x)
    n_x = src.lon.size
    corners = [
        (y0, x0, (1 - fy) * (1 - fx)),
        (y0, x1, (1 - fy) * fx),
        (y1, x0, fy * (1 - fx)),
        (y1, x1, fy * fx),
    ]
    weights = sparse.csr_array(
        (
            np.concatenate([w[rows] for _, _, w in corners]),
            (
                np.tile(rows, 4),
                np.concatenate([y[rows] * n_x + x[rows] for y, x, _ in corners]),
            ),
        ),
        shape=(dst_lat.size, src.size),
    )
    weights.eliminate_zeros()
    return weights


def _unit_xyz(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    phi, lam = np.deg2rad(lat.ravel()), np.deg2rad(lon.ravel())
    return np.column_stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])


def nearest_weights(src: GridGeometry, dst: GridGeometry) -> sparse.csr_array:
    """Weight 1 on the great-circle nearest source centre of each destination centre.

    Examples
    --------
    >>> src = GridGeometry(np.array([0.0, 10.0]), np.array([0.0, 350.0]))
    >>> nearest_weights(src, GridGeometry(np.array([8.0]), np.array([-8.0]))).indices.tolist()
    [3]
    """
    from scipy.spatial import cKDTree  # here: scipy.spatial takes 0.1-0.3 s to import

    _, nearest = cKDTree(_unit_xyz(*src.points())).query(_unit_xyz(*dst.points()))
    n_dst = nearest.size
    return sparse.csr_array((np.ones(n_dst), (np.arange(n_dst), nearest)), shape=(n_dst, src.size))


def climlatent_weights(src: GridGeometry, dst: GridGeometry, method: str) -> sparse.csr_array:
    """Weights from the climlatent engine (see the module notes).

    Examples
    --------
    >>> g = GridGeometry(np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    >>> climlatent_weights(g, g, "nearest").toarray().tolist() == np.eye(4).tolist()
    True
    """
    build = {
        "conservative": conservative_weights,
        "bilinear": bilinear_weights,
        "nearest": nearest_weights,
    }[method]
    return build(src, dst)


def xesmf_available() -> bool:
    """Whether xESMF can be imported.

    Examples
    --------
    >>> isinstance(xesmf_available(), bool)
    True
    """
    return importlib.util.find_spec("xesmf") is not None


def _xesmf_grid(grid: GridGeometry):
    import xarray as xr

    dims = ("lat", "lon") if grid.rectilinear else (("y", "x"), ("y", "x"))
    variables = {"lat": (dims[0], grid.lat), "lon": (dims[1], grid.lon)}
    if grid.lat_edges is not None and grid.lon_edges is not None:
        variables |= {"lat_b": ("lat_b", grid.lat_edges), "lon_b": ("lon_b", grid.lon_edges)}
    return xr.Dataset(coords=variables)


def xesmf_weights(src: GridGeometry, dst: GridGeometry, method: str) -> sparse.csr_array:
    """Weights built by ``xesmf.Regridder`` (ESMF), as a scipy sparse array.

    ESMF treats cell edges as great-circle arcs and interpolates bilinearly in 3-D, so
    its weights approximate, rather than equal, those of the climlatent engine.

    Raises
    ------
    ImportError
        xESMF is not installed.

    Examples
    --------
    >>> g = GridGeometry(np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    >>> xesmf_weights(g, g, "nearest").shape  # doctest: +SKIP
    (4, 4)
    """
    if not xesmf_available():
        raise ImportError(
            "engine='xesmf' needs xESMF (conda install -c conda-forge xesmf); "
            "engine='climlatent' needs nothing beyond scipy"
        )
    import xesmf

    regridder = xesmf.Regridder(
        _xesmf_grid(src),
        _xesmf_grid(dst),
        XESMF_METHODS[method],
        periodic=src.is_global and method != "conservative",
        unmapped_to_nan=False,
    )
    return sparse.csr_array(regridder.weights.data.to_scipy_sparse())


ENGINES = {"climlatent": climlatent_weights, "xesmf": xesmf_weights}
