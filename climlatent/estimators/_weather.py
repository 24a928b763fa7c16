"""Weather-generator kernels: resample or simulate proxy principal-component series.

A weather generator feeds new proxy series (sea-level-pressure PCs) through a fitted
emulator. This module makes those series: :func:`block_bootstrap` resamples blocks of
the observed members without a model; :func:`fit_var` fits a vector autoregression
whose :meth:`VARModel.simulate` draws series of any length, its order chosen by
:func:`select_order`.

``series`` arguments have shape (n_members, n_time, n_pcs), or (n_time, n_pcs) for
a single member. Members are independent runs: no block and no lagged pair ever
spans two of them. Every bad argument raises ``ValueError`` naming it, and all
randomness comes from a passed :class:`numpy.random.Generator`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import solve_discrete_lyapunov

from climlatent.checks import check_int
from climlatent.estimators._eof import fit_ridge
from climlatent.estimators._seasons import season_window, year_step

_CRITERIA = ("aic", "bic")


def block_bootstrap(
    series: np.ndarray,
    n_realizations: int,
    block_length: int,
    rng: np.random.Generator,
    n_steps: int | None = None,
    circular: bool = True,
    phases: np.ndarray | None = None,
) -> np.ndarray:
    """Resample series by concatenating random contiguous blocks (moving block bootstrap).

    Each block takes ``block_length`` consecutive steps of one member, the member
    and the start time drawn uniformly and independently; blocks are concatenated
    and the result cut to ``n_steps``. With ``circular=True`` (Politis & Romano's
    circular bootstrap) a block may wrap from the end of its member back to that
    member's own start, so every time step is drawn equally often and the
    resampled mean is unbiased; with ``circular=False`` blocks lie wholly inside
    the record and steps near its ends are under-sampled. Blocks never join two
    members. Autocorrelation is kept within blocks and broken at their joins, so
    ``block_length`` should be well above the decorrelation time.

    Parameters
    ----------
    series : np.ndarray
        Input series, shape (n_members, n_time, n_pcs) or (n_time, n_pcs).
    n_realizations : int
        Number of resampled series.
    block_length : int
        Steps per block, at most ``n_time``.
    rng : numpy.random.Generator
        Source of randomness.
    n_steps : int, optional
        Length of each resampled series; defaults to ``n_time``.
    circular : bool, default True
        Whether blocks may wrap around within their member.
    phases : np.ndarray, optional
        Each time step's place in its year (`_seasons.year_phase`), shape (n_time,):
        a block for output steps ``t0, t0 + 1, ...`` then starts at a step of the same
        time of year (within `_seasons.season_window`), so that the output's seasons
        are where its dates (those of the input) say. Needs ``n_steps <= n_time``.

    Returns
    -------
    np.ndarray
        Resampled series, shape (n_realizations, n_steps, n_pcs).

    Examples
    --------
    >>> pcs = np.arange(20.0).reshape(2, 10, 1)  # two members, ten steps, one PC
    >>> out = block_bootstrap(pcs, 3, block_length=4, rng=np.random.default_rng(0), n_steps=6)
    >>> out.shape
    (3, 6, 1)
    """
    series = _as_members(series)
    n_members, n_time, n_pcs = series.shape
    check_int("n_realizations", n_realizations, 1)
    check_int("block_length", block_length, 1)
    if block_length > n_time:
        raise ValueError(f"block_length ({block_length}) exceeds the series length ({n_time})")
    n_steps = n_time if n_steps is None else n_steps
    check_int("n_steps", n_steps, 1)
    _check_rng(rng)
    n_blocks = -(-n_steps // block_length)
    n_starts = n_time if circular else n_time - block_length + 1
    members = rng.integers(n_members, size=(n_realizations, n_blocks))
    if phases is None:
        starts = rng.integers(n_starts, size=(n_realizations, n_blocks))
    elif n_steps > n_time:
        raise ValueError(f"n_steps ({n_steps}) exceeds the time steps with phases ({n_time})")
    else:
        if circular and not _wraps_in_season(phases, block_length):
            # a record that is not whole years: a block wrapping from its end back to
            # its start would jump to another time of year, so none wraps
            n_starts = n_time - block_length + 1
        starts = _seasonal_starts(phases, n_starts, block_length, n_blocks, n_realizations, rng)
    times = (starts[..., None] + np.arange(block_length)) % n_time
    blocks = series[members[..., None], times]  # (n_realizations, n_blocks, block_length, k)
    return blocks.reshape(n_realizations, -1, n_pcs)[:, :n_steps]


def _wraps_in_season(phases: np.ndarray, block_length: int) -> bool:
    """Whether the step after the last of ``phases`` is at the time of year of the first."""
    gap = abs(phases[-1] + year_step(phases) - phases[0]) % 1.0
    return min(gap, 1.0 - gap) <= season_window(phases, block_length) + 1e-9


def _seasonal_starts(
    phases: np.ndarray,
    n_starts: int,
    block_length: int,
    n_blocks: int,
    n_realizations: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Block starts ``(n_realizations, n_blocks)``, each at the time of year of its block."""
    window = season_window(phases, block_length)
    starts = np.empty((n_realizations, n_blocks), np.int64)
    for block in range(n_blocks):
        gap = np.abs(phases[:n_starts] - phases[block * block_length]) % 1.0
        candidates = np.flatnonzero(np.minimum(gap, 1.0 - gap) <= window + 1e-9)
        if not candidates.size:
            raise ValueError(
                f"no block of {block_length} steps of the series starts within "
                f"{window * 365:.0f} days of the time of year of output step "
                f"{block * block_length} without wrapping past the record's end (a record "
                "of whole years wraps): use a shorter block_length or a longer record"
            )
        starts[:, block] = rng.choice(candidates, size=n_realizations)
    return starts


@dataclass(frozen=True, eq=False)
class VARModel:
    """A Gaussian vector autoregression of order p on k variables.

    ``y[t] = intercept + sum_i coefs[i] @ y[t - 1 - i] + e[t]``, ``e[t] ~ N(0, sigma)``.

    Attributes
    ----------
    intercept : np.ndarray
        Intercept c, shape (k,).
    coefs : np.ndarray
        Coefficient matrices A_1 ... A_p, shape (p, k, k).
    sigma : np.ndarray
        Innovation covariance, shape (k, k): symmetric, positive semi-definite up
        to round-off (tiny negative eigenvalues are clipped when simulating).

    Examples
    --------
    >>> model = VARModel(np.zeros(2), np.array([0.5 * np.eye(2)]), np.eye(2))
    >>> model.is_stable(), model.order, model.n_pcs
    (True, 1, 2)
    >>> model.simulate(4, 30, np.random.default_rng(0)).shape
    (4, 30, 2)
    >>> np.round(model.autocorrelation(1), 6).tolist()
    [[0.5, 0.0], [0.0, 0.5]]
    """

    intercept: np.ndarray
    coefs: np.ndarray
    sigma: np.ndarray
    _innovation_factor: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        coefs = np.asarray(self.coefs, np.float64)
        if coefs.ndim != 3 or coefs.shape[0] < 1 or coefs.shape[1] != coefs.shape[2]:
            raise ValueError(f"coefs must have shape (p, k, k) with p >= 1; got {coefs.shape}")
        k = coefs.shape[1]
        intercept = np.asarray(self.intercept, np.float64)
        if intercept.shape != (k,):
            raise ValueError(f"intercept must have shape ({k},); got {intercept.shape}")
        sigma = np.asarray(self.sigma, np.float64)
        if sigma.shape != (k, k) or not np.allclose(sigma, sigma.T):
            raise ValueError(f"sigma must be a symmetric ({k}, {k}) matrix")
        object.__setattr__(self, "intercept", intercept)
        object.__setattr__(self, "coefs", coefs)
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "_innovation_factor", _covariance_factor(sigma))

    @property
    def order(self) -> int:
        """Autoregressive order p."""
        return self.coefs.shape[0]

    @property
    def n_pcs(self) -> int:
        """Number of variables k."""
        return self.coefs.shape[1]

    def companion(self) -> np.ndarray:
        """Companion matrix (k p, k p) of the VAR(p) written as a VAR(1) on stacked lags."""
        k, p = self.n_pcs, self.order
        matrix = np.zeros((k * p, k * p))
        matrix[:k] = np.hstack(self.coefs)
        matrix[k:, :-k] = np.eye(k * (p - 1))
        return matrix

    def is_stable(self) -> bool:
        """Whether the spectral radius of the companion matrix is below one."""
        return bool(np.max(np.abs(np.linalg.eigvals(self.companion()))) < 1.0)

    @property
    def stationary_mean(self) -> np.ndarray:
        """Mean ``(I - sum_i A_i)^-1 c`` of the stationary process, shape (k,)."""
        self._require_stable()
        return np.linalg.solve(np.eye(self.n_pcs) - self.coefs.sum(axis=0), self.intercept)

    def autocovariance(self, lag: int) -> np.ndarray:
        """Stationary ``Cov(y[t + lag], y[t])`` (k, k), from the discrete Lyapunov equation.

        Lag 0 is the stationary covariance of the process.
        """
        check_int("lag", lag, 0)
        k = self.n_pcs
        stacked = self._stacked_covariance()
        return (np.linalg.matrix_power(self.companion(), lag) @ stacked)[:k, :k]

    def _stacked_covariance(self) -> np.ndarray:
        """Stationary covariance (k p, k p) of the stacked lags ``(y[t], ..., y[t-p+1])``."""
        self._require_stable()
        k = self.n_pcs
        innovations = np.zeros((k * self.order,) * 2)
        innovations[:k, :k] = self.sigma
        return solve_discrete_lyapunov(self.companion(), innovations)

    def autocorrelation(self, lag: int) -> np.ndarray:
        """Stationary lag-``lag`` correlation matrix ``Corr(y[t + lag], y[t])`` (k, k)."""
        scale = np.sqrt(np.diag(self.autocovariance(0)))
        return self.autocovariance(lag) / np.outer(scale, scale)

    def simulate(
        self, n_realizations: int, n_steps: int, rng: np.random.Generator, burn_in: int = 100
    ) -> np.ndarray:
        """Draw independent series with Gaussian innovations.

        Every realisation starts from a draw of the stationary distribution of its
        ``p`` lags (jointly, by the Lyapunov covariance) and runs ``burn_in`` discarded
        steps before the ``n_steps`` that are returned, so that each series is
        stationary from its first step (started at the stationary mean, its first
        step lacked a share ``rho ** (2 * burn_in + 2)`` of the variance: 36 % at
        ``rho = 0.995``).

        Parameters
        ----------
        n_realizations : int
            Number of series.
        n_steps : int
            Length of each series.
        rng : numpy.random.Generator
            Source of randomness.
        burn_in : int, default 100
            Steps discarded after the initial state.

        Returns
        -------
        np.ndarray
            Simulated series, shape (n_realizations, n_steps, k).

        Examples
        --------
        >>> model = VARModel(np.ones(1), np.array([[[0.5]]]), np.zeros((1, 1)))
        >>> model.simulate(1, 3, np.random.default_rng(0)).ravel().tolist()
        [2.0, 2.0, 2.0]
        """
        check_int("n_realizations", n_realizations, 1)
        check_int("n_steps", n_steps, 1)
        check_int("burn_in", burn_in, 0)
        _check_rng(rng)
        p, n_total = self.order, burn_in + n_steps
        noise = rng.standard_normal((n_realizations, n_total, self.n_pcs))
        shocks = self.intercept + noise @ self._innovation_factor.T
        start = rng.standard_normal((n_realizations, p * self.n_pcs))
        start = (start @ _covariance_factor(self._stacked_covariance()).T).reshape(
            n_realizations, p, self.n_pcs
        )
        path = np.empty((n_realizations, p + n_total, self.n_pcs))
        path[:, :p] = self.stationary_mean + start[:, ::-1]  # oldest lag first
        for t in range(p, p + n_total):
            lags = path[:, t - p : t][:, ::-1]  # y[t-1], ..., y[t-p]
            path[:, t] = shocks[:, t - p] + np.einsum("rlj,lij->ri", lags, self.coefs)
        return path[:, p + burn_in :]

    def _require_stable(self) -> None:
        if not self.is_stable():
            raise ValueError("VAR model is unstable (companion spectral radius >= 1)")


def fit_var(series: np.ndarray, order: int = 1, ridge: float = 0.0) -> VARModel:
    """Fit a VAR(``order``) by (ridge) least squares, pooling members.

    Lagged pairs are built within each member only, then stacked; the intercept is
    not penalised. ``sigma`` is the residual covariance with the degrees-of-freedom
    correction ``n_obs - (1 + k * order)``. A fit that is not stable raises
    ``ValueError`` rather than warning: such a model has no stationary
    distribution, so it cannot serve as a weather generator.

    Parameters
    ----------
    series : np.ndarray
        Shape (n_members, n_time, n_pcs) or (n_time, n_pcs).
    order : int, default 1
        Number of lags p.
    ridge : float, default 0.0
        Non-negative ridge penalty on the lag coefficients.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth = VARModel(np.zeros(1), np.array([[[0.8]]]), np.eye(1))
    >>> model = fit_var(truth.simulate(4, 2000, rng), order=1)
    >>> round(float(model.coefs[0, 0, 0]), 1)
    0.8
    """
    series = _as_members(series)
    check_int("order", order, 1)
    if not (np.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge must be a finite number >= 0; got {ridge}")
    coef, residuals = _least_squares(series, order, first=order, ridge=ridge)
    k = series.shape[2]
    sigma = residuals.T @ residuals / (len(residuals) - coef.shape[0])
    model = VARModel(coef[0], coef[1:].T.reshape(k, order, k).transpose(1, 0, 2), sigma)
    model._require_stable()
    return model


def select_order(series: np.ndarray, max_order: int, criterion: str = "bic") -> int:
    """Order in 1..``max_order`` minimising an information criterion.

    All orders are fitted by least squares on the same steps (each member minus its
    first ``max_order``), so the criteria are comparable. The criterion is
    ``log det(sigma_ml) + penalty * n_params / n_obs`` with ``n_params = k (1 + k p)``
    and penalty 2 (AIC) or ``log(n_obs)`` (BIC).

    Parameters
    ----------
    series : np.ndarray
        Shape (n_members, n_time, n_pcs) or (n_time, n_pcs).
    max_order : int
        Largest order tried.
    criterion : {"bic", "aic"}, default "bic"
        BIC is consistent; AIC tends to pick larger orders.

    Examples
    --------
    >>> truth = VARModel(np.zeros(1), np.array([[[0.5]], [[0.3]]]), np.eye(1))
    >>> select_order(truth.simulate(2, 3000, np.random.default_rng(0)), max_order=4)
    2
    """
    series = _as_members(series)
    check_int("max_order", max_order, 1)
    if criterion not in _CRITERIA:
        raise ValueError(f"criterion must be one of {_CRITERIA}; got {criterion!r}")
    k = series.shape[2]
    scores = []
    for order in range(1, max_order + 1):
        coef, residuals = _least_squares(series, order, first=max_order, option="max_order")
        n_obs = len(residuals)
        _, logdet = np.linalg.slogdet(residuals.T @ residuals / n_obs)
        penalty = 2.0 if criterion == "aic" else np.log(n_obs)
        scores.append(logdet + penalty * k * coef.shape[0] / n_obs)
    return int(np.argmin(scores)) + 1


def _least_squares(
    series: np.ndarray, order: int, first: int, ridge: float = 0.0, option: str = "order"
) -> tuple[np.ndarray, np.ndarray]:
    """Regress ``y[t]`` on ``[1, y[t-1], ..., y[t-order]]`` for t >= ``first``.

    Returns the coefficients of :func:`fit_ridge`, (1 + k order, k), and the
    residuals. Lagged pairs are built inside each member and stacked, so none
    spans two members. ``option`` names the setting that ``first`` comes from.
    """
    n_members, n_time, k = series.shape
    n_pairs = n_members * max(0, n_time - first)
    if n_pairs <= 1 + k * order:
        raise ValueError(
            f"series is too short for {option}={first}: {n_time} steps per member give "
            f"{n_pairs} lagged pairs for {1 + k * order} coefficients per equation"
        )
    lagged = np.concatenate(
        [series[:, first - lag : n_time - lag] for lag in range(1, order + 1)], axis=2
    )
    lagged = lagged.reshape(n_pairs, k * order)
    response = series[:, first:].reshape(n_pairs, k)
    coef = fit_ridge(lagged, response, ridge)
    return coef, response - coef[0] - lagged @ coef[1:]


def _covariance_factor(sigma: np.ndarray) -> np.ndarray:
    """Matrix ``L`` with ``L @ L.T == sigma``: Cholesky, else eigenvalues clipped at zero."""
    try:
        return np.linalg.cholesky(sigma)
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(sigma)
    tolerance = 1e-8 * max(float(np.max(np.abs(values))), np.finfo(float).tiny)
    if values.min() < -tolerance:
        raise ValueError(f"sigma is not positive semi-definite (eigenvalue {values.min():.3g})")
    return vectors * np.sqrt(np.clip(values, 0.0, None))


def _as_members(series: np.ndarray) -> np.ndarray:
    """Validate ``series`` and return it as float (n_members, n_time, n_pcs)."""
    array = np.asarray(series, np.float64)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or 0 in array.shape:
        raise ValueError(
            "series must have shape (n_members, n_time, n_pcs) or (n_time, n_pcs) with "
            f"no empty axis; got {np.shape(series)}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError("series contains NaN or infinite values")
    return array


def _check_rng(rng: np.random.Generator) -> None:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator; got {type(rng).__name__}")
