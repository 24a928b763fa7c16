"""ProxyLatentDownscaler: growth laws recovered, calibrated realisations, round trips, refusals."""

import hashlib
import json

import numpy as np
import pytest
import torch
import xarray as xr
from provenance import assert_identical_untimed
from safetensors.numpy import load_file, save_file

import climlatent as cl
from climlatent.batching import to_matrix
from climlatent.errors import InputDataError, NotFittedError
from climlatent.grid_order import GridOrder
from climlatent.metrics import rank_histogram, spread_skill_ratio

# minutes of training on two cores: out of the quick subset (doctests and
# test_vocabulary, test_cli_batch cover ProxyLatentDownscaler there)
pytestmark = pytest.mark.slow

LAWS = {"tos": "exponential", "rsds": "quadratic"}
N_TRAIN = 108  # months: nine years train, three are held out


@pytest.fixture(scope="module")
def world():
    return cl.datasets.synthetic_biogeochem(
        n_years=12, n_fine_lat=20, n_fine_lon=30, factor=5, seed=1
    )


def _train(ds):
    return ds.isel(time=slice(None, N_TRAIN))


def _test(ds):
    return ds.isel(time=slice(N_TRAIN, None))


@pytest.fixture(scope="module")
def fitted(world):
    est = cl.ProxyLatentDownscaler(channels=2, hidden=8, epochs=100, lr=3e-3, progress=False)
    return est.fit(_train(world.coarse), _train(world.fine), "chl", proxies=LAWS)


def test_encoder_growth_channel_is_the_conservative_coarse_mean(world, fitted):
    """``A`` applied to fine sea surface temperature gives the generator's block means."""

    def matrix(da, layout):
        return to_matrix(GridOrder.of(da).canonical(da), layout).astype(np.float64)

    fine = matrix(world.fine.tos, fitted.fine_layout_)
    coarse = matrix(world.coarse.tos, fitted.coarse_layout_)
    aggregated = fine @ fitted.module_.aggregation.double().cpu().numpy().T
    np.testing.assert_allclose(aggregated, coarse, rtol=1e-6)


def test_recovers_the_identifiable_growth_parameters(world, fitted):
    """b and d / c, the combinations the data identify (a and c only scale chlorophyll)."""
    params = fitted.proxy_parameters()
    assert float(params.tos_b) == pytest.approx(float(world.truth.b), rel=0.03)
    ratio = float(params.rsds_d / params.rsds_c)
    assert ratio == pytest.approx(float(world.truth.d / world.truth.c), rel=0.15)
    assert params.tos_b.attrs["units"] == "degC-1"


def test_mean_downscaling_is_at_the_noise_floor(world, fitted):
    """Held-out log error within 5 % of what the lognormal noise alone leaves (0.3)."""
    truth = np.log(_test(world.fine).chl)
    mean = np.log(fitted.downscale(_test(world.coarse)).chl)
    floor = np.log(_test(world.truth).chl_noise_free)
    rmse = float(np.sqrt(((mean - truth) ** 2).mean()))
    rmse_floor = float(np.sqrt(((floor - truth) ** 2).mean()))
    assert rmse < 1.05 * rmse_floor


def test_mean_downscaling_is_the_conditional_mean(world, fitted):
    """Lognormal noise of log spread 0.3: the mean is the median times exp(0.3**2 / 2)."""
    smearing = float(fitted.module_.log_smearing.mean())
    assert smearing == pytest.approx(0.3**2 / 2, abs=0.01)
    mean = fitted.downscale(_test(world.coarse)).chl
    truth = _test(world.fine).chl
    assert float(mean.mean() / truth.mean()) == pytest.approx(1.0, abs=0.015)
    truth_mean = _test(world.truth).chl_noise_free * np.exp(0.3**2 / 2)
    assert float(mean.mean() / truth_mean.mean()) == pytest.approx(1.0, abs=0.015)


def test_realisations_are_calibrated_on_held_out_years(world, fitted):
    truth = np.log(_test(world.fine).chl)
    draws = np.log(fitted.downscale(_test(world.coarse), n_samples=20, seed=1).chl)
    assert draws.dims[0] == "realization" and draws.sizes["realization"] == 20
    histogram = rank_histogram(draws, truth) * 21  # 1 everywhere when calibrated
    assert float(abs(histogram - 1).max()) < 0.2
    assert spread_skill_ratio(draws, truth) == pytest.approx(1.0, abs=0.1)


def test_realisations_are_the_same_eagerly_and_lazily_in_any_blocks(world, fitted):
    """Each sample's noise comes from its place in the ensemble, not from the blocks.

    Two members with the same drivers: their realisations differ (their rows do);
    computed eagerly, or lazily in blocks along time and member, they are the same
    numbers; the first realisation does not depend on how many are drawn."""
    coarse = _test(world.coarse)
    twins = xr.concat([coarse, coarse.assign_coords(member=["twin"])], "member")
    eager = fitted.downscale(twins, n_samples=3, seed=4).chl
    assert not np.allclose(eager.isel(member=0), eager.isel(member=1), equal_nan=True)
    for chunks in ({"time": 5}, {"time": 11, "member": 1}):
        lazy = fitted.downscale(twins.chunk(chunks), n_samples=3, seed=4).chl
        assert lazy.chunks is not None
        # rtol: a CUDA matrix product's last bits depend on the rows batched with it
        np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-4)
    first = fitted.downscale(twins, n_samples=1, seed=4).chl
    np.testing.assert_allclose(first.values, eager.isel(realization=[0]).values, rtol=1e-6)
    other_seed = fitted.downscale(twins, n_samples=1, seed=5).chl
    assert not np.allclose(other_seed.values, first.values, equal_nan=True)


def test_latent_maps_and_growth_terms_on_the_coarse_grid(world, fitted):
    maps = fitted.latent_maps(world.coarse)
    assert maps.latent_map.sizes["latent"] == 2
    xr.testing.assert_equal(maps.lon, world.coarse.lon)  # the input's layout, not 0..360
    params = fitted.proxy_parameters()
    celsius = world.coarse.tos.astype(np.float64) - 273.15
    expected = float(params.tos_a) * np.exp(float(params.tos_b) * celsius)
    np.testing.assert_allclose(
        maps.tos_growth, expected.transpose(*maps.tos_growth.dims), rtol=1e-5
    )
    assert maps.tos_growth.attrs["units"] == "d-1" and maps.rsds_growth.attrs["units"] == "1"


def test_save_load_is_bit_identical(world, fitted, tmp_path):
    fitted.save(str(tmp_path / "model.clm"))
    loaded = cl.load(str(tmp_path / "model.clm"))
    coarse = _test(world.coarse)
    pairs = [
        (fitted.downscale(coarse), loaded.downscale(coarse)),
        (
            fitted.downscale(coarse, n_samples=3, seed=4),
            loaded.downscale(coarse, n_samples=3, seed=4),
        ),
    ]
    for a, b in pairs:
        assert_identical_untimed(a, b)
    for name, value in fitted.module_.state_dict().items():
        assert torch.equal(value, loaded.module_.state_dict()[name]), name


def test_bad_inputs_are_refused_by_name(world, fitted):
    coarse = _test(world.coarse)
    with pytest.raises(InputDataError, match="rsds"):
        fitted.downscale(coarse.drop_vars("rsds"))
    mislabelled = coarse.assign(tos=coarse.tos.assign_attrs(units="degC"))  # K values
    with pytest.raises(InputDataError, match="tos"):
        fitted.downscale(mislabelled)
    gappy = coarse.copy(deep=True)
    gappy["rsds"][0, 0, 1, 1] = np.nan
    with pytest.raises(InputDataError, match="rsds"):
        fitted.downscale(gappy)
    with pytest.raises(NotFittedError):
        cl.ProxyLatentDownscaler().downscale(coarse)
    with pytest.raises(ValueError, match="channels"):
        cl.ProxyLatentDownscaler(channels=0)
    with pytest.raises(ValueError, match="interpolation"):
        cl.ProxyLatentDownscaler(interpolation="cubic")


def test_no_noise_refuses_realisations(world):
    est = cl.ProxyLatentDownscaler(channels=1, noise=False, epochs=1, progress=False)
    est.fit(world.coarse, world.fine, "chl", proxies={"tos": "exponential"})
    with pytest.raises(ValueError, match="noise=True"):
        est.downscale(world.coarse, n_samples=2)


def _chl_in(ds, factor):
    """``ds`` with its chl (kg m-3) multiplied by ``factor``: in units of 1 / factor kg m-3."""
    return ds.assign(chl=(ds["chl"] * factor).assign_attrs(units=f"{1 / factor!r} kg m-3"))


def test_additive_form_gives_the_same_field_in_any_units(world):
    """Known answer: chl scaled by 2**20 (exact in floating point) gives the same field
    and draws scaled by 2**20, bit for bit. The free channels' map ``W`` saw the growth
    terms, here the coarse chl, in the target's units: kg m-3 and mg m-3 differed by
    0.25 of the truth's sd in a 30-epoch fit (now 8e-4: the data's rounding, grown by
    training)."""
    coarse, fine = (ds.isel(time=slice(0, 48)) for ds in (world.coarse, world.fine))
    outs = []
    for factor in (1.0, 2.0**20):
        est = cl.ProxyLatentDownscaler(channels=2, hidden=4, epochs=10, progress=False)
        est.fit(_chl_in(coarse, factor), _chl_in(fine, factor), "chl")
        assert est.mode_ == "additive"
        scaled = _chl_in(coarse, factor)
        outs.append([est.downscale(scaled)["chl"].values / factor])
        outs[-1].append(est.downscale(scaled, n_samples=2, seed=1)["chl"].values / factor)
    for kg, scaled in zip(*outs, strict=True):
        np.testing.assert_array_equal(kg, scaled)


def test_additive_form_refuses_a_driver_not_in_the_target_units(world):
    """Its growth latent adds each law's output to the target with a unit coefficient:
    sea surface temperature through 'identity' for chlorophyll in kg m-3 came out 1.2e5
    target sd off (1.35 in mg m-3), as did a chlorophyll driver in mg m-3."""
    coarse, fine = (ds.isel(time=slice(0, 24)) for ds in (world.coarse, world.fine))
    in_mg = (coarse["chl"] * 1e6).assign_attrs(units="mg m-3")
    for name, data in (("tos", coarse), ("chl_mg", coarse.assign(chl_mg=in_mg))):
        est = cl.ProxyLatentDownscaler(mode="additive", epochs=1, progress=False)
        message = f"proxy variable '{name}' is in '(K|mg m-3)', not the target's"
        with pytest.raises(InputDataError, match=message):
            est.fit(data, fine, "chl", proxies={name: "identity"})
    est = cl.ProxyLatentDownscaler(mode="additive", epochs=1, progress=False)
    est.fit(coarse.assign(chl_kg=coarse["chl"]), fine, "chl", proxies={"chl_kg": "identity"})
    assert est.drivers_ == {"chl_kg": "kg m-3"}


def test_a_model_saved_before_the_growth_scale_downscales_as_it_did(world, tmp_path):
    """A model saved before ``W`` saw the growth terms over ``q`` (additive form) lacks
    ``growth_scale``: it loads with 1, and ``W`` in the target's units gives the field
    of the same model in the new form."""
    coarse, fine = (ds.isel(time=slice(0, 24)) for ds in (world.coarse, world.fine))
    est = cl.ProxyLatentDownscaler(channels=2, hidden=4, epochs=2, progress=False)
    est.fit(coarse, fine, "chl")
    path = tmp_path / "m.clm"
    est.save(path)
    weights = path / "weights.safetensors"
    state = load_file(weights)
    scale = state.pop("module.growth_scale")
    assert float(scale[0]) == float(est.module_.scale) != 1.0
    state["module.proxy_map.weight"] = state["module.proxy_map.weight"] / scale
    save_file(state, weights)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"]["weights.safetensors"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))
    old = cl.load(path)
    assert float(old.module_.growth_scale) == 1.0
    for kwargs in ({}, {"n_samples": 2, "seed": 3}):
        new_field = est.downscale(coarse, **kwargs)["chl"].values
        np.testing.assert_allclose(old.downscale(coarse, **kwargs)["chl"].values, new_field,
                                   rtol=1e-5, atol=1e-6 * float(np.nanstd(new_field)))  # fmt: skip


# -- the coarse target as an input -------------------------------------------------

N_TRAIN_NUTRIENT = 72  # months: six years train, two are held out


@pytest.fixture(scope="module")
def nutrient_world():
    """Chlorophyll also limited by a nutrient that neither proxy sees (K = 1)."""
    return cl.datasets.synthetic_biogeochem(
        n_years=8, n_fine_lat=20, n_fine_lon=30, factor=5, seed=2, nutrient_half_saturation=1.0
    )


def _split(ds, train):
    return ds.isel(time=slice(None, N_TRAIN_NUTRIENT) if train else slice(N_TRAIN_NUTRIENT, None))


@pytest.fixture(scope="module")
def nutrient_fits(nutrient_world):
    fits = {}
    for target_input in (False, True):
        est = cl.ProxyLatentDownscaler(
            channels=1, epochs=60, progress=False, target_input=target_input
        )
        coarse, fine = (_split(getattr(nutrient_world, k), True) for k in ("coarse", "fine"))
        fits[target_input] = est.fit(coarse, fine, "chl", proxies=LAWS)
    return fits


def test_observed_growth_latent_offset_is_the_log_of_mean_minus_mean_of_log(
    nutrient_world, nutrient_fits
):
    """Per coarse cell, mean over the fit of log(coarse chl) - area mean of log(fine chl)."""
    est = nutrient_fits[True]

    def matrix(da, layout):
        return to_matrix(GridOrder.of(da).canonical(da), layout).astype(np.float64)

    fine = np.log(matrix(_split(nutrient_world.fine, True).chl, est.fine_layout_))
    coarse = np.log(matrix(_split(nutrient_world.coarse, True).chl, est.coarse_layout_))
    gap = (coarse - fine @ est.module_.aggregation.double().cpu().numpy().T).mean(axis=0)
    offset = (est.module_.observed_offset * est.module_.scale).double().cpu().numpy()
    np.testing.assert_allclose(offset, gap, rtol=1e-4, atol=1e-5)
    assert 0.3**2 / 2 < gap.mean() < 0.5  # at least the noise's share of the gap


def test_coarse_target_supplies_what_the_proxies_omit(nutrient_world, nutrient_fits):
    """The nutrient limitation is in coarse chl: held-out log error near the noise floor.

    From the drivers alone the error is far above it (the omitted nutrient); with the
    coarse target within 10 % of it, and the realisations calibrated.
    """
    coarse = _split(nutrient_world.coarse, False)
    truth = np.log(_split(nutrient_world.fine, False).chl)
    floor_field = np.log(_split(nutrient_world.truth, False).chl_noise_free)
    floor = float(np.sqrt(((floor_field - truth) ** 2).mean()))

    def log_rmse(est):
        return float(np.sqrt(((np.log(est.downscale(coarse).chl) - truth) ** 2).mean()))

    assert log_rmse(nutrient_fits[False]) > 1.4 * floor
    assert log_rmse(nutrient_fits[True]) < 1.1 * floor
    draws = np.log(nutrient_fits[True].downscale(coarse, n_samples=20, seed=1).chl)
    assert float(abs(rank_histogram(draws, truth) * 21 - 1).max()) < 0.25
    assert spread_skill_ratio(draws, truth) == pytest.approx(1.0, abs=0.1)
    maps = nutrient_fits[True].latent_maps(coarse)
    observed = nutrient_fits[True].module_.observed_latent(
        torch.from_numpy(to_matrix(coarse.chl, nutrient_fits[True].coarse_layout_))
    )
    np.testing.assert_allclose(
        to_matrix(maps.latent_map.isel(latent=0), nutrient_fits[True].coarse_layout_),
        observed.numpy(),
        rtol=1e-6,
    )


def test_target_input_save_load_and_refusals(nutrient_world, nutrient_fits, tmp_path):
    est = nutrient_fits[True]
    coarse = _split(nutrient_world.coarse, False)
    est.save(str(tmp_path / "model.clm"))
    loaded = cl.load(str(tmp_path / "model.clm"))
    np.testing.assert_array_equal(loaded.downscale(coarse).chl, est.downscale(coarse).chl)
    with pytest.raises(InputDataError, match="chl"):
        est.downscale(coarse.drop_vars("chl"))
    with pytest.raises(InputDataError, match="chl.*<= 0"):
        est.downscale(coarse.assign(chl=coarse.chl * 0))
    gappy = coarse.copy(deep=True)
    gappy["chl"][0, 0, 1, 1] = np.nan
    with pytest.raises(InputDataError, match="chl"):
        est.downscale(gappy)
    with pytest.raises(InputDataError, match="chl"):
        est.downscale(coarse.assign(chl=coarse.chl.assign_attrs(units="K")))
    train = {k: _split(getattr(nutrient_world, k), True) for k in ("coarse", "fine")}
    with pytest.raises(InputDataError, match="chl"):  # refused before any training
        cl.ProxyLatentDownscaler(target_input=True, progress=False).fit(
            train["coarse"].drop_vars("chl"), train["fine"], "chl", proxies=LAWS
        )


# -- seasonal fits ----------------------------------------------------------------------

N_TRAIN_SEASONAL = 72  # months: six years train, two are held out


def _with_monthly_log_pattern(world, amplitude: float):
    """Fine chlorophyll times ``exp`` of a fine-scale pattern whose sign turns with the season."""
    fine = world.fine
    lat, lon = np.meshgrid(np.arange(fine.sizes["lat"]), np.arange(fine.sizes["lon"]),
                           indexing="ij")  # fmt: skip
    pattern = xr.DataArray(np.sin(lat * 2.1) * np.cos(lon * 1.7), dims=("lat", "lon"))
    phase = np.cos(2 * np.pi * (fine.time.dt.month - 1) / 12)
    chl = fine.chl * np.exp(amplitude * phase * pattern)
    return fine.assign(chl=chl.transpose(*fine.chl.dims).assign_attrs(fine.chl.attrs))


@pytest.fixture(scope="module")
def seasonal_world():
    return cl.datasets.synthetic_biogeochem(
        n_years=8, n_fine_lat=20, n_fine_lon=30, factor=5, seed=3
    )


def _seasonal_split(ds, train):
    cut = slice(None, N_TRAIN_SEASONAL) if train else slice(N_TRAIN_SEASONAL, None)
    return ds.isel(time=cut)


def test_seasonal_fit_recovers_a_monthly_fine_scale_pattern(seasonal_world):
    """A monthly log pattern (RMS 0.35) is beyond one structure; one per month takes it.

    Held out: the annual fit's log error is far above the error without the pattern,
    the monthly fit's within 10 % of it, with calibrated realisations.
    """
    patterned = _with_monthly_log_pattern(seasonal_world, amplitude=1.0)
    coarse_train, coarse_test = (_seasonal_split(seasonal_world.coarse, t) for t in (1, 0))

    def fitted(fine, group):
        est = cl.ProxyLatentDownscaler(channels=1, epochs=60, group=group, progress=False)
        return est.fit(coarse_train, _seasonal_split(fine, True), "chl", proxies=LAWS)

    def log_rmse(est, fine):
        truth = np.log(_seasonal_split(fine, False).chl)
        out = np.log(est.downscale(coarse_test).chl)
        return float(np.sqrt(((out - truth) ** 2).mean()))

    floor = log_rmse(fitted(seasonal_world.fine, "time"), seasonal_world.fine)
    annual = log_rmse(fitted(patterned, "time"), patterned)
    monthly_fit = fitted(patterned, "time.month")
    monthly = log_rmse(monthly_fit, patterned)
    print(f"log RMSE: no pattern {floor:.4f}; with it, annual {annual:.4f}, monthly {monthly:.4f}")
    assert annual > 1.5 * floor
    assert monthly < 1.1 * floor
    assert monthly_fit.module_.structure.shape[0] == 12
    truth = np.log(_seasonal_split(patterned, False).chl)
    draws = np.log(monthly_fit.downscale(coarse_test, n_samples=20, seed=2).chl)
    lazy = monthly_fit.downscale(coarse_test.chunk(time=7), n_samples=20, seed=2).chl
    np.testing.assert_allclose(np.log(lazy), draws, rtol=1e-5)  # each month's spread, lazily
    assert float(abs(rank_histogram(draws, truth) * 21 - 1).max()) < 0.25
    assert spread_skill_ratio(draws, truth) == pytest.approx(1.0, abs=0.1)


def test_seasonal_spreads_are_the_pooled_per_group_residual_spreads(seasonal_world):
    """Fine spreads from the residuals y - d(e(y)) of each group's samples (numpy).

    Each group's mean square, widened by (n + 1) / (n - 1) for its n samples, then
    pooled as a group factor times a cell pattern.
    """
    coarse, fine = (_seasonal_split(getattr(seasonal_world, k), True) for k in ("coarse", "fine"))
    est = cl.ProxyLatentDownscaler(
        channels=1, epochs=2, group="time.season", device="cpu", progress=False
    )  # the module's own maps, on CPU tensors, below
    est.fit(coarse, fine, "chl", proxies=LAWS)
    module = est.module_
    y = to_matrix(GridOrder.of(fine.chl).canonical(fine.chl), est.fine_layout_)
    with torch.no_grad():
        y_t = module.transform(torch.from_numpy(y))
        _, code, _ = module.encode(y_t, torch.ones_like(y_t))
    seasons = fine.time.dt.season.values
    variance, counts = [], []
    for g, season in enumerate(est.groups_.values):
        rows = torch.from_numpy(seasons == season)
        n = int(rows.sum())
        with torch.no_grad():
            residual = y_t[rows] - module.decode(code[rows], torch.full((n,), g))
        variance.append(residual.double().pow(2).mean(0).numpy() * (n + 1) / (n - 1))
        counts.append(n)
    variance, counts = np.array(variance), np.array(counts)[:, None]
    pattern = (counts * variance).sum(0) / counts.sum()
    expected = variance.mean(1, keepdims=True) / pattern.mean() * pattern
    np.testing.assert_allclose(module.fine_spread, np.sqrt(expected), rtol=2e-4, atol=1e-6)


def test_day_of_year_window_save_load_and_unknown_groups(seasonal_world, tmp_path):
    """A window puts each month in three groups; the fit and its round trip hold."""
    summer = seasonal_world.coarse.time.dt.month.isin([6, 7, 8])
    coarse, fine = seasonal_world.coarse.sel(time=summer), seasonal_world.fine.sel(time=summer)
    windowed = cl.ProxyLatentDownscaler(
        channels=2, hidden=4, epochs=2, group="time.dayofyear:3", progress=False
    ).fit(coarse, fine, "chl", proxies=LAWS)
    assert windowed.module_.structure.shape[0] == windowed.groups_.size == 3
    est = cl.ProxyLatentDownscaler(
        channels=2, hidden=4, epochs=2, group="time.season", progress=False
    ).fit(coarse, fine, "chl", proxies=LAWS)
    est.save(str(tmp_path / "m.clm"))
    loaded = cl.load(str(tmp_path / "m.clm"))
    for n_samples in (None, 3):
        a, b = (m.downscale(coarse, n_samples=n_samples).chl for m in (est, loaded))
        np.testing.assert_array_equal(a.values, b.values)
    with pytest.raises(InputDataError, match="season 'DJF'"):
        loaded.downscale(seasonal_world.coarse)


def test_coarse_target_on_its_own_dims_or_samples_refused_by_name():
    w = cl.datasets.synthetic_biogeochem(n_members=2, n_years=2, n_fine_lat=8, n_fine_lon=12)
    coarse, fine = w.coarse, w.fine
    own = coarse.assign(chl=coarse["chl"].rename(lat="y", lon="x"))
    est = cl.ProxyLatentDownscaler(epochs=1, target_input=True, progress=False)
    with pytest.raises(InputDataError, match="coarse target variable 'chl' has horizontal"):
        est.fit(own, fine, "chl", proxies=LAWS)
    est.fit(coarse, fine, "chl", proxies=LAWS)
    shared = coarse.assign(chl=coarse["chl"].isel(member=0, drop=True))
    with pytest.raises(InputDataError, match="coarse target variable 'chl' has sample dims"):
        est.downscale(shared)
