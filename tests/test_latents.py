import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from climlatent.models.latents import (
    LATENT_KINDS,
    GEVLatent,
    _gev_log_prob_at_quantile,
    gev_log_prob,
    gev_mean,
    gev_quantile,
    gev_sample,
    gev_variance,
    make_latent,
)

# (mu, sigma, xi): bounded upper tail, Gumbel, near-Gumbel (series branch), heavy tail
GEV_PARAMS = [
    (0.0, 1.0, -0.5),
    (1.5, 0.5, -0.2),
    (0.0, 1.0, 0.0),
    (-1.0, 2.0, 3e-5),
    (0.5, 0.7, 0.3),
]


def t64(*values):
    return [torch.tensor(v, dtype=torch.float64) for v in values]


def scipy_gev(mu, sigma, xi):
    return stats.genextreme(c=-xi, loc=mu, scale=sigma)  # scipy's c is -xi


def constant_gev_latent(mu, sigma, xi, **options) -> GEVLatent:
    """A one-dim GEV latent whose heads output (mu, sigma) whatever the features."""
    latent = GEVLatent(1, 1, xi=xi, **options).double()
    with torch.no_grad():
        for head in (latent.loc, latent.scale):
            head.weight.zero_()
        latent.loc.bias.fill_(mu)
        latent.scale.bias.fill_(math.log(math.expm1(sigma - latent.min_scale)))
    return latent


@pytest.mark.parametrize(("mu", "sigma", "xi"), GEV_PARAMS)
def test_gev_sample_matches_scipy(mu, sigma, xi):
    generator = torch.Generator().manual_seed(7)
    z = gev_sample(*t64(mu, sigma, xi), sample_shape=(20000,), generator=generator)
    assert stats.kstest(z.numpy(), scipy_gev(mu, sigma, xi).cdf).pvalue > 0.01


@pytest.mark.parametrize("xi", [-0.5, 0.0, 1e-6, 0.2])
def test_quantile_and_moments_gradcheck(xi):
    u = torch.tensor([0.01, 0.3, 0.7, 0.99], dtype=torch.float64)
    mu, sigma, shape = (p.requires_grad_() for p in t64(0.3, 1.2, xi))
    assert torch.autograd.gradcheck(lambda m, s, x: gev_quantile(u, m, s, x), (mu, sigma, shape))
    assert torch.autograd.gradcheck(gev_mean, (mu, sigma, shape))
    assert torch.autograd.gradcheck(gev_variance, (sigma, shape))


@pytest.mark.parametrize(("mu", "sigma", "xi"), GEV_PARAMS)
def test_log_prob_matches_scipy_inside_and_outside_support(mu, sigma, xi):
    z = np.linspace(mu - 6 * sigma, mu + 6 * sigma, 301)
    ours = gev_log_prob(torch.from_numpy(z), *t64(mu, sigma, xi)).numpy()
    np.testing.assert_allclose(ours, scipy_gev(mu, sigma, xi).logpdf(z), rtol=1e-9, atol=1e-9)
    assert np.isneginf(ours).any() == (xi < 0 or xi >= 0.2)  # grid crosses the endpoint


@pytest.mark.parametrize(("mu", "sigma", "xi"), GEV_PARAMS)
def test_log_prob_at_a_draw_is_the_density_there(mu, sigma, xi):
    u = torch.linspace(1e-6, 1 - 1e-6, 101, dtype=torch.float64)
    mu_, sigma_, xi_ = t64(mu, sigma, xi)
    direct = gev_log_prob(gev_quantile(u, mu_, sigma_, xi_), mu_, sigma_, xi_)
    torch.testing.assert_close(_gev_log_prob_at_quantile(u, sigma_, xi_), direct)


@pytest.mark.parametrize("xi", [-0.9, -0.5, 0.0, 2e-5, -2e-5, 0.1, 0.3, 0.45])
def test_mean_and_variance_match_scipy(xi):
    mean, var = scipy_gev(0.4, 1.3, xi).stats(moments="mv")
    np.testing.assert_allclose(float(gev_mean(*t64(0.4, 1.3, xi))), mean, rtol=1e-8)
    np.testing.assert_allclose(float(gev_variance(*t64(1.3, xi))), var, rtol=1e-6)


def test_moments_are_infinite_where_they_do_not_exist():
    xi = torch.tensor([0.7, 1.0])
    assert gev_mean(torch.tensor(0.0), torch.tensor(1.0), xi)[1].isinf()
    assert gev_variance(torch.tensor(1.0), xi).isinf().all()


def test_gaussian_kl_is_the_closed_form_and_matches_monte_carlo():
    torch.manual_seed(0)
    latent = make_latent("gaussian", 3, 5).double()
    h = torch.randn(4, 5, dtype=torch.float64)
    out = latent(h)
    mean, log_var = latent.loc(h), latent.log_var(h)
    q = torch.distributions.Normal(mean, torch.exp(log_var / 2))
    prior = torch.distributions.Normal(0.0, 1.0)
    torch.testing.assert_close(out.kl, torch.distributions.kl_divergence(q, prior).sum(-1))
    draws = q.sample((200000,))
    mc = (q.log_prob(draws) - prior.log_prob(draws)).sum(-1)
    assert torch.all((mc.mean(0) - out.kl).abs() < 5 * mc.std(0) / math.sqrt(len(mc)))


@pytest.mark.parametrize("learn_xi", [False, True])
def test_gev_monte_carlo_kl_is_unbiased(learn_xi):
    mu, sigma, xi = 0.5, 0.8, -0.5
    options = {"learn_xi": True, "xi_range": (-0.7, 0.2)} if learn_xi else {}
    latent = constant_gev_latent(mu, sigma, xi, **options)
    q = scipy_gev(mu, sigma, xi)
    upper = mu - sigma / xi

    def integrand(z):
        return q.pdf(z) * (q.logpdf(z) - stats.norm.logpdf(z))

    exact, _ = integrate.quad(integrand, -np.inf, upper, limit=200)
    torch.manual_seed(1)
    kl = latent(torch.zeros(100000, 1, dtype=torch.float64)).kl
    assert abs(kl.mean().item() - exact) < 4 * kl.std().item() / math.sqrt(len(kl))


def test_more_kl_samples_reduce_the_noise():
    torch.manual_seed(2)
    h = torch.zeros(20000, 1, dtype=torch.float64)
    one, eight = (constant_gev_latent(0.5, 0.8, -0.5, n_kl_samples=n) for n in (1, 8))
    assert one(h).kl.std() > 2 * eight(h).kl.std()


@pytest.mark.parametrize("kind", sorted(LATENT_KINDS))
def test_shapes_gradients_and_eval_mode(kind):
    torch.manual_seed(3)
    options = {"learn_xi": True} if kind.startswith("gev") else {}
    latent = make_latent(kind, latent_dim=3, in_features=6, **options)
    out = latent(torch.randn(4, 6))
    assert (out.z.shape, out.mean.shape, out.kl.shape) == ((4, 3), (4, 3), (4,))
    (out.z.sum() + out.kl.sum()).backward()
    for name, param in latent.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    evaluated = latent.eval()(torch.randn(4, 6))
    torch.testing.assert_close(evaluated.z, evaluated.mean)


@pytest.mark.parametrize("kind", ["gev", "gev_moments"])
def test_learned_xi_stays_in_its_range(kind):
    latent = make_latent(kind, 2, 4, learn_xi=True, xi=-0.3, xi_range=(-0.5, 0.2))
    optimiser = torch.optim.SGD(latent.parameters(), lr=1e3)
    for sign in (1.0, -1.0, 1.0):
        optimiser.zero_grad()
        (sign * latent.shape_xi.sum()).backward()
        optimiser.step()
        assert torch.all((latent.shape_xi >= -0.5) & (latent.shape_xi <= 0.2))  # float32 ends


def test_gev_is_skewed_and_gev_moments_is_not():
    torch.manual_seed(4)
    h = torch.zeros(20000, 1, dtype=torch.float64)
    gev = constant_gev_latent(0.0, 1.0, -0.5)
    moments = make_latent("gev_moments", 1, 1).double()
    moments.load_state_dict(gev.state_dict())
    with torch.no_grad():
        z_gev, z_moments = gev(h).z.numpy().ravel(), moments(h).z.numpy().ravel()
    scipy_skew = float(scipy_gev(0.0, 1.0, -0.5).stats(moments="s"))  # -0.631
    assert abs(stats.skew(z_gev) - scipy_skew) < 0.1
    assert abs(stats.skew(z_moments)) < 0.1
    assert z_gev.max() < 2.0 < z_moments.max()  # bounded above at mu - sigma / xi = 2
    mean, var = scipy_gev(0.0, 1.0, -0.5).stats(moments="mv")
    np.testing.assert_allclose([z_moments.mean(), z_moments.var()], [mean, var], atol=0.05)


def test_literal_variance_scale_multiplies_the_noise_by_the_variance():
    torch.manual_seed(5)
    literal = make_latent("gev_moments", 1, 1, xi=0.3, scale="variance").double()
    with torch.no_grad():
        literal.scale.weight.zero_()
        literal.scale.bias.fill_(1.0)
    h = torch.zeros(20000, 1, dtype=torch.float64)
    _, sigma, xi = literal.gev_params(h[:1])
    expected_std = gev_variance(sigma, xi).item()
    with torch.no_grad():
        assert abs(literal(h).z.std().item() / expected_std - 1) < 0.03


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("student", {}),
        ("gev", {"xi": 0.6}),
        ("gev", {"learn_xi": True, "xi": 0.3}),
        ("gev", {"n_kl_samples": 0}),
        ("gev_moments", {"scale": "sd"}),
    ],
)
def test_bad_options_raise(kind, options):
    with pytest.raises(ValueError):
        make_latent(kind, 2, 4, **options)
