import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from climlatent.errors import InputDataError
from climlatent.transforms import Anomalies
from climlatent.units import convert_units, difference_units, parse_units


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


@pytest.mark.parametrize(
    ("units", "target"),
    [
        ("0.001", "1"),  # CMIP6 salinity (g/kg)
        ("1e-3", "1"),
        ("1", "1e-3"),
        ("K (10 year)-1", "K year-1"),  # linear_trend's units
        ("kg m-2 s-1 (10 year)-1", "kg m-2 s-1 (100 year)-1"),
        ("mm (10 day)-1", "mm s-1"),
        ("1e-3 kg m-3", "kg m-3"),
        ("degC/day", "K/day"),  # an offset unit within others: its steps, not 274.15 K
        ("degC (10 year)-1", "K (10 year)-1"),  # linear_trend of a field in degC
        ("degF s-1", "K s-1"),
        ("ppb", "ppm"),  # UDUNITS' fractions, which pint lacks
        ("ppmv", "mol mol-1"),
        ("ppt s-1", "ppbv s-1"),  # parts per trillion, not pint's picopint
        ("pptv", "1"),
        ("degrees_true", "degree"),  # a bearing
    ],
)
def test_a_number_in_the_units_scales_them_as_udunits_does(units, target):
    cf_units = pytest.importorskip("cf_units")
    values = np.array([35.0, -2.5])
    expected = cf_units.Unit(units).convert(values, cf_units.Unit(target))
    out = convert_units(xr.DataArray(values, attrs={"units": units}, name="so"), target)
    np.testing.assert_allclose(out.values, expected, rtol=1e-12)
    assert str(parse_units(out)) == str(parse_units(xr.DataArray(1, attrs={"units": target})))


def test_a_scale_keeps_float32_fields_float32():
    out = convert_units(xr.DataArray(np.float32([35.0]), attrs={"units": "0.001"}), "1")
    assert out.dtype == np.float32


def test_units_equal_up_to_spelling_convert_to_the_same_values():
    same = convert_units(xr.DataArray([35.0], attrs={"units": "0.001"}), "1e-3")
    assert same.values.tolist() == [35.0] and same.attrs["units"] == "1e-3"


@pytest.mark.parametrize(
    ("units", "target", "message"),
    [
        ("psu", "0.001", "practical salinity \\(psu\\) converts to '1' alone"),
        ("0.001", "psu", "practical salinity"),
        ("psu", "%", "practical salinity"),
        ("10 degC", "K", "a scale must be a positive number before units without an offset"),
        ("-1 K", "K", "a scale must be a positive number"),
    ],
)
def test_salinities_and_scaled_offsets_are_refused(units, target, message):
    """pint's psu is dimensionless 1: 35 psu would become 35000 in '0.001' (g/kg)."""
    with pytest.raises(InputDataError, match=f"'so'.*{message}"):
        convert_units(xr.DataArray([35.0], attrs={"units": units}), target, "so")


def test_practical_salinity_converts_to_its_cf_canonical_units():
    out = convert_units(xr.DataArray([35.0], attrs={"units": "psu"}), "1")
    assert out.values.tolist() == [35.0]


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        ("degC", "K"),
        ("degF", "0.5555555555555556 K"),
        ("hPa", "hPa"),
        ("K", "K"),
        ("degC/day", "degC/day"),
    ],
)
def test_differences_of_an_offset_unit_are_in_its_base_unit(units, expected):
    assert difference_units(units) == expected


def test_anomalies_of_a_field_in_degc_convert_as_differences():
    """Labelled degC, a 0.25 degC anomaly converted to K read 273.4 K."""
    time = xr.date_range("2000-01-01", periods=24, freq="MS", use_cftime=True)
    tas = xr.DataArray(
        20.0 + np.arange(24.0) / 4, coords={"time": time}, name="tas", attrs={"units": "degC"}
    )
    anomalies = Anomalies(freq="month").fit_forward(tas)
    assert anomalies.attrs["units"] == "K"
    np.testing.assert_array_equal(convert_units(anomalies, "K").values, anomalies.values)
    np.testing.assert_allclose(np.abs(anomalies.values), 1.5)


@pytest.mark.parametrize(
    "units", ["deg C", "degrees C", "degrees_C", "degree_C", "degrees_celsius", "degrees Celsius"]
)
def test_temperatures_spelled_with_degree_apart_are_temperatures(units):
    """pint read 'deg C' as an angle times a Celsius step: 15 'deg C' became 0.26 K."""
    out = convert_units(xr.DataArray([15.0], attrs={"units": units}), "K", "tos")
    np.testing.assert_allclose(out.values, [288.15])


def test_numbers_written_with_a_bare_point_and_odd_strings():
    """'1.e-3' was read as per elementary charge cubed; '~' (cfgrib) raised an
    AssertionError from pint's parser."""
    out = convert_units(xr.DataArray([35.0], attrs={"units": "1.e-3"}), "1")
    np.testing.assert_allclose(out.values, [0.035])
    with pytest.raises(InputDataError, match="'v' has unknown units '~'"):
        parse_units(xr.DataArray([1.0], attrs={"units": "~"}), "v")


def test_parts_per_trillion_are_a_fraction_not_a_volume():
    co2 = xr.DataArray([410.0], attrs={"units": "ppm"}, name="co2")
    sf6 = xr.DataArray([10.0], attrs={"units": "ppt"}, name="sf6")
    np.testing.assert_allclose(convert_units(co2, "ppb").values, [410e3], rtol=1e-12)
    np.testing.assert_allclose(convert_units(sf6, "1").values, [10e-12], rtol=1e-12)
    with pytest.raises(InputDataError, match="sf6"):
        convert_units(sf6, "m3")


KELVIN_PER_UNIT = {  # unit: (kelvin per unit step, kelvin at its 0)
    "K": (1.0, 0.0),
    "mK": (1e-3, 0.0),
    "degC": (1.0, 273.15),
    "degree_Celsius": (1.0, 273.15),
    "celsius": (1.0, 273.15),
    "degF": (5 / 9, 459.67 * 5 / 9),
    "degree_Fahrenheit": (5 / 9, 459.67 * 5 / 9),
    "degR": (5 / 9, 0.0),
}


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    st.sampled_from(sorted(KELVIN_PER_UNIT)),
    st.sampled_from(sorted(KELVIN_PER_UNIT)),
    st.lists(st.floats(-1e4, 1e4), min_size=2, max_size=4),
)
def test_temperatures_convert_and_differences_are_in_steps_of_their_unit(units, target, values):
    """Every pair of temperature units converts as the affine formula does and back, and
    a difference of values in ``units`` is in `difference_units`: its steps in kelvin."""
    values = np.array(values)
    (step, zero), (target_step, target_zero) = KELVIN_PER_UNIT[units], KELVIN_PER_UNIT[target]
    converted = convert_units(xr.DataArray(values, attrs={"units": units}), target)
    expected = (step * values + zero - target_zero) / target_step
    np.testing.assert_allclose(converted, expected, rtol=1e-12, atol=1e-9)
    back = convert_units(converted, units)
    np.testing.assert_allclose(back, values, rtol=1e-12, atol=1e-9)
    change = xr.DataArray(values[1:] - values[0], attrs={"units": difference_units(units)})
    np.testing.assert_allclose(
        convert_units(change, "K"), step * (values[1:] - values[0]), rtol=1e-12, atol=1e-9
    )
