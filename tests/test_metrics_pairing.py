"""Scores compare fields point for point: same coordinates, the same valid points."""

import datetime
import warnings

import numpy as np
import pytest
import xarray as xr

from climlatent.errors import InputDataError
from climlatent.grid import cell_area
from climlatent.metrics import (
    area_mean,
    correlation,
    latent_factor_correlation,
    linear_probe_r2,
    linear_trend,
    mse,
    mse_skill_score,
    quantile_error,
    r2,
    r2_map,
    rank_histogram,
    rmse_map,
    spread_skill_ratio,
    trend_error,
)
from climlatent.metrics.spectra import log_spectral_distance, radial_power_spectrum
from climlatent.units import parse_units
from conftest import rectilinear


def _band_weights(da: xr.DataArray) -> np.ndarray:
    """Exact spherical areas (up to a constant) of the cells of ``rectilinear``'s grid."""
    lat = np.deg2rad(da.lat.values)
    edges = np.concatenate([[1.5 * lat[0] - 0.5 * lat[1]], (lat[1:] + lat[:-1]) / 2])
    edges = np.append(edges, 1.5 * lat[-1] - 0.5 * lat[-2])
    return np.broadcast_to(np.diff(np.sin(edges))[:, None], da.shape[-2:])


def test_r2_map_is_nan_where_the_prediction_is_missing_not_perfect():
    truth = rectilinear(n_lat=2, n_lon=2, n_time=12)
    prediction = truth + xr.ones_like(truth) * np.linspace(-1, 1, 12)[:, None, None]
    prediction[:, 0, 0] = np.nan  # a cell with no prediction
    prediction[3, 1, 1] = np.nan  # a missing step
    score = r2_map(prediction, truth)
    assert np.isnan(score[0, 0])
    steps = np.arange(12) != 3
    p, t = prediction.values[steps, 1, 1], truth.values[steps, 1, 1]
    expected = 1 - np.sum((p - t) ** 2) / np.sum((t - t.mean()) ** 2)  # sklearn's r2_score
    np.testing.assert_allclose(float(score[1, 1]), expected, rtol=1e-12)
    assert np.isnan(r2_map(truth * 0 + 1, truth * 0 + 1)).all()  # constant truth: undefined


def test_r2_and_skill_score_average_both_terms_over_the_same_cells():
    truth = rectilinear(n_lat=6, n_lon=8, n_time=20, seed=3)
    truth[:, 2, 3] *= 50  # a high-variance cell
    prediction = 0.8 * truth + 0.1 * rectilinear(n_lat=6, n_lon=8, n_time=20, seed=4)
    prediction[:, 2, 3] = np.nan  # another land mask in the prediction
    p, t = prediction.values, truth.values
    weights = np.broadcast_to(_band_weights(truth), t.shape) * np.isfinite(p)
    sse = np.nansum(weights * (p - t) ** 2)
    sst = np.nansum(weights * (t - t.mean(axis=0)) ** 2)
    np.testing.assert_allclose(float(r2(prediction, truth)), 1 - sse / sst, rtol=1e-9)
    reference = truth.mean("time")
    np.testing.assert_allclose(
        float(mse_skill_score(prediction, truth, reference, ("time",))), 1 - sse / sst, rtol=1e-9
    )


@pytest.mark.parametrize(
    "score", [mse, r2, r2_map, rmse_map, correlation, quantile_error, trend_error]
)
def test_fields_on_other_coordinates_are_refused_naming_the_dim(score):
    truth = rectilinear(n_lat=4, n_lon=8, n_time=10)
    relabelled = truth.assign_coords(lon=((truth.lon + 180) % 360) - 180).sortby("lon")
    with pytest.raises(InputDataError, match="'lon'"):
        score(relabelled, truth)
    shifted = truth.assign_coords(time=truth.time.values + datetime.timedelta(days=1))
    with pytest.raises(InputDataError, match="'time'"):
        score(shifted, truth)


def _curvilinear(n_time: int = 200, seed: int = 0) -> tuple[xr.DataArray, xr.DataArray]:
    """A truth and a 4-member ensemble on 2-D latitude/longitude (dims y, x, no index)."""
    lat, lon = np.meshgrid(np.linspace(-59.9, 60.1, 6), np.arange(0.0, 360, 45.0), indexing="ij")
    coords = {
        "lat": (("y", "x"), lat, {"standard_name": "latitude", "units": "degrees_north"}),
        "lon": (("y", "x"), lon, {"standard_name": "longitude", "units": "degrees_east"}),
    }
    rng = np.random.default_rng(seed)
    signal = 3.0 * np.cos(np.deg2rad(lat)) * rng.normal(size=(n_time, *lat.shape))
    truth = xr.DataArray(signal + rng.normal(size=signal.shape), dims=("time", "y", "x"))
    members = signal[..., None] + rng.normal(size=(*signal.shape, 4))
    ensemble = xr.DataArray(members, dims=("time", "y", "x", "realization"))
    return ensemble.assign_coords(coords), truth.assign_coords(coords)


def test_fields_on_a_curvilinear_grid_in_another_row_order_are_refused_not_paired_by_position():
    ensemble, truth = _curvilinear()
    flipped = ensemble.isel(y=slice(None, None, -1))  # the same cells, rows north to south
    values = ensemble.transpose("time", "y", "x", "realization").values.reshape(-1, 4)
    target = truth.values.ravel()
    area = np.broadcast_to(cell_area(truth).values, truth.shape).ravel()
    spread = np.average(values.var(axis=1, ddof=1), weights=area)
    error = np.average((values.mean(axis=1) - target) ** 2, weights=area)
    np.testing.assert_allclose(
        spread_skill_ratio(ensemble, truth), np.sqrt(5 / 4 * spread / error), rtol=1e-12
    )
    # paired by position, the flipped ensemble scored 0.30 for 1.01
    for score in (spread_skill_ratio, rank_histogram):
        with pytest.raises(InputDataError, match="same grid.*'lat' differs by up to 120"):
            score(flipped, truth)
    with pytest.raises(InputDataError, match="not on the same grid.*'lat'"):
        mse(flipped.isel(realization=0), truth)  # was: "has no latitude coordinate"
    # float64 copies of float32 coordinates are the same grid, scored on the truth's cells
    narrow = truth.assign_coords(lat=truth.lat.astype(np.float32), lon=truth.lon.astype(np.float32))
    np.testing.assert_allclose(
        mse(ensemble.isel(realization=0), narrow, ("time",)).values,
        mse(ensemble.isel(realization=0), truth, ("time",)).values,
        rtol=1e-6,
    )


def test_a_scored_field_with_an_unreadable_grid_is_refused_with_the_whole_reason():
    """The grid check's message was cut at its last ': ', leaving of a latitude in
    radians only "...in the truth's order: convert it first"."""
    ensemble, truth = _curvilinear()
    field = ensemble.isel(realization=0).rename("tas")
    field = field.assign_coords(lat=field.lat.assign_attrs(units="radians"))
    with pytest.raises(InputDataError, match="variable 'tas': latitude coordinate 'lat' is in"):
        mse(field, truth)


def test_area_of_a_regional_grid_across_the_antimeridian_labelled_minus_180_to_180():
    east = np.array([160.0, 165.0, 170.0, 175.0, 180.0, 185.0, 190.0, 195.0])
    field = xr.DataArray(
        np.arange(8.0)[None, :] * np.ones((3, 1)),
        dims=("lat", "lon"),
        coords={"lat": [-5.0, 0.0, 5.0], "lon": east},
    )
    sorted_minus_180 = field.assign_coords(lon=((east + 180) % 360) - 180).sortby("lon")
    np.testing.assert_allclose(
        cell_area(sorted_minus_180).values,
        cell_area(field)[:, [4, 5, 6, 7, 0, 1, 2, 3]].values,
        rtol=1e-12,
    )
    np.testing.assert_allclose(float(area_mean(sorted_minus_180)), 3.5, rtol=1e-12)
    as_stored = field.assign_coords(lon=((east + 180) % 360) - 180)  # 160 ... 175, -180 ... -165
    np.testing.assert_allclose(cell_area(as_stored).values, cell_area(field).values, rtol=1e-15)
    np.testing.assert_allclose(float(area_mean(as_stored)), 3.5, rtol=1e-12)
    with_bounds = sorted_minus_180.to_dataset(name="x")
    lon = with_bounds.lon.values
    bounds = np.stack([lon - 2.5, lon + 2.5], axis=1)
    bounds[bounds > 180] -= 360  # the cell at 180 spans [177.5, -177.5]
    with_bounds = with_bounds.assign(lon_bnds=(("lon", "bnds"), bounds))
    with_bounds.lon.attrs["bounds"] = "lon_bnds"
    np.testing.assert_allclose(
        cell_area(with_bounds).values, cell_area(sorted_minus_180).values, rtol=1e-12
    )


def test_linear_trend_refuses_what_has_no_trend_naming_it():
    field = rectilinear(n_time=3)
    with pytest.raises(InputDataError, match="no dim 'tme'"):
        linear_trend(field, "tme")
    with pytest.raises(InputDataError, match="'time' of variable 'tas' holds no dates"):
        linear_trend(field.assign_coords(time=np.arange(3.0)))
    with pytest.raises(InputDataError, match="needs 2 steps or more"):
        linear_trend(field.isel(time=[0]))


@pytest.mark.parametrize(
    ("units", "squared"), [("K", "K2"), ("degC", "K2"), ("kg m-2 s-1", "kg2 m-4 s-2")]
)
def test_score_units_are_udunits_strings_climlatent_parses(units, squared):
    """A squared difference of degC is in K2 (differences of degC are kelvins)."""
    truth = rectilinear(n_time=24).assign_attrs(units=units)
    error = mse(truth + 1.0, truth)
    assert error.attrs["units"] == squared
    absolute = "K" if units == "degC" else units
    assert parse_units(error) == parse_units(xr.DataArray(0.0, attrs={"units": absolute})) ** 2
    time = xr.date_range("2000-01-01", periods=24, freq="MS", calendar="noleap", use_cftime=True)
    trend = linear_trend(truth.assign_coords(time=time))
    assert trend.attrs["units"] == f"{units} (10 year)-1"


@pytest.mark.parametrize("diagnostic", [latent_factor_correlation, linear_probe_r2])
def test_latent_diagnostics_refuse_missing_values(diagnostic):
    """A NaN latent gave a NaN row (correlation) or a LinAlgError (the probe)."""
    rng = np.random.default_rng(0)
    latents = xr.DataArray(rng.normal(size=(50, 3)), dims=("time", "latent"))
    factors = xr.DataArray(rng.normal(size=(50, 2)), dims=("time", "mode"))
    with pytest.raises(InputDataError, match="the latents hold 1 NaN/inf"):
        diagnostic(latents.where((latents.time != 7) | (latents.latent != 0)), factors)


def test_log_spectral_distance_refuses_undefined_logs_and_other_grids():
    """A constant field gave inf or nan; grids of other sizes a numpy broadcast error."""
    noise = np.random.default_rng(0).normal(size=(4, 16, 16))
    with pytest.raises(InputDataError, match="the fields have no power at wavenumber"):
        log_spectral_distance(np.ones((4, 16, 16)), noise)
    with pytest.raises(InputDataError, match=r"grid \(16, 16\) is not the reference's \(8, 8\)"):
        log_spectral_distance(noise, noise[:, :8, :8])
    # As many wavenumber bins on another domain gave a number (1.21 for 16 x 64).
    wide = np.random.default_rng(1).normal(size=(4, 16, 64))
    with pytest.raises(InputDataError, match=r"grid \(16, 64\) is not the reference's"):
        log_spectral_distance(wide, noise)


def test_log_spectral_distance_of_dataarrays_takes_their_grid_dims_and_checks_their_grid():
    """A DataArray stored (lat, lon, time) had its spectrum taken over (lon, time): 16
    steps gave as many bins and a distance of 0.042 to itself stored (time, lat, lon); the
    same shape over another domain (lon 0-60 for 0-30) gave a number."""
    rng = np.random.default_rng(0)
    coords = {"lat": np.linspace(-30, 30, 16), "lon": np.linspace(0, 30, 16)}
    da = xr.DataArray(rng.normal(size=(16, 16, 16)), coords, ("time", "lat", "lon"), name="tas")
    assert log_spectral_distance(da.transpose("lat", "lon", "time"), da) == 0.0
    spectrum = radial_power_spectrum(da.values)
    np.testing.assert_array_equal(radial_power_spectrum(da.transpose("lat", "lon", ...)), spectrum)
    expected = log_spectral_distance(0.5 * da.values, da.values)
    assert log_spectral_distance(0.5 * da.transpose("lon", "time", "lat"), da) == expected
    with pytest.raises(InputDataError, match="not on the reference's grid: 'lon' differs by"):
        log_spectral_distance(da.assign_coords(lon=np.linspace(0, 60, 16)), da)


@pytest.mark.parametrize("score", [rank_histogram, spread_skill_ratio])
def test_ensemble_scores_name_a_dim_the_truth_lacks(score):
    """It was a cryptic transpose error."""
    truth = xr.DataArray(np.zeros(10), dims="time")
    ensemble = xr.DataArray(np.zeros((4, 2, 10)), dims=("realization", "plev", "time"))
    with pytest.raises(InputDataError, match=r"ensemble has dim\(s\) \['plev'\] that the truth"):
        score(ensemble, truth)


def test_ensemble_scores_weight_each_cell_by_its_area():
    """Pooled equally, the small polar cells of a 1-degree grid (the spread too small
    there) outweighed the tropics: a spread-skill ratio of 0.84 for an area-weighted 0.94."""
    rng = np.random.default_rng(0)
    lat, lon, n_time, n_members = np.arange(-89.5, 90, 1.0), np.arange(0, 360, 45.0), 60, 10
    centre = rng.normal(size=(n_time, lat.size, lon.size))
    coords = {"lat": lat, "lon": lon}
    truth = xr.DataArray(centre + rng.normal(size=centre.shape), dims=("time", "lat", "lon"),
                         coords=coords)  # fmt: skip
    spread = np.where(np.abs(lat) > 60, 0.3, 1.0)[None, None, :, None]
    members = centre[None] + spread * rng.normal(size=(n_members, *centre.shape))
    ensemble = xr.DataArray(members, dims=("realization", "time", "lat", "lon"), coords=coords)
    weight = np.cos(np.deg2rad(lat))[None, :, None] * np.ones((n_time, 1, lon.size))
    variance = members.var(0, ddof=1)
    error = (members.mean(0) - truth.values) ** 2
    expected = np.sqrt(
        (n_members + 1) / n_members * (weight * variance).sum() / (weight * error).sum()
    )
    assert spread_skill_ratio(ensemble, truth) == pytest.approx(expected, rel=1e-9)
    ranks = (members < truth.values).sum(0)  # no ties among continuous draws
    frequency = np.bincount(ranks.ravel(), weight.ravel(), n_members + 1) / weight.sum()
    np.testing.assert_allclose(rank_histogram(ensemble, truth), frequency, rtol=1e-9)


@pytest.mark.parametrize("score", [rank_histogram, spread_skill_ratio])
def test_ensemble_scores_weight_a_single_column_by_area(score):
    """A single meridian was scored with every cell weighted equally (1.29 below), not
    by area as documented and as the same data on two identical columns is (1.05): its
    relative areas are its latitude bands, whatever its unknown width."""
    rng = np.random.default_rng(0)
    lat = np.arange(-80.0, 81.0, 20.0)
    centre = rng.normal(size=(200, lat.size, 1, 1))
    spread = np.where(np.abs(lat) < 50, 0.5, 2.0)[None, :, None, None]  # narrow in the tropics
    members = np.repeat(centre + spread * rng.normal(size=(200, lat.size, 1, 4)), 2, axis=2)
    centre = np.repeat(centre[..., 0] + rng.normal(size=(200, lat.size, 1)), 2, axis=-1)
    coords = {"lat": lat, "lon": [0.0, 10.0]}
    truth = xr.DataArray(centre, dims=("time", "lat", "lon"), coords=coords)
    ensemble = xr.DataArray(members, dims=("time", "lat", "lon", "realization"), coords=coords)
    band = np.diff(np.sin(np.deg2rad(np.arange(-90.0, 91.0, 20.0))))
    variance, error = members.var(-1, ddof=1), (members.mean(-1) - centre) ** 2

    def ratio(weight):
        return np.sqrt(5 / 4 * (weight * variance).sum() / (weight * error).sum())

    expected = ratio(band[None, :, None] * np.ones(truth.shape))
    assert spread_skill_ratio(ensemble, truth) == pytest.approx(expected, rel=1e-9)
    assert (round(expected, 2), round(ratio(np.ones(truth.shape)), 2)) == (1.05, 1.29)
    np.testing.assert_allclose(
        score(ensemble.isel(lon=[0]), truth.isel(lon=[0])), score(ensemble, truth), rtol=1e-9
    )
    with pytest.raises(InputDataError, match="longitude 'lon' has dims ()"):  # was unweighted
        score(ensemble.isel(lon=0), truth.isel(lon=0))
    # without a grid, every point counts once
    plain = truth.isel(lon=0, drop=True).drop_vars("lat")
    unweighted = spread_skill_ratio(ensemble.isel(lon=0, drop=True).drop_vars("lat"), plain)
    assert unweighted == pytest.approx(ratio(np.ones(truth.shape)), rel=1e-9)


def test_latent_factor_correlation_stays_within_minus_one_and_one():
    """An exactly linear latent gave a correlation of 1 + 2e-16 (np.corrcoef: 1)."""
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(997, 3))
    latents = factors @ np.diag([2.0, -3.0, 1e-3]) + 5
    corr = latent_factor_correlation(
        xr.DataArray(latents, dims=("time", "latent")), xr.DataArray(factors, dims=("time", "mode"))
    ).values
    expected = np.corrcoef(latents, factors, rowvar=False)[:3, 3:]
    assert np.all(np.abs(corr) <= 1.0)
    np.testing.assert_allclose(corr, expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("value", [0.1, 1.0, 280.1, 101325.3])
def test_latent_diagnostics_of_a_constant_factor_or_latent_are_nan(value):
    """A factor constant over the samples has no R2 or correlation: the probe gave it an
    R2 of 1.0 (0.1), -inf (1.0), 0.56 (280.1) or 0.0 (101325.3), its float64 mean not
    exactly the value; a constant latent's correlation with it was 1.0 (NaN at 1.0)."""
    rng = np.random.default_rng(0)
    latents, factors = rng.normal(size=(100, 3)), rng.normal(size=(100, 2))
    factors[:, 1] = value
    latents[:, 0] = value
    z, f = (
        xr.DataArray(latents, dims=("time", "latent")),
        xr.DataArray(factors, dims=("time", "mode")),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r2, corr = linear_probe_r2(z, f).values, latent_factor_correlation(z, f).values
    design = np.column_stack([np.ones(100), latents[:, 1:]])
    residual = factors[:, 0] - design @ np.linalg.lstsq(design, factors[:, 0], rcond=None)[0]
    expected_r2 = 1 - (residual**2).sum() / ((factors[:, 0] - factors[:, 0].mean()) ** 2).sum()
    np.testing.assert_allclose(r2, [expected_r2, np.nan], rtol=1e-12)
    assert np.isnan(corr[0]).all() and np.isnan(corr[:, 1]).all()
    expected = np.corrcoef(latents[:, 1:], factors[:, 0], rowvar=False)[:2, 2]
    np.testing.assert_allclose(corr[1:, 0], expected, rtol=0, atol=1e-15)


def test_correlation_map_is_nan_where_a_field_is_constant_at_any_value():
    """A prediction constant along time in a cell (0.1, 280.1 or 3e-5) got a correlation
    of about 3e-17, counted as uncorrelated in a map's mean; a constant 1.0 got NaN."""
    rng = np.random.default_rng(0)
    truth = xr.DataArray(rng.normal(size=(100, 5)), dims=("time", "x"))
    prediction = truth + rng.normal(size=(100, 5))
    prediction[:, :4] = [0.1, 280.1, 3e-5, 1.0]
    corr = correlation(prediction, truth).values
    expected = np.corrcoef(prediction[:, 4], truth[:, 4])[0, 1]
    np.testing.assert_allclose(corr, [np.nan] * 4 + [expected], rtol=1e-12)
    np.testing.assert_array_equal(correlation(truth, prediction).values, corr)


@pytest.mark.parametrize("dtype", [">f2", "<f2", ">f4"])
def test_ensemble_scores_of_narrow_or_big_endian_fields_equal_numpy_on_their_values(dtype):
    """A float16 ensemble's spread was computed in float16: a spread-skill ratio of 1.0029
    for the 0.9984 of the same values in float64."""
    rng = np.random.default_rng(1)
    centre = 1000 + 3 * rng.normal(size=(2000, 1))
    truth = (centre[:, 0] + rng.normal(size=2000)).astype(dtype)
    members = (centre + rng.normal(size=(2000, 4))).astype(dtype)
    values, target = members.astype(np.float64), truth.astype(np.float64)
    variance, error = values.var(1, ddof=1).mean(), ((values.mean(1) - target) ** 2).mean()
    ensemble = xr.DataArray(members, dims=("time", "realization"))
    ratio = spread_skill_ratio(ensemble, xr.DataArray(truth, dims="time"))
    assert ratio == pytest.approx(np.sqrt(5 / 4 * variance / error), rel=1e-9)
