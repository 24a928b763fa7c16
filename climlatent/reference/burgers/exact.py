r"""Exact solution of the periodic viscous Burgers equation by the Cole-Hopf transform.

For :math:`u_t + u u_x = \nu u_{xx}` on the periodic unit interval with a mean-zero
:math:`u_0`, :math:`u = -2 \nu \varphi_x / \varphi` where :math:`\varphi` solves the
heat equation :math:`\varphi_t = \nu \varphi_{xx}` with
:math:`\varphi_0 = \exp(-U_0 / 2\nu)`, :math:`U_0(x) = \int_0^x u_0`, periodic because
:math:`\int_0^1 u_0 = 0`. Convolving with the heat kernel on the line (the periodic
images are the periodic extension of :math:`U_0`) gives

.. math::

    u(x, t) = \frac{\int (x - y)/t \; w(y)\,dy}{\int w(y)\,dy}, \qquad
    \log w(y) = -\frac{(x - y)^2}{4 \nu t} - \frac{U_0(y)}{2 \nu},

a weighted mean. For :math:`\nu = 0.01` and :math:`O(1)` amplitudes
:math:`\varphi_0` spans :math:`e^{\pm 50 \ldots}`, so the weights are formed in log
space (the largest exponent of each :math:`x` subtracted before ``exp``) and the
integrals are trapezoidal sums on a uniform grid over :math:`[x - R, x + R]`, with
:math:`R` where the weights fall below :math:`e^{-40}` of their maximum; for these
smooth, rapidly decaying integrands the rule is spectrally accurate.
:math:`U_0` is the exact antiderivative of the trigonometric interpolant of
:math:`u_0`, exact for band-limited initial states.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import scipy.fft

from climlatent.errors import InputDataError

_LOG_CUTOFF = 40.0  # weights below exp(-40) of the largest are dropped
_POINTS_PER_WIDTH = 12.0  # quadrature points per standard deviation of the narrowest weight
_MIN_QUADRATURE = 2048
_BLOCK = 64  # output points per vectorised block


def cole_hopf(
    u0: Callable[[np.ndarray], np.ndarray] | np.ndarray,
    x: np.ndarray,
    t: float | np.ndarray,
    viscosity: float,
    *,
    n_quad: int | None = None,
    mean_tolerance: float = 1e-10,
) -> np.ndarray:
    r"""Exact viscous Burgers solution :math:`u(x, t)` from a mean-zero periodic :math:`u_0`.

    Parameters
    ----------
    u0 : callable or numpy.ndarray
        The initial state: a vectorised function of :math:`x \in [0, 1)`, or its
        values at :math:`y_j = j / m` with shape ``(..., m)`` (a batch of states).
        It is replaced by its trigonometric interpolant on ``m`` points (on
        ``n_quad`` points for a callable), so band-limited states are exact.
    x : numpy.ndarray
        Evaluation points (any real values; the solution is 1-periodic).
    t : float or numpy.ndarray
        Times, :math:`\ge 0`; at :math:`t = 0` the interpolant of :math:`u_0` is returned.
    viscosity : float
        :math:`\nu > 0`.
    n_quad : int, optional
        Quadrature points per unit length, default: at least 2048 and 12 per
        standard deviation of the narrowest weight,
        :math:`\sqrt{2 \nu t / (1 + t \max u_0')}`.
    mean_tolerance : float
        Largest allowed :math:`|\overline{u_0}|` relative to :math:`\max|u_0|`.

    Returns
    -------
    numpy.ndarray
        Shape ``batch + np.shape(t) + np.shape(x)``, ``batch`` the leading axes of an
        array ``u0`` (none for a callable).

    Raises
    ------
    InputDataError
        If :math:`u_0` does not have mean zero (the transform is then not periodic),
        is not finite, or an argument is out of range.

    Examples
    --------
    >>> x = np.arange(8) / 8
    >>> u = cole_hopf(lambda y: np.sin(2 * np.pi * y), x, [0.0, 0.5], viscosity=0.1)
    >>> u.shape
    (2, 8)
    >>> bool(np.allclose(u[0], np.sin(2 * np.pi * x)))
    True
    >>> bool(np.allclose(u[1], -u[1, ::-1][np.r_[-1, 0:7]]))  # stays odd about x = 0
    True
    """
    if not (isinstance(viscosity, int | float | np.number) and math.isfinite(viscosity)):
        raise InputDataError(f"viscosity must be a positive finite number, got {viscosity!r}")
    if viscosity <= 0:
        raise InputDataError(f"viscosity must be a positive finite number, got {viscosity!r}")
    times = np.asarray(t, dtype=float)
    if not np.all(np.isfinite(times)) or np.any(times < 0):
        raise InputDataError(f"t must be finite and >= 0, got {t!r}")
    points = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(points)):
        raise InputDataError("x has non-finite values")
    if n_quad is not None and (not isinstance(n_quad, int | np.integer) or n_quad < 16):
        raise InputDataError(f"n_quad must be an integer >= 16, got {n_quad!r}")

    if callable(u0):
        m = _MIN_QUADRATURE if n_quad is None else int(n_quad)
        samples = np.asarray(u0(np.arange(m) / m), dtype=float)
    else:
        samples = np.asarray(u0, dtype=float)
    if samples.ndim == 0 or samples.shape[-1] < 2:
        raise InputDataError(
            f"u0 must have at least 2 points on its last axis, got {samples.shape}"
        )
    if not np.all(np.isfinite(samples)):
        raise InputDataError("u0 has non-finite values")
    coefficients = scipy.fft.rfft(samples, axis=-1) / samples.shape[-1]
    scale = np.abs(samples).max(axis=-1)
    mean = np.abs(coefficients[..., 0].real)
    if np.any(mean > mean_tolerance * np.maximum(scale, 1e-300)):
        raise InputDataError(
            f"u0 must have mean zero for a periodic Cole-Hopf transform; its mean is "
            f"{float(mean.max()):.3g} (relative tolerance mean_tolerance={mean_tolerance})"
        )
    coefficients[..., 0] = 0.0
    if samples.shape[-1] % 2 == 0:  # split the Nyquist mode evenly between +-m/2
        coefficients[..., -1] *= 0.5

    batch = samples.shape[:-1]
    flat = coefficients.reshape(-1, coefficients.shape[-1])
    result = np.empty((flat.shape[0], times.size, points.size))
    for row, coefficient in enumerate(flat):
        for column, time in enumerate(times.ravel()):
            result[row, column] = _solution(coefficient, points.ravel(), time, viscosity, n_quad)
    return result.reshape(batch + times.shape + points.shape)


def _evaluate(coefficient: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Trigonometric series ``2 Re sum_m c_m exp(2 pi i m x)`` at ``x`` (``c_0 = 0``)."""
    phase = np.exp(2j * np.pi * np.outer(x, np.arange(coefficient.size)))
    return 2.0 * np.real(phase @ coefficient)


def _solution(
    coefficient: np.ndarray, x: np.ndarray, t: float, viscosity: float, n_quad: int | None
) -> np.ndarray:
    """Cole-Hopf solution of one initial state (one-sided Fourier coefficients) at one time."""
    if t == 0:
        return _evaluate(coefficient, x)
    m = np.arange(coefficient.size)
    n_slope = max(4096, 2 * coefficient.size)
    spectrum = np.zeros(n_slope // 2 + 1, dtype=complex)
    spectrum[: coefficient.size] = 2j * np.pi * m * coefficient * n_slope
    slope = float(scipy.fft.irfft(spectrum, n=n_slope).max())
    if n_quad is None:
        width = math.sqrt(2 * viscosity * t / (1 + t * max(slope, 0.0)))
        n_quad = max(_MIN_QUADRATURE, 2 ** math.ceil(math.log2(_POINTS_PER_WIDTH / width)))
    n_quad = max(int(n_quad), 2 * coefficient.size)
    antiderivative = np.zeros(n_quad // 2 + 1, dtype=complex)
    antiderivative[1 : coefficient.size] = coefficient[1:] / (2j * np.pi * m[1:])
    # U0 (up to a constant, which cancels) on the quadrature grid j / n_quad
    u0_integral = scipy.fft.irfft(antiderivative * n_quad, n=n_quad)
    exponent_range = (u0_integral.max() - u0_integral.min()) / (2 * viscosity)
    reach = math.sqrt(4 * viscosity * t * (exponent_range + _LOG_CUTOFF))
    result = np.empty(x.size)
    for start in range(0, x.size, _BLOCK):
        block = x[start : start + _BLOCK]
        first = math.floor((block.min() - reach) * n_quad)
        last = math.ceil((block.max() + reach) * n_quad)
        index = np.arange(first, last + 1)
        y = index / n_quad
        potential = -u0_integral[index % n_quad] / (2 * viscosity)
        offset = block[:, None] - y
        log_weight = potential - offset**2 / (4 * viscosity * t)
        weight = np.exp(log_weight - log_weight.max(axis=1, keepdims=True))
        result[start : start + _BLOCK] = (weight * offset).sum(axis=1) / (t * weight.sum(axis=1))
    return result
