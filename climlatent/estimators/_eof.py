"""Numerical kernels of EOF analysis and ridge regression (numpy only).

EOFs are the right singular vectors of the centred, area-weighted anomaly matrix
``(X - mean) * sqrt(w)``: the weighting makes the decomposition maximise
area-integrated variance, so that dense high-latitude rows of a lat/lon grid do not
dominate. Principal components are the projections of weighted anomalies onto them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import DTypeLike

from climlatent.errors import InputDataError

#: Bytes of the float64 fields `EOFBasis` forms at a time (a core's share of the cache)
CHUNK_BYTES = 4 * 2**20
CHUNK_ROWS = 64  # rows of a chunk at least

if TYPE_CHECKING:
    from climlatent.estimators.base import ArraySpec


@dataclass(frozen=True)
class EOFBasis:
    """A fitted EOF basis.

    Attributes
    ----------
    mean : np.ndarray
        Sample mean of each cell, shape (n_cells,).
    sqrt_weights : np.ndarray
        Square roots of the cell weights, shape (n_cells,).
    eofs : np.ndarray
        Orthonormal patterns in weighted space, shape (n_modes, n_cells), each with its
        largest-magnitude entry positive (`pattern_signs`).
    explained_variance_ratio : np.ndarray
        Fraction of the weighted variance each mode explains, shape (n_modes,).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(50, 4))
    >>> basis = fit_eofs(x, np.ones(4), n_modes=4)
    >>> np.allclose(basis.reconstruct(basis.project(x)), x)
    True
    """

    mean: np.ndarray
    sqrt_weights: np.ndarray
    eofs: np.ndarray
    explained_variance_ratio: np.ndarray

    def project(self, x: np.ndarray) -> np.ndarray:
        """Principal components of samples ``x`` (n, n_cells) -> float64 (n, n_modes).

        The weighted anomalies are formed in float64 a few rows at a time (see
        `_row_chunks`), not as one float64 copy of ``x``.
        """
        pcs = np.empty((x.shape[0], self.eofs.shape[0]))
        for rows in _row_chunks(x.shape[0], self.eofs.shape[1]):
            weighted = np.subtract(x[rows], self.mean, dtype=np.float64)
            weighted *= self.sqrt_weights
            np.matmul(weighted, self.eofs.T, out=pcs[rows])
        return pcs

    def reconstruct(self, pcs: np.ndarray) -> np.ndarray:
        """Fields from principal components (n, n_modes) -> float32 (n, n_cells).

        Computed in float64 a few rows at a time (see `_row_chunks`) and rounded once.
        """
        fields = np.empty((pcs.shape[0], self.eofs.shape[1]), np.float32)
        for rows in _row_chunks(pcs.shape[0], self.eofs.shape[1]):
            chunk = np.asarray(pcs[rows], np.float64) @ self.eofs
            chunk /= self.sqrt_weights
            chunk += self.mean
            fields[rows] = chunk
        return fields


def _row_chunks(n_rows: int, n_cells: int) -> list[slice]:
    """Slices of ``n_rows`` whose float64 fields of ``n_cells`` fill ``CHUNK_BYTES``.

    At least ``CHUNK_ROWS`` rows each: every product reads all the EOFs. A float64
    copy of all the samples at once doubles their memory and maps it afresh: projecting
    10 years of daily float32 fields on 20 000 cells (278 MB) took 1.38 s and 557 MB
    more peak memory that way, 0.22 s and 20 MB in chunks.

    Examples
    --------
    >>> _row_chunks(600, n_cells=2000)
    [slice(0, 262, None), slice(262, 524, None), slice(524, 600, None)]
    """
    step = max(CHUNK_ROWS, CHUNK_BYTES // (8 * max(n_cells, 1)))
    return [slice(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]


def basis_state(basis: EOFBasis, prefix: str) -> dict[str, np.ndarray]:
    """The arrays of ``basis`` named ``<prefix>.<field>``, for an estimator's state.

    Examples
    --------
    >>> sorted(basis_state(fit_eofs(np.eye(3), np.ones(3), 1), "proxy"))[:2]
    ['proxy.eofs', 'proxy.explained_variance_ratio']
    """
    return {f"{prefix}.{field.name}": getattr(basis, field.name) for field in fields(EOFBasis)}


def basis_from_state(state: Mapping[str, np.ndarray], prefix: str) -> EOFBasis:
    """The basis that :func:`basis_state` stored under ``prefix``.

    Examples
    --------
    >>> basis = fit_eofs(np.eye(3), np.ones(3), 1)
    >>> basis_from_state(basis_state(basis, "p"), "p").eofs.shape
    (1, 3)
    """
    return EOFBasis(**{field.name: state[f"{prefix}.{field.name}"] for field in fields(EOFBasis)})


def basis_spec(prefix: str, n_cells: int) -> dict[str, ArraySpec]:
    """Shapes and dtypes of the arrays :func:`basis_state` gives for ``n_cells`` cells.

    The number of modes, chosen by the fit, is the shared size ``<prefix>_modes``.

    Examples
    --------
    >>> basis_spec("proxy", 4)["proxy.eofs"]
    (('proxy_modes', 4), 'float64')
    """
    modes = f"{prefix}_modes"
    shapes = {
        "mean": (n_cells,),
        "sqrt_weights": (n_cells,),
        "eofs": (modes, n_cells),
        "explained_variance_ratio": (modes,),
    }
    return {f"{prefix}.{name}": (shape, "float64") for name, shape in shapes.items()}


def fit_eofs(x: np.ndarray, weights: np.ndarray, n_modes: int, name: str | None = None) -> EOFBasis:
    """Leading EOFs of samples ``x`` (n, n_cells) under cell weights ``weights``.

    Parameters
    ----------
    x : np.ndarray
        Sample matrix, one row per sample.
    weights : np.ndarray
        Positive cell weights (e.g. cell areas), shape (n_cells,).
    n_modes : int
        Number of modes to keep; capped at the numerical rank of the anomaly matrix,
        judged against the round-off of the data before centring, in their own dtype
        (`centred_rank`).
    name : str, optional
        The setting that chose ``n_modes`` as an exact count: then more modes than
        ``min(n_samples - 1, n_cells)`` are refused, naming it. None: at most
        ``n_modes``.

    Raises
    ------
    InputDataError
        ``name`` is given and ``n_modes`` exceeds what the data allow, or a weight is
        not positive (a cell of zero area has no weighted EOF to reconstruct it).

    Examples
    --------
    >>> x = np.outer(np.sin(np.arange(20.0)), [1.0, 2.0, 0.0])
    >>> basis = fit_eofs(x, np.ones(3), n_modes=2)
    >>> basis.eofs.shape, round(float(basis.explained_variance_ratio[0]), 6)
    ((1, 3), 1.0)
    """
    dtype = np.asarray(x).dtype
    x = np.asarray(x, np.float64)
    limit = min(x.shape[0] - 1, x.shape[1])
    if name is not None and n_modes > limit:
        raise InputDataError(
            f"{name}={n_modes} is more than {x.shape[0]} samples of {x.shape[1]} cells "
            f"allow (at most {limit} modes); lower it or give more data"
        )
    weights = np.asarray(weights, np.float64)
    if not np.all(weights > 0):
        cells = np.flatnonzero(~(weights > 0))
        raise InputDataError(
            f"{cells.size} of {weights.size} cells have weight {weights[cells[0]]:g} (cell "
            f"{cells[0]} of the valid cells): EOFs need positive cell areas; a cell of zero "
            "area comes from degenerate bounds, such as latitude bounds [90, 90]"
        )
    mean = x.mean(axis=0)
    sqrt_weights = np.sqrt(weights)
    _, singular, vt = np.linalg.svd((x - mean) * sqrt_weights, full_matrices=False)
    total = float(np.sum(singular**2))
    offset = np.sqrt(x.shape[0]) * float(np.linalg.norm(mean * sqrt_weights))
    k = max(1, min(n_modes, centred_rank(singular, x.shape, offset, dtype)))
    explained = singular[:k] ** 2 / total if total else np.zeros(k)
    return EOFBasis(mean, sqrt_weights, vt[:k] * pattern_signs(vt[:k])[:, None], explained)


def centred_rank(
    singular: np.ndarray, shape: tuple[int, ...], offset: float, dtype: DTypeLike = np.float64
) -> int:
    """Numerical rank of centred data of ``shape`` from its singular values, largest first.

    Round-off is that of the data before centring, whose norm is at most
    ``singular[0] + offset`` (``offset``: ``sqrt(n_samples)`` times the norm of the mean
    removed); singular values above ``max(shape) * eps`` times that count, as in
    :func:`numpy.linalg.matrix_rank`. Measured against the anomalies alone, a cell that
    copies another plus 1e5 (1e-11 apart after centring) was a mode of its own.

    Data stored in ``dtype`` coarser than float64 (float32) also carry its rounding:
    at most ``eps / 2`` of each value, so at most ``eps / 2`` times the Frobenius norm
    of the data before centring, ``hypot(norm(singular), offset)``, in any direction
    (Weyl's inequality); singular values within it are rounding, not modes. A float32
    cell copying another plus 1e5 was 1e-4 of its spread apart after centring, a mode.
    (``max(shape)`` times float32's eps, as matrix_rank, would bound far more than the
    rounding: it took a float32 pressure field of 384 cells from 384 modes to 3.)

    Examples
    --------
    >>> centred_rank(np.array([1.0, 1e-12]), (100, 2), offset=0.0)
    2
    >>> centred_rank(np.array([1.0, 1e-12]), (100, 2), offset=1e5)
    1
    >>> centred_rank(np.array([1.0, 1e-4]), (100, 2), 1e4, np.float32)
    1
    """
    scale = (singular[0] if singular.size else 0.0) + offset
    tolerance = scale * max(shape) * np.finfo(np.float64).eps
    if np.issubdtype(dtype, np.floating):
        storage = np.finfo(dtype).eps / 2 * np.hypot(np.linalg.norm(singular), offset)
        tolerance = max(tolerance, storage)
    return int(np.sum(singular > tolerance))


def pattern_signs(patterns: np.ndarray) -> np.ndarray:
    """Signs (+-1) that make the largest-magnitude entry of each row of ``patterns`` positive.

    Singular vectors are defined up to sign, and LAPACK's pick changes with the order
    of the samples; this fixes it, as scikit-learn's ``svd_flip`` does.

    Examples
    --------
    >>> pattern_signs(np.array([[0.6, -0.8], [0.6, 0.8]])).tolist()
    [-1.0, 1.0]
    """
    rows = np.arange(len(patterns))
    return np.where(patterns[rows, np.argmax(np.abs(patterns), axis=1)] < 0, -1.0, 1.0)


def fit_ridge(x: np.ndarray, y: np.ndarray, ridge: float = 0.0) -> np.ndarray:
    """Coefficients ``B`` (1 + n_x, n_y) of ``y ~ [1, x] @ B`` by ridge least squares.

    The intercept is not penalised. With ``ridge=0`` this is ordinary least squares
    (minimum-norm solution where rank deficient). A ridge solves the least squares of
    the centred ``x`` stacked on ``sqrt(ridge) I`` (``y`` on zeros) by SVD, not the normal
    equations, which square the condition number: at condition 1e8 and ridge 1e-12
    they put the coefficients 7e-5 off (relative), now 1e-8.

    Examples
    --------
    >>> x = np.arange(10.0)[:, None]
    >>> np.round(fit_ridge(x, 3 + 2 * x), 10).ravel().tolist()
    [3.0, 2.0]
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - x_mean, y - y_mean
    if ridge > 0:
        xc = np.vstack([xc, np.sqrt(ridge) * np.eye(x.shape[1])])
        yc = np.vstack([yc, np.zeros((x.shape[1], *yc.shape[1:]))])
    slope = np.linalg.lstsq(xc, yc, rcond=None)[0]
    intercept = y_mean - x_mean @ slope
    return np.vstack([intercept, slope])


def apply_ridge(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Predict ``[1, x] @ coef`` for coefficients from :func:`fit_ridge`.

    Examples
    --------
    >>> apply_ridge(np.array([[3.0], [2.0]]), np.array([[1.0], [2.0]])).ravel().tolist()
    [5.0, 7.0]
    """
    return coef[0] + np.asarray(x, np.float64) @ coef[1:]
