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

import math
from collections.abc import Iterator

import numpy as np
from scipy import sparse

COVERAGE_TOL = 1e-6  # row sums within this of 1 count as full coverage
BLOCK_BYTES = 16 * 2**20  # source data read and regridded at once, at most (one field more)
PRODUCT_VALUES = 2**18  # source values per sparse product (float64 copy: 2 MiB)


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
    fields = array.reshape(-1, weights.shape[1])  # (n_fields, n_src_cells)
    out = np.empty((fields.shape[0], weights.shape[0]), output_dtype(array.dtype))
    partial = np.asarray(weights.sum(axis=1)).ravel() < 1.0 - COVERAGE_TOL
    step = max(1, PRODUCT_VALUES // weights.shape[1])  # fields per sparse product
    for start in range(0, fields.shape[0], step):
        columns = fields[start : start + step].T  # (n_src_cells, <= step)
        out[start : start + step] = _regrid_columns(weights, columns, skipna, na_thres, partial).T
    return out.reshape(*leading, *n_dst_shape)


def _regrid_columns(
    weights: sparse.sparray | sparse.spmatrix,
    columns: np.ndarray,
    skipna: bool,
    na_thres: float,
    partial: np.ndarray,
) -> np.ndarray:
    """``weights @ columns`` with the NaN rules of the module notes, in float64.

    Each output value sums its row's weights in the same order whatever the number
    of columns, so that regridding block by block gives the same bits as at once.
    """
    if skipna:
        valid = ~np.isnan(columns)
        total = weights @ np.where(valid, columns, 0.0)
        fraction = weights @ valid.astype(np.float64)
        keep = (fraction > COVERAGE_TOL) & (1.0 - fraction <= na_thres + COVERAGE_TOL)
        return np.where(keep, total / np.where(keep, fraction, 1.0), np.nan)
    out = weights @ columns
    out[partial] = np.nan
    return out


def leading_blocks(shape: tuple[int, ...], n_fields: int) -> Iterator[tuple[slice, ...]]:
    """Blocks of the leading axes of an array of fields, each at most ``n_fields`` fields.

    The blocks cover the leading axes in C order (the order of a netCDF file's
    records): whole trailing slabs where they fit, else one index of the outer axis at
    a time and blocks of the next axis within it.

    Parameters
    ----------
    shape : tuple of int
        Sizes of the leading (non-horizontal) axes; ``()`` for a single field.
    n_fields : int
        Most fields (horizontal slices) per block; at least one is always taken.

    Yields
    ------
    tuple of slice
        One slice per leading axis.

    Examples
    --------
    >>> [b[0] for b in leading_blocks((5,), 2)]
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    >>> [(b[0].start, b[1].start, b[1].stop) for b in leading_blocks((2, 3), 2)]
    [(0, 0, 2), (0, 2, 3), (1, 0, 2), (1, 2, 3)]
    >>> len(list(leading_blocks((2, 3), 6))), list(leading_blocks((), 1))
    (1, [()])
    """
    if not shape:
        yield ()
        return
    inner = math.prod(shape[1:])
    if inner <= n_fields:  # whole slabs of the trailing axes
        step = max(1, n_fields // max(inner, 1))
        rest = (slice(None),) * (len(shape) - 1)
        for start in range(0, shape[0], step):
            yield (slice(start, min(start + step, shape[0])), *rest)
        return
    for index in range(shape[0]):
        for rest in leading_blocks(shape[1:], n_fields):
            yield (slice(index, index + 1), *rest)
