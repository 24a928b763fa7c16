import numpy as np
import pandas as pd
import pytest
import xarray as xr
from provenance import written_and_read
from scipy import stats

from climlatent.errors import InputDataError
from climlatent.metrics.extremes import GEV_PARAMETERS, annual_maxima, fit_gev, return_level

# per-cell (loc, scale, shape_xi): bounded tail, Gumbel, heavy tail
TRUE_PARAMS = [(10.0, 2.0, -0.2), (0.0, 1.0, 0.0), (5.0, 0.5, 0.15)]


def daily_series(calendar: str, n_years: int = 4, dim: str = "time", seed: int = 0):
    time = xr.date_range("2001-01-01", periods=n_years * 365, calendar=calendar, use_cftime=True)
    values = np.random.default_rng(seed).gamma(2.0, size=time.size)
    values[40:60] = np.nan
    return xr.DataArray(
        values, dims=dim, coords={dim: time}, name="pr", attrs={"units": "mm day-1"}
    )


def synthetic_maxima(n_years: int = 200, seed: int = 0) -> xr.DataArray:
    """Maxima of known GEVs on a (cell, year) grid, with an all-NaN last cell."""
    rng = np.random.default_rng(seed)
    draws = [
        stats.genextreme(c=-xi, loc=mu, scale=s).rvs(n_years, random_state=rng)
        for mu, s, xi in TRUE_PARAMS
    ]
    values = np.vstack([*draws, np.full(n_years, np.nan)])
    return xr.DataArray(
        values,
        dims=("cell", "year"),
        coords={"cell": np.arange(len(values)), "year": 1801 + np.arange(n_years)},
        name="pr",
        attrs={"units": "mm day-1"},
    )


@pytest.fixture(scope="module")
def maxima() -> xr.DataArray:
    return synthetic_maxima()


@pytest.fixture(scope="module")
def params(maxima) -> xr.Dataset:
    return fit_gev(maxima)


@pytest.mark.parametrize("calendar", ["noleap", "360_day"])
def test_annual_maxima_match_a_pandas_groupby(calendar):
    da = daily_series(calendar)
    years = [date.year for date in da.time.values]
    expected = pd.Series(da.values).groupby(years).max()
    if calendar == "360_day":  # 4 * 365 days: four years and 20 days of a fifth, left out
        expected.iloc[-1] = np.nan
    result = annual_maxima(da, max_missing=20 / 360)  # the first year misses 20 days
    assert result.dims == ("year",)
    np.testing.assert_array_equal(result.year, expected.index)
    np.testing.assert_allclose(result.values, expected.values)
    assert result.attrs == {"units": "mm day-1", "cell_methods": "time: maximum"}
    # by default no day may be missing: the first year's maximum (of 345 days) is NaN
    strict = annual_maxima(da)
    assert np.isnan(strict[0]) and np.array_equal(strict[1:], result[1:], equal_nan=True)
    assert np.isnan(annual_maxima(da, max_missing=19 / 365)[0])


def test_annual_maxima_find_a_cf_time_axis_and_keep_other_dims():
    da = daily_series("noleap", dim="t")
    da["t"].attrs["axis"] = "T"
    field = da.expand_dims(member=[1, 2]).assign_attrs(cell_methods="area: mean")
    result = annual_maxima(field)
    assert result.dims == ("member", "year") and result.sizes == {"member": 2, "year": 4}
    assert result.attrs["cell_methods"] == "area: mean t: maximum"


def test_annual_maxima_without_time_names_the_variable():
    with pytest.raises(InputDataError, match="'pr' has no time dimension"):
        annual_maxima(xr.DataArray(np.ones(3), dims="x", name="pr"))


def test_fit_gev_recovers_known_parameters(params):
    for cell, (mu, sigma, xi) in enumerate(TRUE_PARAMS):
        fitted = params.sel(cell=cell)
        np.testing.assert_allclose(float(fitted["loc"]), mu, atol=0.2 * sigma)
        np.testing.assert_allclose(float(fitted["scale"]), sigma, rtol=0.15)
        np.testing.assert_allclose(float(fitted["shape_xi"]), xi, atol=0.12)
    assert params["loc"].units == "mm day-1" and params["shape_xi"].units == "1"


def test_fit_gev_agrees_with_scipy_called_directly(maxima, params):
    for cell in range(len(TRUE_PARAMS)):
        c, loc, scale = stats.genextreme.fit(maxima.isel(cell=cell).values)
        fitted = params.isel(cell=cell)
        expected = [loc, scale, -c]  # scipy's c is -shape_xi
        np.testing.assert_allclose([float(fitted[p]) for p in GEV_PARAMETERS], expected, atol=0.01)


def test_mle_is_the_same_in_any_units_and_at_the_likelihood_maximum(maxima):
    """Metamorphic: the GEV MLE of maxima in kg m-2 s-1 is that of the same maxima in
    mm day-1, over 86400. scipy's optimiser stops at absolute tolerances (1e-4): on
    maxima of 1e-4 kg m-2 s-1 it stopped near its start, and return levels came out
    up to 5 mm day-1 (of 90) off the mm day-1 fit on 200 cells, with a lower
    likelihood. Both now reach the maximum: no point nearby has a higher one."""
    mm = maxima[:3]
    si = (mm / 86400).assign_attrs(units="kg m-2 s-1")
    in_mm, in_si = fit_gev(mm), fit_gev(si)
    for name, factor in (("loc", 86400), ("scale", 86400), ("shape_xi", 1)):
        np.testing.assert_allclose(in_si[name] * factor, in_mm[name], rtol=1e-6, atol=1e-6)
    for cell in range(3):
        x = mm.isel(cell=cell).values
        best = [-float(in_si["shape_xi"][cell])]
        best += [86400 * float(in_si[name][cell]) for name in ("loc", "scale")]
        scales = np.array([1, best[2], best[2]])  # shape; location and scale by the scale
        steps = np.random.default_rng(cell).normal(size=(200, 3)) * 1e-3 * scales
        neighbours = [stats.genextreme.nnlf(best + step, x) for step in steps]
        assert stats.genextreme.nnlf(best, x) <= min(neighbours)


def test_lmoments_are_close_to_the_mle(maxima, params):
    lmoments = fit_gev(maxima, method="lmoments")
    for name in GEV_PARAMETERS:
        np.testing.assert_allclose(lmoments[name][:3], params[name][:3], atol=0.1)


def test_nan_cells_stay_nan_and_gaps_are_skipped(maxima, params):
    assert all(np.isnan(float(params[p].isel(cell=-1))) for p in GEV_PARAMETERS)
    gappy = fit_gev(maxima.where(maxima.year > 1805))  # five missing years
    np.testing.assert_allclose(gappy.shape_xi[:3], params.shape_xi[:3], atol=0.05)
    short = fit_gev(maxima.isel(year=slice(0, 5)), min_years=10)
    assert short["loc"].isnull().all()


def test_dask_backed_maxima_give_the_same_fit(maxima, params):
    lazy = fit_gev(maxima.chunk({"cell": 2, "year": 50}))
    assert lazy["loc"].chunks is not None
    xr.testing.assert_allclose(lazy.compute(), params)


def test_return_levels_equal_scipy_isf(params):
    levels = return_level(params, [10, 20, 100])
    assert levels.dims == ("cell", "return_period") and levels.units == "mm day-1"
    for cell in range(len(TRUE_PARAMS)):
        p = params.isel(cell=cell)
        gev = stats.genextreme(c=-float(p.shape_xi), loc=float(p["loc"]), scale=float(p.scale))
        np.testing.assert_allclose(levels.isel(cell=cell), gev.isf(1 / np.array([10, 20, 100])))
    twenty = return_level(params)
    assert twenty.dims == ("cell",) and float(twenty.return_period) == 20
    xr.testing.assert_allclose(twenty, levels.sel(return_period=20))
    assert np.isnan(twenty.isel(cell=-1))


def test_return_level_checks_its_inputs(params):
    with pytest.raises(InputDataError, match="shape_xi"):
        return_level(params.drop_vars("shape_xi"))
    with pytest.raises(ValueError, match="exceed 1 year"):
        return_level(params, 1)
    with pytest.raises(ValueError, match="exceed 1 year"):  # gave a NaN level
        return_level(params, [20, np.nan])


def test_annual_maxima_leave_out_incomplete_years():
    time = xr.date_range("2000-12-01", "2020-01-31", calendar="noleap", use_cftime=True)
    values = np.random.default_rng(0).exponential(size=(time.size, 50))
    da = xr.DataArray(values, dims=("time", "cell"), coords={"time": time}, name="pr")
    maxima = annual_maxima(da)
    assert maxima.isel(year=[0, -1]).isnull().all()  # December 2000, January 2020 only
    assert maxima.isel(year=slice(1, -1)).notnull().all()
    level = float(return_level(fit_gev(maxima, method="lmoments"), 20).mean())
    # Gumbel(loc=log 365, scale=1): the 20-year level is 8.87; with the two one-month
    # "years" it came out 8.71 and the shape -0.21 instead of 0
    assert level == pytest.approx(np.log(365) - np.log(-np.log(1 - 1 / 20)), abs=0.08)
    kept = annual_maxima(da, partial_years=True)
    assert kept.notnull().all() and kept.sizes["year"] == 21


@pytest.mark.parametrize(
    ("start", "periods", "freq", "calendar"),
    [
        ("2001-01-01", 4 * 365, "D", "noleap"),
        ("2001-01-01", 36, "MS", "360_day"),
        ("2001-01-01", 3 * 365 * 4, "6h", "noleap"),
    ],
)
def test_annual_maxima_of_whole_years_are_all_kept(start, periods, freq, calendar):
    time = xr.date_range(start, periods=periods, freq=freq, calendar=calendar, use_cftime=True)
    da = xr.DataArray(np.arange(time.size, dtype=float), dims="time", coords={"time": time})
    assert annual_maxima(da).notnull().all()


@pytest.mark.parametrize("calendar", ["standard", "noleap", "360_day"])
@pytest.mark.parametrize("freq", ["QS-JAN", "YS", "YE"])
def test_annual_maxima_of_quarterly_and_annual_data_are_all_kept(freq, calendar):
    # steps of calendar quarters (90 to 92 days) or years (365 or 366) are one step each:
    # measured against a median step in days, every year of quarters was left out, and
    # every leap year of annual data (2000, 2004, 2008 of 12)
    time = xr.date_range("1999-01-01", "2011-01-01", freq=freq, calendar=calendar,
                         inclusive="left", use_cftime=True)  # fmt: skip
    da = xr.DataArray(np.arange(time.size, dtype=float), dims="time", coords={"time": time})
    maxima = annual_maxima(da)
    expected = da.groupby(da.time.dt.year).max().values  # pandas' / xarray's year blocks
    np.testing.assert_array_equal(maxima.values, expected)
    assert maxima.year.values.tolist() == list(range(1999, 2011))
    if freq == "QS-JAN":  # a year without its first quarter is still left out
        gappy = annual_maxima(da.drop_isel(time=4 * 3))
        assert gappy.isnull().values.tolist() == [y == 2002 for y in range(1999, 2011)]


@pytest.mark.parametrize("calendar", ["standard", "noleap", "360_day"])
@pytest.mark.parametrize(("freq", "per_year"), [("D", 365), ("7D", 52), ("MS", 12), ("QS-JAN", 4)])
def test_annual_maxima_leave_out_a_year_with_a_step_missing_within_it(freq, per_year, calendar):
    """The steps of one mid-year date, the largest of 2002, left out of the axis: 2002
    came out as the maximum of the rest (only its ends were tested), now NaN; the other
    years are numpy's maxima by hand, and every year of the whole axis is kept."""
    time = xr.date_range("2001-01-01", "2004-01-01", freq=freq, calendar=calendar,
                         inclusive="left", use_cftime=True)  # fmt: skip
    values = np.random.default_rng(2).exponential(size=time.size)
    years = np.array([date.year for date in time])
    middle = np.flatnonzero(years == 2002)[per_year // 2]
    values[middle] = 50.0  # the year's maximum, in the missing step
    da = xr.DataArray(values, dims="time", coords={"time": time})
    by_hand = [values[years == year].max() for year in (2001, 2002, 2003)]
    np.testing.assert_array_equal(annual_maxima(da).values, by_hand)
    gappy = annual_maxima(da.drop_isel(time=middle))
    np.testing.assert_array_equal(gappy.values, [by_hand[0], np.nan, by_hand[2]])
    kept = annual_maxima(da.drop_isel(time=middle), partial_years=True)
    assert float(kept.sel(year=2002)) == np.sort(values[years == 2002])[-2]


def test_annual_maxima_of_mid_month_stamps_are_all_kept():
    time = xr.date_range("2001-01-01", periods=36, freq="MS", calendar="360_day", use_cftime=True)
    mid = [date.replace(day=16) for date in time]
    da = xr.DataArray(np.arange(36.0), dims="time", coords={"time": mid})
    assert annual_maxima(da).notnull().all()


def test_annual_maxima_of_numpy_dates():
    time = xr.date_range("2000-01-01", "2003-12-31", freq="D")
    da = xr.DataArray(np.arange(time.size, dtype=float), dims="time", coords={"time": time})
    assert annual_maxima(da).notnull().all()
    assert annual_maxima(da.isel(time=slice(40, None))).notnull().values.tolist() == [
        False,
        True,
        True,
        True,
    ]


def test_annual_maxima_of_an_empty_selection_says_so():
    da = daily_series("noleap").isel(time=slice(0, 0))
    with pytest.raises(InputDataError, match="has no steps"):
        annual_maxima(da)


def test_float32_maxima_are_fitted_as_float64():
    # float32 sample L-moments of maxima near 103000 Pa: the shape 2e-4 (relative) off
    x = stats.genextreme(c=0.1, loc=103000, scale=300).rvs(150, random_state=1)
    da = xr.DataArray(x.astype(np.float32), dims="year")
    for method in ("lmoments", "mle"):
        got, want = fit_gev(da, method=method), fit_gev(da.astype(float), method=method)
        for name in ("shape_xi", *GEV_PARAMETERS):
            np.testing.assert_allclose(float(got[name]), float(want[name]), rtol=1e-9)


def test_gev_parameters_and_return_levels_are_no_field_and_write_as_computed(tmp_path):
    """The GEV parameters and return levels took the maxima's attributes: standard_name
    'precipitation_flux', cell_methods 'time: maximum' and valid_range, by which a CF
    reader masked every scale and shape (and the return levels beyond the range)."""
    maxima = synthetic_maxima(n_years=60).isel(cell=slice(0, 3))
    maxima.attrs.update(standard_name="precipitation_flux", cell_methods="time: maximum")
    maxima.attrs["valid_range"] = np.float32([5.0, 18.0])
    params = fit_gev(maxima, method="lmoments")
    level = return_level(params, [10, 1000])
    for name, da in [*params.items(), ("return_level", level)]:
        assert set(da.attrs) == {"long_name", "units"}, name
        values, attrs = written_and_read(da, tmp_path)
        np.testing.assert_allclose(values, da.values, rtol=1e-6, err_msg=name)
        assert "standard_name" not in attrs and "valid_range" not in attrs
    loc, scale, xi = (float(params[name][0]) for name in GEV_PARAMETERS)
    expected = stats.genextreme.isf(1e-3, -xi, loc, scale)
    np.testing.assert_allclose(float(level[0, 1]), expected, rtol=1e-12)
