"""Gaussian VAE, priors, beta schedule and the VAE estimator against independent truth."""

import dataclasses

import numpy as np
import pytest
import torch
from scipy import stats

import climlatent as cl
from climlatent.errors import InputDataError
from climlatent.estimators._train import train_module
from climlatent.estimators.vae import VAE
from climlatent.models.dense_blocks import DenseDecoder, DenseEncoder
from climlatent.models.priors import (
    HierarchicalPrior,
    StandardNormalPrior,
    gaussian_kl_standard,
    gaussian_log_prob,
    prior_draws,
)
from climlatent.models.vae import GaussianVAE
from climlatent.reference.darcy import generate
from climlatent.schedules import BetaSchedule
from climlatent.training import TrainingConfig, fit

FIELDS = ["pressure", "u_x", "u_y"]
SMALL = dict(n_scales=2, base_channels=4, layers=1, growth=4, progress=False)


@pytest.fixture(scope="module")
def darcy():
    return generate(96, kle_terms=2, seed=0, n_grid=17, workers=1)


def test_gaussian_log_prob_and_kl_match_scipy_and_torch_distributions():
    rng = np.random.default_rng(0)
    x, mean, log_var = (torch.tensor(rng.normal(size=(5, 3))) for _ in range(3))
    expected = stats.norm.logpdf(x, mean, np.exp(0.5 * log_var.numpy())).sum(-1)
    np.testing.assert_allclose(gaussian_log_prob(x, mean, log_var), expected, rtol=1e-12)
    q = torch.distributions.Normal(mean, (0.5 * log_var).exp())
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    reference = torch.distributions.kl_divergence(q, p).sum(-1)
    np.testing.assert_allclose(gaussian_kl_standard(mean, log_var), reference, rtol=1e-12)


def test_hierarchical_bound_is_the_kl_when_the_prior_is_standard_normal():
    """With p(z|xi) = q(xi|z) = N(0, I) the bound's expectation is KL[q || N(0, I)]."""
    torch.manual_seed(0)
    prior = HierarchicalPrior(2)
    for net in (prior.prior_encoder, prior.prior_decoder):
        torch.nn.init.zeros_(net[-1].weight)
        torch.nn.init.zeros_(net[-1].bias)
    mean, log_var = torch.tensor([[0.7, -0.4]]), torch.tensor([[-0.5, 0.3]])
    n = 200_000
    z = mean + torch.randn(n, 2) * (0.5 * log_var).exp()
    with torch.no_grad():
        bound = prior.regularisation(z, mean.expand(n, 2), log_var.expand(n, 2))
    exact = float(gaussian_kl_standard(mean, log_var))
    standard_error = float(bound.std()) / np.sqrt(n)
    assert abs(float(bound.mean()) - exact) < 4 * standard_error


def test_hierarchical_bound_upper_bounds_the_kl_to_a_known_prior():
    """A learned prior N(m, s^2) (reached through xi) gives E[bound] >= KL[q || N(m, s^2)]."""
    torch.manual_seed(1)
    prior = HierarchicalPrior(1, hidden=4)
    with torch.no_grad():  # p(z|xi) = N(1 + 0.5 xi, 0.01): marginal N(1, 0.26)
        for layer in prior.prior_decoder[:-1]:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.zero_()
                layer.bias.zero_()
        prior.prior_decoder[-1].weight.zero_()
        prior.prior_decoder[-1].bias.copy_(torch.tensor([1.0, np.log(0.26)]))
    mean, log_var = torch.tensor([[0.8]]), torch.tensor([[float(np.log(0.2))]])
    n = 100_000
    z = mean + torch.randn(n, 1) * (0.5 * log_var).exp()
    with torch.no_grad():
        bound = prior.regularisation(z, mean.expand(n, 1), log_var.expand(n, 1))
    q = torch.distributions.Normal(0.8, np.sqrt(0.2))
    exact = float(
        torch.distributions.kl_divergence(q, torch.distributions.Normal(1.0, np.sqrt(0.26)))
    )
    assert float(bound.mean()) >= exact - 4 * float(bound.std()) / np.sqrt(n)


def test_prior_draws_follow_the_prior_and_do_not_depend_on_how_many_are_drawn():
    """A hierarchical prior whose p(z|xi) is N(1, 0.26) for every xi: its draws pass a
    KS test against it; the first k of n draws are the draws of n = k (torch's randn of
    one stream gave other draws for n = 3 than the first 3 of n = 40)."""
    prior = HierarchicalPrior(1, hidden=4)
    with torch.no_grad():
        for layer in prior.prior_decoder:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.zero_()
                layer.bias.zero_()
        prior.prior_decoder[-1].bias.copy_(torch.tensor([1.0, np.log(0.26)]))
        z = prior_draws(prior, 20_000, 1, seed=2).numpy().ravel()
    assert stats.kstest(z, stats.norm(1.0, np.sqrt(0.26)).cdf).pvalue > 0.01
    vae = _vae(prior="hierarchical")
    vae.decoder = torch.nn.Identity()  # the module's samples are its latent draws
    with torch.no_grad():
        drawn = vae.sample(40, seed=5)
        np.testing.assert_allclose(drawn[:3], vae.sample(3, seed=5), rtol=1e-6)
        np.testing.assert_array_equal(drawn, prior_draws(vae.prior, 40, 2, seed=5))
        assert not np.allclose(drawn, prior_draws(vae.prior, 40, 2, seed=6), atol=0.1)


@pytest.mark.parametrize(
    ("n", "seed", "message"),
    [
        (0, 0, "number of draws"),
        (-1, 0, "number of draws"),
        (True, 0, "number of draws"),
        (2, 1.5, "seed"),
    ],
)
def test_prior_draws_refuse_a_bad_count_or_seed(n, seed, message):
    """Seed 1.5 drew what seed 1 draws; a count of 0 failed in LLAAE.sample's reshape,
    -1 as numpy's "negative dimensions are not allowed"."""
    with pytest.raises(ValueError, match=message):
        prior_draws(StandardNormalPrior(), n, 2, seed)


def _vae(prior="standard", schedule=None):
    torch.manual_seed(0)
    encoder = DenseEncoder(2, 9, 4, n_scales=2, base_channels=4, layers=1, growth=2)
    decoder = DenseDecoder(2, 2, 9, n_scales=2, base_channels=4, layers=1, growth=2)
    return GaussianVAE(encoder, decoder, 2, 2, prior=prior, schedule=schedule)


def test_losses_are_the_gaussian_likelihood_kl_and_label_density():
    vae = _vae().eval()
    vae.supervision_weight = 2.5
    with torch.no_grad():
        vae.output_log_var.copy_(torch.tensor([0.3, -0.2]))
    y = torch.randn(6, 2, 9, 9)
    theta, labelled = torch.randn(6, 2), torch.tensor([3, 0, 0, 3, 0, 0])  # 2 of 6 labelled
    torch.manual_seed(5)
    losses = vae.training_losses((y, theta, labelled))
    torch.manual_seed(5)
    mean, log_var = vae.posterior(y)
    z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
    out = vae.decode(z).detach().numpy()
    sd = np.exp(0.5 * np.array([0.3, -0.2])).reshape(1, 2, 1, 1)
    nll = -stats.norm.logpdf(y.numpy(), out, sd).reshape(6, -1).sum(1)
    np.testing.assert_allclose(float(losses["reconstruction"]), nll.mean() / 162, rtol=1e-5)
    kl = gaussian_kl_standard(mean, log_var).detach().numpy()
    np.testing.assert_allclose(float(losses["regularisation"]), kl.mean(), rtol=1e-5)
    m, s = mean.detach().numpy(), np.exp(0.5 * log_var.detach().numpy())
    label_nll = -stats.norm.logpdf(theta.numpy(), m, s).sum(1)[[0, 3]].mean()
    np.testing.assert_allclose(float(losses["supervision"]), label_nll, rtol=1e-5)
    total = (nll.mean() + kl.mean() + 2.5 * label_nll) / 162
    np.testing.assert_allclose(float(losses["loss"]), total, rtol=1e-5)


def test_the_label_term_of_every_batch_is_unbiased_for_the_mean_over_the_labels():
    """Eq. 28's E_{p_l}[-log q]: batches of an epoch weighted by their size average to
    the mean over the labelled samples, however the labels fall into batches (their
    mean within each batch averaged 1/3 of it here: two batches of three hold none)."""
    vae = _vae().eval()
    y, theta = torch.randn(12, 2, 9, 9), torch.randn(12, 2)
    flags = torch.zeros(12)
    flags[[1, 2]] = 1.0
    with torch.no_grad():
        mean, log_var = vae.posterior(y)
        label_mean = float(-gaussian_log_prob(theta, mean, log_var)[[1, 2]].mean())
        weights = flags / flags.mean()
        for order in (
            torch.arange(12),
            torch.randperm(12, generator=torch.Generator().manual_seed(1)),
        ):
            terms = [
                float(vae.training_losses((y[rows], theta[rows], weights[rows]))["supervision"])
                for rows in order.split(4)
            ]
            np.testing.assert_allclose(np.mean(terms), label_mean, rtol=1e-5)


def test_no_labelled_sample_in_a_batch_adds_nothing():
    vae = _vae()
    torch.manual_seed(0)
    y = torch.randn(4, 2, 9, 9)
    losses = vae.training_losses((y, torch.zeros(4, 2), torch.zeros(4)))
    assert float(losses["supervision"]) == 0.0


def test_nan_labels_of_unlabelled_samples_reach_neither_loss_nor_gradient():
    """Unlabelled rows' labels are not read: NaN there gives the loss and the gradient
    of zeros there (a where that masked the term only let 0 * NaN into the gradient)."""
    y = torch.randn(4, 2, 9, 9)
    flags = torch.tensor([2.0, 0.0, 2.0, 0.0])
    theta = torch.randn(4, 2)
    gaps = theta.clone()
    gaps[flags == 0] = float("nan")
    results = []
    for labels in (torch.where(flags[:, None] > 0, theta, 0.0), gaps):
        vae = _vae()
        torch.manual_seed(3)
        loss = vae.training_losses((y, labels, flags))["loss"]
        grads = torch.autograd.grad(loss, list(vae.parameters()))
        results.append((loss.item(), torch.cat([g.flatten() for g in grads])))
    (loss_zeros, grad_zeros), (loss_gaps, grad_gaps) = results
    assert np.isfinite(loss_gaps) and loss_gaps == loss_zeros
    assert torch.isfinite(grad_gaps).all() and torch.equal(grad_gaps, grad_zeros)


def test_beta_schedule_drives_beta_and_the_learning_rate_of_fit():
    schedule = BetaSchedule(beta_0=1e-4, warmup_epochs=2, ramp_epochs=2, lr_drop_epoch=3)
    vae = _vae(schedule=schedule)
    config = TrainingConfig(epochs=5, batch_size=8, lr=1e-3, validation_fraction=0, progress=False)
    betas = []
    original = vae.on_epoch_start
    vae.on_epoch_start = lambda epoch: (original(epoch), betas.append(vae.beta))
    history = fit(vae, (torch.randn(16, 2, 9, 9),), config).history
    assert betas == [1e-4, 1e-4, pytest.approx(1e-2), 1.0, 1.0]
    np.testing.assert_allclose(history["lr"], [1e-3, 1e-3, 1e-3, 1e-4, 1e-4])
    with pytest.raises(ValueError, match="lr_scale"):
        fit(
            vae,
            (torch.randn(16, 2, 9, 9),),
            dataclasses.replace(config, lr_decay=0.5, lr_decay_steps=2),
        )
    with pytest.raises(ValueError, match="beta_0"):
        BetaSchedule(beta_0=0)


def test_dense_encoder_decoder_shapes_and_gradients():
    encoder, decoder = DenseEncoder(3, 65, 4), DenseDecoder(2, 3, 65)
    x = torch.randn(2, 3, 65, 65, requires_grad=True)
    out = decoder(encoder(x)[:, :2])
    assert out.shape == x.shape
    out.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert not any(isinstance(m, torch.nn.Linear) for m in [*encoder.modules(), *decoder.modules()])


def test_estimator_trains_round_trips_and_keeps_metadata(darcy, tmp_path):
    # Seeded runs are identical on the CPU; CUDA's convolution gradients are summed in
    # no fixed order (two seeded runs there differed by 1 % after 6 epochs).
    config = dict(latent_dim=2, epochs=6, batch_size=16, lr=3e-3, device="cpu", **SMALL)
    vae = VAE(**config).fit(darcy, FIELDS)
    again = VAE(**config).fit(darcy, FIELDS)
    assert vae.encode(darcy).equals(again.encode(darcy))
    history = vae.history_
    assert history["train_reconstruction"].iloc[-1] < history["train_reconstruction"].iloc[0]
    z = vae.encode(darcy)
    assert z.dims == ("sample", "latent") and (z["sample"] == darcy["sample"]).all()
    rec = vae.reconstruct(darcy)
    assert set(rec.data_vars) == set(FIELDS)
    assert rec["pressure"].dims == ("sample", "y", "x")
    assert rec["x"].attrs["units"] == darcy["x"].attrs["units"]
    assert rec["u_x"].attrs["long_name"] == darcy["u_x"].attrs["long_name"]
    assert "VAE(" in rec.attrs["history"]
    vae.save(tmp_path / "vae.clm")
    loaded = cl.load(tmp_path / "vae.clm")
    assert loaded.encode(darcy).values.tobytes() == z.values.tobytes()
    assert loaded.reconstruct(darcy)["pressure"].equals(rec["pressure"])
    samples = loaded.sample(5, seed=3)
    assert samples["u_y"].shape == (5, 17, 17)


def test_prior_samples_say_they_are_decoder_means_and_draw_the_output_noise_on_request(darcy):
    """VAE.sample returned decoder means of prior draws with nothing saying so and no
    way to draw the likelihood's output noise N(0, sigma^2), which VED.sample adds with
    ``noise=True``: the noise, in physical units, is ``std * exp(log_var / 2)`` times
    standard normals, drawn by ``seed`` and draw alone."""
    vae = VAE(latent_dim=2, epochs=1, batch_size=16, device="cpu", **SMALL).fit(darcy, FIELDS)
    means, noisy = vae.sample(300, seed=3), vae.sample(300, seed=3, noise=True)
    for name in FIELDS:
        assert means[name].attrs["comment"] == (
            "decoder mean of each prior draw, without the decoder's output noise"
        )
        assert noisy[name].attrs["comment"] == (
            "decoder mean of each prior draw plus the decoder's output noise N(0, sigma^2)"
        )
    sigma = vae.std_ * np.exp(0.5 * vae.module_.output_log_var.detach().numpy())
    for i, name in enumerate(FIELDS):
        normals = ((noisy[name] - means[name]) / sigma[i]).values.ravel()  # 86700 values
        assert abs(normals.mean()) < 0.02 and abs(normals.std() - 1) < 0.02
        assert stats.kstest(normals, "norm").pvalue > 1e-3
    first = vae.sample(3, seed=3, noise=True)
    np.testing.assert_allclose(first["u_x"], noisy["u_x"][:3], rtol=1e-5, atol=1e-6)
    assert not noisy["u_x"].equals(vae.sample(300, seed=4, noise=True)["u_x"])


def test_fully_labelled_latents_follow_the_generative_parameters(darcy):
    """Eq. 28 with every sample labelled: the posterior means regress onto theta."""
    vae = VAE(latent_dim=2, epochs=25, batch_size=16, lr=3e-3, supervision_weight=100, **SMALL)
    vae.fit(darcy, FIELDS, labels="theta")
    z = vae.encode(darcy).values
    theta = darcy["theta"].values
    for k in range(2):
        assert np.corrcoef(z[:, k], theta[:, k])[0, 1] > 0.9


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda ds: ds.drop_vars("u_x"), "'u_x' is not in the Dataset"),
        (lambda ds: ds.assign(u_y=ds["u_y"].where(ds["x"] < 0.9)), "'u_y' has"),
        (lambda ds: ds.assign(u_x=ds["u_x"].transpose("sample", "x", "y")), "has dims"),
        (lambda ds: ds.assign(pressure=ds["pressure"] * 0), "constant"),
    ],
)
def test_bad_training_fields_are_named(darcy, change, message):
    with pytest.raises(InputDataError, match=message):
        VAE(epochs=1, **SMALL).fit(change(darcy), FIELDS)


def test_bad_labels_and_grids_are_named(darcy):
    with pytest.raises(InputDataError, match="labels 'theta' need"):
        VAE(latent_dim=3, epochs=1, **SMALL).fit(darcy, FIELDS, labels="theta")
    with pytest.raises(InputDataError, match="labelled has 3 flags for 96"):
        VAE(epochs=1, **SMALL).fit(darcy, FIELDS, labels="theta", labelled=[True] * 3)
    with pytest.raises(InputDataError, match="labelled marks none of the 96 samples"):
        VAE(epochs=1, **SMALL).fit(darcy, FIELDS, labels="theta", labelled=[False] * 96)
    vae = VAE(epochs=1, **SMALL).fit(darcy, FIELDS)
    flags = np.isin(np.arange(96), [5, 50, 60, 90])
    weights = vae._labels(darcy, "theta", flags, 96)[1].numpy()  # the inverse share, 96 / 4
    assert weights.tolist() == np.where(flags, 24.0, 0.0).tolist()
    with pytest.raises(InputDataError, match="grid"):
        vae.encode(darcy.isel(x=slice(0, 9)))


@pytest.mark.parametrize(
    ("streams", "in_train", "in_valid"), [(1, [5, 90], [50, 60]), (2, [5, 50], [4, 7])]
)
def test_label_weights_are_the_inverse_labelled_shares_of_the_split_fit_makes(
    darcy, monkeypatch, streams, in_train, in_valid
):
    """With a validation set, the label term of an epoch's training batches averages to
    its mean over the labelled training samples (as ``fit`` splits them), and the
    validation loss holds its mean over the labelled validation samples. Weights of
    96 / 4 = 24, the inverse share among all samples, weighed the training term by
    2 / 3 here: 2 of the 4 labels fall into the validation set (seed 1, of each version
    of the random streams: the split of the weights is the split fit makes)."""
    trained = {}

    def spy(estimator, module, tensors, *args):
        trained["tensors"] = tensors
        trained["result"] = train_module(estimator, module, tensors, *args)
        return trained["result"]

    monkeypatch.setattr(cl.estimators.vae, "train_module", spy)
    flags = np.isin(np.arange(96), in_train + in_valid)
    options = dict(epochs=1, validation_fraction=0.25, seed=1, random_streams=streams, **SMALL)
    VAE(**options).fit(darcy, FIELDS, labels="theta", labelled=flags)
    weights = trained["tensors"][2].numpy()
    train = trained["result"].train_indices.numpy()
    valid = trained["result"].valid_indices.numpy()
    assert sorted(set(np.flatnonzero(flags)) & set(valid)) == in_valid
    assert weights[in_train].tolist() == [36.0, 36.0]  # 72 training samples, 2 labelled
    assert weights[in_valid].tolist() == [12.0, 12.0]  # 24 validation samples, 2 labelled
    assert weights[train].mean() == 1.0 and weights[valid].mean() == 1.0
    assert weights[~flags].max() == 0.0
    with pytest.raises(InputDataError, match="all 2 labelled samples fall in the validation"):
        VAE(**options).fit(darcy, FIELDS, labels="theta", labelled=np.isin(np.arange(96), in_valid))


def test_decode_reads_the_latents_by_their_labels(darcy):
    """Latents reordered with their labels decode as before, not by position.

    ``vae.decode(z.isel(latent=[2, 0, 1]))`` fed each latent to another one's input: the
    pressure 0.0088 off on a field of standard deviation 0.0058.
    """
    vae = VAE(latent_dim=3, epochs=1, **SMALL).fit(darcy.isel(sample=slice(0, 16)), FIELDS)
    z = vae.encode(darcy.isel(sample=slice(0, 4)))
    expected = vae.decode(z)
    assert vae.decode(z.isel(latent=[2, 0, 1])).identical(expected)
    np.testing.assert_array_equal(vae.decode(z.drop_vars("latent")).pressure, expected.pressure)
    with pytest.raises(InputDataError, match=r"latents are labelled \[1, 2, 3\]"):
        vae.decode(z.assign_coords(latent=[1, 2, 3]))
