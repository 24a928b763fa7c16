r"""Karhunen-Loeve expansion (KLE) of the Gaussian log-permeability field of the Darcy benchmark.

The log-permeability :math:`G` is a zero-mean, unit-variance Gaussian random field on the
unit square with covariance :math:`k(x, x') = \exp(-\lVert x - x' \rVert_2 / l)` (seed
paper, Eq. 19; :math:`l = 0.1` as in Zhu & Zabaras 2018, the seed's reference 29). On a
grid of ``n_grid`` x ``n_grid`` nodes the expansion uses the eigenpairs of the covariance
*matrix* of the nodes, :math:`C = \Phi \Lambda \Phi^T` with orthonormal columns
:math:`\phi_i`, so that :math:`G = \bar\mu + \sum_{i \le s} \sqrt{\lambda_i}\,\theta_i
\phi_i` (Eq. 20) has covariance exactly :math:`C` when every term is kept and the best
rank-*s* approximation of it otherwise.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse.linalg
from scipy.spatial.distance import cdist

from climlatent.errors import InputDataError

N_GRID = 65
LENGTH_SCALE = 0.1
# Eigenvalues closer than this (relative to the largest) form one degenerate eigenspace.
_DEGENERATE_RTOL = 1e-8
# ARPACK (Lanczos) for at most N / 32 eigenpairs of the N x N matrix, LAPACK otherwise:
# on the 65 x 65 grid that is up to 132 terms, where ARPACK is still faster than the
# ~30 s dense reduction.
_LANCZOS_FRACTION = 32


@dataclass(frozen=True)
class KLEBasis:
    r"""The leading eigenpairs of the grid covariance matrix, sorted by decreasing eigenvalue.

    Attributes
    ----------
    eigenvalues : numpy.ndarray
        :math:`\lambda_i`, shape ``(terms,)``: eigenvalues of the covariance matrix of the
        grid nodes (dividing by ``n_grid**2`` approximates those of the integral operator on
        the unit square).
    modes : numpy.ndarray
        :math:`\phi_i` on the grid, shape ``(terms, n_grid, n_grid)`` in (y, x) order, each of
        unit Euclidean norm over the nodes.
    length_scale : float
        Correlation length *l*.
    method : str
        The eigensolver that computed them.

    Examples
    --------
    >>> basis = kle_basis(n_grid=17, terms=3)
    >>> basis.modes.shape, basis.terms, basis.n_grid
    ((3, 17, 17), 3, 17)
    """

    eigenvalues: np.ndarray
    modes: np.ndarray
    length_scale: float
    method: str

    @property
    def terms(self) -> int:
        """Number of retained terms *s*."""
        return int(self.eigenvalues.size)

    @property
    def n_grid(self) -> int:
        """Nodes per side of the grid."""
        return int(self.modes.shape[-1])

    def log_permeability(self, theta: np.ndarray, mean: float = 0.0) -> np.ndarray:
        r"""Evaluate :math:`G = \bar\mu + \sum_i \sqrt{\lambda_i}\,\theta_i \phi_i` (Eq. 20).

        Parameters
        ----------
        theta : array_like
            KLE coefficients, shape ``(..., terms)``.
        mean : float
            :math:`\bar\mu`, the mean log-permeability.

        Returns
        -------
        numpy.ndarray
            Log-permeability, shape ``(..., n_grid, n_grid)``.

        Raises
        ------
        InputDataError
            If the last axis of ``theta`` is not ``terms`` long.

        Examples
        --------
        >>> basis = kle_basis(n_grid=17, terms=2)
        >>> field = basis.log_permeability([1.0, 0.0])
        >>> bool(np.allclose(field, np.sqrt(basis.eigenvalues[0]) * basis.modes[0]))
        True
        """
        theta = np.asarray(theta, dtype=float)
        if theta.ndim == 0 or theta.shape[-1] != self.terms:
            raise InputDataError(
                f"theta must have {self.terms} KLE coefficients on its last axis, "
                f"got shape {theta.shape}"
            )
        weights = theta * np.sqrt(self.eigenvalues)
        flat = weights @ self.modes.reshape(self.terms, -1)
        return mean + flat.reshape(*theta.shape[:-1], self.n_grid, self.n_grid)


def grid_coordinates(n_grid: int = N_GRID) -> np.ndarray:
    """Node coordinates along one side of the unit square (the grid is vertex-centred).

    Parameters
    ----------
    n_grid : int
        Nodes per side.

    Returns
    -------
    numpy.ndarray
        ``numpy.linspace(0, 1, n_grid)``.

    Examples
    --------
    >>> grid_coordinates(5)
    array([0.  , 0.25, 0.5 , 0.75, 1.  ])
    """
    return np.linspace(0.0, 1.0, n_grid)


def covariance_matrix(n_grid: int = N_GRID, length_scale: float = LENGTH_SCALE) -> np.ndarray:
    r"""Covariance :math:`\exp(-\lVert x - x' \rVert_2 / l)` between all pairs of grid nodes.

    Parameters
    ----------
    n_grid : int
        Nodes per side; nodes are ordered row by row in (y, x), as ``modes.reshape``.
    length_scale : float
        Correlation length *l*.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_grid**2, n_grid**2)``.

    Examples
    --------
    >>> cov = covariance_matrix(n_grid=3, length_scale=0.5)
    >>> cov.shape, float(cov[0, 0]), round(float(cov[0, 1]), 6)  # nodes (0, 0) and (0.5, 0)
    ((9, 9), 1.0, 0.367879)
    """
    _check_grid(n_grid, length_scale)
    x = grid_coordinates(n_grid)
    gx, gy = np.meshgrid(x, x)
    nodes = np.column_stack([gx.ravel(), gy.ravel()])
    return np.exp(-cdist(nodes, nodes) / length_scale)


def kle_basis(n_grid: int = N_GRID, length_scale: float = LENGTH_SCALE, terms: int = 2) -> KLEBasis:
    r"""The first ``terms`` KLE eigenpairs of the grid covariance, computed once and cached.

    With at most ``n_grid**2 / 32`` eigenpairs to find, ARPACK's Lanczos iteration
    (:func:`scipy.sparse.linalg.eigsh`, largest algebraic, a fixed pseudo-random start
    vector) is used; otherwise LAPACK (:func:`scipy.linalg.eigh` with ``subset_by_index``).
    The result is cached per ``(n_grid, length_scale, terms)``.

    The isotropic covariance on the square is invariant under the reflections
    :math:`x \to 1 - x`, :math:`y \to 1 - y` and the swap of *x* and *y*, so some
    eigenvalues come in exactly degenerate pairs (the 2nd and 3rd, for instance): an
    eigensolver returns an arbitrary rotation of such a pair. The basis is made unique:
    within each degenerate eigenspace the modes are rotated to be symmetric or
    antisymmetric under both reflections, the mode even in *y* first (so mode 2 varies
    along *x*, mode 3 along *y*); every mode's sign makes its inner product with
    :math:`1 + (x - \tfrac12) + 2 (y - \tfrac12) + 4 (x - \tfrac12)(y - \tfrac12)`
    positive (mode 1 is positive, mode 2 is odd in *x*, negative at small *x* and
    positive at large *x*). One more eigenpair than
    requested is computed, so that a pair split by the truncation is resolved.

    Parameters
    ----------
    n_grid : int
        Nodes per side of the unit square, at least 2.
    length_scale : float
        Correlation length *l* > 0 (seed: 0.1).
    terms : int
        Number of terms *s*, from 1 to ``n_grid**2``.

    Returns
    -------
    KLEBasis
        Eigenvalues and modes (read-only arrays shared between calls).

    Raises
    ------
    InputDataError
        If an argument is out of range; the message names it.

    Examples
    --------
    >>> basis = kle_basis(n_grid=17, length_scale=0.1, terms=3)
    >>> np.round(basis.eigenvalues, 3)
    array([13.733, 10.962, 10.962])
    >>> mode = basis.modes[1]  # varies along x: odd in x, even in y
    >>> bool(np.allclose(mode, -mode[:, ::-1]) and np.allclose(mode, mode[::-1, :]))
    True
    """
    _check_grid(n_grid, length_scale)
    size = n_grid * n_grid
    if isinstance(terms, bool) or not isinstance(terms, int | np.integer) or not 1 <= terms <= size:
        raise InputDataError(f"terms must be an integer from 1 to n_grid**2={size}, got {terms!r}")
    values, vectors, method = _eigenpairs(int(n_grid), float(length_scale), int(terms))
    return KLEBasis(values, vectors, float(length_scale), method)


def _check_grid(n_grid: int, length_scale: float) -> None:
    """Raise unless ``n_grid`` >= 2 is an integer and ``length_scale`` is positive."""
    if isinstance(n_grid, bool) or not isinstance(n_grid, int | np.integer) or n_grid < 2:
        raise InputDataError(f"n_grid must be an integer >= 2, got {n_grid!r}")
    number = isinstance(length_scale, int | float | np.integer | np.floating)
    if isinstance(length_scale, bool) or not (
        number and np.isfinite(length_scale) and length_scale > 0
    ):
        raise InputDataError(f"length_scale must be a positive number, got {length_scale!r}")


@functools.lru_cache(maxsize=4)
def _eigenpairs(n_grid: int, length_scale: float, terms: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Canonical leading eigenpairs, read-only: values (terms,), modes (terms, n, n), method."""
    cov = covariance_matrix(n_grid, length_scale)
    size = cov.shape[0]
    count = min(terms + 1, size)
    if count <= size // _LANCZOS_FRACTION:
        # A generic start vector: a symmetric one (all ones) has no component along the
        # modes that are odd under a reflection, which Lanczos would then miss.
        start = np.random.default_rng(0).standard_normal(size)
        values, vectors = scipy.sparse.linalg.eigsh(cov, k=count, which="LA", v0=start)
        method = "scipy.sparse.linalg.eigsh (ARPACK Lanczos)"
    else:
        values, vectors = scipy.linalg.eigh(cov, subset_by_index=[size - count, size - 1])
        method = "scipy.linalg.eigh (LAPACK, subset_by_index)"
    order = np.argsort(values)[::-1]
    values, vectors = values[order], _canonical(values[order], vectors[:, order], n_grid)
    values = values[:terms].copy()
    modes = np.ascontiguousarray(vectors[:, :terms].T).reshape(terms, n_grid, n_grid)
    values.flags.writeable = False
    modes.flags.writeable = False
    return values, modes, method


def _canonical(values: np.ndarray, vectors: np.ndarray, n_grid: int) -> np.ndarray:
    """Rotate degenerate eigenspaces onto reflection-symmetry classes; fix every sign."""
    vectors = vectors.copy()
    start = 0
    while start < values.size:
        stop = start + 1
        while stop < values.size and values[start] - values[stop] <= _DEGENERATE_RTOL * values[0]:
            stop += 1
        if stop - start > 1:
            block = vectors[:, start:stop]
            grid = block.reshape(n_grid, n_grid, -1)
            # R_y + R_x / 2 has a distinct eigenvalue on each of the four symmetry classes
            # (even/odd in y, even/odd in x) and commutes with the covariance.
            reflected = (grid[::-1, :, :] + 0.5 * grid[:, ::-1, :]).reshape(block.shape)
            projected = block.T @ reflected
            _, rotation = np.linalg.eigh(0.5 * (projected + projected.T))
            vectors[:, start:stop] = block @ rotation[:, ::-1]
        start = stop
    centred = grid_coordinates(n_grid) - 0.5
    gx, gy = np.meshgrid(centred, centred)
    reference = (1.0 + gx + 2.0 * gy + 4.0 * gx * gy).ravel()
    signs = np.where(reference @ vectors < 0, -1.0, 1.0)
    return vectors * signs
