"""ProxyLatentDownscaler: the physics-proxy latent downscaler of seed 000, Section 4.4.

The xarray face of :class:`climlatent.models.proxy_latent.ProxyLatentModel`: an LLAAE
whose latent space is a map on the coarse grid of the physics proxies. Training sees
the fine target and the coarse drivers; the encoder is then dropped, and
``downscale(coarse)`` runs drivers -> growth laws -> latent map -> decoder. With
``target_input=True`` the coarse target itself, where a climate model gives it, sets
the growth latent instead of the growth laws' prediction (the laws are still fitted).
``downscale(coarse, n_samples=k)`` draws ``k`` realisations from the latent and fine
residual spreads measured, per cell, over every fitting sample (the validation
samples alone, about a tenth, gave per-cell spreads too noisy for a flat rank
histogram).

It shares :class:`climlatent.ProxyDownscaler`'s boundary (variables, units of each
driver converted to its law's, grids, calendars, fitted ranges, layouts) and its
``proxy_parameters``; it differs in the model between drivers and fine field.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import torch
import xarray as xr

from climlatent.batching import from_matrix, in_sample_order, sample_coords, to_matrix
from climlatent.checks import check_field, check_same_samples, get_variable
from climlatent.draws import BlockNormals
from climlatent.errors import InputDataError
from climlatent.estimators._drivers import anomaly_scale, check_alike, proxy_laws
from climlatent.estimators._torch import inference
from climlatent.estimators.downscaler import ProxyDownscaler
from climlatent.fitted_range import FittedRange
from climlatent.grid_order import GridOrder, grid_layout, in_layout
from climlatent.grouping import group_log_mean_exp, group_mean, new_sample_variance
from climlatent.models.proxy_latent import ProxyLatentModel
from climlatent.regrid import Regridder
from climlatent.training import TrainingConfig
from climlatent.units import convert_units, in_other_units, parse_units

CHANNEL_DIM = "latent"
RIDGE = 1e-3  # of the kernel's least-squares start, per sample, on the standardised latent


@dataclasses.dataclass
class ProxyLatentDownscaler(ProxyDownscaler):
    """Downscale through a latent map on the coarse grid tied to physics proxies.

    Channel 0 of the latent map is the target's coarse anomaly, predicted by the
    summed growth terms of the drivers; ``channels - 1`` further channels are learned
    by a variational encoder of the fine field and predicted linearly from the growth
    terms; a decoder maps the latent map to the fine grid (bilinear interpolation, a
    per-cell structure and a convolutional refinement). See
    :mod:`climlatent.models.proxy_latent` for the equations.

    Parameters
    ----------
    channels : int
        Latent channels per coarse cell (1: the growth latent alone).
    latent : {"gaussian", "gaussian_hp", "gev", "gev_moments", "none"}
        Posterior family of the learned channels.
    alpha, beta : float
        Weights of the reconstruction from the drivers and of the KL in the LLAAE
        loss ``L1``.
    hidden, residual_blocks : int
        Width and depth of the encoder's and decoder's convolutions.
    mode : {"auto", "multiplicative", "additive"}
        ``"auto"``: multiplicative (log target, growth laws multiply) when proxies are
        given, additive when the target is downscaled from its own coarse field.
    noise : bool
        Measure the residual spreads after training, enabling
        ``downscale(..., n_samples=k)``; in the multiplicative form also the smearing
        factor that makes ``downscale(coarse)`` the conditional mean (without it, the
        conditional median, lower by about half the log variance).
    interpolation : {"auto", "bilinear", "learned"}
        The decoder's coarse-to-fine interpolation of the growth latent: fixed
        bilinear weights, or a kernel over the 9 nearest coarse cells learned from
        bilinear. ``"auto"``: learned in the additive form, bilinear in the
        multiplicative form (where fixed weights keep the growth laws identifiable).
    target_input : bool
        Downscale from the coarse target as well as the drivers (``coarse`` then
        holds the target's own coarse field, e.g. a climate model's chlorophyll): the
        growth latent is the target's observed coarse anomaly, less its mean offset
        from the encoder's over the fitting samples, instead of the growth laws'
        prediction; the free channels still come from the drivers. The growth laws
        are fitted and reported as without it.
    group : str or Grouper
        Seasonality, as for :class:`climlatent.ProxyDownscaler` (``"time.month"``,
        ``"time.season"``, ``"time.dayofyear:31"``...): the structure ``s(x)``, the
        residual spreads and the smearing factor are one per group; growth laws,
        interpolation, encoder and refinement are shared.
    epochs, batch_size, lr, validation_fraction, early_stopping_patience, seed, device, progress
        As for :class:`climlatent.ProxyDownscaler`.
    range_tolerance : float
        As for :class:`climlatent.ProxyDownscaler`; with ``target_input``, for the coarse
        target too.

    Examples
    --------
    >>> import climlatent as cl
    >>> world = cl.datasets.synthetic_biogeochem(n_years=2, n_fine_lat=20, n_fine_lon=20,
    ...                                         factor=10)
    >>> est = cl.ProxyLatentDownscaler(channels=2, hidden=4, epochs=2, progress=False).fit(
    ...     world.coarse, world.fine, "chl", proxies={"tos": "exponential", "rsds": "quadratic"})
    >>> est.downscale(world.coarse, n_samples=3)["chl"].sizes["realization"]
    3
    >>> est.latent_maps(world.coarse).sizes["latent"]
    2
    """

    channels: int = 4
    latent: str = "gaussian"
    alpha: float = 1.0
    beta: float = 0.1
    hidden: int = 16
    residual_blocks: int = 1
    noise: bool = True
    target_input: bool = False
    lr: float = 3e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.channels < 1:
            raise ValueError(
                f"channels must be at least 1 (the growth latent), got {self.channels}"
            )

    def fit(
        self,
        coarse: xr.Dataset,
        fine: xr.Dataset,
        target: str,
        proxies: dict[str, str] | None = None,
        *,
        checkpoint: str | os.PathLike | None = None,
        resume: bool = False,
    ) -> ProxyLatentDownscaler:
        """Fit on coarse drivers and the fine target over the same samples.

        Parameters are those of :meth:`climlatent.ProxyDownscaler.fit`; with
        ``target_input`` ``coarse`` also holds the coarse target, named ``target``.
        After training, with ``target_input`` the offset of the observed growth latent
        and, with ``noise=True``, the latent and fine residual spreads are measured
        over all the samples.

        Returns
        -------
        ProxyLatentDownscaler
            ``self``, fitted.
        """
        if self.mode == "additive":  # "auto" is additive for the target's own field alone
            _check_additive_drivers(coarse, fine, target, proxies)
        if self.target_input:  # refused before training, not after
            observed = get_variable(coarse, target, "coarse target")
            time, _ = check_field(observed, "coarse target")
            check_same_samples(get_variable(fine, target, "target"), observed, time)
            parse_units(observed, target)
            first = next(iter(proxy_laws(proxies, target)))
            if first != target:  # the drivers' grid and samples (the first is checked)
                driver = get_variable(coarse, first, "proxy")
                check_field(driver, "proxy")
                check_alike(
                    GridOrder.of(driver).canonical(driver),
                    GridOrder.of(observed).canonical(observed),
                    "coarse target",
                )
        return super().fit(coarse, fine, target, proxies, checkpoint=checkpoint, resume=resume)

    def _statistic(self) -> str | None:
        """The median when no smearing factor was measured (multiplicative, no noise)."""
        return super()._statistic() if not self.noise else None

    def _after_training(
        self, coarse: xr.Dataset, y: np.ndarray, x: np.ndarray, memberships: np.ndarray
    ) -> None:
        """The coarse target's fitted range, then the residuals (`_measure_residuals`)."""
        inputs = [x]
        if self.target_input:
            observed = get_variable(coarse, self.target_, "coarse target")
            observed = convert_units(observed, self.target_attrs_["units"], self.target_)
            self.driver_ranges_[self.target_] = FittedRange.fit(
                observed, "coarse target", self.range_tolerance
            )
            observed = in_sample_order(self._coarse_target(coarse), self.sample_dims_)
            observed = to_matrix(observed, self.coarse_layout_)  # rows of the drivers
            inputs.append(self._coarse_target_matrix(observed))
        if self.target_input or self.noise:
            self._measure_residuals(y, memberships, *inputs)

    def _coarse_target(self, coarse: xr.Dataset, check_range: bool | None = None) -> xr.DataArray:
        """The coarse target in the fine target's units.

        On apply (``check_range`` given) it is checked against the fit and put in the
        fitted layout, as the drivers are; its values by `_coarse_target_matrix`.
        """
        x = get_variable(coarse, self.target_, "coarse target")
        if check_range is None:
            x = GridOrder.of(x).canonical(x)
        else:
            x = self._check_new_field(x, "coarse target", self.coarse_layout_, blocks_checked=True)
        x = convert_units(x, self.target_attrs_["units"], self.target_)
        if check_range and self.target_ in self.driver_ranges_:
            x = self.driver_ranges_[self.target_].check(x, "coarse target", self.range_tolerance)
        return x

    def _coarse_target_matrix(self, mat: np.ndarray) -> np.ndarray:
        """``mat``, the coarse target's ``(n_samples, n_coarse)``, refused if not usable."""
        if not np.isfinite(mat).all():
            raise InputDataError(
                f"coarse target {self.target_!r} has NaN/inf values in coarse cells "
                f"where the drivers hold data"
            )
        if self.mode_ == "multiplicative" and (mat <= 0).any():
            raise InputDataError(
                f"coarse target {self.target_!r} has values <= 0; the multiplicative "
                f"form takes its log"
            )
        return mat

    def input_variables(self) -> list[str]:
        """The drivers' names and, with ``target_input``, the target's."""
        names = super().input_variables()
        return list(dict.fromkeys(names + [self.target_])) if self.target_input else names

    def _input_fields(self, coarse: xr.Dataset, check_range: bool) -> list[xr.DataArray]:
        """The drivers and, with ``target_input``, the coarse target."""
        fields = super()._input_fields(coarse, check_range)
        if not self.target_input:
            return fields
        observed = self._coarse_target(coarse, check_range)
        check_alike(fields[0], observed, "coarse target", grid=False)  # rows pair
        return [*fields, observed]

    def _row_inputs(self, matrices: list[np.ndarray], groups: np.ndarray) -> list[np.ndarray]:
        """Driver matrix, groups and, with ``target_input``, the coarse target."""
        inputs = super()._row_inputs(matrices, groups)
        if self.target_input:
            inputs.append(self._coarse_target_matrix(matrices[-1]))
        return inputs

    def _draw_rows(
        self, matrices: list[np.ndarray], groups: np.ndarray, normals: BlockNormals
    ) -> np.ndarray:
        """Realisations of the rows: latent noise (stream 0), decoded, fine noise (1)."""
        drivers, row_groups, *observed = self._row_inputs(matrices, groups)
        n_latent = int(np.prod(self.module_.latent_spread.shape[1:]))
        n_fine = self.module_.fine_spread.shape[1]
        return np.stack(
            [
                inference(
                    lambda d, lat, fine, g, *obs: self.module_.sample(d, lat, fine, g, *obs),
                    drivers,
                    normals(realization, 0, n_latent),
                    normals(realization, 1, n_fine),
                    row_groups,
                    *observed,
                    device=self.device_,
                )
                for realization in range(normals.n)
            ]
        )

    def _measure_residuals(
        self, y: np.ndarray, memberships: np.ndarray, x: np.ndarray, *observed: np.ndarray
    ) -> None:
        """What the latent path from the drivers (and ``observed``) leaves unexplained.

        With an observed coarse target, first its per-cell offset from the encoder's
        growth latent. With ``noise``, per group (rows weighted by ``memberships``,
        ``(n_samples, n_groups)``) and cell, the RMS latent residual ``e(y) - h(X)``
        and fine residual ``y - d(e(y))``, the latter widened by ``sqrt((n + 1) /
        (n - 1))`` to the spread of a new sample (the group's structure is fitted to
        its ``n`` samples: 1.18 for six years of one month); both pooled as a group
        factor times a cell pattern (`_separable`). In the multiplicative form also the
        smearing factor that turns the median ``exp(q d(h(X)))`` into the conditional
        mean: the log of the mean of ``exp`` of the log residuals ``q (T(y) -
        d(h(X)))`` (Duan 1983).
        """
        module = self.module_.cpu()
        valid = np.isfinite(y)
        x_t = torch.from_numpy(x)
        obs = torch.from_numpy(observed[0]) if observed else None
        with torch.no_grad():
            y_t = module.transform(torch.from_numpy(np.where(valid, y, 1.0)))
            _, code, _ = module.encode(y_t, torch.from_numpy(valid.astype(np.float32)))
            if obs is not None:  # the offset is zero until here
                module.observed_offset.copy_((module.observed_latent(obs) - code[:, 0]).mean(0))
            predicted = module.predict_latent(x_t, obs)
            latent_error = (code - predicted).double().numpy().reshape(len(y), -1)
            # the decoders' residuals before the structure s_g of a group is taken off
            fine, proxy = (
                np.where(valid, (y_t - module.anomaly(z)).double().numpy(), np.nan)
                for z in (code, predicted)
            )
        if self.noise:
            structure = module.structure.detach().double().numpy()
            n = memberships.sum(axis=0)

            def spread(variance: np.ndarray) -> torch.Tensor:
                separable = _separable(np.maximum(np.nan_to_num(variance), 0), n)
                return torch.from_numpy(np.sqrt(separable))

            module.latent_spread.copy_(
                spread(group_mean(latent_error**2, memberships)).reshape(module.latent_spread.shape)
            )
            # per group g, the mean of (r - s_g)^2 is mean r^2 - 2 s_g mean r + s_g^2,
            # widened to a new sample's: s_g is fitted to the group's n samples
            mean, mean_square = group_mean(fine, memberships), group_mean(fine**2, memberships)
            widening = new_sample_variance(memberships)[:, None]
            variance = mean_square - 2 * structure * mean + structure**2
            module.fine_spread.copy_(spread(widening * variance))
            if module.log_growth:  # log of the mean of exp(q (r - s_g))
                q = float(module.scale)
                smearing = group_log_mean_exp(q * proxy, memberships) - q * structure
                module.log_smearing.copy_(torch.from_numpy(np.nan_to_num(smearing)))
        module.to(self.device_)

    def latent_maps(self, coarse: xr.Dataset, check_range: bool = True) -> xr.Dataset:
        """The latent map ``h(X)`` and each driver's growth term on the coarse grid.

        Parameters
        ----------
        coarse : xr.Dataset
            Drivers on the fitted coarse grid, with any sample dims.
        check_range : bool
            Refuse driver values far beyond the fitted range.

        Returns
        -------
        xr.Dataset
            ``latent_map`` (sample dims, ``latent``, coarse grid in the layout of
            ``coarse``; channel 0 the growth latent, in units of the target's scale,
            observed from the coarse target with ``target_input``)
            and ``<driver>_growth``, the value of each driver's growth law (its
            units: d-1 for a temperature law, 1 for a light law).

        Examples
        --------
        >>> import climlatent as cl
        >>> world = cl.datasets.synthetic_biogeochem(n_years=1, n_fine_lat=20,
        ...                                         n_fine_lon=20, factor=10)
        >>> est = cl.ProxyLatentDownscaler(channels=1, epochs=1, progress=False).fit(
        ...     world.coarse, world.fine, "chl", proxies={"tos": "exponential"})
        >>> est.latent_maps(world.coarse)["tos_growth"].attrs["units"]
        'd-1'
        """
        self._require_fitted("latent_maps")
        fields = self._input_fields(coarse, check_range)
        layout = grid_layout(get_variable(coarse, next(iter(self.drivers_)), "proxy"))
        x, _, *observed = (torch.from_numpy(a).to(self.device_) for a in self._model_inputs(fields))
        samples = sample_coords(fields[0], self.coarse_layout_)
        with torch.no_grad():
            latent = self.module_.predict_latent(x, *observed).cpu().numpy()
            growth = [law(x[:, k]).cpu().numpy() for k, law in enumerate(self.module_.proxies)]

        def on_grid(values: np.ndarray, **attrs: str) -> xr.DataArray:
            da = from_matrix(values, self.coarse_layout_, samples)
            return in_layout(layout, da).assign_attrs(attrs)

        out = xr.Dataset()
        out["latent_map"] = xr.concat(
            [on_grid(latent[:, c]) for c in range(self.channels)], CHANNEL_DIM
        ).assign_attrs(
            long_name="latent map predicted from the drivers (channel 0: growth latent)",
            units="1",
        )
        for (name, law), values, module in zip(
            self.laws_.items(), growth, self.module_.proxies, strict=True
        ):
            units = "d-1" if getattr(module, "expected_units", None) == "degC" else "1"
            out[f"{name}_growth"] = on_grid(
                values, long_name=f"growth term of the {law} law of {name}", units=units
            )
        return out.transpose(*samples, CHANNEL_DIM, ...)

    # -- the model -------------------------------------------------------------------

    def _training_config(self, **overrides: Any) -> TrainingConfig:
        """Early stopping and the best epoch follow the downscaling loss ``|y - d(h(X))|^2``."""
        return super()._training_config(**{"monitor": "reconstruction_proxy", **overrides})

    def _build(
        self, neighbours: torch.Tensor, weights: torch.Tensor, modules: list, floor: float = 1e-12
    ) -> ProxyLatentModel:
        aggregation = torch.zeros(self.coarse_layout_.n_features, self.fine_layout_.n_features)
        return ProxyLatentModel(
            torch.from_numpy(self.fine_layout_.mask.reshape(self.fine_layout_.shape)),
            aggregation,
            neighbours,
            weights,
            modules,
            log_growth=self.mode_ == "multiplicative",
            scale=1.0,
            floor=floor,
            channels=self.channels,
            latent=self.latent,
            alpha=self.alpha,
            beta=self.beta,
            hidden=self.hidden,
            residual_blocks=self.residual_blocks,
            learn_interpolation=self._learns_interpolation(),
            n_groups=self.groups_.size,
        )

    def _initialise_structure(self, y: np.ndarray, x: np.ndarray, memberships: np.ndarray) -> None:
        """Aggregation weights, the target's scale, the centres and ``s(x)`` from the data.

        ``s(x)`` starts at the mean, per group (``memberships``, ``(n_samples,
        n_groups)``), of what the growth latent's linear part leaves.
        """
        module = self.module_
        fine = self.fine_layout_.grid.drop_vars("valid_mask")
        coarse = self.coarse_layout_.grid.drop_vars("valid_mask")
        weights = Regridder(fine, coarse, "conservative", engine="climlatent").weights
        weights = weights[self.coarse_layout_.mask][:, self.fine_layout_.mask].toarray()
        weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
        with torch.no_grad():
            module.aggregation.copy_(torch.from_numpy(weights))
            y_t = module.transform(torch.from_numpy(np.nan_to_num(y, nan=1.0))).numpy()
            y_t = np.where(np.isfinite(y), y_t, np.nan)
            module.scale.copy_(torch.tensor(anomaly_scale(y_t)))  # as ProxyDownscaler's
            if not module.log_growth:  # W sees the growth terms, the target's units, over q
                module.growth_scale.copy_(module.scale)
            y_t /= float(module.scale)
            phi = module.growth_terms(torch.from_numpy(x)).sum(1)
            module.growth_centre.copy_(phi.mean(0))
            weight = torch.from_numpy(np.isfinite(y_t).astype(np.float32))
            coarse_mean = module.coarse_anomaly(torch.from_numpy(np.nan_to_num(y_t)), weight)
            module.coarse_centre.copy_(coarse_mean.mean(0))  # the centre was zero
            growth = (phi - module.growth_centre) / module.scale
            if module.weights.requires_grad:
                _, kernel = _least_squares_kernel(
                    growth.numpy(), y_t, module.neighbours.numpy(), RIDGE
                )
                module.weights.copy_(torch.from_numpy(kernel))
            linear = module.gain * module.interpolate(growth)
            structure = group_mean(y_t - linear.numpy(), memberships)
            module.structure.copy_(torch.from_numpy(np.nan_to_num(structure)))


def _check_additive_drivers(
    coarse: xr.Dataset, fine: xr.Dataset, target: str, proxies: dict[str, str] | None
) -> None:
    """Refuse a driver the additive form cannot take: one not in the target's units.

    Its growth latent adds each law's output, with a unit coefficient, to the coarse
    target's anomaly: sea surface temperature through 'identity' for chlorophyll in
    kg m-3 came out 1.2e5 target sd off (1.35 in mg m-3). The target's own coarse
    field is converted to its units.
    """
    units = get_variable(fine, target, "target").attrs.get("units")
    for name in proxy_laws(proxies, target):
        given = get_variable(coarse, name, "proxy").attrs.get("units")
        if name != target and (given is None or in_other_units(given, units)):
            raise InputDataError(
                f"proxy variable {name!r} is in {given!r}, not the target's {units!r}: the "
                "additive form adds each law's output to the target with a unit coefficient; "
                "convert it, or for a driver of another quantity use mode='multiplicative' "
                "(growth laws multiply) or ProxyDownscaler, which takes it in its own spread"
            )


def _separable(variance: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Per-group, per-cell variances as a group factor times a cell pattern.

    A few samples per group leave each cell's own variance too noisy for calibrated
    draws (too narrow in some cells, too wide in others: a U-shaped rank histogram);
    the pattern pools every group's samples of a cell (weights ``n``, the samples per
    group), the factor every cell of a group. One group: ``variance`` unchanged.

    Examples
    --------
    >>> variance = np.array([[1.0, 3.0], [2.0, 6.0]])  # group 2 twice as variable
    >>> _separable(variance, n=np.array([5, 5])).tolist()
    [[1.0, 3.0], [2.0, 6.0]]
    >>> _separable(np.array([[1.0, 4.0], [3.0, 0.0]]), n=np.array([1, 1])).tolist()
    [[2.5, 2.5], [1.5, 1.5]]
    """
    flat = variance.reshape(len(variance), -1)
    pattern = (n[:, None] * flat).sum(axis=0) / max(n.sum(), 1)
    factor = flat.mean(axis=1) / max(pattern.mean(), 1e-30)
    return (factor[:, None] * pattern).reshape(variance.shape)


def _least_squares_kernel(
    growth: np.ndarray, y: np.ndarray, neighbours: np.ndarray, ridge: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per fine cell, the ridge least-squares fit ``y ~ s + sum_k w_k growth[neighbour_k]``.

    The linear part of the decoder in closed form, where gradient descent on the
    interpolation weights would take hundreds of epochs to get there. Samples where a
    cell has no data are left out of that cell's fit.

    Returns
    -------
    structure, kernel : np.ndarray
        ``(n_fine,)`` intercepts and ``(n_fine, k)`` weights, float32.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> growth = rng.normal(size=(200, 3))
    >>> y = 1.0 + 0.25 * growth[:, [0]] + 0.75 * growth[:, [2]]
    >>> s, w = _least_squares_kernel(growth, y, np.array([[0, 2]]), ridge=0.0)
    >>> np.round(s, 4).tolist(), np.round(w, 4).tolist()
    ([1.0], [[0.25, 0.75]])
    """
    n, k = len(growth), neighbours.shape[1]
    design = np.concatenate([np.ones((n, len(neighbours), 1)), growth[:, neighbours]], axis=2)
    valid = np.isfinite(y)
    design = design * valid[:, :, None]
    gram = np.einsum("nfi,nfj->fij", design, design) + ridge * n * np.eye(k + 1)
    gram[:, 0, 0] -= ridge * n  # the intercept is not shrunk
    moment = np.einsum("nfi,nf->fi", design, np.where(valid, y, 0.0))
    beta = np.linalg.solve(gram, moment[..., None])[..., 0]
    return beta[:, 0].astype(np.float32), beta[:, 1:].astype(np.float32)
