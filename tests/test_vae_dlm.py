"""VAE-DLM: geometric terms against finite differences and exact flows, training, estimator."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import xarray as xr

import climlatent as cl
from climlatent.errors import InputDataError
from climlatent.estimators.vae_dlm import VAEDLM
from climlatent.models.vae_dlm import (
    GeometricFlowVAE,
    flow_residual,
    induced_metric,
    sphere_metric,
    time_derivative,
)
from climlatent.reference.burgers import generate
from climlatent.training import TrainingConfig, fit

SMALL = {"intrinsic_dim": 3, "extrinsic_dim": 5, "hidden": 16, "geometry_hidden": 8}


@pytest.fixture(scope="module")
def burgers():
    return generate(24, nx=32, nt=10, seed=3)


@pytest.fixture(scope="module")
def fitted(burgers):
    return VAEDLM(**SMALL, epochs=3, batch_size=8, progress=False, device="cpu").fit(burgers)


def _model(flow: bool = True, **kwargs) -> GeometricFlowVAE:
    torch.manual_seed(0)
    return GeometricFlowVAE(n_space=12, flow=flow, **{**SMALL, **kwargs})


def _trajectories(n: int = 6, n_times: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(n, n_times, 12, generator=generator)
    return x, torch.linspace(0, 1, n_times).expand(n, n_times).contiguous()


# -- the geometric terms ---------------------------------------------------------------


def test_induced_metric_matches_central_differences():
    model = _model().double()
    u = torch.randn(4, 3, dtype=torch.float64)
    t = torch.rand(4, dtype=torch.float64)
    metric = induced_metric(model.manifold_point, u, t)
    h = 1e-6
    columns = [
        (model.manifold_point(u + h * e, t) - model.manifold_point(u - h * e, t)) / (2 * h)
        for e in torch.eye(3, dtype=torch.float64)
    ]
    jacobian = torch.stack(columns, dim=-1)  # (batch, D, d)
    expected = jacobian.transpose(-1, -2) @ jacobian
    assert metric.shape == (4, 3, 3)
    torch.testing.assert_close(metric, expected, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(metric, metric.transpose(-1, -2))


def test_induced_metric_gradients_pass_gradcheck():
    """Second derivatives of the chart (what training backpropagates) vs finite differences."""
    model = _model().double()
    t = torch.rand(2, dtype=torch.float64)
    u = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: induced_metric(model.manifold_point, v, t), (u,))
    weight = model.chart[0].weight

    def term(w: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            weight.copy_(w)
        return induced_metric(model.manifold_point, u.detach(), t).pow(2).sum()

    loss = induced_metric(model.manifold_point, u.detach(), t).pow(2).sum()
    (grad,) = torch.autograd.grad(loss, weight)
    direction = torch.randn_like(weight)
    base, h = weight.detach().clone(), 1e-6
    numeric = (term(base + h * direction) - term(base - h * direction)) / (2 * h)
    torch.testing.assert_close((grad * direction).sum(), numeric, rtol=1e-6, atol=1e-8)


def test_time_derivative_matches_central_differences():
    model = _model().double()
    u, t = torch.randn(5, 3, dtype=torch.float64), torch.rand(5, dtype=torch.float64)
    value, rate = time_derivative(model.metric, u, t)
    h = 1e-6
    numeric = (model.metric(u, t + h) - model.metric(u, t - h)) / (2 * h)
    torch.testing.assert_close(value, model.metric(u, t))
    torch.testing.assert_close(rate, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_flow_residual_vanishes_on_exact_solution(alpha):
    """g(t) = g* + expm(-(Lambda + alpha I) t) (g0 - g*), g* = alpha (Lambda + alpha I)^-1 Sigma."""
    d = 3
    generator = torch.Generator().manual_seed(2)
    a = torch.randn(d, d, generator=generator, dtype=torch.float64)
    lam = a.T @ a
    b = torch.randn(d, d, generator=generator, dtype=torch.float64)
    g0 = b @ b.T + torch.eye(d, dtype=torch.float64)
    shifted = lam + alpha * torch.eye(d, dtype=torch.float64)

    def exact(u: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        steady = alpha * torch.linalg.solve(shifted, sphere_metric(u))
        decay = torch.linalg.matrix_exp(-shifted * t[:, None, None])
        return steady + decay @ (g0 - steady)

    def constant(u: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return lam.expand(len(t), d, d)

    u = torch.randn(6, d, generator=generator, dtype=torch.float64)
    t = torch.rand(6, generator=generator, dtype=torch.float64)
    residual = flow_residual(exact, constant, u, t, alpha)
    assert residual.abs().max() < 1e-10
    stale = flow_residual(lambda u, t: exact(u, 0 * t), constant, u, t, alpha)
    assert stale.abs().max() > 1e-2  # a non-solution does not vanish


def test_sphere_metric_is_the_round_sphere():
    u = torch.tensor([[1.0, 0.0]])
    torch.testing.assert_close(sphere_metric(u), torch.eye(2)[None])


# -- the training loss -----------------------------------------------------------------


def test_vanilla_baseline_has_flow_terms_zero_weighted():
    vanilla, dlm = _model(flow=False, gamma_geo=5.0, gamma_metric=7.0), _model()
    dlm.load_state_dict(vanilla.state_dict())
    assert (vanilla.gamma_geo, vanilla.gamma_metric) == (0.0, 0.0)
    batch = _trajectories()
    torch.manual_seed(4)
    plain = vanilla.training_losses(batch)
    torch.manual_seed(4)
    full = dlm.training_losses(batch)
    assert sorted(plain) == ["kl", "loss", "reconstruction"]
    assert torch.equal(plain["reconstruction"], full["reconstruction"])
    assert torch.equal(plain["kl"], full["kl"])
    n = vanilla.n_space
    torch.testing.assert_close(plain["loss"], (n * plain["reconstruction"] + plain["kl"]) / n)
    extra = (full["geometric_flow"] + full["metric"]) / n
    torch.testing.assert_close(full["loss"] - plain["loss"], extra)
    plain["loss"].backward()
    for net in (vanilla.metric_net, vanilla.generator_net):
        assert all(p.grad is None for p in net.parameters())
    estimator = VAEDLM(flow=False, **SMALL)
    estimator.n_space_ = 12
    built = estimator._build()  # the estimator's switch reaches the module
    assert not built.flow and (built.gamma_geo, built.gamma_metric) == (0.0, 0.0)


def test_losses_decrease_on_tiny_burgers(burgers):
    x = burgers.u.values.astype(np.float32)
    x = (x - x.mean()) / x.std()
    t = np.broadcast_to(burgers.t.values.astype(np.float32), x.shape[:2]).copy()
    torch.manual_seed(0)
    model = GeometricFlowVAE(n_space=32, **SMALL)
    config = TrainingConfig(
        epochs=40, batch_size=8, lr=3e-3, progress=False, validation_fraction=0, device="cpu"
    )
    history = fit(model, (torch.from_numpy(x), torch.from_numpy(t)), config).history
    first, last = history.iloc[:3].mean(), history.iloc[-3:].mean()
    for key in ("loss", "reconstruction", "geometric_flow"):
        assert last[f"train_{key}"] < first[f"train_{key}"], key


# -- the estimator -----------------------------------------------------------------------


def test_estimator_outputs_keep_the_input_layout(fitted, burgers):
    rec = fitted.reconstruct(burgers)
    assert rec["u"].dims == burgers["u"].dims
    assert rec["u"].shape == burgers["u"].shape
    for dim in burgers["u"].dims:
        np.testing.assert_array_equal(rec[dim].values, burgers[dim].values)
        assert rec[dim].attrs == burgers[dim].attrs
    assert rec["u"].attrs == burgers["u"].attrs
    assert rec.attrs["title"] == burgers.attrs["title"]
    assert rec.attrs["history"].endswith("reconstruct(ds)")
    latent = fitted.encode(burgers)
    assert latent.dims == ("sample", "latent") and latent.shape == (24, 3)
    decoded = fitted.decode(latent, burgers.t.values)["u"]
    np.testing.assert_allclose(decoded.values, rec["u"].values, rtol=1e-5, atol=1e-6)
    half = fitted.emulate(burgers, [0.5])["u"]
    np.testing.assert_allclose(half.values[:, 0], rec["u"].sel(t=0.5).values, atol=1e-5)
    assert list(fitted.history_.columns[:4]) == [
        "train_reconstruction",
        "train_kl",
        "train_geometric_flow",
        "train_metric",
    ]


def test_fit_is_reproducible_from_the_seed(fitted, burgers):
    torch.manual_seed(123)  # the global state must not matter
    again = VAEDLM(**SMALL, epochs=3, batch_size=8, progress=False, device="cpu").fit(burgers)
    np.testing.assert_array_equal(again.encode(burgers).values, fitted.encode(burgers).values)


def test_save_load_encode_is_bit_identical(fitted, burgers, tmp_path):
    fitted.save(tmp_path / "dlm.clm")
    loaded = cl.load(tmp_path / "dlm.clm")
    assert isinstance(loaded, VAEDLM) and loaded.get_config() == fitted.get_config()
    np.testing.assert_array_equal(loaded.encode(burgers).values, fitted.encode(burgers).values)
    assert loaded.reconstruct(burgers).equals(fitted.reconstruct(burgers))


def test_bad_inputs_name_the_variable(fitted, burgers):
    with pytest.raises(InputDataError, match="'v'"):
        VAEDLM(epochs=1, progress=False).fit(burgers, "v")
    with pytest.raises(InputDataError, match="'viscosity'"):
        VAEDLM(epochs=1, progress=False).fit(burgers, "viscosity")
    broken = burgers.copy(deep=True)
    broken["u"][0, 2, 5] = np.nan
    with pytest.raises(InputDataError, match="'u' has 1 NaN"):
        VAEDLM(epochs=1, progress=False).fit(broken, "u")
    with pytest.raises(InputDataError, match="'u' has 1 NaN"):
        fitted.encode(broken)
    with pytest.raises(InputDataError, match="'u'"):
        fitted.encode(burgers.drop_vars("u"))
    with pytest.raises(InputDataError, match="starts at t=0.1"):
        fitted.emulate(burgers.isel(t=slice(1, None)))
    with pytest.raises(InputDataError, match="space dim 'x' of length 32"):
        fitted.encode(burgers.isel(x=slice(0, 16)))
    with pytest.raises(InputDataError, match="no coordinate for its time dim"):
        fitted.encode(burgers.drop_vars("t"))


def test_time_in_other_units_is_converted_or_refused(burgers):
    """The dynamics' time is the time coordinate's value, read in the fitted units.

    Fitted on t in s (0..1) and given t in ms (0..1000), the model decoded at tau up to
    1000 with no complaint (0.019 off on a field of scale 0.1).
    """
    seconds = burgers.assign_coords(t=burgers.t.assign_attrs(units="s"))
    model = VAEDLM(**SMALL, epochs=2, batch_size=8, progress=False, device="cpu").fit(seconds)
    expected = model.emulate(seconds)["u"]
    millis = seconds.assign_coords(t=(seconds.t * 1000).assign_attrs(units="ms"))
    out = model.emulate(millis)["u"]
    np.testing.assert_array_equal(out.values, expected.values)
    np.testing.assert_array_equal(out.t.values, millis.t.values)
    assert out.t.attrs["units"] == "ms"
    half = model.emulate(millis, [500.0])["u"]
    np.testing.assert_array_equal(half.values, model.emulate(seconds, [0.5])["u"].values)
    assert half.t.attrs["units"] == "ms"
    metric = model.latent_metric(millis, times=[0.0, 1000.0])
    np.testing.assert_array_equal(
        metric["learned"].values, model.latent_metric(seconds, times=[0.0, 1.0])["learned"].values
    )
    assert metric.t.attrs["units"] == "ms"
    with pytest.raises(InputDataError, match="time coordinate 't' .* in 'm', which cannot"):
        model.emulate(seconds.assign_coords(t=seconds.t.assign_attrs(units="m")))
    with pytest.raises(InputDataError, match="time coordinate 't' .* no 'units'"):
        model.emulate(seconds.assign_coords(t=seconds.t.drop_attrs()))
    late = seconds.assign_coords(t=(seconds.t + 3600).assign_attrs(units="s"))
    with pytest.raises(InputDataError, match="starts at t=3600"):
        model.emulate(late.assign_coords(t=(late.t / 3600).assign_attrs(units="h")))


# -- the seed's three models and its ablation: each loss term against a hand computation -

WEIGHTS = {"alpha": 0.7, "beta": 1.3, "flow_alpha": 0.6, "gamma_geo": 2.0, "gamma_metric": 3.0}
VARIANTS = {
    "VAE-DLM": {"flow": True},
    "no steady term": {"flow": True, "steady": False},
    "extended VAE": {"flow": False},
    "VAE": {"flow": False, "manifold": False},
}


def _hand_metric(model: GeometricFlowVAE, ut: torch.Tensor) -> torch.Tensor:
    """g = L L^T, L lower triangular filled row by row from the metric network's outputs."""
    d = model.intrinsic_dim
    entries, lower, k = model.metric_net(ut), torch.zeros(d, d, dtype=ut.dtype), 0
    for row in range(d):
        for col in range(row + 1):
            lower[row, col] = entries[k]
            k += 1
    return lower @ lower.T


def _hand_terms(model, x, times, noise, index) -> dict[str, torch.Tensor]:
    """The seed's loss written out per trajectory and time, derivatives by differences."""
    d, h = model.intrinsic_dim, 1e-6
    encoded = model.encoder(x[:, 0])
    mean, log_var = encoded[:, :d], encoded[:, d:].clamp(-12.0, 8.0)
    u = mean + noise * torch.exp(0.5 * log_var)
    kl = 0.5 * (mean**2 + torch.exp(log_var) - 1.0 - log_var).sum(-1)
    s = model.output_log_var
    nll, geo, met = torch.zeros(len(x)), torch.zeros(len(x)), torch.zeros(len(x))
    nll, geo, met = (v.to(x.dtype) for v in (nll, geo, met))
    for i, row in enumerate(index):
        for j in row:
            ut = torch.cat([u[i], times[i, j, None]])
            z = model.chart(ut) if model.manifold else ut
            error = x[i, j] - model.decoder(z)
            nll[i] += 0.5 * (np.log(2 * np.pi) + s + error**2 / torch.exp(s)).sum() / len(row)
            if not model.flow:
                continue
            step = torch.zeros(d + 1, dtype=x.dtype)
            step[d] = h
            rate = (_hand_metric(model, ut + step) - _hand_metric(model, ut - step)) / (2 * h)
            g = _hand_metric(model, ut)
            a = model.generator_net(ut).view(d, d)
            residual = rate + a.T @ a @ g
            if model.steady:
                sphere = 4.0 / (1.0 + u[i] @ u[i]) ** 2 * torch.eye(d, dtype=x.dtype)
                residual = residual + model.flow_alpha * (g - sphere)
            columns = []
            for e in torch.eye(d, dtype=x.dtype):
                shift = torch.cat([h * e, torch.zeros(1, dtype=x.dtype)])
                columns.append((model.chart(ut + shift) - model.chart(ut - shift)) / (2 * h))
            jacobian = torch.stack(columns, dim=-1)
            geo[i] += residual.pow(2).sum() / len(row)
            met[i] += (g - jacobian.T @ jacobian).pow(2).sum() / len(row)
    objective = model.alpha * nll + model.beta * kl
    objective = objective + model.gamma_geo * geo + model.gamma_metric * met
    terms = {"reconstruction": nll.mean() / model.n_space, "kl": kl.mean()}
    if model.flow:
        terms["geometric_flow"], terms["metric"] = geo.mean(), met.mean()
    terms["loss"] = objective.mean() / model.n_space
    return terms


def _draws(n: int = 3, n_times: int = 5, k: int = 2) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(n, n_times, 12, generator=generator, dtype=torch.float64)
    times = torch.linspace(0, 1, n_times, dtype=torch.float64).expand(n, n_times).contiguous()
    noise = torch.randn(n, SMALL["intrinsic_dim"], generator=generator, dtype=torch.float64)
    index = torch.randint(0, n_times, (n, k), generator=generator)
    return x, times, noise, index


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_variant_loss_equals_the_hand_computation(variant):
    model = _model(**VARIANTS[variant], **WEIGHTS).double()
    draws = _draws()
    terms = model.loss_terms(*draws)
    with torch.no_grad():
        expected = _hand_terms(model, *draws)
    assert sorted(terms) == sorted(expected)
    for key, value in expected.items():
        torch.testing.assert_close(terms[key], value, rtol=1e-6, atol=1e-9, msg=key)


def test_each_variant_changes_only_its_own_term():
    draws = _draws()
    full = _model(**WEIGHTS).double()
    terms = {"VAE-DLM": full.loss_terms(*draws)}
    for variant in ("no steady term", "extended VAE", "VAE"):
        model = _model(**VARIANTS[variant], **WEIGHTS).double()
        # the same weights wherever the architectures share a network
        shared = {k: v for k, v in full.state_dict().items() if k in model.state_dict()}
        shapes = {k: v.shape for k, v in model.state_dict().items()}
        shared = {k: v for k, v in shared.items() if shapes[k] == v.shape}
        model.load_state_dict(shared, strict=False)
        terms[variant] = model.loss_terms(*draws)
    dlm, ablation = terms["VAE-DLM"], terms["no steady term"]
    for key in ("reconstruction", "kl", "metric"):  # the ablation: only the flow residual
        assert torch.equal(dlm[key], ablation[key]), key
    assert not torch.isclose(dlm["geometric_flow"], ablation["geometric_flow"])
    extended = terms["extended VAE"]  # the extended VAE: the geometric terms gone
    assert torch.equal(extended["reconstruction"], dlm["reconstruction"])
    assert torch.equal(extended["kl"], dlm["kl"])
    n, extra = 12, 2.0 * dlm["geometric_flow"] + 3.0 * dlm["metric"]
    torch.testing.assert_close(dlm["loss"] - extended["loss"], extra / n)
    vae = terms["VAE"]  # the traditional VAE: same encoder and KL, another decoder
    assert torch.equal(vae["kl"], dlm["kl"])
    assert not torch.isclose(vae["reconstruction"], dlm["reconstruction"])
    torch.testing.assert_close(vae["loss"], (0.7 * n * vae["reconstruction"] + 1.3 * vae["kl"]) / n)


def test_traditional_vae_has_no_manifold_and_refuses_the_flow():
    vae = _model(flow=False, manifold=False)
    assert not any(hasattr(vae, net) for net in ("chart", "metric_net", "generator_net"))
    assert vae.decoder[0].in_features == SMALL["intrinsic_dim"] + 1
    with pytest.raises(ValueError, match="flow=True needs manifold=True"):
        _model(flow=True, manifold=False)
    estimator = VAEDLM(flow=True, steady=False, **SMALL)
    estimator.n_space_ = 12
    built = estimator._build()  # the estimator's switches reach the module
    assert built.flow and not built.steady and built.manifold
    estimator.flow, estimator.manifold = False, False
    assert not estimator._build().manifold


def test_training_losses_are_loss_terms_of_their_draws():
    model = _model()
    x, times = _trajectories()
    torch.manual_seed(5)
    drawn = model.training_losses((x, times))
    torch.manual_seed(5)
    noise = torch.randn(len(x), SMALL["intrinsic_dim"])
    index = torch.randint(0, x.shape[1], (len(x), model.times_per_sample))
    again = model.loss_terms(x, times, noise, index)
    assert all(torch.equal(drawn[key], again[key]) for key in drawn)


# -- prior sampling ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(burgers_large):
    return VAEDLM(**{**SMALL, "hidden": 32}, flow=False, epochs=200, lr=3e-3, batch_size=16,
                  progress=False, device="cpu").fit(burgers_large)  # fmt: skip


@pytest.fixture(scope="module")
def burgers_large():
    return generate(128, nx=32, nt=10, seed=3)


def test_sample_layout_and_seeds(fitted, burgers):
    drawn = fitted.sample(7, seed=3)
    u = drawn["u"]
    assert u.dims == ("realization", "t", "x") and u.shape == (7, 11, 32)
    np.testing.assert_array_equal(u.realization.values, np.arange(7))
    assert u.realization.attrs["long_name"] == "prior draw"
    np.testing.assert_array_equal(u.t.values, burgers.t.values)
    np.testing.assert_array_equal(u.x.values, burgers.x.values)
    attrs = dict(u.attrs)
    assert attrs.pop("comment").startswith("decoder mean of each prior draw")
    assert attrs == burgers.u.attrs and u.t.attrs == burgers.t.attrs
    assert drawn.attrs["history"].endswith("sample(7, seed=3, noise=False)")
    assert drawn.identical(fitted.sample(7, seed=3))
    assert not np.allclose(fitted.sample(7, seed=4)["u"], u)
    assert fitted.sample(2, times=[0.0, 0.5])["u"].sizes["t"] == 2
    for times in ([0.5, 0.0], [0.0, 0.5, 0.5]):  # came out as the t coordinate as given
        with pytest.raises(InputDataError, match="times must increase strictly"):
            fitted.sample(2, times=times)
    for n, seed, message in [
        (0, 0, "number of draws"),
        (True, 0, "number of draws"),
        (2, 1.5, "seed"),
    ]:
        with pytest.raises(ValueError, match=f"{message} must be"):  # were numpy TypeErrors
            fitted.sample(n, seed)  # naming neither ("an integer is required")


def test_sample_prior_decodes_through_the_decoder(fitted):
    """The realisations are decode(u) of standard-normal draws from the seed."""
    drawn = fitted.sample(4, seed=11, times=[0.0, 1.0])["u"]
    u = np.random.default_rng(11).standard_normal((4, SMALL["intrinsic_dim"]))
    latent = xr.DataArray(u.astype(np.float32), dims=("realization", "latent"))
    decoded = fitted.decode(latent, [0.0, 1.0])["u"]
    np.testing.assert_allclose(drawn.values, decoded.values, rtol=1e-6, atol=1e-6)


def test_sample_noise_is_the_learned_output_noise(fitted):
    """``noise=True`` adds N(0, sigma^2) to the decoder means, sigma the likelihood's
    (exp(output_log_var / 2) in standardised units, times the data's std); draw i's
    noise depends on seed and i alone."""
    means = fitted.sample(64, seed=5)["u"]
    noisy = fitted.sample(64, seed=5, noise=True)["u"]
    sigma = float(fitted.std_) * np.exp(0.5 * float(fitted.module_.output_log_var))
    residual = (noisy - means).values.astype(np.float64) / sigma  # 64 x 11 x 32 values
    assert abs(residual.mean()) < 0.02 and abs(residual.std() - 1) < 0.02
    assert abs(np.corrcoef(residual.ravel(), means.values.ravel())[0, 1]) < 0.03
    assert "without the decoder's output noise" in means.attrs["comment"]
    assert "plus the decoder's output noise" in noisy.attrs["comment"]
    first = fitted.sample(3, seed=5, noise=True)["u"]
    np.testing.assert_allclose(first.values, noisy.values[:3], rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_sampled_trajectories_look_like_the_training_data(trained, burgers_large):
    drawn, data = trained.sample(256, seed=0)["u"], burgers_large["u"]
    inside = (drawn >= data.min()) & (drawn <= data.max())
    assert float(inside.mean()) > 0.99
    ratio = drawn.std("x").mean("realization") / data.std("x").mean("sample")
    assert 0.8 < float(ratio.min()) and float(ratio.max()) < 1.25  # energy at every time
    assert float(abs(drawn.mean("x")).max()) < 0.05  # Burgers conserves mass 0
    spread = float(drawn.std("realization").mean() / data.std("sample").mean())
    assert 0.4 < spread < 1.5  # draws differ as trajectories do, not collapsed to one


def test_latent_metric_is_the_chart_metric_at_the_encodings(fitted, burgers):
    times = [0.0, 0.5]
    metric = fitted.latent_metric(burgers, times=times)
    assert metric["induced"].dims == ("sample", "t", "latent_i", "latent_j")
    np.testing.assert_array_equal(metric.t.values, times)
    chart = copy.deepcopy(fitted.module_).double()
    u = torch.from_numpy(fitted.encode(burgers).values.astype(np.float64))
    h = 1e-6
    for k, time in enumerate(times):
        t = torch.full((len(u),), time / float(burgers.t[-1]), dtype=torch.float64)
        with torch.no_grad():
            columns = [(chart.manifold_point(u + h * e, t) - chart.manifold_point(u - h * e, t))
                       / (2 * h) for e in torch.eye(3, dtype=torch.float64)]  # fmt: skip
            jacobian = torch.stack(columns, dim=-1)
            learned = chart.metric(u, t)
        expected = (jacobian.transpose(-1, -2) @ jacobian).numpy()
        np.testing.assert_allclose(metric["induced"][:, k], expected, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(metric["learned"][:, k], learned.numpy(), rtol=1e-4, atol=1e-6)
    assert np.linalg.eigvalsh(metric["learned"].values).min() > -1e-6  # g = L L^T
    vae = VAEDLM(**SMALL, flow=False, manifold=False, epochs=1, progress=False, device="cpu")
    with pytest.raises(ValueError, match="no latent manifold"):
        vae.fit(burgers).latent_metric(burgers)
    assert "learned" not in VAEDLM(**SMALL, flow=False, epochs=1, progress=False,
                                   device="cpu").fit(burgers).latent_metric(burgers)  # fmt: skip


def test_decode_reads_the_local_coordinates_by_their_labels(fitted, burgers):
    """``decode(u.isel(latent=[2, 0, 1]))`` read the latents by position (0.0032 off)."""
    u = fitted.encode(burgers.isel(sample=slice(0, 4)))
    expected = fitted.decode(u, [0.0, 1.0])
    assert fitted.decode(u.isel(latent=[2, 0, 1]), [0.0, 1.0]).identical(expected)
