"""Where each sample's noise comes from: its member's label and its date.

A stochastic downscaling draws the noise of a sample row from an address
(:func:`climlatent.draws.standard_normal_rows`). The address is the sample's identity,
not its position in the call: the hash of its member's label (a member dim's, or a
scalar member coordinate's), its date in seconds since 0001-01-01 in its own calendar
(the proleptic Gregorian 0001-01-01 for the standard calendar, whether the dates are
cftime or datetime64), and its place along any other sample dim. An
ensemble downscaled whole, member by member, period by period, in any blocks or on
any workers, draws the same noise for the same member and day; two members or two
days never share theirs. (Numbered by position, members run one at a time all drew
the first member's noise, a correlation of 1 between members.)

A member dim without labels, or a time axis without dates, is numbered by position.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence

import cftime
import numpy as np
import xarray as xr

from climlatent.draws import REALIZATION_DIM
from climlatent.errors import InputDataError
from climlatent.grid import find_member, find_time, scalar_member

#: Bits of an address: the member label's hash, the date's seconds, the other dims.
MEMBER_BITS, TIME_BITS, OTHER_BITS = 40, 40, 20
_EPOCH = "seconds since 0001-01-01 00:00:00"
#: Calendars that are Julian before 1582-10-15 and Gregorian after (CF's ``standard``).
_MIXED_GREGORIAN = ("standard", "gregorian")
#: 1970-01-01 in seconds since 0001-01-01 of the proleptic Gregorian calendar (numpy's).
_PROLEPTIC_1970 = 62135596800


def draw_order(field: xr.DataArray, sample: tuple[str, ...]) -> tuple[str, ...]:
    """The sample dims in the order a block's rows are addressed: member, time, others.

    Raises
    ------
    InputDataError
        A sample dim or a coordinate is named ``realization``, the draws' own dim (a
        member selected from a ``realization`` dim leaves such a scalar coordinate).

    Examples
    --------
    >>> da = xr.DataArray(np.zeros((3, 2)), dims=("time", "member"))
    >>> draw_order(da, ("time", "member"))
    ('member', 'time')
    """
    check_draw_dim_free(field)
    first = [dim for dim in (find_member(field), find_time(field)) if dim in sample]
    return (*first, *(dim for dim in sample if dim not in first))


def check_draw_dim_free(obj: xr.Dataset | xr.DataArray, members_pooled: bool = False) -> None:
    """Refuse inputs whose ``realization`` would clash with the dim of the draws.

    A dim ``realization`` (its members kept beside the draws; not where they are pooled
    into them, as the weather generator pools its members), or a coordinate of that
    name without its dim (a member selected from such a dim).

    Raises
    ------
    InputDataError
        ``obj`` has such a dim or coordinate.

    Examples
    --------
    >>> ds = xr.Dataset(coords={"realization": ("realization", [1, 2])})
    >>> check_draw_dim_free(ds, members_pooled=True)
    >>> check_draw_dim_free(ds.isel(realization=0))
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: the inputs have a coordinate 'realization', the dim \
of the draws: rename it (to 'member', say: ds.rename(realization='member')) to draw from them
    """
    selected = REALIZATION_DIM in obj.coords and REALIZATION_DIM not in obj.dims
    if selected or REALIZATION_DIM in obj.dims and not members_pooled:
        kind = "coordinate" if selected else "dim"
        raise InputDataError(
            f"the inputs have a {kind} {REALIZATION_DIM!r}, the dim of the draws: rename "
            f"it (to 'member', say: ds.rename({REALIZATION_DIM}='member')) to draw from them"
        )


def row_keys(samples: xr.DataArray) -> list[np.ndarray]:
    """Each sample dim's part of the addresses of its rows, in ``samples.dims`` order.

    ``samples``: the sample dims with their coordinates (a field's first cell). A row's
    address is the sum of its parts (Python integers, beyond int64).

    Raises
    ------
    InputDataError
        Two members whose labels hash alike, two samples of one date (to the second),
        a date before year 1, or more than 2**20 rows along the other dims.

    Examples
    --------
    >>> time = xr.date_range("2000-01-01", periods=2, calendar="noleap", use_cftime=True)
    >>> samples = xr.DataArray(np.zeros((1, 2)), dims=("member", "time"),
    ...                        coords={"member": ["r1"], "time": time})
    >>> member, days = row_keys(samples)
    >>> (days[1] - days[0]) >> OTHER_BITS  # a day apart, in seconds
    86400
    """
    member, time = find_member(samples), find_time(samples)
    others = [dim for dim in samples.dims if dim not in (member, time)]
    if int(np.prod([samples.sizes[dim] for dim in others])) > 2**OTHER_BITS:
        raise InputDataError(f"more than 2**{OTHER_BITS} samples along {others} to draw for")
    keys, radix = [], 1
    for dim in reversed(samples.dims):
        coord = samples[dim] if dim in samples.coords else None
        if dim == member and coord is not None:
            part = [_label_hash(label) << (TIME_BITS + OTHER_BITS) for label in coord.values]
        elif dim == time and coord is not None:
            part = [int(s) << OTHER_BITS for s in _seconds(coord)]
        else:  # by position: a member dim without labels, a time without values, others
            shift = {member: TIME_BITS + OTHER_BITS, time: OTHER_BITS}.get(dim, 0)
            step = 1 if shift else radix  # the other dims in mixed radix
            part = [(i * step) << shift for i in range(samples.sizes[dim])]
            radix *= 1 if shift else samples.sizes[dim]
        if len(set(part)) < len(part):
            raise InputDataError(
                f"two samples along {dim!r} would draw the same noise (labels hashing "
                "alike, or dates less than a second apart)"
            )
        keys.append(np.array(part, dtype=object))
    scalar = scalar_member(samples) if member is None else None
    if scalar is not None and keys:  # a member selected as a scalar is still that member
        keys[-1] = keys[-1] + (
            _label_hash(samples[scalar].values.item()) << (TIME_BITS + OTHER_BITS)
        )
    return keys[::-1]


def block_rows(
    keys: Sequence[np.ndarray], lead: tuple[int, ...], offsets: tuple[int, ...]
) -> tuple[tuple[int, int], ...]:
    """The addresses of a block's rows (C order) as runs ``(address, 1)``.

    Examples
    --------
    >>> keys = [np.array([0, 100], dtype=object), np.array([0, 1, 2], dtype=object)]
    >>> block_rows(keys, lead=(2, 2), offsets=(0, 1))
    ((1, 1), (2, 1), (101, 1), (102, 1))
    """
    parts = [key[i : i + n] for key, i, n in zip(keys, offsets, lead, strict=True)]
    return tuple((int(sum(row)), 1) for row in itertools.product(*parts))  # the last fastest


def _label_hash(label: object) -> int:
    """A member label's 40-bit hash (BLAKE2b): the same in every process and run."""
    digest = hashlib.blake2b(str(label).encode(), digest_size=MEMBER_BITS // 8).digest()
    return int.from_bytes(digest, "big")


def _seconds(time: xr.DataArray) -> np.ndarray:
    """Each date's seconds since 0001-01-01 in its calendar; whole steps as they are."""
    values = np.asarray(time.values)
    if np.issubdtype(values.dtype, np.datetime64):
        seconds = values.astype("datetime64[s]") - np.datetime64("0001-01-01T00:00:00", "s")
        seconds = seconds.astype(np.int64)
    elif values.size and isinstance(values.flat[0], cftime.datetime):
        calendar = values.flat[0].calendar
        if calendar.lower() in _MIXED_GREGORIAN:
            # counted from 1970 and shifted to the proleptic 0001-01-01, as datetime64
            # dates are: the mixed calendar's 0001-01-01 is Julian, two days before it,
            # and one file decoded by xarray (datetime64) or by climlatent.io (cftime)
            # drew different noise, a date sharing its noise with the date 2 days on
            since_1970 = cftime.date2num(values, "seconds since 1970-01-01", calendar=calendar)
            seconds = np.round(np.asarray(since_1970, float)) + _PROLEPTIC_1970
        else:
            seconds = np.asarray(cftime.date2num(values, _EPOCH, calendar=calendar), float)
            seconds = np.round(seconds)
    elif np.issubdtype(values.dtype, np.integer):
        seconds = values  # numbered steps
    else:
        seconds = np.arange(values.size)
    if values.size and (seconds.min() < 0 or seconds.max() >= 2**TIME_BITS):
        raise InputDataError(f"time {time.name!r} lies outside the dates noise can be drawn for")
    return seconds.astype(np.int64)
