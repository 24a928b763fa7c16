"""Boundary checks on input Datasets, each raising a message that names what to fix.

Estimators run these once, at the boundary, before any numerical work (the xsdba
habit): a variable missing from the Dataset, an empty selection, an undecoded or
unknown calendar, a time axis that is not sorted, proxy and target on different time
axes, an all-NaN field.
"""

from __future__ import annotations

import cftime
import numpy as np
import xarray as xr

from climlatent.errors import InputDataError
from climlatent.grid import find_grid, find_member, find_time, find_vertical
from climlatent.monotonic import check_monotonic

GREGORIAN = frozenset({"standard", "gregorian", "proleptic_gregorian"})
#: CF calendars under another name: the same calendar.
CALENDAR_ALIASES = {"365_day": "noleap", "366_day": "all_leap"}
#: Attributes of a field read packed and not unpacked (decoding moves them to .encoding).
PACKING_ATTRS = ("scale_factor", "add_offset")
BOUNDS_DIMS = frozenset({"bnds", "bounds", "nv", "nbnd", "vertices", "nvertex"})
KNOWN_CALENDARS = frozenset(
    {
        "standard",
        "gregorian",
        "proleptic_gregorian",
        "noleap",
        "365_day",
        "all_leap",
        "366_day",
        "360_day",
        "julian",
    }
)


def get_variable(ds: xr.Dataset, name: str, role: str) -> xr.DataArray:
    """Return ``ds[name]``, or raise naming the variable, its role and what is there.

    The variable must hold numbers (booleans, integers or floats, of any byte order and
    layout), unpacked: values still carrying ``scale_factor``/``add_offset`` attributes
    are packed values, which every estimator would have taken for physical ones.

    Examples
    --------
    >>> import xarray as xr
    >>> get_variable(xr.Dataset({"psl": ("x", [1.0])}), "pr", "target")
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: target variable 'pr' is not in the Dataset ...
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"expected an xarray.Dataset holding {role} {name!r}, got {type(ds)}")
    if not isinstance(name, str):  # a list of names is no name (nor hashable)
        raise InputDataError(
            f"{role} must be one variable name (a str), not {name!r} "
            f"(data variables: {', '.join(map(str, ds.data_vars)) or 'none'})"
        )
    if name not in ds.data_vars:
        raise InputDataError(
            f"{role} variable {name!r} is not in the Dataset (data variables: "
            f"{', '.join(map(str, ds.data_vars)) or 'none'})"
        )
    da = ds[name]
    if da.dtype.kind not in "biuf":  # text, objects, dates: not a field of numbers
        raise InputDataError(
            f"{role} variable {name!r} holds {da.dtype} values, not numbers; "
            f"convert it (.astype('float32')) or decode it first"
        )
    packing = [key for key in PACKING_ATTRS if key in da.attrs]
    if packing:  # decoding moves them to .encoding: these values are still packed
        raise InputDataError(
            f"{role} variable {name!r} is packed ({', '.join(packing)} in its attributes) "
            f"but was not unpacked; open the data with climlatent.io.open_dataset or "
            f"decode it with xarray.decode_cf"
        )
    return da


def calendar_of(da: xr.DataArray, time: str) -> str:
    """CF calendar of the time coordinate ``time`` of ``da``.

    Raises
    ------
    InputDataError
        The time coordinate has no steps, is not decoded to datetimes (for example an
        unknown calendar kept as numbers), or its calendar is not a CF calendar.

    Examples
    --------
    >>> import xarray as xr
    >>> t = xr.date_range("2000-01-01", periods=3, calendar="360_day", use_cftime=True)
    >>> calendar_of(xr.DataArray([1, 2, 3], dims="time", coords={"time": t}), "time")
    '360_day'
    """
    values = da[time].values
    if not values.size:  # an empty selection has no dates to read a calendar from
        raise InputDataError(
            f"time {time!r} of variable {da.name!r} has no steps (empty selection?)"
        )
    if values.dtype.kind == "M":
        return "proleptic_gregorian"
    first = values.flat[0]
    if not isinstance(first, cftime.datetime):
        attrs = {**da[time].encoding, **da[time].attrs}
        raise InputDataError(
            f"time coordinate {time!r} of variable {da.name!r} is not decoded to dates "
            f"(units {attrs.get('units')!r}, calendar {attrs.get('calendar')!r}); "
            f"open the data with climlatent.io.open_dataset or decode it with a CF calendar"
        )
    calendar = first.calendar
    if calendar not in KNOWN_CALENDARS:
        raise InputDataError(
            f"time coordinate {time!r} of variable {da.name!r} has unknown calendar "
            f"{calendar!r} (known: {', '.join(sorted(KNOWN_CALENDARS))})"
        )
    return calendar


def check_field(
    da: xr.DataArray, role: str, any_finite: bool = True
) -> tuple[str | None, str | None]:
    """Check a field at the boundary; return its time dim and calendar.

    Checks: latitude/longitude found and monotonic, no empty dimension, the time axis
    (if any) decoded on a known calendar and strictly increasing, and at least one
    finite value.

    Parameters
    ----------
    da : xr.DataArray
        The field.
    role : str
        Its role (``"target"``, ``"proxy"``), named in messages.
    any_finite : bool
        Check for a finite value, which reads the whole field; False where the
        caller checks every value of each block it reads (a lazy field is then
        checked from its coordinates alone).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = xr.date_range("2000-01-01", periods=2, calendar="noleap", use_cftime=True)
    >>> da = xr.DataArray(np.ones((2, 2, 2)), dims=("time", "lat", "lon"), name="tas",
    ...     coords={"time": t, "lat": [0.0, 1.0], "lon": [0.0, 1.0]})
    >>> check_field(da, "target")
    ('time', 'noleap')
    """
    find_grid(da, da.name)
    for dim, size in da.sizes.items():
        if size == 0:
            raise InputDataError(
                f"{role} variable {da.name!r} is empty along dimension {dim!r} "
                f"(an empty selection?)"
            )
    time = find_time(da)
    calendar = None
    if time is not None and time in da.coords:
        calendar = calendar_of(da, time)
        check_monotonic(da[time], da.name)
    if any_finite and not bool(np.isfinite(da).any()):
        raise InputDataError(f"{role} variable {da.name!r} has no finite value{_why(da)}")
    return time, calendar


def _why(da: xr.DataArray) -> str:
    """What the non-finite values of ``da`` are, naming a float16 overflow."""
    n_inf = int(np.isinf(da).sum())
    if not n_inf:
        return " (all NaN)"
    overflow = (
        f": float16 overflows above {float(np.finfo(np.float16).max):g}, store it as float32"
        if da.dtype == np.float16
        else ""
    )
    return f" ({n_inf} infinite{overflow})"


def check_no_inf(da: xr.DataArray, role: str) -> None:
    """Refuse infinite values (NaN may mark missing cells; inf is always an error).

    Examples
    --------
    >>> import xarray as xr
    >>> check_no_inf(xr.DataArray([1.0, np.nan], dims="x", name="pr"), "target")
    >>> check_no_inf(xr.DataArray(np.array([7e4, 1.0], "float16"), dims="x", name="psl"),
    ...              "proxy")
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: proxy variable 'psl' has 1 infinite value(s) (... float16 ...
    """
    n_inf = int(np.isinf(da).sum())
    if n_inf:
        raise InputDataError(
            f"{role} variable {da.name!r} has {n_inf} infinite value(s) {_why(da).strip()}".rstrip()
        )


def check_calendar(
    da: xr.DataArray,
    role: str,
    calendar: str | None,
    fitted: str | None,
    reference: str = "the model was fitted",
) -> None:
    """Refuse a field on another calendar than the one the model was fitted on.

    The three names of the Gregorian calendar are one calendar, as are CF's other
    aliases (``365_day`` is ``noleap``); ``reference`` says in the message whose
    calendar ``fitted`` is.

    Examples
    --------
    >>> import xarray as xr
    >>> da = xr.DataArray([1.0], dims="time", name="tos")
    >>> check_calendar(da, "proxy", "standard", "proleptic_gregorian")
    >>> check_calendar(da, "proxy", "365_day", "noleap")
    >>> check_calendar(da, "proxy", "360_day", "noleap")
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: proxy variable 'tos' is on the '360_day' calendar, ...
    """
    if calendar is None or fitted is None:
        return
    names = {CALENDAR_ALIASES.get(name.lower(), name.lower()) for name in (calendar, fitted)}
    if len(names) > 1 and names - GREGORIAN:
        raise InputDataError(
            f"{role} variable {da.name!r} is on the {calendar!r} calendar, but {reference} "
            f"on {fitted!r}; convert it first, e.g. da.convert_calendar({fitted!r}, "
            "align_on='year')"
        )


def check_sample_dims(
    da: xr.DataArray, role: str, spatial: tuple[str, ...], allowed: tuple[str, ...] | None
) -> tuple[str, ...]:
    """The sample dims of ``da``, refusing a level, bounds or other dim not among them.

    Parameters
    ----------
    da : xr.DataArray
        The field.
    role : str
        Its role, named in messages.
    spatial : tuple of str
        Its horizontal dims.
    allowed : tuple of str, optional
        The sample dims it may have (the target's at ``fit``; the fitted ones, time and
        member on apply). None: any dim that is not vertical or a bounds dim.

    Examples
    --------
    >>> import xarray as xr
    >>> da = xr.DataArray(np.zeros((2, 3, 1, 1)), dims=("time", "plev", "lat", "lon"),
    ...                   name="ua")
    >>> check_sample_dims(da, "proxy", ("lat", "lon"), ("time",))
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: proxy variable 'ua' has dim 'plev' (3 values), ...
    """
    vertical = find_vertical(da)
    sample = tuple(d for d in da.dims if d not in spatial)
    for dim in sample:
        kind = "a vertical dim" if dim == vertical else None
        if dim in BOUNDS_DIMS:
            kind = "a cell-bounds dim"
        if kind is None and (allowed is None or dim in allowed):
            continue
        select = f"ds.isel({dim}=0)" if dim in BOUNDS_DIMS else f"ds.sel({dim}=...)"
        raise InputDataError(
            f"{role} variable {da.name!r} has dim {dim!r} ({da.sizes[dim]} values)"
            + (f", {kind}" if kind else "")
            + f", which is not a sample dim of the model ({', '.join(allowed or ()) or 'none'});"
            f" select one with {select} or drop it"
        )
    return sample


def check_same_samples(target: xr.DataArray, proxy: xr.DataArray, time: str | None) -> None:
    """Raise unless target and proxy share the time axis and sample labels (the samples to pair).

    Samples pair by label: a fine file list in another order than the coarse one
    (``r2, r1`` against ``r1, r2``) would train one member's drivers on another's
    target, and so would scenarios or start dates stored in another order. Every dim
    but the grids' with a coordinate in both must hold the same labels in the same
    order; the time axis the same dates on one calendar, numpy's or cftime's (daily
    means stamped 00:00 against 12:00 are refused, the first other date named).

    Examples
    --------
    >>> import xarray as xr
    >>> a = xr.DataArray(np.ones((2, 1, 1)), dims=("time", "lat", "lon"), name="pr",
    ...     coords={"time": [0, 1], "lat": [0.0], "lon": [0.0]})
    >>> check_same_samples(a, a.rename("psl"), "time")
    >>> check_same_samples(a, a.rename("psl").assign_coords(time=[1, 2]), "time")
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: target 'pr' and proxy 'psl' are on different time axes \
(2 of 2 steps at other dates, the first 0 vs 1); select the 1 date(s) they share first ...
    """
    spatial = {*find_grid(target, target.name).spatial_dims}
    spatial |= {*find_grid(proxy, proxy.name).spatial_dims}
    member = find_member(target)
    for dim in target.dims:
        if dim in spatial or dim == time or dim not in target.coords or dim not in proxy.coords:
            continue
        labels, proxy_labels = target[dim].values, proxy[dim].values
        if labels.shape != proxy_labels.shape or not np.all(labels == proxy_labels):
            noun = "members" if dim == member else f"{dim!r} labels"
            raise InputDataError(
                f"target {target.name!r} has {noun} {labels.tolist()} and proxy "
                f"{proxy.name!r} {proxy_labels.tolist()}: samples pair by label; list or "
                f"select them in one order (.sel({dim}=...))"
            )
    if time is None:
        return
    proxy_time = find_time(proxy)
    if proxy_time != time:
        raise InputDataError(
            f"target {target.name!r} and proxy {proxy.name!r} are on different time axes "
            f"({time!r} vs {proxy_time!r}); put them on one time coordinate first"
        )
    a, b = target[time].values, proxy[time].values
    if a.dtype.kind in "OM" and b.dtype.kind in "OM":  # dates: compare calendars first
        reference = f"target {target.name!r} is"
        check_calendar(
            proxy, "proxy", calendar_of(proxy, time), calendar_of(target, time), reference
        )
    if {a.dtype.kind, b.dtype.kind} == {"M", "O"}:  # numpy against cftime dates: numpy's
        # nanoseconds compare as integers (never equal), its microseconds as datetimes
        a, b = (v.astype("datetime64[us]") if v.dtype.kind == "M" else v for v in (a, b))
    if a.shape != b.shape or not np.all(a == b):
        shared = int(np.isin(a, b).sum())  # xarray.align keeps these: none, an empty record
        raise InputDataError(
            f"target {target.name!r} and proxy {proxy.name!r} are on different time axes "
            f"({_time_difference(a, b)}); "
            + (
                f"select the {shared} date(s) they share first (xarray.align(target, proxy) "
                "keeps those)"
                if shared
                else "they share no date: select the same period, or stamp the same days "
                "alike (daily means at 00:00 and at 12:00?)"
            )
        )


def _time_difference(a: np.ndarray, b: np.ndarray) -> str:
    """How the time axes ``a`` and ``b`` differ: their extents, or the first other step.

    Examples
    --------
    >>> t = np.array(["2000-01-01T00", "2000-01-02T00", "2000-01-03T00"], "datetime64[h]")
    >>> _time_difference(t, t + np.timedelta64(12, "h"))
    '3 of 3 steps at other dates, the first 2000-01-01T00 vs 2000-01-01T12'
    >>> _time_difference(t, t[:2])
    '3 steps, 2000-01-01T00 to 2000-01-03T00, vs 2, 2000-01-01T00 to 2000-01-02T00'
    """
    if a.shape != b.shape:
        return f"{a.size} steps{_extent(a)}, vs {b.size}{_extent(b)}"
    other = np.flatnonzero(a != b)
    return (
        f"{other.size} of {a.size} steps at other dates, the first {a[other[0]]} vs {b[other[0]]}"
    )


def _extent(times: np.ndarray) -> str:
    """``", first to last"`` of a time axis; nothing for an empty one."""
    return f", {times[0]} to {times[-1]}" if times.size else ""


def check_int(name: str, value: int, low: int, high: int | None = None) -> None:
    """Raise naming ``name`` unless ``value`` is an integer in [low, high].

    Examples
    --------
    >>> check_int("window", 2.5, 1)
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: window must be an integer >= 1, got 2.5
    """
    integer = isinstance(value, int | np.integer) and not isinstance(value, bool)
    if not integer or value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"from {low} to {high}"
        raise InputDataError(f"{name} must be an integer {bound}, got {value!r}")


def check_number(
    name: str, value: float, low: float | None = None, high: float | None = None
) -> None:
    """Raise naming ``name`` unless ``value`` is a finite number in the open (low, high).

    Examples
    --------
    >>> check_number("exponent", float("inf"), low=0)
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: exponent must be a finite number, got inf
    >>> check_number("credibility", 1.5, low=0, high=1)
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: credibility must be in (0, 1), got 1.5
    """
    number = isinstance(value, int | float | np.integer | np.floating)
    if isinstance(value, bool) or not (number and np.isfinite(value)):
        raise InputDataError(f"{name} must be a finite number, got {value!r}")
    if (low is not None and value <= low) or (high is not None and value >= high):
        bound = (
            f"> {low}" if high is None else f"< {high}" if low is None else f"in ({low}, {high})"
        )
        raise InputDataError(f"{name} must be {bound}, got {value!r}")
