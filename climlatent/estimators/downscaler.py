"""ProxyDownscaler: fine fields from coarse physical drivers through physics proxies.

The xarray face of :class:`climlatent.models.downscaler.ProxyDownscaler` (seed 000,
Section 4.4). ``fit(coarse, fine, target, proxies={"tos": "exponential", "rsds":
"quadratic"})`` learns the proxy functions' parameters and the fine-scale structure;
``downscale(coarse)`` returns the target on the fine grid with every sample dim
(member, time, ...) of ``coarse`` carried through. Drivers are converted to the
units their proxy function expects (sea surface temperature in K becomes degC for
the exponential growth law); units that cannot be converted are refused. With no
proxies, the target is downscaled from its own coarse field (additive form, in the fine
field's units), learned in units of its spread: chlorophyll in kg m-3 and in mg m-3
give the same field. ``group="time.month"`` (or ``"time.season"``,
``"time.dayofyear:31"``, see :mod:`climlatent.grouping`) makes the fit seasonal, as
xsdba's ``group=``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import torch
import xarray as xr

from climlatent.batching import FieldLayout, in_sample_order, map_model, to_matrix
from climlatent.checks import (
    check_field,
    check_no_inf,
    check_same_samples,
    check_sample_dims,
    get_variable,
)
from climlatent.draws import BlockNormals, Draws
from climlatent.errors import InputDataError
from climlatent.estimators._drivers import (
    anomaly_scale,
    check_alike,
    check_positive_terms,
    proxy_laws,
)
from climlatent.estimators._torch import inference, load_numpy_state, loading_device, state_to_numpy
from climlatent.estimators._train import seed_global, train_module
from climlatent.estimators.base import ArraySpec, BaseEstimator
from climlatent.fitted_range import RANGE_TOLERANCE, FittedRange
from climlatent.grid import find_grid
from climlatent.grid_order import GridOrder, grid_layout
from climlatent.grouping import Grouper, group_mean, new_sample_variance
from climlatent.interpolation_kernel import interpolation_kernel
from climlatent.models.downscaler import ProxyDownscaler as ProxyDownscalerModule
from climlatent.models.downscaler import saved_state
from climlatent.models.proxies import PROXY_KINDS, make_proxy, term_floors
from climlatent.precision import amp_context
from climlatent.training import resolve_device
from climlatent.units import convert_units, parse_units

#: What a multiplicative model's deterministic output is, in its ``comment`` attribute.
MEDIAN_NOTE = (
    "conditional median of the log-normal downscaling model; the conditional mean is "
    "exp(sigma**2 / 2) times larger"
)


@dataclasses.dataclass
class ProxyDownscaler(BaseEstimator):
    """Downscale a field from coarse drivers through learnable physics proxies.

    Parameters
    ----------
    mode : {"auto", "multiplicative", "additive"}
        ``"auto"``: multiplicative (growth laws multiply, log-space loss) when proxies
        are given, additive (gain and offset per fine cell, learned in units of the
        target's anomaly sd: the same field whatever its units) when the target is
        downscaled from itself.
    noise : bool
        Learn a per-cell residual spread, enabling ``downscale(..., n_samples=k)``.
    interpolation : {"auto", "bilinear", "learned"}
        Keep the bilinear coarse-to-fine weights fixed, or learn a local kernel over
        the 9 nearest coarse cells (initialised bilinear). ``"auto"``: learned in the
        additive form, bilinear in the multiplicative form (where fixed weights keep the
        growth-law parameters identifiable).
    group : str or Grouper
        Seasonality, as xsdba's ``group=``: ``"time"`` (one fit for the whole year),
        ``"time.month"``, ``"time.season"`` (DJF, MAM, JJA, SON) or ``"time.dayofyear"``, with a
        centred window of time steps as ``Grouper("time.dayofyear", window=31)`` or
        ``"time.dayofyear:31"`` (see :mod:`climlatent.grouping`; kept as that string). The physics
        (proxy laws, interpolation kernel) is shared; the fine-scale structure ``s(x)`` (with the
        additive form's per-cell gain and, with ``noise``, the residual spread) is one per group,
        and each sample is downscaled with its date's group. The model has the groups its training
        record holds (``groups_``), each with at least 2 time steps; it downscales dated data of
        those groups only.
    epochs, batch_size, lr, validation_fraction, early_stopping_patience, seed, device, progress
        Passed to :class:`climlatent.training.TrainingConfig`.
    random_streams : {1, 2}
        The training's random streams (`climlatent.random_streams`); 1: those before version 2.
    range_tolerance : float
        Drivers beyond their training range by more than this many widths of it are refused.

    Examples
    --------
    >>> import climlatent as cl
    >>> world = cl.datasets.synthetic_biogeochem(n_years=2, n_fine_lat=16, n_fine_lon=16)
    >>> est = cl.ProxyDownscaler(epochs=2).fit(world.coarse, world.fine, "chl",
    ...     proxies={"tos": "exponential", "rsds": "quadratic"})
    >>> est.downscale(world.coarse)["chl"].shape == world.fine["chl"].shape
    True

    A seasonal fit: one fine-scale structure per month.

    >>> monthly = cl.ProxyDownscaler(group="time.month", epochs=2).fit(
    ...     world.coarse, world.fine, "chl", proxies={"tos": "exponential"})
    >>> monthly.groups_.values.tolist()
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    """

    mode: str = "auto"
    noise: bool = False
    interpolation: str = "auto"
    group: str | Grouper = "time"
    epochs: int = 300
    batch_size: int = 64
    lr: float = 1e-2
    validation_fraction: float = 0.1
    early_stopping_patience: int | None = None
    seed: int = 0
    random_streams: int = 2
    device: str = "auto"
    progress: bool = True
    range_tolerance: float = RANGE_TOLERANCE

    def __post_init__(self) -> None:
        self.group = str(Grouper.parse(self.group))  # a JSON-able configuration
        super().__post_init__()
        if self.interpolation not in ("auto", "bilinear", "learned"):
            raise ValueError(
                f"interpolation must be 'auto', 'bilinear' or 'learned', got {self.interpolation!r}"
            )
        if self.mode not in ("auto", "multiplicative", "additive"):
            raise ValueError(
                f"mode must be 'auto', 'multiplicative' or 'additive', got {self.mode!r}"
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
    ) -> ProxyDownscaler:
        """Fit on coarse drivers and the fine target over the same samples.

        Parameters
        ----------
        coarse : xr.Dataset
            Coarse-grid drivers (and, without proxies, the coarse target itself).
        fine : xr.Dataset
            The fine-grid target, on the same time (and member) axis as ``coarse``.
        target : str
            Name of the fine field to produce.
        proxies : dict, optional
            Driver variable -> proxy function (``"exponential"``, ``"quadratic"``,
            ``"saturating"``, ``"linear"``, ``"identity"``). Default: the target's own
            coarse field (identity proxy).
        checkpoint : str or os.PathLike, optional
            Training checkpoint, rewritten after every epoch.
        resume : bool
            Continue from ``checkpoint`` when the file exists, else start afresh. The result
            equals that of an uninterrupted run; a larger ``epochs`` trains a finished run further.

        Returns
        -------
        ProxyDownscaler
            ``self``, fitted.

        Raises
        ------
        CheckpointError
            ``resume`` and the checkpoint is damaged or from another run: other data
            (values or shapes), options (``epochs``, ``device``, ``progress`` aside) or proxies;
            the message names the file and each difference.
        InputDataError
            Bad inputs, named; with a seasonal ``group``, a target without its time
            coordinate or with fewer than 2 time steps in a group.
        """
        y = get_variable(fine, target, "target")
        time, calendar = check_field(y, "target")
        parse_units(y, target)
        check_no_inf(y, "target")
        self.sample_dims_ = check_sample_dims(y, "target", find_grid(y).spatial_dims, None)
        laws = proxy_laws(proxies, target)
        mode = self.mode if self.mode != "auto" else ("multiplicative" if proxies else "additive")
        unknown = {
            n: law for n, law in laws.items() if isinstance(law, str) and law not in PROXY_KINDS
        }
        if unknown:  # make_proxy would not name the driver
            raise ValueError(f"proxies {unknown}: the law must be one of {sorted(PROXY_KINDS)}")
        modules = [make_proxy(law) for law in laws.values()]
        units = {}
        for name, module in zip(laws, modules, strict=True):
            x = get_variable(coarse, name, "proxy")
            check_field(x, "proxy")
            check_same_samples(y, x, time)
            check_sample_dims(x, "proxy", find_grid(x).spatial_dims, self.sample_dims_)
            parse_units(x, name)
            own = y if name == target else x  # the target's coarse field: in the fine's units
            units[name] = getattr(module, "expected_units", None) or own.attrs["units"]
        if mode == "multiplicative" and bool((y <= 0).any()):
            raise InputDataError(
                f"target {target!r} has values <= 0; the multiplicative form "
                f"needs a positive field (use mode='additive')"
            )
        self.target_, self.drivers_, self.laws_, self.mode_ = target, units, laws, mode
        self.target_attrs_, self.calendar_ = dict(y.attrs), calendar
        self.target_transform_ = None
        grouper = Grouper.parse(self.group)
        self.groups_ = grouper.fitted_groups(y, "target")
        drivers = [  # rows pair with the target's
            in_sample_order(GridOrder.of(x).canonical(x), self.sample_dims_)
            for x in self._drivers(coarse)
        ]
        for x in drivers[1:]:  # one coarse grid and the target's samples for all
            check_alike(drivers[0], x, "proxy")
        check_alike(y, drivers[0], "proxy", grid=False, single=True)
        self.driver_ranges_ = {
            x.name: FittedRange.fit(x, "proxy", self.range_tolerance) for x in drivers
        }
        self.target_order_ = grid_layout(y, target)
        y = GridOrder.of(y, target).canonical(y)
        self.coarse_layout_ = _common_layout(drivers)
        self.fine_layout_ = FieldLayout.from_data(y)
        y_mat = to_matrix(y, self.fine_layout_)
        memberships = grouper.row_weights(
            y, self.fine_layout_.sample_dims(y), "target", self.groups_
        )
        neighbours, weights = interpolation_kernel(self.coarse_layout_, self.fine_layout_)
        x_mat = self._driver_matrix([to_matrix(x, self.coarse_layout_) for x in drivers], modules)
        seed_global(self.seed, self.random_streams)
        self.module_ = self._build(
            torch.from_numpy(neighbours), torch.from_numpy(weights), modules, _floor(y_mat)
        )
        self.module_.term_floor.copy_(term_floors(modules, torch.from_numpy(x_mat)))
        self._initialise_structure(y_mat, x_mat, memberships)
        self.device_ = resolve_device(self.device)
        weight = np.isfinite(y_mat).astype(np.float32)
        filler = 1.0 if mode == "multiplicative" else 0.0
        tensors = (
            torch.from_numpy(np.where(weight > 0, y_mat, filler).astype(np.float32)),
            torch.from_numpy(weight),
            torch.from_numpy(x_mat),
            *(_compact(memberships) if grouper.seasonal else ()),
        )
        # sets history_, best_epoch_ and device_
        train_module(self, self.module_, tensors, checkpoint, resume, {"proxies": laws})
        self.module_.eval()
        unseen = torch.from_numpy(np.isnan(group_mean(y_mat, memberships)))  # no data in group
        self.module_.structure.data[unseen] = np.nan  # NaN out there, not the untrained filler
        self._driver_matrix([x_mat[:, k] for k in range(len(laws))])  # the trained laws
        self._after_training(coarse, y_mat, x_mat, memberships)
        return self

    def _after_training(
        self, coarse: xr.Dataset, y: np.ndarray, x: np.ndarray, memberships: np.ndarray
    ) -> None:
        """With ``noise``, widen the spread learned to a new sample's (`new_sample_variance`).

        ``y``, ``x``: the matrices trained on; ``memberships``: each sample's weight in each
        group; ``coarse``: the inputs. Unwidened, six years of one month drew 18 % narrow.
        """
        if self.noise:  # about s(x) fitted to a group's n samples: (n - 1) / n of the variance
            log_sigma, widening = self.module_.log_sigma, new_sample_variance(memberships)
            with torch.no_grad():
                log_sigma += torch.from_numpy(np.log(widening)[:, None] / 2).to(log_sigma)

    def _initialise_structure(self, y: np.ndarray, x: np.ndarray, memberships: np.ndarray) -> None:
        """Start ``s(x)`` (and sigma) at the per-cell misfit of the initial proxies (closed form).

        In the additive form the target is learned as ``(y - m) / q``, ``m`` its mean
        and ``q`` its anomaly sd (`anomaly_scale`) over the training samples, and the
        coarse latent is centred on its training mean and divided by ``q`` (by its own
        anomaly sd for a driver other than the target), so that the interpolation acts
        on anomalies and ``s(x)`` holds the mean state.
        ``memberships`` (``(n_samples, n_groups)``, one column of ones for a fit of the
        whole year): the mean is each group's, weighted by how often a sample enters it.
        """
        with torch.no_grad():
            module = self.module_
            if self.mode_ == "additive":
                module.target_centre.fill_(float(np.nanmean(y, dtype=np.float64)))
                module.target_scale.fill_(anomaly_scale(y))
                module.centre_latent(torch.from_numpy(x), own=list(self.laws_) == [self.target_])
            predictor = module.predictor(torch.from_numpy(x)).numpy()
            target = (
                np.log(np.maximum(y, module.floor))
                if self.mode_ == "multiplicative"
                else (y - float(module.target_centre)) / float(module.target_scale)
            )
            module.start_at(target - predictor, memberships)

    def _drivers(self, coarse: xr.Dataset, check_range: bool | None = None) -> list[xr.DataArray]:
        """The drivers in their law's units.

        On apply (``check_range`` given) they are checked against the fit and put in
        the fitted layout; their values are checked finite by `_driver_matrix`, block
        by block.
        """
        out = []
        for name, units in self.drivers_.items():
            x = get_variable(coarse, name, "proxy")
            if check_range is None:
                check_field(x, "proxy")
            else:
                x = self._check_new_field(x, "proxy", self.coarse_layout_, blocks_checked=True)
            x = convert_units(x, units, name)
            if check_range and self.driver_ranges_:
                x = self.driver_ranges_[name].check(x, "proxy", self.range_tolerance)
            if out and check_range is not None:  # on the fitted grid: the sample dims
                check_alike(out[0], x, "proxy", grid=False)
            out.append(x)
        return out

    def _driver_matrix(self, matrices: list[np.ndarray], proxies: list | None = None) -> np.ndarray:
        """Drivers ``(n, n_drivers, n_coarse)``; refused: NaN/inf, log terms <= 0 (`proxies`)."""
        for name, mat in zip(self.drivers_, matrices, strict=True):
            if not np.isfinite(mat).all():
                raise InputDataError(
                    f"proxy variable {name!r} has NaN/inf values in coarse "
                    f"cells that hold data in the training period"
                )
        x = np.stack(matrices, axis=1)
        if self.mode_ == "multiplicative":
            check_positive_terms(x, proxies or self.module_.proxies, self.laws_)
        return x

    def downscale(
        self,
        coarse: xr.Dataset,
        n_samples: int | None = None,
        seed: int = 0,
        check_range: bool = True,
        amp: bool = False,
    ) -> xr.Dataset:
        """The target on the fine grid from the drivers in ``coarse``.

        Parameters
        ----------
        coarse : xr.Dataset
            Drivers on the fitted coarse grid, with any sample dims (member, time...).
        n_samples : int, optional
            Stochastic realisations (needs ``noise=True``), stacked along
            ``realization``; lazy for dask-backed ``coarse``, block by block.
        seed : int
            Seed of the stochastic draws. A sample's noise comes from the seed, the
            realisation, its member's label and its date
            (`climlatent.draw_addresses`): the same noise eagerly or lazily, in any
            chunks, for members or periods downscaled apart or together; the first
            ``k`` realisations do not depend on how many are drawn. (A model
            with dense layers, `ProxyLatentDownscaler`, sums its products in blocks of
            the rows a call holds: its fields may differ by float32 round-off, a few
            1e-6 relative, from one chunking to another.)
        check_range : bool
            Refuse driver values beyond the fitted range by more than
            ``range_tolerance`` times its width (fill values, mislabelled units).
        amp : bool
            Run the model in CUDA's float16 autocast (automatic mixed precision): at
            tensor-core speed, within float16's precision of the float32 result;
            refused for a model not on CUDA, and for a block whose output float16
            overflows.

        Returns
        -------
        xr.Dataset
            The target with ``coarse``'s sample dims and coordinates on the fine grid
            (in the layout it had at ``fit``), CF attributes from training and a
            history line. A seasonal model downscales each sample with the structure
            of its date's group: NaN in a cell that had no data in that group at fit.
            In the multiplicative form the field is the conditional median, ``exp`` of
            the fitted log-space predictor, as its ``comment`` says: the conditional
            mean, which the draws of ``n_samples`` average to, is ``exp(sigma**2 / 2)``
            times larger (5 % at a log spread of 0.3; `ProxyLatentDownscaler` with
            ``noise`` gives the mean).

        Raises
        ------
        InputDataError
            Bad drivers, named; a seasonal model given drivers without their time
            coordinate, or of a group it has no training data for.
        """
        self._require_fitted("downscale")
        if n_samples is not None and not self.noise:
            raise ValueError("stochastic downscaling needs a model fitted with noise=True")
        precision = amp_context(self.device_, f"this {type(self).__name__}") if amp else None
        fields = self._input_fields(coarse, check_range)
        out = map_model(
            self,
            fields,
            self.coarse_layout_,
            self.fine_layout_,
            self._step_groups(fields[0]),
            None if n_samples is None else Draws(n_samples, seed),
            precision,
        )
        options = ("" if n_samples is None else f", n_samples={n_samples}, seed={seed}") + (
            ", amp=True" if amp else ""
        )
        result = self._wrap(out.rename(self.target_), coarse, f"downscale(coarse{options})")
        statistic = None if n_samples is not None else self._statistic()
        if statistic is not None:
            result[self.target_].attrs["comment"] = statistic
        return result

    def _statistic(self) -> str | None:
        """What the deterministic output is, when it is not the conditional mean."""
        return MEDIAN_NOTE if self.mode_ == "multiplicative" else None

    def input_variables(self) -> list[str]:
        """Names of the coarse variables `downscale` reads.

        Examples
        --------
        >>> import climlatent as cl
        >>> world = cl.datasets.synthetic_biogeochem(n_years=1, n_fine_lat=8, n_fine_lon=8)
        >>> cl.ProxyDownscaler(epochs=1).fit(world.coarse, world.fine, "chl",
        ...     proxies={"tos": "exponential"}).input_variables()
        ['tos']
        """
        self._require_fitted("input_variables")
        return list(self.drivers_)

    def _input_fields(self, coarse: xr.Dataset, check_range: bool) -> list[xr.DataArray]:
        """The module's input fields, checked and in the fitted layout (lazy for dask)."""
        return self._drivers(coarse, check_range)

    def _step_groups(self, field: xr.DataArray) -> xr.DataArray | None:
        """The group of each time step of ``field`` (None for a fit of the whole year)."""
        grouper = Grouper.parse(self.group)
        if not grouper.seasonal:
            return None
        time = grouper.time_of(field, "proxy")
        return xr.DataArray(grouper.index(time, self.groups_), dims=time.dims)

    def _row_inputs(self, matrices: list[np.ndarray], groups: np.ndarray) -> list[np.ndarray]:
        """The module's inputs for rows of the input fields: the drivers and the groups."""
        drivers = self._driver_matrix(matrices[: len(self.drivers_)])
        return [drivers, groups.astype(np.float32)]  # groups exact below 2**24

    def _predict_rows(self, matrices: list[np.ndarray], groups: np.ndarray) -> np.ndarray:
        """The fine target of the rows of one block of the input fields."""
        return inference(self.module_, *self._row_inputs(matrices, groups), device=self.device_)

    def _draw_rows(
        self, matrices: list[np.ndarray], groups: np.ndarray, normals: BlockNormals
    ) -> np.ndarray:
        """Realisations of the rows' fine target: the residual noise of their group.

        ``mean + sigma * eps``, or ``median * exp(sigma * eps)`` (a log-normal factor)
        for a multiplicative model, ``eps`` from ``normals``.
        """
        predicted = self._predict_rows(matrices, groups)
        sigma = self.module_.residual_spread().detach().cpu().numpy()[groups]
        multiplicative = self.mode_ == "multiplicative"
        draws = []
        for realization in range(normals.n):
            noise = sigma * normals(realization, 0, predicted.shape[1])
            draws.append(predicted * np.exp(noise) if multiplicative else predicted + noise)
        return np.stack(draws)

    def _model_inputs(self, fields: list[xr.DataArray]) -> list[np.ndarray]:
        """The module's inputs for whole input fields, each sample's group from its date."""
        sample_dims = self.coarse_layout_.sample_dims(fields[0])
        fields = [in_sample_order(x, sample_dims) for x in fields]  # rows pair
        grouper = Grouper.parse(self.group)
        groups = grouper.row_index(fields[0], sample_dims, "proxy", self.groups_)
        return self._row_inputs([to_matrix(x, self.coarse_layout_) for x in fields], groups)

    def proxy_parameters(self) -> xr.Dataset:
        """Fitted proxy-function parameters, one variable per parameter, with units.

        Examples
        --------
        >>> import climlatent as cl
        >>> world = cl.datasets.synthetic_biogeochem(n_years=1, n_fine_lat=8, n_fine_lon=8)
        >>> est = cl.ProxyDownscaler(epochs=1).fit(world.coarse, world.fine, "chl",
        ...     proxies={"tos": "exponential"})
        >>> est.proxy_parameters()["tos_b"].attrs["units"]
        'degC-1'
        """
        self._require_fitted("proxy_parameters")
        out = xr.Dataset()
        for name, module in zip(self.drivers_, self.module_.proxies, strict=True):
            table = module.parameters_table() if hasattr(module, "parameters_table") else {}
            for param, (value, units) in table.items():
                out[f"{name}_{param}"] = xr.DataArray(
                    value,
                    attrs={
                        "units": units,
                        "long_name": f"{param} of the {self.laws_[name]} proxy of {name}",
                    },
                )
        return out

    def _fitted_metadata(self) -> dict[str, Any]:
        return {
            "target": self.target_,
            "drivers": self.drivers_,
            "laws": self.laws_,
            "mode": self.mode_,
            "target_attrs": self.target_attrs_,
            "calendar": self.calendar_,
            "sample_dims": list(self.sample_dims_),
            "driver_ranges": {n: [r.minimum, r.maximum] for n, r in self.driver_ranges_.items()},
            "groups": self.groups_.values.tolist(),
        }

    def _fitted_datasets(self) -> dict[str, xr.Dataset]:
        return {
            "coarse_grid": self.coarse_layout_.to_dataset(),
            "fine_grid": self.fine_layout_.to_dataset(),
            "target_layout": self.target_order_,
        }

    def _restore(self, fitted: dict[str, Any], datasets: dict[str, xr.Dataset]) -> None:
        self.target_, self.drivers_, self.laws_ = (fitted[k] for k in ("target", "drivers", "laws"))
        self.mode_, self.target_attrs_ = fitted["mode"], fitted["target_attrs"]
        self.calendar_, self.target_transform_ = fitted["calendar"], None
        self.sample_dims_ = tuple(fitted.get("sample_dims", ()))  # absent from older models
        ranges = fitted.get("driver_ranges", {})
        self.driver_ranges_ = {n: FittedRange(n, *bounds) for n, bounds in ranges.items()}
        prop = Grouper.parse(self.group).prop
        self.groups_ = xr.DataArray(fitted.get("groups", [1]), dims=prop, name=prop)
        self.target_order_ = datasets.get("target_layout")
        self.coarse_layout_ = FieldLayout.from_dataset(datasets["coarse_grid"])
        self.fine_layout_ = FieldLayout.from_dataset(datasets["fine_grid"])

    def _state(self) -> dict[str, np.ndarray]:
        return state_to_numpy(self.module_)

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        neighbours = torch.from_numpy(np.array(state["module.neighbours"]))
        modules = [make_proxy(law) for law in self.laws_.values()]
        self.module_ = self._build(neighbours, torch.zeros(neighbours.shape), modules)
        load_numpy_state(self.module_, saved_state(state, self.module_))
        self.device_ = loading_device(self.device)
        self.module_.to(self.device_).eval()

    def _state_spec(self) -> dict[str, ArraySpec]:
        return {"module.neighbours": ((self.fine_layout_.n_features, None), "int64")}

    def _build(
        self, neighbours: torch.Tensor, weights: torch.Tensor, modules: list, floor: float = 1e-12
    ) -> ProxyDownscalerModule:
        return ProxyDownscalerModule(
            neighbours,
            weights,
            self.coarse_layout_.n_features,
            modules,
            self.mode_,
            torch.zeros(len(neighbours)),
            floor=floor,
            noise=self.noise,
            learn_interpolation=self._learns_interpolation(),
            n_groups=self.groups_.size,
        )

    def _learns_interpolation(self) -> bool:
        """Whether the coarse-to-fine weights train: ``interpolation``, resolved by the form."""
        return {"learned": True, "auto": self.mode_ == "additive"}.get(self.interpolation, False)


def _common_layout(drivers: list[xr.DataArray]) -> FieldLayout:
    """Coarse layout whose valid cells are finite in every sample of every driver."""
    spatial = find_grid(drivers[0], drivers[0].name).spatial_dims
    valid = xr.concat(
        [np.isfinite(x).all([d for d in x.dims if d not in spatial]) for x in drivers],
        dim="driver",
        coords="minimal",
        compat="override",
    ).all("driver")
    return FieldLayout.from_data(drivers[0], valid=valid)


def _compact(memberships: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n, n_groups)`` counts as the groups each row enters and how often, ``(n, k)``.

    ``k`` is the most groups a row enters; shorter rows are padded with count 0.
    """
    k = max(int((memberships > 0).sum(axis=1).max()), 1)
    groups = np.argsort(memberships <= 0, axis=1, kind="stable")[:, :k]
    counts = np.take_along_axis(memberships, groups, axis=1)
    return torch.from_numpy(groups), torch.from_numpy(counts.astype(np.float32))


def _floor(y: np.ndarray) -> float:
    """Smallest value taken into the log: a millionth of the mean positive target."""
    positive = y[np.isfinite(y) & (y > 0)]
    return float(positive.mean() * 1e-6) if positive.size else 1e-12
