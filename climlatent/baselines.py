"""Downscaling baselines every model must beat.

- :class:`BilinearBaseline`: bilinear interpolation of the coarse field to the fine
  grid by :class:`~climlatent.regrid.Regridder` (NaN coarse cells skipped and the
  weights renormalised; fine cells beyond the coarse centres take the nearest coarse
  value, ``extrapolate=True``);
- :class:`ClimatologyCorrectedBilinear`: bilinear interpolation plus a fine-scale
  correction learned on the training period, per group of the year (calendar month
  by default, as xsdba's ``group=``; see :mod:`climlatent.grouping`): the mean
  difference (additive) or geometric-mean ratio (multiplicative, for positive fields:
  the mean of ``log(fine / bilinear)`` over the cells' positive values) of the fine
  field to the interpolated coarse field. The additive form is xsdba's ``Scaling``
  per group, and the fine-scale correction of BCSD's spatial disaggregation; it maps
  no quantiles (xsdba's EQM and QDM do).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from climlatent._params import ParamsMixin
from climlatent.checks import check_calendar, check_field, check_same_samples, get_variable
from climlatent.errors import InputDataError, NotFittedError, not_fitted
from climlatent.estimators._refit import all_or_nothing
from climlatent.grid import find_grid
from climlatent.grouping import Grouper, group_mean
from climlatent.io import add_history, carry_provenance
from climlatent.physical_bounds import clip_to_bounds
from climlatent.regrid import Regridder
from climlatent.units import convert_units, in_other_units


class BaselineNotFittedError(NotFittedError, InputDataError):
    """A baseline used before ``fit``: the `NotFittedError` of every estimator.

    Also an `InputDataError`, which the baselines raised before, for code catching that.
    """


@dataclasses.dataclass
class BilinearBaseline(ParamsMixin):
    """Bilinear interpolation of the coarse target to the fine grid.

    The same answer as ``Regridder(coarse, fine, "bilinear", engine="climlatent",
    extrapolate=True)(coarse, skipna=True)``: fine cells beyond the coarse centres
    (a same-domain fine grid's edges) take the nearest coarse value instead of NaN.
    The coarse field is taken in the target's units, at ``fit`` and at ``downscale``
    (converted where both name theirs), on the calendar it was fitted on.

    Examples
    --------
    >>> import climlatent as cl
    >>> world = cl.datasets.synthetic_biogeochem(n_years=1, n_fine_lat=16, n_fine_lon=16)
    >>> base = BilinearBaseline().fit(world.coarse, world.fine, "chl")
    >>> base.downscale(world.coarse)["chl"].shape == world.fine["chl"].shape
    True
    """

    @all_or_nothing
    def fit(self, coarse: xr.Dataset, fine: xr.Dataset, target: str) -> BilinearBaseline:
        """Build the interpolation weights from the coarse to the fine grid of ``target``.

        A refit refused once it has set the new grids (a correction that the new
        record cannot group) leaves the baseline unfitted, not the new interpolation
        under the previous correction.
        """
        x = get_variable(coarse, target, "coarse")
        y = get_variable(fine, target, "target")
        check_field(x, "coarse")
        time, calendar = check_field(y, "target")
        check_same_samples(y, x, time)
        if in_other_units(x.attrs.get("units"), y.attrs.get("units")):
            x = convert_units(x, y.attrs["units"], target)  # the correction in the target's
        self.target_, self.units_, self.calendar_ = target, x.attrs.get("units"), calendar
        self.regridder_ = Regridder(x, y, "bilinear", engine="climlatent", extrapolate=True)
        interpolated = self._interpolate(x)
        if time in y.coords:  # the same dates (checked), labelled as the target's
            interpolated = interpolated.assign_coords({time: y[time]})
        self._fit_correction(interpolated, y)
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
            raise not_fitted(self, "downscale", BaselineNotFittedError)
        self._check_fit_params("downscale")
        x = get_variable(coarse, self.target_, "coarse")
        _, calendar = check_field(x, "coarse")
        check_calendar(x, "coarse", calendar, self.calendar_)  # a day of year is the fitted's
        if self.units_ is not None:  # the correction's (fitted in kg m-3, added to mg m-3)
            x = convert_units(x, self.units_, self.target_)
        out = self._correct(self._interpolate(x)).rename(self.target_).assign_attrs(x.attrs)
        out = clip_to_bounds(out)  # an additive correction can take chl or pr below 0
        # the coarse data's time axis and bounds, scalar coordinates and global attributes
        out = carry_provenance(out.to_dataset(), coarse)
        return add_history(out, f"{self!r}.downscale(coarse)")


@dataclasses.dataclass
class ClimatologyCorrectedBilinear(BilinearBaseline):
    """Bilinear interpolation plus a fine-scale climatological correction per group.

    Parameters
    ----------
    kind : {"additive", "multiplicative"}
        Correct by the mean difference, or by the geometric-mean ratio (positive
        fields; zero fine values, dry days, are left out of the mean).
    group : str or Grouper
        The groups of the correction, as xsdba's ``group=``: ``"time.month"`` (the
        default), ``"time.season"``, ``"time.dayofyear"`` with a window of time
        steps (``"time.dayofyear:31"`` or ``Grouper("time.dayofyear", window=31)``),
        or ``"time"`` for one correction. Each group's correction is the mean over
        its time steps (and members) of the misfit: ``fine - bilinear``, or
        ``log(fine / bilinear)`` when multiplicative. There is one for each group
        of the training record (annual data grouped by month has one).

    Examples
    --------
    >>> import climlatent as cl
    >>> world = cl.datasets.synthetic_biogeochem(n_years=2, n_fine_lat=16, n_fine_lon=16)
    >>> bcsd = ClimatologyCorrectedBilinear("multiplicative")
    >>> bcsd.fit(world.coarse, world.fine, "chl").correction_.dims
    ('month', 'lat', 'lon')
    >>> seasonal = ClimatologyCorrectedBilinear("multiplicative", group="time.season")
    >>> seasonal.fit(world.coarse, world.fine, "chl").correction_.season.values.tolist()
    ['DJF', 'MAM', 'JJA', 'SON']
    """

    kind: str = "additive"
    group: str | Grouper = "time.month"

    def __post_init__(self) -> None:
        if self.kind not in ("additive", "multiplicative"):
            raise ValueError(f"kind must be 'additive' or 'multiplicative', got {self.kind!r}")
        self.group = str(Grouper.parse(self.group))

    def _fit_correction(self, interpolated: xr.DataArray, fine: xr.DataArray) -> None:
        if self.kind == "additive":
            misfit = fine - interpolated
        else:
            misfit = np.log(fine.where(fine > 0) / interpolated.where(interpolated > 0))
        grouper = Grouper.parse(self.group)
        spatial = find_grid(fine, fine.name).spatial_dims
        sample = tuple(d for d in misfit.dims if d not in spatial)
        misfit = misfit.transpose(*sample, *spatial)
        groups = grouper.fitted_groups(misfit, "target")
        weights = grouper.row_weights(misfit, sample, "target", groups)
        rows = misfit.values.reshape(-1, *(misfit.sizes[d] for d in spatial))
        grid = {name: c for name, c in misfit.coords.items() if set(c.dims) <= set(spatial)}
        self.correction_ = xr.DataArray(
            group_mean(rows, weights),
            dims=(groups.dims[0], *spatial),
            coords={groups.dims[0]: groups, **grid},
            name=fine.name,
            attrs={"group": self.group},
        )

    def _correct(self, interpolated: xr.DataArray) -> xr.DataArray:
        grouper = Grouper.parse(self.group)
        dim = self.correction_.dims[0]
        if grouper.seasonal:
            time = grouper.time_of(interpolated, "coarse")
            index = xr.DataArray(grouper.index(time, self.correction_[dim]), dims=time.dims)
            correction = self.correction_.isel({dim: index}).drop_vars(dim)
        else:
            correction = self.correction_.isel({dim: 0}, drop=True)
        if self.kind == "additive":
            return interpolated + correction
        return interpolated * np.exp(correction)
