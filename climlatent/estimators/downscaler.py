"""ProxyDownscaler: fine fields from coarse physical drivers through physics proxies.

The xarray face of :class:`climlatent.models.downscaler.ProxyDownscaler` (seed 000,
Section 4.4). ``fit(coarse, fine, target, proxies={"tos": "exponential", "rsds":
"quadratic"})`` learns the proxy functions' parameters and the fine-scale structure;
``downscale(coarse)`` returns the target on the fine grid with every sample dim
(member, time, ...) of ``coarse`` carried through. Drivers are converted to the
units their proxy function expects (sea surface temperature in K becomes degC for
the exponential growth law); units that cannot be converted are refused. With no
proxies, the target is downscaled from its own coarse field (additive form).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
import xarray as xr
from scipy import sparse

from climlatent.batching import FieldLayout, from_matrix, sample_coords, to_matrix
from climlatent.checks import check_field, check_same_samples, get_variable
from climlatent.errors import InputDataError
from climlatent.estimators._torch import inference, load_numpy_state, state_to_numpy
from climlatent.estimators.base import BaseEstimator
from climlatent.grid import check_same_grid, find_grid, grid_dataset
from climlatent.models.downscaler import ProxyDownscaler as ProxyDownscalerModule
from climlatent.models.proxies import make_proxy
from climlatent.regrid import Regridder
from climlatent.training import TrainingConfig, fit, resolve_device
from climlatent.units import convert_units, parse_units

SAMPLE_DIM = "sample"


def upsampling_matrix(coarse: FieldLayout, fine: FieldLayout) -> sparse.csr_array:
    """Bilinear weights from the valid coarse cells to the valid fine cells.

    Rows are renormalised over valid coarse cells; a fine cell with no valid bilinear
    neighbour (e.g. on a coast) takes its nearest valid coarse cell.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> coarse = xr.DataArray(np.ones((2, 2)), dims=("lat", "lon"), name="t",
    ...     coords={"lat": [0.0, 10.0], "lon": [0.0, 10.0]})
    >>> fine = xr.DataArray(np.ones((3, 3)), dims=("lat", "lon"), name="t",
    ...     coords={"lat": [0.0, 5.0, 10.0], "lon": [0.0, 5.0, 10.0]})
    >>> u = upsampling_matrix(FieldLayout.from_data(coarse), FieldLayout.from_data(fine))
    >>> u.shape, np.allclose(u.sum(axis=1), 1)
    ((9, 4), True)
    """
    src = coarse.grid.drop_vars("valid_mask")
    dst = fine.grid.drop_vars("valid_mask")
    rows, cols = fine.mask, coarse.mask
    bilinear = Regridder(src, dst, "bilinear", engine="climlatent").weights[rows][:, cols]
    nearest = _nearest_valid(coarse, fine)
    total = np.asarray(bilinear.sum(axis=1)).ravel()
    keep = total > 1e-9
    scale = sparse.diags_array(np.where(keep, 1.0 / np.where(keep, total, 1.0), 0.0))
    fallback = sparse.diags_array((~keep).astype(float)) @ nearest
    return sparse.csr_array(scale @ bilinear + fallback)


def _nearest_valid(coarse: FieldLayout, fine: FieldLayout) -> sparse.csr_array:
    """For each valid fine cell, weight 1 on the great-circle nearest valid coarse cell."""
    from scipy.spatial import cKDTree

    def xyz(layout: FieldLayout) -> np.ndarray:
        info = find_grid(layout.grid)
        lat, lon = layout.grid[info.lat], layout.grid[info.lon]
        if lat.ndim == 1:
            lat, lon = xr.broadcast(lat, lon)
        phi = np.deg2rad(lat.transpose(*layout.spatial_dims).values.ravel()[layout.mask])
        lam = np.deg2rad(lon.transpose(*layout.spatial_dims).values.ravel()[layout.mask])
        return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], 1)

    _, nearest = cKDTree(xyz(coarse)).query(xyz(fine))
    n = fine.n_features
    return sparse.csr_array((np.ones(n), (np.arange(n), nearest)), shape=(n, coarse.n_features))


def _to_torch(matrix: sparse.csr_array) -> torch.Tensor:
    coo = matrix.tocoo()
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(
        indices, torch.from_numpy(coo.data).float(), coo.shape, check_invariants=True
    )


@dataclasses.dataclass
class ProxyDownscaler(BaseEstimator):
    """Downscale a field from coarse drivers through learnable physics proxies.

    Parameters
    ----------
    mode : {"auto", "multiplicative", "additive"}
        ``"auto"``: multiplicative (growth laws multiply, log-space loss) when proxies
        are given, additive (gain and offset per fine cell) when the target is
        downscaled from itself.
    noise : bool
        Learn a per-cell residual spread, enabling ``downscale(..., n_samples=k)``.
    epochs, batch_size, lr, validation_fraction, early_stopping_patience, seed,
    device, progress :
        Passed to :class:`climlatent.training.TrainingConfig`.

    Examples
    --------
    >>> import climlatent as cl
    >>> world = cl.datasets.synthetic_biogeochem(n_years=2, n_fine_lat=16, n_fine_lon=16)
    >>> est = cl.ProxyDownscaler(epochs=2).fit(world.coarse, world.fine, "chl",
    ...     proxies={"tos": "exponential", "rsds": "quadratic"})
    >>> est.downscale(world.coarse)["chl"].shape == world.fine["chl"].shape
    True
    """

    mode: str = "auto"
    noise: bool = False
    epochs: int = 300
    batch_size: int = 64
    lr: float = 1e-2
    validation_fraction: float = 0.1
    early_stopping_patience: int | None = None
    seed: int = 0
    device: str = "auto"
    progress: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("auto", "multiplicative", "additive"):
            raise ValueError(
                f"mode must be 'auto', 'multiplicative' or 'additive', got {self.mode!r}"
            )

    # -- fitting -------------------------------------------------------------------

    def fit(
        self,
        coarse: xr.Dataset,
        fine: xr.Dataset,
        target: str,
        proxies: dict[str, str] | None = None,
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

        Returns
        -------
        ProxyDownscaler
            ``self``, fitted.
        """
        y = get_variable(fine, target, "target")
        time, calendar = check_field(y, "target")
        parse_units(y, target)
        laws = dict(proxies) if proxies else {target: "identity"}
        mode = self.mode if self.mode != "auto" else ("multiplicative" if proxies else "additive")
        modules = [make_proxy(law) for law in laws.values()]
        units = {}
        for name, module in zip(laws, modules, strict=True):
            x = get_variable(coarse, name, "proxy")
            check_field(x, "proxy")
            check_same_samples(y, x, time)
            parse_units(x, name)
            units[name] = getattr(module, "expected_units", None) or x.attrs["units"]
        if mode == "multiplicative" and bool((y <= 0).any()):
            raise InputDataError(
                f"target {target!r} has values <= 0; the multiplicative form "
                f"needs a positive field (use mode='additive')"
            )
        self.target_, self.drivers_, self.laws_, self.mode_ = target, units, laws, mode
        self.target_attrs_, self.calendar_ = dict(y.attrs), calendar
        self.target_transform_ = None
        drivers = self._drivers(coarse)
        self.coarse_layout_ = _common_layout(drivers)
        self.fine_layout_ = FieldLayout.from_data(y)
        y_mat = to_matrix(y, self.fine_layout_)
        upsample = _to_torch(upsampling_matrix(self.coarse_layout_, self.fine_layout_))
        x_mat = self._driver_matrix(drivers)
        torch.manual_seed(self.seed)
        self.module_ = ProxyDownscalerModule(
            upsample,
            modules,
            mode,
            torch.zeros(self.fine_layout_.n_features),
            floor=_floor(y_mat),
            noise=self.noise,
        )
        self._initialise_structure(y_mat, x_mat)
        self.device_ = resolve_device(self.device)
        weight = np.isfinite(y_mat).astype(np.float32)
        filler = 1.0 if mode == "multiplicative" else 0.0
        tensors = (
            torch.from_numpy(np.where(weight > 0, y_mat, filler).astype(np.float32)),
            torch.from_numpy(weight),
            torch.from_numpy(x_mat),
        )
        self.history_ = fit(self.module_, tensors, self._training_config()).history
        self.module_.eval()
        return self

    def _training_config(self) -> TrainingConfig:
        return TrainingConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            validation_fraction=self.validation_fraction,
            early_stopping_patience=self.early_stopping_patience,
            seed=self.seed,
            device=self.device,
            progress=self.progress,
        )

    def _initialise_structure(self, y: np.ndarray, x: np.ndarray) -> None:
        """Start ``s(x)`` at the per-cell mean misfit of the initial proxies (closed form).

        In the additive form the interpolated field is also centred on its training
        mean, so that gain and offset are separate and well scaled.
        """
        with torch.no_grad():
            if self.mode_ == "additive":
                interpolated = self.module_.predictor(torch.from_numpy(x)).numpy()
                self.module_.centre.copy_(torch.from_numpy(interpolated.mean(axis=0)))
            predictor = self.module_.predictor(torch.from_numpy(x)).numpy()
            target = (
                np.log(np.maximum(y, self.module_.floor)) if self.mode_ == "multiplicative" else y
            )
            offset = np.nanmean(target - predictor, axis=0)
            self.module_.structure.copy_(torch.from_numpy(np.nan_to_num(offset)).float())

    # -- boundary helpers ----------------------------------------------------------

    def _drivers(self, coarse: xr.Dataset) -> list[xr.DataArray]:
        out = []
        for name, units in self.drivers_.items():
            x = get_variable(coarse, name, "proxy")
            check_field(x, "proxy")
            out.append(convert_units(x, units, name))
        return out

    def _driver_matrix(self, drivers: list[xr.DataArray]) -> np.ndarray:
        mats = [to_matrix(x, self.coarse_layout_) for x in drivers]
        for name, mat in zip(self.drivers_, mats, strict=True):
            if not np.isfinite(mat).all():
                raise InputDataError(
                    f"proxy variable {name!r} has NaN/inf values in coarse "
                    f"cells that hold data in the training period"
                )
        return np.stack(mats, axis=1)

    # -- downscaling -----------------------------------------------------------------

    def downscale(
        self, coarse: xr.Dataset, n_samples: int | None = None, seed: int = 0
    ) -> xr.Dataset:
        """The target on the fine grid from the drivers in ``coarse``.

        Parameters
        ----------
        coarse : xr.Dataset
            Drivers on the fitted coarse grid, with any sample dims (member, time...).
        n_samples : int, optional
            Stochastic realisations (needs ``noise=True``), stacked along ``sample``.
        seed : int
            Seed of the stochastic draws.

        Returns
        -------
        xr.Dataset
            The target with ``coarse``'s sample dims and coordinates on the fine grid,
            CF attributes from training and a history line.
        """
        self._require_fitted()
        drivers = self._drivers(coarse)
        for x in drivers:
            check_same_grid(self.coarse_layout_.grid, x, str(x.name))
        x_mat = self._driver_matrix(drivers)
        samples = sample_coords(drivers[0], self.coarse_layout_)
        if n_samples is None:
            y = inference(self.module_, x_mat, device=self.device_)
            out = from_matrix(y, self.fine_layout_, samples)
        else:
            if not self.noise:
                raise ValueError("stochastic downscaling needs a model fitted with noise=True")
            generator = torch.Generator(device=self.device_).manual_seed(seed)
            draws = [
                inference(lambda d: self.module_.sample(d, generator), x_mat, device=self.device_)
                for _ in range(n_samples)
            ]
            out = from_matrix(
                np.concatenate(draws),
                self.fine_layout_,
                {SAMPLE_DIM: np.arange(n_samples), **samples},
            )
        call = f"downscale(coarse{'' if n_samples is None else f', n_samples={n_samples}'})"
        return self._wrap(out.rename(self.target_), coarse, call)

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
        self._require_fitted()
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

    # -- persistence -----------------------------------------------------------------

    def _fitted_metadata(self) -> dict[str, Any]:
        return {
            "target": self.target_,
            "drivers": self.drivers_,
            "laws": self.laws_,
            "mode": self.mode_,
            "target_attrs": self.target_attrs_,
            "calendar": self.calendar_,
        }

    def _fitted_datasets(self) -> dict[str, xr.Dataset]:
        return {
            "coarse_grid": self.coarse_layout_.to_dataset(),
            "fine_grid": self.fine_layout_.to_dataset(),
        }

    def _restore(self, fitted: dict[str, Any], datasets: dict[str, xr.Dataset]) -> None:
        self.target_, self.drivers_, self.laws_ = (
            fitted["target"],
            fitted["drivers"],
            fitted["laws"],
        )
        self.mode_, self.target_attrs_ = fitted["mode"], fitted["target_attrs"]
        self.calendar_, self.target_transform_ = fitted["calendar"], None
        self.coarse_layout_ = FieldLayout.from_dataset(datasets["coarse_grid"])
        self.fine_layout_ = FieldLayout.from_dataset(datasets["fine_grid"])

    def _state(self) -> dict[str, np.ndarray]:
        state = state_to_numpy(self.module_)
        upsample = self.module_.upsample.coalesce()
        state["upsample.indices"] = upsample.indices().numpy()
        state["upsample.values"] = upsample.values().numpy()
        state["upsample.shape"] = np.asarray(upsample.shape)
        return state

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        upsample = torch.sparse_coo_tensor(
            torch.from_numpy(np.array(state.pop("upsample.indices"))),
            torch.from_numpy(np.array(state.pop("upsample.values"))),
            tuple(int(n) for n in state.pop("upsample.shape")),
            check_invariants=True,
        )
        modules = [make_proxy(law) for law in self.laws_.values()]
        self.module_ = ProxyDownscalerModule(
            upsample,
            modules,
            self.mode_,
            torch.zeros(self.fine_layout_.n_features),
            noise=self.noise,
        )
        load_numpy_state(self.module_, state)
        self.device_ = resolve_device(self.device)
        self.module_.to(self.device_).eval()


def _common_layout(drivers: list[xr.DataArray]) -> FieldLayout:
    """Coarse layout whose valid cells are finite in every sample of every driver."""
    first = FieldLayout.from_data(drivers[0])
    valid = xr.concat(
        [np.isfinite(x).all([d for d in x.dims if d not in first.spatial_dims]) for x in drivers],
        dim="driver",
    ).all("driver")
    grid = grid_dataset(drivers[0]).assign(valid_mask=valid.transpose(*first.spatial_dims))
    return FieldLayout(first.name, grid, first.spatial_dims)


def _floor(y: np.ndarray) -> float:
    """Smallest value taken into the log: a millionth of the mean positive target."""
    positive = y[np.isfinite(y) & (y > 0)]
    return float(positive.mean() * 1e-6) if positive.size else 1e-12
