"""ProxyLatentDownscaler: growth laws recovered, calibrated realisations, round trips, refusals."""

import numpy as np
import pytest
import torch
import xarray as xr

import climlatent as cl
from climlatent.batching import to_matrix
from climlatent.errors import InputDataError, NotFittedError
from climlatent.grid_order import GridOrder
from climlatent.metrics import rank_histogram, spread_skill_ratio

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
    aggregated = fine @ fitted.module_.aggregation.double().numpy().T
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


def _untimed(history: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in history.splitlines()]


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
    for a, b in pairs:  # the history lines' timestamps may be a second apart
        assert _untimed(a.attrs.pop("history")) == _untimed(b.attrs.pop("history"))
        xr.testing.assert_identical(a, b)
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
    gap = (coarse - fine @ est.module_.aggregation.double().numpy().T).mean(axis=0)
    offset = (est.module_.observed_offset * est.module_.scale).double().numpy()
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
