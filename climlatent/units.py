"""Units of climate fields: parse CF ``units`` strings, check them, convert between them.

Units are parsed with pint through cf-xarray's CF-aware registry (``degC``,
``kg m-2 s-1``, ``hPa``, ``%``...). A field whose CF ``standard_name`` is known must
carry units of the matching physical dimension (a sea-level pressure in ``K`` is
refused). Precipitation given as a water depth rate (``mm/day``) converts to and from
a mass flux (``kg m-2 s-1``) through the density of liquid water, as climate tools do.
A number in the units, as UDUNITS allows it, scales them: CMIP's salinity in
``0.001`` (``1e-3``), a trend in ``K (10 year)-1``. UDUNITS' fractions ``ppmv``,
``ppb(v)`` and ``ppt(v)`` (parts per trillion) are theirs too. A year is pint's, 365.25 days:
UDUNITS' is 365.242198781, so that a rate per year converted to one per second
differs from UDUNITS' by 2.1e-5 of itself.
"""

from __future__ import annotations

import re
from collections.abc import Hashable

import numpy as np
import pint
import xarray as xr
from cf_xarray.units import units as ureg
from pint.util import ParserHelper

from climlatent.errors import InputDataError

WATER_DENSITY = 1000.0  # kg m-3, converts a precipitation depth rate to a mass flux

# Canonical units of the CF standard names climlatent meets most often.
STANDARD_UNITS = {
    "air_pressure_at_mean_sea_level": "Pa",
    "air_pressure": "Pa",
    "surface_air_pressure": "Pa",
    "air_temperature": "K",
    "sea_surface_temperature": "K",
    "sea_water_potential_temperature": "K",
    "precipitation_flux": "kg m-2 s-1",
    "precipitation_amount": "kg m-2",
    "surface_downwelling_shortwave_flux_in_air": "W m-2",
    "mass_concentration_of_chlorophyll_a_in_sea_water": "kg m-3",
    "land_area_fraction": "%",
}


#: A power of a parenthesised group, as UDUNITS writes it: ``(10 year)-1``.
_GROUP_POWER = re.compile(r"\)\s*(-?\d+)")
#: A temperature spelled with "degree" apart from its scale (``deg C``, ``degrees_C``,
#: ``degrees Celsius``), which pint reads as an angle times a temperature step.
_SPELLED_TEMPERATURE = re.compile(
    r"\bdeg(?:ree)?s?[ _]?(c|celsius|f|fahrenheit|k|kelvin)\b", re.IGNORECASE
)
_TEMPERATURES = {"c": "degC", "celsius": "degC", "f": "degF", "fahrenheit": "degF", "k": "K"}
#: A number written "1.e-3", whose "e" pint reads as the elementary charge.
_BARE_POINT = re.compile(r"(\d)\.([eE])")
#: UDUNITS' names for fractions and a bearing that pint lacks or reads otherwise
#: ("ppt" would be a picopint): each stands for its value in UDUNITS.
_UDUNITS_NAMES = {
    "ppmv": "1e-6",
    "ppb": "1e-9",
    "ppbv": "1e-9",
    "ppt": "1e-12",
    "pptv": "1e-12",
    "degrees_true": "degree",
    "degree_true": "degree",
}
_UDUNITS_NAME = re.compile(rf"\b({'|'.join(_UDUNITS_NAMES)})\b")


def units_quantity(text: str, name: str | None = None) -> pint.Quantity:
    """The CF units string ``text`` as a pint quantity: its unit and its scale.

    UDUNITS allows a number in units (``0.001``, ``K (10 year)-1``), which pint keeps
    in a quantity's magnitude, not in a unit. An offset unit within others stands for
    its steps, as in UDUNITS: ``degC/day`` is ``K/day``, not 274.15 K a day.

    Raises
    ------
    InputDataError
        ``text`` is not units (named as the units of variable ``name``), or scales an
        offset unit (``10 degC``) or by a number that is not positive.

    Examples
    --------
    >>> units_quantity("K (10 year)-1")
    <Quantity(0.1, 'kelvin / year')>
    >>> float(units_quantity("0.001").magnitude), str(units_quantity("kg m-2 s-1").units)
    (0.001, 'kilogram / meter ** 2 / second')
    >>> str(units_quantity("degC (10 year)-1").units)
    'delta_degree_Celsius / year'
    """
    try:
        expression = _GROUP_POWER.sub(r")**\1", str(text))
        expression = _SPELLED_TEMPERATURE.sub(
            lambda match: _TEMPERATURES.get(match[1].lower(), "K"), expression
        )
        expression = _BARE_POINT.sub(r"\1.0\2", expression)
        expression = _UDUNITS_NAME.sub(lambda match: _UDUNITS_NAMES[match[1]], expression)
        for preprocess in ureg.preprocessors:  # cf-xarray's: "m-2" -> "m**-2", "%"...
            expression = preprocess(expression)
        parsed = ParserHelper.from_string(expression)
        powers = {ureg.get_name(unit): power for unit, power in parsed.items()}
        if len(powers) > 1 or any(power != 1 for power in powers.values()):
            powers = {_steps(unit): power for unit, power in powers.items()}
        quantity = ureg.Quantity(float(parsed.scale), _unit(powers))
    except (
        pint.errors.PintError,
        ValueError,
        AttributeError,
        TypeError,
        SyntaxError,
        AssertionError,
    ) as err:  # pint's parser asserts on some strings (cfgrib's "~")
        raise InputDataError(f"variable {name!r} has unknown units {text!r}") from err
    scale = float(quantity.magnitude)
    if not np.isfinite(scale) or scale <= 0 or (scale != 1 and not quantity._is_multiplicative):
        raise InputDataError(
            f"variable {name!r} has units {text!r}: a scale must be a positive number "
            "before units without an offset"
        )
    return quantity


def _steps(unit: str) -> str:
    """The unit of differences of values in ``unit``, ``delta_<unit>`` for an offset one.

    An offset unit's 0 is not its base unit's 0 (``degree_Celsius``).
    """
    return f"delta_{unit}" if ureg.Quantity(0.0, unit).to_base_units().magnitude else unit


def _unit(powers: dict[str, float]) -> pint.Unit:
    """The pint unit of unit names raised to powers (dimensionless for none)."""
    return ureg.Unit(" * ".join(f"{unit} ** {power:g}" for unit, power in powers.items()) or "1")


def difference_units(units: str | None) -> str | None:
    """Units of a difference of two values in ``units`` (an anomaly, a change, an RMSE).

    A difference of 1 degC is 1 K: an offset unit's differences are in its base unit
    (CF's "temperature: difference"); other units, and units it cannot read, are their
    own; None (no units) stays None.

    Examples
    --------
    >>> difference_units("degC"), difference_units("hPa"), difference_units("degF")
    ('K', 'hPa', '0.5555555555555556 K')
    >>> difference_units(None) is None
    True
    """
    if units is None:
        return None
    try:
        quantity = units_quantity(units)
    except InputDataError:
        return units
    if quantity._is_multiplicative:
        return units
    steps = ureg.Quantity(1.0, _unit({_steps(u): p for u, p in quantity.unit_items()}))
    base = steps.to_base_units()
    label, scale = format(base.units, "cf"), float(base.magnitude)
    return label if scale == 1 else f"{scale!r} {label}"


def parse_units(da: xr.DataArray, name: str | None = None) -> pint.Unit:
    """Parse the ``units`` attribute of ``da``, checking it against its standard_name.

    Parameters
    ----------
    da : xr.DataArray
        A field with a CF ``units`` attribute.
    name : str, optional
        Variable name for messages (defaults to ``da.name``).

    Returns
    -------
    pint.Unit
        The units without their scale (`units_quantity`).

    Raises
    ------
    InputDataError
        The attribute is missing, cannot be parsed, or has the wrong physical
        dimension for the variable's ``standard_name``.

    Examples
    --------
    >>> import xarray as xr
    >>> da = xr.DataArray([1.0], attrs={"units": "hPa",
    ...     "standard_name": "air_pressure_at_mean_sea_level"})
    >>> str(parse_units(da, "psl"))
    'hectopascal'
    """
    return _checked_quantity(da, name or da.name).units


def _checked_quantity(da: xr.DataArray, label: Hashable) -> pint.Quantity:
    """`units_quantity` of ``da``'s units, present and fitting its standard_name."""
    text = da.attrs.get("units")
    if text is None or str(text).strip() == "":
        raise InputDataError(f"variable {label!r} has no 'units' attribute")
    quantity = units_quantity(text, label)
    unit = quantity.units
    standard_name = da.attrs.get("standard_name")
    expected = STANDARD_UNITS.get(standard_name)
    if expected is not None and not _compatible(unit, ureg.Unit(expected)):
        raise InputDataError(
            f"variable {label!r} has units {text!r}, which do not fit its standard_name "
            f"{standard_name!r} (expected units convertible to {expected!r})"
        )
    return quantity


def _compatible(a: pint.Unit, b: pint.Unit) -> bool:
    return a.dimensionality == b.dimensionality or _water_factor(a, b) is not None


def _water_factor(source: pint.Unit, target: pint.Unit) -> float | None:
    """Factor turning a depth of water into a mass per area (or back), else None.

    Only between a depth rate and a mass flux (``mm/day``, ``kg m-2 s-1``) or a depth
    and a mass per area (``mm``, ``kg m-2``): other pairs of units one density apart
    (``m2 s-2`` and ``Pa``, ``mol m-3`` and ``mol kg-1``) are not water amounts.
    """
    pairs = (("m", "kg m-2"), ("m s-1", "kg m-2 s-1"))
    for depth, mass in (
        (ureg.Unit(a).dimensionality, ureg.Unit(b).dimensionality) for a, b in pairs
    ):
        if (source.dimensionality, target.dimensionality) == (depth, mass):
            return WATER_DENSITY
        if (source.dimensionality, target.dimensionality) == (mass, depth):
            return 1.0 / WATER_DENSITY
    return None


def in_other_units(units: object, other: object) -> bool:
    """Whether both units are given and differ as written (then they need converting).

    Examples
    --------
    >>> in_other_units("m", "km"), in_other_units("m", None), in_other_units("m", " m")
    (True, False, False)
    """
    return units is not None and other is not None and str(units).strip() != str(other).strip()


def convert_units(da: xr.DataArray, units: str, name: str | None = None) -> xr.DataArray:
    """Convert ``da`` to ``units``; the result's ``units`` attribute is ``units``.

    Parameters
    ----------
    da : xr.DataArray
        Field with a ``units`` attribute.
    units : str
        Target units (CF string).
    name : str, optional
        Variable name for messages.

    Raises
    ------
    InputDataError
        Missing or unknown units, or units that cannot be converted to ``units``.

    Examples
    --------
    >>> import xarray as xr
    >>> da = xr.DataArray([0.0, 10.0], attrs={"units": "degC"})
    >>> convert_units(da, "K").values.tolist()
    [273.15, 283.15]
    >>> pr = xr.DataArray([86.4], attrs={"units": "mm/day"})
    >>> float(convert_units(pr, "kg m-2 s-1")[0])
    0.001
    """
    label = name or da.name
    source, target = _checked_quantity(da, label), units_quantity(units)
    if source == target:
        return da.assign_attrs(units=units)
    _check_salinity(source, target, da.attrs["units"], units, label)
    factor = float(source.magnitude / target.magnitude)
    source, target = source.units, target.units
    if source.dimensionality != target.dimensionality:
        water = _water_factor(source, target)
        if water is None:
            raise InputDataError(
                f"variable {label!r} is in {da.attrs['units']!r}, which cannot be converted "
                f"to the {units!r} the model was fitted with"
            )
        factor *= water
        source = source * (ureg.Unit("kg m-3") if water > 1 else ureg.Unit("m3 kg-1"))
    magnitude = ureg.Quantity(da.data * factor, source).to(target).magnitude
    return da.copy(data=magnitude).assign_attrs(units=units)


def _check_salinity(
    source: pint.Quantity, target: pint.Quantity, text: str, units: str, label: str | None
) -> None:
    """Refuse to convert practical salinity (``psu``) to units other than ``1``.

    CF gives practical salinity (PSS-78, about 35 in the ocean) units ``1``; a
    salinity in ``0.001`` (``g/kg``, also about 35) is another quantity, which pint's
    ``psu = []`` would scale by 1000.
    """
    plain = (ureg.Unit("practical_salinity_unit"), ureg.Unit("dimensionless"))
    if ureg.Unit("practical_salinity_unit") in (source.units, target.units) and not all(
        quantity.magnitude == 1 and quantity.units in plain for quantity in (source, target)
    ):
        raise InputDataError(
            f"variable {label!r} in {text!r} cannot be converted to {units!r}: practical "
            "salinity (psu) converts to '1' alone; a salinity in '0.001' (g/kg) is another "
            "quantity"
        )
