"""Seasonal grouping of a time axis, with the meaning of xsdba's ``Grouper``.

A :class:`Grouper` splits a fit by season, as the ``group=`` option of xsdba's
adjustments does: ``"time"`` (one group, the whole series), ``"time.month"`` (12
groups), ``"time.season"`` (DJF, MAM, JJA, SON) or ``"time.dayofyear"`` (one group
per day of the year), the last optionally with a centred moving window of
``window`` time steps, ``Grouper("time.dayofyear", window=31)`` or the string
``"time.dayofyear:31"``.

Its meaning follows ``xsdba.base.Grouper`` (xsdba 0.7):

- a step's day of the year is its calendar's (cftime's and pandas' ``dayofyear``): 1
  to 360 in a ``360_day`` calendar, 1 to 365 in ``noleap``, 1 to 366 in ``all_leap``
  and, in leap years, in the ``standard``/``proleptic_gregorian`` calendars (where
  every day after 28 February is one later than in other years, and 31 December is
  day 366). The groups are those of xsdba's ``Grouper.get_coordinate``: 360, 365 or
  366 days by calendar.
- a window gathers, for the group of each step, the ``window`` steps centred on it
  along the time axis (xarray's ``rolling(center=True)``: offsets ``-(window // 2)``
  to ``window - window // 2 - 1``), truncated at the ends of the series. Steps are
  consecutive along the axis, so the window of 1 January takes the last days of
  December of the year before: it wraps across the year end. A step enters a group
  as often as a window of that group holds it (once, for daily data).

A fit has the groups its record holds (:meth:`Grouper.groups_of`; annual data
grouped by month has one), each with at least ``MIN_STEPS`` distinct steps;
:meth:`Grouper.weights` gives which steps each group's fit takes (and how often),
:meth:`Grouper.index` the group of each step on applying (a step of a group without
training data is refused). ``row_index`` and ``row_weights`` repeat them for the
rows of a sample matrix (:func:`climlatent.batching.to_matrix`), and
:func:`group_mean` is the weighted mean of rows per group, :func:`group_log_mean_exp` the
log of the mean of their exponentials.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import cftime
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import logsumexp

from climlatent.errors import InputDataError
from climlatent.grid import find_time

__all__ = [
    "MIN_STEPS",
    "SEASONS",
    "Grouper",
    "group_log_mean_exp",
    "group_mean",
    "new_sample_variance",
]

PROPERTIES = ("group", "month", "season", "dayofyear")  # xsdba's Grouper.prop
SEASONS = ("DJF", "MAM", "JJA", "SON")
MIN_STEPS = 2  # distinct time steps a group's fit needs, by default
DAYS_IN_YEAR = {  # the longest year of each CF calendar: xsdba.base.max_doy
    "standard": 366,
    "gregorian": 366,
    "proleptic_gregorian": 366,
    "julian": 366,
    "noleap": 365,
    "365_day": 365,
    "all_leap": 366,
    "366_day": 366,
    "360_day": 360,
}
_HELP = (
    "use 'time' (no grouping), 'time.month', 'time.season' or 'time.dayofyear' "
    "(with a window of steps: 'time.dayofyear:31')"
)


@dataclasses.dataclass(frozen=True)
class Grouper:
    """How a fit is split along the time axis: by month, season or day of the year.

    Parameters
    ----------
    group : str
        ``"<dim>"`` (no grouping) or ``"<dim>.month"``, ``"<dim>.season"``,
        ``"<dim>.dayofyear"``, where ``<dim>`` is the time dimension (``"time"``).
    window : int
        For ``dayofyear``: the number of time steps of the centred moving window
        whose steps each day's group takes (1: that day only). Other groups take
        none.

    Raises
    ------
    ValueError
        An unknown group, a window below 1, or a window on any group but
        ``dayofyear``.

    Examples
    --------
    >>> import xarray as xr
    >>> time = xr.date_range("2000-11-01", periods=4, freq="MS", calendar="360_day",
    ...                      use_cftime=True)
    >>> grouper = Grouper.parse("time.season")
    >>> grouper.label(xr.DataArray(time, dims="time")).values.tolist()
    ['SON', 'DJF', 'DJF', 'DJF']
    >>> str(Grouper("time.dayofyear", window=31))
    'time.dayofyear:31'
    """

    group: str = "time"
    window: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.group, str):
            raise TypeError(f"group must be a str, got {self.group!r}; {_HELP}")
        dim, _, prop = self.group.partition(".")
        if not dim or (prop or "group") not in PROPERTIES:
            raise ValueError(f"unknown group {self.group!r}: {_HELP}")
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ValueError(f"window must be an int >= 1 (time steps), got {self.window!r}")
        if self.window > 1 and prop != "dayofyear":
            raise ValueError(
                f"group {self.group!r} takes no window (got window={self.window}): a window "
                f"widens day-of-year groups only; use 'time.dayofyear' with window="
                f"{self.window}, or no window"
            )

    @classmethod
    def parse(cls, spec: str | Grouper) -> Grouper:
        """A Grouper from its string form (``"time.month"``, ``"time.dayofyear:31"``).

        Examples
        --------
        >>> Grouper.parse("time.dayofyear:31").window
        31
        >>> Grouper.parse("time.week")
        Traceback (most recent call last):
        ...
        ValueError: unknown group 'time.week': use 'time' (no grouping), ...
        """
        if isinstance(spec, Grouper):
            return spec
        if not isinstance(spec, str):
            raise TypeError(f"group must be a str or a Grouper, got {spec!r}; {_HELP}")
        group, colon, window = spec.partition(":")
        if colon and not window.isdigit():
            raise ValueError(f"group {spec!r}: the window after ':' must be a whole number")
        return cls(group, int(window) if colon else 1)

    def __str__(self) -> str:
        return self.group if self.window == 1 else f"{self.group}:{self.window}"

    @property
    def dim(self) -> str:
        """The time dimension grouped (before the dot)."""
        return self.group.partition(".")[0]

    @property
    def prop(self) -> str:
        """``month``, ``season``, ``dayofyear``, or ``group`` for no grouping (xsdba's)."""
        return self.group.partition(".")[2] or "group"

    @property
    def seasonal(self) -> bool:
        """Whether the fit is split (every group but ``"time"``)."""
        return self.prop != "group"

    # -- groups and the group of each step ---------------------------------------------

    def coordinate(self, calendar: str = "standard") -> xr.DataArray:
        """The groups' labels, in the order of their indices (xsdba's ``get_coordinate``).

        ``group``: ``[1]``; ``month``: 1 to 12; ``season``: DJF, MAM, JJA, SON;
        ``dayofyear``: 1 to the calendar's longest year (360, 365 or 366).

        Examples
        --------
        >>> Grouper.parse("time.dayofyear").coordinate("360_day").size
        360
        """
        if self.prop == "dayofyear" and calendar not in DAYS_IN_YEAR:
            raise InputDataError(
                f"group {str(self)!r}: unknown calendar {calendar!r} "
                f"(known: {', '.join(DAYS_IN_YEAR)})"
            )
        values = {
            "group": [1],
            "month": np.arange(1, 13),
            "season": list(SEASONS),
            "dayofyear": np.arange(1, DAYS_IN_YEAR.get(calendar, 366) + 1),
        }[self.prop]
        return xr.DataArray(values, dims=self.prop, name=self.prop)

    def groups_of(self, time: xr.DataArray, min_steps: int = MIN_STEPS) -> xr.DataArray:
        """The groups a fit on ``time`` has: those its steps fall in, in label order.

        A record need not cover the year (annual data grouped by month has one
        group); a step of a group without training data is refused on applying.

        Raises
        ------
        InputDataError
            A group has steps, but (window included) fewer than ``min_steps``
            distinct ones; the groups are named.

        Examples
        --------
        >>> import pandas as pd
        >>> time = xr.DataArray(pd.date_range("2000-06-01", periods=8, freq="MS"), dims="time")
        >>> Grouper.parse("time.season").groups_of(time).values.tolist()
        ['DJF', 'JJA', 'SON']
        >>> Grouper.parse("time.month").groups_of(time)
        Traceback (most recent call last):
        ...
        climlatent.errors.InputDataError: group 'time.month' needs at least 2 time steps ...
        """
        coordinate = self._coordinate_of(time)
        present = np.zeros(coordinate.size, bool)
        present[self.index(time)] = True
        steps = (self.weights(time, coordinate) > 0).sum(axis=0)
        short = np.flatnonzero(present & (steps < min_steps))
        if short.size:
            labels = coordinate.values
            named = ", ".join(f"{labels[g]} ({steps[g]})" for g in short[:6])
            more = f" and {short.size - 6} more" if short.size > 6 else ""
            raise InputDataError(
                f"group {str(self)!r} needs at least {min_steps} time steps in each group "
                f"it fits; the time axis {time.name!r} ({_extent(time)}) has fewer in "
                f"{self.prop} {named}{more} (use a longer record, a coarser group, or a "
                f"day-of-year window)"
            )
        return coordinate[present]

    def fitted_groups(self, da: xr.DataArray, role: str) -> xr.DataArray:
        """The groups a fit on ``da`` has: those of its time axis, or the one of ``"time"``.

        Examples
        --------
        >>> Grouper.parse("time").fitted_groups(xr.DataArray([1.0], dims="x"), "target").values
        array([1])
        """
        if not self.seasonal:
            return self.coordinate()
        return self.groups_of(self.time_of(da, role))

    def index(self, time: xr.DataArray, groups: xr.DataArray | None = None) -> np.ndarray:
        """The group of each time step: its position in ``groups``.

        Parameters
        ----------
        time : xr.DataArray
            A 1-D time coordinate of numpy datetime64 or cftime dates (any values
            when not seasonal).
        groups : xr.DataArray, optional
            The groups of a fit (:meth:`groups_of`); by default every group of the
            calendar (:meth:`coordinate`).

        Returns
        -------
        np.ndarray
            int64 group indices, one per step.

        Raises
        ------
        InputDataError
            A step's group is not among ``groups`` (no training data); it is named.

        Examples
        --------
        >>> import pandas as pd
        >>> time = xr.DataArray(pd.date_range("2000-12-30", periods=3), dims="time")
        >>> Grouper.parse("time.dayofyear").index(time).tolist()
        [364, 365, 0]
        """
        if not self.seasonal:
            return np.zeros(time.size, np.int64)
        accessor = self._dates(time).dt
        if self.prop == "dayofyear":
            index = accessor.dayofyear.values - 1
        elif self.prop == "month":
            index = accessor.month.values - 1
        else:
            index = accessor.month.values % 12 // 3
        index = np.asarray(index, np.int64)
        if groups is None:
            return index
        coordinate = self.coordinate(accessor.calendar)
        lookup = np.full(coordinate.size, -1)
        known = pd.Index(coordinate.values).get_indexer(np.asarray(groups.values))
        lookup[known[known >= 0]] = np.flatnonzero(known >= 0)
        missing = lookup[index] < 0
        if missing.any():
            label = coordinate.values[index[missing][0]].item()
            raise InputDataError(
                f"time axis {time.name!r} has {self.prop} {label!r}, a group without training "
                f"data (group {str(self)!r} was fitted on {self.prop} "
                f"{_label_runs(np.asarray(groups.values).tolist())})"
            )
        return lookup[index]

    def label(self, time: xr.DataArray) -> xr.DataArray:
        """The group label of each step (month number, season name, day of the year).

        Examples
        --------
        >>> import pandas as pd
        >>> time = xr.DataArray(pd.date_range("2001-01-31", periods=2), dims="time")
        >>> Grouper.parse("time.month").label(time).values.tolist()
        [1, 2]
        """
        labels = self._coordinate_of(time).values[self.index(time)]
        return xr.DataArray(labels, dims=time.dims, coords=time.coords, name=self.prop)

    def weights(self, time: xr.DataArray, groups: xr.DataArray | None = None) -> np.ndarray:
        """How often each step enters each group's fit: ``(n_steps, n_groups)``.

        Without a window each row is one-hot (the step's own group); with one, a
        step counts in the group of every step whose window holds it (see the module
        docstring).

        Parameters
        ----------
        time : xr.DataArray
            The 1-D time coordinate.
        groups : xr.DataArray, optional
            The groups (columns): those of a fit, :meth:`groups_of`, by default;
            every step's group must be among them.

        Returns
        -------
        np.ndarray
            float64 counts.

        Examples
        --------
        >>> import pandas as pd
        >>> time = xr.DataArray(pd.date_range("2001-12-30", periods=4), dims="time")
        >>> grouper = Grouper("time.dayofyear", window=3)
        >>> grouper.weights(time, grouper.groups_of(time, min_steps=1))
        array([[0., 0., 1., 1.],
               [1., 0., 1., 1.],
               [1., 1., 0., 1.],
               [1., 1., 0., 0.]])
        """
        groups = self.groups_of(time) if groups is None else groups
        index = self.index(time, groups)
        counts = np.zeros((index.size, groups.size))
        centres = np.arange(index.size)
        for offset in np.arange(self.window) - self.window // 2:
            inside = (centres + offset >= 0) & (centres + offset < index.size)
            np.add.at(counts, (centres[inside] + offset, index[inside]), 1.0)
        return counts

    # -- the rows of a sample matrix ---------------------------------------------------

    def time_of(self, da: xr.DataArray, role: str) -> xr.DataArray:
        """The time coordinate of ``da`` that this grouping reads.

        Raises
        ------
        InputDataError
            ``da`` has no 1-D coordinate named as the grouping's dim; when its time
            axis has another name (ERA5's ``valid_time``), the group to give is named.

        Examples
        --------
        >>> Grouper.parse("time.month").time_of(xr.DataArray([1.0], dims="x", name="tos"),
        ...                                    "proxy")
        Traceback (most recent call last):
        ...
        climlatent.errors.InputDataError: group 'time.month' needs a time coordinate ...
        """
        coord = da.coords.get(self.dim)
        if coord is None or coord.dims != (self.dim,):
            time = find_time(da)
            advice = (
                f"its time axis is {time!r}: use group="
                f"{str(Grouper(time + self.group[len(self.dim) :], self.window))!r}"
                if time is not None and time != self.dim
                else "seasonal models apply to dated data only"
            )
            raise InputDataError(
                f"group {str(self)!r} needs a time coordinate {self.dim!r}; {role} variable "
                f"{da.name!r} has dims {da.dims} ({advice})"
            )
        return coord

    def row_index(
        self,
        da: xr.DataArray,
        sample_dims: Sequence[str],
        role: str,
        groups: xr.DataArray | None = None,
    ) -> np.ndarray:
        """:meth:`index` for each sample row of ``da`` (rows in C order over ``sample_dims``).

        Examples
        --------
        >>> import pandas as pd
        >>> da = xr.DataArray(np.zeros((2, 3)), dims=("member", "time"), name="tos",
        ...     coords={"time": pd.date_range("2000-01-01", periods=3, freq="MS")})
        >>> Grouper.parse("time.month").row_index(da, ("member", "time"), "proxy").tolist()
        [0, 1, 2, 0, 1, 2]
        """
        if not self.seasonal:
            return np.zeros(_n_rows(da, sample_dims), np.int64)
        time = self.time_of(da, role)
        return self.index(time, groups)[_steps_of_rows(da, sample_dims, self.dim)]

    def row_weights(
        self,
        da: xr.DataArray,
        sample_dims: Sequence[str],
        role: str,
        groups: xr.DataArray | None = None,
    ) -> np.ndarray:
        """:meth:`weights` for the sample rows of ``da``: ``(n_rows, n_groups)``.

        Examples
        --------
        >>> import pandas as pd
        >>> da = xr.DataArray(np.zeros((2, 4)), dims=("member", "time"), name="tos",
        ...     coords={"time": pd.date_range("1999-12-01", periods=4, freq="QS-DEC")})
        >>> seasons = xr.DataArray(list(SEASONS), dims="season")
        >>> Grouper.parse("time.season").row_weights(da, ("member", "time"), "target",
        ...                                          seasons).argmax(axis=1).tolist()
        [0, 1, 2, 3, 0, 1, 2, 3]
        """
        if not self.seasonal:
            return np.ones((_n_rows(da, sample_dims), 1))
        counts = self.weights(self.time_of(da, role), groups)
        return counts[_steps_of_rows(da, sample_dims, self.dim)]

    def _coordinate_of(self, time: xr.DataArray) -> xr.DataArray:
        """Every group of the calendar of ``time``."""
        return self.coordinate(self._dates(time).dt.calendar if self.seasonal else "standard")

    def _dates(self, time: xr.DataArray) -> xr.DataArray:
        """``time`` as a DataArray of dates, or an error naming it."""
        time = xr.DataArray(time)
        dates = time.dtype.kind == "M" or (
            time.size > 0 and isinstance(time.values.flat[0], cftime.datetime)
        )
        if time.ndim != 1 or not dates:
            raise InputDataError(
                f"group {str(self)!r} needs dates on the time axis {time.name!r} "
                f"(numpy datetime64 or cftime), got {time.dtype} values of shape {time.shape}"
            )
        return time


def _label_runs(labels: list) -> str:
    """Group labels as text, runs of consecutive days or months as ranges.

    Examples
    --------
    >>> _label_runs([1, 2, 3, 5, 7, 8]), _label_runs(["DJF", "JJA"])
    ('1-3, 5, 7-8', 'DJF, JJA')
    """
    parts, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or not isinstance(labels[i], int) or labels[i] != labels[i - 1] + 1:
            first, last = labels[start], labels[i - 1]
            parts.append(str(first) if start == i - 1 else f"{first}-{last}")
            start = i
    return ", ".join(parts)


def group_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted mean of the finite rows of ``values`` for each group.

    Parameters
    ----------
    values : np.ndarray
        ``(n_rows, ...)``; NaN entries are left out.
    weights : np.ndarray
        ``(n_rows, n_groups)``, e.g. :meth:`Grouper.row_weights`.

    Returns
    -------
    np.ndarray
        ``(n_groups, ...)`` in the dtype of ``values``; NaN where a group has no finite
        value. With 0/1 weights each group's mean equals ``np.nanmean`` of its rows.
        The sums are float64: numpy adds float32 rows one after another, and 5.5
        million rows near 288 K summed so had a mean 10 K off.

    Examples
    --------
    >>> group_mean(np.array([1.0, 2.0, np.nan, 6.0]), np.array([[1, 0], [1, 0], [0, 1], [1, 1]]))
    array([3., 6.])
    """
    out = np.full((weights.shape[1], *values.shape[1:]), np.nan, values.dtype)
    finite = np.isfinite(values)
    for g in range(weights.shape[1]):  # summed in float64, row after row (axis 0)
        rows = np.flatnonzero(weights[:, g])
        w = weights[rows, g].astype(values.dtype).reshape(-1, *[1] * (values.ndim - 1))
        total = (np.where(finite[rows], values[rows], 0) * w).sum(axis=0, dtype=np.float64)
        count = (finite[rows] * w).sum(axis=0, dtype=np.float64)
        np.divide(total, count, out=out[g, ...], where=count > 0)
    return out


def new_sample_variance(weights: np.ndarray) -> np.ndarray:
    """``(n + 1) / (n - 1)`` per group: a new sample's residual variance over the fitted one.

    ``n`` is a group's samples (``weights``, ``(n_rows, n_groups)``, summed). About a
    per-group mean fitted to them, the samples' mean squared residual is ``(n - 1) / n``
    of the noise variance, a new sample's ``(n + 1) / n`` (the mean's own error added);
    ``n - 1`` is taken as at least 1.

    Examples
    --------
    >>> new_sample_variance(np.ones((6, 1))).tolist()
    [1.4]
    """
    n = weights.sum(axis=0, dtype=np.float64)
    return (n + 1) / np.maximum(n - 1, 1)


def group_log_mean_exp(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``log(group_mean(exp(values), weights))``, without overflow or underflow.

    Each group's weighted log-sum-exp of its finite rows (`scipy.special.logsumexp`)
    less the log of their total weight: finite wherever that mean is positive and
    finite, even where ``exp(values)`` is not (beyond +-709). ``(n_groups, ...)``
    float64, NaN where a group has no finite value.

    Examples
    --------
    >>> group_log_mean_exp(np.array([1000.0, 1000.0 + np.log(3), np.nan]), np.ones((3, 1)))
    array([1000.69314718])
    """
    out = np.full((weights.shape[1], *values.shape[1:]), np.nan)
    finite = np.isfinite(values)
    for g in range(weights.shape[1]):
        rows = np.flatnonzero(weights[:, g])
        w = weights[rows, g].astype(np.float64).reshape(-1, *[1] * (values.ndim - 1))
        w = np.where(finite[rows], w, 0.0)
        total = w.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):  # a cell without finite values
            summed = logsumexp(np.where(finite[rows], values[rows], 0.0), axis=0, b=w)
            out[g, ...] = np.where(total > 0, summed - np.log(total), np.nan)
    return out


def _n_rows(da: xr.DataArray, sample_dims: Sequence[str]) -> int:
    return int(np.prod([da.sizes[d] for d in sample_dims]))


def _steps_of_rows(da: xr.DataArray, sample_dims: Sequence[str], dim: str) -> np.ndarray:
    """The position along ``dim`` of each row (C order over ``sample_dims``)."""
    shape = [da.sizes[d] for d in sample_dims]
    steps = np.arange(da.sizes[dim]).reshape([-1 if d == dim else 1 for d in sample_dims])
    return np.broadcast_to(steps, shape).ravel()


def _extent(time: xr.DataArray) -> str:
    """``24 steps, 1998-01-01 to 1999-12-01``."""
    if not time.size:
        return "0 steps"
    first, last = (str(time.values[i])[:10] for i in (0, -1))
    return f"{time.size} steps, {first} to {last}"
