import json
import sys

import cf_xarray  # noqa: F401  (registers the .cf accessor)
import cftime
import numpy as np
import pytest
import xarray as xr

from climlatent import datasets
from climlatent.datasets import synthetic_circulation
from climlatent.errors import InputDataError

SMALL = {"n_years": 2, "n_lat": 6, "n_lon": 8}
MM_PER_DAY = 86400.0


@pytest.fixture(scope="module")
def ds():
    return synthetic_circulation()


def test_deterministic_under_seed():
    xr.testing.assert_identical(
        synthetic_circulation(**SMALL, seed=5), synthetic_circulation(**SMALL, seed=5)
    )


def test_different_seeds_differ():
    first = synthetic_circulation(**SMALL, seed=1)
    second = synthetic_circulation(**SMALL, seed=2)
    for name in ("circulation_factor", "psl", "tas", "pr"):
        assert not np.allclose(first[name], second[name], equal_nan=True), name
    for name in ("sftlf", "slp_mode", "forced_trend"):
        xr.testing.assert_identical(first[name], second[name])


def test_member_does_not_depend_on_ensemble_size():
    one = synthetic_circulation(**SMALL, n_members=1)
    three = synthetic_circulation(**SMALL, n_members=3)
    xr.testing.assert_equal(one.psl.isel(member=0), three.psl.isel(member=0))
    assert list(three.member.values) == ["r1i1p1f1", "r2i1p1f1", "r3i1p1f1"]


@pytest.mark.parametrize(
    ("calendar", "n_time", "date_type"),
    [
        ("noleap", 730, cftime.DatetimeNoLeap),
        ("360_day", 720, cftime.Datetime360Day),
        ("gregorian", 731, cftime.DatetimeGregorian),
    ],
)
def test_dims_and_calendar(calendar, n_time, date_type):
    out = synthetic_circulation(**SMALL, n_modes=4, calendar=calendar, start="1984-01-01")
    assert dict(out.psl.sizes) == {"member": 2, "time": n_time, "lat": 6, "lon": 8}
    assert dict(out.circulation_factor.sizes) == {"member": 2, "time": n_time, "mode": 4}
    assert dict(out.slp_mode.sizes) == {"mode": 4, "lat": 6, "lon": 8}
    assert out.forced_trend.dims == ("time",)
    assert isinstance(out.time.values[0], date_type)
    assert out.time.dt.calendar in {calendar, "standard"}
    assert out.time.encoding["calendar"] == calendar
    assert out.indexes["time"].is_monotonic_increasing
    assert str(out.time.values[0])[:10] == "1984-01-01"
    assert out.time.values[-1].year == 1985


def test_monthly_frequency():
    out = synthetic_circulation(**SMALL, freq="MS")
    assert out.sizes["time"] == 24
    assert {date.day for date in out.time.values} == {1}


def test_cf_metadata(ds):
    assert ds.attrs["Conventions"] == "CF-1.8"
    assert ds.attrs["source"] == "climlatent synthetic_circulation"
    assert "synthetic_circulation(" in ds.attrs["history"]
    assert ds.time.attrs == {"standard_name": "time", "long_name": "time", "axis": "T"}
    for name, units, axis in (("lat", "degrees_north", "Y"), ("lon", "degrees_east", "X")):
        coord = ds[name]
        assert (coord.attrs["units"], coord.attrs["axis"]) == (units, axis)
        bounds = ds[coord.attrs["bounds"]]
        assert bounds.dims == (name, "bnds")
        assert (bounds[:, 0] < coord).all() and (coord < bounds[:, 1]).all()
        np.testing.assert_allclose(bounds[1:, 0], bounds[:-1, 1])
    assert ds.lat_bnds.min() == 30 and ds.lat_bnds.max() == 70
    assert ds.lon_bnds.min() == -20 and ds.lon_bnds.max() == 40
    expected = {
        "psl": ("Pa", "air_pressure_at_mean_sea_level"),
        "tas": ("K", "air_temperature"),
        "pr": ("kg m-2 s-1", "precipitation_flux"),
        "sftlf": ("%", "land_area_fraction"),
    }
    for name, (units, standard_name) in expected.items():
        assert ds[name].attrs["units"] == units
        assert ds[name].attrs["standard_name"] == standard_name
        assert ds[name].attrs["long_name"]
    for name in ds.data_vars:
        assert "units" in ds[name].attrs, name
    assert ds.cf["precipitation_flux"].name == "pr"
    assert ds.cf["latitude"].name == "lat" and ds.cf["T"].name == "time"


def test_parameters_attribute_regenerates_dataset():
    out = synthetic_circulation(**SMALL, seed=3, calendar="360_day", mask_ocean=False)
    params = json.loads(out.attrs["synthetic_parameters"])
    assert params["seed"] == 3 and params["ar_coefficients"] == pytest.approx([0.8, 0.64, 0.512])
    xr.testing.assert_identical(synthetic_circulation(**params), out)


def test_netcdf_round_trip(tmp_path):
    out = synthetic_circulation(**SMALL)
    out.to_netcdf(tmp_path / "synthetic.nc")
    back = xr.open_dataset(
        tmp_path / "synthetic.nc", decode_times=xr.coders.CFDatetimeCoder(use_cftime=True)
    )
    xr.testing.assert_allclose(back.pr, out.pr)
    assert back.time.dt.calendar == "noleap"


def test_precipitation_positive_and_nan_exactly_over_sea(ds):
    sea = ds.sftlf < 50
    assert 0 < sea.mean() < 1
    for name in ("pr", "pr_noise_free"):
        np.testing.assert_array_equal(ds[name].isnull(), sea.broadcast_like(ds[name]))
        assert ((ds[name] > 0) | sea).all()
    for name in ("psl", "tas", "tas_circulation"):
        assert ds[name].notnull().all(), name
    unmasked = synthetic_circulation(**SMALL, mask_ocean=False)
    assert unmasked.pr.notnull().all() and (unmasked.pr >= 0).all()


def test_land_fraction_smooth_percentage(ds):
    assert 0 <= ds.sftlf.min() < 1 and 99 < ds.sftlf.max() <= 100
    assert abs(ds.sftlf.diff("lon")).max() < 50


def test_patterns_orthonormal_with_documented_amplitudes(ds):
    patterns = ds.slp_mode.values.reshape(ds.sizes["mode"], -1)
    gram = patterns @ patterns.T / patterns.shape[1]
    amplitude = 1000.0 * 0.7 ** np.arange(ds.sizes["mode"])
    np.testing.assert_allclose(gram, np.diag(amplitude**2), atol=1e-6)
    np.testing.assert_allclose(patterns.mean(axis=1), 0, atol=1e-9)


def test_psl_factors_recovered_by_least_squares(ds):
    anomaly = (ds.psl - 101325.0).values.reshape(ds.sizes["member"], ds.sizes["time"], -1)
    patterns = ds.slp_mode.values.reshape(ds.sizes["mode"], -1)
    recovered, *_ = np.linalg.lstsq(
        patterns.T, anomaly.reshape(-1, patterns.shape[1]).T, rcond=None
    )
    truth = ds.circulation_factor.values.reshape(-1, ds.sizes["mode"]).T
    for k in range(ds.sizes["mode"]):
        assert np.corrcoef(recovered[k], truth[k])[0, 1] > 0.95
    residual = anomaly.reshape(-1, patterns.shape[1]) - (patterns.T @ truth).T
    assert residual.std() == pytest.approx(100.0, rel=0.02)


def test_factor_ar1_coefficients_and_unit_variance(ds):
    phi = np.array(json.loads(ds.attrs["synthetic_parameters"])["ar_coefficients"])
    np.testing.assert_allclose(phi, 0.8 ** np.arange(1, 4))
    factor = ds.circulation_factor.values  # (member, time, mode)
    for member in factor:
        lag1 = [np.corrcoef(series[:-1], series[1:])[0, 1] for series in member.T]
        np.testing.assert_allclose(lag1, phi, atol=0.03)
        np.testing.assert_allclose(member.var(axis=0), 1.0, atol=0.15)
        np.testing.assert_allclose(member.mean(axis=0), 0.0, atol=0.15)


def test_documented_circulation_equations(ds):
    normalised = ds.slp_mode / (1000.0 * 0.7 ** (ds.mode - 1))
    circulation = xr.dot(ds.circulation_factor, normalised, dim="mode")
    np.testing.assert_allclose(ds.tas_circulation, 1.5 * circulation, rtol=1e-5, atol=1e-5)
    u = (np.arange(ds.sizes["lat"]) + 0.5) / ds.sizes["lat"]
    v = (np.arange(ds.sizes["lon"]) + 0.5) / ds.sizes["lon"]
    base = xr.DataArray(2.9e-5 * (1.3 - 0.6 * v), dims="lon")
    f1 = ds.circulation_factor.sel(mode=1)
    expected = base * np.exp(
        -0.3 * circulation
        + 0.1 * xr.DataArray(u, dims="lat") * (f1**2 - 1)
        + 0.07 * ds.forced_trend
    )
    expected = expected.where(ds.sftlf >= 50).transpose(*ds.pr_noise_free.dims)
    np.testing.assert_allclose(ds.pr_noise_free, expected, rtol=1e-5)
    psl = 101325.0 + xr.dot(ds.circulation_factor, ds.slp_mode, dim="mode")
    assert float(abs(ds.psl - psl).max()) < 8 * 100.0


def test_documented_land_and_temperature_equations(ds):
    radius = np.hypot((ds.lat - 50.0) / 18.0, (ds.lon - 25.0) / 30.0)
    np.testing.assert_allclose(ds.sftlf, 100.0 / (1.0 + np.exp((radius - 1.0) / 0.1)))
    day = ds.time.dt.dayofyear
    season = np.cos(2 * np.pi * (day - 1) / ds.time.dt.days_in_year)
    expected = (
        293.15
        - 0.5 * (ds.lat - 30.0)
        - (4.0 + 8.0 * ds.sftlf / 100.0) * season
        + ds.forced_trend
        + ds.tas_circulation
    )
    residual = ds.tas - expected
    assert float(abs(residual.mean())) < 0.01
    assert float(residual.std()) == pytest.approx(1.0, abs=0.01)


def test_precipitation_magnitude_and_tail(ds):
    pr_mm = ds.pr * MM_PER_DAY
    assert 1.5 < float(pr_mm.mean()) < 4.0
    annual_max = pr_mm.groupby("time.year").max().mean()
    assert float(annual_max) > 8 * float(pr_mm.mean())
    assert float(pr_mm.max()) < 1000
    ratio = (ds.pr / ds.pr_noise_free).mean()
    assert float(ratio) == pytest.approx(1.0, abs=0.01)


def test_forced_trend_recovered_from_tas(ds):
    assert float(ds.forced_trend[0]) == 0
    assert float(ds.forced_trend[-1]) == pytest.approx(0.6, abs=0.01)
    annual_tas = ds.tas.mean(["member", "lat", "lon"]).groupby("time.year").mean()
    annual_trend = ds.forced_trend.groupby("time.year").mean()
    slope, _ = np.polyfit(annual_trend, annual_tas, 1)
    assert slope == pytest.approx(1.0, abs=0.05)


def test_default_size_is_small(ds):
    assert ds.nbytes < 150e6


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_members": 0}, "n_members"),
        ({"n_years": 2.5}, "n_years"),
        ({"n_lat": True}, "n_lat"),
        ({"n_lon": 1}, "n_lon"),
        ({"n_modes": 48, "n_lat": 6, "n_lon": 8}, "n_modes"),
        ({"calendar": "martian"}, "calendar"),
        ({"ar_coefficients": [0.5, 1.0, 0.2]}, "ar_coefficients"),
        ({"ar_coefficients": [0.5]}, "ar_coefficients"),
        ({"start": "not a date"}, "start"),
        ({"freq": "fortnightly"}, "freq"),
        ({"pr_mean": -1.0}, "pr_mean"),
        ({"psl_noise": -1.0}, "psl_noise"),
        ({"seed": -1}, "seed must be a non-negative integer"),  # was numpy's ValueError
        ({"seed": 1.5}, "seed"),  # was a TypeError
        ({"seed": True}, "seed"),  # was the dataset of seed 1
    ],
)
def test_invalid_parameters(kwargs, match):
    with pytest.raises(InputDataError, match=match):
        synthetic_circulation(**kwargs)


SAMPLES = [
    # loader, variable, sizes, calendar, first and last time, value at [0, 0, 0], mean
    (
        datasets.a1b_north_america,
        "air_temperature",
        {"time": 240, "latitude": 37, "longitude": 49},
        "360_day",
        "1860-06-01",
        "2099-06-01",
        296.07858,
        286.47763,
    ),
    (
        datasets.e1_north_america,
        "air_temperature",
        {"time": 240, "latitude": 37, "longitude": 49},
        "360_day",
        "1860-06-01",
        "2099-06-01",
        296.07858,
        286.03580,
    ),
    (
        datasets.ostia_sst,
        "surface_temperature",
        {"time": 54, "latitude": 18, "longitude": 432},
        "gregorian",
        "2006-04-16",
        "2010-09-16",
        301.65927,
        300.80844,
    ),
]


@pytest.mark.parametrize(
    ("loader", "name", "sizes", "calendar", "first", "last", "value", "mean"), SAMPLES
)
def test_sample_data_loaders(loader, name, sizes, calendar, first, last, value, mean):
    sample = loader()
    data = sample[name]
    assert list(sample.data_vars) == [name]
    assert dict(data.sizes) == sizes
    assert (data.attrs["units"], data.attrs["standard_name"]) == ("K", name)
    for coord, units in (("latitude", "degrees_north"), ("longitude", "degrees_east")):
        assert sample[coord].attrs["units"] == units
        assert sample[coord].attrs["standard_name"] == coord
    assert sample.time.attrs["standard_name"] == "time"
    assert isinstance(sample.time.values[0], cftime.datetime)
    assert sample.time.encoding["calendar"] == calendar
    assert str(sample.time.values[0])[:10] == first
    assert str(sample.time.values[-1])[:10] == last
    assert "time_bnds" in sample.coords
    assert float(data[0, 0, 0]) == pytest.approx(value, abs=1e-4)
    assert float(data.mean()) == pytest.approx(mean, abs=1e-3)


def test_sample_loader_dask_chunks():
    sample = datasets.a1b_north_america(chunks={})
    assert sample.air_temperature.chunks is not None
    xr.testing.assert_identical(sample.load(), datasets.a1b_north_america().load())


def test_ostia_land_is_missing():
    assert int(datasets.ostia_sst().surface_temperature.isnull().sum()) == 110970


def test_missing_sample_package_names_pip_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "iris_sample_data", None)
    with pytest.raises(ImportError, match="pip install iris-sample-data"):
        datasets.ostia_sst()


def test_missing_sample_file():
    with pytest.raises(FileNotFoundError, match="no_such_file.nc"):
        datasets.open_sample_data("no_such_file.nc")
