import warnings

import numpy as np
import pytest
import xarray as xr

import climlatent as cl
from climlatent.errors import InputDataError
from climlatent.estimators._seasons import year_phase
from climlatent.estimators._weather import block_bootstrap
from climlatent.estimators.weather import weather_generator


@pytest.fixture(scope="module", params=["none", "standardize"])
def world(request):
    """A model without and with a target transform (LLAAE's default is standardize: its
    realisations were inverse-transformed twice, a 20-year return level of 2.5 mm/day
    for 30-140, a spread of 2e-9 for 4.3e-5)."""
    ds = cl.datasets.synthetic_circulation(n_members=2, n_years=10, n_lat=8, n_lon=12, seed=4)
    est = cl.EOFRegression(n_proxy_eofs=3, n_target_eofs=10, target_transform=request.param)
    return ds, est.fit(ds, "pr", "psl")


def _lag1(series):
    """Lag-1 autocorrelation of each PC, pooled over the leading dims."""
    a, b = series[..., :-1, :], series[..., 1:, :]
    a = a - a.mean(axis=-2, keepdims=True)
    b = b - b.mean(axis=-2, keepdims=True)
    return (a * b).sum(axis=(0, 1)) / np.sqrt((a**2).sum(axis=(0, 1)) * (b**2).sum(axis=(0, 1)))


@pytest.mark.filterwarnings("ignore:weather_generator:UserWarning")  # the additive models'
def test_var_realisations_keep_proxy_lag1_autocorrelation(world):
    ds, est = world
    gen = weather_generator(est, ds, n_realizations=4, method="var", seed=1)
    x = est.proxy_transform_.forward(est._prepare_proxy(ds))
    pcs = est.proxy_basis_.project(cl.batching.to_matrix(x, est.proxy_layout_)).reshape(2, -1, 3)
    observed, simulated = _lag1(pcs), _lag1(gen["psl_pc"].transpose(..., "time", "pc").values)
    print("lag-1 autocorrelation of proxy PCs: data", observed.round(3), "VAR", simulated.round(3))
    np.testing.assert_allclose(simulated, observed, atol=0.03)
    # the AR(1) truth of the synthetic factors (phi_k = 0.8**k) shows through the leading PC
    assert observed[0] > 0.5


def _climatology(ds, gen):
    """Mean and mean per-cell spread of the truth and of the realisations, over land."""
    land = np.isfinite(ds["pr"].isel(member=0, time=0))
    pr = gen["pr"]
    np.testing.assert_array_equal(np.isnan(pr.isel(realization=0, time=0)), ~land)
    return (
        float(ds["pr"].where(land).mean()),
        float(pr.where(land).mean()),
        float(ds["pr"].std(("member", "time")).where(land).mean()),
        float(pr.std(("realization", "time")).where(land).mean()),
    )


def test_bootstrap_realisations_keep_target_climatology(world):
    ds, est = world
    gen = weather_generator(est, ds, n_realizations=3, method="bootstrap", block_length=60, seed=2)
    assert gen["pr"].dims == ("realization", "time", "lat", "lon")
    assert gen["pr"].attrs["units"] == "kg m-2 s-1"
    assert "climlatent_clipped" not in gen["pr"].attrs  # resampled truth
    truth_mean, gen_mean, truth_std, gen_std = _climatology(ds, gen)
    assert gen_mean == pytest.approx(truth_mean, rel=0.05)
    assert gen_std == pytest.approx(truth_std, rel=0.10)


def test_var_residuals_added_in_kg_m2_s1_are_set_to_zero_with_a_warning(world):
    """An additive model's VAR days take residuals of other days in kg m-2 s-1: 19 % of
    the values fell below 0. They are set to 0, recorded, and the call warns; the mean
    the censoring raises (by 8.6 %) is the price, which log1p does not pay (below)."""
    ds, est = world
    with pytest.warns(UserWarning, match="mean is above the data's"):
        gen = weather_generator(est, ds, n_realizations=3, method="var", block_length=60, seed=2)
    note = gen["pr"].attrs["climlatent_clipped"]
    n_clipped, n_values = (int(word) for word in note.split(" values")[0].split(" of "))
    assert 0.15 < n_clipped / n_values < 0.25
    assert float(gen["pr"].min()) == 0.0
    truth_mean, gen_mean, _, _ = _climatology(ds, gen)
    assert 1.05 < gen_mean / truth_mean < 1.12


def test_var_realisations_of_log1p_model_keep_mean_and_stay_positive():
    """With target_transform='log1p' the residuals multiply 1 + pr / scale: mean kept
    (0.993 of the truth's) and no warning; 11 % of the values still fell below 0 (set to
    0 and recorded: 61988 of 569400); the spread is 14 % low."""
    ds = cl.datasets.synthetic_circulation(n_members=2, n_years=10, n_lat=8, n_lon=12, seed=4)
    est = cl.EOFRegression(n_proxy_eofs=3, n_target_eofs=10, target_transform="log1p")
    est.fit(ds, "pr", "psl")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gen = weather_generator(est, ds, n_realizations=3, method="var", block_length=60, seed=2)
    truth_mean, gen_mean, truth_std, gen_std = _climatology(ds, gen)
    print(f"log1p var: mean {gen_mean / truth_mean:.4f}, std {gen_std / truth_std:.4f} of truth")
    assert gen_mean == pytest.approx(truth_mean, rel=0.03)
    assert 0.75 < gen_std / truth_std < 0.95
    assert float(gen["pr"].min()) >= 0.0


def test_bootstrap_realisation_is_resampled_truth(world):
    ds, est = world
    gen = weather_generator(est, ds, n_realizations=1, method="bootstrap", block_length=30, seed=3)
    first_block = gen["pr"].isel(realization=0, time=slice(0, 30)).values
    truth = ds["pr"].transpose("member", "time", "lat", "lon").values.reshape(-1, 8, 12)
    diffs = [np.nanmax(np.abs(truth[i : i + 30] - first_block)) for i in range(len(truth) - 30)]
    assert min(diffs) < 1e-9  # a contiguous block of one member's true precipitation


def test_members_along_realization_are_pooled_and_a_selected_one_refused(world):
    """A member dim named 'realization' (CMIP's) is pooled into the draws as 'member'
    is: the same realisations. A member selected from it left a scalar coordinate
    'realization' that met the draws' dim in xarray ("already exists as a scalar
    variable")."""
    ds, est = world
    options = {"n_realizations": 2, "method": "bootstrap", "seed": 3}
    expected = weather_generator(est, ds, **options)["pr"]
    cmip = ds.rename(member="realization")
    xr.testing.assert_identical(weather_generator(est, cmip, **options)["pr"], expected)
    with pytest.raises(InputDataError, match="a coordinate 'realization', the dim of the draws"):
        weather_generator(est, cmip.isel(realization=0), **options)


def test_without_eofs_refused(world):
    ds, _ = world
    est = cl.LLAAE(proxy_input="field", latent_dim=2, epochs=1, filters=(8,), device="cpu")
    est.fit(ds.isel(time=slice(0, 365)), "pr", "psl")
    with pytest.raises(ValueError, match="no proxy EOF basis"):
        weather_generator(est, ds, 1)


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_a_bad_seed_is_refused_by_name(world, seed):
    """numpy's "expected non-negative integer" named no option; True seeded as 1."""
    ds, est = world
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        weather_generator(est, ds, n_realizations=1, seed=seed)


def test_dynamical_adjustment_residual_recovers_forced_trend():
    ds = cl.datasets.synthetic_circulation(n_members=3, n_years=30, n_lat=8, n_lon=12, seed=5)
    est = cl.EOFRegression(n_proxy_eofs=3, n_target_eofs=10).fit(ds, "tas", "psl")
    adj = est.dynamical_adjustment(ds)
    assert adj["tas_residual"].attrs["units"] == "K"
    annual = adj["tas_residual"].mean(("member", "lat", "lon")).groupby("time.year").mean()
    slope = np.polyfit(annual.year.values, annual.values, 1)[0] * 10
    truth = ds.attrs["synthetic_parameters"]
    expected = 0.3  # K per decade: synthetic_circulation's warming_per_decade default
    assert '"warming_per_decade": 0.3' in truth
    print(f"forced trend from the residual: {slope:.4f} K/decade (truth {expected})")
    assert slope == pytest.approx(expected, abs=0.02)

    # per cell and member, the residual's trend is closer to the truth than the raw trend,
    # because the circulation-induced variability has been removed
    def cell_slopes(da):
        yearly = da.groupby("time.year").mean().stack(series=("member", "lat", "lon"))
        return np.polyfit(yearly.year.values, yearly.values, 1)[0] * 10

    resid_err = np.abs(cell_slopes(adj["tas_residual"]) - expected).mean()
    raw_err = np.abs(cell_slopes(ds["tas"]) - expected).mean()
    print(f"mean per-cell trend error: residual {resid_err:.4f}, raw {raw_err:.4f} K/decade")
    assert resid_err < raw_err


@pytest.mark.parametrize("method", ["var", "bootstrap"])
def test_realisations_keep_the_seasons_of_their_dates(method):
    # Blocks were drawn from any time of year and the VAR had no annual cycle, while
    # the output carried the data's dates: its monthly climatology of tas was flat,
    # 282.8-284.3 K, where the data's runs 275.1-291.6 K.
    ds = cl.datasets.synthetic_circulation(n_members=2, n_years=10, n_lat=8, n_lon=8, seed=0)
    est = cl.EOFRegression(n_proxy_eofs=3).fit(ds, "tas", "psl")
    gen = weather_generator(est, ds, n_realizations=6, method=method, block_length=60, seed=0)
    monthly = gen["tas"].mean(["lat", "lon", "realization"]).groupby("time.month").mean()
    truth = ds["tas"].mean(["lat", "lon", "member"]).groupby("time.month").mean()
    print(method, monthly.values.round(2), truth.values.round(2))
    assert float(truth.max() - truth.min()) > 10.0  # a seasonal cycle to keep
    np.testing.assert_allclose(monthly, truth, atol=0.6)


def test_a_seasonal_bootstrap_draws_each_block_from_its_time_of_year():
    phases = np.arange(3 * 365) / 365 % 1.0  # three years of days
    days = np.arange(3 * 365, dtype=float).reshape(1, -1, 1)
    drawn = block_bootstrap(days, 50, block_length=20, rng=np.random.default_rng(0), phases=phases)
    source_day = drawn[:, ::20, 0].astype(int) % 365  # each block's first day of its year
    target_day = np.arange(0, 3 * 365, 20) % 365
    gap = np.abs(source_day - target_day) % 365
    assert np.minimum(gap, 365 - gap).max() <= 10  # half a block
    assert len(np.unique(drawn[:, 0, 0])) > 10  # still drawn at random among them


def _phase_gap_days(calendar: str, n_time: int) -> np.ndarray:
    time = xr.DataArray(
        xr.date_range("2000-01-01", periods=n_time, calendar=calendar, use_cftime=True),
        dims="time",
    )
    phases = year_phase(time)
    index = np.arange(n_time, dtype=float).reshape(1, n_time, 1)
    drawn = block_bootstrap(index, 200, 30, np.random.default_rng(1), phases=phases)
    source = drawn[..., 0].astype(int)
    gap = np.abs(phases[source] - phases[None]) % 1.0
    return np.minimum(gap, 1.0 - gap) * (360 if calendar == "360_day" else 365)


@pytest.mark.parametrize(
    ("calendar", "n_time"), [("noleap", 911), ("360_day", 900), ("360_day", 1825)]
)
def test_seasonal_bootstrap_of_a_record_of_no_whole_years_keeps_the_time_of_year(calendar, n_time):
    # a block wrapping from the record's end (mid-year) back to its start jumped up to
    # half a year: July steps drew January data
    assert _phase_gap_days(calendar, n_time).max() <= 16.0


def test_seasonal_bootstrap_of_whole_years_still_wraps():
    assert _phase_gap_days("noleap", 3 * 365).max() <= 16.0
