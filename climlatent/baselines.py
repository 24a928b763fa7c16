"""Downscaling baselines every model must beat.

- :class:`BilinearBaseline`: bilinear interpolation of the coarse field to the fine
  grid by :class:`~climlatent.regrid.Regridder` (NaN coarse cells skipped and the
  weights renormalised; fine cells beyond the coarse centres take the nearest coarse
  value, ``extrapolate=True``);
- :class:`ClimatologyCorrectedBilinear`: bilinear interpolation plus a fine-scale
  correction learned on the training period, per calendar month: the mean
  difference (additive) or mean ratio (multiplicative, for positive fields) of the
  fine field to the interpolated coarse field. This is the bias-correction step of
  BCSD, what xsdba users would try first.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from climlatent.checks import check_field, check_same_samples, get_variable
from climlatent.errors import InputDataError
from climlatent.grid import find_grid, find_time
from climlatent.io import add_history
from climlatent.regrid import Regridder


@dataclasses.dataclass
class BilinearBaseline:
    """Bilinear interpolation of the coarse target to the fine grid.

    The same answer as ``Regridder(coarse, fine, "bilinear", engine="climlatent",
    extrapolate=True)(coarse, skipna=True)``: fine cells beyond the coarse centres
    (a same-domain fine grid's edges) take the nearest coarse value instead of NaN.

    Examples
    --------
    >>> import climlatent as cl
    >>> world = cl.datasets.synthetic_biogeochem(n_years=1, n_fine_lat=16, n_fine_lon=16)
    >>> base = BilinearBaseline().fit(world.coarse, world.fine, "chl")
    >>> base.downscale(world.coarse)["chl"].shape == world.fine["chl"].shape
    True
    """

    def fit(self, coarse: xr.Dataset, fine: xr.Dataset, target: str) -> BilinearBaseline:
        """Build the interpolation weights from the coarse to the fine grid of ``target``."""
        x = get_variable(coarse, target, "coarse")
        y = get_variable(fine, target, "target")
        check_field(x, "coarse")
        time, _ = check_field(y, "target")
        check_same_samples(y, x, time)
        self.target_ = target
        self.regridder_ = Regridder(x, y, "bilinear", engine="climlatent", extrapolate=True)
        self._fit_correction(self._interpolate(x), y)
        return self

    def _interpolate(self, x: xr.DataArray) -> xr.DataArray:
        return self.regridder_(x, skipna=True)

    def _fit_correction(self, interpolated: xr.DataArray, fine: xr.DataArray) -> None:
        """Bilinear interpolation learns nothing more."""

    def _correct(self, interpolated: xr.DataArray) -> xr.DataArray:
        return interpolated

    def downscale(self, coarse: xr.Dataset) -> xr.Dataset:
        """The target on the fine grid from its coarse field in ``coarse``."""
        if not hasattr(self, "regridder_"):
            raise InputDataError(f"{type(self).__name__} is not fitted: call fit() first")
        x = get_variable(coarse, self.target_, "coarse")
        check_field(x, "coarse")
        out = self._correct(self._interpolate(x)).rename(self.target_).assign_attrs(x.attrs)
        return add_history(
            out.to_dataset().assign_attrs(coarse.attrs),
            f"{type(self).__name__}().downscale(coarse)",
        )


@dataclasses.dataclass
class ClimatologyCorrectedBilinear(BilinearBaseline):
    """Bilinear interpolation plus a monthly fine-scale climatological correction.

    Parameters
    ----------
    kind : {"additive", "multiplicative"}
        Correct by the mean difference, or by the mean ratio (positive fields).

    Examples
    --------
    >>> import climlatent as cl
    >>> world = cl.datasets.synthetic_biogeochem(n_years=2, n_fine_lat=16, n_fine_lon=16)
    >>> bcsd = ClimatologyCorrectedBilinear("multiplicative")
    >>> bcsd.fit(world.coarse, world.fine, "chl").correction_.dims
    ('month', 'lat', 'lon')
    """

    kind: str = "additive"

    def __post_init__(self) -> None:
        if self.kind not in ("additive", "multiplicative"):
            raise ValueError(f"kind must be 'additive' or 'multiplicative', got {self.kind!r}")

    def _fit_correction(self, interpolated: xr.DataArray, fine: xr.DataArray) -> None:
        time = find_time(fine)
        if self.kind == "additive":
            misfit = fine - interpolated
        else:
            misfit = np.log(fine.where(fine > 0) / interpolated.where(interpolated > 0))
        spatial = find_grid(fine, fine.name).spatial_dims
        sample = [d for d in misfit.dims if d not in (time, *spatial)]
        monthly = misfit.groupby(f"{time}.month").mean([time, *sample])
        self.correction_ = monthly.transpose("month", *spatial)

    def _correct(self, interpolated: xr.DataArray) -> xr.DataArray:
        time = find_time(interpolated)
        correction = self.correction_.sel(month=interpolated[time].dt.month).drop_vars("month")
        if self.kind == "additive":
            return interpolated + correction
        return interpolated * np.exp(correction)
