"""A refit that fails leaves the previous fit, or none: never a mix of the two."""

import random
import threading

import dask
import numpy as np
import pytest
import torch
import xarray as xr

import climlatent as cl
import climlatent.cca
import climlatent.training
from climlatent.baselines import ClimatologyCorrectedBilinear
from climlatent.cca import CCARegression
from climlatent.errors import InputDataError, NotFittedError
from climlatent.precipitation_transforms import Log1p, PowerTransform
from climlatent.transform_base import transform_from_dataset
from climlatent.transforms import Anomalies, Pipeline


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


def test_a_cca_refit_refused_keeps_the_previous_fit():
    """The refused refit had set the new data's means under the old weights: 12.9 off
    on predictions of magnitude 8.3."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = x[:, :2] @ rng.normal(size=(2, 4)) + 0.1 * rng.normal(size=(200, 4))
    cca = CCARegression(n_components=2).fit(x, y)
    rank_one = np.outer(rng.normal(size=20), np.ones(3)) + 5.0  # 1 canonical pair
    with pytest.raises(ValueError, match="between 1 and 1"):
        cca.fit(rank_one, rng.normal(size=(20, 4)) + 3.0)
    fresh = CCARegression(n_components=2).fit(x, y)
    np.testing.assert_array_equal(cca.emulate(x), fresh.emulate(x))


def test_a_cca_refit_interrupted_between_its_halves_leaves_it_unfitted(monkeypatch):
    """Ctrl-C while the refit computed the target's weights (a matrix product over the
    grid) kept the new proxy weights under the old target weights, reported fitted."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 3)), rng.normal(size=(200, 4))
    cca = CCARegression(n_components=2).fit(x, y + x[:, :1])
    old_weights = cca.x_weights_

    class Interrupting:  # numpy, whose sqrt raises once the proxy's weights are set
        def __getattr__(self, name):
            return getattr(np, name)

        def sqrt(self, values):
            if cca.x_weights_ is not old_weights:
                raise KeyboardInterrupt
            return np.sqrt(values)

    monkeypatch.setattr(climlatent.cca, "np", Interrupting())
    with pytest.raises(KeyboardInterrupt):
        cca.fit(2.0 * x, y - x[:, 1:2])
    monkeypatch.undo()
    with pytest.raises(NotFittedError):
        cca.emulate(x)


def test_a_baseline_refit_refused_after_it_set_new_grids_leaves_it_unfitted():
    """The refused refit kept the 16 x 16 interpolation under the 8 x 8 correction: the
    downscaled field of the new grid came out on a 0 x 0 grid."""
    old = cl.datasets.synthetic_biogeochem(n_years=2, n_fine_lat=8, n_fine_lon=8)
    new = cl.datasets.synthetic_biogeochem(n_years=2, n_fine_lat=16, n_fine_lon=16, seed=5)
    est = ClimatologyCorrectedBilinear("multiplicative").fit(old.coarse, old.fine, "chl")
    one_year = {"time": slice(0, 12)}  # one step a month: no monthly correction
    with pytest.raises(InputDataError, match="at least 2 time steps"):
        est.fit(new.coarse.isel(one_year), new.fine.isel(one_year), "chl")
    with pytest.raises(InputDataError, match="not fitted"):
        est.downscale(new.coarse)
    fresh = ClimatologyCorrectedBilinear("multiplicative").fit(new.coarse, new.fine, "chl")
    refitted = est.fit(new.coarse, new.fine, "chl").downscale(new.coarse)
    np.testing.assert_array_equal(refitted["chl"], fresh.downscale(new.coarse)["chl"])


def test_a_pipeline_refit_refused_keeps_every_steps_previous_fit(circulation):
    """The refused refit had refitted the nested pipeline (a Log1p scale 3.13 times the
    old) under the old climatology: forward 0.73 off, and the state no longer its map."""
    pr = circulation["pr"]

    def steps():
        return [Pipeline([PowerTransform(), Log1p()]), Anomalies(dims=("member", "time"))]

    pipeline = Pipeline(steps()).fit(pr)
    with pytest.raises(InputDataError, match="no sample for dayofyear"):
        pipeline.fit(pr.isel(time=slice(0, 100)) * 30.0)
    fresh = Pipeline(steps()).fit(pr)
    np.testing.assert_array_equal(pipeline.forward(pr), fresh.forward(pr))
    xr.testing.assert_identical(pipeline.to_dataset(), fresh.to_dataset())
    rebuilt = transform_from_dataset(pipeline.to_dataset())
    np.testing.assert_array_equal(pipeline.forward(pr), rebuilt.forward(pr))


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
