"""LLAAE estimator: emulate a target field from a proxy through a shared latent space.

The xarray face of :class:`climlatent.models.llaae.LLAAE` (Heinze-Deml et al. 2021;
beta-VAE and GEV latents after seed 000). ``emulate`` returns ``d(h(X))``, the part of
the target explained by the proxy (for sea-level pressure: the circulation-induced
part of precipitation); ``dynamical_adjustment`` adds the residual. With a coarse
proxy and a fine target it is a downscaler: ``fit(coarse, fine, target, proxies)``
then ``downscale(coarse)``. The proxy enters
either as its raw field or as its leading area-weighted EOF principal components,
fitted on the training data only.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import torch
import xarray as xr

from climlatent.batching import FieldLayout, from_matrix, in_sample_order, to_matrix
from climlatent.draws import PRIOR_DRAW, REALIZATION_DIM, decoded_draws_comment, realizations
from climlatent.estimators._eof import (
    basis_from_state,
    basis_spec,
    basis_state,
    fit_eofs,
    fit_ridge,
)
from climlatent.estimators._refit import global_random_states
from climlatent.estimators._torch import inference, load_numpy_state, loading_device, state_to_numpy
from climlatent.estimators._train import seed_global, train_module
from climlatent.estimators.base import ArraySpec, Estimator
from climlatent.models.llaae import LLAAE as LLAAEModule
from climlatent.models.llaae import LOSS_NAMES
from climlatent.models.priors import StandardNormalPrior, prior_draws
from climlatent.training import TrainingConfig, resolve_device
from climlatent.transforms import CONSTANT_RTOL


@dataclasses.dataclass
class LLAAE(Estimator):
    """Latent linear adjustment autoencoder (deterministic, beta-VAE or GEV latent).

    Parameters
    ----------
    latent_dim : int
        Size of the latent space (reference: 400).
    latent : {"gaussian", "gaussian_hp", "gev", "gev_moments", "none"}
        Posterior family: Gaussian (beta-VAE), Gaussian under the learned hierarchical
        prior of `climlatent.models.priors`, true GEV reparameterisation, the seed's
        Gaussian with GEV moments, or deterministic (``beta`` is then ignored).
    alpha, beta : float
        Weights of the reconstruction from the proxy and of the KL term in ``L1``.
    xi, learn_xi : float, bool
        GEV shape (seed: -0.5, fixed) and whether to learn it within a safe range.
    proxy_input : {"eofs", "field"}
        Feed ``h`` the proxy's leading EOF principal components or its raw cells.
    n_proxy_eofs : int
        Proxy EOFs kept when ``proxy_input="eofs"`` (reference: ~750); at most what
        the training data hold (samples - 1, cells).
    refit_proxy_map : bool
        After training, refit ``h`` in closed form: ridge least squares of the encoded
        latents on the proxy features (the reference method's final step).
    ridge : float
        Ridge penalty of that refit.
    filters, residual_blocks, negative_slope : tuple of int, int, float
        Convolutional architecture (reference: (16, 32, 64), 1, leaky ReLU).
    weight_l2 : float
        L2 penalty on the autoencoder weights (reference: 1e-3).
    beta_warmup_epochs : int
        Linear KL warm-up length.
    epochs, batch_size, lr, lr_decay, lr_decay_steps : training schedule
        (reference: 100, 64, 1e-3, 0.96 every 5000 steps).
    validation_fraction, early_stopping_patience, seed, device, amp, progress :
        Passed to :class:`climlatent.training.TrainingConfig`.
    random_streams : {1, 2}
        How the training's random streams derive from ``seed`` (`climlatent.random_streams`):
        2, independent streams; 1, the overlapping ones before version 2.
    target_transform, proxy_transform : {"none", "standardize", "log1p"}
        Preprocessing of each field (fitted on training data); both standardised by default.
    range_tolerance : float
        As for :class:`EOFRegression`.

    Examples
    --------
    >>> import climlatent as cl
    >>> ds = cl.datasets.synthetic_circulation(n_members=1, n_years=2, n_lat=8, n_lon=12)
    >>> est = cl.LLAAE(latent_dim=4, epochs=2, filters=(8, 16)).fit(ds, "pr", "psl")
    >>> est.emulate(ds)["pr"].dims
    ('member', 'time', 'lat', 'lon')
    """

    target_transform: str = "standardize"
    latent_dim: int = 16
    latent: str = "gaussian"
    alpha: float = 1.0
    beta: float = 1.0
    xi: float = -0.5
    learn_xi: bool = False
    proxy_input: str = "eofs"
    n_proxy_eofs: int = 50
    refit_proxy_map: bool = False
    ridge: float = 1e-6
    filters: tuple[int, ...] = (16, 32, 64)
    residual_blocks: int = 1
    negative_slope: float = 0.2
    weight_l2: float = 0.0
    beta_warmup_epochs: int = 0
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    lr_decay: float | None = None
    lr_decay_steps: int | None = None
    validation_fraction: float = 0.1
    early_stopping_patience: int | None = None
    seed: int = 0
    random_streams: int = 2
    device: str = "auto"
    amp: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self.filters = tuple(int(f) for f in self.filters)
        if self.proxy_input not in ("eofs", "field"):
            raise ValueError(f"proxy_input must be 'eofs' or 'field', got {self.proxy_input!r}")

    @classmethod
    def reference(cls, **overrides) -> LLAAE:
        """The reference configuration of Heinze-Deml et al. (2021), variational.

        400 latents, convolution filters 16/32/64 plus one residual layer, leaky ReLU,
        batch 64, 100 epochs, learning rate 1e-3 decayed by 0.96 every 5000 steps,
        linear penalty (alpha) 1, L2 1e-3 on the autoencoder weights, ~750 proxy PCs.

        Examples
        --------
        >>> LLAAE.reference().latent_dim, LLAAE.reference(epochs=5).epochs
        (400, 5)
        """
        config = dict(
            latent_dim=400,
            latent="gaussian",
            alpha=1.0,
            filters=(16, 32, 64),
            residual_blocks=1,
            negative_slope=0.2,
            batch_size=64,
            epochs=100,
            lr=1e-3,
            lr_decay=0.96,
            lr_decay_steps=5000,
            weight_l2=1e-3,
            proxy_input="eofs",
            n_proxy_eofs=750,
        )
        return cls(**{**config, **overrides})

    def fit(
        self,
        *args: xr.Dataset | str | None,
        checkpoint: str | os.PathLike | None = None,
        resume: bool = False,
        **kwargs: xr.Dataset | str | None,
    ) -> LLAAE:
        """Train to produce the target field from the proxy field.

        As an emulator, ``fit(ds, target, proxy)``: both fields in ``ds``, then
        `emulate`. As a downscaler, ``fit(coarse, fine, target, proxies=None)``: the
        proxy (one field named by ``proxies``, the target's own coarse field by
        default) from ``coarse``, the target from ``fine``, then `downscale`. The
        model is the same: the encoder and decoder work on the target's (fine) grid,
        the linear map ``h`` takes the proxy's (coarse) EOF principal components (or
        cells) to the latent, and ``downscale(coarse)`` returns ``d(h(X))`` on the
        fine grid. The two grids may share dim names only in the downscaler form.

        Parameters
        ----------
        ds : xr.Dataset
            Training data holding both fields on their grids, with the same sample
            dims (time, and member or others when present).
        coarse, fine : xr.Dataset
            The downscaler form: the proxy on its grid, the target on its grid, with
            the same sample dims.
        target, proxy : str
            Names of the field to produce and of the predictor field.
        proxies : str, optional
            The downscaler form's predictor: a field of ``coarse`` (the target's own
            coarse field by default).
        checkpoint : str or os.PathLike, optional
            Training checkpoint, rewritten after every epoch.
        resume : bool
            Continue from ``checkpoint`` when the file exists, else start afresh. The
            result equals that of an uninterrupted run; a larger ``epochs`` trains a
            finished run further.

        Returns
        -------
        LLAAE
            ``self``, fitted.

        Raises
        ------
        InputDataError
            As for `Estimator.fit`.
        CheckpointError
            ``resume`` and the checkpoint is damaged or from another run: other data
            (values or shapes) or options (``epochs``, ``device``, ``progress`` aside); the
            message names the file and each difference.
        TypeError
            The arguments fit neither form.

        Examples
        --------
        >>> import climlatent as cl
        >>> world = cl.datasets.synthetic_biogeochem(n_years=2, n_fine_lat=16, n_fine_lon=16)
        >>> est = cl.LLAAE(latent_dim=2, n_proxy_eofs=4, epochs=1, filters=(4,), progress=False)
        >>> est = est.fit(world.coarse, world.fine, "chl")  # coarse chl -> fine chl
        >>> est.downscale(world.coarse)["chl"].shape == world.fine["chl"].shape
        True
        """
        return super().fit(*args, checkpoint=checkpoint, resume=resume, **kwargs)

    # -- model supplied to the base class -------------------------------------------

    def _build(self, mask: np.ndarray, n_features: int) -> LLAAEModule:
        options = {"xi": self.xi, "learn_xi": self.learn_xi} if "gev" in self.latent else {}
        return LLAAEModule(
            torch.from_numpy(mask),
            n_features,
            self.latent_dim,
            self.latent,
            self.alpha,
            self.beta if self.latent != "none" else 0.0,
            self.weight_l2,
            self.filters,
            self.residual_blocks,
            self.negative_slope,
            options,
            self.beta_warmup_epochs,
        )

    def _fit_arrays(
        self,
        x: np.ndarray,
        y: np.ndarray,
        proxy: FieldLayout,
        target: FieldLayout,
        checkpoint: str | os.PathLike | None = None,
        resume: bool = False,
    ) -> None:
        self.proxy_basis_ = (
            fit_eofs(x, proxy.area_weights, self.n_proxy_eofs)
            if self.proxy_input == "eofs"
            else None
        )
        features = self._features(x)
        scale, size = features.std(axis=0), np.abs(features.mean(axis=0))
        # a constant feature (1e5 Pa in one cell) becomes +-1, not 1e17 over std + 1e-12
        constant = scale <= CONSTANT_RTOL * size
        self.feature_scale_ = np.where(constant, np.where(size > 0, size, 1.0), scale)
        mask = np.asarray(target.grid["valid_mask"].values, dtype=bool)
        seed_global(self.seed, self.random_streams)
        self.module_ = self._build(mask, self.feature_scale_.size)
        self.device_ = resolve_device(self.device)
        tensors = self._tensors(x, y)
        # sets history_, best_epoch_ and device_
        train_module(self, self.module_, tensors, checkpoint, resume)
        self.module_.end_training()  # evaluate() scores L1 with beta, as a loaded model does
        if self.refit_proxy_map:
            self._refit_proxy_map(tensors[0].numpy(), tensors[2].numpy())
        self.module_.eval()

    def _training_config(self, **overrides: Any) -> TrainingConfig:
        monitor = "reconstruction_proxy" if self.early_stopping_patience else None
        return super()._training_config(monitor=monitor, **overrides)

    def _tensors(self, x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, ...]:
        """The model's batch tensors ``(y, weight, features)`` from sample matrices."""
        weight = np.isfinite(y).astype(np.float32)
        return tuple(
            torch.from_numpy(a) for a in (np.nan_to_num(y), weight, self.proxy_features(x))
        )

    def training_tensors(
        self, ds: xr.Dataset, check_range: bool = True
    ) -> tuple[torch.Tensor, ...]:
        """The tensors ``(y, weight, proxy features)`` the fitted model trains on.

        Target cells (NaN set to 0), their data mask, and the standardised proxy
        features, after the fitted transforms: what :meth:`fit` hands the training loop,
        for benchmarks and custom training; ``check_range`` as in `emulate`.
        """
        self._require_fitted("training_tensors")
        x = self._prepare_proxy(ds, check_range)
        x_in = self.proxy_transform_.forward(x) if self.proxy_transform_ else x
        return self._tensors(
            to_matrix(x_in, self.proxy_layout_),
            to_matrix(in_sample_order(self._prepare_target(ds), x_in.dims), self.target_layout_),
        )

    def _refit_proxy_map(self, y: np.ndarray, features: np.ndarray) -> None:
        """Closed-form ``h``: ridge regression of the latent codes on the features."""
        codes = inference(self.module_.encode, y, device=self.device_)
        coef = fit_ridge(features, codes, self.ridge)
        with torch.no_grad():
            self.module_.proxy_map.bias.copy_(torch.from_numpy(coef[0]).float())
            self.module_.proxy_map.weight.copy_(torch.from_numpy(coef[1:].T).float())

    def _features(self, x: np.ndarray) -> np.ndarray:
        if self.proxy_basis_ is None:
            return np.asarray(x, np.float64)
        return self.proxy_basis_.project(x)

    def proxy_features(self, x: np.ndarray) -> np.ndarray:
        """Standardised proxy features (EOF PCs or cells) of a proxy sample matrix."""
        return (self._features(x) / self.feature_scale_).astype(np.float32)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return inference(self.module_.emulate, self.proxy_features(x), device=self.device_)

    def _encode(self, y: np.ndarray) -> np.ndarray:
        return inference(self.module_.encode, np.nan_to_num(y), device=self.device_)

    def _decode(self, z: np.ndarray) -> np.ndarray:
        return inference(self.module_.decode, z, device=self.device_)

    def _state(self) -> dict[str, np.ndarray]:
        state = state_to_numpy(self.module_)
        state["feature_scale"] = self.feature_scale_
        if self.proxy_basis_ is not None:
            state.update(basis_state(self.proxy_basis_, "proxy"))
        return state

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        self.feature_scale_ = state["feature_scale"]
        eofs = self.proxy_input == "eofs"
        self.proxy_basis_ = basis_from_state(state, "proxy") if eofs else None
        mask = np.asarray(self.target_layout_.grid["valid_mask"].values, dtype=bool)
        self.module_ = self._build(mask, int(state["module.proxy_map.weight"].shape[1]))
        load_numpy_state(self.module_, state)
        self.device_ = loading_device(self.device)
        self.module_.to(self.device_).eval()

    def _state_spec(self) -> dict[str, ArraySpec]:
        n_cells = self.proxy_layout_.n_features
        features = "proxy_modes" if self.proxy_input == "eofs" else n_cells
        spec = {
            "feature_scale": ((features,), "float64"),
            "module.proxy_map.weight": ((None, features), "float32"),
        }
        if self.proxy_input == "eofs":
            spec.update(basis_spec("proxy", n_cells))
        return spec

    def evaluate(self, ds: xr.Dataset, seed: int = 0) -> dict[str, float]:
        """Mean training losses of the fitted model on ``ds`` (eval mode, no sampling).

        The KL term of the GEV latents is a Monte Carlo estimate (``n_kl_samples``
        draws per sample); its draws come from ``seed``, so that a call gives the same
        numbers every time (torch's global random state is left as it was).

        Returns
        -------
        dict
            ``autoencoder`` (L1), ``latent`` (L2), ``reconstruction`` (from the input),
            ``reconstruction_proxy`` (from the proxy) and ``kl``, per sample.

        Examples
        --------
        >>> import climlatent as cl
        >>> ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=8, n_lon=8)
        >>> est = cl.LLAAE(latent_dim=2, epochs=1, filters=(8,)).fit(ds, "tas", "psl")
        >>> sorted(est.evaluate(ds))
        ['autoencoder', 'kl', 'latent', 'reconstruction', 'reconstruction_proxy']
        """
        self._require_fitted("evaluate")
        tensors = [t.numpy() for t in self.training_tensors(ds)]

        def batch_means(yb: torch.Tensor, wb: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
            losses = self.module_.training_losses((yb, wb, xb))  # means over the batch
            return torch.stack([losses[k] for k in LOSS_NAMES]).expand(len(yb), -1)

        with global_random_states():  # alone: another thread's seed would reset the draws
            torch.manual_seed(seed)
            means = inference(batch_means, *tensors, device=self.device_)
        return dict(zip(LOSS_NAMES, means.mean(axis=0, dtype=float).tolist(), strict=True))

    # -- generative use --------------------------------------------------------------

    def sample(self, n: int, seed: int = 0) -> xr.Dataset:
        """Decode ``n`` draws from the latent prior into target fields.

        Each field is the decoder's output for its draw (in the target's units), as its
        ``comment`` says: the LLAAE is trained on squared errors and has no output noise
        model to add.
        The prior is N(0, I), or with ``latent="gaussian_hp"`` the learned hierarchical
        prior the latents were trained under. The deterministic LLAAE
        (``latent="none"``) has no prior: its codes were never pulled towards N(0, I).
        Draw ``i`` comes from ``seed`` and ``i`` alone (`climlatent.models.priors.prior_draws`):
        the first ``k`` of ``sample(n, seed)`` are ``sample(k, seed)``, to float round-off.

        Returns
        -------
        xr.Dataset
            The target on its grid with a ``realization`` dim (the draws, numbered from
            0), in the target's units.

        Raises
        ------
        ValueError
            ``latent="none"``: N(0, I) draws decoded there spread half as much as the
            data (3.2 K for 6.5 K), in a latent region its codes never filled.

        Examples
        --------
        >>> import climlatent as cl
        >>> ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=8, n_lon=8)
        >>> est = cl.LLAAE(latent_dim=2, epochs=1, filters=(8,)).fit(ds, "tas", "psl")
        >>> est.sample(3)["tas"].sizes["realization"]
        3
        """
        self._require_fitted("sample")
        if self.latent == "none":
            raise ValueError(
                "a deterministic LLAAE (latent='none') has no latent prior to sample from: "
                "fit a variational latent ('gaussian', 'gaussian_hp', 'gev', 'gev_moments')"
            )
        prior = getattr(self.module_.latent, "prior", None) or StandardNormalPrior()
        with torch.no_grad():
            z = prior_draws(prior, n, self.latent_dim, seed, self.device_).cpu().numpy()
        draws = realizations(n, PRIOR_DRAW)
        out = self._decoded(z, REALIZATION_DIM, draws, f"sample({n}, seed={seed})")
        out[self.target_].attrs["comment"] = decoded_draws_comment(PRIOR_DRAW, noise=False)
        return out

    def traverse(self, latent: int, values) -> xr.Dataset:
        """Decode latent vectors that are zero except dimension ``latent`` = each value.

        Returns
        -------
        xr.Dataset
            The target on its grid with a ``value`` dim holding ``values``.
        """
        self._require_fitted("traverse")
        if not 0 <= latent < self.latent_dim:
            raise ValueError(f"latent must be in [0, {self.latent_dim}), got {latent}")
        values = np.asarray(values, dtype=np.float32)
        z = np.zeros((values.size, self.latent_dim), np.float32)
        z[:, latent] = values
        out = self._decoded(z, "value", values, f"traverse(latent={latent})")
        return out.assign_attrs(traversed_latent=latent)

    def _decoded(
        self, z: np.ndarray, dim: str, labels: np.ndarray | xr.DataArray, call: str
    ) -> xr.Dataset:
        out = from_matrix(self._decode(z), self.target_layout_, {dim: labels})
        return self._wrap(out.rename(self.target_), xr.Dataset(), call)
