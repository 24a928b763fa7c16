"""quantile_error, linear_trend and trend_error against numpy computed cell by cell."""

import numpy as np
import pytest
import xarray as xr
from numpy_reference import decimal_years, polyfit_trends, weighted_rms
from provenance import written_and_read

from climlatent.errors import InputDataError
from climlatent.metrics import linear_trend, quantile_error, trend_error
from conftest import rectilinear


@pytest.mark.parametrize("q", [0.9, 0.1, 0.5])
def test_quantile_error_equals_numpy_quantiles_and_area_weights(q):
    truth = rectilinear(n_lat=7, n_lon=5, n_time=40, seed=3)
    prediction = 0.8 * truth + 0.3 * rectilinear(n_lat=7, n_lon=5, n_time=40, seed=4)
    prediction = prediction.where(prediction.lon < 300)  # a missing column, left out
    expected = np.quantile(prediction.values, q, axis=0) - np.quantile(truth.values, q, axis=0)
    error = quantile_error(prediction, truth, q=q)
    np.testing.assert_allclose(float(error), weighted_rms(expected, truth.lat.values), rtol=1e-12)
    assert error.attrs["units"] == "K"


def test_quantile_error_refuses_a_probability_outside_0_1():
    truth = rectilinear()
    with pytest.raises(ValueError, match="q must be in"):
        quantile_error(truth, truth, q=90)


@pytest.mark.parametrize(
    ("calendar", "freq"),
    [("noleap", "MS"), ("360_day", "MS"), ("standard", "MS"), ("noleap", "6h")],
)
def test_linear_trend_equals_polyfit_per_cell(calendar, freq):
    rng = np.random.default_rng(0)
    time = xr.date_range("1999-01-01", periods=30, freq=freq, calendar=calendar, use_cftime=True)
    field = rectilinear(n_lat=4, n_lon=3, n_time=30).assign_coords(time=time)
    field = field + 0.05 * np.arange(30.0)[:, None, None] * rng.normal(size=(1, 4, 3))
    field[5, 1, 2] = np.nan
    years = decimal_years(field.time.values)
    expected = np.empty((4, 3))
    for i in range(4):
        for j in range(3):
            expected[i, j] = 10 * np.polyfit(years, field.values[:, i, j], 1)[0]
    expected[1, 2] = np.nan  # a cell with a missing value has no trend
    trend = linear_trend(field)
    np.testing.assert_allclose(trend.values, expected, rtol=1e-9)  # 6-hourly steps: hours count
    assert trend.attrs["units"] == "K (10 year)-1"


def test_trend_error_equals_area_weighted_rms_of_polyfit_trends():
    rng = np.random.default_rng(1)
    time = xr.date_range("2040-01-01", periods=25, freq="YS", calendar="360_day", use_cftime=True)
    truth = rectilinear(n_lat=6, n_lon=4, n_time=25).assign_coords(time=time)
    ramp = np.arange(25.0)[:, None, None]
    prediction = (
        truth + 0.02 * ramp * rng.normal(size=(1, 6, 4)) + 0.1 * rng.normal(size=truth.shape)
    )
    years = decimal_years(truth.time.values)
    expected = polyfit_trends(prediction.values, years) - polyfit_trends(truth.values, years)
    error = trend_error(prediction, truth)
    np.testing.assert_allclose(float(error), weighted_rms(expected, truth.lat.values), rtol=1e-10)
    assert error.attrs["units"] == "K (10 year)-1"


def test_linear_trend_of_an_empty_selection_says_so():
    field = rectilinear(n_lat=2, n_lon=2, n_time=4).isel(time=slice(0, 0))
    with pytest.raises(InputDataError, match="needs 2 steps or more"):
        linear_trend(field)


@pytest.mark.parametrize("dtype", [">f2", "<f2", ">f4", ">i2"])
def test_linear_trend_of_a_narrow_or_big_endian_field_equals_polyfit_of_its_values(dtype):
    """Two years of daily float16 temperatures near 280 K summed to inf in float16: every
    trend was NaN (silently, as for a missing value); float64 sums give polyfit's."""
    time = xr.date_range("2001-01-01", periods=730, calendar="noleap", use_cftime=True)
    field = 280 + 5 * rectilinear(n_lat=2, n_lon=3, n_time=730).assign_coords(time=time)
    field = field + 0.001 * np.arange(730.0)[:, None, None]
    stored = field.astype(dtype)
    expected = polyfit_trends(stored.values.astype(np.float64), decimal_years(time.values))
    trend = linear_trend(stored)
    assert trend.dtype == np.float64
    np.testing.assert_allclose(trend.values, expected, rtol=1e-9)


def test_linear_trend_is_described_as_a_trend_and_written_as_computed(tmp_path):
    """The trend took the attributes of the field and of its time axis: standard_name
    'time', axis 'T', and the field's valid_range of 200..330 K, by which a CF reader
    masked every trend (96 of 96 in a file)."""
    time = xr.date_range("2000-01-01", periods=30, freq="MS", calendar="noleap", use_cftime=True)
    field = 280 + rectilinear(n_time=30, valid_range=np.float32([200, 330]))
    field = field.assign_coords(time=time).assign_attrs(field.attrs)
    field["time"].attrs = {"standard_name": "time", "axis": "T", "long_name": "time"}
    trend = linear_trend(field)
    assert trend.attrs == {"long_name": "linear trend along time", "units": "K (10 year)-1"}
    values, attrs = written_and_read(trend, tmp_path)
    expected = polyfit_trends(field.values, decimal_years(time.values))
    np.testing.assert_allclose(values, expected, rtol=1e-6)
    assert "standard_name" not in attrs and "valid_range" not in attrs
