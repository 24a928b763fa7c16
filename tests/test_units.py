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
    ],
)
def test_bad_units_named(attrs, message):
    with pytest.raises(InputDataError, match=message):
        parse_units(xr.DataArray([1.0], attrs=attrs), "psl")


def test_inconvertible_units_refused():
    with pytest.raises(InputDataError, match="'psl' is in 'K'"):
        convert_units(xr.DataArray([1.0], attrs={"units": "K"}), "Pa", "psl")
