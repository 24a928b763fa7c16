"""Strict monotonicity of 1-D coordinates, longitudes taken on the circle.

A coordinate runs one way. A longitude may also run one way around the circle and
cross the seam of its labels once: a regional grid across the antimeridian stored
-180..180 (``160, 170, 180, -170, -160``, as CORDEX and many regional files store
it) is the grid ``160 ... 200``, whose cells neighbour each other as stored.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from climlatent.errors import InputDataError


def unwrapped_longitudes(lon: np.ndarray) -> np.ndarray | None:
    """Longitudes shifted by whole turns to run strictly one way, or None if they cannot.

    Strictly monotonic longitudes come back as given. Others are monotonic modulo 360
    when every step between neighbours, taken on the circle (within 180 degrees), has
    the same sign, the labels jump by a turn at most once, and the grid spans less than
    a turn: the labels after the jump are shifted by 360 (``160, 170, 180, -170`` becomes
    ``160, 170, 180, 190``). ``10, 30, 20`` steps east then west: None.

    Parameters
    ----------
    lon : np.ndarray
        1-D longitudes in degrees.

    Returns
    -------
    np.ndarray or None
        The longitudes running without a break (float), or None.

    Examples
    --------
    >>> unwrapped_longitudes(np.array([160.0, 170.0, 180.0, -170.0, -160.0])).tolist()
    [160.0, 170.0, 180.0, 190.0, 200.0]
    >>> unwrapped_longitudes(np.array([10.0, 30.0, 20.0])) is None
    True
    """
    lon = np.asarray(lon, dtype=float)
    step = np.diff(lon)
    if np.all(step > 0) or np.all(step < 0):
        return lon
    turns = -np.round(step / 360.0)  # the turns that bring each step within 180 degrees
    on_circle = step + 360.0 * turns
    one_way = np.all(on_circle > 0) or np.all(on_circle < 0)
    if not one_way or np.abs(turns).sum() > 1 or abs(on_circle.sum()) >= 360.0:
        return None
    return lon + 360.0 * np.concatenate([[0.0], np.cumsum(turns)])


def check_monotonic(coord: xr.DataArray, name: str | None = None, longitude: bool = False) -> None:
    """Raise if a 1-D coordinate is not strictly increasing or strictly decreasing.

    Parameters
    ----------
    coord : xr.DataArray
        A 1-D coordinate.
    name : str, optional
        Variable the coordinate belongs to, for the error message.
    longitude : bool
        Whether ``coord`` is a longitude, which may also be monotonic modulo 360
        (`unwrapped_longitudes`): a regional grid across the seam of its labels.

    Examples
    --------
    >>> import xarray as xr
    >>> check_monotonic(xr.DataArray([3.0, 2.0, 1.0], dims="lat", name="lat"))
    >>> check_monotonic(xr.DataArray([170.0, 180.0, -170.0], dims="lon", name="lon"),
    ...                 longitude=True)
    >>> check_monotonic(xr.DataArray([1.0, 3.0, 2.0], dims="lat", name="lat"))
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: coordinate 'lat' is not strictly monotonic ...
    """
    if coord.size < 2:
        return
    values = coord.values
    if np.issubdtype(values.dtype, np.number):
        step = np.diff(values)
        ok = np.all(step > 0) or np.all(step < 0)
        ok = ok or (longitude and unwrapped_longitudes(values) is not None)
    else:  # datetime-like and cftime objects compare elementwise (increasing only)
        ok = bool(np.all(values[:-1] < values[1:]))
    if not ok:
        owner = f" of variable {name!r}" if name else ""
        raise InputDataError(
            f"coordinate {coord.name!r}{owner} is not strictly monotonic "
            f"(sort it with .sortby({coord.name!r}) and drop duplicates first)"
        )
