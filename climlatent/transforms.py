"""Fitted, invertible, serialisable preprocessing of climate fields (no torch here).

A transform's ``state`` is an :class:`xarray.Dataset`: fitted parameters as variables
with coordinates; kind, hyper-parameters (JSON) and fitted units as attributes. It goes
through ``to_netcdf`` and back with :func:`transform_from_dataset`, without pickle.
"""

from __future__ import annotations

import abc
import functools
import json
import operator
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import xarray as xr

from climlatent._transforms import (
    _DAYS_IN_TABLE,
    _LEAP_DAY_SLOT,
    _MONTH_LENGTHS,
    _as_dims,
    _check_aligned,
    _check_dataarray,
    _check_dims,
    _circular_window_sum,
    _clip_round_off,
    _label,
    _like,
    _then,
    _time_axis,
)
from climlatent.errors import InputDataError, NotFittedError
from climlatent.units import difference_units

_REGISTRY: dict[str, type[Transform]] = {}
#: A standard deviation at most this fraction of the mean's magnitude is round-off of
#: a constant cell (float64 sums of n identical values err by ~n * 1e-16 relative).
CONSTANT_RTOL = 1e-10


class Transform(abc.ABC):
    """Base class: a fitted, invertible, serialisable map of a DataArray.

    Subclasses register under a ``kind`` (``class X(Transform, kind="x")``) and
    supply ``_fit`` (data -> state Dataset), ``_forward`` and ``_inverse``; the
    public methods here do the checks and the metadata once. Outputs keep the
    input's name, coordinates and attributes, with ``units`` updated where the
    transform changes them. Dask input stays lazy; ``fit`` computes statistics.

    Parameters
    ----------
    **params
        Hyper-parameters, JSON-serialisable keyword arguments of the subclass's
        constructor; kept as the ``params`` attribute and in the state.

    Examples
    --------
    >>> import xarray as xr
    >>> da = xr.DataArray([1.0, 2.0, 3.0], dims="time", name="tas", attrs={"units": "K"})
    >>> t = Standardize().fit(da)
    >>> t.inverse(t.forward(da)).values
    array([1., 2., 3.])
    """

    kind: ClassVar[str]
    _state_variables: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, kind: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kind is not None:
            cls.kind = kind
            _REGISTRY[kind] = cls

    def __init__(self, **params: Any) -> None:
        self.params = params
        self._state: xr.Dataset | None = None

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"{type(self).__name__}({args})"

    @property
    def state(self) -> xr.Dataset:
        """Fitted parameters; raises :class:`~climlatent.errors.NotFittedError` before fit.

        Examples
        --------
        >>> Standardize().fit(xr.DataArray([1.0, 3.0], dims="time")).state["mean"].item()
        2.0
        """
        if self._state is None:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted: call fit(da) first, "
                "or rebuild it from its Dataset with transform_from_dataset"
            )
        return self._state

    def fit(self, da: xr.DataArray) -> Transform:
        """Learn the parameters from ``da``; return ``self``.

        Examples
        --------
        >>> Standardize().fit(xr.DataArray([0.0, 2.0], dims="time")).state["std"].item()
        1.0
        """
        _check_dataarray(da)
        state = self._fit(da)
        for variable in state.variables.values():
            variable.encoding = {}
        state.attrs.update(transform=self.kind, params=json.dumps(self.params, sort_keys=True))
        if "units" in da.attrs:
            state.attrs["input_units"] = da.attrs["units"]
        self._state = state
        return self

    def forward(self, da: xr.DataArray) -> xr.DataArray:
        """Map ``da`` to the transformed space, keeping its coordinates and attributes.

        Examples
        --------
        >>> da = xr.DataArray([0.0, 2.0], dims="time", attrs={"units": "K"})
        >>> out = Standardize().fit(da).forward(da)
        >>> out.values, out.attrs["units"]
        (array([-1.,  1.]), '1')
        """
        state = self.state
        _check_dataarray(da)
        fitted_units = state.attrs.get("input_units")
        units = da.attrs.get("units", fitted_units)
        if fitted_units is not None and units != fitted_units:
            raise InputDataError(
                f"variable {_label(da)} has units {units!r} but {type(self).__name__} "
                f"was fitted on units {fitted_units!r}"
            )
        new_units = None if units is None else self._forward_units(units)
        return _like(da, self._forward(da, state), new_units)

    def inverse(self, da: xr.DataArray) -> xr.DataArray:
        """Map transformed data back, restoring the fitted ``units``.

        Examples
        --------
        >>> t = Standardize().fit(xr.DataArray([0.0, 2.0], dims="time", attrs={"units": "K"}))
        >>> t.inverse(xr.DataArray([1.0], dims="time")).attrs["units"]
        'K'
        """
        state = self.state
        _check_dataarray(da)
        return _like(da, self._inverse(da, state), state.attrs.get("input_units"))

    def fit_forward(self, da: xr.DataArray) -> xr.DataArray:
        """Fit on ``da`` and return ``forward(da)``.

        Examples
        --------
        >>> Standardize().fit_forward(xr.DataArray([0.0, 2.0], dims="time")).values
        array([-1.,  1.])
        """
        return self.fit(da).forward(da)

    def to_dataset(self) -> xr.Dataset:
        """Return a copy of the state, ready for ``to_netcdf``.

        Examples
        --------
        >>> Standardize().fit(xr.DataArray([0.0, 2.0], dims="time")).to_dataset().attrs["transform"]
        'standardize'
        """
        return self.state.copy(deep=True)

    def _forward_units(self, units: str) -> str:
        """Units of the transformed data, given the units of the input."""
        return units

    @classmethod
    def _from_state(cls, state: xr.Dataset) -> Transform:
        missing = sorted(set(cls._state_variables) - set(state.data_vars))
        if missing:
            raise InputDataError(f"{cls.__name__} state Dataset lacks variables {missing}")
        transform = cls(**json.loads(state.attrs["params"]))
        transform._state = state
        return transform

    @abc.abstractmethod
    def _fit(self, da: xr.DataArray) -> xr.Dataset: ...

    @abc.abstractmethod
    def _forward(self, da: xr.DataArray, state: xr.Dataset) -> xr.DataArray: ...

    @abc.abstractmethod
    def _inverse(self, da: xr.DataArray, state: xr.Dataset) -> xr.DataArray: ...


def transform_from_dataset(ds: xr.Dataset) -> Transform:
    """Rebuild a fitted transform from the Dataset made by ``to_dataset``.

    The ``transform`` attribute names a registered class; no code is executed.

    Parameters
    ----------
    ds : xarray.Dataset
        A state, e.g. read back with ``xr.open_dataset``; it is loaded into memory.

    Returns
    -------
    Transform
        The fitted transform, giving the same results as the one saved.

    Examples
    --------
    >>> import xarray as xr
    >>> da = xr.DataArray([0.0, 2.0], dims="time", name="tas")
    >>> t = transform_from_dataset(Standardize().fit(da).to_dataset())
    >>> t, t.forward(da).values
    (Standardize(dims=['time']), array([-1.,  1.]))
    """
    kind = ds.attrs.get("transform")
    cls = _REGISTRY.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InputDataError(
            f"Dataset attribute 'transform'={kind!r} names no known transform; "
            f"expected one of {sorted(_REGISTRY)}"
        )
    return cls._from_state(ds.compute())


class Standardize(Transform, kind="standardize"):
    """Subtract the mean and divide by the standard deviation, per grid cell.

    Statistics are taken over the sample ``dims``, skipping NaNs, so masked cells stay
    NaN. Cells with zero variance (a std within ``CONSTANT_RTOL`` of the mean: round-off)
    are divided by 1 rather than 0: they map to 0 (to round-off) and back exactly. The
    statistics are summed in float64 (a float32 sum of 36500 pressures near 101325 Pa
    is 1.5 Pa off) and kept in the field's dtype. Output units are ``"1"``.

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
        std = da.std(self.dims, skipna=True, dtype=np.float64)
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
        if window is not None and (window < 1 or window % 2 == 0):
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


class _NonNegativeTransform(Transform):
    """Shared face of the precipitation transforms: x >= 0 in, x >= 0 back.

    ``forward`` sets values in ``[-tolerance, 0)`` (round-off from regridding) to 0
    and raises :class:`InputDataError` on anything more negative (on dask input when
    computed); ``inverse`` clips negative transformed values, which a model can
    produce, to 0 before mapping back.
    """

    def __init__(self, tolerance: float, **params: Any) -> None:
        if tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance}")
        self.tolerance = float(tolerance)
        super().__init__(**params, tolerance=self.tolerance)

    def _fit(self, da: xr.DataArray) -> xr.Dataset:
        return xr.Dataset()

    def _forward(self, da: xr.DataArray, state: xr.Dataset) -> xr.DataArray:
        clipped = xr.apply_ufunc(
            _clip_round_off,
            da,
            kwargs={"tolerance": self.tolerance, "label": _label(da), "kind": type(self).__name__},
            dask="parallelized",
            output_dtypes=[da.dtype],
        )
        return self._map(clipped)

    def _inverse(self, da: xr.DataArray, state: xr.Dataset) -> xr.DataArray:
        return self._unmap(da.clip(min=0))

    @abc.abstractmethod
    def _map(self, x: xr.DataArray) -> xr.DataArray: ...

    @abc.abstractmethod
    def _unmap(self, y: xr.DataArray) -> xr.DataArray: ...


class Log1p(_NonNegativeTransform, kind="log1p"):
    """``log1p(x / scale)`` for precipitation; ``inverse`` is ``scale * expm1(y)``.

    Output units are ``"1"``. Values down to ``-tolerance`` are regridding round-off
    and become 0; more negative ones raise :class:`~climlatent.errors.InputDataError`.
    ``inverse`` clips negative inputs to 0, so precipitation comes back >= 0.

    Parameters
    ----------
    scale : float
        Positive amount, in the data's units, where the map turns from linear to log.
    tolerance : float
        Largest negative round-off, in the data's units, silently set to 0.

    Examples
    --------
    >>> import xarray as xr
    >>> pr = xr.DataArray([0.0, 1.0, -1e-12], dims="time", name="pr", attrs={"units": "mm d-1"})
    >>> out = Log1p(scale=1.0).fit_forward(pr)
    >>> out.values.round(4), out.attrs["units"]
    (array([0.    , 0.6931, 0.    ]), '1')
    """

    def __init__(self, scale: float = 1.0, tolerance: float = 1e-9) -> None:
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.scale = float(scale)
        super().__init__(tolerance, scale=self.scale)

    def _map(self, x: xr.DataArray) -> xr.DataArray:
        return np.log1p(x / self.scale)

    def _unmap(self, y: xr.DataArray) -> xr.DataArray:
        return self.scale * np.expm1(y)

    def _forward_units(self, units: str) -> str:
        return "1"


class PowerTransform(_NonNegativeTransform, kind="power"):
    """``x ** exponent`` for precipitation; ``inverse`` is ``y ** (1 / exponent)``.

    The default exponent 1/3 (cube root) brings gamma-like daily precipitation close
    to Gaussian (Wilson-Hilferty). Output units read ``"(<units>)^<exponent>"``, a
    label rather than a UDUNITS string. Negative values are handled as in
    :class:`Log1p`.

    Parameters
    ----------
    exponent : float
        Positive exponent.
    tolerance : float
        Largest negative round-off, in the data's units, silently set to 0.

    Examples
    --------
    >>> import xarray as xr
    >>> pr = xr.DataArray([0.0, 8.0, 27.0], dims="time", name="pr", attrs={"units": "mm d-1"})
    >>> out = PowerTransform().fit_forward(pr)
    >>> out.values.round(6), out.attrs["units"]
    (array([0., 2., 3.]), '(mm d-1)^0.333333')
    """

    def __init__(self, exponent: float = 1 / 3, tolerance: float = 1e-9) -> None:
        if not exponent > 0:
            raise ValueError(f"exponent must be > 0, got {exponent}")
        self.exponent = float(exponent)
        super().__init__(tolerance, exponent=self.exponent)

    def _map(self, x: xr.DataArray) -> xr.DataArray:
        return x**self.exponent

    def _unmap(self, y: xr.DataArray) -> xr.DataArray:
        return y ** (1 / self.exponent)

    def _forward_units(self, units: str) -> str:
        return f"({units})^{self.exponent:g}"


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
    ['step1_mean', 'step1_std']
    >>> pipe.inverse(pipe.forward(pr)).values.round(12)
    array([0., 1., 3.])
    """

    def __init__(self, steps: Sequence[Transform]) -> None:
        super().__init__()
        if not steps:
            raise ValueError("a Pipeline needs at least one step")
        self.steps = list(steps)

    def __repr__(self) -> str:
        return f"Pipeline({self.steps!r})"

    def _fit(self, da: xr.DataArray) -> xr.Dataset:
        for step in self.steps[:-1]:
            da = step.fit_forward(da)
        self.steps[-1].fit(da)
        parts, attrs = [], {"n_steps": len(self.steps)}
        for i, step in enumerate(self.steps):
            prefix = f"step{i}_"
            parts.append(step.state.rename({name: prefix + name for name in step.state.data_vars}))
            attrs.update({prefix + key: value for key, value in step.state.attrs.items()})
        state = xr.merge(parts, join="exact", compat="no_conflicts", combine_attrs="override")
        state.attrs = attrs
        return state

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
        return pipeline
