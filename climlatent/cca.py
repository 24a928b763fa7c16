"""Regularised canonical correlation analysis (CCA) as a rank-``r`` linear regression.

The linear baseline of the variational encoder-decoder (Venkatasubramanian &
Barajas-Solano 2024): the latent code of an input ``x`` is its first ``r`` canonical
variates, and ``y`` is predicted from them through the canonical correlations.

With ridge-regularised covariances ``Cxx + rx I`` and ``Cyy + ry I`` (``rx`` and ``ry``
are ``regularisation`` times the mean variance of ``x`` and of ``y``), whitening
``Wx = (Cxx + rx I)^(-1/2)``, ``Wy = (Cyy + ry I)^(-1/2)`` and the singular value
decomposition of the whitened cross-covariance ``Wx Cxy Wy = U S V^T``:

- canonical correlations: the diagonal of ``S``, largest first;
- canonical variates (the code): ``u = (x - mean_x) Wx U_r``, uncorrelated and of
  unit variance without regularisation; with it they shrink and correlate a little
  (``regularisation=0.1`` gave variances 0.95 to 0.36 on four components);
- prediction: each canonical variate of ``y`` is regressed on its partner,
  ``v_hat = S_r u``, and mapped back to ``y``,
  ``y_hat = mean_y + v_hat V_r^T (Cyy + ry I)^(1/2)``.

Keeping every component gives ridge regression, ``y_hat = mean_y + (x - mean_x)
(Cxx + rx I)^(-1) Cxy`` (ordinary least squares without regularisation); fewer
components give a reduced-rank regression through the most correlated directions.
Everything is computed in closed form from thin SVDs of the centred data matrices,
so inputs with more columns than samples (fields on a grid) cost ``O(n p min(n, p))``.

An emulator on sample matrices (rows are samples; stack a Dataset's fields into them
first): ``fit(X, Y)`` with the proxy ``X`` and the target ``Y``, then ``emulate(X)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from climlatent._deprecation import renamed_method
from climlatent._params import ParamsMixin
from climlatent.errors import not_fitted
from climlatent.estimators._config import check_config
from climlatent.estimators._eof import centred_rank, pattern_signs
from climlatent.estimators._refit import all_or_nothing

__all__ = ["CCARegression"]


def _reduce(data: np.ndarray, regularisation: float) -> tuple[np.ndarray, ...]:
    """Centre ``data`` and return its mean, basis, coordinates and regularised variances.

    The rows of the centred data are ``coords @ basis.T``; the covariance restricted
    to the span of ``basis`` is ``diag(variances)`` before regularisation.
    """
    mean = data.mean(axis=0, dtype=np.float64)
    left, singular, right_t = np.linalg.svd(data - mean, full_matrices=False)
    offset = np.sqrt(len(data)) * float(np.linalg.norm(mean))
    keep = centred_rank(singular, data.shape, offset, data.dtype)
    left, singular, basis = left[:, :keep], singular[:keep], right_t[:keep].T
    variances = singular**2 / (len(data) - 1)
    ridge = regularisation * variances.sum() / data.shape[1]
    return mean, basis, left * singular, variances + ridge, ridge


@dataclass
class CCARegression(ParamsMixin):
    """Regularised CCA: rank-``n_components`` prediction of ``Y`` from ``X``.

    Parameters
    ----------
    n_components : int
        Canonical pairs kept (``r``, the latent size of the CCA encoding); at most
        the rank of the centred data.
    regularisation : float or (float, float)
        Ridge added to the covariances of ``X`` and ``Y``, as a multiple of their mean
        variance (trace / number of columns); one number for both or an ``(x, y)``
        pair. Zero is plain CCA (full-rank data needed for a unique answer).

    Attributes
    ----------
    canonical_correlations_ : np.ndarray
        ``(n_components,)`` canonical correlations, decreasing.
    x_weights_, y_weights_ : np.ndarray
        ``(p, n_components)`` and ``(q, n_components)``: centred data times these
        gives the canonical variates; the largest-magnitude x weight of each pair is
        positive, whatever the order of the samples.
    y_loadings_ : np.ndarray
        ``(n_components, q)``: maps canonical variates of ``Y`` back to ``Y``.
    x_mean_, y_mean_ : np.ndarray
        Column means of the training data.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2000, 3))
    >>> y = np.column_stack([x[:, 0] + 0.5 * rng.normal(size=2000), rng.normal(size=2000)])
    >>> cca = CCARegression(n_components=2, regularisation=0.0).fit(x, y)
    >>> np.round(cca.canonical_correlations_, 1)
    array([0.9, 0. ])
    >>> cca.transform(x).shape, cca.emulate(x).shape
    ((2000, 2), (2000, 2))
    """

    n_components: int = 2
    regularisation: float | tuple[float, float] = 1e-3

    def __post_init__(self) -> None:
        check_config(self)

    @all_or_nothing
    def fit(self, X: np.ndarray, Y: np.ndarray) -> CCARegression:
        """Fit on proxy samples ``X`` ``(n, p)`` and target samples ``Y`` ``(n, q)``.

        Returns
        -------
        CCARegression
            ``self``, fitted.

        Raises
        ------
        ValueError
            The arrays disagree on the number of rows, hold NaN/inf values, or have
            fewer canonical pairs than ``n_components``. A refused refit keeps the
            previous fit; one interrupted (a Ctrl-C) once it set the new weights leaves
            the estimator unfitted.
        """
        x, y = _matrix(X, "X"), _matrix(Y, "Y")
        if len(x) != len(y):
            raise ValueError(f"X has {len(x)} samples but Y has {len(y)}")
        if len(x) < 2:
            raise ValueError("CCA needs at least 2 samples")
        reg = self.regularisation
        reg_x, reg_y = (reg, reg) if np.isscalar(reg) else (float(reg[0]), float(reg[1]))
        x_mean, basis_x, coords_x, var_x, x_ridge = _reduce(x, reg_x)
        y_mean, basis_y, coords_y, var_y, y_ridge = _reduce(y, reg_y)
        available = min(len(var_x), len(var_y))
        if not 1 <= self.n_components <= available:
            raise ValueError(
                f"n_components={self.n_components} must be between 1 and {available}, the "
                f"number of canonical pairs the data allow"
            )
        # whitened cross-covariance in the reduced coordinates (diagonal covariances)
        white_x = coords_x / np.sqrt(var_x)
        white_y = coords_y / np.sqrt(var_y)
        cross = white_x.T @ white_y / (len(x) - 1)
        r = self.n_components
        u, s, v_t = np.linalg.svd(cross, full_matrices=False)
        x_weights = basis_x @ (u[:, :r] / np.sqrt(var_x)[:, None])
        signs = pattern_signs(x_weights.T)  # a pair's sign: LAPACK's changes with sample order
        v_t = v_t[:r] * signs[:, None]
        self.x_mean_, self.x_ridge_, self.y_mean_, self.y_ridge_ = x_mean, x_ridge, y_mean, y_ridge
        self.canonical_correlations_ = s[:r]
        self.x_weights_ = x_weights * signs
        self.y_weights_ = basis_y @ (v_t.T / np.sqrt(var_y)[:, None])
        self.y_loadings_ = (v_t * np.sqrt(var_y)) @ basis_y.T
        self._record_fit_params()
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Canonical variates of ``X``: its ``(n, n_components)`` latent code."""
        self._require_fitted("transform")
        return (_matrix(X, "X") - self.x_mean_) @ self.x_weights_

    def transform_y(self, Y: np.ndarray) -> np.ndarray:
        """Canonical variates of ``Y``."""
        self._require_fitted("transform_y")
        return (_matrix(Y, "Y") - self.y_mean_) @ self.y_weights_

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Predict ``Y`` from the first ``k`` canonical variates of ``X``, ``(n, k)``.

        ``k`` may be below ``n_components``: the canonical pairs are nested, so the
        first ``k`` columns give the rank-``k`` prediction of the same fit.
        """
        self._require_fitted("decode")
        codes = np.asarray(codes, dtype=np.float64)
        k = codes.shape[-1]
        if not 1 <= k <= self.n_components:
            raise ValueError(f"codes have {k} columns; expected 1 to {self.n_components}")
        return self.y_mean_ + (codes * self.canonical_correlations_[:k]) @ self.y_loadings_[:k]

    def emulate(self, X: np.ndarray, n_components: int | None = None) -> np.ndarray:
        """Rank-``n_components`` emulation of the target ``Y`` from the proxy ``X``.

        Parameters
        ----------
        X : np.ndarray
            ``(n, p)`` inputs.
        n_components : int, optional
            Use only the first pairs (at most the fitted ``n_components``, the
            default): one fit gives the predictions of every smaller rank.

        Returns
        -------
        np.ndarray
            ``(n, q)`` emulated targets.

        Examples
        --------
        >>> x = np.random.default_rng(1).normal(size=(50, 3))
        >>> cca = CCARegression(n_components=2, regularisation=0.0).fit(x, 2 * x[:, :2])
        >>> np.allclose(cca.emulate(x), 2 * x[:, :2]), cca.emulate(x, 1).shape
        (True, (50, 2))
        """
        self._require_fitted("emulate")
        k = self.n_components if n_components is None else n_components
        if not 1 <= k <= self.n_components:
            raise ValueError(f"n_components={k} must be between 1 and {self.n_components}")
        return self.decode(self.transform(X)[:, :k])

    predict = renamed_method("predict", "emulate")

    def _require_fitted(self, method: str) -> None:
        if not hasattr(self, "x_weights_"):
            raise not_fitted(self, method)
        self._check_fit_params(method)


def _matrix(a: np.ndarray, name: str) -> np.ndarray:
    """``a`` as a 2-D float array, in its own float dtype: its rounding bounds the rank."""
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples, features), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN/inf values")
    return a
