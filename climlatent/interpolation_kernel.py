"""The coarse-to-fine interpolation kernel of :class:`climlatent.ProxyDownscaler`.

Each valid fine cell takes a weighted sum of its nearest valid coarse cells: bilinear
weights where the coarse cells surround it, its nearest coarse cell where none does
(a coast). The kernel is fixed at ``fit`` and stored with the model, whose torch
module applies it to the coarse latent.
"""

from __future__ import annotations

import numpy as np
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
    bilinear = regridder.weights[fine.mask][:, coarse.mask].toarray()
    k = min(k, coarse.n_features)
    _, neighbours = cKDTree(_unit_vectors(coarse)).query(_unit_vectors(fine), k=k)
    neighbours = np.asarray(neighbours).reshape(fine.n_features, k)
    weights = np.take_along_axis(bilinear, neighbours, axis=1)
    total = weights.sum(axis=1, keepdims=True)
    nearest = np.zeros_like(weights)
    nearest[:, 0] = 1.0
    covered = total > 1e-9
    weights = np.where(covered, weights / np.where(covered, total, 1.0), nearest)
    return neighbours, weights


def _unit_vectors(layout: FieldLayout) -> np.ndarray:
    """Unit-sphere positions of the valid cell centres of a layout."""
    info = find_grid(layout.grid)
    lat, lon = layout.grid[info.lat], layout.grid[info.lon]
    if lat.ndim == 1:
        lat, lon = xr.broadcast(lat, lon)
    phi = np.deg2rad(lat.transpose(*layout.spatial_dims).values.ravel()[layout.mask])
    lam = np.deg2rad(lon.transpose(*layout.spatial_dims).values.ravel()[layout.mask])
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], 1)
