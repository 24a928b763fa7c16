import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from climlatent.errors import InputDataError
from climlatent.metrics import (
    area_mean,
    correlation,
    mse,
    mse_skill_score,
    r2,
    r2_map,
    rmse,
    rmse_map,
)
from climlatent.metrics.ensemble import crps_ensemble, rank_histogram, spread_skill_ratio
from conftest import rectilinear


def test_area_mean_matches_cosine_weighted_numpy():
    da = rectilinear(n_lat=30, n_lon=10, n_time=3)
    da = da.where(da.lon > 40)  # a NaN mask
    lat_edges = np.deg2rad(
        np.concatenate([[-51.724], (da.lat.values[1:] + da.lat.values[:-1]) / 2, [51.724]])
    )
    band = np.diff(np.sin(lat_edges))
    w = np.broadcast_to(band[:, None], (30, 10)) * np.isfinite(da.values[0])
    expected = np.nansum(da.values * w, axis=(1, 2)) / w.sum()
    np.testing.assert_allclose(area_mean(da).values, expected, rtol=1e-3)


def test_rmse_and_skill_known_answers():
    truth = rectilinear(n_time=50)
    np.testing.assert_allclose(float(rmse(truth + 0.5, truth, ("time",))), 0.5, rtol=1e-12)
    assert float(mse_skill_score(truth, truth, truth.mean("time"), ("time",))) == 1.0
    reference = truth.mean("time")
    assert abs(float(mse_skill_score(reference, truth, reference, ("time",)))) < 1e-12


def test_correlation_map_against_numpy():
    a, b = rectilinear(n_time=40, seed=1), rectilinear(n_time=40, seed=2)
    mixed = a + 0.5 * b
    corr = correlation(mixed, a)
    expected = [
        [np.corrcoef(mixed.values[:, i, j], a.values[:, i, j])[0, 1] for j in range(a.sizes["lon"])]
        for i in range(a.sizes["lat"])
    ]
    np.testing.assert_allclose(corr.values, expected, rtol=1e-10)
    assert isinstance(corr, xr.DataArray)


def test_scores_have_their_own_long_name_and_units_not_the_fields_metadata():
    attrs = {"standard_name": "air_temperature", "units": "K", "cell_methods": "time: mean"}
    truth = rectilinear(n_time=20).assign_attrs(attrs)
    prediction = (truth + 0.1).assign_attrs(attrs)
    scores = [
        (mse(prediction, truth, ("time",)), "mean squared error", "K2"),
        (rmse(prediction, truth, ("time",)), "root mean squared error", "K"),
        (rmse_map(prediction, truth), "root mean squared error", "K"),
        (
            mse_skill_score(prediction, truth, truth.mean("time"), ("time",)),
            "mean squared error skill score",
            "1",
        ),
        (r2(prediction, truth, ("time",)), "coefficient of determination", "1"),
        (r2_map(prediction, truth), "coefficient of determination", "1"),
        (correlation(prediction, truth), "Pearson correlation coefficient", "1"),
    ]
    for score, long_name, units in scores:
        assert set(score.attrs) == {"long_name", "units"}, score.attrs
        assert score.attrs["units"] == units
        assert score.attrs["long_name"] == long_name


def test_spreads_of_temperatures_in_degc_are_in_kelvin():
    """An RMSE of 2 labelled 'degC' reads as 275.15 K to a units library."""
    from climlatent.metrics import quantile_error
    from climlatent.metrics.extremes import fit_gev

    truth = rectilinear().assign_attrs(units="degC")
    prediction = truth + 2.0
    for score in (
        rmse(prediction, truth),
        rmse_map(prediction, truth),
        quantile_error(prediction, truth),
    ):
        assert score.attrs["units"] == "K"
        np.testing.assert_allclose(score.values, 2.0)
    assert mse(prediction, truth).attrs["units"] == "K2"
    years = xr.DataArray(
        np.random.default_rng(0).gumbel(20.0, 3.0, 40), dims="year", attrs={"units": "degC"}
    )
    gev = fit_gev(years, "year")
    assert (gev["loc"].attrs["units"], gev["scale"].attrs["units"]) == ("degC", "K")


def test_dims_given_as_one_name_or_absent_are_handled_by_name():
    truth = rectilinear(n_time=20).rename("pr")
    np.testing.assert_allclose(
        float(rmse(truth + 0.5, truth, "time")), float(rmse(truth + 0.5, truth, ("time",)))
    )
    np.testing.assert_allclose(
        float(mse_skill_score(truth, truth, truth.mean("time"), "time")), 1.0
    )

    for score in (
        lambda: mse(truth, truth, ("year",)),
        lambda: r2(truth, truth, ("year",)),
        lambda: r2_map(truth, truth, ("year",)),
        lambda: rmse_map(truth, truth, ("year",)),
        lambda: correlation(truth, truth, "year"),
    ):
        with pytest.raises(InputDataError, match="variable 'pr' has no dim 'year'"):
            score()
    with pytest.raises(TypeError, match=r"ds\['name'\]"):
        mse(truth.to_dataset(), truth.to_dataset())


def test_a_prediction_in_other_units_is_scored_in_the_truth_units():
    truth = rectilinear() + 280.0
    prediction = truth + 0.5 * rectilinear(seed=1)
    in_celsius = (prediction - 273.15).assign_attrs(units="degC")  # was scored 273.15 K off
    expected = rmse(prediction, truth, "time")
    np.testing.assert_allclose(rmse(in_celsius, truth, "time"), expected, rtol=1e-12)
    assert float(expected) < 1.0  # the scale of the error, not of 273.15 K
    members = xr.concat([in_celsius, in_celsius + 0.1], "realization")
    in_kelvin = (members + 273.15).assign_attrs(units="K")
    same = [spread_skill_ratio(m, truth, "realization") for m in (members, in_kelvin)]
    np.testing.assert_allclose(*(np.asarray(ratio) for ratio in same))
    with pytest.raises(InputDataError, match="'tas' in 'm' cannot be scored against 'tas'"):
        rmse(prediction.assign_attrs(units="m"), truth, "time")


def test_float32_scores_over_a_million_pressures_match_float64():
    # 8 members x 75 000 steps near 101325 Pa: float32 sums put R2 1.6 % off
    rng = np.random.default_rng(0)
    shape = (8, 75_000, 2, 2)
    signal = 800 * rng.standard_normal(shape)
    coords = {"lat": [0.0, 1.0], "lon": [0.0, 1.0]}
    dims = ("member", "time", "lat", "lon")

    def field(values):
        return xr.DataArray(
            values.astype(np.float32), dims=dims, coords=coords, attrs={"units": "Pa"}
        )

    noise = 300 * rng.standard_normal(shape)
    truth, prediction = field(101325 + signal), field(101325 + signal + noise)
    truth64, prediction64 = truth.astype(float), prediction.astype(float)
    for score in (r2, r2_map, rmse_map):
        np.testing.assert_allclose(
            score(prediction, truth, ("member", "time")),
            score(prediction64, truth64, ("member", "time")),
            rtol=1e-9,
            err_msg=score.__name__,
        )
    flat = {"member": 0, "lat": 0, "lon": 0}
    np.testing.assert_allclose(
        correlation(prediction.isel(flat), truth.isel(flat)),
        correlation(prediction64.isel(flat), truth64.isel(flat)),
        rtol=1e-9,
    )


def test_correlations_stay_within_minus_one_and_one():
    """Exactly linear pairs gave xr.corr 1 + 7e-16 in 212 of 5000 cells (np.corrcoef 1)."""
    a = 280 + 1e3 * np.random.default_rng(0).normal(size=(37, 5000)).astype(np.float32)
    da = xr.DataArray(a, dims=("time", "cell"))
    for sign in (1.0, -1.0):
        b = xr.DataArray((sign * 3.0 * a + 7.0).astype(np.float32), dims=("time", "cell"))
        expected = [np.corrcoef(a[:, i], b.values[:, i])[0, 1] for i in range(5000)]
        corr = correlation(da, b).values
        assert np.all(np.abs(corr) <= 1.0)
        np.testing.assert_allclose(corr, expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("value", [271.35, 280.1, 0.1])
def test_r2_of_a_truth_constant_in_time_is_undefined(value):
    """A truth constant along time (SST at freezing under sea ice) has SST 0: R2 is NaN,
    not the -7.7e25 that the 6e-14 K round-off of its mean made of it."""
    truth = xr.DataArray(
        np.full((7, 2, 2), value),
        dims=("time", "lat", "lon"),
        coords={"lat": [0.0, 1.0], "lon": [0.0, 1.0]},
        attrs={"units": "K"},
    )
    prediction = truth + 0.5
    assert r2_map(prediction, truth).isnull().all()
    assert np.isnan(float(r2(prediction, truth)))
    varying = truth.copy(data=truth.values + np.arange(7.0)[:, None, None] * [[0, 1], [0, 0]])
    # only the varying cell counts: SSE 7 * 0.25 over its SST 28
    expected = [[np.nan, 1 - 1.75 / 28], [np.nan, np.nan]]
    np.testing.assert_allclose(r2_map(varying + 0.5, varying).values, expected, rtol=1e-12)


def test_area_mean_of_a_section_weights_its_latitude_bands():
    """A meridional section as a DataArray (no room for bounds) was refused ("one point
    and no bounds"); its relative areas are the bands sin(north) - sin(south)."""
    lat = np.array([0.0, 30.0, 60.0])
    field = xr.DataArray(
        [[1.0, 1.0], [2.0, 2.0], [5.0, 5.0]],
        dims=("lat", "lon"),
        coords={"lat": lat, "lon": [0.0, 10.0]},
    )
    band = np.diff(np.sin(np.deg2rad([-15.0, 15.0, 45.0, 75.0])))
    expected = float((band * [1.0, 2.0, 5.0]).sum() / band.sum())
    assert float(area_mean(field)) == pytest.approx(expected, rel=1e-12)
    assert float(area_mean(field.isel(lon=[0]))) == pytest.approx(expected, rel=1e-12)
    cell = field.isel(lat=[1], lon=[0])
    assert float(area_mean(cell)) == 2.0
    assert float(rmse(cell, cell + 3.0)) == 3.0


def test_area_mean_appends_area_mean_to_the_cell_methods():
    """An area mean kept the field's cell_methods, as if it were the field of each cell."""
    field = rectilinear(cell_methods="time: mean")
    assert area_mean(field).attrs["cell_methods"] == "time: mean area: mean"
    assert area_mean(field, ("time",)).attrs["cell_methods"] == "time: mean area: mean time: mean"
    assert area_mean(field, ("time",)).attrs["standard_name"] == "air_temperature"


def _pairwise_crps(members: np.ndarray, truth: np.ndarray, fair: bool) -> np.ndarray:
    """``E|X - y| - E|X - X'| / 2`` by the double sum over members (last axis)."""
    m = members.shape[-1]
    pairs = np.abs(members[..., :, None] - members[..., None, :]).sum(axis=(-2, -1))
    return np.abs(members - truth[..., None]).mean(-1) - pairs / (2 * m * (m - 1 if fair else m))


@pytest.mark.parametrize("fair", [False, True])
def test_crps_ensemble_equals_the_pairwise_double_sum_and_its_area_mean(fair):
    truth = rectilinear(n_time=7) + 280.0
    rng = np.random.default_rng(3)
    members = truth.values[None] + rng.gamma(0.5, 2.0, size=(9, *truth.shape)) - 1.0
    members[4, 2, 1, 3] = np.nan  # a member missing at one point
    truth[5, 0, 0] = np.nan
    ensemble = xr.DataArray(members, dims=("realization", *truth.dims), coords=truth.coords)
    expected = _pairwise_crps(np.moveaxis(members, 0, -1), truth.values, fair)
    score = crps_ensemble(ensemble, truth, fair=fair)
    assert score.dims == truth.dims
    np.testing.assert_allclose(score.values, expected, rtol=1e-12, atol=1e-12)
    assert np.isnan(score[2, 1, 3]) and np.isnan(score[5, 0, 0])
    lazy = crps_ensemble(ensemble.chunk(time=3, realization=4), truth.chunk(time=2), fair=fair)
    np.testing.assert_allclose(lazy.compute().values, expected, rtol=1e-12, atol=1e-12)
    band = np.diff(np.sin(np.deg2rad(np.arange(-60.0, 61.0, 20.0))))  # the cells' latitude bands
    weight = np.broadcast_to(band[None, :, None], truth.shape) * np.isfinite(expected)
    mean = np.nansum(weight * expected) / weight.sum()
    np.testing.assert_allclose(crps_ensemble(ensemble, truth, fair=fair, dims=truth.dims), mean)
    by_time = crps_ensemble(ensemble, truth, fair=fair, dims="time")
    np.testing.assert_allclose(by_time, np.nanmean(expected, axis=0), rtol=1e-12)
    plain = crps_ensemble(ensemble.drop_vars(["lat", "lon"]), truth.drop_vars(["lat", "lon"]),
                          fair=fair, dims=("time", "lat", "lon"))  # fmt: skip
    np.testing.assert_allclose(plain, np.nanmean(expected), rtol=1e-12)  # no grid: unweighted


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(1, 3), st.integers(1, 6), st.booleans(), st.data())
def test_crps_of_any_ensemble_is_the_pairwise_double_sum(n, m, fair, data):
    """Ties, zeros, subnormals and values of 1e6: the sorted-member formula is the sum."""
    value = st.one_of(st.floats(-1e6, 1e6), st.sampled_from([0.0, 1.0, -1.0, 5e-324]))
    members = np.array(data.draw(st.lists(value, min_size=n * m, max_size=n * m))).reshape(n, m)
    truth = np.array(data.draw(st.lists(value, min_size=n, max_size=n)))
    if fair and m < 2:
        m, members = 2, np.repeat(members, 2, axis=1)
    score = crps_ensemble(
        xr.DataArray(members, dims=("time", "realization")),
        xr.DataArray(truth, dims="time"),
        fair=fair,
    )
    np.testing.assert_allclose(score, _pairwise_crps(members, truth, fair), rtol=1e-9, atol=1e-9)


def test_fair_crps_of_a_large_gaussian_ensemble_is_the_closed_form():
    """Gneiting & Raftery 2007: s (z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi)) for N(mu, s2)."""
    mu, s, m = 3.0, 2.0, 20000
    y = mu + s * np.array([-2.5, -0.5, 0.0, 1.0, 3.0])
    rng = np.random.default_rng(0)
    draws = mu + s * rng.normal(size=(y.size, m))
    score = crps_ensemble(xr.DataArray(draws, dims=("time", "realization")),
                          xr.DataArray(y, dims="time"), fair=True).values  # fmt: skip
    z = (y - mu) / s
    exact = s * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))
    w = (draws - mu) / s  # CLT: the fair score's error is the mean of its Hoeffding projection
    spread = s * (w * (2 * stats.norm.cdf(w) - 1) + 2 * stats.norm.pdf(w))  # E|x - X'|
    standard_error = (np.abs(draws - y[:, None]) - spread).std(axis=1) / np.sqrt(m)
    assert np.all(np.abs(score - exact) < 4 * standard_error)
    assert np.all(standard_error < 0.01 * exact)
    quantiles = mu + s * stats.norm.ppf((np.arange(m) + 0.5) / m)  # the standard score
    score = crps_ensemble(xr.DataArray(np.tile(quantiles, (y.size, 1)), dims=("time", "member")),
                          xr.DataArray(y, dims="time"), dim="member")  # fmt: skip
    np.testing.assert_allclose(score, exact, rtol=1e-7)


def test_crps_of_one_member_is_the_absolute_error_and_fair_needs_two():
    truth = rectilinear(n_time=4)
    prediction = rectilinear(n_time=4, seed=1)
    ensemble = prediction.expand_dims("realization", axis=-1)
    score = crps_ensemble(ensemble, truth)
    np.testing.assert_array_equal(score.values, np.abs(prediction.values - truth.values))
    with pytest.raises(
        InputDataError, match="fair continuous ranked probability score needs at least 2"
    ):
        crps_ensemble(ensemble, truth, fair=True)


def test_crps_of_members_in_degc_is_the_kelvin_score_in_kelvin():
    truth = rectilinear(n_time=6) + 280.0
    in_kelvin = xr.concat([truth + 0.3 * rectilinear(n_time=6, seed=k) for k in (1, 2, 3)],
                          "realization").assign_attrs(units="K")  # fmt: skip
    in_celsius = (in_kelvin - 273.15).assign_attrs(units="degC")
    expected = _pairwise_crps(in_kelvin.transpose(..., "realization").values, truth.values, False)
    score = crps_ensemble(in_celsius, truth)
    np.testing.assert_allclose(score.values, expected, rtol=1e-9)  # not 273.15 K off
    assert score.attrs == {"long_name": "continuous ranked probability score", "units": "K"}
    assert crps_ensemble(in_kelvin, truth.assign_attrs(units="degC")).attrs["units"] == "K"


def test_crps_is_positive_and_the_fair_score_below_the_standard_one():
    rng = np.random.default_rng(5)
    members = rng.normal(size=(5000, 6)) * rng.uniform(0, 2, size=(5000, 1))
    members[:10] = 1.5  # a collapsed ensemble: no spread, both scores the absolute error
    ensemble = xr.DataArray(members, dims=("time", "realization"))
    truth = xr.DataArray(rng.normal(size=5000), dims="time")
    standard, fair = crps_ensemble(ensemble, truth), crps_ensemble(ensemble, truth, fair=True)
    assert float(standard.min()) >= 0
    assert np.all(fair.values[10:] < standard.values[10:])
    np.testing.assert_allclose(fair[:10], np.abs(1.5 - truth[:10]), rtol=1e-15)
    np.testing.assert_allclose(standard[:10], np.abs(1.5 - truth[:10]), rtol=1e-15)


def test_a_tied_truth_counts_equally_in_each_rank_it_could_take():
    # members (0, 1, 1, 2) and truth 1: ranks 1, 2 and 3 are equally likely, rank 0 and 4
    # impossible; a truth equal to all three members of a collapsed ensemble: 1/4 each
    members = xr.DataArray([[0.0, 1.0, 1.0, 2.0]], dims=("time", "realization"))
    np.testing.assert_allclose(
        rank_histogram(members, xr.DataArray([1.0], dims="time")), [0, 1 / 3, 1 / 3, 1 / 3, 0]
    )
    collapsed = xr.DataArray(np.full((1, 3), 7.0), dims=("time", "realization"))
    np.testing.assert_allclose(rank_histogram(collapsed, xr.DataArray([7.0], dims="time")), 0.25)
    # exchangeable counts with many ties (Poisson): each call's histogram is the expected
    # one, so histograms pooled over 200 calls of one size stay flat (random splits seeded
    # alike in every call drifted: rank 0 at 0.987 of its share, chi-square p 6e-28)
    rng = np.random.default_rng(3)
    pooled = sum(
        rank_histogram(
            xr.DataArray(rng.poisson(0.7, (500, 3)).astype(float), dims=("time", "realization")),
            xr.DataArray(rng.poisson(0.7, 500).astype(float), dims="time"),
        )
        for _ in range(200)
    )
    assert float(abs(pooled / 200 * 4 - 1).max()) < 0.01


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(1, 12), st.integers(1, 5), st.data())
def test_rank_histogram_is_the_mean_over_tie_breaks_whatever_the_member_order(n, m, data):
    """Small integers, so that ties are common: the histogram sums to 1, is each truth's
    rank averaged over every order of the members tied with it, and is the same for
    members given in any order."""
    value = st.integers(-2, 2).map(float)
    members = np.array(data.draw(st.lists(value, min_size=n * m, max_size=n * m))).reshape(n, m)
    truth = np.array(data.draw(st.lists(value, min_size=n, max_size=n)))
    order = data.draw(st.permutations(range(m)))
    expected = np.zeros(m + 1)
    for row, target in zip(members, truth, strict=True):
        below, ties = (row < target).sum(), (row == target).sum()
        expected[below : below + ties + 1] += 1 / (ties + 1) / n
    for columns in (list(range(m)), order):
        ensemble = xr.DataArray(members[:, columns], dims=("time", "realization"))
        hist = rank_histogram(ensemble, xr.DataArray(truth, dims="time"))
        np.testing.assert_allclose(hist, expected, rtol=0, atol=1e-14)
