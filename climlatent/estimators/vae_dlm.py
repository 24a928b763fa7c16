"""`VAEDLM`: the xarray face of the VAE-DLM of :mod:`climlatent.models.vae_dlm`.

A variable ``u(sample..., time, space)`` holds trajectories of a 1-D field: its last
dim is space, the one before is time (with increasing numeric coordinates), and every
dim before those is a sample dim. The model encodes the field at the first time (the
initial state) into local coordinates ``u`` of the latent manifold and decodes the
field at any time. ``reconstruct`` and ``emulate`` therefore return whole
trajectories from initial states, which is how the seed evaluates (the L1 error at
t = 0, 0.25, 0.5, 0.75, 1): an emulator of the PDE's evolution, ``fit(ds, target="u")``
then ``emulate(ds, times)``; ``sample(n_samples)`` decodes draws of the prior into new
trajectories. Time is rescaled so that the training span is [0, 1]; the field is
standardised with its training mean and standard deviation. The seed's other two
models are options: ``flow=False`` is its extended VAE (the same architecture without
the geometric terms), ``flow=False, manifold=False`` its traditional VAE; and
``steady=False`` its ablation without the flow's steady term.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr

from climlatent._deprecation import renamed_arguments, renamed_method
from climlatent.checks import get_variable
from climlatent.draws import (
    PRIOR_DRAW,
    REALIZATION_DIM,
    Draws,
    decoded_draws_comment,
    realizations,
    standard_normal_rows,
)
from climlatent.errors import InputDataError
from climlatent.estimators._dlm_times import (
    in_model_time_units,
    requested_times,
    time_attrs,
    time_values,
)
from climlatent.estimators._fields import (
    LATENT_DIM,
    check_field_ranges,
    field_ranges,
    latent_array,
    latent_order,
    on_fitted_grid,
)
from climlatent.estimators._torch import (
    inference,
    load_numpy_state,
    loading_device,
    set_torch_threads,
    state_to_numpy,
)
from climlatent.estimators._train import seed_global, train_module
from climlatent.estimators.base import ArraySpec, BaseEstimator
from climlatent.fitted_range import RANGE_TOLERANCE
from climlatent.io import add_history, carry_provenance, physical_attrs
from climlatent.models.vae_dlm import GeometricFlowVAE, induced_metric
from climlatent.physical_bounds import clip_to_bounds

__all__ = ["VAEDLM", "set_torch_threads"]

Times = Sequence[float] | np.ndarray


@dataclasses.dataclass
class VAEDLM(BaseEstimator):
    """VAE with a latent manifold under a learned linear geometric flow (VAE-DLM).

    Parameters
    ----------
    intrinsic_dim, extrinsic_dim : int
        Sizes of the local coordinates (the latent returned by `encode`) and of the
        manifold points.
    hidden, geometry_hidden : int
        Widths of the encoder/decoder MLPs and of the chart/metric/generator MLPs.
    flow : bool
        Train the geometric-flow and metric terms; False gives the seed's extended VAE
        (the same architecture without them).
    manifold : bool
        Decode through the latent manifold's chart; False (with ``flow=False``) gives
        the seed's traditional VAE, whose decoder reads the local coordinates and time.
    steady : bool
        Keep the flow's steady term ``flow_alpha (g - Sigma)``; False is the seed's
        ablation without it.
    alpha, beta : float
        Weights of the reconstruction and KL terms.
    flow_alpha : float
        Relaxation rate of the flow towards the sphere metric.
    gamma_geo, gamma_metric : float
        Weights of the physics-informed flow residual and of the metric matching.
    times_per_sample : int
        Times drawn per trajectory and batch.
    epochs, batch_size, lr, lr_decay, lr_decay_steps, grad_clip, validation_fraction
        Training settings (`~climlatent.training.TrainingConfig`).
    early_stopping_patience : int, optional
        Stop once the validation loss has not improved for this many epochs (needs
        ``validation_fraction > 0``) and keep the best epoch's weights; ``best_epoch_``
        and ``len(history_)`` record where it stopped. None trains all ``epochs``.
    seed, random_streams, device, progress, checkpoint_path
        Idem (`climlatent.random_streams`); ``device="auto"`` trains on CUDA when present.
    range_tolerance : float
        New fields with values beyond their training range by more than this many
        widths of it are refused (`climlatent.fitted_range`).

    Examples
    --------
    >>> from climlatent.reference.burgers import generate
    >>> ds = generate(16, nx=32, nt=4, seed=0)
    >>> model = VAEDLM(intrinsic_dim=2, extrinsic_dim=4, hidden=16, geometry_hidden=8,
    ...                epochs=2, progress=False).fit(ds, target="u")
    >>> model.encode(ds).dims
    ('sample', 'latent')
    >>> model.reconstruct(ds)["u"].dims
    ('sample', 't', 'x')
    >>> model.emulate(ds, [0.0, 0.5])["u"].shape
    (16, 2, 32)
    """

    intrinsic_dim: int = 4
    extrinsic_dim: int = 16
    hidden: int = 128
    geometry_hidden: int = 64
    flow: bool = True
    manifold: bool = True
    steady: bool = True
    alpha: float = 1.0
    beta: float = 1.0
    flow_alpha: float = 1.0
    gamma_geo: float = 1.0
    gamma_metric: float = 1.0
    times_per_sample: int = 4
    epochs: int = 300
    batch_size: int = 64
    lr: float = 2e-3
    lr_decay: float | None = 0.5
    lr_decay_steps: int | None = 1000
    grad_clip: float | None = None
    validation_fraction: float = 0.0
    early_stopping_patience: int | None = None
    seed: int = 0
    random_streams: int = 2
    device: str = "auto"
    progress: bool = True
    checkpoint_path: str | None = None
    range_tolerance: float = RANGE_TOLERANCE

    # -- the public xarray face ----------------------------------------------------------

    def fit(
        self,
        ds: xr.Dataset,
        target: str | None = None,
        *,
        checkpoint: str | os.PathLike | None = None,
        resume: bool = False,
        **deprecated_names: str,
    ) -> VAEDLM:
        """Train on the trajectories ``ds[target]`` (dims: sample..., time, space).

        Parameters
        ----------
        ds : xr.Dataset
            Holds the variable, with a numeric, increasing time coordinate.
        target : str
            Name of the field; ``"u"`` by default.
        checkpoint : str or os.PathLike, optional
            Training checkpoint, rewritten after every epoch; the ``checkpoint_path``
            option by default.
        resume : bool
            Continue from ``checkpoint`` when the file exists, else start afresh. The
            result equals that of an uninterrupted run; a larger ``epochs`` trains a
            finished run further.
        **deprecated_names
            ``variable=``, the previous release's name of ``target``: warns with a
            `~climlatent.errors.ClimlatentDeprecationWarning`.

        Returns
        -------
        VAEDLM
            ``self``, fitted.

        Raises
        ------
        InputDataError
            The variable is missing, has fewer than three dims, no usable time
            coordinate, NaN or infinite values, or is constant.
        CheckpointError
            ``resume`` and the checkpoint is damaged or from another run: other data
            (values or shapes) or options (``epochs``, ``device``, ``progress`` aside); the
            message names the file and each difference.
        """
        target = renamed_arguments(  # warns the caller of fit, beyond its wrapper
            "VAEDLM.fit", {"target": target}, deprecated_names, {"variable": "target"}, stacklevel=3
        )["target"]
        variable = "u" if target is None else target
        self.__dict__.pop("target_", None)  # refitting starts afresh
        da = self._field(ds, variable)
        times = time_values(da, need_two=not self.is_fitted)
        values = self._values(da)
        self.variable_ = variable
        self.dims_ = tuple(str(d) for d in da.dims)
        self.n_space_ = int(da.shape[-1])
        self.attrs_ = dict(da.attrs)
        self.time_attrs_ = dict(da[self.dims_[-2]].attrs)
        self.t0_ = float(times[0])
        self.span_ = float(times[-1] - times[0])
        self.times_ = times
        self.grid_ = xr.Dataset(coords={self.dims_[-1]: da[self.dims_[-1]]})
        self.ranges_ = field_ranges([da], "field", self.range_tolerance)
        self.mean_ = np.asarray(values.mean(), np.float64)
        self.std_ = np.asarray(values.std(), np.float64)
        if not self.std_ > 0:
            raise InputDataError(f"variable {variable!r} is constant: nothing to learn")
        x = self._standardise(values)
        tau = np.broadcast_to(self._scaled(times), x.shape[:2]).astype(np.float32)
        with torch.random.fork_rng(devices=[]):  # initial weights from ``seed`` alone
            seed_global(self.seed, self.random_streams)
            self.module_ = self._build()
        tensors = [torch.from_numpy(x), torch.from_numpy(tau.copy())]
        # sets history_, best_epoch_ and device_
        train_module(self, self.module_, tensors, checkpoint, resume)
        self.module_.eval()
        self.target_ = variable
        return self

    def encode(self, ds: xr.Dataset, check_range: bool = True) -> xr.DataArray:
        """Posterior means of the local coordinates of the initial fields of ``ds``.

        Dims: the sample dims, then ``latent`` (length ``intrinsic_dim``);
        ``check_range`` refuses values beyond the training range, as `emulate` does.
        """
        self._require_fitted("encode")
        da = self._checked(ds, check_range)
        u = inference(self.module_.encode, self._initial(da), device=self.device_)
        long_name = "posterior mean of the VAE-DLM local coordinates"
        return latent_array(u, da, tuple(da.dims[:-2]), [self.variable_], long_name)

    def decode(self, u: xr.DataArray, times: Times) -> xr.Dataset:
        """Fields at ``times`` decoded from local coordinates ``u`` (last dim ``latent``).

        Returns
        -------
        xr.Dataset
            The variable with dims ``u``'s sample dims + time + space.
        """
        self._require_fitted("decode")
        if u.dims[-1] != LATENT_DIM or u.sizes[LATENT_DIM] != self.intrinsic_dim:
            raise InputDataError(
                f"latents need a last dim {LATENT_DIM!r} of length {self.intrinsic_dim}, "
                f"got {dict(u.sizes)}"
            )
        times = requested_times(times)
        u = latent_order(u, self.intrinsic_dim)
        flat = np.asarray(u.values, np.float32).reshape(-1, self.intrinsic_dim)
        sample = tuple(u.dims[:-1])
        coords = {d: u[d] for d in sample if d in u.coords}
        fields = self._run(flat, times, encode=False)
        return self._to_dataset(fields, sample, u.shape[:-1], coords, times, "decode(u)")

    def emulate(
        self,
        ds: xr.Dataset,
        times: Times | None = None,
        check_range: bool = True,
    ) -> xr.Dataset:
        """Trajectories at ``times`` from the initial fields of ``ds``.

        Parameters
        ----------
        ds : xr.Dataset
            Holds the variable; only its first time (the initial state, which must be
            the first training time) is used.
        times : array-like, optional
            Times in the units of ``ds``'s time coordinate (converted to the fitted
            ones); those of ``ds`` by default. Times outside the training span are
            extrapolations.
        check_range : bool
            Refuse fields with values beyond their training range by more than
            ``range_tolerance`` times its width (fill values, mislabelled units).

        Returns
        -------
        xr.Dataset
            The variable at ``times``, with ``ds``'s sample coordinates and global
            attributes, the variable's attributes from training and a history line.

        Examples
        --------
        >>> from climlatent.reference.burgers import generate
        >>> ds = generate(8, nx=16, nt=3, seed=0)
        >>> model = VAEDLM(intrinsic_dim=2, extrinsic_dim=3, hidden=8, geometry_hidden=4,
        ...                epochs=1, progress=False).fit(ds, target="u")
        >>> model.emulate(ds, times=[0.0, 0.25, 0.5])["u"].sizes["t"]
        3
        """
        self._require_fitted("emulate")
        da = self._checked(ds, check_range)
        time_dim = self.dims_[-2]
        times = da[time_dim].values if times is None else requested_times(times)
        fitted_times = in_model_time_units(da, self.dims_[-2], self.time_attrs_, times)
        fields = self._run(self._initial(da), fitted_times, encode=True)
        sample = tuple(da.dims[:-2])
        coords = {d: da[d] for d in sample if d in da.coords}
        shape = tuple(da.sizes[d] for d in sample)
        units = da[time_dim].attrs.get("units")
        out = self._to_dataset(fields, sample, shape, coords, times, "emulate(ds)", units)
        return carry_provenance(out, ds)

    predict = renamed_method("predict", "emulate")

    def reconstruct(self, ds: xr.Dataset) -> xr.Dataset:
        """Trajectories at the times of ``ds`` decoded from its initial fields."""
        self._require_fitted("reconstruct")
        out = self.emulate(ds)
        da = ds[self.variable_]
        out = out.assign_coords({d: da[d] for d in da.dims if d in da.coords})
        history = out.attrs["history"].rsplit("emulate(ds)", 1)[0] + "reconstruct(ds)"
        return out.assign_attrs(history=history)

    def sample(
        self,
        n: int | None = None,
        seed: int = 0,
        times: Times | None = None,
        noise: bool = False,
        **old: int,
    ) -> xr.Dataset:
        """Trajectories decoded from ``n`` draws of the prior ``u ~ N(0, I)``.

        The seed's generative use: local coordinates drawn from the prior are mapped to
        the (time-evolving) latent manifold and decoded to the decoder's mean.

        Parameters
        ----------
        n : int
            Number of trajectories, stacked along ``realization``.
        seed : int
            Seed of the draws; the same seed gives the same trajectories.
        times : array-like, optional
            Times in the units of the training time coordinate; the training times by
            default (required for models saved before they recorded them).
        noise : bool
            Add the decoder's output noise ``N(0, sigma^2)`` (one learned ``sigma``,
            independent across times and points; draw ``i``'s from ``seed`` and ``i``
            alone), as the variable's ``comment`` says.
        **old
            ``n_samples=``, the previous name of ``n`` (deprecated: warns).

        Returns
        -------
        xr.Dataset
            The variable on ``realization`` (``0 .. n - 1``), time and space dims.

        Examples
        --------
        >>> from climlatent.reference.burgers import generate
        >>> ds = generate(8, nx=16, nt=3, seed=0)
        >>> model = VAEDLM(intrinsic_dim=2, extrinsic_dim=3, hidden=8, geometry_hidden=4,
        ...                epochs=1, progress=False).fit(ds, target="u")
        >>> model.sample(5, seed=1)["u"].dims
        ('realization', 't', 'x')
        """
        n = renamed_arguments(
            "VAEDLM.sample", {"n": n}, old, {"n_samples": "n"}, required=("n",), first=None
        )["n"]
        self._require_fitted("sample")
        Draws(n, seed)  # a positive int (True is no count) and a seed numpy takes
        if times is None and self.times_ is None:  # saved before times were recorded
            raise InputDataError("this model did not record its training times: pass times=")
        times = self.times_ if times is None else requested_times(times)
        rng = np.random.default_rng(seed)
        u = rng.standard_normal((n, self.intrinsic_dim)).astype(np.float32)
        fields = self._run(u, times, encode=False)
        if noise:
            sigma = float(self.std_) * float((0.5 * self.module_.output_log_var).exp())
            normals = standard_normal_rows(seed, 0, 0, n, fields[0].size, stream=1)
            fields = fields + sigma * normals.reshape(fields.shape)
        coords = {REALIZATION_DIM: realizations(n, PRIOR_DRAW)}
        call = f"sample({n}, seed={seed}, noise={noise})"
        out = self._to_dataset(fields, (REALIZATION_DIM,), (n,), coords, times, call)
        out[self.variable_].attrs["comment"] = decoded_draws_comment(PRIOR_DRAW, noise)
        return out

    def latent_metric(
        self, ds: xr.Dataset, times: Times | None = None, check_range: bool = True
    ) -> xr.Dataset:
        """Riemannian metrics of the latent manifold at the encodings of ``ds``.

        At the posterior means ``u`` of the initial fields and at each time: ``J^T J``,
        induced by the chart (``J`` its Jacobian in ``u``), and with ``flow`` the flow's
        learned metric ``g(u, t)`` (near-zero diagonals: a degenerate manifold).

        Parameters
        ----------
        ds : xr.Dataset
            Holds the variable; only its initial fields are used.
        times : array-like, optional
            Times in the units of ``ds``'s time coordinate (converted to the fitted
            ones); those of ``ds`` by default.
        check_range : bool
            Refuse values beyond the training range, as `emulate` does.

        Returns
        -------
        xr.Dataset
            ``induced`` and (with ``flow``) ``learned``, dims: the sample dims, time,
            ``latent_i``, ``latent_j``.

        Raises
        ------
        ValueError
            The model has no latent manifold (``manifold=False``).

        Examples
        --------
        >>> from climlatent.reference.burgers import generate
        >>> ds = generate(8, nx=16, nt=3, seed=0)
        >>> model = VAEDLM(intrinsic_dim=2, extrinsic_dim=3, hidden=8, geometry_hidden=4,
        ...                epochs=1, progress=False).fit(ds, target="u")
        >>> metric = model.latent_metric(ds, times=[0.0, 1.0])
        >>> sorted(metric.data_vars), metric["learned"].dims
        (['induced', 'learned'], ('sample', 't', 'latent_i', 'latent_j'))
        """
        self._require_fitted("latent_metric")
        if not self.manifold:
            raise ValueError("the traditional VAE (manifold=False) has no latent manifold")
        da = self._checked(ds, check_range)
        time_dim, d = self.dims_[-2], self.intrinsic_dim
        times = da[time_dim].values if times is None else requested_times(times)
        fitted_times = in_model_time_units(da, self.dims_[-2], self.time_attrs_, times)
        tau, module = torch.from_numpy(self._scaled(fitted_times)).to(self.device_), self.module_

        def metrics(rows: torch.Tensor) -> torch.Tensor:
            u, t = module.encode(rows).repeat_interleave(len(tau), dim=0), tau.repeat(len(rows))
            parts = [induced_metric(module.manifold_point, u, t)]
            parts += [module.metric(u, t)] if self.flow else []
            return torch.stack(parts, dim=1).view(len(rows), len(tau), len(parts), d, d)

        values = inference(metrics, self._initial(da), device=self.device_)
        sample = tuple(da.dims[:-2])
        values = values.reshape(tuple(da.sizes[dim] for dim in sample) + values.shape[1:])
        dims = sample + (time_dim, "latent_i", "latent_j")
        names = {"induced": "metric J^T J induced by the chart", "learned": "learned metric g"}
        data = {
            name: (dims, values[..., k, :, :], {"long_name": names[name], "units": "1"})
            for k, name in enumerate(("induced", "learned")[: values.shape[-3]])
        }
        attrs = time_attrs(self.time_attrs_, da[time_dim].attrs.get("units"))
        time = xr.DataArray(np.asarray(times), dims=time_dim, attrs=attrs)
        coords = {dim: da[dim] for dim in sample if dim in da.coords}
        coords |= {time_dim: time, "latent_i": np.arange(d), "latent_j": np.arange(d)}
        return xr.Dataset(data, coords=coords)

    # -- internals -----------------------------------------------------------------------

    def _build(self) -> GeometricFlowVAE:
        names = list(inspect.signature(GeometricFlowVAE).parameters)[1:]  # after n_space
        return GeometricFlowVAE(self.n_space_, **{name: getattr(self, name) for name in names})

    def _field(self, ds: xr.Dataset, name: str) -> xr.DataArray:
        da = get_variable(ds, name, "field")
        if da.ndim < 3:
            raise InputDataError(
                f"variable {name!r} needs sample dim(s), a time dim and a space dim, "
                f"got dims {da.dims}"
            )
        if int(da.shape[-1]) < 1 or int(da.shape[-2]) < 1 or da.size == 0:
            raise InputDataError(f"variable {name!r} is empty: {dict(da.sizes)}")
        return da

    def _checked(self, ds: xr.Dataset, check_range: bool = True) -> xr.DataArray:
        """The fitted variable of ``ds``, checked against what the model was fitted on."""
        da = self._field(ds, self.variable_)
        if tuple(da.dims[-2:]) != self.dims_[-2:] or da.shape[-1] != self.n_space_:
            raise InputDataError(
                f"variable {self.variable_!r} has dims {dict(da.sizes)}, the model was "
                f"fitted on time dim {self.dims_[-2]!r} and space dim {self.dims_[-1]!r} "
                f"of length {self.n_space_}"
            )
        da = on_fitted_grid(da, self.grid_, self.dims_[-1:], self.attrs_)  # space, units
        times = in_model_time_units(
            da, self.dims_[-2], self.time_attrs_, time_values(da, need_two=not self.is_fitted)
        )
        if not np.isclose(times[0], self.t0_, rtol=0, atol=1e-9 * max(1.0, abs(self.span_))):
            units = self.time_attrs_.get("units")
            raise InputDataError(
                f"variable {self.variable_!r} starts at {self.dims_[-2]}={times[0]:g}; the "
                f"model encodes initial states at {self.dims_[-2]}={self.t0_:g}"
                + (f" (in the fitted units {units!r})" if units is not None else "")
            )
        self._values(da)  # NaN check
        if check_range:
            check_field_ranges([da], self.ranges_, "field", self.range_tolerance)
        return da

    @staticmethod
    def _values(da: xr.DataArray) -> np.ndarray:
        """``(n, n_times, n_space)`` float32, refusing NaN/inf with the variable named."""
        values = np.asarray(da.values, dtype=np.float32).reshape(-1, *da.shape[-2:])
        n_bad = int((~np.isfinite(values)).sum())
        if n_bad:
            raise InputDataError(f"variable {da.name!r} has {n_bad} NaN/inf value(s)")
        return values

    def _initial(self, da: xr.DataArray) -> np.ndarray:
        return self._standardise(self._values(da)[:, 0])

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean_) / self.std_).astype(np.float32)

    def _scaled(self, times: np.ndarray) -> np.ndarray:
        return ((np.asarray(times, np.float64) - self.t0_) / self.span_).astype(np.float32)

    def _run(self, x: np.ndarray, times: np.ndarray, encode: bool) -> np.ndarray:
        """Decode rows ``x`` (initial fields, or local coordinates) at every time."""
        tau = torch.from_numpy(self._scaled(times)).to(self.device_)
        module = self.module_

        def trajectories(rows: torch.Tensor) -> torch.Tensor:
            u = module.encode(rows) if encode else rows
            n, m = len(u), len(tau)
            fields = module.decode(u.repeat_interleave(m, dim=0), tau.repeat(n))
            return fields.view(n, m, -1)

        batch = max(1, 2**16 // max(1, len(times)))
        fields = inference(trajectories, x, device=self.device_, batch_size=batch)
        return fields.astype(np.float64) * self.std_ + self.mean_

    def _to_dataset(
        self,
        fields: np.ndarray,
        sample: tuple,
        shape: tuple,
        coords: dict,
        times: np.ndarray,
        call: str,
        time_units: Any = None,
    ) -> xr.Dataset:
        time_dim, space_dim = self.dims_[-2:]
        dims = tuple(sample) + (time_dim, space_dim)
        values = fields.reshape(tuple(shape) + fields.shape[1:]).astype(np.float32)
        time = xr.DataArray(
            np.asarray(times), dims=time_dim, attrs=time_attrs(self.time_attrs_, time_units)
        )
        field = clip_to_bounds(xr.DataArray(values, dims=dims, attrs=physical_attrs(self.attrs_)))
        out = xr.Dataset(
            {self.variable_: field},
            coords={**coords, time_dim: time, **self.grid_.coords},
        )
        return add_history(out, f"VAEDLM({self._config_text()}).{call}")

    # -- persistence -----------------------------------------------------------------------

    def _fitted_metadata(self) -> dict[str, Any]:
        return {
            "variable": self.variable_,
            "dims": list(self.dims_),
            "n_space": self.n_space_,
            "attrs": self.attrs_,
            "time_attrs": self.time_attrs_,
            "t0": self.t0_,
            "span": self.span_,
            "times": self.times_.tolist(),
            "ranges": self.ranges_,
        }

    def _fitted_datasets(self) -> dict[str, xr.Dataset]:
        return {"grid": self.grid_}

    def _restore(self, fitted: dict[str, Any], datasets: dict[str, xr.Dataset]) -> None:
        self.variable_ = self.target_ = fitted["variable"]
        self.dims_ = tuple(fitted["dims"])
        self.n_space_ = int(fitted["n_space"])
        self.attrs_, self.time_attrs_ = fitted["attrs"], fitted["time_attrs"]
        self.t0_, self.span_ = float(fitted["t0"]), float(fitted["span"])
        self.times_ = np.asarray(fitted["times"]) if "times" in fitted else None  # None: older
        self.grid_ = datasets["grid"]
        self.ranges_ = fitted.get("ranges", {})  # absent from older models: no check

    def _state(self) -> dict[str, np.ndarray]:
        return {**state_to_numpy(self.module_), "mean": self.mean_, "std": self.std_}

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        self.mean_, self.std_ = np.asarray(state["mean"]), np.asarray(state["std"])
        self.module_ = self._build()
        load_numpy_state(self.module_, state)
        self.device_ = loading_device(self.device)
        self.module_.to(self.device_).eval()

    def _state_spec(self) -> dict[str, ArraySpec]:
        return {"mean": ((), "float64"), "std": ((), "float64")}
