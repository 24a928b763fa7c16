import re

import cftime
import dask.array
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from provenance import written_and_read

from climlatent.errors import InputDataError, NotFittedError, StaleFitError
from climlatent.transforms import (
    Anomalies,
    Log1p,
    Pipeline,
    PowerTransform,
    Standardize,
    transform_from_dataset,
)

pytestmark = pytest.mark.filterwarnings(  # numpy's reference statistics on the masked cell
    "ignore:Mean of empty slice:RuntimeWarning", "ignore:Degrees of freedom:RuntimeWarning"
)
CALENDARS = [
    "360_day",
    "noleap",
    "365_day",
    "all_leap",
    "gregorian",
    "standard",
    "proleptic_gregorian",
    "julian",
    "numpy",
]
TRANSFORMS = {
    "standardize": lambda: Standardize(),
    "standardize_member": lambda: Standardize(dims=("time", "member")),
    "anomalies_doy": lambda: Anomalies(),
    "anomalies_window_member": lambda: Anomalies(window=31, dims=("time", "member")),
    "anomalies_month": lambda: Anomalies(freq="month"),
    "log1p": lambda: Log1p(scale=2.0),
    "log1p_fitted": lambda: Log1p(),
    "power": lambda: PowerTransform(),
    "pipeline": lambda: Pipeline([PowerTransform(0.25), Anomalies(window=15), Standardize()]),
}
FORWARD_UNITS = {
    "standardize": "1",
    "standardize_member": "1",
    "anomalies_doy": "mm d-1",
    "anomalies_window_member": "mm d-1",
    "anomalies_month": "mm d-1",
    "log1p": "1",
    "log1p_fitted": "1",
    "power": "(mm d-1)^0.333333",
    "pipeline": "1",
}


def daily_time(calendar, start="2000-01-01", end="2002-12-30"):
    if calendar == "numpy":
        return xr.date_range(start, end, freq="D", use_cftime=False)
    return xr.date_range(start, end, freq="D", calendar=calendar, use_cftime=True)


def make_field(calendar="noleap", *, seed=0, name="pr", time=None, dims=("time", "lat", "lon")):
    """Precipitation-like field with a seasonal cycle, a masked cell, a constant cell."""
    time = daily_time(calendar) if time is None else time
    month = xr.DataArray(time, dims="time").dt.month.values
    rng = np.random.default_rng(seed)
    shape = (time.size, 2, 3, 4)
    seasonal = 2.0 + 2.0 * np.sin(2 * np.pi * month / 12)
    values = rng.gamma(0.8, 3.0, shape) + seasonal[:, None, None, None]
    values[::7, :, 2, 3] = 0.0  # dry days
    values[:, :, 0, 0] = np.nan  # masked (ocean) cell
    values[:, :, 1, 1] = 5.0  # zero-variance cell
    values[5:40, :, 2, 2] = np.nan  # gap in a land cell
    coords = {
        "time": time,
        "member": ["r1", "r2"],
        "lat": ("lat", [-10.0, 0.0, 10.0], {"units": "degrees_north"}),
        "lon": ("lon", [0.0, 5.0, 10.0, 15.0], {"units": "degrees_east"}),
    }
    da = xr.DataArray(
        values,
        dims=("time", "member", "lat", "lon"),
        coords=coords,
        name=name,
        attrs={"units": "mm d-1", "long_name": "precipitation"},
    )
    return da.transpose(*dims, ...) if "member" in dims else da.isel(member=0, drop=True)


def field_for(kind, calendar):
    """The field a transform of TRANSFORMS is tested on: with members where it uses them."""
    dims = ("time", "member", "lat", "lon") if kind.endswith("member") else ("time", "lat", "lon")
    return make_field(calendar, dims=dims)


def seasonal_signal(time):
    """Annual sine that depends on the calendar date only (month and day)."""
    t = xr.DataArray(time, dims="time")
    phase = (t.dt.month.values - 1) / 12 + (t.dt.day.values - 1) / 372
    return 3.0 * np.sin(2 * np.pi * phase)


@pytest.mark.parametrize("calendar", CALENDARS)
@pytest.mark.parametrize("kind", TRANSFORMS)
def test_inverse_undoes_forward(kind, calendar):
    da = field_for(kind, calendar)
    transform = TRANSFORMS[kind]().fit(da)
    out = transform.forward(da)
    back = transform.inverse(out)
    xr.testing.assert_allclose(back, da, rtol=1e-12, atol=1e-12)
    assert back.attrs == da.attrs and back.name == da.name
    xr.testing.assert_identical(back.coords.to_dataset(), da.coords.to_dataset())
    assert out.isnull().equals(da.isnull())
    assert out.dims == da.dims
    xr.testing.assert_identical(out.coords.to_dataset(), da.coords.to_dataset())
    assert out.attrs["units"] == FORWARD_UNITS[kind]
    assert out.attrs["long_name"] == "precipitation"


@pytest.mark.parametrize("kind", TRANSFORMS)
def test_fit_forward_equals_fit_then_forward(kind):
    da = field_for(kind, "noleap")
    xr.testing.assert_identical(
        TRANSFORMS[kind]().fit_forward(da), TRANSFORMS[kind]().fit(da).forward(da)
    )


def test_standardize_statistics_and_zero_variance():
    da = make_field("noleap")
    transform = Standardize().fit(da)
    values = da.values
    np.testing.assert_allclose(transform.state["mean"], np.nanmean(values, axis=0))
    std = np.nanstd(values, axis=0)
    np.testing.assert_allclose(transform.state["std"], np.where(std == 0, 1, std))
    out = transform.forward(da)
    assert (out.sel(lat=0.0, lon=5.0) == 0).all()  # constant cell: x - mean, divided by 1
    assert out.isel(lat=0, lon=0).isnull().all()
    np.testing.assert_allclose(out.std("time").isel(lat=2, lon=3), 1.0)


@pytest.mark.parametrize(("value", "dtype", "n"), [(0.1, np.float64, 10), (-1.8, np.float32, 365)])
def test_standardize_constant_cells_whose_std_is_round_off(value, dtype, n):
    """Their std came out 1e-17 or 6e-6, not 0: a later value 0.01 away mapped to 7e14."""
    field = xr.DataArray(np.full((n, 2), value, dtype), dims=("time", "x"), name="v")
    transform = Standardize().fit(field)
    np.testing.assert_array_equal(transform.state["std"], 1.0)
    later = transform.forward(field.isel(time=[0]) + dtype(0.01))
    np.testing.assert_allclose(later, 0.01, rtol=1e-4)


def test_standardize_sums_float32_fields_in_float64():
    """A century of daily float32 pressures: the float32 mean was 1.5 Pa off."""
    rng = np.random.default_rng(0)
    psl = xr.DataArray(
        (101325 + 100 * rng.standard_normal((36500, 2))).astype(np.float32), dims=("time", "x")
    )
    transform = Standardize().fit(psl)
    assert transform.state["mean"].dtype == np.float32
    exact = psl.values.astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(transform.state["mean"], exact, rtol=0, atol=0.004)  # a ulp


@pytest.mark.parametrize("scale", [5e22, 5e-22])
def test_standardize_float32_fields_far_from_one_as_float64_and_dask(scale):
    """In memory, float32 squares of deviations overflowed (std inf, all zeros out) or
    lost 8e-5 of the std in subnormals; dask's chunks were already squared in float64."""
    rng = np.random.default_rng(0)
    values = (scale * (5 + rng.standard_normal((100, 2)))).astype(np.float32)
    values[0, 1] = np.nan
    field = xr.DataArray(values, dims=("time", "x"))
    exact = np.nanstd(values.astype(np.float64), axis=0)
    for data in (field, field.chunk(time=10)):
        transform = Standardize().fit(data)
        np.testing.assert_allclose(transform.state["std"], exact, rtol=1e-6)
        out = transform.forward(data).values.astype(np.float64)
        np.testing.assert_allclose(np.nanstd(out, axis=0), 1.0, rtol=1e-6)


def _groupby_month_day(da):
    """Independent climatology: pandas groupby on (month, day) of each time stamp."""
    keys = pd.MultiIndex.from_tuples([(t.month, t.day) for t in da.indexes["time"]])
    frame = pd.DataFrame(da.values.reshape(da.sizes["time"], -1), index=keys)
    return frame.groupby(level=[0, 1]).mean().sort_index().to_numpy()


@pytest.mark.parametrize("calendar", CALENDARS)
def test_dayofyear_climatology_matches_pandas_groupby(calendar):
    da = make_field(calendar)
    clim = Anomalies().fit(da).state["climatology"]
    expected = _groupby_month_day(da)
    n_days = {"360_day": 360, "noleap": 365, "365_day": 365}.get(calendar, 366)
    assert clim.sizes["dayofyear"] == n_days == expected.shape[0]
    np.testing.assert_allclose(clim.values.reshape(n_days, -1), expected, rtol=1e-13)


@pytest.mark.parametrize("calendar", CALENDARS)
@pytest.mark.parametrize("freq", ["dayofyear", "month"])
def test_anomalies_of_seasonal_sine_are_trend_only(calendar, freq):
    time = daily_time(calendar, end="2005-12-30")
    sine = seasonal_signal(time)
    seasonal = xr.DataArray(sine, coords={"time": time}, name="tas", attrs={"units": "K"})
    trend = xr.DataArray(0.01 * np.arange(time.size), coords={"time": time})
    transform = Anomalies(freq=freq).fit(seasonal)
    if freq == "dayofyear":
        np.testing.assert_allclose(transform.forward(seasonal), 0.0, atol=1e-12)
        np.testing.assert_allclose(transform.forward(seasonal + trend), trend, atol=1e-12)
    else:
        month_means = seasonal.groupby("time.month").mean()
        expected = seasonal - month_means.sel(month=seasonal["time"].dt.month).drop_vars("month")
        np.testing.assert_allclose(transform.forward(seasonal), expected, atol=1e-12)


def test_monthly_climatology_on_360_day_is_mean_of_30_day_months():
    da = make_field("360_day")
    clim = Anomalies(freq="month").fit(da).state["climatology"]
    by_month = da.values.reshape(3, 12, 30, 3, 4)  # 3 years of twelve 30-day months
    np.testing.assert_allclose(clim, np.nanmean(by_month, axis=(0, 2)), rtol=1e-13)
    np.testing.assert_array_equal(clim["month"], np.arange(1, 13))


def _month_day_field(time):
    t = xr.DataArray(time, dims="time", coords={"time": time})
    return (100.0 * t.dt.month + t.dt.day).rename("tas").assign_attrs(units="K")


@pytest.mark.parametrize("calendar", ["gregorian", "numpy", "julian", "proleptic_gregorian"])
def test_leap_day_with_leap_years_in_fit_period(calendar):
    da = _month_day_field(daily_time(calendar, "2000-01-01", "2003-12-31"))
    clim = Anomalies().fit(da).state["climatology"]
    assert clim.sel(dayofyear=60) == 229  # 29 February, from the leap day alone
    assert clim.sel(dayofyear=61) == 301  # 1 March in every year, leap or not
    assert clim.sel(dayofyear=366) == 1231
    np.testing.assert_array_equal(Anomalies().fit(da).forward(da), 0.0)


@pytest.mark.parametrize("calendar", ["gregorian", "numpy"])
def test_leap_day_missing_from_fit_period_uses_neighbours(calendar):
    fit = _month_day_field(daily_time(calendar, "2001-01-01", "2003-12-31"))
    leap_year = _month_day_field(daily_time(calendar, "2004-01-01", "2004-12-31"))
    transform = Anomalies().fit(fit)
    assert transform.state["climatology"].sel(dayofyear=60) == (228 + 301) / 2
    out = transform.forward(leap_year)
    is_leap_day = (leap_year["time"].dt.month == 2) & (leap_year["time"].dt.day == 29)
    np.testing.assert_array_equal(out.where(~is_leap_day, 0.0), 0.0)
    assert out.sel(time=is_leap_day).item() == 229 - (228 + 301) / 2


@pytest.mark.parametrize("window", [1, 5, 31])
def test_smoothing_window_wraps_around_the_year(window):
    da = make_field(time=daily_time("noleap", end="2002-12-31")).isel(lat=2, lon=3)
    daily = da.values.reshape(3, 365).mean(axis=0)
    half = window // 2
    expected = np.mean([np.roll(daily, -shift) for shift in range(-half, half + 1)], axis=0)
    clim = Anomalies(window=window).fit(da).state["climatology"]
    np.testing.assert_allclose(clim, expected, rtol=1e-13)
    assert np.isclose(clim[0], np.mean(np.concatenate([daily[365 - half :], daily[: half + 1]])))


def test_climatology_averages_over_members():
    da = make_field("360_day", dims=("time", "member", "lat", "lon"))
    clim = Anomalies(freq="month", dims=("time", "member")).fit(da).state["climatology"]
    by_month = da.values.reshape(3, 12, 30, 2, 3, 4)
    np.testing.assert_allclose(clim, np.nanmean(by_month, axis=(0, 2, 3)), rtol=1e-13)
    assert set(clim.dims) == {"month", "lat", "lon"}


def test_time_axis_found_through_cf_axis_attribute():
    da = make_field("noleap")
    renamed = da.rename(time="t")
    renamed["t"].attrs["axis"] = "T"
    out = Anomalies(dims="t").fit_forward(renamed)
    expected = Anomalies().fit_forward(da)
    np.testing.assert_array_equal(out.values, expected.values)
    assert out.dims == renamed.dims


@pytest.mark.parametrize("calendar", ["360_day", "standard", "numpy"])
@pytest.mark.parametrize("kind", TRANSFORMS)
def test_netcdf_round_trip_gives_identical_output(kind, calendar, tmp_path):
    da = field_for(kind, calendar)
    transform = TRANSFORMS[kind]().fit(da)
    path = tmp_path / "transform.nc"
    transform.to_dataset().to_netcdf(path)
    with xr.open_dataset(path) as ds:
        restored = transform_from_dataset(ds)
    assert type(restored) is type(transform)
    assert restored.params == transform.params
    out = transform.forward(da)
    xr.testing.assert_identical(restored.forward(da), out)
    xr.testing.assert_identical(restored.inverse(out), transform.inverse(out))


def test_nested_pipeline_survives_netcdf(tmp_path):
    da = make_field("julian")
    inner = Pipeline([PowerTransform(), Anomalies(freq="month")])
    transform = Pipeline([inner, Standardize()]).fit(da)
    assert "step0_step1_climatology" in transform.to_dataset()
    transform.to_dataset().to_netcdf(tmp_path / "nested.nc")
    with xr.open_dataset(tmp_path / "nested.nc") as ds:
        restored = transform_from_dataset(ds)
    xr.testing.assert_identical(restored.forward(da), transform.forward(da))


@pytest.mark.parametrize("kind", TRANSFORMS)
def test_float32_stays_float32(kind):
    da = field_for(kind, "360_day").astype("float32")
    out = TRANSFORMS[kind]().fit_forward(da)
    assert out.dtype == np.float32


def test_pipeline_state_is_flat_and_prefixed():
    da = make_field("noleap")
    state = Pipeline([Log1p(), Anomalies(freq="month"), Standardize()]).fit(da).to_dataset()
    assert set(state.data_vars) == {"step0_scale", "step1_climatology", "step2_mean", "step2_std"}
    assert state.attrs["n_steps"] == 3
    assert state.attrs["step0_transform"] == "log1p"
    assert state.attrs["step1_calendar"] == "noleap"
    assert state.attrs["step0_input_units"] == "mm d-1"
    assert state.attrs["step1_input_units"] == "1"


@pytest.mark.parametrize("kind", TRANSFORMS)
def test_dask_input_stays_lazy_and_matches_numpy(kind):
    da = field_for(kind, "standard")
    lazy = da.chunk({"time": 200, "lat": 2})
    eager_transform = TRANSFORMS[kind]().fit(da)
    lazy_transform = TRANSFORMS[kind]().fit(lazy)
    xr.testing.assert_allclose(lazy_transform.state, eager_transform.state, rtol=1e-12)
    out = lazy_transform.forward(lazy)
    back = lazy_transform.inverse(out)
    assert isinstance(out.data, dask.array.Array)
    assert isinstance(back.data, dask.array.Array)
    assert out.chunks == lazy.chunks
    xr.testing.assert_allclose(out.compute(), eager_transform.forward(da), rtol=1e-12)
    xr.testing.assert_allclose(back.compute(), da, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", TRANSFORMS)
@pytest.mark.parametrize("method", ["forward", "inverse", "to_dataset"])
def test_use_before_fit_raises_not_fitted(kind, method):
    transform = TRANSFORMS[kind]()
    with pytest.raises(NotFittedError, match="not fitted"):
        if method == "to_dataset":
            transform.to_dataset()
        else:
            getattr(transform, method)(make_field())


@pytest.mark.parametrize("kind", TRANSFORMS)
def test_a_clone_is_unfitted_with_equal_params_and_refits_bit_for_bit(kind):
    """``sklearn.base.clone``: a Pipeline's steps are cloned too, not shared, unfitted."""
    clone = pytest.importorskip("sklearn.base").clone
    da = field_for(kind, "noleap")
    transform = TRANSFORMS[kind]().fit(da)
    copy = clone(transform)
    assert repr(copy) == repr(transform) and copy.params == transform.params
    with pytest.raises(NotFittedError):
        copy.forward(da)
    if kind == "pipeline":
        assert all(a is not b for a, b in zip(copy.steps, transform.steps, strict=True))
        assert copy.get_params(deep=False).keys() == {"steps"}
    else:
        assert copy.get_params() == transform.get_params()
    xr.testing.assert_identical(copy.fit(da).forward(da), transform.forward(da))


def test_a_pipelines_step_parameters_are_nested_and_checked_as_its_constructor_does():
    pipeline = TRANSFORMS["pipeline"]()
    params = pipeline.get_params()
    assert list(params) == [
        "steps", "step0__exponent", "step0__tolerance", "step1__freq", "step1__dims",
        "step1__window", "step2__dims",
    ]  # fmt: skip
    assert params["step1__window"] == 15 and params["step2__dims"] == ("time",)
    pipeline.set_params(step0__exponent=0.5, step2__dims=["time", "member"])
    assert repr(pipeline.steps[0]) == "PowerTransform(exponent=0.5, tolerance=1e-09)"
    assert pipeline.steps[2].params == {"dims": ["time", "member"]}  # the state's, too
    with pytest.raises(ValueError, match="window must be a positive odd number, got 2"):
        pipeline.set_params(step0__exponent=2.0, step1__window=2)
    assert pipeline.get_params()["step0__exponent"] == 0.5  # all refused, none changed
    with pytest.raises(ValueError, match="invalid parameter 'step1__nope' for Pipeline"):
        pipeline.set_params(step1__nope=1)
    standardize = Standardize().set_params(dims="member")
    assert repr(standardize) == "Standardize(dims=['member'])"  # as Standardize(dims="member")
    with pytest.raises(ValueError, match="dims must be one or more distinct dimension names"):
        standardize.set_params(dims=0)


SHAPING = {  # kind -> a parameter that shapes the fit, another valid value
    "standardize": ("dims", ("lat",)),
    "standardize_member": ("dims", ("time",)),
    "anomalies_doy": ("freq", "month"),
    "anomalies_window_member": ("window", 15),
    "anomalies_month": ("freq", "dayofyear"),
    "log1p": ("scale", 3.0),
    "log1p_fitted": ("scale", 1.0),
    "power": ("exponent", 0.5),
    "pipeline": ("step1__window", 31),
}


@pytest.mark.parametrize("kind", TRANSFORMS)
def test_a_parameter_shaping_the_fit_changed_after_it_is_refused_until_set_back(kind):
    """A fitted PowerTransform(1/3) set to 0.5 mapped with 0.5 and wrote a state of 1/3;
    refused naming it (a step's as the pipeline's parameter); set back, bit for bit.
    ``tolerance``, read by forward alone, changes freely; a rebuilt state is its fit."""
    da = field_for(kind, "noleap")
    transform = TRANSFORMS[kind]().fit(da)
    out = transform.forward(da)
    key, value = SHAPING[kind]
    fitted = transform.get_params()[key]
    transform.set_params(**{key: value})
    message = f"was fitted with {key}={fitted!r}, now {key}={value!r}: refit it, or set it back"
    for use in (transform.forward, transform.inverse, lambda _: transform.to_dataset()):
        with pytest.raises(StaleFitError, match=re.escape(message)):
            use(da)
    transform.set_params(**{key: fitted})
    tolerance = {"tolerance": 1e-6} if "tolerance" in transform.get_params() else {}
    if kind == "pipeline":
        tolerance = {"step0__tolerance": 1e-6}
    xr.testing.assert_identical(transform.set_params(**tolerance).forward(da), out)
    rebuilt = transform_from_dataset(transform.to_dataset())
    xr.testing.assert_identical(rebuilt.forward(da), out)
    with pytest.raises(StaleFitError, match=re.escape(message)):
        rebuilt.set_params(**{key: value}).forward(da)
    assert transform.set_params(**{key: value}).fit(da).forward(da).name == da.name  # refit


@pytest.mark.parametrize("transform", [Log1p(), PowerTransform()], ids=["log1p", "power"])
def test_round_off_negatives_are_clipped_and_real_negatives_raise(transform):
    da = make_field("noleap")
    tiny = da.where(da != 0, -1e-12)
    out = transform.fit(tiny).forward(tiny)
    assert (out.where(da == 0) == 0).sum() == (da == 0).sum()
    bad = da.where(da != 0, -0.5)
    with pytest.raises(InputDataError, match="'pr'.*negative values down to -0.5"):
        transform.forward(bad)
    lazy = transform.forward(bad.chunk({"time": 100}))  # dask: raises when computed
    with pytest.raises(InputDataError, match="'pr'"):
        lazy.compute()


@pytest.mark.parametrize("transform", [Log1p(), PowerTransform()], ids=["log1p", "power"])
def test_negative_transformed_values_invert_to_zero_and_are_counted(transform):
    da = make_field("noleap")
    out = transform.fit(da).forward(da)
    shifted = out.where(out > 0.5, out - 1.0)  # the image of 0 is 0 for both maps
    back = transform.inverse(shifted)
    assert float(back.min()) == 0.0
    n_below = int((shifted < 0).sum())
    assert 0 < n_below < int(np.isfinite(shifted).sum())
    note = back.attrs["climlatent_clipped"]
    assert note.startswith(f"{n_below} of {int(np.isfinite(da).sum())} values below the physical")
    assert "bound 0 mm d-1" in note
    assert "climlatent_clipped" not in transform.inverse(out).attrs  # round-off is no record
    piped = Pipeline([transform, Standardize()]).fit(da)
    standard = piped.forward(da)
    # the note of the inner step reaches the pipeline's output
    low = piped.steps[1].forward(shifted)
    assert "climlatent_clipped" in piped.inverse(low).attrs
    assert "climlatent_clipped" not in piped.inverse(standard).attrs


def test_log1p_fitted_scale_is_the_mean_and_the_same_map_in_any_units():
    """A fixed scale of 1 is the identity on kg m-2 s-1 (pr ~3e-5): the fitted scale,
    the data's mean, maps the field the same in mm d-1 and in kg m-2 s-1."""
    mm = make_field("noleap")
    si = (mm / 86400.0).assign_attrs(units="kg m-2 s-1")
    fitted_mm, fitted_si = Log1p().fit(mm), Log1p().fit(si)
    np.testing.assert_allclose(float(fitted_mm.state["scale"]), float(mm.mean()), rtol=1e-12)
    np.testing.assert_allclose(
        fitted_mm.forward(mm).values, fitted_si.forward(si).values, rtol=1e-9, equal_nan=True
    )
    assert fitted_si.state["scale"].attrs["units"] == "kg m-2 s-1"
    assert float(Log1p(scale=1.0).fit(si).forward(si).std()) < 1e-4  # the old identity
    with pytest.raises(InputDataError, match="'pr' has no positive values"):
        Log1p().fit(mm * 0)


def test_log1p_saved_with_a_fixed_scale_loads_with_it():
    """A state written before the scale was fitted: params scale=1.0, no variable."""
    da = make_field("noleap")
    old = Log1p(scale=1.0).fit(da).to_dataset()
    assert "scale" not in old.data_vars
    loaded = transform_from_dataset(old)
    np.testing.assert_allclose(loaded.forward(da).values, np.log1p(da.values), equal_nan=True)


def _undecoded_time(da):
    return da.assign_coords(time=("time", np.arange(da.sizes["time"]), {"calendar": "bogus"}))


def _cftime_time(da, calendar):
    times = [cftime.datetime(2000, 1, 1, calendar=calendar) for _ in range(da.sizes["time"])]
    return da.assign_coords(time=np.array(times, dtype=object))


@pytest.mark.parametrize(
    ("make_bad", "message"),
    [
        (lambda da: da.rename(time="step"), "no time axis"),
        (_undecoded_time, "not dates .*'bogus'"),
        (lambda da: _cftime_time(da, ""), "unsupported calendar ''"),
        (lambda da: _cftime_time(da, "tai"), "unsupported calendar 'tai'"),
        (lambda da: da.isel(time=slice(0, 100)), "no sample for dayofyear"),
    ],
    ids=["no-time", "undecoded", "calendar-naive", "tai", "short-period"],
)
def test_anomalies_fit_rejects_bad_time_axis(make_bad, message):
    bad = make_bad(make_field("noleap", name="tas"))
    with pytest.raises(InputDataError, match=f"'tas'.*{message}"):
        Anomalies().fit(bad)


def test_360_day_climatology_on_other_calendar_names_both():
    transform = Anomalies().fit(make_field("360_day", name="tas"))
    with pytest.raises(InputDataError, match="'tas' is on the 'standard' calendar.*'360_day'"):
        transform.forward(make_field("standard", name="tas"))


def test_monthly_climatology_applies_across_calendars():
    transform = Anomalies(freq="month").fit(make_field("360_day"))
    da = make_field("standard")
    clim = transform.state["climatology"].sel(month=da["time"].dt.month).drop_vars("month")
    xr.testing.assert_allclose(transform.forward(da), da - clim)


@pytest.mark.parametrize(
    ("transform", "message"),
    [
        (Standardize(dims=("time", "member")), "no dimension \\['member'\\]"),
        (Anomalies(dims="member"), "must include the time dimension 'time'"),
    ],
    ids=["missing-dim", "time-not-in-dims"],
)
def test_fit_on_missing_dims_names_the_variable(transform, message):
    with pytest.raises(InputDataError, match=f"'tas'.*{message}"):
        transform.fit(make_field("noleap", name="tas"))


@pytest.mark.parametrize(
    ("transform", "make_bad", "message"),
    [
        (
            Standardize(),
            lambda da: da.assign_coords(lat=da.lat + 1),
            "not on the fitted grid.*'lat'",
        ),
        (Standardize(), lambda da: da.isel(lon=0), "lacks dimensions \\['lon'\\]"),
        (Anomalies(), lambda da: da.assign_coords(lon=da.lon + 1), "not on the fitted grid.*'lon'"),
        (Log1p(), lambda da: da.assign_attrs(units="kg m-2 s-1"), "units 'kg m-2 s-1'"),
    ],
    ids=["lat-moved", "lon-dropped", "lon-moved", "units"],
)
def test_applying_to_mismatched_data_names_the_variable(transform, make_bad, message):
    da = make_field("noleap", name="tas")
    transform.fit(da)
    with pytest.raises(InputDataError, match=f"'tas'.*{message}"):
        transform.forward(make_bad(da))


def test_transform_from_dataset_rejects_unknown_kind():
    with pytest.raises(InputDataError, match="'transform'='pickle'"):
        transform_from_dataset(xr.Dataset(attrs={"transform": "pickle"}))
    with pytest.raises(InputDataError, match="lacks variables \\['std'\\]"):
        state = Standardize().fit(make_field()).to_dataset()
        transform_from_dataset(state.drop_vars("std"))


def test_dataset_input_is_a_type_error():
    with pytest.raises(TypeError, match="select one variable"):
        Standardize().fit(make_field().to_dataset())


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Anomalies(freq="season"), "freq must be"),
        (lambda: Anomalies(window=4), "window must be a positive odd number"),
        (lambda: Log1p(scale=0.0), "scale must be > 0"),
        (lambda: PowerTransform(exponent=-1.0), "exponent must be > 0"),
        (lambda: Log1p(tolerance=-1.0), "tolerance must be >= 0"),
        (lambda: Pipeline([]), "at least one step"),
        # each was taken: inf mapped every value to 0 (scale) or above 1 to inf
        # (exponent); a NaN tolerance let every negative value through as round-off;
        # dims=() standardised over no dim (all zeros); the others failed mid-fit
        (lambda: Log1p(scale=float("inf")), "scale must be a finite number, got inf"),
        (lambda: PowerTransform(exponent=float("inf")), "exponent must be a finite number"),
        (lambda: PowerTransform(exponent=True), "exponent must be a finite number, got True"),
        (lambda: Log1p(tolerance=float("nan")), "tolerance must be a finite number, got nan"),
        (lambda: PowerTransform(tolerance="1"), "tolerance must be a finite number, got '1'"),
        (lambda: Anomalies(window=3.0), "window must be an integer >= 1, got 3.0"),
        (lambda: Anomalies(window=True), "window must be an integer >= 1, got True"),
        (lambda: Standardize(dims=()), "dims must be one or more distinct dimension names"),
        (lambda: Standardize(dims=["time", "time"]), r"distinct dimension names, got \['time'"),
        (lambda: Anomalies(dims=5), "dims must be one or more distinct"),
        (lambda: Pipeline([Log1p(), "x"]), "Pipeline step 1 is not a Transform: 'x'"),
        (lambda: Pipeline([STEP, STEP]), "Pipeline step 1 is step 0 again"),
    ],
)
def test_bad_hyper_parameters_raise_naming_the_option(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


STEP = Log1p()


def test_repr_shows_hyper_parameters():
    assert repr(Anomalies(freq="month")) == "Anomalies(freq='month', dims=None, window=None)"
    assert "PowerTransform(exponent=0.25" in repr(TRANSFORMS["pipeline"]())


@pytest.mark.parametrize("kind", TRANSFORMS)
def test_forward_output_is_no_longer_the_field_and_writes_as_computed(kind, tmp_path):
    """A standardised field or an anomaly kept the field's standard_name and its
    valid_range (0..100 mm d-1): in a file, CF readers masked every negative value
    (nearly half of a standardised field)."""
    da = field_for(kind, "noleap").assign_attrs(
        standard_name="precipitation_flux", valid_range=np.float32([0.0, 100.0])
    )
    out = TRANSFORMS[kind]().fit_forward(da)
    assert not {"standard_name", "valid_range"} & set(out.attrs)
    values, attrs = written_and_read(out.transpose(*da.dims), tmp_path)
    np.testing.assert_allclose(values, out.values, rtol=1e-6)
    assert attrs["units"] == FORWARD_UNITS[kind] and "valid_range" not in attrs


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.sampled_from(["standardize", "log1p", "power"]),
    st.sampled_from([np.float64, np.float32]),
    st.booleans(),
    st.data(),
)
def test_inverse_of_forward_is_the_field_whatever_its_values(kind, dtype, constant, data):
    """Zeros, subnormals, 1e12, NaN at random places and a constant cell come back to
    round-off: a few steps of the dtype at the cell's largest value (NaN stays NaN)."""
    n_time, n_cells = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 4))
    value = st.one_of(st.floats(-1e12, 1e12), st.sampled_from([0.0, 1e-300, 1e12, np.nan, -7.0]))
    value = value if kind == "standardize" else value.map(abs)
    values = data.draw(st.lists(value, min_size=n_time * n_cells, max_size=n_time * n_cells))
    x = np.array(values).reshape(n_time, n_cells).astype(dtype)
    if constant:
        x[:, 0] = x[0, 0]
    da = xr.DataArray(x, dims=("time", "x"), name="pr", attrs={"units": "mm d-1"})
    if kind == "log1p" and not np.nansum(x) > 0:
        return
    transform = {"standardize": Standardize, "log1p": Log1p, "power": PowerTransform}[kind]()
    with np.errstate(all="ignore"):
        back = transform.inverse(transform.fit_forward(da)).values
    scale = np.nanmax(np.abs(x), axis=0, initial=0.0) + np.finfo(dtype).tiny
    # x ** p ** (1 / p) with p = fl(1/3) is off by about 3 (p - 1/3) ln x relative to x:
    # 17 float64 steps at 1e-30, 8 at 1e12; a few steps elsewhere
    steps = 16 + (3 * np.abs(np.log(scale)) if kind == "power" else 0)
    np.testing.assert_array_equal(np.isnan(back), np.isnan(x))
    assert np.all(np.isnan(x) | (np.abs(back - x) <= steps * np.finfo(dtype).eps * scale))
