"""`VED`: a variational encoder-decoder between gridded fields (:mod:`climlatent.models.ved`).

Input fields ``x`` (a Darcy log-permeability, coarse predictors) are mapped to output
fields ``y`` (the pressure, fine fields) through a latent code ``z`` of size
``latent_dim`` (Venkatasubramanian & Barajas-Solano 2024): ``q(z|x)`` from the
encoder, ``p(y|z)`` from the decoder, trained on the ELBO of ``log p(y|x)`` with a
``beta``-weighted KL and the covariance penalty ``lambda ||Cov_q(z)[z] - I||_F^2``
(``covariance_weight``).

An emulator, as every one of the package: ``fit(ds, target=..., proxy=...)`` then
``emulate(ds)``. Several proxy (input) variables on one 2-D grid are the channels of
the input image, several target (output) variables on one (possibly other) 2-D grid
those of the output image; every dimension before a field's last two is a sample
dimension, and inputs and outputs share them. Each variable is standardised with its
mean and standard deviation over the training set; outputs come back in the original
units and attributes.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr

from climlatent._deprecation import renamed_arguments, renamed_method
from climlatent.batching import in_sample_order
from climlatent.draw_addresses import block_rows, draw_order, row_keys
from climlatent.draws import (
    CONDITIONAL_DRAW,
    REALIZATION_DIM,
    BlockNormals,
    Draws,
    decoded_draws_comment,
    realizations,
)
from climlatent.errors import InputDataError
from climlatent.estimators._fields import (
    LATENT_DIM,
    check_field_ranges,
    field_moments,
    field_ranges,
    grid_coords,
    gridded_fields,
    latent_name,
    latent_rows,
    on_fitted_grid,
    stack_fields,
    standardise,
    variable_names,
)
from climlatent.estimators._torch import inference, load_numpy_state, loading_device, state_to_numpy
from climlatent.estimators._train import seed_global, train_module
from climlatent.estimators.base import ArraySpec, BaseEstimator
from climlatent.fitted_range import RANGE_TOLERANCE
from climlatent.io import add_history, carry_provenance, physical_attrs
from climlatent.models.dense_blocks import DenseDecoder, DenseEncoder
from climlatent.models.ved import (
    FieldConvEncoder,
    FieldMLPDecoder,
    FieldMLPEncoder,
    VariationalEncoderDecoder,
)
from climlatent.physical_bounds import clip_to_bounds

__all__ = ["VED"]

ARCHITECTURES = ("mlp", "conv", "dense")


@dataclasses.dataclass
class VED(BaseEstimator):
    """Variational encoder-decoder from input fields to output fields of a Dataset.

    Parameters
    ----------
    latent_dim : int
        Size ``r`` of the latent code.
    beta : float
        Weight of ``KL(q(z|x) || N(0, I))`` in the loss.
    covariance_weight : float
        ``lambda``, weight of the penalty ``||Cov_q(z)[z] - I||_F^2`` on the aggregate
        encoding distribution.
    architecture : {"mlp", "conv", "dense"}
        ``"mlp"``: fully connected encoder and decoder (``hidden``, ``hidden_layers``).
        ``"conv"``: the paper's, a convolutional encoder with residual blocks
        (:class:`~climlatent.models.ved.FieldConvEncoder`: ``n_scales`` stride-2 3x3
        convolutions of ``base_channels * 2**i`` channels, leaky ReLU, then
        ``residual_blocks`` residual blocks and a linear read-out) and the fully
        connected decoder of ``"mlp"``; the default of the Darcy reference studies
        (:mod:`climlatent.studies.ved_training_size`). ``"dense"``: the
        convolutional dense-block encoder and decoder of
        :mod:`climlatent.models.dense_blocks` (``n_scales``, ``base_channels``,
        ``layers``, ``growth``).
    hidden, hidden_layers : int
        Width and number of hidden layers of the fully connected decoder (``"mlp"``,
        ``"conv"``) and encoder (``"mlp"``).
    n_scales, base_channels : int
        Grid halvings and channels after the first convolution (``"conv"``,
        ``"dense"``).
    residual_blocks : int
        Residual blocks of the ``"conv"`` encoder.
    layers, growth : int
        The ``"dense"`` architecture: layers per dense block and channels each adds.
    epochs, batch_size, lr, weight_decay, lr_decay, lr_decay_steps, validation_fraction
        Training settings (`~climlatent.training.TrainingConfig`).
    early_stopping_patience, plateau_lr_drops, seed, device, progress, checkpoint_path
        Training settings (`~climlatent.training.TrainingConfig`): with a patience,
        each plateau of the validation loss divides the learning rate by 10 up to
        ``plateau_lr_drops`` times, and the next plateau stops training.
    random_streams : {1, 2}
        How the training's random streams derive from ``seed`` (`climlatent.random_streams`):
        2, independent streams; 1, the overlapping ones before version 2.
    range_tolerance : float
        New fields with values beyond their training range by more than this many
        widths of it are refused (`climlatent.fitted_range`).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(64, 6, 6))
    >>> ds = xr.Dataset({"k": (("sample", "y", "x"), a, {"units": "1"}),
    ...                  "p": (("sample", "y", "x"), 2 * a + 1, {"units": "m"})})
    >>> ved = VED(latent_dim=3, hidden=16, epochs=2, progress=False)
    >>> ved = ved.fit(ds, target="p", proxy="k")
    >>> ved.encode(ds).dims
    ('sample', 'latent')
    >>> ved.emulate(ds)["p"].attrs["units"], ved.emulate(ds)["p"].shape
    ('m', (64, 6, 6))
    >>> ved.sample(ds, n_samples=5)["p"].dims
    ('realization', 'sample', 'y', 'x')
    """

    latent_dim: int = 8
    beta: float = 1.0
    covariance_weight: float = 1.0
    architecture: str = "mlp"
    hidden: int = 256
    hidden_layers: int = 2
    n_scales: int = 3
    base_channels: int = 16
    residual_blocks: int = 1
    layers: int = 3
    growth: int = 8
    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_decay: float | None = None
    lr_decay_steps: int | None = None
    validation_fraction: float = 0.0
    early_stopping_patience: int | None = None
    plateau_lr_drops: int = 0
    seed: int = 0
    random_streams: int = 2
    device: str = "auto"
    progress: bool = True
    range_tolerance: float = RANGE_TOLERANCE
    checkpoint_path: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}"
            )

    def fit(
        self,
        ds: xr.Dataset,
        *deprecated_order: str | Sequence[str],
        target: str | Sequence[str] | None = None,
        proxy: str | Sequence[str] | None = None,
        checkpoint: str | os.PathLike | None = None,
        resume: bool = False,
        **deprecated_names: str | Sequence[str],
    ) -> VED:
        """Train to emulate the fields ``target`` of ``ds`` from its fields ``proxy``.

        Parameters
        ----------
        ds : xr.Dataset
            Proxy and target fields; a field's last two dims are its grid, the others
            sample dims shared by every field.
        target : str or sequence of str
            The output variables (one channel each, on one grid). Keyword only.
        proxy : str or sequence of str
            The input variables (one channel each, on one grid). Keyword only.
        checkpoint : str or os.PathLike, optional
            Training checkpoint, rewritten after every epoch; the ``checkpoint_path``
            option by default.
        resume : bool
            Continue from ``checkpoint`` when the file exists, else start afresh. The
            result equals that of an uninterrupted run; a larger ``epochs`` trains a
            finished run further.
        *deprecated_order, **deprecated_names
            The spelling of the previous release, ``fit(ds, inputs, outputs)``: the
            proxy first. Positional names keep that meaning (never read as target,
            proxy) and, like the keywords ``inputs=`` and ``outputs=``, warn with a
            `~climlatent.errors.ClimlatentDeprecationWarning` naming the call to write.

        Returns
        -------
        VED
            ``self``, fitted.

        Raises
        ------
        InputDataError
            A variable is missing, lacks a grid or sample dims, its dims differ from the
            others of its role, inputs and outputs have different samples, a field
            holds NaN or infinite values, or a variable is constant.
        CheckpointError
            ``resume`` and the checkpoint is damaged or from another run: other data
            (values or shapes) or options (``epochs``, ``device``, ``progress`` aside); the
            message names the file and each difference.
        TypeError
            ``target`` or ``proxy`` missing, or given twice (also in the old spelling).
        """
        names = renamed_arguments(
            "VED.fit",
            {"target": target, "proxy": proxy},
            deprecated_names,
            {"inputs": "proxy", "outputs": "target"},
            deprecated_order,
            required=("target", "proxy"),
            stacklevel=3,  # the caller of fit, beyond its all_or_nothing wrapper
        )
        names_in, names_out = variable_names(names["proxy"]), variable_names(names["target"])
        for attribute in ("target_", "module_"):  # refitting starts afresh
            self.__dict__.pop(attribute, None)
        fields_in = gridded_fields(ds, names_in, "input")
        sample_dims = fields_in[0].dims[:-2]
        fields_out = [  # rows pair with the inputs'
            in_sample_order(da, sample_dims) for da in gridded_fields(ds, names_out, "output")
        ]
        shape_in = {d: fields_in[0].sizes[d] for d in sample_dims}
        shape_out = {d: fields_out[0].sizes[d] for d in fields_out[0].dims[:-2]}
        if shape_in != shape_out:
            raise InputDataError(
                f"input {names_in[0]!r} has samples {shape_in} but output {names_out[0]!r} "
                f"has {shape_out}: they must share their sample dims"
            )
        x_raw, y_raw = stack_fields(fields_in), stack_fields(fields_out)
        self.x_mean_, self.x_std_ = field_moments(x_raw, names_in)
        self.ranges_ = field_ranges(fields_in, "input", self.range_tolerance)
        self.y_mean_, self.y_std_ = field_moments(y_raw, names_out)
        self.inputs_, self.outputs_ = names_in, names_out
        self.sample_dims_ = sample_dims
        self.input_dims_, self.output_dims_ = fields_in[0].dims[-2:], fields_out[0].dims[-2:]
        self.input_size_ = list(fields_in[0].shape[-2:])
        self.output_size_ = list(fields_out[0].shape[-2:])
        self.attrs_ = {name: dict(ds[name].attrs) for name in names_out}
        self.input_attrs_ = {name: dict(ds[name].attrs) for name in names_in}
        self.input_grid_ = grid_coords(ds, self.input_dims_)
        self.output_grid_ = grid_coords(ds, self.output_dims_)
        x = torch.from_numpy(standardise(x_raw, self.x_mean_, self.x_std_))
        y = torch.from_numpy(standardise(y_raw, self.y_mean_, self.y_std_))
        seed_global(self.seed, self.random_streams)  # the initial weights
        self.module_ = self._build()
        # sets history_, best_epoch_ and device_
        train_module(self, self.module_, (x, y), checkpoint, resume)
        self.module_.eval()
        self.target_ = names_out[0]
        return self

    def posterior(
        self, ds: xr.Dataset, check_range: bool = True
    ) -> tuple[xr.DataArray, xr.DataArray]:
        """Mean and standard deviation of ``q(z|x)`` for the input fields of ``ds``.

        Parameters
        ----------
        ds : xr.Dataset
            Holds the proxy variables, as for `emulate`.
        check_range : bool
            Refuse proxy values beyond their training range, as `emulate` does.

        Returns
        -------
        mean, std : xr.DataArray
            Dims: the sample dims of the inputs, then ``latent``.
        """
        self._require_fitted("posterior")
        x, sample, shape, coords = self._inputs(ds, check_range)
        out = inference(lambda t: torch.cat(self.module_.posterior(t), -1), x, device=self.device_)
        mean, log_var = np.split(out, 2, axis=-1)
        labels = np.arange(self.latent_dim)
        coords = {**coords, LATENT_DIM: (LATENT_DIM, labels, {"long_name": "latent dimension"})}

        def wrap(values: np.ndarray, what: str) -> xr.DataArray:
            return xr.DataArray(
                values.reshape(shape + (self.latent_dim,)),
                dims=sample + (LATENT_DIM,),
                coords=coords,
                name=f"latent_{what}",
                attrs={"long_name": f"posterior {what} of the VED latent", "units": "1"},
            )

        return wrap(mean, "mean"), wrap(np.exp(0.5 * log_var), "std")

    def encode(self, ds: xr.Dataset, check_range: bool = True) -> xr.DataArray:
        """Posterior means of the latent code of the input fields of ``ds`` (`posterior`).

        Named by `~climlatent.estimators._fields.latent_name` after the inputs.
        """
        self._require_fitted("encode")
        return self.posterior(ds, check_range)[0].rename(latent_name(self.inputs_))

    def decode(self, z: xr.DataArray) -> xr.Dataset:
        """Output fields decoded from latent vectors ``z`` (last dim ``latent``)."""
        self._require_fitted("decode")
        rows, sample, shape, coords = latent_rows(z, self.latent_dim)
        fields = inference(self.module_.decode, rows, device=self.device_)
        return self._to_dataset(fields, sample, shape, coords, xr.Dataset(), "decode(z)")

    def emulate(self, ds: xr.Dataset, check_range: bool = True) -> xr.Dataset:
        """Point emulation of the target: the decoded posterior mean of ``q(z|x)``.

        Parameters
        ----------
        ds : xr.Dataset
            Holds the proxy variables on their fitted grid, with any sample dims: a
            latitude x longitude grid may hold its cells in another order, another grid
            needs the fitted coordinates; units are converted to the fitted ones.
        check_range : bool
            Refuse proxy values beyond their training range by more than
            ``range_tolerance`` times its width (fill values, mislabelled units).

        Returns
        -------
        xr.Dataset
            The target variables with the proxies' sample coordinates, the target's
            grid coordinates and attributes, ``ds``'s global attributes and a
            history line.

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> a = np.random.default_rng(0).normal(size=(32, 4, 4))
        >>> ds = xr.Dataset({"k": (("sample", "y", "x"), a, {"units": "1"}),
        ...                  "p": (("sample", "y", "x"), 3 * a, {"units": "m"})})
        >>> ved = VED(latent_dim=2, hidden=8, epochs=1, progress=False)
        >>> ved.fit(ds, target="p", proxy="k").emulate(ds)["p"].dims
        ('sample', 'y', 'x')
        """
        self._require_fitted("emulate")
        x, sample, shape, coords = self._inputs(ds, check_range)
        fields = inference(self.module_.predict, x, device=self.device_)
        return self._to_dataset(fields, sample, shape, coords, ds, "emulate(ds)")

    predict = renamed_method("predict", "emulate")

    def sample(
        self,
        ds: xr.Dataset,
        n_samples: int | None = None,
        seed: int = 0,
        noise: bool = False,
        check_range: bool = True,
        **old: Any,
    ) -> xr.Dataset:
        """``n_samples`` predictive draws of the target for each sample of ``ds``.

        Each draw decodes ``z ~ q(z|x)`` to the decoder's mean; with ``noise`` the
        decoder's output noise ``N(0, sigma^2)`` is added, as each variable's
        ``comment`` says. The draws stack along a new first dim
        ``realization`` (as the downscalers' ``downscale(coarse, n_samples=k)``);
        ``n=`` is the old spelling of ``n_samples`` (deprecated).

        A sample's draws come from its address (its member's label and its date,
        `climlatent.draw_addresses`) and ``seed``, as the downscalers' draws do: the
        same whether it is drawn alone or with others, in any order, and the first
        ``k`` realisations of ``n_samples > k`` are those of ``n_samples=k`` (to float
        round-off). ``check_range`` refuses proxy values beyond their training range, as
        in `emulate`.
        """
        n_samples = renamed_arguments(
            "VED.sample", {"n_samples": n_samples}, old, {"n": "n_samples"},
            required=("n_samples",),
        )["n_samples"]  # fmt: skip
        self._require_fitted("sample")
        x, sample, shape, coords = self._inputs(ds, check_range)
        normals = self._normals(ds, sample, shape, Draws(n_samples, seed))
        n_outputs = len(self.outputs_) * int(np.prod(self.output_size_))
        draws = [
            inference(
                self.module_.sample,
                x,
                normals(realization, 0, self.latent_dim),
                *((normals(realization, 1, n_outputs),) if noise else ()),
                device=self.device_,
            )
            for realization in range(n_samples)
        ]
        fields = np.concatenate(draws, axis=0)
        call = f"sample(ds, n_samples={n_samples}, seed={seed}, noise={noise})"
        dims, sizes = (REALIZATION_DIM, *sample), (n_samples, *shape)
        coords = {REALIZATION_DIM: realizations(n_samples, CONDITIONAL_DRAW), **coords}
        out = self._to_dataset(fields, dims, sizes, coords, ds, call)
        for name in self.outputs_:
            out[name].attrs["comment"] = decoded_draws_comment(CONDITIONAL_DRAW, noise)
        return out

    # -- internals -------------------------------------------------------------------

    def _normals(self, ds: xr.Dataset, sample: tuple, shape: tuple, draws: Draws) -> BlockNormals:
        """The standard normals of ``ds``'s samples, drawn by their addresses."""
        first = ds[self.inputs_[0]]
        samples = first.isel(dict.fromkeys(self.input_dims_, 0), drop=True).transpose(*sample)
        draw_order(samples, sample)  # refuses a sample dim named as the draws'
        return BlockNormals(draws, block_rows(row_keys(samples), shape, (0,) * len(shape)))

    def _build(self) -> VariationalEncoderDecoder:
        c_in, c_out = len(self.inputs_), len(self.outputs_)
        size_in, size_out = tuple(self.input_size_), tuple(self.output_size_)
        r = self.latent_dim
        width = {"hidden": self.hidden, "layers": self.hidden_layers}
        if self.architecture == "mlp":
            encoder = FieldMLPEncoder((c_in, *size_in), 2 * r, **width)
            decoder = FieldMLPDecoder(r, (c_out, *size_out), **width)
        elif self.architecture == "conv":
            filters = [self.base_channels * 2**i for i in range(self.n_scales)]
            encoder = FieldConvEncoder((c_in, *size_in), 2 * r, filters, self.residual_blocks)
            decoder = FieldMLPDecoder(r, (c_out, *size_out), **width)
        else:
            options = {"layers": self.layers, "growth": self.growth, "n_scales": self.n_scales}
            encoder = DenseEncoder(
                c_in, size_in, 2 * r, base_channels=self.base_channels, **options
            )
            decoder = DenseDecoder(
                r, c_out, size_out, base_channels=2 * self.base_channels, **options
            )
        return VariationalEncoderDecoder(
            encoder, decoder, r, c_out, beta=self.beta, covariance_weight=self.covariance_weight
        )

    def _inputs(
        self, ds: xr.Dataset, check_range: bool = True
    ) -> tuple[np.ndarray, tuple, tuple, dict]:
        """Standardised inputs, sample dims, their sizes and coords of a new Dataset."""
        fields = gridded_fields(ds, self.inputs_, "input")
        grid = {d: fields[0].sizes[d] for d in fields[0].dims[-2:]}
        fitted = dict(zip(self.input_dims_, self.input_size_, strict=True))
        if grid != fitted:  # the same dims and sizes, in any order
            raise InputDataError(
                f"input {self.inputs_[0]!r} is on grid {grid}, the model on {fitted}"
            )
        # on the fitted grid, in the fitted units (None: saved before they were recorded)
        attrs = self.input_attrs_ or {}
        fields = [
            on_fitted_grid(da, self.input_grid_, self.input_dims_, attrs.get(str(da.name)))
            for da in fields
        ]
        if check_range:
            check_field_ranges(fields, self.ranges_, "input", self.range_tolerance)
        sample = fields[0].dims[:-2]
        coords = {d: fields[0][d] for d in sample if d in fields[0].coords}
        shape = tuple(fields[0].sizes[d] for d in sample)
        return standardise(stack_fields(fields), self.x_mean_, self.x_std_), sample, shape, coords

    def _to_dataset(
        self, fields: np.ndarray, sample: tuple, shape: tuple, coords: dict,
        source: xr.Dataset, call: str,
    ) -> xr.Dataset:  # fmt: skip
        fields = fields * self.y_std_.reshape(1, -1, 1, 1) + self.y_mean_.reshape(1, -1, 1, 1)
        dims = tuple(sample) + tuple(self.output_dims_)
        data = {
            name: clip_to_bounds(xr.DataArray(
                fields[:, i].reshape(shape + fields.shape[2:]).astype(np.float32), dims=dims,
                attrs=physical_attrs(self.attrs_[name])))
            for i, name in enumerate(self.outputs_)
        }  # fmt: skip
        out = carry_provenance(
            xr.Dataset(data, coords={**coords, **self.output_grid_.coords}), source
        )
        return add_history(out, f"VED({self._config_text()}).{call}")

    # -- persistence -------------------------------------------------------------------

    def _fitted_metadata(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs_,
            "outputs": self.outputs_,
            "attrs": self.attrs_,
            "input_attrs": self.input_attrs_,
            "sample_dims": list(self.sample_dims_),
            "input_dims": list(self.input_dims_),
            "output_dims": list(self.output_dims_),
            "input_size": self.input_size_,
            "output_size": self.output_size_,
            "ranges": self.ranges_,
        }

    def _fitted_datasets(self) -> dict[str, xr.Dataset]:
        return {"input_grid": self.input_grid_, "output_grid": self.output_grid_}

    def _restore(self, fitted: dict[str, Any], datasets: dict[str, xr.Dataset]) -> None:
        self.inputs_, self.outputs_ = fitted["inputs"], fitted["outputs"]
        self.attrs_ = fitted["attrs"]
        self.input_attrs_ = fitted.get("input_attrs")  # absent from older models: no units
        self.sample_dims_ = tuple(fitted["sample_dims"])
        self.input_dims_ = tuple(fitted["input_dims"])
        self.output_dims_ = tuple(fitted["output_dims"])
        self.input_size_ = list(fitted["input_size"])
        self.output_size_ = list(fitted["output_size"])
        self.input_grid_, self.output_grid_ = datasets["input_grid"], datasets["output_grid"]
        self.ranges_ = fitted.get("ranges", {})  # absent from older models: no check
        self.target_ = self.outputs_[0]

    def _state(self) -> dict[str, np.ndarray]:
        moments = {"x_mean": self.x_mean_, "x_std": self.x_std_}
        return {**state_to_numpy(self.module_), **moments, "y_mean": self.y_mean_,
                "y_std": self.y_std_}  # fmt: skip

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        self.x_mean_, self.x_std_ = state["x_mean"], state["x_std"]
        self.y_mean_, self.y_std_ = state["y_mean"], state["y_std"]
        self.module_ = self._build()
        load_numpy_state(self.module_, state)
        self.device_ = loading_device(self.device)
        self.module_.to(self.device_).eval()

    def _state_spec(self) -> dict[str, ArraySpec]:
        x, y = ((len(self.inputs_),), "float64"), ((len(self.outputs_),), "float64")
        return {"x_mean": x, "x_std": x, "y_mean": y, "y_std": y}
