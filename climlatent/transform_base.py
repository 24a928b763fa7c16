"""The base of climlatent's transforms: a fitted, invertible, serialisable map.

A transform's ``state`` is an :class:`xarray.Dataset`: fitted parameters as variables
with coordinates; kind, hyper-parameters (JSON) and fitted units as attributes. It goes
through ``to_netcdf`` and back with :func:`transform_from_dataset`, without pickle.
The transforms themselves are in :mod:`climlatent.transforms`.
"""

from __future__ import annotations

import abc
import json
from typing import Any, ClassVar

import xarray as xr

from climlatent._params import ParamsMixin
from climlatent._transforms import _check_dataarray, _label, _like
from climlatent.errors import InputDataError, NotFittedError
from climlatent.packing import VALID_LIMITS

_REGISTRY: dict[str, type[Transform]] = {}


class Transform(ParamsMixin, abc.ABC):
    """Base class: a fitted, invertible, serialisable map of a DataArray.

    Subclasses register under a ``kind`` (``class X(Transform, kind="x")``) and
    supply ``_fit`` (data -> state Dataset), ``_forward`` and ``_inverse``; the
    public methods here do the checks and the metadata once. Outputs keep the
    input's name, coordinates and attributes, with ``units`` updated where the
    transform changes them; ``forward`` drops the ``standard_name`` (a standardised
    temperature or an anomaly is not ``air_temperature``) and the valid range (in the
    input's units, it would mask the transformed values in a file). Dask input stays
    lazy; ``fit`` computes statistics.

    Parameters
    ----------
    **params
        Hyper-parameters, JSON-serialisable keyword arguments of the subclass's
        constructor; kept as the ``params`` attribute and in the state.

    Examples
    --------
    >>> from climlatent.transforms import Standardize
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

        And a `~climlatent.errors.StaleFitError` once a parameter shaping them changed.

        Examples
        --------
        >>> from climlatent.transforms import Standardize
        >>> Standardize().fit(xr.DataArray([1.0, 3.0], dims="time")).state["mean"].item()
        2.0
        """
        if self._state is None:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted: call fit(da) first, "
                "or rebuild it from its Dataset with transform_from_dataset"
            )
        self._check_fit_params()
        return self._state

    def fit(self, da: xr.DataArray) -> Transform:
        """Learn the parameters from ``da``; return ``self``.

        Examples
        --------
        >>> from climlatent.transforms import Standardize
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
        self._record_fit_params()
        return self

    def forward(self, da: xr.DataArray) -> xr.DataArray:
        """Map ``da`` to the transformed space, keeping its coordinates and attributes.

        Examples
        --------
        >>> from climlatent.transforms import Standardize
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
        out = _like(da, self._forward(da, state), new_units)
        for key in ("standard_name", *VALID_LIMITS):  # the input's, not the output's
            out.attrs.pop(key, None)
        return out

    def inverse(self, da: xr.DataArray) -> xr.DataArray:
        """Map transformed data back, restoring the fitted ``units``.

        Examples
        --------
        >>> from climlatent.transforms import Standardize
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
        >>> from climlatent.transforms import Standardize
        >>> Standardize().fit_forward(xr.DataArray([0.0, 2.0], dims="time")).values
        array([-1.,  1.])
        """
        return self.fit(da).forward(da)

    def to_dataset(self) -> xr.Dataset:
        """Return a copy of the state, ready for ``to_netcdf``.

        Examples
        --------
        >>> from climlatent.transforms import Standardize
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
        transform._record_fit_params()  # the state's parameters are the fit's
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
    >>> from climlatent.transforms import Standardize
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
