"""EOF regression: the classic statistical emulator every latent model must beat.

The proxy field (e.g. sea-level pressure) and the target field (e.g. precipitation)
are each reduced to their leading area-weighted EOFs; the target's principal
components are regressed linearly (ridge least squares) on the proxy's. Emulating
maps a new proxy field to its PCs, through the regression, and back to the target
grid through the target EOFs. The target PCs are the estimator's latent space.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from climlatent.batching import FieldLayout, check_finite
from climlatent.errors import InputDataError
from climlatent.estimators._eof import (
    apply_ridge,
    basis_from_state,
    basis_spec,
    basis_state,
    fit_eofs,
    fit_ridge,
)
from climlatent.estimators.base import ArraySpec, Estimator


@dataclasses.dataclass
class EOFRegression(Estimator):
    """Emulate a target field by regressing its EOF PCs on the proxy's EOF PCs.

    Parameters
    ----------
    n_proxy_eofs : int
        Proxy EOFs used as predictors: more than the training data allow (samples - 1,
        cells) is refused; a rank-deficient proxy keeps its numerical rank.
    n_target_eofs : int
        Target EOFs predicted; also the latent dimension of :meth:`encode`. More than
        the training data allow is refused, as for the proxy; a rank-deficient target
        keeps its numerical rank, which is then the latent dimension.
    ridge : float
        Ridge penalty on the regression coefficients (0: ordinary least squares), added
        to the sums of squares of the proxy PCs: in the units of the transformed proxy,
        so with ``proxy_transform="none"`` its effect changes with the proxy's units
        (the same ridge shrank a proxy in hPa 10^4 times more than in Pa).
    target_transform, proxy_transform : {"none", "standardize", "log1p"}
        Preprocessing of each field before the EOF analysis (fitted on training data).
    range_tolerance : float
        New proxy fields beyond their training range by more than this many widths of it
        are refused (`climlatent.fitted_range`).

    Examples
    --------
    >>> import climlatent as cl
    >>> ds = cl.datasets.synthetic_circulation(n_years=4)
    >>> train, test = ds.isel(time=slice(0, 1095)), ds.isel(time=slice(1095, None))
    >>> est = cl.EOFRegression(n_proxy_eofs=5, n_target_eofs=10).fit(train, "pr", "psl")
    >>> emulated = est.emulate(test)
    >>> emulated["pr"].attrs["units"], emulated["pr"].sizes["time"]
    ('kg m-2 s-1', 365)
    """

    n_proxy_eofs: int = 20
    n_target_eofs: int = 20
    ridge: float = 0.0

    def _fit_arrays(
        self, x: np.ndarray, y: np.ndarray, proxy: FieldLayout, target: FieldLayout
    ) -> None:
        check_finite(y, target.name)
        if x.shape[0] < 2:
            raise InputDataError(f"EOFRegression needs at least 2 samples, got {x.shape[0]}")
        self.proxy_basis_ = fit_eofs(x, proxy.area_weights, self.n_proxy_eofs, "n_proxy_eofs")
        self.target_basis_ = fit_eofs(y, target.area_weights, self.n_target_eofs, "n_target_eofs")
        self.coef_ = fit_ridge(
            self.proxy_basis_.project(x), self.target_basis_.project(y), self.ridge
        )

    def _predict(self, x: np.ndarray) -> np.ndarray:
        pcs = apply_ridge(self.coef_, self.proxy_basis_.project(x))
        return self.target_basis_.reconstruct(pcs)

    def _encode(self, y: np.ndarray) -> np.ndarray:
        return self.target_basis_.project(y).astype(np.float32)

    def _decode(self, z: np.ndarray) -> np.ndarray:
        return self.target_basis_.reconstruct(z)

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "coef": self.coef_,
            **basis_state(self.proxy_basis_, "proxy"),
            **basis_state(self.target_basis_, "target"),
        }

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        self.coef_ = state["coef"]
        self.proxy_basis_ = basis_from_state(state, "proxy")
        self.target_basis_ = basis_from_state(state, "target")

    def _state_spec(self) -> dict[str, ArraySpec]:
        return {
            **basis_spec("proxy", self.proxy_layout_.n_features),
            **basis_spec("target", self.target_layout_.n_features),
            "coef": (("proxy_modes+1", "target_modes"), "float64"),  # intercept row first
        }
