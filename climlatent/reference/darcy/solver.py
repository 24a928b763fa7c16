r"""Second-order finite differences for steady Darcy flow with no-flux walls.

Solves :math:`u = -K \nabla p`, :math:`\nabla \cdot u = f` on the unit square with
:math:`u \cdot \hat n = 0` on the walls and :math:`\int p \, dx = 0` (seed paper, Eq. 16).

Discretisation (vertex-centred): the unknowns are the pressures at the ``ny`` x ``nx``
grid nodes, spacing :math:`h_x = 1 / (n_x - 1)`, :math:`h_y = 1 / (n_y - 1)`. Node
*(j, i)* owns the dual cell :math:`[x_i - h_x/2, x_i + h_x/2] \times [y_j - h_y/2,
y_j + h_y/2]` clipped to the square (half cells on the walls, quarter cells at the
corners), of area :math:`V_{ji} = w_j w_i h_x h_y` with :math:`w = 1/2` on a wall and 1
inside. The Darcy velocity normal to a dual-cell face between two neighbouring nodes is

.. math:: U_{j, i+1/2} = -K_{j, i+1/2} (p_{j, i+1} - p_{j, i}) / h_x,

with :math:`K_{j, i+1/2}` the harmonic mean of the two nodal permeabilities (likewise
:math:`V_{j+1/2, i}` in *y*); on the walls the normal velocity is zero. The discrete
divergence at a node is the net outflow of its dual cell per unit area,

.. math:: (\nabla_h \cdot u)_{ji} = \frac{U_{j,i+1/2} - U_{j,i-1/2}}{w_i h_x}
          + \frac{V_{j+1/2,i} - V_{j-1/2,i}}{w_j h_y},

and the scheme sets it to :math:`f_{ji}` at every node. Inside the square this is the
usual second-order conservative five-point stencil; on a wall it is the ghost-node
(mirror) treatment of the zero normal gradient. Multiplied by :math:`V_{ji}` the system
:math:`A p = V f` is symmetric positive semi-definite with the constants as null space;
it is compatible because the trapezoidal integral :math:`\sum V f` vanishes. It is made
regular by fixing the last node's pressure to zero (the last equation is then implied by
the others), factorised with SuperLU, and the pressure is shifted to zero trapezoidal mean.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from climlatent.errors import InputDataError

# A source whose trapezoidal integral exceeds this fraction of that of |f| is incompatible
# with the no-flux walls.
_COMPATIBILITY_RTOL = 1e-10


def stiffness_matrix(permeability: np.ndarray) -> scipy.sparse.csc_matrix:
    r"""The matrix *A* of the scheme: :math:`(A p)_{ji} = V_{ji} (\nabla_h \cdot u)_{ji}`.

    Parameters
    ----------
    permeability : numpy.ndarray
        Nodal permeability *K* > 0, shape ``(ny, nx)`` in (y, x) order, ny, nx >= 2.

    Returns
    -------
    scipy.sparse.csc_matrix
        Symmetric, ``(ny * nx, ny * nx)``, nodes ordered row by row; its rows sum to zero.

    Raises
    ------
    InputDataError
        If ``permeability`` is not a 2-D array of positive finite numbers.

    Examples
    --------
    >>> matrix = stiffness_matrix(np.ones((3, 3)))
    >>> matrix.toarray()[4]  # centre node: 4 neighbours, dual cell = full cell
    array([ 0., -1.,  0., -1.,  4., -1.,  0., -1.,  0.])
    >>> float(abs(matrix.sum(axis=1)).max())
    0.0
    """
    return _assemble(_checked_permeability(permeability, ndim=2), pinned=False)


def solve_pressure(permeability: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Pressure of one sample by a sparse LU factorisation (SuperLU, minimum-degree ordering).

    Parameters
    ----------
    permeability : numpy.ndarray
        Nodal permeability, shape ``(ny, nx)``.
    source : numpy.ndarray
        Nodal source *f*, shape ``(ny, nx)``, with zero trapezoidal integral.

    Returns
    -------
    numpy.ndarray
        Pressure, shape ``(ny, nx)``, zero trapezoidal mean.

    Raises
    ------
    InputDataError
        If an array has the wrong shape or values, or the source does not integrate to zero.

    Examples
    --------
    >>> source = np.zeros((5, 5))
    >>> source[0, 0], source[-1, -1] = 1.0, -1.0
    >>> pressure = solve_pressure(np.ones((5, 5)), source)
    >>> bool(pressure[0, 0] > 0 > pressure[-1, -1])
    True
    """
    permeability = _checked_permeability(permeability, ndim=2)
    matrix, rhs, area = _pinned_system(permeability, _checked_source(source, permeability.shape))
    factor = scipy.sparse.linalg.splu(matrix, permc_spec="MMD_AT_PLUS_A")
    return _zero_mean(np.append(factor.solve(rhs), 0.0), area)


def solve_dense(permeability: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Pressure of one sample by a dense LU solve of the same discrete system.

    The reference for :func:`solve_pressure`: the pinned matrix is densified and solved
    with :func:`numpy.linalg.solve` (LAPACK ``gesv``).

    Parameters
    ----------
    permeability : numpy.ndarray
        Nodal permeability, shape ``(ny, nx)``.
    source : numpy.ndarray
        Nodal source *f*, shape ``(ny, nx)``, with zero trapezoidal integral.

    Returns
    -------
    numpy.ndarray
        Pressure, shape ``(ny, nx)``, zero trapezoidal mean.

    Raises
    ------
    InputDataError
        If an array has the wrong shape or values, or the source does not integrate to zero.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> permeability = np.exp(rng.standard_normal((6, 6)))
    >>> source = np.zeros((6, 6))
    >>> source[0, 0], source[-1, -1] = 1.0, -1.0
    >>> dense = solve_dense(permeability, source)
    >>> bool(np.allclose(dense, solve_pressure(permeability, source), rtol=0, atol=1e-12))
    True
    """
    permeability = _checked_permeability(permeability, ndim=2)
    matrix, rhs, area = _pinned_system(permeability, _checked_source(source, permeability.shape))
    return _zero_mean(np.append(np.linalg.solve(matrix.toarray(), rhs), 0.0), area)


def solve_pressures(
    permeability: np.ndarray, source: np.ndarray, workers: int | None = None
) -> np.ndarray:
    """Pressures of many samples, one sparse factorisation each, spread over processes.

    SuperLU holds the GIL, so threads do not run factorisations in parallel: the samples
    are split into contiguous chunks solved by a pool of forked processes (threads where
    the platform cannot fork). Each sample is solved alone by the same code, so the
    result does not depend on ``workers``.

    Parameters
    ----------
    permeability : numpy.ndarray
        Nodal permeability, shape ``(n, ny, nx)``.
    source : numpy.ndarray
        Nodal source, shape ``(ny, nx)``, shared by all samples.
    workers : int, optional
        Processes; default the CPUs available to this process. 1 solves in this process.

    Returns
    -------
    numpy.ndarray
        Pressures, shape ``(n, ny, nx)``.

    Raises
    ------
    InputDataError
        If an array has the wrong shape or values, or ``workers`` is not a positive integer.

    Examples
    --------
    >>> source = np.zeros((5, 5))
    >>> source[0, 0], source[-1, -1] = 1.0, -1.0
    >>> permeability = np.stack([np.ones((5, 5)), 2.0 * np.ones((5, 5))])
    >>> pressures = solve_pressures(permeability, source, workers=1)
    >>> bool(np.allclose(pressures[0], 2.0 * pressures[1]))
    True
    """
    permeability = _checked_permeability(permeability, ndim=3)
    source = _checked_source(source, permeability.shape[1:])
    if workers is None:
        workers = available_cpus()
    if isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1:
        raise InputDataError(f"workers must be a positive integer, got {workers!r}")
    workers = min(int(workers), len(permeability))
    if workers == 1:
        return _solve_chunk(permeability, source)
    chunks = np.array_split(permeability, min(len(permeability), 4 * workers))
    with _executor(workers) as pool:
        parts = list(pool.map(_solve_chunk, chunks, [source] * len(chunks)))
    return np.concatenate(parts)


def face_velocities(
    permeability: np.ndarray, pressure: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    r"""Darcy velocities normal to the dual-cell faces, walls included.

    Parameters
    ----------
    permeability, pressure : numpy.ndarray
        Nodal fields, shape ``(..., ny, nx)``.

    Returns
    -------
    u_x_face : numpy.ndarray
        Shape ``(..., ny, nx + 1)``: *x* velocity on the faces at :math:`x = 0, h_x/2,
        3h_x/2, \dots, 1 - h_x/2, 1`; the first and last (the walls) are zero.
    u_y_face : numpy.ndarray
        Shape ``(..., ny + 1, nx)``: *y* velocity on the faces at :math:`y = 0, h_y/2,
        \dots, 1`; zero on the walls.

    Examples
    --------
    >>> x = np.linspace(0, 1, 5)
    >>> pressure = np.broadcast_to(-x, (5, 5))  # uniform gradient -1 along x
    >>> u_x_face, u_y_face = face_velocities(np.ones((5, 5)), pressure)
    >>> u_x_face[0]
    array([0., 1., 1., 1., 1., 0.])
    >>> float(abs(u_y_face).max())
    0.0
    """
    permeability = np.asarray(permeability, dtype=float)
    pressure = np.asarray(pressure, dtype=float)
    ny, nx = pressure.shape[-2:]
    k_x, k_y = _face_permeability(permeability)
    u_x = -k_x * np.diff(pressure, axis=-1) * (nx - 1)
    u_y = -k_y * np.diff(pressure, axis=-2) * (ny - 1)
    walls = [(0, 0)] * (pressure.ndim - 1)
    return np.pad(u_x, [*walls, (1, 1)]), np.pad(u_y, [*walls[:-1], (1, 1), (0, 0)])


def node_velocities(u_x_face: np.ndarray, u_y_face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Velocities at the nodes: the face velocities linearly interpolated along their axis.

    An interior node lies midway between its two faces and gets their mean; a node on a
    wall lies on the wall face, so its normal velocity is the wall's, zero.

    Parameters
    ----------
    u_x_face, u_y_face : numpy.ndarray
        As returned by :func:`face_velocities`.

    Returns
    -------
    u_x, u_y : numpy.ndarray
        Shape ``(..., ny, nx)``.

    Examples
    --------
    >>> u_x, u_y = node_velocities(np.array([[0.0, 1.0, 3.0, 0.0]]), np.zeros((2, 3)))
    >>> u_x
    array([[0., 2., 0.]])
    """
    u_x = np.zeros(u_y_face.shape[:-2] + (u_y_face.shape[-2] - 1, u_x_face.shape[-1] - 1))
    u_y = np.zeros_like(u_x)
    u_x[..., 1:-1] = 0.5 * (u_x_face[..., 1:-2] + u_x_face[..., 2:-1])
    u_y[..., 1:-1, :] = 0.5 * (u_y_face[..., 1:-2, :] + u_y_face[..., 2:-1, :])
    return u_x, u_y


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one).

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> available_cpus() >= 1
    True
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _executor(workers: int) -> Executor:
    """A pool of forked processes, or of threads where fork is unavailable.

    Spawned processes would re-import climlatent (and torch) in every worker.
    """
    if "fork" in multiprocessing.get_all_start_methods():
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    return ThreadPoolExecutor(workers)


def _solve_chunk(permeability: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Sparse solves of a stack of samples, in order."""
    return np.stack([solve_pressure(sample, source) for sample in permeability])


def _checked_permeability(permeability: np.ndarray, ndim: int) -> np.ndarray:
    """Float array of ``ndim`` dims, the last two >= 2, all positive and finite."""
    permeability = np.asarray(permeability, dtype=float)
    if permeability.ndim != ndim or min(permeability.shape[-2:]) < 2 or 0 in permeability.shape:
        raise InputDataError(
            f"permeability must have {ndim} dims with at least 2 x 2 nodes, "
            f"got shape {permeability.shape}"
        )
    if not (np.isfinite(permeability).all() and (permeability > 0).all()):
        raise InputDataError("permeability must be positive and finite everywhere")
    return permeability


def _checked_source(source: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Finite float array of the grid's shape with zero trapezoidal integral."""
    source = np.asarray(source, dtype=float)
    if source.shape != tuple(shape):
        raise InputDataError(f"source must have shape {tuple(shape)}, got {source.shape}")
    if not np.isfinite(source).all():
        raise InputDataError("source must be finite everywhere")
    area = _dual_area(*shape)
    if abs((source * area).sum()) > _COMPATIBILITY_RTOL * (abs(source) * area).sum():
        raise InputDataError(
            "source must integrate to zero (trapezoidal rule): with no-flux walls the "
            f"injection must balance the production, got {(source * area).sum():.3g}"
        )
    return source


def _pinned_system(
    permeability: np.ndarray, source: np.ndarray
) -> tuple[scipy.sparse.csc_matrix, np.ndarray, np.ndarray]:
    """The regular system without the last node (pressure 0 there), its rhs, the cell areas."""
    area = _dual_area(*permeability.shape)
    return _assemble(permeability, pinned=True), (source * area).ravel()[:-1], area


def _assemble(permeability: np.ndarray, pinned: bool) -> scipy.sparse.csc_matrix:
    """The stiffness matrix, without the last node's row and column if ``pinned``."""
    ny, nx = permeability.shape
    take, indices, indptr = _csc_layout(ny, nx, pinned)
    first, second = _edges(ny, nx)
    conductance = _conductances(permeability)
    diagonal = np.bincount(first, conductance, ny * nx) + np.bincount(second, conductance, ny * nx)
    data = np.concatenate([-conductance, -conductance, diagonal])[take]
    size = indptr.size - 1
    return scipy.sparse.csc_matrix((data, indices, indptr), shape=(size, size))


def _zero_mean(pressure: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Reshape the flat pressure to the grid and remove its trapezoidal mean."""
    pressure = pressure.reshape(area.shape)
    return pressure - (pressure * area).sum() / area.sum()


def _end_weights(size: int) -> np.ndarray:
    """1/2 on the two wall nodes, 1 inside: the dual-cell width in units of the spacing."""
    weights = np.ones(size)
    weights[[0, -1]] = 0.5
    return weights


def _dual_area(ny: int, nx: int) -> np.ndarray:
    """Dual-cell areas (the trapezoidal-rule weights) on the (ny, nx) grid of the unit square."""
    return np.outer(_end_weights(ny), _end_weights(nx)) / ((ny - 1) * (nx - 1))


def _face_permeability(permeability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic means of neighbouring nodes: (..., ny, nx - 1) in x, (..., ny - 1, nx) in y."""
    left, right = permeability[..., :, :-1], permeability[..., :, 1:]
    below, above = permeability[..., :-1, :], permeability[..., 1:, :]
    return 2 * left * right / (left + right), 2 * below * above / (below + above)


def _conductances(permeability: np.ndarray) -> np.ndarray:
    """Face permeability x face length / node distance, x faces then y faces, flattened."""
    ny, nx = permeability.shape
    k_x, k_y = _face_permeability(permeability)
    g_x = k_x * _end_weights(ny)[:, None] * (nx - 1) / (ny - 1)
    g_y = k_y * _end_weights(nx)[None, :] * (ny - 1) / (nx - 1)
    return np.concatenate([g_x.ravel(), g_y.ravel()])


@functools.lru_cache(maxsize=8)
def _csc_layout(ny: int, nx: int, pinned: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSC layout of the stiffness matrix from its entries -g (both ways), then the diagonal.

    Returns the positions of the kept entries in CSC order, their row indices, and the
    column pointers; ``pinned`` drops the last node's row and column.
    """
    first, second = _edges(ny, nx)
    size = ny * nx
    nodes = np.arange(size)
    rows = np.concatenate([first, second, nodes])
    cols = np.concatenate([second, first, nodes])
    limit = size - 1 if pinned else size
    kept = np.flatnonzero((rows < limit) & (cols < limit))
    take = kept[np.lexsort((rows[kept], cols[kept]))]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(cols[take], minlength=limit))])
    layout = take, rows[take], indptr
    for array in layout:
        array.flags.writeable = False
    return layout


@functools.lru_cache(maxsize=8)
def _edges(ny: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """Node pairs of the faces, x faces then y faces, in the order of ``_conductances``."""
    index = np.arange(ny * nx).reshape(ny, nx)
    first = np.concatenate([index[:, :-1].ravel(), index[:-1, :].ravel()])
    second = np.concatenate([index[:, 1:].ravel(), index[1:, :].ravel()])
    return first, second
