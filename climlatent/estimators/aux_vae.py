"""`AuxVAE`: guided latents for named drivers, residual latents for the rest.

The xarray face of :class:`climlatent.models.aux_vae.AuxiliaryVAE`. ``fit`` takes the
fields and the names of auxiliary variables (time series such as a circulation index,
or per-sample scalars) with the fields' sample dims; the first latents are tethered to
them and the remaining ones capture internal variability. Guided latents come back in
the auxiliaries' own units, so a traversal along a guided coordinate reads as "this
field at this value of the driver, all else fixed".
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr
from scipy import stats

from climlatent.checks import get_variable
from climlatent.draws import REALIZATION_DIM, realizations
from climlatent.errors import InputDataError
from climlatent.estimators._torch import inference
from climlatent.estimators.base import ArraySpec
from climlatent.estimators.vae import VAE
from climlatent.models.aux_vae import AuxiliaryVAE
from climlatent.models.priors import StandardNormalPrior, prior_draws

__all__ = ["AuxVAE"]

AUXILIARY = "auxiliary"


@dataclasses.dataclass
class AuxVAE(VAE):
    """Aux-VAE on gridded fields: guided latents (one per auxiliary) + residual latents.

    Parameters
    ----------
    latent_dim : int
        Total latent size: the guided block (one latent per auxiliary) plus the
        residual block.
    tau : float
        Spread of the guided prior ``N(u, tau^2)`` in standardised units.
    alignment_weight, decorrelation_weight : float
        Weights of the alignment and decorrelation penalties.
    **options
        Architecture, schedule and training options of `VAE` (``prior`` is unused).

    Examples
    --------
    >>> import climlatent as cl
    >>> ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1)
    >>> aux = cl.AuxVAE(latent_dim=5, n_scales=2, epochs=1, progress=False)
    >>> aux = aux.fit(ds, "psl", auxiliary=["circulation_factor"])
    >>> aux.guided(ds).dims
    ('member', 'time', 'auxiliary')
    >>> aux.guided(ds)["auxiliary"].values.tolist()
    ['circulation_factor[1]', 'circulation_factor[2]', 'circulation_factor[3]']
    """

    latent_dim: int = 8
    tau: float = 0.1
    alignment_weight: float = 1.0
    decorrelation_weight: float = 100.0

    def fit(  # type: ignore[override]
        self,
        ds: xr.Dataset,
        target: str | Sequence[str] | None = None,
        auxiliary: Sequence[str] | None = None,
        *,
        checkpoint: str | os.PathLike | None = None,
        resume: bool = False,
        **deprecated_names: str | Sequence[str],
    ) -> AuxVAE:
        """Train on ``target`` of ``ds`` with the guided block tied to ``auxiliary``.

        Parameters
        ----------
        ds : xr.Dataset
            Fields (last two dims: the grid) and the auxiliary variables.
        target : str or sequence of str
            The fields the model generates, one channel each.
        auxiliary : sequence of str
            Variables or coordinates of ``ds`` over the fields' sample dims, each with
            at most one more dim (e.g. ``mode``), which adds one guided latent per entry.
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
        AuxVAE
            ``self``, fitted.

        Raises
        ------
        InputDataError
            As for `VAE.fit`; an auxiliary is missing, has other dims, holds NaN or is
            constant; or the guided block leaves no residual latent.
        CheckpointError
            As for `VAE.fit`.
        TypeError
            ``target`` or ``auxiliary`` missing, or ``target`` given twice.
        """
        if auxiliary is None:
            raise TypeError("AuxVAE.fit() missing the argument 'auxiliary'")
        x = self._prepare(ds, self._target(target, deprecated_names))
        u, names = self._auxiliaries(ds, list(auxiliary))
        if len(names) >= self.latent_dim:
            raise InputDataError(
                f"{len(names)} auxiliaries leave no residual latent in latent_dim="
                f"{self.latent_dim}; increase latent_dim"
            )
        self.auxiliary_, self.guided_names_ = list(auxiliary), names
        self.aux_mean_, self.aux_std_ = u.mean(0), u.std(0)
        constant = [n for n, s in zip(names, self.aux_std_, strict=True) if not s > 0]
        if constant:
            raise InputDataError(f"auxiliary {constant} constant: nothing to guide with")
        standard = ((u - self.aux_mean_) / self.aux_std_).astype(np.float32)
        self.aux_standard_ = standard
        return self._train([torch.from_numpy(x), torch.from_numpy(standard)], checkpoint, resume)

    def guided(self, ds: xr.Dataset) -> xr.DataArray:
        """Guided posterior means of the fields of ``ds``, in the auxiliaries' units."""
        self._require_fitted("guided")
        z = self.encode(ds)
        k = len(self.guided_names_)
        values = z.isel(latent=slice(0, k)).values * self.aux_std_ + self.aux_mean_
        return xr.DataArray(
            values,
            dims=z.dims[:-1] + (AUXILIARY,),
            coords={**{d: z[d] for d in z.dims[:-1] if d in z.coords},
                    AUXILIARY: self.guided_names_},
            name="guided_latent",
            attrs={"long_name": "guided latents in the units of their auxiliaries"},
        )  # fmt: skip

    def traverse(self, reference: xr.Dataset, name: str, values: Sequence[float]) -> xr.Dataset:
        """Decode ``reference`` (one sample) with guided coordinate ``name`` set to ``values``.

        The other guided coordinates and the residual block stay at the reference's
        encoding. The output has a dim ``value`` holding ``values`` (in the auxiliary's
        units), as `LLAAE.traverse`'s, and the attribute ``traversed_auxiliary``:
        ``name``. (A dim named after a vector auxiliary's entry, ``mode[1]``, is no
        netCDF/CF name.)
        """
        self._require_fitted("traverse")
        if name not in self.guided_names_:
            raise InputDataError(f"no guided coordinate {name!r}; have {self.guided_names_}")
        z = self.encode(reference)
        if int(np.prod([z.sizes[d] for d in z.dims[:-1]])) != 1:
            raise InputDataError("traverse needs a reference Dataset holding one sample")
        index = self.guided_names_.index(name)
        latents = np.repeat(z.values.reshape(1, -1), len(values), axis=0)
        standard = (np.asarray(values, float) - self.aux_mean_[index]) / self.aux_std_[index]
        latents[:, index] = standard
        value = xr.DataArray(
            np.asarray(values, float), dims="value", attrs={"long_name": f"value of {name}"}
        )
        traversal = xr.DataArray(latents, dims=("value", "latent"), coords={"value": value})
        return self.decode(traversal).assign_attrs(traversed_auxiliary=name)

    def residual_tail_samples(
        self, reference: xr.Dataset, n: int, quantile: float = 0.99, seed: int = 0
    ) -> xr.Dataset:
        """Decode ``n`` residual draws from the prior's tail, the guided block fixed.

        The draws lie along ``realization``.

        Residual vectors are drawn isotropically with a norm beyond the ``quantile`` of
        its chi distribution: unusual internal variability at the reference's driver
        values, for anomaly-style diagnostics.

        Raises
        ------
        InputDataError
            ``reference`` holds more than one sample (as for `traverse`).
        ValueError
            ``quantile`` is outside ``[0, 1)`` (at 1 every norm is infinite).
        """
        self._require_fitted("residual_tail_samples")
        if not 0 <= quantile < 1:
            raise ValueError(f"quantile must be in [0, 1), got {quantile}")
        z = self.encode(reference).values.reshape(-1, self.latent_dim)
        if len(z) != 1:  # the draws sat at the first sample's drivers, the rest ignored
            raise InputDataError(
                f"residual_tail_samples needs a reference Dataset holding one sample, got {len(z)}"
            )
        k, rng = len(self.guided_names_), np.random.default_rng(seed)
        free = self.latent_dim - k
        direction = rng.standard_normal((n, free))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        chi = stats.chi(free)
        radius = chi.ppf(rng.uniform(quantile, 1.0, size=(n, 1)))
        latents = np.concatenate([np.repeat(z[:, :k], n, axis=0), direction * radius], axis=1)
        draws = realizations(n, "draw of the prior's residual tail")
        z = xr.DataArray(latents, dims=(REALIZATION_DIM, "latent"), coords={REALIZATION_DIM: draws})
        return self.decode(z)

    def sample(self, n: int, seed: int = 0) -> xr.Dataset:
        """``n`` fields decoded from draws of the model's prior (dim ``realization``).

        The guided latents are drawn as the conditional prior has them: the
        standardised auxiliaries ``u`` of a training sample drawn at random, plus
        ``tau * N(0, 1)``, so the draws keep the drivers' joint distribution (their
        correlations, several modes); the residual latents are ``N(0, I)``. Draw ``i``
        comes from ``seed`` and ``i`` alone: ``sample(k)`` is the first ``k`` of
        ``sample(n)``, to float round-off.

        Raises
        ------
        InputDataError
            The model was saved before it kept its training auxiliaries: refit it.

        Examples
        --------
        >>> import climlatent as cl
        >>> ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1)
        >>> aux = cl.AuxVAE(latent_dim=5, n_scales=2, epochs=1, progress=False)
        >>> aux.fit(ds, "psl", auxiliary=["circulation_factor"]).sample(4)["psl"].dims
        ('realization', 'lat', 'lon')
        """
        self._require_fitted("sample")
        if self.aux_standard_ is None:
            raise InputDataError(
                "this AuxVAE was saved before it kept its training auxiliaries, which its "
                "prior draws from: refit it to sample"
            )
        z = prior_draws(StandardNormalPrior(), n, self.latent_dim, seed).numpy()
        rows = np.random.default_rng(seed).integers(len(self.aux_standard_), size=n)
        k = len(self.guided_names_)
        z[:, :k] = self.aux_standard_[rows] + self.tau * z[:, :k]
        fields = inference(self.module_.decode, z, device=self.device_)
        return self._prior_draws(fields, f"sample({n}, seed={seed})")

    # -- internals -------------------------------------------------------------------

    def _auxiliaries(self, ds: xr.Dataset, names: list[str]) -> tuple[np.ndarray, list[str]]:
        columns, labels = [], []
        n = int(np.prod([ds.sizes[d] for d in self.sample_dims_]))
        for name in names:
            if name in ds.coords and name not in ds.data_vars:
                da = ds.coords[name]
            else:
                da = get_variable(ds, name, "auxiliary")
            extra = [d for d in da.dims if d not in self.sample_dims_]
            missing = [d for d in self.sample_dims_ if d not in da.dims]
            if len(extra) > 1 or missing:
                raise InputDataError(
                    f"auxiliary {name!r} has dims {da.dims}; it needs the fields' sample dims "
                    f"{self.sample_dims_} and at most one more"
                )
            values = np.asarray(da.transpose(*self.sample_dims_, *extra).values, float)
            values = values.reshape(n, -1)
            if not np.isfinite(values).all():
                raise InputDataError(f"auxiliary {name!r} holds NaN/inf values")
            columns.append(values)
            if extra:
                labels += [f"{name}[{v}]" for v in da[extra[0]].values]
            else:
                labels.append(name)
        return np.concatenate(columns, axis=1), labels

    def _build(self) -> AuxiliaryVAE:
        return AuxiliaryVAE(
            *self._networks(),
            self.latent_dim,
            len(self.variables_),
            n_guided=len(self.guided_names_),
            tau=self.tau,
            alignment_weight=self.alignment_weight,
            decorrelation_weight=self.decorrelation_weight,
            schedule=self.schedule(),
        )

    def _fitted_metadata(self) -> dict[str, Any]:
        fitted = {
            **super()._fitted_metadata(),
            "auxiliary": self.auxiliary_,
            "guided_names": self.guided_names_,
        }
        if self.aux_standard_ is not None:  # None: loaded from a model saved before
            fitted["auxiliary_samples"] = len(self.aux_standard_)
        return fitted

    def _restore(self, fitted: dict[str, Any], datasets: dict[str, xr.Dataset]) -> None:
        super()._restore(fitted, datasets)
        self.auxiliary_, self.guided_names_ = fitted["auxiliary"], fitted["guided_names"]
        self.aux_standard_ = None  # read with the weights, when it was saved
        self._saved_auxiliaries = fitted.get("auxiliary_samples")  # None: saved before

    def _state(self) -> dict[str, np.ndarray]:
        state = {**super()._state(), "aux_mean": self.aux_mean_, "aux_std": self.aux_std_}
        if self.aux_standard_ is not None:  # a model saved before saves again without it
            state["aux_standard"] = self.aux_standard_
        return state

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        self.aux_mean_, self.aux_std_ = state["aux_mean"], state["aux_std"]
        if self._saved_auxiliaries is not None:
            self.aux_standard_ = state["aux_standard"]
        super()._load_state(state)

    def _state_spec(self) -> dict[str, ArraySpec]:
        aux = ((len(self.guided_names_),), "float64")
        spec = {**super()._state_spec(), "aux_mean": aux, "aux_std": aux}
        if self._saved_auxiliaries is not None:  # saved with its training auxiliaries
            shape = (self._saved_auxiliaries, len(self.guided_names_))
            spec["aux_standard"] = (shape, "float32")
        return spec
