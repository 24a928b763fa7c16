"""The coarse-to-fine interpolation kernel of :class:`climlatent.ProxyDownscaler`.

Each valid fine cell takes a weighted sum of its nearest valid coarse cells: bilinear
weights where the coarse cells surround it, its nearest coarse cell where none does
(a coast). The kernel is fixed at ``fit`` and stored with the model, whose torch
module applies it to the coarse latent.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import xarray as xr
from scipy.spatial import cKDTree

from climlatent.batching import FieldLayout
from climlatent.grid import find_grid
from climlatent.regrid import Regridder

N_NEIGHBOURS = 9


def interpolation_kernel(
    coarse: FieldLayout, fine: FieldLayout, k: int = N_NEIGHBOURS
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest valid coarse cells of each valid fine cell, with bilinear weights.

    Bilinear weights (from :class:`climlatent.Regridder`) are renormalised over the
    valid coarse cells; a fine cell with no valid bilinear neighbour (e.g. on a coast)
    takes its nearest valid coarse cell.

    Returns
    -------
    neighbours, weights : np.ndarray
        ``(n_fine_valid, k)`` coarse-cell indices (into the valid coarse cells) and
        weights summing to one per row.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> coarse = xr.DataArray(np.ones((2, 2)), dims=("lat", "lon"), name="t",
    ...     coords={"lat": [0.0, 10.0], "lon": [0.0, 10.0]})
    >>> fine = xr.DataArray(np.ones((3, 3)), dims=("lat", "lon"), name="t",
    ...     coords={"lat": [0.0, 5.0, 10.0], "lon": [0.0, 5.0, 10.0]})
    >>> idx, w = interpolation_kernel(FieldLayout.from_data(coarse),
    ...                               FieldLayout.from_data(fine), k=4)
    >>> idx.shape, bool(np.allclose(w.sum(axis=1), 1)), float(w[4].max())
    ((9, 4), True, 0.25)
    """
    src = coarse.grid.drop_vars("valid_mask")
    dst = fine.grid.drop_vars("valid_mask")
    regridder = Regridder(src, dst, "bilinear", engine="climlatent")
    bilinear = sp.csr_matrix(regridder.weights)[fine.mask][:, coarse.mask]
    k = min(k, coarse.n_features)
    _, nearest = cKDTree(_unit_vectors(coarse)).query(_unit_vectors(fine), k=k)
    nearest = np.asarray(nearest).reshape(fine.n_features, k)
    corners, corner_weights = _padded_rows(bilinear.tocsr())
    # the bilinear corners first, then the nearest cells that are not corners: the
    # nearest k by distance can miss corners where cells are narrow one way (polar rows)
    candidates = np.concatenate([corners, nearest], axis=1)
    repeated = (candidates[:, :, None] == candidates[:, None, :]) & np.tri(
        candidates.shape[1], k=-1, dtype=bool
    )
    unusable = (candidates < 0) | repeated.any(axis=2)
    order = np.argsort(unusable, axis=1, kind="stable")[:, :k]
    neighbours = np.take_along_axis(candidates, order, axis=1)
    matches = neighbours[:, :, None] == corners[:, None, :]
    weights = (matches * corner_weights[:, None, :]).sum(axis=2)
    total = weights.sum(axis=1, keepdims=True)
    nearest_only = np.zeros_like(weights)
    nearest_only[:, 0] = 1.0
    covered = total > 1e-9
    neighbours = np.where(covered, neighbours, nearest)
    weights = np.where(covered, weights / np.where(covered, total, 1.0), nearest_only)
    return neighbours, weights


def _padded_rows(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """The nonzero columns of each row of ``matrix`` and their values, padded with -1, 0."""
    counts = np.diff(matrix.indptr)
    width = max(int(counts.max(initial=0)), 1)
    columns = np.full((matrix.shape[0], width), -1, dtype=np.int64)
    values = np.zeros((matrix.shape[0], width))
    rows = np.repeat(np.arange(matrix.shape[0]), counts)
    slots = np.arange(matrix.nnz) - np.repeat(matrix.indptr[:-1], counts)
    columns[rows, slots], values[rows, slots] = matrix.indices, matrix.data
    return columns, values


def _unit_vectors(layout: FieldLayout) -> np.ndarray:
    """Unit-sphere positions of the valid cell centres of a layout."""
    info = find_grid(layout.grid)
    lat, lon = layout.grid[info.lat], layout.grid[info.lon]
    if lat.ndim == 1:
        lat, lon = xr.broadcast(lat, lon)
    phi = np.deg2rad(lat.transpose(*layout.spatial_dims).values.ravel()[layout.mask])
    lam = np.deg2rad(lon.transpose(*layout.spatial_dims).values.ravel()[layout.mask])
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], 1)
