"""Physical bounds of CF quantities, and model outputs held within them, with a record.

A model additive in a field's units (a linear map, a Gaussian decoder or noise, an
additive correction) can put precipitation, radiation or a concentration below zero,
or a fraction above one. Such values are not numbers a field can take: climlatent's
outputs set them to the bound, as a censored model reads them (a negative
precipitation is a dry cell), and say so in the attribute ``climlatent_clipped``: how
many values, and how far beyond. The bounds follow the CF ``standard_name`` (and its
``units`` for fractions); a name not known to be bounded is left alone (a temperature
in K below 0 is a broken model, not a rounding, and is not clipped).
"""

from __future__ import annotations

import numpy as np
import pint
import xarray as xr

from climlatent.errors import InputDataError
from climlatent.units import units_quantity

__all__ = ["CLIPPED_ATTR", "clip_to_bounds", "physical_bounds"]

#: CF standard names of quantities that cannot be negative.
NON_NEGATIVE = frozenset({
    "precipitation_flux", "precipitation_amount", "lwe_precipitation_rate",
    "lwe_thickness_of_precipitation_amount", "thickness_of_rainfall_amount",
    "rainfall_flux", "snowfall_flux", "convective_precipitation_flux",
    "stratiform_precipitation_flux", "snowfall_amount", "surface_snow_amount",
    "surface_downwelling_shortwave_flux_in_air", "surface_downwelling_longwave_flux_in_air",
    "toa_incoming_shortwave_flux", "wind_speed", "sea_ice_thickness",
    "atmosphere_mass_content_of_water_vapor",
})  # fmt: skip
#: Prefixes of the standard names of concentrations, which cannot be negative.
NON_NEGATIVE_PREFIXES = ("mass_concentration_of_", "mole_concentration_of_",
                         "number_concentration_of_")  # fmt: skip
#: Standard names of fractions, in [0, 1] when dimensionless (so [0, 100] in "%").
FRACTIONS = frozenset({"relative_humidity", "specific_humidity"})
#: Prefixes and suffixes of the standard names of fractions.
FRACTION_PREFIXES = ("mass_fraction_of_", "mole_fraction_of_", "volume_fraction_of_")
FRACTION_SUFFIXES = ("_area_fraction",)
#: The attribute where what was set to a bound is recorded.
CLIPPED_ATTR = "climlatent_clipped"
#: Beyond a bound by at most this fraction of the field's largest magnitude is
#: round-off (float32 keeps 7 digits): set to the bound, and not recorded.
ROUND_OFF = 1e-6

Bounds = tuple[float | None, float | None]


def physical_bounds(attrs: dict) -> Bounds:
    """The bounds ``(lower, upper)`` that the CF ``standard_name`` in ``attrs`` implies.

    ``None`` for a side without a bound. A fraction's upper bound is 1 in its
    ``units`` (100 in ``%``, 1000 in ``g kg-1``); a fraction whose units are not
    dimensionless keeps its lower bound only.

    Parameters
    ----------
    attrs : dict
        A variable's attributes.

    Returns
    -------
    tuple
        ``(lower, upper)``, each a float or ``None``.

    Examples
    --------
    >>> physical_bounds({"standard_name": "precipitation_flux", "units": "kg m-2 s-1"})
    (0.0, None)
    >>> physical_bounds({"standard_name": "sea_ice_area_fraction", "units": "%"})
    (0.0, 100.0)
    >>> physical_bounds({"standard_name": "air_temperature", "units": "K"})
    (None, None)
    """
    name = str(attrs.get("standard_name", ""))
    if name in NON_NEGATIVE or name.startswith(NON_NEGATIVE_PREFIXES):
        return 0.0, None
    if name in FRACTIONS or name.startswith(FRACTION_PREFIXES) or name.endswith(FRACTION_SUFFIXES):
        try:
            one = units_quantity(str(attrs.get("units", "1"))).to("dimensionless").magnitude
        except (InputDataError, pint.errors.PintError):
            return 0.0, None
        return 0.0, float(np.round(1.0 / float(one), 12))
    return None, None


def clip_to_bounds(da: xr.DataArray, bounds: Bounds | None = None) -> xr.DataArray:
    """``da`` with values beyond its physical bounds set to them, and a record of it.

    The record, appended to the attribute ``climlatent_clipped``, says how many of the
    finite values were beyond each bound and the farthest of them; of a dask-backed
    ``da`` (which stays lazy) it says that such values are set to the bound, uncounted,
    and says it once (not again for a lazy ``da`` whose record says it already).
    Round-off beyond a bound (`ROUND_OFF`) is set to it without a record. NaN stays
    NaN; a ``da`` within its bounds comes back as it is.

    Parameters
    ----------
    da : xr.DataArray
        A field in physical units, with its CF attributes.
    bounds : tuple, optional
        ``(lower, upper)``; by default `physical_bounds` of ``da.attrs``.

    Returns
    -------
    xr.DataArray
        ``da`` within its bounds, its dtype, coordinates and attributes kept.

    Examples
    --------
    >>> da = xr.DataArray([-2e-6, 1e-5, np.nan], dims="time", name="pr",
    ...                   attrs={"standard_name": "precipitation_flux", "units": "kg m-2 s-1"})
    >>> out = clip_to_bounds(da)
    >>> out.values.tolist()[:2]
    [0.0, 1e-05]
    >>> out.attrs["climlatent_clipped"]
    '1 of 2 values below the physical bound 0 kg m-2 s-1 (down to -2e-06) set to it'
    """
    lower, upper = physical_bounds(da.attrs) if bounds is None else bounds
    if lower is None and upper is None:
        return da
    out = da.clip(min=lower, max=upper, keep_attrs=True)
    if lazy := not isinstance(da.data, np.ndarray):
        finite = np.empty(0)
    else:
        finite = da.values[np.isfinite(da.values)]
        if np.array_equal(finite, out.values[np.isfinite(out.values)]):
            return da  # within the bounds
    slack = ROUND_OFF * float(np.abs(finite).max()) if finite.size else 0.0
    units, notes = da.attrs.get("units", ""), []
    earlier = da.attrs.get(CLIPPED_ATTR)
    for bound, side, sign, farthest in ((lower, "below", -1, np.min), (upper, "above", 1, np.max)):
        if bound is None:
            continue
        if lazy:  # once: a lazy field clipped again (a transform's inverse, then bounds)
            note = f"values {side} the physical bound {bound:g} {units} set to it, uncounted"
            notes += [] if note in str(earlier).split("; ") else [note]
            continue
        n_beyond = int(np.count_nonzero(sign * (finite - bound) > slack))
        if n_beyond:
            notes.append(
                f"{n_beyond} of {finite.size} values {side} the physical bound {bound:g} "
                f"{units} ({'down' if sign < 0 else 'up'} to {float(farthest(finite)):.3g}) "
                f"set to it"
            )
    if notes:
        out.attrs[CLIPPED_ATTR] = "; ".join(([earlier] if earlier else []) + notes)
    return out
