import numpy as np
import pytest
import xarray as xr

import climlatent as cl
from climlatent.baselines import BilinearBaseline, ClimatologyCorrectedBilinear
from climlatent.draw_addresses import block_rows, row_keys
from climlatent.draws import standard_normal_rows
from climlatent.errors import InputDataError
from climlatent.estimators.downscaler import MEDIAN_NOTE

LAWS = {"tos": "exponential", "rsds": "quadratic"}


@pytest.fixture(scope="module")
def world():
    w = cl.datasets.synthetic_biogeochem(n_years=10, seed=3)
    cut = int(w.fine.time.dt.year[0]) + 7

    def split(ds):
        years = ds.time.dt.year
        return ds.sel(time=years < cut), ds.sel(time=years >= cut)

    return w, split(w.coarse), split(w.fine)


@pytest.fixture(scope="module")
def fitted(world):
    _, (coarse, _), (fine, _) = world
    return cl.ProxyDownscaler(epochs=300).fit(coarse, fine, "chl", proxies=LAWS)


def test_growth_law_parameters_recovered(world, fitted):
    w = world[0]
    params = fitted.proxy_parameters()
    b = float(params["tos_b"])
    ratio, true_ratio = float(params["rsds_d"] / params["rsds_c"]), w.truth["d"] / w.truth["c"]
    print(
        f"b: fitted {b:.4f} true {float(w.truth['b']):.4f}; d/c: fitted {ratio:.3e} "
        f"true {float(true_ratio):.3e}"
    )
    assert b == pytest.approx(float(w.truth["b"]), rel=0.05)
    assert ratio == pytest.approx(float(true_ratio), rel=0.25)
    assert params["tos_b"].attrs["units"] == "degC-1"


def test_beats_both_baselines_on_held_out_years(world, fitted):
    _, (coarse, coarse_test), (fine, fine_test) = world
    dims = ("member", "time")
    truth = fine_test["chl"]
    model = float(cl.metrics.rmse(fitted.downscale(coarse_test)["chl"], truth, dims))
    scores = {"model": model}
    for base in (BilinearBaseline(), ClimatologyCorrectedBilinear("multiplicative")):
        out = base.fit(coarse, fine, "chl").downscale(coarse_test)["chl"]
        scores[type(base).__name__] = float(cl.metrics.rmse(out, truth, dims))
    print({k: f"{v:.3e}" for k, v in scores.items()})
    assert model < scores["ClimatologyCorrectedBilinear"] < scores["BilinearBaseline"]


def test_output_on_fine_grid_with_coords_and_attrs(world, fitted):
    _, (_, coarse_test), (_, fine_test) = world
    out = fitted.downscale(coarse_test)
    chl = out["chl"]
    assert chl.dims == fine_test["chl"].dims
    for dim in chl.dims:
        np.testing.assert_array_equal(chl[dim].values, fine_test[dim].values)
    assert chl.attrs["units"] == fine_test["chl"].attrs["units"]
    np.testing.assert_array_equal(
        np.isnan(chl.isel(member=0, time=0)), np.isnan(fine_test["chl"].isel(member=0, time=0))
    )
    assert "ProxyDownscaler" in out.attrs["history"]
    assert "bounds" in fine_test["lat"].attrs  # the fine grid's, which the model does not keep
    for name, coord in out.coords.items():  # no attribute naming an absent variable
        assert coord.attrs.get("bounds", name) in out.variables, name


def test_save_load_bit_identical(world, fitted, tmp_path):
    _, (_, coarse_test), _ = world
    fitted.save(tmp_path / "d.clm")
    again = cl.load(tmp_path / "d.clm")
    assert (
        again.downscale(coarse_test)["chl"].values.tobytes()
        == fitted.downscale(coarse_test)["chl"].values.tobytes()
    )


def test_kelvin_converted_and_wrong_units_refused(world, fitted):
    _, (_, coarse_test), _ = world
    in_celsius = coarse_test.assign(tos=(coarse_test["tos"] - 273.15).assign_attrs(units="degC"))
    xr.testing.assert_allclose(
        fitted.downscale(in_celsius)["chl"], fitted.downscale(coarse_test)["chl"], rtol=1e-5
    )
    wrong = coarse_test.assign(tos=coarse_test["tos"].assign_attrs(units="W m-2"))
    with pytest.raises(InputDataError, match="'tos'"):
        fitted.downscale(wrong)


@pytest.mark.slow
def test_stochastic_samples(world):
    _, (coarse, coarse_test), (fine, _) = world
    est = cl.ProxyDownscaler(epochs=200, noise=True).fit(coarse, fine, "chl", proxies=LAWS)
    draws = est.downscale(coarse_test.isel(time=slice(0, 6)), n_samples=20, seed=1)["chl"]
    assert draws.dims[0] == "realization" and draws.sizes["realization"] == 20
    log_spread = float(np.log(draws).std("realization").mean())
    print(f"learned log-space spread {log_spread:.3f} (true lognormal noise 0.3)")
    assert log_spread == pytest.approx(0.3, abs=0.05)
    with pytest.raises(ValueError, match="noise=True"):
        cl.ProxyDownscaler(epochs=1).fit(coarse, fine, "chl", proxies=LAWS).downscale(
            coarse_test, n_samples=2
        )


def test_stochastic_samples_are_the_median_times_the_addressed_lognormal_noise(world):
    """Known answer: log(draw / median) / sigma is the standard normal draw of the
    sample's address (its member and date) and cell; lazily in blocks, the same numbers."""
    _, (coarse, coarse_test), (fine, _) = world
    est = cl.ProxyDownscaler(epochs=5, noise=True).fit(coarse, fine, "chl", proxies=LAWS)
    eager = est.downscale(coarse_test, n_samples=2, seed=3)["chl"]
    lazy = est.downscale(coarse_test.chunk(time=4), n_samples=2, seed=3)["chl"]
    assert lazy.chunks is not None
    np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-5)
    median = est.downscale(coarse_test)["chl"]
    # The batch docs called it the mean field: a mean of chl 5 % low at a spread of 0.3.
    assert median.attrs["comment"] == MEDIAN_NOTE and "comment" not in eager.attrs
    valid = np.asarray(est.fine_layout_.mask).ravel()
    sigma = np.exp(est.module_.log_sigma.detach().cpu().numpy()[0])
    samples = coarse_test["tos"].isel(lat=0, lon=0, drop=True).transpose("member", "time")
    addresses = [row for row, _ in block_rows(row_keys(samples), samples.shape, (0, 0))]
    for realization in range(2):
        ratio = eager.isel(realization=realization) / median
        ratio = ratio.transpose("member", "time", ...).values.reshape(len(addresses), -1)
        expected = np.concatenate(  # each row's by its member's label and its date
            [standard_normal_rows(3, realization, row, 1, int(valid.sum())) for row in addresses]
        )
        np.testing.assert_allclose(np.log(ratio[:, valid]) / sigma, expected, atol=1e-4)


def test_self_downscaling_of_temperature(world):
    _, (coarse, coarse_test), (fine, fine_test) = world
    est = cl.ProxyDownscaler(epochs=100).fit(coarse, fine, "tos")
    assert est.mode_ == "additive"
    out = est.downscale(coarse_test)["tos"]
    assert "comment" not in out.attrs  # the conditional mean
    bilinear = BilinearBaseline().fit(coarse, fine, "tos").downscale(coarse_test)["tos"]
    dims = ("member", "time")
    common = bilinear.notnull()  # cells beyond the coarse centres: nearest coarse value
    model = float(cl.metrics.rmse(out.where(common), fine_test["tos"], dims))
    base = float(cl.metrics.rmse(bilinear, fine_test["tos"], dims))
    print(f"tos self-downscaling RMSE: model {model:.4f} K, bilinear {base:.4f} K")
    assert model < base
    assert int(out.isnull().sum()) == int(fine_test["tos"].isnull().sum())  # fills the edges


def test_additive_form_refuses_a_target_varying_below_its_learning_steps(world):
    """chl in kg m-3 (sd 6e-7) came out about 1000 times off; in mg m-3 it trains."""
    _, (coarse, _), (fine, _) = world
    with pytest.raises(InputDataError, match="target 'chl' varies by .* kg m-3 .*mg m-3"):
        cl.ProxyDownscaler(epochs=1, progress=False).fit(coarse, fine, "chl")
    in_mg = {name: ds.assign(chl=(ds["chl"] * 1e6).assign_attrs(units="mg m-3"))
             for name, ds in (("coarse", coarse), ("fine", fine))}  # fmt: skip
    est = cl.ProxyDownscaler(epochs=1, progress=False).fit(in_mg["coarse"], in_mg["fine"], "chl")
    assert est.mode_ == "additive"
    plain = cl.ProxyLatentDownscaler(channels=1, epochs=1, progress=False)
    assert plain.fit(coarse, fine, "chl").mode_ == "additive"  # it learns on its own scale


def test_bilinear_baseline_is_the_extrapolating_bilinear_regridder():
    w = cl.datasets.synthetic_biogeochem(n_years=1, n_fine_lat=16, n_fine_lon=16)
    out = BilinearBaseline().fit(w.coarse, w.fine, "chl").downscale(w.coarse)["chl"]
    regridder = cl.Regridder(w.coarse, w.fine, "bilinear", engine="climlatent", extrapolate=True)
    expected = regridder(w.coarse["chl"], skipna=True)
    np.testing.assert_array_equal(out.values, expected.transpose(*out.dims).values)
    plain = cl.Regridder(w.coarse, w.fine, "bilinear", engine="climlatent")(w.coarse["chl"])
    assert int(plain.isnull().sum()) > int(out.isnull().sum())  # the edges, now filled


def test_bad_inputs(world):
    _, (coarse, _), (fine, _) = world
    with pytest.raises(InputDataError, match="different time axes"):
        cl.ProxyDownscaler(epochs=1).fit(coarse.isel(time=slice(1, None)), fine, "chl", LAWS)
    far = coarse.assign_coords(lon=coarse.lon + 150)
    with pytest.raises(InputDataError, match="do not overlap"):
        cl.ProxyDownscaler(epochs=1).fit(far, fine, "chl", LAWS)
    with pytest.raises(InputDataError, match="proxy variable 'sst' is not in the Dataset"):
        cl.ProxyDownscaler(epochs=1).fit(coarse, fine, "chl", {"sst": "exponential"})
    with pytest.raises(ValueError, match=r"proxies \{'rsds': 'cubic'\}: the law must be one"):
        cl.ProxyDownscaler(epochs=1).fit(coarse, fine, "chl", {**LAWS, "rsds": "cubic"})
    negative = fine.assign(chl=fine["chl"] - float(fine["chl"].max()))
    with pytest.raises(InputDataError, match="values <= 0"):
        cl.ProxyDownscaler(epochs=1).fit(coarse, negative, "chl", LAWS)


def _two_member_world():
    w = cl.datasets.synthetic_biogeochem(n_members=2, n_years=2, n_fine_lat=8, n_fine_lon=12)
    return w.coarse, w.fine


def test_proxies_not_a_mapping_refused_by_name():
    coarse, fine = _two_member_world()
    for proxies in ("tos", ["tos", "rsds"]):  # EOFRegression's proxies=name spelling
        with pytest.raises(InputDataError, match="proxies must map each driver variable"):
            cl.ProxyDownscaler(epochs=1).fit(coarse, fine, "chl", proxies=proxies)
    with pytest.raises(InputDataError, match="target must be one variable name"):
        cl.ProxyDownscaler(epochs=1).fit(coarse, fine, ["chl"], proxies=LAWS)


def test_drivers_with_other_samples_or_grid_refused_by_name():
    coarse, fine = _two_member_world()
    shared = coarse.assign(rsds=coarse["rsds"].isel(member=0, drop=True))
    with pytest.raises(InputDataError, match="proxy variable 'rsds' has sample dims"):
        cl.ProxyDownscaler(epochs=1).fit(shared, fine, "chl", proxies=LAWS)
    own = coarse.assign(rsds=coarse["rsds"].rename(lat="y", lon="x"))
    with pytest.raises(InputDataError, match="proxy variable 'rsds' has horizontal dims"):
        cl.ProxyDownscaler(epochs=1).fit(own, fine, "chl", proxies=LAWS)
    est = cl.ProxyDownscaler(epochs=1, progress=False).fit(coarse, fine, "chl", proxies=LAWS)
    for data in (shared, shared.chunk(time=5)):
        with pytest.raises(InputDataError, match="proxy variable 'rsds' has sample dims"):
            est.downscale(data)
    with pytest.raises(InputDataError, match="proxy variable 'tos' holds object values"):
        est.downscale(coarse.assign(tos=coarse["tos"].astype(object)))


def test_additive_climatology_correction_never_makes_chlorophyll_negative():
    """One additive correction for the year took 3.9 % of the chlorophyll below 0 (down
    to -8.4e-7 kg m-3, the mean is 6.9e-7): set to 0, and counted in the attributes."""
    world = cl.datasets.synthetic_biogeochem(n_years=10)
    train, test = slice(0, 96), slice(96, None)
    bcsd = ClimatologyCorrectedBilinear("additive", group="time")
    bcsd.fit(world.coarse.isel(time=train), world.fine.isel(time=train), "chl")
    chl = bcsd.downscale(world.coarse.isel(time=test))["chl"]
    assert float(chl.min()) == 0.0
    note = chl.attrs["climlatent_clipped"]
    n_clipped = int(note.split(" of ")[0])
    assert 0.02 < n_clipped / int(np.isfinite(chl).sum()) < 0.06
    assert "below the physical bound 0 kg m-3 (down to -8.38e-07)" in note
