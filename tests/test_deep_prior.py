"""Deep priors for an inverse problem with known truth: Darcy pressure at nine wells."""

import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import xarray as xr

import climlatent as cl
from climlatent.deep_prior import (
    _Forward,
    _negative_log_posterior,
    map_estimate,
    observation_points,
    posterior,
)
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


def _linear_world(noise: float):
    """A model whose decoder is linear, ``G(z) = W z + b``, and observations of it: the
    posterior of ``z`` is then Gaussian, precision ``I + H^T H / noise^2`` (``H`` the
    observed rows of ``W`` in the variable's units), mean its inverse times
    ``H^T (d - c) / noise^2``."""
    generator = torch.Generator().manual_seed(0)
    dim, ny, nx = 3, 3, 4
    weight, bias = torch.randn(ny * nx, dim, generator=generator), torch.randn(ny * nx)
    decoder = torch.nn.Linear(dim, ny * nx)
    decoder.weight.data, decoder.bias.data = weight, bias
    decoder = torch.nn.Sequential(decoder, torch.nn.Unflatten(1, (1, ny, nx)))
    std, mean = 0.5, 2.0

    def decode(latents: xr.DataArray) -> xr.Dataset:
        fields = decoder(torch.as_tensor(latents.values))[:, 0].detach().numpy()
        return xr.Dataset({"p": ((latents.dims[0], "y", "x"), fields * std + mean)})

    model = SimpleNamespace(
        module_=SimpleNamespace(decoder=decoder), mean_=np.array([mean]),
        std_=np.array([std]), variables_=["p"], grid_=xr.Dataset(coords={"y": np.arange(
            ny * 1.0), "x": np.arange(nx * 1.0)}), spatial_dims_=("y", "x"),
        grid_size_=(ny, nx), latent_dim=dim, decode=decode, guided_names_=["a"],
        aux_mean_=np.zeros(1), aux_std_=np.ones(1),
    )  # fmt: skip
    y, x = np.array([0, 1, 2, 2]), np.array([1, 3, 0, 2])
    h = weight.double().numpy()[y * nx + x] * std
    c = bias.double().numpy()[y * nx + x] * std + mean
    data = h @ [0.5, -1.0, 0.3] + c + noise * np.random.default_rng(0).normal(size=len(y))
    observed = xr.DataArray(data, dims="well", coords={"y": ("well", y * 1.0),
                            "x": ("well", x * 1.0)}, name="p")  # fmt: skip
    covariance = np.linalg.inv(np.eye(dim) + h.T @ h / noise**2)
    return model, observed, h, c, covariance @ h.T @ (data - c) / noise**2, covariance


def test_map_gradient_and_nuts_match_the_closed_form_of_a_linear_decoder():
    noise = 0.3
    model, observed, h, c, mode, covariance = _linear_world(noise)
    forward = _Forward(model, *observation_points(model, observed))
    z = np.array([0.4, -0.2, 0.9])
    z_t = torch.tensor(z, dtype=torch.float32, requires_grad=True)
    data = torch.as_tensor(observed.values, dtype=torch.float32)
    (gradient,) = torch.autograd.grad(
        _negative_log_posterior(forward, z_t[None], data, noise).sum(), z_t
    )
    expected = h.T @ (h @ z + c - observed.values) / noise**2 + z
    np.testing.assert_allclose(gradient.numpy(), expected, rtol=1e-5, atol=1e-5)
    # Adam (lr 0.05, 500 steps) ends within 3e-4 of the mode, 0.05 % of the posterior
    # sd (0.66), on 1 or 2 threads; a wrong posterior puts it tenths away
    np.testing.assert_allclose(map_estimate(model, observed, noise), mode, atol=2e-3)
    post = posterior(model, observed, noise, num_samples=400, warmup=200)
    assert post.guided.dims[0] == "realization"  # was 'draw', no coordinate
    assert post.guided["realization"].values.tolist() == list(range(800))
    assert post.guided["realization"].attrs["standard_name"] == "realization"
    draws = post.guided.values[:, 0]  # the first latent (aux_mean 0, aux_std 1)
    sd = np.sqrt(covariance[0, 0])  # 0.66; 800 draws: the mean to 0.03, the sd to 4 %
    assert abs(draws.mean() - mode[0]) < 0.2 * sd and abs(draws.std() / sd - 1) < 0.15


@pytest.mark.parametrize("interrupted", [False, True])
def test_nuts_leaves_the_callers_global_random_states_as_it_found_them(monkeypatch, interrupted):
    """pyro seeds python's, numpy's and torch's global generators per chain: after a
    posterior (or a Ctrl-C in one), the caller's next draws were those of seed 1."""
    import pyro.infer

    model, observed, *_ = _linear_world(0.3)
    if interrupted:

        def interrupt(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(pyro.infer.MCMC, "get_samples", interrupt)

    def draws():
        return random.random(), np.random.random(), torch.rand(1).item()  # noqa: NPY002

    random.seed(11), np.random.seed(12), torch.manual_seed(13)  # noqa: NPY002
    expected = draws()
    random.seed(11), np.random.seed(12), torch.manual_seed(13)  # noqa: NPY002
    if interrupted:
        with pytest.raises(KeyboardInterrupt):
            posterior(model, observed, 0.3, num_samples=5, warmup=5, chains=2)
    else:
        posterior(model, observed, 0.3, num_samples=5, warmup=5, chains=2)
    assert draws() == expected
