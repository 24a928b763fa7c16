"""The range an input took at ``fit``, and a check that new inputs are plausible beside it.

A model applied to values far outside what it was trained on extrapolates: one
unmasked fill value of 1e30 in a proxy gives precipitation of 1e21 kg m-2 s-1, and sea
level pressure in Pa labelled hPa looks like a 100-fold anomaly. Neither is an error a
unit check can see. :class:`FittedRange` keeps each input's minimum and maximum at
``fit`` and refuses new values beyond them by more than ``tolerance`` times the fitted
width on either side (5 by default: a climate-change signal stays far inside, a unit
or fill-value mistake lands far outside), naming the variable, how many values and
where the first one is. Dask-backed inputs are checked block by block as they are
computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from climlatent.errors import InputDataError
from climlatent.graph_node import model_node

__all__ = ["RANGE_TOLERANCE", "FittedRange"]

RANGE_TOLERANCE = 5.0  # fitted widths allowed beyond the fitted range, each side
#: Training values this many typical magnitudes from the median are fill values.
GROSS = 1e6


@dataclass(frozen=True)
class FittedRange:
    """Minimum and maximum of one input variable at ``fit``, in the fitted units.

    Examples
    --------
    >>> da = xr.DataArray([280.0, 300.0], dims="time", coords={"time": [0, 1]}, name="tas",
    ...                   attrs={"units": "K"})
    >>> fitted = FittedRange.of(da)
    >>> fitted.bounds(5.0)
    (180.0, 400.0)
    >>> fitted.check(da.copy(data=[290.0, 1e30]), "proxy", 5.0)
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: proxy variable 'tas' has 1 value(s) outside ...
    """

    name: str
    minimum: float
    maximum: float

    @classmethod
    def of(cls, da: xr.DataArray) -> FittedRange:
        """The finite range of ``da``."""
        finite = da.where(np.isfinite(da))
        return cls(str(da.name), float(finite.min()), float(finite.max()))

    @classmethod
    def fit(cls, da: xr.DataArray, role: str, tolerance: float | None) -> FittedRange:
        """The finite range of training data ``da``, after refusing outliers in it.

        An unmasked fill value in the training data is refused, as on apply: values
        beyond the 0.1 and 99.9 % quantiles by more than ``tolerance`` times their
        spread, and, however many they are (up to half the values, when those
        quantiles are fill values themselves), values farther from the median than
        ``GROSS`` times the larger of its magnitude and the median absolute deviation.
        None skips both checks.

        Examples
        --------
        >>> psl = np.full(64, 1.0e5) + np.arange(64.0)
        >>> psl[:2] = 1e20  # 3 % of the values: the 99.9 % quantile is one of them
        >>> FittedRange.fit(xr.DataArray(psl, dims="cell", name="psl",
        ...                 attrs={"units": "Pa"}), "proxy", 5.0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        climlatent.errors.InputDataError: proxy variable 'psl' has 2 value(s) outside ...
        """
        values = np.asarray(da.values, float)
        values = values[np.isfinite(values)]
        if tolerance is None or not values.size:
            return cls.of(da)
        low, high, median = np.quantile(values, [0.001, 0.999, 0.5])
        cls(str(da.name), float(low), float(high)).check(da, role, tolerance, training=True)
        spread = max(abs(median), float(np.median(np.abs(values - median))))
        if spread > 0:  # GROSS / 2 widths of 2 spreads: GROSS + 1 spreads from the median
            gross = cls(str(da.name), float(median - spread), float(median + spread))
            gross.check(da, role, GROSS / 2, training=True)
        return cls.of(da)

    def bounds(self, tolerance: float) -> tuple[float, float]:
        """Plausible values: the fitted range widened by ``tolerance`` widths each side."""
        width = max(self.maximum - self.minimum, 1e-6 * max(abs(self.maximum), 1e-30))
        return self.minimum - tolerance * width, self.maximum + tolerance * width

    def check(
        self, da: xr.DataArray, role: str, tolerance: float | None, training: bool = False
    ) -> xr.DataArray:
        """``da`` unchanged, or an `InputDataError` if it holds implausible values.

        Parameters
        ----------
        da : xr.DataArray
            New data in the fitted units.
        role : str
            Its role, named in the message.
        tolerance : float, optional
            Fitted widths allowed beyond the fitted range; None skips the check.
        training : bool
            ``da`` is training data (the message says to mask it, not to skip checks).

        Returns
        -------
        xr.DataArray
            ``da``; when dask-backed, with the check run on each block at compute time.
        """
        if tolerance is None:
            return da
        labels = _Labels.of(da)
        if da.chunks is None:
            _check_block(np.asarray(da.values), self, role, tolerance, labels, training)
            return da
        import dask.array

        checked = dask.array.map_blocks(
            _check_block,
            da.data,
            fitted=self,
            role=role,
            tolerance=tolerance,
            labels=model_node(labels, "labels"),
            training=training,
            dtype=da.dtype,
            meta=da.data._meta,
        )
        return da.copy(data=checked)


@dataclass(frozen=True)
class _Labels:
    """What a message names of a field: its units, dims and their coordinates."""

    units: str
    dims: tuple[str, ...]
    coords: dict[str, np.ndarray]

    @classmethod
    def of(cls, da: xr.DataArray) -> _Labels:
        coords = {dim: da[dim].values for dim in da.dims if dim in da.coords}
        return cls(da.attrs.get("units", ""), tuple(map(str, da.dims)), coords)

    def at(self, index: tuple[int, ...]) -> str:
        """``dim=label, ...`` of the value at ``index``: coordinate values, else indices."""
        return ", ".join(
            f"{dim}={_label(self.coords[dim][i]) if dim in self.coords else i}"
            for dim, i in zip(self.dims, index, strict=True)
        )


def _check_block(
    values: np.ndarray,
    fitted: FittedRange,
    role: str,
    tolerance: float,
    labels: _Labels,
    training: bool = False,
    block_info: dict | None = None,
) -> np.ndarray:
    """``values`` (a block of a field), or an `InputDataError` naming its first bad value."""
    low, high = fitted.bounds(tolerance)
    # Two NaN-skipping reductions clear a plausible block (the common case) at an
    # eighth of the cost of the masks below, which find and name the bad values.
    plausible = values.size and low <= np.fmin.reduce(values, axis=None)
    if plausible and np.fmax.reduce(values, axis=None) <= high:
        return values
    bad = np.isinf(values) | (values < low) | (values > high)
    n_bad = int(bad.sum())
    if n_bad:
        first = np.unravel_index(int(np.argmax(bad)), bad.shape)
        location = block_info[0]["array-location"] if block_info else [(0, 0)] * values.ndim
        where = labels.at(
            tuple(int(i) + start for i, (start, _) in zip(first, location, strict=True))
        )
        whole = not block_info or tuple(block_info[0]["shape"]) == values.shape
        count, which = (
            (f"{n_bad}", "the first") if whole else (f"at least {n_bad}", "one in a block")
        )  # a lazy field is checked block by block, in whatever order they are computed
        raise InputDataError(
            f"{role} variable {fitted.name!r} has {count} value(s) outside the plausible "
            f"range [{low:.4g}, {high:.4g}] {labels.units} (the fitted range "
            f"[{fitted.minimum:.4g}, {fitted.maximum:.4g}] widened {tolerance:g} times its "
            f"width each side); {which} is {float(values[first]):.4g} at {where}. An "
            f"unmasked fill value, or units that do not match the data? "
            + (
                "Mask it before fitting (.where(), or a _FillValue attribute in its file, "
                "which opening the file applies)"
                if training
                else "To apply the model anyway, pass check_range=False (on the command "
                "line: --no-range-check)"
            )
        )
    return values


def _label(value: object) -> str:
    """A coordinate value as a message names it."""
    return str(value)[:19] if not isinstance(value, float | np.floating) else f"{value:g}"
