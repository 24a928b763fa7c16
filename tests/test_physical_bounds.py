import numpy as np
import pytest
import xarray as xr

from climlatent.physical_bounds import CLIPPED_ATTR, clip_to_bounds, physical_bounds


@pytest.mark.parametrize(
    ("standard_name", "units", "bounds"),
    [
        ("precipitation_flux", "kg m-2 s-1", (0.0, None)),
        ("mass_concentration_of_chlorophyll_a_in_sea_water", "kg m-3", (0.0, None)),
        ("surface_downwelling_shortwave_flux_in_air", "W m-2", (0.0, None)),
        ("relative_humidity", "%", (0.0, 100.0)),
        ("specific_humidity", "g kg-1", (0.0, 1000.0)),
        ("sea_ice_area_fraction", "1", (0.0, 1.0)),
        ("cloud_area_fraction", "percent", (0.0, 100.0)),
        ("sea_ice_area_fraction", "m", (0.0, None)),  # not a fraction's units: lower only
        ("air_temperature", "K", (None, None)),
        ("air_pressure_at_mean_sea_level", "Pa", (None, None)),
    ],
)
def test_physical_bounds_follow_the_standard_name_and_units(standard_name, units, bounds):
    assert physical_bounds({"standard_name": standard_name, "units": units}) == bounds


def test_values_beyond_both_bounds_are_set_to_them_counted_and_nan_kept():
    attrs = {"standard_name": "sea_ice_area_fraction", "units": "%"}
    da = xr.DataArray(np.array([-1.0, 50.0, 104.0, np.nan], np.float32), dims="t", attrs=attrs)
    out = clip_to_bounds(da)
    np.testing.assert_array_equal(out.values, [0.0, 50.0, 100.0, np.nan])
    assert out.dtype == np.float32 and da.values[0] == -1.0  # a new array
    assert out.attrs[CLIPPED_ATTR] == (
        "1 of 3 values below the physical bound 0 % (down to -1) set to it; "
        "1 of 3 values above the physical bound 100 % (up to 104) set to it"
    )
    assert clip_to_bounds(da.clip(0, 100)).identical(da.clip(0, 100))
    unbounded = da.assign_attrs(standard_name="air_temperature")
    assert clip_to_bounds(unbounded) is unbounded


def test_round_off_is_set_to_the_bound_without_a_record_and_records_accumulate():
    attrs = {"standard_name": "precipitation_flux", "units": "mm d-1"}
    da = xr.DataArray([-1e-9, 0.0, 20.0], dims="t", attrs=attrs)  # 1e-9 < 1e-6 * 20
    out = clip_to_bounds(da)
    assert out.values.tolist() == [0.0, 0.0, 20.0] and CLIPPED_ATTR not in out.attrs
    earlier = da.assign_attrs({CLIPPED_ATTR: "2 of 9 values below ... set to it"})
    out = clip_to_bounds(earlier.copy(data=[-3.0, 0.0, 20.0]))
    assert out.attrs[CLIPPED_ATTR].startswith("2 of 9 values below ... set to it; 1 of 3 values")


def test_lazy_field_stays_lazy_with_an_uncounted_record():
    attrs = {"standard_name": "precipitation_flux", "units": "mm d-1"}
    da = xr.DataArray(np.array([-2.0, 1.0, 3.0]), dims="t", attrs=attrs).chunk(t=2)
    out = clip_to_bounds(da)
    assert out.chunks is not None
    note = out.attrs[CLIPPED_ATTR]
    assert note == "values below the physical bound 0 mm d-1 set to it, uncounted"
    assert out.values.tolist() == [0.0, 1.0, 3.0]


def test_a_lazy_field_clipped_twice_is_recorded_once_as_the_eager_one():
    """Log1p's inverse, then an estimator's output bounds: the record said it twice."""
    attrs = {"standard_name": "precipitation_flux", "units": "mm d-1"}
    da = xr.DataArray(np.array([-2.0, 1.0, 3.0]), dims="t", attrs=attrs)
    lazy = clip_to_bounds(clip_to_bounds(da.chunk(t=2), (0.0, None)))
    assert lazy.chunks is not None and lazy.values.tolist() == [0.0, 1.0, 3.0]
    once = "values below the physical bound 0 mm d-1 set to it, uncounted"
    assert lazy.attrs[CLIPPED_ATTR] == once
    eager = clip_to_bounds(clip_to_bounds(da, (0.0, None)))
    assert eager.attrs[CLIPPED_ATTR] == (
        "1 of 3 values below the physical bound 0 mm d-1 (down to -2) set to it"
    )
    fraction = da.assign_attrs(standard_name="sea_ice_area_fraction", units="%").chunk(t=2)
    twice = clip_to_bounds(clip_to_bounds(fraction, (0.0, None)))  # then its upper bound
    assert twice.attrs[CLIPPED_ATTR] == (
        "values below the physical bound 0 % set to it, uncounted; "
        "values above the physical bound 100 % set to it, uncounted"
    )


def test_explicit_bounds_override_the_standard_name():
    da = xr.DataArray([-2.0, 1.0, 3.0], dims="t", attrs={"units": "mm d-1"})
    assert clip_to_bounds(da) is da
    out = clip_to_bounds(da, (0.0, 2.0))
    assert out.values.tolist() == [0.0, 1.0, 2.0]
    assert out.attrs[CLIPPED_ATTR].count("1 of 3 values") == 2
