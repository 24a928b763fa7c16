"""Disentanglement scores of a latent space against known generative factors.

Every function takes ``latents`` of shape ``(n_samples, n_latent)`` and, where it needs
them, ``factors`` of shape ``(n_samples, n_factors)`` (numpy arrays, or DataArrays with the
sample dim first) and returns a float or a small dataclass.

* :func:`disentanglement_score` -- S_D of Jacobsen & Duraisamy (2022), Eq. 6 (higher: better).
* :func:`kl_disentanglement_score` -- S_KL of the same paper, Eq. 7: the kNN estimate of
  ``min_{a,b} KL[p(theta) || q(a * (z - b))]`` found by Nelder-Mead (lower is better, ~0 best).
* :func:`total_correlation`, :func:`mutual_information_gap`, :func:`dci`,
  :func:`sap_score` -- as in disentanglement_lib (Locatello et al. 2019).
* :func:`knn_kl_divergence` -- the kNN KL estimator of Wang, Kulkarni & Verdu (2009).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.spatial import cKDTree
from scipy.special import digamma, xlogy
from scipy.stats import skew

from climlatent.errors import InputDataError

_TINY = 1e-300


def _matrix(x: object, name: str, min_samples: int = 2) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputDataError(f"{name!r} is not numeric: {err}") from None
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise InputDataError(
            f"{name!r} must be 2-D (n_samples, n_features), got shape {arr.shape}; "
            "reshape a single feature with .reshape(-1, 1)"
        )
    if arr.shape[0] < min_samples:
        raise InputDataError(
            f"{name!r} has {arr.shape[0]} samples; this score needs at least {min_samples}"
        )
    bad = int((~np.isfinite(arr)).sum())
    if bad:
        raise InputDataError(f"{name!r} has {bad} NaN or infinite values")
    return arr


def _pair(latents: object, factors: object, min_samples: int = 2, min_latents: int = 1):
    z = _matrix(latents, "latents", min_samples)
    f = _matrix(factors, "factors", min_samples)
    if z.shape[0] != f.shape[0]:
        raise InputDataError(
            f"'latents' has {z.shape[0]} samples but 'factors' has {f.shape[0]}; "
            "they must be paired sample by sample"
        )
    if z.shape[1] < min_latents:
        raise InputDataError(f"'latents' has {z.shape[1]} columns; this score needs two or more")
    return z, f


def _normalized_entropy(p: np.ndarray, axis: int) -> np.ndarray:
    """Entropy of ``p`` normalised along ``axis``, in base ``p.shape[axis]`` (so in [0, 1])."""
    size = p.shape[axis]
    if size == 1:
        return np.zeros(p.shape[1 - axis])
    total = p.sum(axis=axis, keepdims=True)
    q = np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / size)
    return -xlogy(q, q).sum(axis=axis) / np.log(size)


def disentanglement_score(latents: object, factors: object, *, normalize: bool = False) -> float:
    """Disentanglement score S_D of Jacobsen & Duraisamy (2022), Eq. 6.

    ``S_D = (1/n) sum_i max_j |cov(z_i, theta_j)| / sum_j |cov(z_i, theta_j)|`` over the
    ``n`` latents, with sample covariances. It lies in ``[1/s, 1]`` for ``s`` factors;
    higher is better, 1 when every latent covaries with a single factor. A latent with
    zero covariance with every factor (a constant) counts as ``1/s``, the worst value.

    Parameters
    ----------
    latents, factors : array-like, shapes (n_samples, n_latent), (n_samples, n_factors)
        Latent codes (e.g. posterior means) and the generative factors ``theta``.
    normalize : bool
        Use correlations instead of covariances (not in the paper; makes the score
        independent of the factors' units).

    Returns
    -------
    float
        S_D. The paper uses it with ``n_latent == n_factors``; extra latents lower it.

    Examples
    --------
    >>> import numpy as np
    >>> theta = np.random.default_rng(0).normal(size=(500, 2))
    >>> round(disentanglement_score(theta[:, ::-1] * [3.0, -1.0], theta), 2)
    0.99
    >>> c = np.cos(np.pi / 4)  # a 45 degree rotation mixes both factors into each latent
    >>> round(disentanglement_score(theta @ [[c, -c], [c, c]], theta), 2)
    0.51
    """
    z, f = _pair(latents, factors)
    zc, fc = z - z.mean(0), f - f.mean(0)
    cov = np.abs(zc.T @ fc) / (z.shape[0] - 1)
    if normalize:
        scale = np.outer(zc.std(0, ddof=1), fc.std(0, ddof=1))
        cov = np.divide(cov, scale, out=np.zeros_like(cov), where=scale > 0)
    total = cov.sum(1)
    ratio = np.divide(cov.max(1), total, out=np.full(len(total), 1 / f.shape[1]), where=total > 0)
    return float(ratio.mean())


def _kth_distances(tree: cKDTree, points: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Distance from each point to its ``order[i]``-th nearest neighbour in ``tree``."""
    out = np.empty(len(points))
    idx = np.argsort(order)  # chunks of points with similar order bound the k queried
    for rows in np.array_split(idx, max(1, len(idx) // 128)):
        dist = tree.query(points[rows], k=list(range(1, int(order[rows].max()) + 1)))[0]
        out[rows] = dist[np.arange(len(rows)), order[rows] - 1]
    return out


def knn_kl_divergence(x: object, y: object, *, k: int = 1, adaptive: bool = True) -> float:
    """k-nearest-neighbour estimate of ``KL(p || q)`` from samples of p and q (nats).

    The estimator of Wang, Kulkarni & Verdu (2009). With ``adaptive=False`` it is their
    Eq. 5, ``(d/n) sum_i log(nu_k(i) / rho_k(i)) + log(m / (n - 1))``, where ``rho_k(i)`` is
    the distance from ``x_i`` to its k-th nearest neighbour among the other x and
    ``nu_k(i)`` to its k-th nearest neighbour among the y. With ``adaptive=True`` (our
    reading of the "version eps1" J&D (2022) use for S_KL) each point gets the radius
    ``eps(i) = max(rho_k(i), nu_k(i))``; ``l_i`` and ``k_i`` count the x (other than
    ``x_i``) and the y within ``eps(i)``, and the estimate is
    ``(d/n) sum_i log(nu_{k_i}(i) / rho_{l_i}(i)) + (1/n) sum_i [psi(l_i) - psi(k_i)]
    + log(m / (n - 1))``. Samples must come from continuous distributions: repeated points
    give zero distances and a meaningless estimate; an x that also appears among the y
    drives the estimate towards minus infinity. It converges slowly, from below, where
    q is thin under p: ``KL(N(0, I) || N((1, -.5), [[2, .6], [.6, .5]])) = 1.98`` came
    out 1.17, 1.60, 1.74 from 1000, 4000, 64000 samples each (k = 1).

    Parameters
    ----------
    x, y : array-like, shapes (n, d) and (m, d)
        Samples of p and of q.
    k : int
        Neighbour order.
    adaptive : bool
        Use the adaptive radius (see above) instead of a fixed ``k``.

    Returns
    -------
    float
        The estimate (nats); it can be slightly negative when p and q are close.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p, q = rng.normal(size=(2000, 1)), rng.normal(1.0, 1.0, size=(2000, 1))
    >>> round(knn_kl_divergence(p, q), 1)  # exact: 0.5
    0.5
    """
    if int(k) != k or k < 1:
        raise InputDataError(f"'k' must be a positive integer, got {k!r}")
    k = int(k)
    xs = _matrix(x, "x", min_samples=k + 2)
    ys = _matrix(y, "y", min_samples=k + 1)
    if xs.shape[1] != ys.shape[1]:
        raise InputDataError(f"'x' has {xs.shape[1]} dimensions but 'y' has {ys.shape[1]}")
    (n, d), m = xs.shape, ys.shape[0]
    tx, ty = cKDTree(xs), cKDTree(ys)
    rho = tx.query(xs, k=[k + 1])[0][:, 0]  # the point itself is its own 1st neighbour
    nu = ty.query(xs, k=[k])[0][:, 0]
    const = np.log(m / (n - 1))
    if not adaptive:
        ratio = np.maximum(nu, _TINY) / np.maximum(rho, _TINY)
        return float(d * np.log(ratio).mean() + const)
    radius = np.maximum(rho, nu) * (1 + 1e-9)
    l_i = np.maximum(tx.query_ball_point(xs, radius, return_length=True) - 1, k)
    k_i = np.maximum(ty.query_ball_point(xs, radius, return_length=True), k)
    rho_l = _kth_distances(tx, xs, l_i + 1)
    nu_k = _kth_distances(ty, xs, k_i)
    log_ratio = np.log(np.maximum(nu_k, _TINY) / np.maximum(rho_l, _TINY))
    return float(d * log_ratio.mean() + (digamma(l_i) - digamma(k_i)).mean() + const)


@dataclass(frozen=True)
class KLDisentanglement:
    """Result of :func:`kl_disentanglement_score`.

    Attributes
    ----------
    score : float
        S_KL, the minimised kNN estimate of ``KL[p(theta) || q(a * (z - b))]`` (nats), biased low.
    scale, shift : np.ndarray
        The minimising ``a`` and ``b``, one per factor.
    permutation : tuple of int
        ``permutation[j]`` is the latent matched to factor ``j`` (identity unless
        ``permute=True``).
    converged : bool
        Whether Nelder-Mead met its tolerances for the returned permutation.
    """

    score: float
    scale: np.ndarray = field(repr=False)
    shift: np.ndarray = field(repr=False)
    permutation: tuple[int, ...]
    converged: bool

    def __float__(self) -> float:
        return self.score


def _fit_scale_shift(theta: np.ndarray, z: np.ndarray, k: int, maxiter: int | None):
    d = z.shape[1]
    z_std, sk_t, sk_z = z.std(0), skew(theta, axis=0), skew(z, axis=0)
    noise = 3 * np.sqrt(6 / min(len(z), len(theta)))  # 3 standard errors of a skewness
    strong = (np.abs(sk_t) > noise) & (np.abs(sk_z) > noise)
    sign = np.where(strong, np.sign(sk_t * sk_z), 1.0)  # match the sign of the skewness
    a0 = sign * theta.std(0) / z_std
    b0 = z.mean(0) - theta.mean(0) / a0

    def unpack(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return a0 * p[:d], b0 + p[d:] * z_std

    def objective(p: np.ndarray) -> float:
        a, b = unpack(p)
        return knn_kl_divergence(theta, a * (z - b), k=k)

    x0 = np.concatenate([np.ones(d), np.zeros(d)])
    opts = {"initial_simplex": np.vstack([x0, x0 + 0.2 * np.eye(2 * d)]), "xatol": 1e-3}
    opts.update(fatol=1e-4, maxiter=maxiter if maxiter is not None else 400 * d)
    res = minimize(objective, x0, method="Nelder-Mead", options=opts)
    a, b = unpack(res.x)
    return float(res.fun), a, b, bool(res.success)


def kl_disentanglement_score(
    latents: object,
    factors: object,
    *,
    k: int = 3,
    disjoint: bool = True,
    permute: bool = False,
    maxiter: int | None = None,
    random_state: int | None = 0,
) -> KLDisentanglement:
    """KL disentanglement score S_KL of Jacobsen & Duraisamy (2022), Eq. 7.

    ``S_KL = min_{a,b} KL[p(theta) || q(a * (z - b))]`` (``*`` elementwise): the smallest
    divergence between the factor distribution and a scaled, shifted aggregate posterior
    (distribution of the latents), estimated by :func:`knn_kl_divergence` (adaptive) with
    theta as the p sample and ``a * (z - b)`` as the q sample, minimised by Nelder-Mead
    from moment matching (``|a|`` matches standard deviations, ``sign(a)`` the sign of
    clearly nonzero skewness, ``b`` the means). Lower is better: about 0 when the latents
    are a scaled, shifted copy of the factors, higher for a rotated latent space of
    non-Gaussian factors. It compares distributions only, so it cannot see a rotation of
    isotropic Gaussian factors. The minimum of a noisy estimate is biased low: latents
    drawn independently from the factors' own distribution, 512 paired samples (halves
    of 256), gave means of -0.06 (uniform, Gaussian) and -0.08 (a two-Gaussian mixture)
    over 12 seeds each, values -0.19 to +0.08: a tenth of a nat is within that noise.

    Parameters
    ----------
    latents : array-like, shape (n_samples, n)
        Samples of the aggregate posterior, e.g. latent means of encoded samples.
    factors : array-like, shape (n_samples_f, n)
        Samples of the generative factors; as many columns as ``latents``.
    k : int
        Neighbour order of the kNN estimator, at least 3: with ``k <= 2`` Nelder-Mead
        can move ``k`` latent samples exactly onto a factor sample (``2 n`` parameters,
        ``n`` equations per coincidence), where the estimate is minus infinity.
    disjoint : bool
        If both have as many rows (paired samples), take p from a random half of the
        factors and q from the other half of the latents; else an exact encoder
        (``z == theta``) puts each p sample in the q sample, and the estimate is -inf.
    permute : bool
        Also minimise over the ``n!`` matchings of latents to factors (the paper's
        remark that shapes match "up to permutations of the axes"); ``n <= 6``.
    maxiter : int, optional
        Nelder-Mead iterations (default ``400 * n``).
    random_state : int, optional
        Seed of the random halves.

    Returns
    -------
    KLDisentanglement
        ``score`` (float) and the minimising ``scale`` ``a`` and ``shift`` ``b``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.uniform(size=(600, 2))
    >>> res = kl_disentanglement_score(theta / 2.0 + 1.0, theta)  # a = 2, b = 1 undo it
    >>> res.scale.round(1).tolist(), res.shift.round(2).tolist(), abs(res.score) < 0.05
    ([1.9, 2.1], [0.98, 1.0], True)
    """
    if int(k) != k or k < 3:
        raise InputDataError(f"'k' must be an integer >= 3 for S_KL, got {k!r}")
    z = _matrix(latents, "latents", min_samples=2 * k + 4)
    theta = _matrix(factors, "factors", min_samples=2 * k + 4)
    if z.shape[1] != theta.shape[1]:
        raise InputDataError(
            f"'latents' has {z.shape[1]} columns but 'factors' has {theta.shape[1]}; "
            "S_KL compares distributions of the same dimension"
        )
    d = z.shape[1]
    if np.any(np.ptp(z, 0) == 0) or np.any(np.ptp(theta, 0) == 0):
        raise InputDataError("a column of 'latents' or 'factors' is constant")
    if permute and d > 6:
        raise InputDataError(f"'permute' tries {d}! matchings; use it with at most 6 latents")
    if disjoint and z.shape[0] == theta.shape[0]:
        order = np.random.default_rng(random_state).permutation(z.shape[0])
        theta, z = theta[order[: len(z) // 2]], z[order[len(z) // 2 :]]
    perms = list(itertools.permutations(range(d))) if permute else [tuple(range(d))]
    best = None
    for perm in perms:
        score, a, b, ok = _fit_scale_shift(theta, z[:, perm], k, maxiter)
        if best is None or score < best.score:
            best = KLDisentanglement(score, a, b, tuple(int(i) for i in perm), ok)
    return best


def total_correlation(
    latents: object, *, method: str = "gaussian", k: int = 3, random_state: int | None = 0
) -> float:
    """Total correlation ``TC = KL[q(z) || prod_i q(z_i)]`` of the latents (nats).

    ``method="gaussian"``: analytic for a Gaussian with the sample covariance ``C``,
    ``TC = 0.5 * (sum_i log C_ii - log det C)``; for two dims with correlation ``rho``
    this is ``-0.5 * log(1 - rho**2)``. ``method="knn"``: the adaptive kNN estimate
    (:func:`knn_kl_divergence`) between one random half of the latents, scaled to unit sd,
    and the other half with each column shuffled (a sample of the product of marginals).
    TC is 0 for independent latents and grows as they become dependent, in any units.

    Parameters
    ----------
    latents : array-like, shape (n_samples, n_latent)
        Latent codes.
    method : {"gaussian", "knn"}
        Estimator.
    k : int
        Neighbour order of the kNN estimator.
    random_state : int, optional
        Seed of the halves and shuffles (``method="knn"``).

    Returns
    -------
    float
        The total correlation; the kNN estimate can be slightly negative.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.random.default_rng(0).multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], 4000)
    >>> r = np.corrcoef(z.T)[0, 1]
    >>> bool(np.isclose(total_correlation(z), -0.5 * np.log(1 - r**2)))
    True
    >>> round(total_correlation(z, method="knn"), 1)  # true value -0.5 log(1 - 0.36) = 0.22
    0.2
    """
    z = _matrix(latents, "latents", min_samples=max(3, 2 * k + 4))
    if np.any(np.ptp(z, 0) == 0):
        raise InputDataError("'latents' has a constant column; its total correlation is undefined")
    if method == "gaussian":
        # 0.5 (sum log C_ii - log det C) = -0.5 log det of the correlation matrix
        eig = np.linalg.eigvalsh(np.atleast_2d(np.corrcoef(z, rowvar=False)))
        if eig.min() < 1e-10:
            raise InputDataError("'latents' are linearly dependent (singular covariance)")
        return float(-0.5 * np.log(eig).sum())
    if method == "knn":
        z, rng = z / z.std(axis=0), np.random.default_rng(random_state)
        order = rng.permutation(z.shape[0])
        joint, rest = z[order[: len(z) // 2]], z[order[len(z) // 2 :]]
        product = np.column_stack([rng.permutation(col) for col in rest.T])
        return knn_kl_divergence(joint, product, k=k)
    raise InputDataError(f"'method' must be 'gaussian' or 'knn', got {method!r}")


def _discretize(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin a column into ``n_bins`` equal-width bins (disentanglement_lib's histogram)."""
    edges = np.histogram(x, bins=n_bins)[1]
    return np.digitize(x, edges[1:-1])


def _mutual_info(a: np.ndarray, b: np.ndarray) -> float:
    """Mutual information (nats) of two integer label arrays (as sklearn's mutual_info_score)."""
    na, nb = a.max() + 1, b.max() + 1
    joint = np.bincount(a * nb + b, minlength=na * nb).reshape(na, nb) / len(a)
    outer = np.outer(joint.sum(1), joint.sum(0))
    nz = joint > 0
    return float(max((joint[nz] * np.log(joint[nz] / outer[nz])).sum(), 0.0))


def mutual_information_gap(
    latents: object, factors: object, *, n_bins: int = 20, discretize_factors: bool | None = None
) -> float:
    """Mutual information gap (Chen et al. 2018) as computed by disentanglement_lib.

    Each latent is discretised into ``n_bins`` equal-width histogram bins; for each
    factor ``j`` with entropy ``H_j``, ``MIG_j = (I_(1) - I_(2)) / H_j`` where ``I_(1)`` and
    ``I_(2)`` are the two largest mutual informations between a latent and the factor;
    MIG is their mean, in ``[0, 1]``, higher is better. Mutual informations are plug-in
    estimates from the histograms.

    Parameters
    ----------
    latents, factors : array-like, shapes (n_samples, n_latent >= 2), (n_samples, n_factors)
        Latent codes and generative factors.
    n_bins : int
        Histogram bins for the latents (and for discretised factors).
    discretize_factors : bool, optional
        Bin the factors like the latents (``True``) or use their values as labels
        (``False``). By default a factor is binned when it has more than ``n_bins``
        distinct values (a continuous factor) and used as labels otherwise.

    Returns
    -------
    float
        MIG.

    Examples
    --------
    >>> import numpy as np
    >>> theta = np.random.default_rng(0).uniform(size=(2000, 2))
    >>> round(mutual_information_gap(theta[:, ::-1], theta), 2)
    0.96
    """
    z, f = _pair(latents, factors, min_latents=2)
    if int(n_bins) != n_bins or n_bins < 2:
        raise InputDataError(f"'n_bins' must be an integer >= 2, got {n_bins!r}")
    zl = [_discretize(col, int(n_bins)) for col in z.T]
    gaps = []
    for j, col in enumerate(f.T):
        binned = len(np.unique(col)) > n_bins if discretize_factors is None else discretize_factors
        fl = _discretize(col, int(n_bins)) if binned else np.unique(col, return_inverse=True)[1]
        entropy = _mutual_info(fl, fl)
        if entropy == 0:
            raise InputDataError(f"column {j} of 'factors' is constant (zero entropy)")
        mi = np.sort([_mutual_info(zi, fl) for zi in zl])[::-1]
        gaps.append((mi[0] - mi[1]) / entropy)
    return float(np.mean(gaps))


@dataclass(frozen=True)
class DCIScores:
    """Result of :func:`dci`.

    Attributes
    ----------
    disentanglement, completeness, informativeness : float
        The three DCI scores; informativeness is the mean held-out R2 of the regressors.
    informativeness_train : float
        Mean R2 on the training split.
    importance : np.ndarray
        ``(n_latent, n_factors)`` importance matrix R, each column summing to 1.
    """

    disentanglement: float
    completeness: float
    informativeness: float
    informativeness_train: float
    importance: np.ndarray = field(repr=False)


def _r2(truth: np.ndarray, pred: np.ndarray) -> float:
    sst = ((truth - truth.mean()) ** 2).sum()
    return float(1 - ((truth - pred) ** 2).sum() / sst) if sst > 0 else 0.0


def dci(
    latents: object,
    factors: object,
    *,
    importance: str = "gbt",
    test_size: float = 0.25,
    alpha: float = 0.01,
    random_state: int | None = 0,
) -> DCIScores:
    """Disentanglement, completeness and informativeness (Eastwood & Williams 2018).

    One regressor per factor predicts it from all latents (both standardised: any scale or
    offset of the latents scores alike), fitted on a random training split: gradient boosted
    trees (``"gbt"``, scikit-learn defaults, as disentanglement_lib) with ``R_ij`` the impurity
    importance of latent ``i`` for factor ``j``, or a Lasso (``"lasso"``) with ``R_ij = |coef|``.
    Each column of R is normalised to sum to 1 (gbt importances already do). Then, as in
    disentanglement_lib, with ``H_K`` the entropy in base ``K``:

    * disentanglement ``= sum_i rho_i (1 - H_s(R_i. / sum_j R_ij))``, weights
      ``rho_i = sum_j R_ij / sum_ij R_ij`` (so uninformative latents barely count);
    * completeness ``= mean_j (1 - H_n(R_.j / sum_i R_ij))`` (disentanglement_lib weights
      by column sums, equal here since the columns are normalised);
    * informativeness ``=`` mean R2 of the regressors on the held-out split.

    All in ``[0, 1]`` (R2 can be negative), higher is better.

    Parameters
    ----------
    latents, factors : array-like, shapes (n_samples, n_latent), (n_samples, n_factors)
        Latent codes and generative factors (treated as continuous).
    importance : {"gbt", "lasso"}
        Regressor giving the importance matrix.
    test_size : float
        Fraction of samples held out for informativeness.
    alpha : float
        Lasso penalty (``importance="lasso"``).
    random_state : int, optional
        Seed of the split and of the trees.

    Returns
    -------
    DCIScores

    Examples
    --------
    >>> import numpy as np
    >>> theta = np.random.default_rng(0).normal(size=(400, 2))
    >>> s = dci(theta[:, ::-1] * 2.0, theta, importance="lasso")
    >>> round(s.disentanglement, 3), round(s.completeness, 3), round(s.informativeness, 3)
    (1.0, 1.0, 1.0)
    """
    z, f = _pair(latents, factors, min_samples=10)
    n_test = max(2, int(round(test_size * len(z)))) if 0 < test_size < 1 else len(z)
    if len(z) - n_test < 2:  # a train split of 0 samples failed inside scikit-learn
        raise InputDataError(f"'test_size' must be in (0, 1) and leave 2 of the {len(z)} "
                             f"samples to train on, got {test_size!r}")  # fmt: skip
    test, train = np.split(np.random.default_rng(random_state).permutation(len(z)), [n_test])
    if np.any(np.ptp(f[train], 0) == 0) or np.any(np.ptp(f[test], 0) == 0):
        raise InputDataError("a column of 'factors' is constant on the train or test split")
    # also for trees: they read float32, values within 1e-7 equal (sd 1e-7 gave D = I = 0)
    mean, std = z[train].mean(0), z[train].std(0)
    std = np.where(std > 0, std, 1.0)
    x_train, x_test = (z[train] - mean) / std, (z[test] - mean) / std
    if importance == "gbt":
        from sklearn.ensemble import GradientBoostingRegressor

        seed = None if random_state is None else int(random_state)
        models = [GradientBoostingRegressor(random_state=seed) for _ in range(f.shape[1])]
    elif importance == "lasso":
        from sklearn.linear_model import Lasso

        models = [Lasso(alpha=alpha) for _ in range(f.shape[1])]
    else:
        raise InputDataError(f"'importance' must be 'gbt' or 'lasso', got {importance!r}")
    r = np.zeros((z.shape[1], f.shape[1]))
    score_train, score_test = [], []
    for j, model in enumerate(models):
        y_mean, y_std = f[train, j].mean(), f[train, j].std()
        model.fit(x_train, (f[train, j] - y_mean) / y_std)
        weights = model.feature_importances_ if importance == "gbt" else model.coef_
        r[:, j] = np.abs(weights)
        score_train.append(_r2(f[train, j], model.predict(x_train) * y_std + y_mean))
        score_test.append(_r2(f[test, j], model.predict(x_test) * y_std + y_mean))
    col = r.sum(0)
    r = np.divide(r, col, out=np.zeros_like(r), where=col > 0)
    total = r.sum()
    rho = r.sum(1) / total if total > 0 else np.full(r.shape[0], 1 / r.shape[0])
    disent = float((rho * (1 - _normalized_entropy(r, axis=1))).sum())
    complete = float((1 - _normalized_entropy(r, axis=0)).mean()) if total > 0 else 0.0
    return DCIScores(disent, complete, float(np.mean(score_test)), float(np.mean(score_train)), r)


def sap_score(latents: object, factors: object) -> float:
    """Separated attribute predictability (Kumar et al. 2018), continuous factors.

    As disentanglement_lib for continuous factors: the score matrix ``S_ij`` is the R2 of a
    linear fit of factor ``j`` on latent ``i`` alone, ``corr(z_i, theta_j)**2`` (0 for a
    latent of variance below 1e-12 of the largest: relative, so any units score alike);
    SAP is the mean over factors of the difference between the two largest ``S_ij``.

    Parameters
    ----------
    latents, factors : array-like, shapes (n_samples, n_latent >= 2), (n_samples, n_factors)
        Latent codes and continuous generative factors.

    Returns
    -------
    float
        SAP, in ``[0, 1]``: higher is better.

    Examples
    --------
    >>> import numpy as np
    >>> theta = np.random.default_rng(0).normal(size=(1000, 2))
    >>> round(sap_score(theta[:, ::-1] + 0.1, theta), 2)
    1.0
    """
    z, f = _pair(latents, factors, min_samples=3, min_latents=2)
    if np.any(np.ptp(f, 0) == 0):
        raise InputDataError("a column of 'factors' is constant")
    zc, fc = z - z.mean(0), f - f.mean(0)
    var_z, cov = (zc**2).mean(0), zc.T @ fc / len(z)
    denom = np.outer(var_z, (fc**2).mean(0))
    active = (var_z > 1e-12 * var_z.max())[:, None]  # collapsed latents, at any scale
    scores = np.divide(cov**2, denom, out=np.zeros_like(cov), where=active)
    top = np.sort(scores, axis=0)
    return float((top[-1] - top[-2]).mean())
