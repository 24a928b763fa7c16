"""`VAE`: a Gaussian VAE on gridded fields, the xarray face of :mod:`climlatent.models.vae`.

Several variables on one 2-D grid (pressure and velocities of a Darcy flow, or
climate fields on latitude x longitude) become the channels of one image per
sample. Every dimension other than the grid's two (its last two) is a sample
dimension. Each variable is standardised with its mean and standard deviation over
the training set; outputs are returned in the original units.

The DenseVAE architecture (dense blocks, no dense layers), the hierarchical prior,
the beta schedule against over-regularisation and the semi-supervised labels of
Jacobsen & Duraisamy (2022) are options of one estimator.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr

from climlatent._deprecation import renamed_arguments
from climlatent.checks import get_variable
from climlatent.draws import PRIOR_DRAW, REALIZATION_DIM, decoded_draws_comment, realizations
from climlatent.errors import InputDataError
from climlatent.estimators._fields import (
    check_field_ranges,
    field_moments,
    field_ranges,
    grid_coords,
    gridded_fields,
    latent_array,
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
from climlatent.models.vae import GaussianVAE
from climlatent.physical_bounds import clip_to_bounds
from climlatent.random_streams import stream_seed
from climlatent.schedules import BetaSchedule
from climlatent.training import TrainingConfig, validation_split

__all__ = ["VAE"]


@dataclasses.dataclass
class VAE(BaseEstimator):
    """Gaussian VAE (DenseVAE architecture) on the variables of a gridded Dataset.

    Parameters
    ----------
    latent_dim : int
        Size of the latent vector.
    prior : {"standard", "hierarchical"}
        ``N(0, I)``, or the learned hierarchical prior (VAE+HP).
    n_scales, base_channels, layers, growth : int
        DenseVAE architecture: grid halvings, channels after the first convolution,
        layers per dense block and channels each layer adds.
    beta_0, warmup_epochs, ramp_epochs, beta_final, lr_drop_epoch, lr_factor
        The `~climlatent.schedules.BetaSchedule`; the defaults train the plain ELBO.
    supervision_weight : float
        Weight of the semi-supervised term when ``fit`` gets labels (1 in Eq. 28).
    epochs, batch_size, lr, validation_fraction, seed, device, progress, checkpoint_path
        Training settings (`~climlatent.training.TrainingConfig`).
    random_streams : {1, 2}
        How the training's random streams derive from ``seed`` (`climlatent.random_streams`):
        2, independent streams; 1, the overlapping ones before version 2.
    early_stopping_patience, plateau_lr_drops : int, optional, and int
        Train to convergence: once the beta ramp is over (the loss is the ELBO from
        then on), a validation loss that has not improved for
        ``early_stopping_patience`` epochs drops the learning rate by ``lr_factor``,
        up to ``plateau_lr_drops`` times, and the next plateau stops training at the
        best epoch; ``epochs`` is then a cap. Needs ``validation_fraction > 0``.
    range_tolerance : float
        New fields with values beyond their training range by more than this many
        widths of it are refused (`climlatent.fitted_range`).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> ds = xr.Dataset({"p": (("sample", "y", "x"), rng.normal(size=(32, 17, 17)),
    ...                        {"units": "1"})})
    >>> vae = VAE(latent_dim=2, n_scales=2, epochs=2, progress=False).fit(ds, "p")
    >>> vae.encode(ds).dims
    ('sample', 'latent')
    >>> vae.reconstruct(ds)["p"].shape
    (32, 17, 17)
    """

    latent_dim: int = 2
    prior: str = "standard"
    n_scales: int = 3
    base_channels: int = 16
    layers: int = 3
    growth: int = 8
    beta_0: float = 1.0
    warmup_epochs: int = 0
    ramp_epochs: int = 0
    beta_final: float = 1.0
    lr_drop_epoch: int | None = None
    lr_factor: float = 0.1
    supervision_weight: float = 1.0
    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    validation_fraction: float = 0.0
    early_stopping_patience: int | None = None
    plateau_lr_drops: int = 0
    seed: int = 0
    random_streams: int = 2
    device: str = "auto"
    progress: bool = True
    range_tolerance: float = RANGE_TOLERANCE
    checkpoint_path: str | None = None

    def schedule(self) -> BetaSchedule:
        """The beta and learning-rate schedule of this configuration."""
        return BetaSchedule(
            self.beta_0,
            self.warmup_epochs,
            self.ramp_epochs,
            self.beta_final,
            self.lr_drop_epoch,
            self.lr_factor,
        )

    def _training_config(self, **overrides: Any) -> TrainingConfig:
        return super()._training_config(
            early_stopping_start=self.warmup_epochs + self.ramp_epochs,
            plateau_lr_factor=self.lr_factor,
            **overrides,
        )

    def fit(
        self,
        ds: xr.Dataset,
        target: str | Sequence[str] | None = None,
        labels: str | None = None,
        labelled: Any = None,
        *,
        checkpoint: str | os.PathLike | None = None,
        resume: bool = False,
        **deprecated_names: str | Sequence[str],
    ) -> VAE:
        """Train on the fields ``target`` of ``ds``: the variables the model generates.

        Parameters
        ----------
        ds : xr.Dataset
            Fields sharing their dims; the last two are the grid.
        target : str or sequence of str
            The variables, one channel each.
        labels : str, optional
            Variable of ``ds`` with the sample dims and one more dim of length
            ``latent_dim``: known generative parameters, pulled on by the
            semi-supervised term (Eq. 28 of the seed) for the labelled samples.
        labelled : array-like of bool, optional
            Which samples have labels (over the sample dims, flattened in order);
            all of them by default. The label term of a batch is then an unbiased
            estimate of its mean over the labelled samples of the training set, and
            the validation loss holds its mean over those of the validation set.
        checkpoint : str or os.PathLike, optional
            Training checkpoint, rewritten after every epoch; the ``checkpoint_path``
            option by default.
        resume : bool
            Continue from ``checkpoint`` when the file exists, else start afresh. The
            result equals that of an uninterrupted run; a larger ``epochs`` trains a
            finished run further.
        **deprecated_names
            ``variables=``, the previous release's name of ``target``: warns with a
            `~climlatent.errors.ClimlatentDeprecationWarning`.

        Returns
        -------
        VAE
            ``self``, fitted.

        Raises
        ------
        InputDataError
            A variable is missing, the variables' dims differ, a field holds NaN or
            infinite values, a variable is constant, or the labels do not fit.
        CheckpointError
            ``resume`` and the checkpoint is damaged or from another run: other data
            (values or shapes) or options (``epochs``, ``device``, ``progress`` aside); the
            message names the file and each difference.
        TypeError
            ``target`` missing, or given twice (also as ``variables=``).
        """
        x = self._prepare(ds, self._target(target, deprecated_names))
        tensors = [torch.from_numpy(x)]
        if labels is not None:
            tensors += self._labels(ds, labels, labelled, len(x))
        return self._train(tensors, checkpoint, resume)

    def _target(
        self, target: str | Sequence[str] | None, deprecated_names: dict[str, Any]
    ) -> str | Sequence[str]:
        """The ``target`` of a `fit` call that may name it ``variables=`` (deprecated)."""
        return renamed_arguments(
            f"{type(self).__name__}.fit",
            {"target": target},
            deprecated_names,
            {"variables": "target"},
            required=("target",),
            stacklevel=4,  # the caller of fit, beyond its all_or_nothing wrapper
        )["target"]

    def _prepare(self, ds: xr.Dataset, variables: str | Sequence[str]) -> np.ndarray:
        """Check the training fields, fit the standardisation; the standardised images."""
        names = variable_names(variables)
        for attribute in ("target_", "module_"):  # refitting starts afresh
            self.__dict__.pop(attribute, None)
        fields = self._fields(ds, names)
        self.grid_size_ = list(fields[0].shape[-2:])
        self.spatial_dims_ = fields[0].dims[-2:]
        self.sample_dims_ = fields[0].dims[:-2]
        if not self.sample_dims_:
            raise InputDataError(f"variable {names[0]!r} has no sample dimension besides its grid")
        raw = stack_fields(fields)
        self.mean_, self.std_ = field_moments(raw, names)
        self.ranges_ = field_ranges(fields, "field", self.range_tolerance)
        self.variables_ = names
        self.attrs_ = {name: dict(ds[name].attrs) for name in names}
        self.grid_ = grid_coords(ds, self.spatial_dims_)
        self.target_ = names[0]
        return standardise(raw, self.mean_, self.std_)

    def _train(
        self, tensors: list[torch.Tensor], checkpoint: str | os.PathLike | None, resume: bool
    ) -> VAE:
        """Build the module from the seed and train it on ``tensors`` (see `fit`)."""
        seed_global(self.seed, self.random_streams)  # the initial weights
        self.module_ = self._build()
        # sets history_, best_epoch_ and device_
        train_module(self, self.module_, tensors, checkpoint, resume)
        self.module_.eval()
        return self

    def encode(self, ds: xr.Dataset) -> xr.DataArray:
        """Posterior means of the fields of ``ds``: dims = sample dims + ``latent``.

        The fields may lay out a latitude x longitude grid in any order and come in
        units convertible to the fitted ones; another grid is refused (on a grid
        without latitude and longitude, the fitted coordinates are required).
        """
        self._require_fitted("encode")
        fields = self._fields(ds, self.variables_)
        x = standardise(stack_fields(fields), self.mean_, self.std_)
        z = inference(self.module_.encode, x, device=self.device_)
        long_name = "posterior mean of the VAE latent"
        return latent_array(z, fields[0], fields[0].dims[:-2], self.variables_, long_name)

    def decode(self, z: xr.DataArray) -> xr.Dataset:
        """Fields decoded from latent vectors ``z`` (last dim ``latent``)."""
        self._require_fitted("decode")
        rows, sample, shape, coords = latent_rows(z, self.latent_dim)
        fields = inference(self.module_.decode, rows, device=self.device_)
        return self._to_dataset(fields, sample, shape, coords, "decode")

    def reconstruct(self, ds: xr.Dataset) -> xr.Dataset:
        """Decode the posterior means of the fields of ``ds``."""
        self._require_fitted("reconstruct")
        return carry_provenance(self.decode(self.encode(ds)), ds)

    def sample(self, n: int, seed: int = 0, noise: bool = False) -> xr.Dataset:
        """``n`` fields generated from latent draws of the prior (dim ``realization``).

        Each draw decodes ``z ~ p(z)`` to the decoder's mean; with ``noise`` the
        decoder's output noise ``N(0, sigma^2)`` is added (as in `VED.sample`), as each
        variable's ``comment`` says. Draw ``i`` comes from ``seed`` and ``i`` alone
        (`climlatent.models.priors.prior_draws`): the first ``k`` of ``sample(n, seed)``
        are ``sample(k, seed)``, to float round-off.
        """
        self._require_fitted("sample")
        with torch.inference_mode():
            fields = self.module_.sample(n, seed, noise).float().cpu().numpy()
        return self._prior_draws(fields, f"sample({n}, seed={seed}, noise={noise})", noise)

    # -- internals -------------------------------------------------------------------

    def _networks(self) -> tuple[DenseEncoder, DenseDecoder]:
        """The DenseVAE encoder (to mean and log-variance) and decoder of this config."""
        size = tuple(int(n) for n in self.grid_size_)
        options = {"layers": self.layers, "growth": self.growth, "n_scales": self.n_scales}
        channels = len(self.variables_)
        encoder = DenseEncoder(
            channels, size, 2 * self.latent_dim, base_channels=self.base_channels, **options
        )
        decoder = DenseDecoder(
            self.latent_dim, channels, size, base_channels=2 * self.base_channels, **options
        )
        return encoder, decoder

    def _build(self) -> GaussianVAE:
        return GaussianVAE(
            *self._networks(),
            self.latent_dim,
            len(self.variables_),
            prior=self.prior,
            schedule=self.schedule(),
            supervision_weight=self.supervision_weight,
        )

    def _fields(self, ds: xr.Dataset, names: list[str]) -> list[xr.DataArray]:
        """The fields ``names`` of ``ds``; once fitted, checked and put on the fitted grid.

        New fields may lay out a latitude x longitude grid in any order and come in any
        units convertible to the fitted ones; they are reordered and converted before
        their range is checked (in the fitted units).
        """
        fields = gridded_fields(ds, names, "field")
        if self.is_fitted:
            grid = {d: fields[0].sizes[d] for d in fields[0].dims[-2:]}
            fitted = dict(zip(self.spatial_dims_, self.grid_size_, strict=True))
            if grid != fitted:  # the same dims and sizes, in any order
                raise InputDataError(f"fields are on grid {grid}, the model on {fitted}")
            fields = [
                on_fitted_grid(da, self.grid_, self.spatial_dims_, self.attrs_.get(str(da.name)))
                for da in fields
            ]
            check_field_ranges(fields, self.ranges_, "field", self.range_tolerance)
        return fields

    def _labels(self, ds: xr.Dataset, name: str, labelled: Any, n: int) -> list[torch.Tensor]:
        theta = get_variable(ds, name, "labels")
        extra = [d for d in theta.dims if d not in self.sample_dims_]
        if len(extra) != 1 or theta.sizes[extra[0]] != self.latent_dim:
            raise InputDataError(
                f"labels {name!r} need the sample dims and one dim of length "
                f"{self.latent_dim} (latent_dim), got {dict(theta.sizes)}"
            )
        values = theta.transpose(*self.sample_dims_, extra[0]).values.reshape(n, -1)
        flags = np.ones(n, bool) if labelled is None else np.asarray(labelled, bool).reshape(-1)
        if flags.shape != (n,):
            raise InputDataError(f"labelled has {flags.size} flags for {n} samples")
        if not np.isfinite(values[flags]).all():
            raise InputDataError(f"labels {name!r} hold NaN/inf values on labelled samples")
        if not flags.any():
            raise InputDataError(f"labelled marks none of the {n} samples with labels {name!r}")
        values = np.where(flags[:, None], values, 0.0).astype(np.float32)
        # the inverse labelled share of the training set and of the validation set, as fit
        # splits them: of all samples, it would weigh the term by the training set's share
        config = self._training_config()
        generator = torch.Generator().manual_seed(
            stream_seed(config.seed, config.random_streams, "validation")
        )
        split = validation_split(n, config.validation_fraction, generator)
        train, valid = (part.numpy() for part in split)
        if not flags[train].any():
            raise InputDataError(
                f"labelled: all {flags.sum()} labelled samples fall in the validation set "
                f"(validation_fraction={config.validation_fraction}, seed={config.seed})"
            )
        weights = np.zeros(n, np.float32)
        for part in (train, valid):
            if flags[part].any():
                weights[part] = flags[part] / flags[part].mean()
        return [torch.from_numpy(values), torch.from_numpy(weights)]

    def _to_dataset(
        self, fields: np.ndarray, sample: tuple, shape: tuple, coords: dict, call: str
    ) -> xr.Dataset:
        fields = fields * self.std_.reshape(1, -1, 1, 1) + self.mean_.reshape(1, -1, 1, 1)
        dims = tuple(sample) + tuple(self.spatial_dims_)
        data = {
            name: clip_to_bounds(xr.DataArray(
                fields[:, i].reshape(shape + fields.shape[2:]).astype(np.float32), dims=dims,
                attrs=physical_attrs(self.attrs_[name])))
            for i, name in enumerate(self.variables_)
        }  # fmt: skip
        out = xr.Dataset(data, coords={**coords, **self.grid_.coords})
        config = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return add_history(out, f"VAE({config}).{call}")

    def _prior_draws(self, fields: np.ndarray, call: str, noise: bool = False) -> xr.Dataset:
        """Standardised fields decoded from prior draws (``noise``: with output noise)."""
        n = len(fields)
        draws = {REALIZATION_DIM: realizations(n, PRIOR_DRAW)}
        out = self._to_dataset(fields, (REALIZATION_DIM,), (n,), draws, call)
        for name in self.variables_:
            out[name].attrs["comment"] = decoded_draws_comment(PRIOR_DRAW, noise)
        return out

    # -- persistence -------------------------------------------------------------------

    def _fitted_metadata(self) -> dict[str, Any]:
        return {
            "variables": self.variables_,
            "attrs": self.attrs_,
            "spatial_dims": list(self.spatial_dims_),
            "sample_dims": list(self.sample_dims_),
            "grid_size": self.grid_size_,
            "ranges": self.ranges_,
        }

    def _fitted_datasets(self) -> dict[str, xr.Dataset]:
        return {"grid": self.grid_}

    def _restore(self, fitted: dict[str, Any], datasets: dict[str, xr.Dataset]) -> None:
        self.variables_, self.attrs_ = fitted["variables"], fitted["attrs"]
        self.target_ = self.variables_[0]
        self.spatial_dims_ = tuple(fitted["spatial_dims"])
        self.sample_dims_ = tuple(fitted["sample_dims"])
        self.grid_size_ = list(fitted["grid_size"])
        self.grid_ = datasets["grid"]
        self.ranges_ = fitted.get("ranges", {})  # absent from older models: no check

    def _state(self) -> dict[str, np.ndarray]:
        return {**state_to_numpy(self.module_), "mean": self.mean_, "std": self.std_}

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        self.mean_, self.std_ = state["mean"], state["std"]
        self.module_ = self._build()
        load_numpy_state(self.module_, state)
        self.device_ = loading_device(self.device)
        self.module_.to(self.device_).eval()

    def _state_spec(self) -> dict[str, ArraySpec]:
        return {name: ((len(self.variables_),), "float64") for name in ("mean", "std")}
