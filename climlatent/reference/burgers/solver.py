r"""Pseudo-spectral ETDRK4 solver of the viscous Burgers equation on the periodic unit interval.

Solves :math:`u_t + u u_x = \nu u_{xx}` for :math:`x \in [0, 1)` periodic, written in
conservation form :math:`u_t = \nu u_{xx} - (u^2 / 2)_x`. In Fourier space
(wavenumbers :math:`k = 2 \pi m`) the diffusion is the diagonal linear operator
:math:`L_k = -\nu k^2`, integrated exactly, and the advection
:math:`N(\hat u)_k = -\tfrac{i k}{2} \widehat{u^2}_k` is computed on the grid (``rfft``
along the last axis, all samples of a batch at once) with the 2/3 rule: modes with
:math:`|m| > N / 3` are zero, so the quadratic term is free of aliasing (but for
mode :math:`N / 3` itself when 3 divides :math:`N`, whose square folds back onto it: an
error of the order of its squared amplitude, below 1e-11 in the benchmarks). The time
stepper is the fourth-order exponential time-differencing Runge-Kutta scheme ETDRK4
of Cox & Matthews (2002), with the coefficients computed by the contour integrals of
Kassam & Trefethen (2005, SIAM J. Sci. Comput. 26, 1214). The mean (mode 0) has
:math:`L_0 = 0` and :math:`N_0 = 0` and is never changed: mass is conserved exactly.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.fft

from climlatent.errors import InputDataError

_CONTOUR_POINTS = 64  # points on the unit circle of the Kassam-Trefethen contour integrals
_CHUNK = 128  # samples stepped together at most (fewer to give every worker a chunk)
_POINTS_PER_AMPLITUDE = 2.0  # grid points >= this * max|u0| / viscosity (see auto_resolution)
_MIN_POINTS = 256
_STEP_FACTOR = 0.5  # internal step <= this * viscosity / max|u0|**2 (see auto_step)
_MAX_STEP = 2e-3


def auto_resolution(nx: int, amplitude: float, viscosity: float, highest_mode: int = 0) -> int:
    r"""Internal grid size: the least even multiple of ``nx`` resolving the sharpest front.

    A viscous shock of jump :math:`\Delta u \le 2 \max|u_0|` is the profile
    :math:`-\tfrac{\Delta u}{2} \tanh(\Delta u\, x / 4\nu)`, whose Fourier coefficients
    decay as :math:`e^{-4 \pi^2 m \nu / \Delta u}`. With :math:`N \ge 2 \max|u_0| / \nu`
    points (and at least 256) the last kept mode :math:`N / 3` is below
    :math:`e^{-13} \approx 2 \times 10^{-6}` of the jump; the resulting errors are
    far smaller (about 1e-8 relative L1, see the tests).

    Parameters
    ----------
    nx : int
        Output grid size; the internal grid is a multiple of it.
    amplitude : float
        :math:`\max |u_0|`, a bound of :math:`|u|` at all times (maximum principle).
    viscosity : float
        :math:`\nu > 0`.
    highest_mode : int
        Highest Fourier mode of :math:`u_0`, to be kept: :math:`N / 3` exceeds it.

    Returns
    -------
    int
        Internal grid points, an even multiple of ``nx``.

    Examples
    --------
    >>> auto_resolution(100, amplitude=2.0, viscosity=0.01)
    400
    >>> auto_resolution(128, amplitude=0.1, viscosity=0.01)
    256
    >>> auto_resolution(99, amplitude=1.0, viscosity=0.01)  # even
    396
    """
    least = max(_MIN_POINTS, _POINTS_PER_AMPLITUDE * amplitude / viscosity, 3 * highest_mode + 3)
    factor = max(1, math.ceil(least / nx))
    return nx * (factor + (nx * factor) % 2)


def auto_step(amplitude: float, viscosity: float) -> float:
    r"""Largest internal time step: a fraction of the time a front takes to cross itself.

    A front of width :math:`2 \nu / \max|u_0|` moving at up to :math:`\max|u_0|`
    crosses its own width in :math:`2 \nu / \max|u_0|^2`; the step is at most
    a quarter of that (``0.5 * viscosity / amplitude**2``) and at most 0.002.

    Parameters
    ----------
    amplitude : float
        :math:`\max |u_0|`.
    viscosity : float
        :math:`\nu > 0`.

    Returns
    -------
    float
        Upper bound of the internal step.

    Examples
    --------
    >>> auto_step(amplitude=2.0, viscosity=0.01)
    0.00125
    >>> auto_step(amplitude=0.0, viscosity=0.01)
    0.002
    """
    if amplitude <= 0:
        return _MAX_STEP
    return min(_MAX_STEP, _STEP_FACTOR * viscosity / amplitude**2)


def time_grid(t_final: float, nt: int, max_step: float) -> tuple[float, int]:
    """Internal step and sub-steps per saved interval: the fewest with step <= ``max_step``.

    Parameters
    ----------
    t_final : float
        Final time.
    nt : int
        Saved intervals of length ``t_final / nt``.
    max_step : float
        Largest allowed step.

    Returns
    -------
    tuple of (float, int)
        ``(step, substeps)`` with ``step * substeps == t_final / nt``.

    Examples
    --------
    >>> time_grid(1.0, 100, 0.0015)
    (0.0014285714285714286, 7)
    """
    interval = t_final / nt
    substeps = max(1, math.ceil(interval / max_step - 1e-9))
    return interval / substeps, substeps


def etdrk4_coefficients(
    linear: np.ndarray, step: float, n_contour: int = _CONTOUR_POINTS
) -> tuple[np.ndarray, ...]:
    r"""ETDRK4 coefficients of a diagonal linear operator (Kassam & Trefethen 2005).

    With :math:`z = h L` they are :math:`e^{z}`, :math:`e^{z/2}`,
    :math:`Q = h (e^{z/2} - 1) / z` and
    :math:`f_1 = h (-4 - z + e^z (4 - 3z + z^2)) / z^3`,
    :math:`f_2 = h (2 + z + e^z (z - 2)) / z^3`,
    :math:`f_3 = h (-4 - 3z - z^2 + e^z (4 - z)) / z^3`, each averaged over
    ``n_contour`` points of the unit circle around :math:`z` (Cauchy's integral
    formula), which avoids the cancellation of the formulas for small :math:`|z|`.

    Parameters
    ----------
    linear : numpy.ndarray
        Real diagonal of the linear operator, :math:`L_k`.
    step : float
        Time step :math:`h`.
    n_contour : int
        Points of the contour.

    Returns
    -------
    tuple of numpy.ndarray
        ``(E, E2, Q, f1, f2, f3)``, each shaped like ``linear``.

    Examples
    --------
    >>> E, E2, Q, f1, f2, f3 = etdrk4_coefficients(np.array([0.0, -1.0]), 0.1)
    >>> bool(np.allclose(f1 + 4 * f2 + f3, [0.1, (1 - np.exp(-0.1)) / 1.0]))
    True
    >>> float(Q[0])  # h / 2 at L = 0
    0.05
    """
    z = step * np.asarray(linear, dtype=float)
    roots = np.exp(1j * np.pi * (np.arange(1, n_contour + 1) - 0.5) / n_contour)
    lr = z[..., None] + roots
    exp_lr = np.exp(lr)

    def mean(values: np.ndarray) -> np.ndarray:
        return step * np.real(values.mean(axis=-1))

    q = mean((np.exp(lr / 2) - 1) / lr)
    f1 = mean((-4 - lr + exp_lr * (4 - 3 * lr + lr**2)) / lr**3)
    f2 = mean((2 + lr + exp_lr * (lr - 2)) / lr**3)
    f3 = mean((-4 - 3 * lr - lr**2 + exp_lr * (4 - lr)) / lr**3)
    return np.exp(z), np.exp(z / 2), q, f1, f2, f3


def solve_burgers(
    u0: np.ndarray,
    viscosity: float,
    t_final: float = 1.0,
    nt: int = 100,
    *,
    stride: int = 1,
    max_step: float | None = None,
    workers: int = 1,
) -> np.ndarray:
    r"""Integrate viscous Burgers from point values of :math:`u_0` on a uniform periodic grid.

    Parameters
    ----------
    u0 : numpy.ndarray
        Initial states, shape ``(n, N)`` (or ``(N,)``): values at :math:`x_j = j / N`,
        ``N`` even. ``N`` is the internal resolution (see :func:`auto_resolution`);
        modes above ``N / 3`` of :math:`u_0` are dropped (2/3 rule).
    viscosity : float
        :math:`\nu > 0`.
    t_final : float
        Final time.
    nt : int
        Saved intervals: the states at :math:`t_k = k\,t_{final} / n_t`,
        ``k = 0, ..., nt`` (``nt + 1`` times, :math:`t = 0` included) are returned.
    stride : int
        Keep every ``stride``-th grid point, :math:`x = j\,s / N`; ``N`` must be a
        multiple. The kept values are the exact grid values of the spectral solution.
    max_step : float, optional
        Largest internal step, default :func:`auto_step`. The step used is
        :math:`t_{final} / (n_t s)` with :math:`s` the least number of sub-steps per
        saved interval not exceeding it, so every saved time is hit exactly.
    workers : int
        Threads; the batch is split into chunks stepped concurrently (numpy and
        ``scipy.fft`` release the GIL).

    Returns
    -------
    numpy.ndarray
        Shape ``(n, nt + 1, N // stride)`` (``(nt + 1, N // stride)`` for a 1-D
        ``u0``); index 0 of axis -2 is the (2/3-filtered) initial state.

    Raises
    ------
    InputDataError
        If an argument is out of range, naming it.

    Examples
    --------
    >>> x = np.arange(256) / 256
    >>> u = solve_burgers(np.sin(2 * np.pi * x), viscosity=0.05, t_final=0.5, nt=2)
    >>> u.shape
    (3, 256)
    >>> float(abs(u.mean(axis=-1)).max()) < 1e-15  # mass conserved
    True
    >>> bool(np.abs(u[-1]).max() < np.abs(u[0]).max())  # dissipated
    True
    """
    u0 = np.asarray(u0, dtype=float)
    squeeze = u0.ndim == 1
    u0 = np.atleast_2d(u0)
    if u0.ndim != 2 or u0.shape[-1] < 4 or u0.shape[-1] % 2:
        raise InputDataError(f"u0 must be (n, N) with N even and >= 4, got shape {u0.shape}")
    if not np.all(np.isfinite(u0)):
        raise InputDataError("u0 has non-finite values")
    n_points = u0.shape[-1]
    _check_positive("viscosity", viscosity)
    _check_positive("t_final", t_final)
    for name, value in (("nt", nt), ("stride", stride), ("workers", workers)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise InputDataError(f"{name} must be a positive integer, got {value!r}")
    if n_points % stride:
        raise InputDataError(f"stride={stride} must divide the grid size {n_points}")
    amplitude = float(np.abs(u0).max(initial=0.0))
    if max_step is None:
        max_step = auto_step(amplitude, viscosity)
    _check_positive("max_step", max_step)
    step, substeps = time_grid(t_final, nt, max_step)

    n_modes = n_points // 3 + 1  # 2/3 rule: modes 0 .. N/3 are kept, the rest are zero
    k = 2 * np.pi * np.arange(n_modes)
    e, e2, q, f1, f2, f3 = etdrk4_coefficients(-viscosity * k**2, step)
    gradient = -0.5j * k  # N(v) = gradient * rfft(u**2)
    # the gradient is folded into the coefficients of the nonlinear terms
    coefficients = (e, e2, q * gradient, f1 * gradient, 2 * f2 * gradient, f3 * gradient)
    out = np.empty((u0.shape[0], nt + 1, n_points // stride))

    def run(rows: slice) -> None:
        _integrate(u0[rows], out[rows], coefficients, nt, substeps, stride)

    size = max(1, min(_CHUNK, math.ceil(u0.shape[0] / workers)))
    chunks = [slice(i, i + size) for i in range(0, u0.shape[0], size)]
    if workers == 1 or len(chunks) == 1:
        for rows in chunks:
            run(rows)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, chunks))
    return out[0] if squeeze else out


def _integrate(
    u0: np.ndarray,
    out: np.ndarray,
    coefficients: tuple[np.ndarray, ...],
    nt: int,
    substeps: int,
    stride: int,
) -> None:
    """ETDRK4 steps of one chunk of samples, writing the saved states into ``out``.

    The state ``v`` holds the kept modes only; ``irfft`` pads the others with zeros.
    """
    n_points = u0.shape[-1]
    e, e2, qg, f1g, f2g, f3g = coefficients
    n_modes = e.size

    def squared(v: np.ndarray) -> np.ndarray:
        u = scipy.fft.irfft(v, n=n_points, axis=-1)
        np.square(u, out=u)
        return scipy.fft.rfft(u, axis=-1, overwrite_x=True)[:, :n_modes]

    v = scipy.fft.rfft(u0, axis=-1)[:, :n_modes]
    out[:, 0] = scipy.fft.irfft(v, n=n_points, axis=-1)[:, ::stride]
    for index in range(1, nt + 1):
        for _ in range(substeps):
            nv = squared(v)
            ev = e2 * v
            a = ev + qg * nv
            na = squared(a)
            b = ev + qg * na
            nb = squared(b)
            c = e2 * a + qg * (2 * nb - nv)
            nc = squared(c)
            v = e * v + f1g * nv + f2g * (na + nb) + f3g * nc
        out[:, index] = scipy.fft.irfft(v, n=n_points, axis=-1)[:, ::stride]


def _check_positive(name: str, value: float) -> None:
    number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool
    )
    if not number or not math.isfinite(value) or value <= 0:
        raise InputDataError(f"{name} must be a positive finite number, got {value!r}")
