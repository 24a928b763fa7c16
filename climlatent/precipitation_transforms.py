"""The transforms of a non-negative field (precipitation): log1p and a power law.

Both take values >= 0 (negative round-off from regridding set to 0, anything more
negative refused) and map back to values >= 0, what a model put below 0 set to 0 and
counted.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np
import xarray as xr

from climlatent._transforms import _clip_round_off, _label
from climlatent.checks import check_number
from climlatent.errors import InputDataError
from climlatent.physical_bounds import clip_to_bounds
from climlatent.transform_base import Transform


class _NonNegativeTransform(Transform):
    """Shared face of the precipitation transforms: x >= 0 in, x >= 0 back.

    ``forward`` sets values in ``[-tolerance, 0)`` (round-off from regridding) to 0
    and raises :class:`InputDataError` on anything more negative (on dask input when
    computed). A model can produce transformed values below the image of 0, which map
    back below 0: ``inverse`` sets those to 0 (a dry cell, as a censored model reads
    it) and counts them in the attribute ``climlatent_clipped`` (`clip_to_bounds`).
    """

    _runtime_params = frozenset({"tolerance"})  # read by forward alone

    def __init__(self, tolerance: float, **params: Any) -> None:
        check_number("tolerance", tolerance)  # NaN: no value was ever refused
        if tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance}")
        self.tolerance = float(tolerance)
        super().__init__(**params, tolerance=self.tolerance)

    def inverse(self, da: xr.DataArray) -> xr.DataArray:  # noqa: D102 (the base's, clipped)
        return clip_to_bounds(super().inverse(da), (0.0, None))

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
        return self._map(clipped, state)

    def _inverse(self, da: xr.DataArray, state: xr.Dataset) -> xr.DataArray:
        return self._unmap(da, state)

    @abc.abstractmethod
    def _map(self, x: xr.DataArray, state: xr.Dataset) -> xr.DataArray: ...

    @abc.abstractmethod
    def _unmap(self, y: xr.DataArray, state: xr.Dataset) -> xr.DataArray:
        """The inverse map, extended below the image of 0 (to values below 0)."""


class Log1p(_NonNegativeTransform, kind="log1p"):
    """``log1p(x / scale)`` for precipitation; ``inverse`` is ``scale * expm1(y)``.

    Output units are ``"1"``. Values down to ``-tolerance`` are regridding round-off
    and become 0; more negative ones raise :class:`~climlatent.errors.InputDataError`.
    ``inverse`` sets what maps back below 0 to 0, and counts it (``climlatent_clipped``).

    Parameters
    ----------
    scale : float, optional
        Positive amount, in the data's units, where the map turns from linear to log.
        By default it is fitted: the mean of the data, so the map is the same on the
        same data in any units (a fixed 1 is the identity on kg m-2 s-1, where daily
        precipitation is ~3e-5, and a log on mm d-1).
    tolerance : float
        Largest negative round-off, in the data's units, silently set to 0.

    Examples
    --------
    >>> import xarray as xr
    >>> pr = xr.DataArray([0.0, 1.0, -1e-12], dims="time", name="pr", attrs={"units": "mm d-1"})
    >>> out = Log1p(scale=1.0).fit_forward(pr)
    >>> out.values.round(4), out.attrs["units"]
    (array([0.    , 0.6931, 0.    ]), '1')

    The fitted scale (the mean, 2 mm d-1 here) makes the same map in any units:

    >>> mm = xr.DataArray([0.0, 2.0, 4.0], dims="time", name="pr", attrs={"units": "mm d-1"})
    >>> si = (mm / 86400).assign_attrs(units="kg m-2 s-1")
    >>> Log1p().fit_forward(mm).values.round(4), Log1p().fit_forward(si).values.round(4)
    (array([0.    , 0.6931, 1.0986]), array([0.    , 0.6931, 1.0986]))
    """

    def __init__(self, scale: float | None = None, tolerance: float = 1e-9) -> None:
        if scale is not None:
            check_number("scale", scale, low=0)  # inf: every value mapped to 0
        self.scale = None if scale is None else float(scale)
        super().__init__(tolerance, scale=self.scale)

    def _fit(self, da: xr.DataArray) -> xr.Dataset:
        if self.scale is not None:
            return xr.Dataset()
        mean = float(da.clip(min=0).mean(dtype=np.float64))
        if not mean > 0:
            raise InputDataError(
                f"variable {_label(da)} has no positive values to fit the log1p scale "
                f"from; give Log1p(scale=...) in its units"
            )
        units = {"units": da.attrs["units"]} if "units" in da.attrs else {}
        return xr.Dataset({"scale": ((), mean, units)})

    def _scale(self, state: xr.Dataset) -> float:
        return self.scale if self.scale is not None else float(state["scale"])

    def _map(self, x: xr.DataArray, state: xr.Dataset) -> xr.DataArray:
        return np.log1p(x / self._scale(state))

    def _unmap(self, y: xr.DataArray, state: xr.Dataset) -> xr.DataArray:
        return self._scale(state) * np.expm1(y)

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
        check_number("exponent", exponent, low=0)  # inf: values above 1 mapped to inf
        self.exponent = float(exponent)
        super().__init__(tolerance, exponent=self.exponent)

    def _map(self, x: xr.DataArray, state: xr.Dataset) -> xr.DataArray:
        return x**self.exponent

    def _unmap(self, y: xr.DataArray, state: xr.Dataset) -> xr.DataArray:
        return np.sign(y) * abs(y) ** (1 / self.exponent)

    def _forward_units(self, units: str) -> str:
        return f"({units})^{self.exponent:g}"
