import json

import cf_xarray  # noqa: F401  (registers the .cf accessor)
import numpy as np
import pytest
import xarray as xr
from scipy.optimize import minimize_scalar

from climlatent.datasets.biogeochem import BiogeochemWorld, synthetic_biogeochem
from climlatent.errors import InputDataError

SMALL = {"n_years": 2, "n_fine_lat": 16, "n_fine_lon": 24, "factor": 4}
FIELDS = ("tos", "rsds", "chl")


@pytest.fixture(scope="module")
def world():
    return synthetic_biogeochem(n_members=2, n_years=5, seed=3)


def _assert_worlds_identical(first, second):
    for one, other in zip(first, second, strict=True):
        xr.testing.assert_identical(one, other)


def test_returns_named_tuple_of_datasets(world):
    assert isinstance(world, BiogeochemWorld)
    assert all(isinstance(ds, xr.Dataset) for ds in world)
    assert world.coarse is world[0] and world.fine is world[1] and world.truth is world[2]


def test_deterministic_under_seed():
    _assert_worlds_identical(
        synthetic_biogeochem(**SMALL, seed=5), synthetic_biogeochem(**SMALL, seed=5)
    )


def test_different_seeds_differ():
    first, second = synthetic_biogeochem(**SMALL, seed=1), synthetic_biogeochem(**SMALL, seed=2)
    for name in FIELDS:
        assert not np.allclose(first.fine[name], second.fine[name], equal_nan=True), name
    assert not np.allclose(first.truth.chl_pattern, second.truth.chl_pattern, equal_nan=True)
    xr.testing.assert_identical(first.fine.sftof, second.fine.sftof)


def test_member_does_not_depend_on_ensemble_size():
    one = synthetic_biogeochem(**SMALL, n_members=1)
    three = synthetic_biogeochem(**SMALL, n_members=3)
    for name in FIELDS:
        xr.testing.assert_equal(one.fine[name].isel(member=0), three.fine[name].isel(member=0))
        xr.testing.assert_equal(one.coarse[name].isel(member=0), three.coarse[name].isel(member=0))
    xr.testing.assert_equal(one.truth.chl_pattern, three.truth.chl_pattern)
    assert list(three.fine.member.values) == ["r1i1p1f1", "r2i1p1f1", "r3i1p1f1"]


@pytest.mark.parametrize(
    ("options", "n_time"),
    [
        ({"factor": 2, "calendar": "360_day"}, 24),
        ({"factor": 4, "calendar": "gregorian"}, 24),
        ({"factor": 8, "n_years": 1, "freq": "D"}, 365),
    ],
)
def test_shapes_and_time_axis(options, n_time):
    kwargs = {**SMALL, "n_fine_lat": 16, "n_fine_lon": 32, **options}
    coarse, fine, truth = synthetic_biogeochem(n_members=2, **kwargs)
    f = kwargs["factor"]
    for name in FIELDS:
        assert dict(fine[name].sizes) == {"member": 2, "time": n_time, "lat": 16, "lon": 32}
        assert dict(coarse[name].sizes) == {
            "member": 2,
            "time": n_time,
            "lat": 16 // f,
            "lon": 32 // f,
        }
    assert fine.sftof.dims == coarse.sftof.dims == ("lat", "lon")
    assert truth.chl_noise_free.sizes == fine.chl.sizes
    assert truth.chl_pattern.dims == ("lat", "lon")
    assert truth.a.dims == ()
    assert fine.time.dt.calendar in {kwargs.get("calendar", "noleap"), "standard"}
    xr.testing.assert_identical(coarse.time, fine.time)


def test_coarse_grid_nests_the_fine_grid(world):
    coarse, fine, _ = world
    for name in ("lat", "lon"):
        fine_bnds, coarse_bnds = fine[f"{name}_bnds"].values, coarse[f"{name}_bnds"].values
        np.testing.assert_array_equal(coarse_bnds[:, 0], fine_bnds[::4, 0])
        np.testing.assert_array_equal(coarse_bnds[:, 1], fine_bnds[3::4, 1])
    assert (fine.lat_bnds.min(), fine.lat_bnds.max()) == (20.0, 60.0)
    assert (fine.lon_bnds.min(), fine.lon_bnds.max()) == (-60.0, 0.0)


def _block_mean_by_loops(values, lat_bnds, factor):
    """Independent check: loop over blocks, weights sin(north) - sin(south) (equal widths)."""
    band = np.diff(np.sin(np.deg2rad(lat_bnds)), axis=1)[:, 0]
    n_lat, n_lon = values.shape[-2] // factor, values.shape[-1] // factor
    out = np.full((*values.shape[:-2], n_lat, n_lon), np.nan)
    for i in range(n_lat):
        for j in range(n_lon):
            block = values[..., i * factor : (i + 1) * factor, j * factor : (j + 1) * factor]
            weights = np.broadcast_to(band[i * factor : (i + 1) * factor, None], block.shape)
            weights = np.where(np.isnan(block), 0.0, weights)
            total = weights.sum(axis=(-2, -1))
            mean = np.nansum(block * weights, axis=(-2, -1)) / np.where(total > 0, total, np.nan)
            out[..., i, j] = mean
    return out


@pytest.mark.parametrize("name", [*FIELDS, "sftof"])
def test_coarse_is_exact_area_weighted_block_mean(world, name):
    coarse, fine, _ = world
    expected = _block_mean_by_loops(fine[name].values.astype(np.float64), fine.lat_bnds.values, 4)
    np.testing.assert_allclose(coarse[name].values, expected, rtol=2e-6)


def test_nan_exactly_over_land_and_coarse_nan_only_when_all_land(world):
    coarse, fine, truth = world
    land = fine.sftof == 0
    assert set(np.unique(fine.sftof)) == {0.0, 100.0} and 0 < land.mean() < 0.2
    for da in (*(fine[name] for name in FIELDS), truth.chl_noise_free, truth.chl_pattern):
        np.testing.assert_array_equal(da.isnull(), land.broadcast_like(da))
    blocks = land.values.reshape(8, 4, 12, 4)
    all_land, some_land = blocks.all(axis=(1, 3)), blocks.any(axis=(1, 3))
    assert all_land.any() and (some_land & ~all_land).any()
    for name in FIELDS:
        nan = coarse[name].isnull()
        np.testing.assert_array_equal(nan, np.broadcast_to(all_land, nan.shape))
    np.testing.assert_array_equal(coarse.sftof == 0, all_land)
    partly_sea = (coarse.sftof > 1e-9) & (coarse.sftof < 100 - 1e-9)  # round-off on all-sea
    np.testing.assert_array_equal(partly_sea, some_land & ~all_land)


def _insolation(lat, season):
    """Daily-mean TOA insolation, written out from the docstring."""
    phi = np.deg2rad(lat)
    delta = -np.deg2rad(23.44) * np.cos(2 * np.pi * (season + 10 / 365))
    h0 = np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1, 1))
    geometry = h0 * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(h0)
    return 1361 / np.pi * (1 + 0.033 * np.cos(2 * np.pi * season)) * geometry


def _calendar(ds):
    season = (ds.time.dt.dayofyear - 1) / ds.time.dt.days_in_year
    decimal_year = ds.time.dt.year + season
    return season, decimal_year - decimal_year[0]


def test_documented_driver_equations(world):
    fine = world.fine
    season, years = _calendar(fine)
    lat = fine.lat
    climate = (
        273.15
        + 27
        - 0.45 * (lat - 20)
        + (1 + 0.1 * (lat - 20)) * np.cos(2 * np.pi * (season - 0.65))
        + 0.2 * years / 10
    )
    zeta = ((fine.tos - climate) / 0.6).values
    assert np.nanstd(zeta) == pytest.approx(1.0, abs=0.05)
    assert abs(np.nanmean(zeta)) < 0.3  # large-scale, persistent: few degrees of freedom
    lag1 = np.nanmean(zeta[:, 1:] * zeta[:, :-1]) / np.nanmean(zeta**2)
    assert lag1 == pytest.approx(0.7, abs=0.05)
    clear = 0.6 * _insolation(lat, season) * np.exp(0.01 * years / 10)
    cloud = (fine.rsds / clear - 1) / 0.25
    assert float(abs(cloud).max()) < 1
    eta = np.arctanh(cloud.values)
    assert np.nanstd(eta) == pytest.approx(1.0, abs=0.05)
    assert abs(np.nanmean(eta)) < 0.1


def _growth_laws(fine, truth):
    temperature = fine.tos.astype(np.float64) - 273.15
    radiation = fine.rsds.astype(np.float64)
    g_t = truth.a * np.exp(truth.b * temperature)
    g_r = truth.c * radiation + truth.d * radiation**2
    return g_t, g_r


def test_chlorophyll_follows_documented_equation(world):
    _, fine, truth = world
    g_t, g_r = _growth_laws(fine, truth)
    noise_free = truth.chl_scale * truth.chl_pattern * g_t * g_r
    np.testing.assert_allclose(
        truth.chl_noise_free, noise_free.transpose(*fine.chl.dims), rtol=1e-5
    )
    residual = np.log(fine.chl) - np.log(noise_free)
    assert float(residual.mean()) == pytest.approx(0.0, abs=0.01)
    assert float(residual.std()) == pytest.approx(float(truth.chl_noise), rel=0.02)
    assert float(abs(residual).max()) < 6 * 0.3


MISSPECIFIED = {
    "light_half_saturation": 100.0,
    "temperature_optimum": 18.0,
    "temperature_width": 8.0,
    "nutrient_half_saturation": 0.8,
}


def test_misspecified_laws_follow_documented_equations():
    """Each law outside the downscalers' family, recomputed in numpy from the returned fields."""
    _, fine, truth = synthetic_biogeochem(n_years=2, seed=3, **MISSPECIFIED)
    temperature = fine.tos.astype(np.float64) - 273.15
    radiation = fine.rsds.astype(np.float64)
    envelope = np.exp(-(((temperature - 18.0) / 8.0) ** 2))
    g_t = truth.a * np.exp(truth.b * temperature) * envelope
    g_r = truth.c * 100.0 * radiation / (100.0 + radiation)
    nutrient = truth.nutrient
    limitation = nutrient / (0.8 + nutrient)
    noise_free = truth.chl_scale * truth.chl_pattern * g_t * g_r * limitation
    np.testing.assert_allclose(
        truth.chl_noise_free, noise_free.transpose(*fine.chl.dims), rtol=1e-5
    )
    # the nutrient: exp(-0.1 (T - 15)) times upwelling with log-sd 0.5 the proxies omit
    log_upwelling = np.log(nutrient) + 0.1 * (temperature - 15.0)
    assert float(log_upwelling.std()) == pytest.approx(0.5, rel=0.05)
    assert abs(float(xr.corr(log_upwelling, temperature))) < 0.05
    for name, value in MISSPECIFIED.items():
        assert float(truth[name]) == value and truth[name].attrs["units"]


def test_misspecification_off_leaves_the_world_unchanged():
    plain = synthetic_biogeochem(n_years=1, seed=2)
    again = synthetic_biogeochem(n_years=1, seed=2, temperature_width=3.0)  # no optimum: unused
    xr.testing.assert_identical(plain.fine.chl, again.fine.chl)
    assert "nutrient" not in plain.truth and "temperature_optimum" not in plain.truth


def test_values_in_a_realistic_range(world):
    _, fine, truth = world
    celsius = fine.tos - 273.15
    assert -1.8 < float(celsius.min()) and float(celsius.max()) < 35
    assert 5 < float(fine.rsds.min()) and float(fine.rsds.max()) < 400
    mg_per_m3 = fine.chl * 1e6
    assert 0.05 < float(mg_per_m3.quantile(0.05)) and float(mg_per_m3.quantile(0.95)) < 5
    _, g_r = _growth_laws(fine, truth)
    assert float(g_r.min()) > 0
    assert float(fine.rsds.max()) < -float(truth.c) / (2 * float(truth.d))  # increasing law


def _fit_growth_laws(fine, truth):
    """Least squares of log chl - log P = k + b T + log(R + r R^2), profiled over r = d / c."""
    ocean = fine.chl.notnull().values
    y = np.log((fine.chl / truth.chl_pattern).values[ocean])
    temperature = (fine.tos.values[ocean] - 273.15).astype(np.float64)
    radiation = fine.rsds.values[ocean].astype(np.float64)
    design = np.column_stack([np.ones_like(temperature), temperature])

    def solve(ratio):
        target = y - np.log(radiation) - np.log1p(ratio * radiation)
        coef, residual, *_ = np.linalg.lstsq(design, target, rcond=None)
        return coef, float(residual[0])

    low = -1 / radiation.max() + 1e-9
    ratio = minimize_scalar(lambda r: solve(r)[1], bounds=(low, 1e-2), method="bounded").x
    (k, b), _ = solve(ratio)
    return np.exp(k), b, ratio


@pytest.mark.parametrize(
    "law", [{}, {"a": 0.8, "b": 0.045, "c": 4e-3, "d": -2.5e-6, "chl_noise": 0.5}]
)
def test_growth_laws_recoverable_from_fine_data(law):
    _, fine, truth = synthetic_biogeochem(n_years=4, seed=7, **law)
    scale, b, ratio = _fit_growth_laws(fine, truth)
    assert b == pytest.approx(float(truth.b), abs=2e-3)
    assert ratio == pytest.approx(float(truth.d / truth.c), rel=0.15)  # weak curvature
    assert scale == pytest.approx(float(truth.chl_scale * truth.a * truth.c), rel=0.05)


def test_cf_metadata(world):
    coarse, fine, truth = world
    expected = {
        "tos": ("K", "sea_surface_temperature"),
        "rsds": ("W m-2", "surface_downwelling_shortwave_flux_in_air"),
        "chl": ("kg m-3", "mass_concentration_of_chlorophyll_a_in_sea_water"),
        "sftof": ("%", "sea_area_fraction"),
    }
    for ds in (coarse, fine):
        assert ds.attrs["Conventions"] == "CF-1.8"
        assert ds.attrs["source"] == "climlatent synthetic_biogeochem"
        assert "synthetic_biogeochem(" in ds.attrs["history"] and ds.attrs["title"]
        for name, (units, standard_name) in expected.items():
            attrs = ds[name].attrs
            assert (attrs["units"], attrs["standard_name"]) == (units, standard_name)
            assert attrs["long_name"]
        assert ds.chl.attrs["cell_methods"] == "time: mean area: mean where sea"
        assert ds.cf["sea_surface_temperature"].name == "tos"
        assert ds.cf["latitude"].name == "lat" and ds.cf["longitude"].name == "lon"
        assert ds.cf["T"].name == "time" and ds.time.encoding["calendar"] == "noleap"
        for name, axis in (("lat", "Y"), ("lon", "X")):
            assert ds[name].attrs["axis"] == axis
            bounds = ds[ds[name].attrs["bounds"]]
            assert ((bounds[:, 0] < ds[name]) & (ds[name] < bounds[:, 1])).all()
    units = {"a": "d-1", "b": "degC-1", "c": "m2 W-1", "d": "m4 W-2", "chl_scale": "kg m-3 d"}
    for name, value in units.items():
        assert truth[name].attrs["units"] == value and truth[name].attrs["long_name"]
    assert truth.chl_noise_free.attrs["units"] == "kg m-3"
    assert {name: float(truth[name]) for name in "abcd"} == {
        "a": 0.59,
        "b": 0.0633,
        "c": 6e-3,
        "d": -4e-6,
    }


def test_parameters_attribute_regenerates_world():
    world = synthetic_biogeochem(**SMALL, seed=4, calendar="360_day", b=0.05)
    params = json.loads(world.fine.attrs["synthetic_parameters"])
    assert params["seed"] == 4 and params["b"] == 0.05 and params["factor"] == 4
    assert world.coarse.attrs["synthetic_parameters"] == world.fine.attrs["synthetic_parameters"]
    _assert_worlds_identical(synthetic_biogeochem(**params), world)


def test_netcdf_round_trip(tmp_path):
    for name, ds in synthetic_biogeochem(**SMALL)._asdict().items():
        ds.to_netcdf(tmp_path / f"{name}.nc")
        back = xr.open_dataset(
            tmp_path / f"{name}.nc", decode_times=xr.coders.CFDatetimeCoder(use_cftime=True)
        )
        xr.testing.assert_allclose(back, ds)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"n_members": 0}, "n_members must be a positive integer"),
        ({"n_years": 1.5}, "n_years must be a positive integer"),
        ({"factor": True}, "factor must be a positive integer"),
        ({"n_fine_lat": 18}, "n_fine_lat=18 must be a multiple of factor=4"),
        ({"n_fine_lon": 4}, "n_fine_lon=4 must be a multiple of factor=4 and at least 2"),
        ({"calendar": "julian_ish"}, "unknown calendar"),
        ({"freq": "fortnightly"}, "cannot build"),
        ({"a": 0.0}, "a must be positive"),
        ({"c": -1e-3}, "c must be positive"),
        ({"chl_scale": float("nan")}, "chl_scale must be positive"),
        ({"chl_noise": -0.1}, "chl_noise must be non-negative"),
        ({"tos_anomaly": -1.0}, "tos_anomaly must be non-negative"),
        ({"cloud_amplitude": 1.0}, r"cloud_amplitude must be in \[0, 1\)"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"b": float("inf")}, "b must be a finite number"),
        ({"d": "small"}, "d must be a finite number"),
        ({"a": "0.5"}, "a must be positive"),
        ({"d": -2e-5}, "the light law c R \\+ d R\\*\\*2 .* peaks at R = 150.0 W m-2"),
        ({"light_half_saturation": 0.0}, "light_half_saturation must be positive"),
        ({"nutrient_half_saturation": -1.0}, "nutrient_half_saturation must be positive"),
        ({"temperature_optimum": float("nan")}, "temperature_optimum must be a finite number"),
    ],
)
def test_bad_parameters_raise(options, match):
    with pytest.raises(InputDataError, match=match):
        synthetic_biogeochem(**{**SMALL, **options})
