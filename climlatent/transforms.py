"""Fitted, invertible, serialisable preprocessing of climate fields (no torch here).

A transform's ``state`` is an :class:`xarray.Dataset`: fitted parameters as variables
with coordinates; kind, hyper-parameters (JSON) and fitted units as attributes. It goes
through ``to_netcdf`` and back with :func:`transform_from_dataset`, without pickle.
Here: standardising, anomalies and chains of transforms; the base class is in
:mod:`climlatent.transform_base`, the transforms of precipitation in
:mod:`climlatent.precipitation_transforms`, all importable from here.
"""

from __future__ import annotations

import functools
import operator
import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr

from climlatent._transforms import (
    _DAYS_IN_TABLE,
    _LEAP_DAY_SLOT,
    _MONTH_LENGTHS,
    _as_dims,
    _check_aligned,
    _check_dims,
    _circular_window_sum,
    _label,
    _then,
    _time_axis,
)
from climlatent.checks import check_int
from climlatent.errors import InputDataError
from climlatent.precipitation_transforms import Log1p, PowerTransform
from climlatent.transform_base import Transform, transform_from_dataset
from climlatent.units import difference_units

__all__ = [
    "Anomalies",
    "Log1p",
    "Pipeline",
    "PowerTransform",
    "Standardize",
    "Transform",
    "transform_from_dataset",
]

#: A standard deviation at most this fraction of the mean's magnitude is round-off of
#: a constant cell (float64 sums of n identical values err by ~n * 1e-16 relative).
CONSTANT_RTOL = 1e-10


class Standardize(Transform, kind="standardize"):
    """Subtract the mean and divide by the standard deviation, per grid cell.

    Statistics are taken over the sample ``dims``, skipping NaNs, so masked cells stay
    NaN. Cells with zero variance (a std within ``CONSTANT_RTOL`` of the mean: round-off)
    are divided by 1 rather than 0: they map to 0 (to round-off) and back exactly. The
    statistics are summed in float64 (a float32 sum of 36500 pressures near 101325 Pa
    is 1.5 Pa off) and kept in the field's dtype. In memory, the deviations are squared
    in units of a power of two near each cell's largest magnitude (an exact scaling):
    numpy squares float32 deviations in float32, which overflowed above 1.8e19 (a
    float32 field near 5e22 had std inf and standardised to zeros) and lost digits
    below 1e-19 (near 5e-22, 8e-5 of the std); dask squares its chunks in float64.
    Output units are ``"1"``.

    Parameters
    ----------
    dims : str or sequence of str
        Sample dimensions to reduce over, e.g. ``("time", "member")``.

    Examples
    --------
    >>> import xarray as xr
    >>> da = xr.DataArray([[1.0, 5.0], [3.0, 5.0]], dims=("time", "lat"), name="tas")
    >>> Standardize(dims="time").fit_forward(da).values
    array([[-1.,  0.],
           [ 1.,  0.]])
    """

    _state_variables = ("mean", "std")

    def __init__(self, dims: str | Sequence[str] = ("time",)) -> None:
        self.dims = _as_dims(dims)
        super().__init__(dims=list(self.dims))

    def _fit(self, da: xr.DataArray) -> xr.Dataset:
        _check_dims(da, self.dims)
        mean = da.mean(self.dims, skipna=True, dtype=np.float64)
        scaled, unit = da, 1.0
        if isinstance(da.data, np.ndarray):  # numpy squares float32 deviations in float32
            magnitude = abs(da).max(self.dims, skipna=True)
            unit = 2.0 ** np.floor(np.log2(magnitude.where(magnitude > 0, 1)))
            scaled = da / unit.astype(np.result_type(da.dtype, np.float32))
        std = scaled.std(self.dims, skipna=True, dtype=np.float64) * unit
        constant = std <= CONSTANT_RTOL * abs(mean)
        dtype = da.dtype if da.dtype.kind == "f" else np.float64
        state = xr.Dataset({"mean": mean, "std": std.where(~constant, 1)}).astype(dtype)
        with warnings.catch_warnings():  # dask warns on all-NaN (masked) cells: NaN is right
            warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
            return state.compute()

    def _forward(self, da: xr.DataArray, state: xr.Dataset) -> xr.DataArray:
        _check_aligned(da, state)
        return _then(da - state["mean"], operator.truediv, state["std"])

    def _inverse(self, da: xr.DataArray, state: xr.Dataset) -> xr.DataArray:
        _check_aligned(da, state)
        return _then(da * state["std"], operator.add, state["mean"])

    def _forward_units(self, units: str) -> str:
        return "1"


class Anomalies(Transform, kind="anomalies"):
    """Subtract a day-of-year or monthly climatology; ``inverse`` adds it back.

    The climatology is, per grid cell, the mean over ``dims`` (time and e.g. member)
    of the samples in each day of the year or month, skipping NaNs. The time axis is
    the ``time`` dimension, else the coordinate cf-xarray identifies as axis ``T``.
    Anomalies are differences: of a field in degC, in K.

    Day-of-year follows the calendar: 360 slots on ``360_day``, 365 on ``noleap``,
    else 366 (leap years: ``standard``, ``proleptic_gregorian``, ``julian``,
    ``all_leap``, datetime64), the slot of a date in a leap year: 1 March is slot 61,
    29 February (60) has leap days or the mean of 28 February's and 1 March's. A
    ``dayofyear`` climatology applies to data of as many slots, a ``month`` one to any.

    Parameters
    ----------
    freq : {"dayofyear", "month"}
        Grouping of the climatology.
    dims : str or sequence of str, optional
        Dimensions averaged over; must include the time dimension (the default alone).
    window : int, optional
        Odd width in days (months for ``freq="month"``) of a centred window that
        smooths the climatology, wrapping around the year: each slot averages all
        samples whose slot lies in the window. Default: no smoothing.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> time = xr.date_range("2000-01-01", periods=720, calendar="360_day", use_cftime=True)
    >>> da = xr.DataArray(np.arange(720.0), coords={"time": time}, name="tas")
    >>> t = Anomalies(freq="month").fit(da)
    >>> t.state["climatology"].values[:2]
    array([194.5, 224.5])
    >>> t.forward(da).values[[0, 360]]
    array([-194.5,  165.5])
    """

    _state_variables = ("climatology",)

    def __init__(
        self,
        freq: str = "dayofyear",
        dims: str | Sequence[str] | None = None,
        window: int | None = None,
    ) -> None:
        if freq not in ("dayofyear", "month"):
            raise ValueError(f"freq must be 'dayofyear' or 'month', got {freq!r}")
        if window is not None:
            check_int("window", window, 1)
        if window is not None and window % 2 == 0:
            raise ValueError(f"window must be a positive odd number, got {window}")
        self.freq, self.window = freq, window
        self.dims = None if dims is None else _as_dims(dims)
        super().__init__(freq=freq, dims=None if dims is None else list(self.dims), window=window)

    def _forward_units(self, units: str) -> str:
        return difference_units(units)

    def _fit(self, da: xr.DataArray) -> xr.Dataset:
        time, calendar = _time_axis(da)
        time_dim = time.dims[0]
        dims = self.dims or (time_dim,)
        if time_dim not in dims:
            raise InputDataError(
                f"variable {_label(da)}: dims {dims} must include the time dimension {time_dim!r}"
            )
        _check_dims(da, dims)
        n_slots = _DAYS_IN_TABLE[calendar] if self.freq == "dayofyear" else 12
        if self.window is not None and self.window > n_slots:
            raise ValueError(f"window {self.window} exceeds the {n_slots} {self.freq} slots")
        table = np.arange(1, n_slots + 1)
        slots = self._slots(time, calendar)
        if da.chunks is not None:
            slots = slots.chunk({time_dim: da.chunksizes[time_dim]})
        # one-hot (time, slot) matrix: group sums are contractions, lazy and chunk-bounded
        one_hot = (slots == xr.DataArray(table, coords={self.freq: table})).astype(float)
        sums = xr.dot(da.fillna(0), one_hot, dim=dims, optimize=True)
        counts = xr.dot(da.notnull().astype(float), one_hot, dim=dims, optimize=True)
        samples = one_hot.sum(time_dim)  # time steps per slot, whatever the NaNs
        if self.window is not None:
            sums, counts, samples = (
                _circular_window_sum(x, self.freq, self.window) for x in (sums, counts, samples)
            )
        climatology = sums / counts.where(counts > 0)
        empty = set(table[samples.values == 0].tolist())
        if self.freq == "dayofyear" and n_slots == 366 and _LEAP_DAY_SLOT in empty:
            neighbours = climatology.sel(dayofyear=[_LEAP_DAY_SLOT - 1, _LEAP_DAY_SLOT + 1])
            leap_day = neighbours.mean("dayofyear", skipna=False)
            climatology = xr.where(climatology.dayofyear == _LEAP_DAY_SLOT, leap_day, climatology)
            empty.discard(_LEAP_DAY_SLOT)
        if empty:
            raise InputDataError(
                f"variable {_label(da)}: the fit period has no sample for {self.freq} "
                f"{sorted(empty)}; a {self.freq} climatology needs at least one full year"
            )
        dtype = np.result_type(da.dtype, np.float32)  # float32 data: float32 climatology
        climatology = climatology.transpose(self.freq, ...).astype(dtype).compute()
        return xr.Dataset({"climatology": climatology}, attrs={"calendar": calendar})

    def _forward(self, da: xr.DataArray, state: xr.Dataset) -> xr.DataArray:
        return da - self._climatology_along_time(da, state)

    def _inverse(self, da: xr.DataArray, state: xr.Dataset) -> xr.DataArray:
        return da + self._climatology_along_time(da, state)

    def _climatology_along_time(self, da: xr.DataArray, state: xr.Dataset) -> xr.DataArray:
        time, calendar = _time_axis(da)
        fitted = state.attrs["calendar"]
        if self.freq == "dayofyear" and _DAYS_IN_TABLE[calendar] != _DAYS_IN_TABLE[fitted]:
            raise InputDataError(
                f"variable {_label(da)} is on the {calendar!r} calendar but its dayofyear "
                f"climatology was fitted on the {fitted!r} calendar; convert it first, "
                f"e.g. da.convert_calendar({fitted!r}, align_on='year')"
            )
        climatology = state["climatology"]
        if da.chunks is not None:
            climatology = climatology.chunk()
        along_time = climatology.sel({self.freq: self._slots(time, calendar)})
        along_time = along_time.drop_vars(self.freq)
        if da.chunks is not None:
            along_time = along_time.chunk({dim: da.chunksizes[dim] for dim in along_time.dims})
        _check_aligned(da, along_time)
        return along_time

    def _slots(self, time: xr.DataArray, calendar: str) -> xr.DataArray:
        """Slot (from 1) of each time step: the day in the calendar's table, or the month."""
        month = time.dt.month.values
        if self.freq == "month":
            slots = month
        else:
            first_days = np.cumsum((0, *_MONTH_LENGTHS[_DAYS_IN_TABLE[calendar]][:-1]))
            slots = first_days[month - 1] + time.dt.day.values
        return xr.DataArray(slots, dims=time.dims, coords=time.coords, name=self.freq)


class Pipeline(Transform, kind="pipeline"):
    """Chain transforms; ``fit`` fits each step on the output of the previous one.

    The state is one flat Dataset: the variables and attributes of step ``i`` carry
    the prefix ``step{i}_`` and the attribute ``n_steps`` counts the steps, so it
    survives a netCDF round trip without groups.

    Parameters
    ----------
    steps : sequence of Transform
        Applied in order by ``forward`` and in reverse order by ``inverse``.

    Examples
    --------
    >>> import xarray as xr
    >>> pr = xr.DataArray([0.0, 1.0, 3.0], dims="time", name="pr")
    >>> pipe = Pipeline([Log1p(), Standardize()]).fit(pr)
    >>> sorted(pipe.to_dataset().data_vars)
    ['step0_scale', 'step1_mean', 'step1_std']
    >>> pipe.inverse(pipe.forward(pr)).values.round(12)
    array([0., 1., 3.])
    """

    def __init__(self, steps: Sequence[Transform]) -> None:
        super().__init__()
        self.steps = list(steps or ())
        if not self.steps:
            raise ValueError("a Pipeline needs at least one step")
        for i, step in enumerate(self.steps):
            if not isinstance(step, Transform):
                raise TypeError(f"Pipeline step {i} is not a Transform: {step!r}")
            if any(step is other for other in self.steps[:i]):  # fitted twice: one state
                raise ValueError(f"Pipeline step {i} is step {self.steps.index(step)} again")

    def __repr__(self) -> str:
        return f"Pipeline({self.steps!r})"

    def _parts(self) -> dict[str, Transform]:
        """The steps, named as in the state (``step0``...): ``step0__dims`` is a parameter."""
        return {f"step{i}": step for i, step in enumerate(self.steps)}

    def _fit(self, da: xr.DataArray) -> xr.Dataset:
        previous = [
            (step, step._state, vars(step).get("_fit_params")) for step in self._transforms()
        ]
        try:
            for step in self.steps[:-1]:
                da = step.fit_forward(da)
            self.steps[-1].fit(da)
        except BaseException:  # a refused refit: every step keeps the previous fit
            for step, state, params in previous:
                step._state, step._fit_params = state, params
            raise
        parts, attrs = [], {"n_steps": len(self.steps)}
        for i, step in enumerate(self.steps):
            prefix = f"step{i}_"
            parts.append(step.state.rename({name: prefix + name for name in step.state.data_vars}))
            attrs.update({prefix + key: value for key, value in step.state.attrs.items()})
        state = xr.merge(parts, join="exact", compat="no_conflicts", combine_attrs="override")
        state.attrs = attrs
        return state

    def _transforms(self) -> list[Transform]:
        """The steps, and the steps of those that are pipelines: all that `fit` fits."""
        return [
            transform
            for step in self.steps
            for transform in (step, *(step._transforms() if isinstance(step, Pipeline) else ()))
        ]

    def _forward(self, da: xr.DataArray, state: xr.Dataset) -> xr.DataArray:
        return functools.reduce(lambda x, step: step.forward(x), self.steps, da)

    def _inverse(self, da: xr.DataArray, state: xr.Dataset) -> xr.DataArray:
        return functools.reduce(lambda x, step: step.inverse(x), reversed(self.steps), da)

    def _forward_units(self, units: str) -> str:
        return functools.reduce(lambda u, step: step._forward_units(u), self.steps, units)

    @classmethod
    def _from_state(cls, state: xr.Dataset) -> Pipeline:
        steps = []
        for i in range(int(state.attrs["n_steps"])):
            prefix = f"step{i}_"
            names = [name for name in state.data_vars if name.startswith(prefix)]
            step = state[names].rename({name: name.removeprefix(prefix) for name in names})
            step.attrs = {
                k.removeprefix(prefix): v for k, v in state.attrs.items() if k.startswith(prefix)
            }
            steps.append(transform_from_dataset(step))
        pipeline = cls(steps)
        pipeline._state = state
        pipeline._record_fit_params()
        return pipeline
