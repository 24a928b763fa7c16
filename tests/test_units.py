import numpy as np
import pytest
import xarray as xr

from climlatent.errors import InputDataError
from climlatent.units import convert_units, parse_units


@pytest.mark.parametrize(
    ("values", "units", "target", "expected"),
    [
        ([1013.25], "hPa", "Pa", [101325.0]),
        ([0.0, -273.15], "degC", "K", [273.15, 0.0]),
        ([300.0], "K", "degC", [26.85]),
        ([86.4], "mm/day", "kg m-2 s-1", [1e-3]),
        ([1e-3], "kg m-2 s-1", "mm d-1", [86.4]),
        ([2.0], "kg m-2 s-1", "kg m-2 s-1", [2.0]),
        ([25.0], "mm", "kg m-2", [25.0]),  # a precipitation amount
        ([3.0], "kg m-2", "m", [3e-3]),
    ],
)
def test_conversions(values, units, target, expected):
    out = convert_units(xr.DataArray(values, attrs={"units": units}, name="v"), target)
    np.testing.assert_allclose(out.values, expected, rtol=1e-12)
    assert out.attrs["units"] == target


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({}, "'psl' has no 'units'"),
        ({"units": "furlongs_per_bogus"}, "'psl' has unknown units"),
        ({"units": "K", "standard_name": "air_pressure_at_mean_sea_level"}, "do not fit its"),
        ({"units": "m2 s-2", "standard_name": "air_pressure_at_mean_sea_level"}, "do not fit"),
    ],
)
def test_bad_units_named(attrs, message):
    with pytest.raises(InputDataError, match=message):
        parse_units(xr.DataArray([1.0], attrs=attrs), "psl")


def test_inconvertible_units_refused():
    with pytest.raises(InputDataError, match="'psl' is in 'K'"):
        convert_units(xr.DataArray([1.0], attrs={"units": "K"}), "Pa", "psl")


@pytest.mark.parametrize(
    ("units", "target"),
    [("m2 s-2", "Pa"), ("mol m-3", "mol kg-1"), ("kg m-3", "1"), ("W kg-1", "W m-3")],
)
def test_only_water_amounts_convert_through_the_density_of_water(units, target):
    """Units one density (length3 / mass) apart that are no depth of water: refused, as
    UDUNITS refuses them (they were multiplied or divided by 1000)."""
    with pytest.raises(InputDataError, match=f"'v' is in '{units}'"):
        convert_units(xr.DataArray([1.0], attrs={"units": units}), target, "v")
