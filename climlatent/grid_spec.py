"""Global regular grids named as CDO names them: ``r<NX>x<NY>`` and ``global_<INC>``.

Centres exactly as CDO 2.x places them (``cdo griddes -const,1,<spec>``):

- ``r<NX>x<NY>``: ``NX`` longitudes ``0, 360/NX, ...`` (the first centre on the
  Greenwich meridian: ``r360x180`` has longitudes 0..359); ``NY`` latitudes spaced
  ``180/NY`` from ``-90 + 90/NY`` when ``NY`` is even (``r360x180``: -89.5..89.5),
  or spaced ``180/(NY-1)`` from the south pole to the north pole when ``NY`` is odd
  (``r144x73``: -90, -87.5, ..., 90).
- ``global_<INC>``: ``360/INC`` longitudes from ``-180 + INC/2`` and ``180/INC``
  latitudes from ``-90 + INC/2`` (``global_1``: -179.5..179.5, -89.5..89.5); ``INC``
  must divide 180.

Cell edges halfway between centres, latitude edges clipped to the poles (so the pole
rows of an odd ``NY`` are half cells), as CDO derives them for conservative
remapping. The grids carry CF attributes and bounds.
"""

from __future__ import annotations

import re

import numpy as np
import xarray as xr

from climlatent.errors import InputDataError
from climlatent.grid import regular_grid

__all__ = ["grid_from_spec", "is_grid_spec"]

_R_SPEC = re.compile(r"r(\d+)x(\d+)")
_GLOBAL_SPEC = re.compile(r"global_(\d+(?:\.\d*)?|\.\d+)")
_EXAMPLES = "r<NX>x<NY> (e.g. r180x90) or global_<INC> (e.g. global_2)"


def is_grid_spec(text: str) -> bool:
    """Whether ``text`` has the form of a grid spec (not whether its numbers are valid).

    Examples
    --------
    >>> is_grid_spec("r180x90"), is_grid_spec("global_0.5"), is_grid_spec("grid.nc")
    (True, True, False)
    """
    return bool(_R_SPEC.fullmatch(text) or _GLOBAL_SPEC.fullmatch(text))


def grid_from_spec(spec: str) -> xr.Dataset:
    """The global regular grid named by a CDO grid spec, with CF attributes and bounds.

    Parameters
    ----------
    spec : str
        ``r<NX>x<NY>`` (``NX`` longitudes, ``NY`` latitudes) or ``global_<INC>``
        (``INC`` degrees), with CDO's cell centres (see the module notes).

    Returns
    -------
    xr.Dataset
        Coordinates ``lat`` and ``lon`` with bounds ``lat_bnds`` and ``lon_bnds``.

    Raises
    ------
    InputDataError
        ``spec`` is not one of the forms above, or its numbers give no grid.

    Examples
    --------
    >>> grid = grid_from_spec("r360x180")
    >>> grid.lon.values[[0, -1]].tolist(), grid.lat.values[[0, -1]].tolist()
    ([0.0, 359.0], [-89.5, 89.5])
    >>> grid_from_spec("r144x73").lat_bnds.values[0].tolist()
    [-90.0, -88.75]
    >>> grid_from_spec("global_2").lon.values[[0, -1]].tolist()
    [-179.0, 179.0]
    """
    if match := _R_SPEC.fullmatch(spec):
        nx, ny = (int(n) for n in match.groups())
        if nx < 1 or ny < 2:
            raise InputDataError(
                f"grid spec {spec!r}: needs at least 1 longitude and 2 latitudes, not {nx} x {ny}"
            )
        lon = np.arange(nx) * (360.0 / nx)
        if ny % 2:  # odd: the poles are centres
            lat = np.linspace(-90.0, 90.0, ny)  # -90 + 338 * (180 / 338) is 90 + 3e-14
        else:
            lat = -90.0 + (np.arange(ny) + 0.5) * (180.0 / ny)
        return _grid(lat, lon)
    if match := _GLOBAL_SPEC.fullmatch(spec):
        inc = float(match.group(1))
        n_lat = round(180.0 / inc) if inc > 0 else 0
        if n_lat < 1 or abs(n_lat * inc - 180.0) > 1e-9:
            raise InputDataError(
                f"grid spec {spec!r}: the increment {inc:g} degrees must divide 180"
            )
        lat = -90.0 + (np.arange(n_lat) + 0.5) * inc
        lon = -180.0 + (np.arange(2 * n_lat) + 0.5) * inc
        return _grid(lat, lon)
    raise InputDataError(f"unknown grid spec {spec!r}: expected {_EXAMPLES}")


def _edges(centres: np.ndarray, span: float) -> np.ndarray:
    """Edges halfway between centres, the outer ones mirrored (one centre: ``span`` wide)."""
    if centres.size == 1:
        return centres[0] + np.array([-0.5, 0.5]) * span
    mid = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate([[2 * centres[0] - mid[0]], mid, [2 * centres[-1] - mid[-1]]])


def _grid(lat: np.ndarray, lon: np.ndarray) -> xr.Dataset:
    """A CF grid with these exact centres and the edges derived from them."""
    grid = regular_grid(np.clip(_edges(lat, 180.0), -90.0, 90.0), _edges(lon, 360.0))
    return grid.assign_coords(lat=grid.lat.copy(data=lat), lon=grid.lon.copy(data=lon))
