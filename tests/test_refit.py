"""A refit that fails leaves the previous fit, or none: never a mix of the two."""

import random
import threading

import dask
import numpy as np
import pytest
import torch
import xarray as xr

import climlatent as cl
import climlatent.training
from climlatent.errors import InputDataError, NotFittedError


@pytest.fixture(scope="module")
def circulation():
    return cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=8, n_lon=8)


def test_an_interrupted_refit_leaves_the_estimator_unfitted(circulation, monkeypatch):
    """Ctrl-C in the refit's training left the old fit's metadata over new, untrained
    weights: is_fitted, and a VAE's codes 0.59 off."""
    vae = cl.VAE(latent_dim=2, n_scales=1, epochs=1, progress=False).fit(circulation, "psl")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(climlatent.training._Trainer, "run_epoch", interrupt)
    with pytest.raises(KeyboardInterrupt):
        vae.fit(circulation.isel(time=slice(0, 200)), "psl")
    assert not vae.is_fitted
    with pytest.raises(NotFittedError):
        vae.encode(circulation)


def test_a_refit_refused_after_it_set_new_units_leaves_the_estimator_unfitted():
    """The refused refit had set the drivers' laws and units under the old module (a
    model fitted in degC then read K: 2.1e6 times off)."""
    world = cl.datasets.synthetic_biogeochem(n_years=2, n_fine_lat=8, n_fine_lon=8)
    est = cl.ProxyDownscaler(epochs=1, progress=False, group="time.month")
    est.fit(world.coarse, world.fine, "chl", proxies={"tos": "exponential"})
    short = {"time": slice(0, 13)}
    with pytest.raises(InputDataError, match="at least 2 time steps"):
        est.fit(world.coarse.isel(short), world.fine.isel(short), "chl", proxies={"tos": "linear"})
    assert not est.is_fitted


def test_a_refit_refused_before_it_changed_anything_keeps_the_fit(circulation):
    est = cl.EOFRegression(n_proxy_eofs=3, n_target_eofs=3).fit(circulation, "pr", "psl")
    before = est.emulate(circulation)["pr"].values
    with pytest.raises(InputDataError, match="'nothing'"):
        est.fit(circulation, "nothing", "psl")
    np.testing.assert_array_equal(est.emulate(circulation)["pr"].values, before)


def test_an_eof_refit_refused_half_way_leaves_no_mixed_bases(circulation):
    """The new proxy basis was kept beside the old coefficients: 7.7e-5 off on 9e-5."""
    est = cl.EOFRegression(n_proxy_eofs=3, n_target_eofs=4).fit(circulation, "pr", "psl")
    with pytest.raises(InputDataError):
        est.fit(circulation.isel(time=slice(0, 4)), "pr", "psl")
    assert not est.is_fitted


def _draws() -> tuple:
    return random.random(), np.random.random(), torch.rand(1).item()  # noqa: NPY002


@pytest.mark.parametrize("interrupted", [False, True])
def test_a_fit_leaves_the_callers_global_random_states_as_it_found_them(
    circulation, monkeypatch, interrupted
):
    """A fit seeded the global generators from its seed: after any fit, the caller's
    next np.random, torch and random draws were those of seed 0, whatever it had set."""
    world = cl.datasets.synthetic_biogeochem(n_years=1, n_fine_lat=8, n_fine_lon=8)
    fits = [
        lambda: cl.VAE(latent_dim=2, n_scales=1, epochs=1, progress=False).fit(circulation, "psl"),
        lambda: cl.ProxyDownscaler(epochs=1, noise=True, progress=False).fit(
            world.coarse, world.fine, "chl", proxies={"tos": "exponential"}
        ),
    ]
    if interrupted:

        def interrupt(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(climlatent.training._Trainer, "run_epoch", interrupt)
    for fit in fits:
        random.seed(11), np.random.seed(12), torch.manual_seed(13)  # noqa: NPY002
        expected = _draws()
        random.seed(11), np.random.seed(12), torch.manual_seed(13)  # noqa: NPY002
        if interrupted:
            with pytest.raises(KeyboardInterrupt):
                fit()
        else:
            fit()
        assert _draws() == expected


def test_a_fit_reading_a_lazy_input_whose_tasks_fit_does_not_wait_on_itself(circulation):
    """A fit held the seeding lock from its start: a lazy input computed on dask's threaded
    scheduler, whose tasks fit a torch model in the pool's threads, waited on it for good."""

    def fit_inside(block):
        cl.VAE(latent_dim=2, n_scales=1, epochs=1, progress=False).fit(circulation, "psl")
        return block

    lazy = circulation.isel(time=slice(0, 200)).chunk(time=100)
    lazy["pr"] = xr.map_blocks(fit_inside, lazy["pr"])
    fitted = {}

    def fit():
        with dask.config.set(scheduler="threads", num_workers=2):
            est = cl.LLAAE(latent_dim=2, epochs=1, progress=False)
            fitted["llaae"] = est.fit(lazy, "pr", "psl")

    thread = threading.Thread(target=fit, daemon=True)
    thread.start()
    thread.join(timeout=300)
    assert not thread.is_alive(), "the fit waits on the fits of its own input's tasks"
    assert "llaae" in fitted
