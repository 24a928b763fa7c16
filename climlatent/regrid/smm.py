"""Sparse matrix multiplication: apply regridding weights to numpy arrays.

Pure numpy/scipy, no xarray: the frontend hands each (dask) block here. The weights
are a ``(n_dst_cells, n_src_cells)`` sparse matrix acting on grids flattened in C
order (``index = i_y * n_x + i_x``).

Missing data and coverage
-------------------------
A weight row sums to the fraction of the destination cell (or point) covered by the
source domain: 1 inside it, between 0 and 1 for a conservative cell straddling its
edge, 0 outside it.

- ``skipna=False``: a NaN in any contributing source cell makes the output NaN, and
  so does incomplete coverage (row sum < 1), so a destination cell half outside the
  source domain is NaN rather than silently scaled down.
- ``skipna=True`` (xESMF semantics): NaNs are dropped and the result is renormalised
  by the valid fraction ``f = W @ valid``, the part of the destination cell covered
  by valid source data. The output is NaN where ``1 - f > na_thres`` (more than
  ``na_thres`` of the cell missing or outside the source domain) and where ``f`` is 0.
  ``na_thres=1.0`` keeps every cell with any valid overlap; ``na_thres=0.0`` asks for
  full valid coverage.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

COVERAGE_TOL = 1e-6  # row sums within this of 1 count as full coverage


def output_dtype(dtype: np.dtype) -> np.dtype:
    """Floating dtype of regridded data: float32 stays float32, integers become float.

    Examples
    --------
    >>> output_dtype(np.dtype("float32")), output_dtype(np.dtype("int64"))
    (dtype('float32'), dtype('float64'))
    """
    return np.result_type(dtype, np.float32)


def apply_weights(
    weights: sparse.sparray | sparse.spmatrix,
    array: np.ndarray,
    n_src_shape: tuple[int, int],
    n_dst_shape: tuple[int, int],
    skipna: bool = False,
    na_thres: float = 1.0,
) -> np.ndarray:
    """Regrid the two trailing (horizontal) axes of ``array`` with sparse weights.

    Parameters
    ----------
    weights : scipy sparse array, shape (n_dst_cells, n_src_cells)
        Regridding weights for grids flattened in C order.
    array : np.ndarray, shape (..., ny_src, nx_src)
        Data; leading axes (member, time, ...) are carried through.
    n_src_shape, n_dst_shape : tuple of int
        Horizontal shapes ``(ny, nx)`` of the source and destination grids.
    skipna : bool
        Drop NaNs and renormalise by the valid fraction (see the module notes).
    na_thres : float
        With ``skipna``, the largest missing fraction of a destination cell that still
        gets a value, in [0, 1].

    Returns
    -------
    np.ndarray, shape (..., ny_dst, nx_dst)
        Regridded data, dtype from :func:`output_dtype`.

    Examples
    --------
    >>> w = sparse.csr_array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    >>> apply_weights(w, np.array([[[1.0, 3.0, 5.0]]]), (1, 3), (1, 2)).tolist()
    [[[2.0, 5.0]]]
    >>> x = np.array([[1.0, np.nan, 5.0]])
    >>> apply_weights(w, x, (1, 3), (1, 2)).tolist()
    [[nan, 5.0]]
    >>> apply_weights(w, x, (1, 3), (1, 2), skipna=True).tolist()
    [[1.0, 5.0]]
    >>> apply_weights(w, x, (1, 3), (1, 2), skipna=True, na_thres=0.25).tolist()
    [[nan, 5.0]]
    """
    if array.shape[-2:] != tuple(n_src_shape):
        raise ValueError(
            f"horizontal shape {array.shape[-2:]} of the data differs from the "
            f"source grid shape {tuple(n_src_shape)}"
        )
    leading = array.shape[:-2]
    columns = array.reshape(-1, weights.shape[1]).T  # (n_src_cells, n_fields)
    if skipna:
        valid = ~np.isnan(columns)
        total = weights @ np.where(valid, columns, 0.0)
        fraction = weights @ valid.astype(np.float64)
        keep = (fraction > COVERAGE_TOL) & (1.0 - fraction <= na_thres + COVERAGE_TOL)
        out = np.where(keep, total / np.where(keep, fraction, 1.0), np.nan)
    else:
        out = weights @ columns
        coverage = np.asarray(weights.sum(axis=1)).ravel()
        out[coverage < 1.0 - COVERAGE_TOL] = np.nan
    return out.T.reshape(*leading, *n_dst_shape).astype(output_dtype(array.dtype), copy=False)
