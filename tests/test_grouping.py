"""Seasonal fits (``group=``): the Grouper's groups and weights against pandas/xarray
references, the climatological correction per group against xarray's groupby, and a
seasonal ProxyDownscaler that recovers a known monthly fine-scale pattern."""

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import climlatent as cl
from climlatent.baselines import ClimatologyCorrectedBilinear
from climlatent.errors import InputDataError
from climlatent.grouping import Grouper, group_log_mean_exp, group_mean

PANDAS_SEASON = {12: "DJF", 1: "DJF", 2: "DJF", 3: "MAM", 4: "MAM", 5: "MAM",
                 6: "JJA", 7: "JJA", 8: "JJA", 9: "SON", 10: "SON", 11: "SON"}  # fmt: skip


def _daily(n: int, start: str = "2003-11-15") -> xr.DataArray:
    return xr.DataArray(pd.date_range(start, periods=n, freq="D"), dims="time", name="time")


@pytest.mark.parametrize("group", ["time.month", "time.season", "time.dayofyear"])
def test_group_mean_is_xarray_groupby_mean(group):
    rng = np.random.default_rng(0)
    time = _daily(800)
    values = rng.normal(size=(800, 3))
    values[rng.random(values.shape) < 0.1] = np.nan
    da = xr.DataArray(values, dims=("time", "x"), coords={"time": time}, name="tos")
    grouper = Grouper.parse(group)
    groups = grouper.groups_of(time, min_steps=1)  # 2004's day 366 has one step
    ours = group_mean(values, grouper.weights(time, groups))
    reference = da.groupby(group).mean("time")
    prop = group.split(".")[1]
    np.testing.assert_allclose(ours, reference.sel({prop: groups.values}).values, rtol=1e-12)


def test_seasons_and_months_index_as_pandas_names_them():
    time = _daily(400)
    months = pd.DatetimeIndex(time.values).month
    seasons = Grouper.parse("time.season")
    labels = seasons.coordinate().values[seasons.index(time)]
    assert labels.tolist() == [PANDAS_SEASON[m] for m in months]
    assert (Grouper.parse("time.month").index(time) + 1).tolist() == months.tolist()


def test_dayofyear_window_counts_each_step_in_the_groups_whose_windows_hold_it():
    time = _daily(50, start="2001-12-20")
    grouper = Grouper("time.dayofyear", window=5)
    groups = grouper.groups_of(time, min_steps=1)
    weights = grouper.weights(time, groups)
    doy = pd.DatetimeIndex(time.values).day_of_year.to_numpy()
    expected = np.zeros_like(weights)
    for centre in range(50):  # the window of each step, truncated at the series' ends
        for step in range(max(centre - 2, 0), min(centre + 3, 50)):
            expected[step, list(groups.values).index(doy[centre])] += 1
    np.testing.assert_array_equal(weights, expected)


def test_cftime_360_day_calendar_groups_by_its_own_days():
    dates = [cftime.Datetime360Day(2000, 1, 1) + pd.Timedelta(days=d) for d in range(720)]
    time = xr.DataArray(dates, dims="time", name="time")
    grouper = Grouper.parse("time.dayofyear")
    assert grouper.coordinate("360_day").size == 360
    assert grouper.groups_of(time).size == 360
    assert grouper.index(time)[[0, 359, 360]].tolist() == [0, 359, 0]


def test_bad_groups_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="time.week"):
        Grouper.parse("time.week")
    with pytest.raises(ValueError, match="window"):
        Grouper("time.month", window=3)
    with pytest.raises(InputDataError, match="month 1 \\(1\\)"):
        Grouper.parse("time.month").groups_of(_daily(40, start="2000-01-31"))


# -- the climatological correction, per group ------------------------------------------


@pytest.fixture(scope="module")
def world():
    return cl.datasets.synthetic_biogeochem(n_years=4, n_fine_lat=12, n_fine_lon=12, seed=2)


@pytest.mark.parametrize("group", ["time.month", "time.season"])
def test_correction_is_the_groupby_mean_misfit(world, group):
    bcsd = ClimatologyCorrectedBilinear("additive", group=group).fit(
        world.coarse, world.fine, "tos"
    )
    bilinear = cl.baselines.BilinearBaseline().fit(world.coarse, world.fine, "tos")
    misfit = world.fine["tos"] - bilinear.downscale(world.coarse)["tos"]
    reference = misfit.groupby(group).mean(["time", "member"])
    prop = group.split(".")[1]
    np.testing.assert_allclose(
        bcsd.correction_.values,
        reference.sel({prop: bcsd.correction_[prop].values}).transpose(prop, "lat", "lon").values,
        rtol=1e-10,
        atol=1e-12,
    )
    out = bcsd.downscale(world.coarse)["tos"]
    expected = bilinear.downscale(world.coarse)["tos"].groupby(group) + reference
    np.testing.assert_allclose(out.values, expected.transpose(*out.dims).values, atol=1e-9)


@pytest.mark.parametrize("time_unit", ["ns", "us"])
def test_correction_of_dates_on_a_cftime_and_a_numpy_time_axis_is_the_same(world, time_unit):
    """Coarse dates as cftime and fine as numpy datetime64, the same days: numpy's
    nanoseconds compared as integers, refused as "different dates"; its microseconds
    were accepted, but the misfit's time axis became a mixture of both, refused as "no
    dates". The correction is that of one time axis."""
    days = world.fine.indexes["time"].to_datetimeindex(time_unit=time_unit)
    standard = xr.date_range(str(days[0]), periods=days.size, freq="MS", calendar="standard",
                             use_cftime=True)  # fmt: skip
    fine = world.fine.assign_coords(time=days)
    mixed = ClimatologyCorrectedBilinear(group="time.season").fit(
        world.coarse.assign_coords(time=standard), fine, "tos"
    )
    same = ClimatologyCorrectedBilinear(group="time.season").fit(
        world.coarse.assign_coords(time=days), fine, "tos"
    )
    assert mixed.correction_.season.values.tolist() == ["DJF", "MAM", "JJA", "SON"]
    np.testing.assert_array_equal(mixed.correction_.values, same.correction_.values)


def test_era5_valid_time_axis_is_named_in_the_group_to_give(world):
    """ERA5 from the new CDS dates its steps on ``valid_time``: the default group
    'time.month' was refused as if the data had no dates ("seasonal models apply to
    dated data only"); the refusal names the group to give, which fits the months'
    correction of the same data on 'time'."""
    coarse, fine = (data.rename(time="valid_time") for data in (world.coarse, world.fine))
    with pytest.raises(InputDataError, match="its time axis is 'valid_time': use group="
                       "'valid_time.dayofyear:5'"):  # fmt: skip
        ClimatologyCorrectedBilinear(group="time.dayofyear:5").fit(coarse, fine, "tos")
    on_valid_time = ClimatologyCorrectedBilinear(group="valid_time.month").fit(coarse, fine, "tos")
    on_time = ClimatologyCorrectedBilinear().fit(world.coarse, world.fine, "tos")
    np.testing.assert_array_equal(on_valid_time.correction_.values, on_time.correction_.values)
    out = on_valid_time.downscale(coarse)["tos"]
    expected = on_time.downscale(world.coarse)["tos"].rename(time="valid_time")
    np.testing.assert_array_equal(out.values, expected.transpose(*out.dims).values)


# -- a seasonal ProxyDownscaler --------------------------------------------------------


def _with_monthly_pattern(fine: xr.Dataset, amplitude: float) -> xr.Dataset:
    """The fine ``tos`` plus a fine-scale pattern whose sign turns with the season."""
    lat, lon = np.meshgrid(np.arange(fine.sizes["lat"]), np.arange(fine.sizes["lon"]),
                           indexing="ij")  # fmt: skip
    pattern = xr.DataArray(np.sin(lat * 2.1) * np.cos(lon * 1.7), dims=("lat", "lon"))
    phase = np.cos(2 * np.pi * (fine.time.dt.month - 1) / 12)
    return fine.assign(tos=fine["tos"] + amplitude * phase * pattern)


def test_seasonal_fit_recovers_a_monthly_fine_scale_pattern(world):
    cut = world.fine.time[36].values
    train, test = (
        lambda ds: ds.sel(time=slice(None, cut)),
        lambda ds: ds.sel(time=slice(cut, None)),
    )
    seasonal_fine = _with_monthly_pattern(world.fine, amplitude=1.0)

    def held_out_rmse(fine: xr.Dataset, group: str) -> float:
        est = cl.ProxyDownscaler(group=group, epochs=150, progress=False, seed=0)
        est.fit(train(world.coarse), train(fine), "tos")
        out = est.downscale(test(world.coarse))["tos"]
        return float(cl.metrics.rmse(out, test(fine)["tos"], ("member", "time")))

    floor = held_out_rmse(world.fine, "time")  # the world without the pattern
    annual = held_out_rmse(seasonal_fine, "time")
    monthly = held_out_rmse(seasonal_fine, "time.month")
    print(f"RMSE: no pattern {floor:.4f}; with it, annual {annual:.4f}, monthly {monthly:.4f}")
    assert annual > 2 * floor  # the pattern (RMS 0.5 K) is beyond a single fit
    assert monthly < 1.15 * floor


def test_seasonal_model_saves_loads_and_refuses_unknown_groups(world, tmp_path):
    summer = world.coarse.time.dt.month.isin([6, 7, 8])
    coarse, fine = world.coarse.sel(time=summer), world.fine.sel(time=summer)
    est = cl.ProxyDownscaler(group="time.season", epochs=5, progress=False).fit(
        coarse, fine, "chl", proxies={"tos": "exponential"}
    )
    assert est.groups_.values.tolist() == ["JJA"]
    est.save(str(tmp_path / "m.clm"))
    loaded = cl.load(str(tmp_path / "m.clm"))
    assert loaded.group == "time.season" and loaded.groups_.values.tolist() == ["JJA"]
    np.testing.assert_array_equal(
        est.downscale(coarse)["chl"].values, loaded.downscale(coarse)["chl"].values
    )
    with pytest.raises(InputDataError, match="season 'DJF'"):
        loaded.downscale(world.coarse)
    with pytest.raises(InputDataError, match="has dim 'step' .*model \\(member, time\\)"):
        loaded.downscale(coarse.isel(time=0, drop=True).expand_dims(step=[0]))
    with pytest.raises(
        InputDataError, match="group 'time.season' needs dates on the time axis 'time'"
    ):
        loaded.downscale(coarse.drop_vars("time"))


def test_group_mean_of_float32_rows_sums_in_float64():
    # numpy adds the rows of an axis-0 float32 sum one after another: 2 million rows
    # near 288 K gave a mean 1.7 K off
    values = np.full((2_000_000, 2), 288.1, np.float32)
    values[::2] += np.float32(0.7)
    out = group_mean(values, np.ones((len(values), 1)))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, values.astype(float).mean(axis=0)[None], rtol=1e-7)


def test_a_group_without_training_data_names_the_fitted_days_as_ranges():
    """The refusal listed all 364 fitted days one by one."""
    t = xr.date_range("2001-01-01", periods=730, calendar="noleap", use_cftime=True)
    time = xr.DataArray(t, dims="time", name="time")
    grouper = Grouper.parse("time.dayofyear")
    groups = grouper.groups_of(time.where(time.dt.dayofyear != 60, drop=True))
    with pytest.raises(InputDataError) as error:
        grouper.index(time, groups)
    assert str(error.value).endswith("was fitted on dayofyear 1-59, 61-365)")


def test_group_log_mean_exp_is_the_log_of_the_mean_of_exp_at_any_scale():
    """The proxy-latent smearing, log(group_mean(exp(q r))), was inf (log of an overflowed
    mean) for log residuals past 709 and -inf below -745, taken to +-1.8e308 after."""
    mpmath = pytest.importorskip("mpmath")
    rng = np.random.default_rng(0)
    values = rng.normal(size=(40, 3))
    values[[2, 7, 11], [0, 1, 1]] = np.nan
    soft = rng.uniform(size=(40, 2)) * (rng.uniform(size=(40, 2)) < 0.7)
    for weights in (np.eye(2)[rng.integers(0, 2, 40)], soft):
        old = np.log(group_mean(np.exp(values), weights))
        np.testing.assert_allclose(group_log_mean_exp(values, weights), old, rtol=1e-12)
    weights = soft
    for shift in (1000.0, -1000.0):
        with np.errstate(over="ignore", divide="ignore"):
            assert not np.isfinite(np.log(group_mean(np.exp(values + shift), weights))).any()
        out = group_log_mean_exp(values + shift, weights)
        for g, cell in np.ndindex(out.shape):
            rows = np.flatnonzero((weights[:, g] > 0) & np.isfinite(values[:, cell]))
            w, v = weights[rows, g], values[rows, cell] + shift
            with mpmath.workdps(40):
                exact = mpmath.log(mpmath.fsum(map(mpmath.fmul, w, map(mpmath.exp, v))) / sum(w))
            assert out[g, cell] == pytest.approx(float(exact), rel=1e-15, abs=1e-12)
    assert np.isnan(group_log_mean_exp(np.full((2, 1), np.nan), np.ones((2, 1)))).all()
