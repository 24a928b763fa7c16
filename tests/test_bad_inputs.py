"""The bad-input table: each case names the culprit and leaves no output file."""

import re

import numpy as np
import pytest
import xarray as xr

import climlatent as cl
from climlatent.deep_prior import map_estimate, posterior
from climlatent.errors import InputDataError
from climlatent.io import to_netcdf
from climlatent.training import TrainingConfig


def _drop_lat(ds):
    return ds.drop_vars(["lat", "lat_bnds"]).rename_dims(lat="y")


def _non_monotonic(ds):
    return ds.isel(lon=[1, 0, *range(2, ds.sizes["lon"])])


def _wrong_units(ds):
    return ds.assign(psl=ds["psl"].assign_attrs(units="K"))


def _missing_units(ds):
    psl = ds["psl"].copy()
    psl.attrs.pop("units")
    return ds.assign(psl=psl)


def _nan_proxy(ds):
    return ds.assign(psl=ds["psl"].where(ds.time != ds.time[3]))


def _other_grid(ds):
    return ds.assign_coords(lon=ds.lon + 0.5)


def _bad_calendar(ds):
    return ds.assign_coords(time=ds.time.copy(data=np.arange(ds.sizes["time"], dtype=float)))


def _empty_time(ds):
    return ds.sel(time=slice("2500-01-01", "2501-01-01"))


def _all_nan_target(ds):
    return ds.assign(pr=ds["pr"] * np.nan)


def _packed(name):
    """``name`` as a file stores it packed (int16, scale_factor/add_offset), not unpacked."""

    def pack(ds):
        field = ds[name]
        offset, scale = float(field.mean()), float(field.max() - field.min()) / 60000
        packed = ((field - offset) / scale).round().astype("int16")
        return ds.assign({name: packed.assign_attrs(scale_factor=scale, add_offset=offset)})

    return pack


# (label, how to break the data, where it is caught, message pattern)
CASES = [
    ("missing latitude", _drop_lat, "emulate", "'psl' has no latitude"),
    ("non-monotonic lon", _non_monotonic, "emulate", "'lon' of variable 'psl' is not strictly"),
    ("wrong units", _wrong_units, "emulate", "'psl' has units 'K'"),
    ("missing units", _missing_units, "emulate", "'psl' has no 'units'"),
    ("NaNs in proxy", _nan_proxy, "emulate", "'psl' has .* non-finite"),
    ("mismatched grid", _other_grid, "emulate", "'psl' is on a different grid.*'lon'"),
    ("undecoded calendar", _bad_calendar, "emulate", "time coordinate 'time' of variable 'psl'"),
    ("empty time selection", _empty_time, "emulate", "'psl' is empty along dimension 'time'"),
    (
        "all-NaN target",
        _all_nan_target,
        "fit",
        "target variable 'pr' has no finite value \\(all NaN\\)",
    ),
    ("NaNs in proxy at fit", _nan_proxy, "fit", "proxy variable 'psl' has 192 NaN"),
    ("missing latitude at fit", _drop_lat, "fit", "'pr' has no latitude"),
    ("packed proxy", _packed("psl"), "emulate", "proxy variable 'psl' is packed \\(scale_factor"),
    ("packed target at fit", _packed("pr"), "fit", "target variable 'pr' is packed"),
]


@pytest.mark.parametrize(("label", "breaker", "stage", "pattern"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("lazy", [False, True], ids=["numpy", "dask"])
def test_bad_input_named_and_no_output(
    label, breaker, stage, pattern, lazy, fitted_eof, split, tmp_path
):
    train, test = split
    out = tmp_path / "out.nc"
    source = train if stage == "fit" else test
    bad = breaker(source.chunk(time=200) if lazy else source)
    with pytest.raises(InputDataError, match=pattern):
        if stage == "fit":
            est = cl.EOFRegression(n_proxy_eofs=3, n_target_eofs=3).fit(bad, "pr", "psl")
            to_netcdf(est.emulate(test), out)
        else:
            to_netcdf(fitted_eof.emulate(bad), out)
    assert list(tmp_path.iterdir()) == []


def test_target_not_in_dataset(split):
    with pytest.raises(InputDataError, match="target variable 'precip' is not in the Dataset"):
        cl.EOFRegression().fit(split[0], "precip", "psl")


def test_proxy_missing_at_emulate(fitted_eof, split):
    with pytest.raises(InputDataError, match="proxy variable 'psl' is not in the Dataset"):
        fitted_eof.emulate(split[1].drop_vars("psl"))


def test_target_and_proxy_on_different_time_axes(split):
    train, _ = split
    psl = train["psl"].isel(time=slice(1, None)).rename(time="time_psl")
    bad = xr.Dataset({"pr": train["pr"], "psl": psl})
    with pytest.raises(InputDataError, match="different time axes"):
        cl.EOFRegression().fit(bad, "pr", "psl")


def test_unknown_cftime_calendar_refused(fitted_eof, split):
    _, test = split
    bad = test.convert_calendar("360_day", align_on="year")
    with pytest.raises(InputDataError, match="'360_day' calendar.*fitted on 'noleap'"):
        fitted_eof.emulate(bad)


def test_the_calendar_advice_works_as_written(fitted_eof, split):
    """It said "convert it first (xarray's convert_calendar)": convert_calendar to or
    from 360_day raises without align_on."""
    from climlatent.checks import check_calendar

    def advice(refused: pytest.ExceptionInfo) -> str:
        return re.search(r"da\.convert_calendar\(.*\)", str(refused.value)).group()

    da = split[1].convert_calendar("360_day", align_on="year")
    with pytest.raises(InputDataError) as refused:
        fitted_eof.emulate(da)  # fitted on noleap
    converted = eval(advice(refused), {"da": da})
    assert converted.time.dt.calendar == "noleap"
    assert fitted_eof.emulate(converted)["pr"].time.dt.calendar == "noleap"
    da = split[1]["psl"]
    with pytest.raises(InputDataError) as refused:
        check_calendar(da, "proxy", "noleap", "360_day")
    assert eval(advice(refused), {"da": da}).time.dt.calendar == "360_day"


def test_partial_nan_target_named(split):
    train, _ = split
    land = np.isfinite(train["pr"].isel(member=0, time=0))
    cell = {"lat": int(land.lat.size - 1), "lon": int(np.flatnonzero(land.values[-1])[0])}
    pr = train["pr"].copy()
    pr[dict(member=0, time=5, **cell)] = np.nan
    with pytest.raises(InputDataError, match="'pr' has 1 non-finite"):
        cl.EOFRegression().fit(train.assign(pr=pr), "pr", "psl")


@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize("call", ["encode", "reconstruct"])
def test_a_target_to_encode_with_a_gap_in_a_used_cell_is_refused(fitted_eof, split, call, value):
    """A NaN there turned its sample's reconstruction to NaN; an inf, to inf latents."""
    _, test = split
    used = np.isfinite(test["pr"].isel(member=0, time=0)).values
    row, column = np.argwhere(used)[0]
    pr = test["pr"].copy()
    pr[dict(member=0, time=3, lat=int(row), lon=int(column))] = value
    with pytest.raises(InputDataError, match="'pr' has 1 non-finite value"):
        getattr(fitted_eof, call)(test.assign(pr=pr))


def test_not_a_dataset(split):
    with pytest.raises(TypeError, match="xarray.Dataset"):
        cl.EOFRegression().fit(split[0]["pr"], "pr", "psl")


def test_grid_dims_may_be_transposed(fitted_eof, split):
    _, test = split
    swapped = test.transpose("member", "time", "lon", "lat", ...)
    xr.testing.assert_allclose(fitted_eof.emulate(swapped)["pr"], fitted_eof.emulate(test)["pr"])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: cl.EOFRegression(ridge=float("nan")), "ridge=nan is not a finite float"),
        (lambda: cl.EOFRegression(n_proxy_eofs=2.5), "n_proxy_eofs=2.5 is not an int"),
        (lambda: cl.EOFRegression(n_target_eofs=True), "n_target_eofs=True is not an int"),
        (lambda: cl.LLAAE(alpha=float("inf")), "alpha=inf is not a finite float"),
        (lambda: cl.LLAAE(epochs=0), "epochs must be >= 1"),
        (lambda: cl.LLAAE(lr=-1.0), "lr must be > 0"),
        (lambda: cl.VAE(batch_size=0), "batch_size must be >= 1"),
        (lambda: cl.VED(latent_dim=3.0), "latent_dim=3.0 is not an int"),
        (lambda: cl.ProxyDownscaler(range_tolerance=0.0), "range_tolerance=0.0 must be > 0"),
        (lambda: cl.VAEDLM(device=0), "device=0 is not a str"),
        # sizes, counts and loss weights: an IndexError or a torch RuntimeError traceback,
        # or a negative KL weight trained on
        (lambda: cl.LLAAE(filters=()), "filters must hold at least one value"),
        (lambda: cl.LLAAE(filters=(4, -1)), "filters=(4, -1) must be at least 1 each"),
        (lambda: cl.ProxyLatentDownscaler(hidden=0), "hidden=0 must be at least 1"),
        (lambda: cl.ProxyLatentDownscaler(beta=-1.0), "beta=-1.0 must be at least 0"),
        (lambda: cl.VED(residual_blocks=-1), "residual_blocks=-1 must be at least 0"),
        # a ZeroDivisionError inside StepLR; a zero or negative rate (gradient ascent)
        (lambda: TrainingConfig(lr_decay=0.5, lr_decay_steps=0), "lr_decay_steps >= 1"),
        (lambda: TrainingConfig(lr_decay=-1.0, lr_decay_steps=10), "lr_decay in (0, 1]"),
        (lambda: TrainingConfig(lr_decay=0.0, lr_decay_steps=10), "lr_decay in (0, 1]"),
        # CCA was not checked: an inf ridge gave all-NaN emulations, a third entry was
        # dropped, a NaN ridge failed as "SVD did not converge"
        (lambda: cl.CCARegression(regularisation=np.inf), "regularisation=inf is not a finite"),
        (
            lambda: cl.CCARegression(regularisation=(0.1, 0.2, 0.3)),
            "regularisation=(0.1, 0.2, 0.3) is not a finite float or a pair of finite floats",
        ),
        (lambda: cl.CCARegression(regularisation=(0.1, -1.0)), "must be at least 0 each"),
        (lambda: cl.CCARegression(n_components=0), "n_components=0 must be at least 1"),
        (lambda: cl.CCARegression(n_components=2.0), "n_components=2.0 is not an int"),
        # "math domain error" at fit; a learning-rate "drop" that raised it, or one at a
        # negative epoch; a beta schedule refused only once fit began
        (lambda: cl.AuxVAE(tau=0.0), "tau=0.0 must be > 0"),
        (lambda: cl.VAE(lr_factor=2.5), "BetaSchedule lr_factor must be in (0, 1]"),
        (lambda: cl.VAE(lr_drop_epoch=-1), "BetaSchedule lr_drop_epoch must be >= 0"),
        (lambda: cl.VAE(beta_0=0.0), "BetaSchedule needs 0 < beta_0 <= beta_final"),
        (lambda: TrainingConfig(plateau_lr_factor=2.0), "plateau_lr_factor in (0, 1]"),
        # a name outside the documented set: refused by fit, or (one channel) never
        (lambda: cl.ProxyLatentDownscaler(channels=1, latent="weibull"), "latent must be one"),
        (lambda: cl.ProxyLatentDownscaler(latent="weibull"), "latent must be one of"),
        (lambda: cl.VAE(prior="laplace"), "prior must be one of ('standard', 'hierarchical')"),
        (lambda: cl.EOFRegression(target_transform="log"), "target_transform must be one of"),
        (lambda: cl.LLAAE(proxy_transform="anomalies"), "proxy_transform must be one of"),
    ],
)
def test_parameters_are_checked_at_construction(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


THETA = np.random.default_rng(0).normal(size=(40, 2))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        # checked before the model is used (here: none); a negative sd was squared away,
        # 0 or NaN gave a NaN estimate, steps=0 or -3 the prior mean, all silently
        (lambda: map_estimate(None, None, noise_std=-0.01), "noise_std must be > 0, got -0.01"),
        (lambda: map_estimate(None, None, noise_std=0.0), "noise_std must be > 0, got 0.0"),
        (lambda: map_estimate(None, None, noise_std=np.nan), "noise_std must be a finite number"),
        (lambda: map_estimate(None, None, 0.1, steps=0), "steps must be an integer >= 1, got 0"),
        (lambda: map_estimate(None, None, 0.1, seed=-1), "seed must be an integer >= 0, got -1"),
        (lambda: posterior(None, None, 0.1, num_samples=0), "num_samples must be an integer >= 1"),
        (lambda: posterior(None, None, 0.1, warmup=-1), "warmup must be an integer >= 0, got -1"),
        (lambda: posterior(None, None, 0.1, chains=0), "chains must be an integer >= 1, got 0"),
        (lambda: posterior(None, None, 0.1, credibility=1.5), "credibility must be in (0, 1)"),
        (lambda: posterior(None, None, 0.1, credibility=0), "credibility must be in (0, 1), got 0"),
        # 0.99 of 40 samples left none to train on: a scikit-learn error
        (lambda: cl.metrics.dci(THETA, THETA, test_size=0.99), "leave 2 of the 40 samples"),
    ],
)
def test_options_of_inference_and_metrics_are_checked_before_any_work(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_more_eofs_than_the_data_allow_is_refused_by_name():
    ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1)
    with pytest.raises(InputDataError, match=r"n_proxy_eofs=5000 is more than 365 samples"):
        cl.EOFRegression(n_proxy_eofs=5000).fit(ds, "pr", "psl")


@pytest.mark.parametrize("estimator", ["EOFRegression", "ProxyDownscaler"])
def test_members_pair_by_label_not_by_position(estimator):
    # Fine files listed r2, r1 beside coarse r1, r2 trained r1's drivers on r2's target
    # (outputs 14 % off) without a word: only the time axes were compared.
    world = cl.datasets.synthetic_biogeochem(n_members=2, n_years=1, n_fine_lat=8, n_fine_lon=8)
    fine = world.fine.isel(member=[1, 0])
    model = getattr(cl, estimator)(**({"epochs": 1} if estimator == "ProxyDownscaler" else {}))
    with pytest.raises(InputDataError, match=r"members \['r2i1p1f1', 'r1i1p1f1'\].*pair by label"):
        model.fit(world.coarse, fine, "chl")


@pytest.mark.parametrize("estimator", ["EOFRegression", "ProxyDownscaler"])
def test_scenarios_pair_by_label_not_by_position(estimator):
    """Drivers stored high, low beside a target stored low, high were trained on the
    other scenario's target, all 48 rows, without a word: only time and members were
    compared. Put in one order, the fit is that of data stored in one order."""
    world = cl.datasets.synthetic_biogeochem(n_years=1, n_fine_lat=8, n_fine_lon=8)

    def scenarios(ds):
        warm = ds.assign(tos=ds["tos"] + 3.0, chl=ds["chl"] * 2.0)
        return xr.concat([ds.isel(member=0), warm.isel(member=0)], "scenario").assign_coords(
            scenario=["low", "high"]
        )

    coarse, fine = scenarios(world.coarse), scenarios(world.fine)
    options = {"ProxyDownscaler": {"epochs": 1, "progress": False}}.get(
        estimator, {"n_proxy_eofs": 3, "n_target_eofs": 3}
    )
    model = getattr(cl, estimator)(**options)
    reversed_ = coarse.isel(scenario=[1, 0])
    labels = r"'scenario' labels \['low', 'high'\] and proxy 'chl' \['high', 'low'\]"
    with pytest.raises(InputDataError, match=f"{labels}: samples pair by label"):
        model.fit(reversed_, fine, "chl")
    expected = getattr(cl, estimator)(**options).fit(coarse, fine, "chl").downscale(coarse)
    realigned = model.fit(reversed_.sel(scenario=["low", "high"]), fine, "chl").downscale(coarse)
    np.testing.assert_array_equal(realigned["chl"].values, expected["chl"].values)


def test_a_sub_daily_offset_of_the_time_axes_is_named():
    """Daily means stamped 00:00 (CMIP) against 12:00 (ERA5) were refused as "10 vs
    10 steps, or different dates": the dates and how many differ are named."""
    days = xr.date_range("2000-02-25", periods=10, calendar="noleap", use_cftime=True)
    fine = xr.Dataset(
        {"pr": (("time", "lat", "lon"), np.ones((10, 2, 2)), {"units": "kg m-2 s-1"})},
        coords={"time": days, "lat": [0.0, 1.0], "lon": [0.0, 1.0]},
    )
    coarse = fine.rename(pr="psl").assign(psl=lambda ds: ds["psl"].assign_attrs(units="Pa"))
    at_noon = coarse.assign_coords(time=days.shift(12, "h"))
    offset = r"10 of 10 steps at other dates, the first 2000-02-25 00:00:00 vs 2000-02-25 12:00:00"
    with pytest.raises(InputDataError, match=f"different time axes \\({offset}\\)"):
        cl.EOFRegression().fit(at_noon, fine, "pr", "psl")
    longer = xr.date_range("2000-02-25", periods=11, calendar="noleap", use_cftime=True)
    extents = r"10 steps, 2000-02-25 00:00:00 to 2000-03-06 00:00:00, vs 11, .* to 2000-03-07 "
    with pytest.raises(InputDataError, match=extents):
        cl.EOFRegression().fit(coarse.reindex(time=longer, fill_value=1.0), fine, "pr", "psl")


def test_the_advice_on_time_axes_that_differ_pairs_the_shared_dates_or_says_there_are_none():
    """ "align them first": xarray.align of axes that share no date (00:00 against 12:00)
    left an empty record, refused again; where they share some, it pairs those."""
    days = xr.date_range("2000-01-01", periods=40, calendar="noleap", use_cftime=True)
    rng = np.random.default_rng(0)
    psl = rng.normal(1e5, 500.0, (40, 3, 3))
    coarse = xr.Dataset(
        {"psl": (("time", "lat", "lon"), psl, {"units": "Pa"})},
        coords={"time": days, "lat": [0.0, 1.0, 2.0], "lon": [0.0, 1.0, 2.0]},
    )
    fine = coarse.rename(psl="pr").assign(pr=lambda ds: (ds["pr"] * 1e-9).assign_attrs(units="1"))
    with pytest.raises(InputDataError, match="they share no date: .* 00:00 and at 12:00"):
        cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=2).fit(
            coarse.assign_coords(time=days.shift(12, "h")), fine, "pr", "psl"
        )
    later = coarse.isel(time=slice(10, None))
    with pytest.raises(InputDataError, match=r"select the 30 date\(s\) they share first"):
        cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=2).fit(later, fine, "pr", "psl")
    model = cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=2).fit(
        *xr.align(later, fine), "pr", "psl"
    )
    expected = cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=2).fit(
        later, fine.isel(time=slice(10, None)), "pr", "psl"
    )
    np.testing.assert_array_equal(model.emulate(later)["pr"], expected.emulate(later)["pr"])


@pytest.mark.parametrize(
    ("dtype", "shown"), [(object, "object"), ("datetime64[s]", "datetime64"), (complex, "complex")]
)
def test_an_image_estimator_refuses_a_field_of_other_things_than_numbers(dtype, shown):
    """VED (as VAE, AuxVAE, VAEDLM) crashed deep in numpy ("ufunc 'isfinite' not
    supported for the input types") where EOFRegression named the variable."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(8, 4, 4))
    ds = xr.Dataset({"k": (("sample", "y", "x"), a, {"units": "1"}),
                     "p": (("sample", "y", "x"), a.astype(dtype), {"units": "m"})})  # fmt: skip
    with pytest.raises(InputDataError, match=f"variable 'p' holds {shown}.*not numbers"):
        cl.VED(latent_dim=2, epochs=1, progress=False).fit(ds, target="p", proxy="k")


def test_a_packed_field_decoded_gives_the_unpacked_fit(split):
    """The refusal's remedy: xarray.decode_cf of the packed proxy is accepted, and its
    emulation is that of the unpacked values (float64 reference) to their precision."""
    train, test = split
    packed = _packed("psl")(test)
    assert packed["psl"].dtype == np.int16
    attrs = packed["psl"].attrs
    unpacked = packed["psl"].values * attrs["scale_factor"] + attrs["add_offset"]
    reference = test.assign(psl=test["psl"].copy(data=unpacked))
    est = cl.EOFRegression(n_proxy_eofs=3, n_target_eofs=3).fit(train, "pr", "psl")
    decoded = xr.decode_cf(packed)
    np.testing.assert_allclose(
        est.emulate(decoded)["pr"], est.emulate(reference)["pr"], rtol=1e-5, atol=1e-6
    )
