"""Deep priors for an inverse problem with known truth: Darcy pressure at nine wells."""

import numpy as np
import pytest
import torch
import xarray as xr

import climlatent as cl
from climlatent.deep_prior import map_estimate, observation_points, posterior
from climlatent.errors import InputDataError
from climlatent.reference import darcy
from climlatent.studies.deep_prior_coverage import wells

pytest.importorskip("pyro")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup():
    train = darcy.generate(512, kle_terms=2, n_grid=17, seed=0, workers=1)
    test = darcy.generate(3, kle_terms=2, n_grid=17, seed=5, workers=1)
    aux = cl.AuxVAE(latent_dim=4, n_scales=2, epochs=40, lr=3e-3, batch_size=32, progress=False)
    aux.fit(train, "pressure", auxiliary=["theta"])
    truth = test.isel(sample=0)
    noise = 0.1 * float(test["pressure"].std())
    clean = truth["pressure"].sel(wells(test))
    observed = clean + noise * np.random.default_rng(0).normal(size=clean.shape)
    return aux, truth, observed.rename("pressure"), noise


def test_observation_points_are_the_wells_grid_indices(setup):
    aux, _, observed, _ = setup
    channel, flat = observation_points(aux, observed)
    expected = [np.ravel_multi_index((i, j), (17, 17)) for i in (2, 8, 14) for j in (2, 8, 14)]
    assert channel == 0 and flat.tolist() == expected


def test_map_estimate_recovers_the_generative_parameters(setup):
    aux, truth, observed, noise = setup
    z = map_estimate(aux, observed, noise)
    theta = z[:2] * aux.aux_std_ + aux.aux_mean_
    print("theta", truth["theta"].values, "MAP", theta)
    np.testing.assert_allclose(theta, truth["theta"].values, atol=0.3)


def test_map_estimate_leaves_the_model_as_it_was(setup):
    """The forward map decodes with a CPU copy of the decoder: the model's own keeps its
    device and its mode (on CUDA, a decoder moved to the CPU would break the next decode)."""
    aux, _, observed, noise = setup
    decoder = aux.module_.decoder
    before = [p.detach().clone() for p in decoder.parameters()]
    decoder.train()
    try:
        map_estimate(aux, observed, noise, steps=5)
        assert aux.module_.decoder is decoder and decoder.training
        assert all(torch.equal(a, b) for a, b in zip(before, decoder.parameters(), strict=True))
    finally:
        decoder.eval()


def test_nuts_posterior_covers_the_truth_with_converged_chains(setup):
    aux, truth, observed, noise = setup
    post = posterior(aux, observed, noise, num_samples=200, warmup=150, credibility=0.98)
    theta = truth["theta"].values
    lower, upper = post.intervals.sel(bound="lower").values, post.intervals.sel(bound="upper")
    print("intervals", post.intervals.values, "R-hat", post.r_hat.values, "ESS", post.ess.values)
    assert np.all((lower <= theta) & (theta <= upper.values))
    assert float(post.r_hat.max()) < 1.1 and float(post.ess.min()) > 50
    mean, std = post.fields["pressure_mean"], post.fields["pressure_std"]
    error = float(np.sqrt(((mean - truth["pressure"]) ** 2).mean() / truth["pressure"].var()))
    assert error < 0.2
    assert float(std.mean()) < 0.5 * noise / 0.1  # far narrower than the fields' spread


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda o: o.rename("u_x"), "observed variable 'u_x' is not one of"),
        (lambda o: o.drop_vars("x"), "lack the coordinate 'x'"),
        (lambda o: o.assign_coords(x=o["x"] + 0.01), "not on the model's 'x' grid"),
        (lambda o: o.where(o["well"] > 0), "finite values"),
    ],
)
def test_bad_observations_are_named(setup, change, message):
    aux, _, observed, _ = setup
    with pytest.raises(InputDataError, match=message):
        observation_points(aux, change(observed))


def test_wells_helper_shape():
    flow = darcy.generate(1, n_grid=17, workers=1)
    points = wells(flow)
    assert isinstance(points["x"], xr.DataArray) and points["x"].sizes == {"well": 9}
