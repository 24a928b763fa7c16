"""VED (model, estimator, study) and regularised CCA against independent answers."""

import copy
import math

import numpy as np
import pytest
import torch
import xarray as xr
from scipy import stats
from sklearn.cross_decomposition import CCA
from sklearn.linear_model import Ridge

import climlatent as cl
from climlatent.cca import CCARegression
from climlatent.draw_addresses import block_rows, row_keys
from climlatent.draws import standard_normal_rows
from climlatent.errors import InputDataError, NotFittedError
from climlatent.estimators.ved import VED
from climlatent.models.ved import (
    FieldConvEncoder,
    FieldMLPDecoder,
    FieldMLPEncoder,
    VariationalEncoderDecoder,
    aggregate_covariance,
    covariance_penalty,
)
from climlatent.reference.darcy import generate
from climlatent.studies import ved_study
from climlatent.training import TrainingConfig, fit

# -- the covariance penalty ----------------------------------------------------------


def test_aggregate_covariance_and_penalty_match_numpy():
    rng = np.random.default_rng(0)
    mean, log_var = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    expected = np.cov(mean.T, bias=True) + np.diag(np.exp(log_var).mean(0))
    got = aggregate_covariance(torch.tensor(mean), torch.tensor(log_var))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    penalty = covariance_penalty(torch.tensor(mean), torch.tensor(log_var))
    np.testing.assert_allclose(float(penalty), ((expected - np.eye(4)) ** 2).sum(), rtol=1e-12)


def _whitened(rng, n, r, variance):
    """Rows whose mean is 0 and whose (1/n) covariance is exactly variance * I."""
    a = rng.normal(size=(n, r)) @ rng.normal(size=(r, r))
    a -= a.mean(0)
    values, vectors = np.linalg.eigh(a.T @ a / n)
    return a @ vectors @ np.diag(values**-0.5) @ vectors.T * math.sqrt(variance)


def test_covariance_penalty_vanishes_on_exactly_whitened_codes():
    rng = np.random.default_rng(1)
    # means with covariance 0.75 I and posterior variances 0.25: the mixture is whitened
    mean = torch.tensor(_whitened(rng, 64, 5, 0.75))
    log_var = torch.full((64, 5), math.log(0.25), dtype=torch.float64)
    assert float(covariance_penalty(mean, log_var)) < 1e-24
    # deterministic codes whitened to I
    mean = torch.tensor(_whitened(rng, 64, 5, 1.0))
    assert float(covariance_penalty(mean, torch.full((64, 5), -80.0, dtype=torch.float64))) < 1e-24
    # and it sees a correlation: 2 * rho^2 for one off-diagonal pair
    mixed = mean.clone()
    mixed[:, 1] = 0.6 * mean[:, 0] + 0.8 * mean[:, 1]
    got = float(covariance_penalty(mixed, torch.full((64, 5), -80.0, dtype=torch.float64)))
    assert got == pytest.approx(2 * 0.6**2, rel=1e-9)


# -- the VED loss against scipy ------------------------------------------------------


def _tiny_ved(beta=1.0, lam=0.0, r=2, n_in=10, n_out=6, hidden=32):
    torch.manual_seed(0)
    encoder = FieldMLPEncoder((n_in,), 2 * r, hidden=hidden)
    decoder = FieldMLPDecoder(r, (n_out,), hidden=hidden)
    return VariationalEncoderDecoder(encoder, decoder, r, n_out, beta=beta, covariance_weight=lam)


def test_ved_loss_terms_match_scipy():
    ved = _tiny_ved(beta=0.7, lam=2.5).double()
    with torch.no_grad():
        ved.output_log_var.copy_(torch.linspace(-1.0, 0.5, 6, dtype=torch.float64))
    x, y = torch.randn(16, 10, dtype=torch.float64), torch.randn(16, 6, dtype=torch.float64)
    torch.manual_seed(5)
    losses = {k: v.item() for k, v in ved.training_losses((x, y)).items()}
    with torch.no_grad():
        mean, log_var = ved.posterior(x)
        torch.manual_seed(5)
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        decoded = ved.decode(z).numpy()
    mu, sd = mean.numpy(), np.exp(0.5 * log_var.numpy())
    out_sd = np.exp(0.5 * np.linspace(-1.0, 0.5, 6))
    nll = -stats.norm.logpdf(y.numpy(), decoded, out_sd).sum(1)
    # KL(q || N(0, 1)) = cross-entropy - entropy, per dimension
    kl = (0.5 * np.log(2 * np.pi) + 0.5 * (mu**2 + sd**2) - stats.norm(mu, sd).entropy()).sum(1)
    cov = np.cov(mu.T, bias=True) + np.diag((sd**2).mean(0))
    penalty = ((cov - np.eye(2)) ** 2).sum()
    assert losses["reconstruction"] == pytest.approx(nll.mean() / 6, rel=1e-10)
    assert losses["kl"] == pytest.approx(kl.mean(), rel=1e-10)
    assert losses["covariance"] == pytest.approx(penalty, rel=1e-10)
    expected = (nll.mean() + 0.7 * kl.mean() + 2.5 * penalty) / 6
    assert losses["loss"] == pytest.approx(expected, rel=1e-10)


def test_ved_learns_a_linear_gaussian_map():
    """x (10-D) -> 2 latent factors -> y (6-D) + noise of variance 0.01."""
    rng = np.random.default_rng(0)
    w, c = rng.normal(size=(10, 2)) / np.sqrt(10), rng.normal(size=(2, 6))

    def draw(n):
        x = rng.normal(size=(n, 10))
        clean = x @ w @ c
        return x, clean, clean + 0.1 * rng.normal(size=clean.shape)

    x, _, y = draw(2000)
    ved = _tiny_ved(beta=1.0, lam=1.0)
    tensors = (torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
    config = TrainingConfig(epochs=25, batch_size=64, lr=3e-3, progress=False, device="cpu")
    fit(ved, tensors, config)
    x_test, clean_test, _ = draw(500)
    with torch.no_grad():
        prediction = ved.predict(torch.tensor(x_test, dtype=torch.float32)).numpy()
    mse = ((prediction - clean_test) ** 2).mean()
    print(f"linear-Gaussian VED: test MSE / variance = {mse / clean_test.var():.4f}")
    assert mse < 0.08 * clean_test.var(), (mse, clean_test.var())


# -- CCA -----------------------------------------------------------------------------


def test_cca_recovers_known_canonical_correlations():
    """Pairs (s_k, t_k) with correlation rho_k, mixed by invertible maps on each side."""
    rng = np.random.default_rng(2)
    n, rho = 20000, np.array([0.9, 0.6, 0.3])
    s = rng.normal(size=(n, 4))  # the 4th column has no partner
    t = rho * s[:, :3] + np.sqrt(1 - rho**2) * rng.normal(size=(n, 3))
    x, y = s @ rng.normal(size=(4, 4)) + 3.0, t @ rng.normal(size=(3, 3)) - 1.0
    cca = CCARegression(3, regularisation=0.0).fit(x, y)
    np.testing.assert_allclose(cca.canonical_correlations_, rho, atol=0.015)
    u, v = cca.transform(x), cca.transform_y(y)
    np.testing.assert_allclose(np.cov(u.T), np.eye(3), atol=1e-10)  # whitened exactly
    np.testing.assert_allclose(np.cov(v.T), np.eye(3), atol=1e-10)
    cross = (u - u.mean(0)).T @ (v - v.mean(0)) / (n - 1)
    np.testing.assert_allclose(cross, np.diag(cca.canonical_correlations_), atol=1e-10)


def test_cca_matches_sklearn_and_least_squares():
    rng = np.random.default_rng(3)
    n = 300
    x = rng.normal(size=(n, 5)) @ rng.normal(size=(5, 5))
    y = x[:, :4] @ rng.normal(size=(4, 4)) + 2 * rng.normal(size=(n, 4))
    cca = CCARegression(4, regularisation=0.0).fit(x, y)
    reference = CCA(n_components=4, max_iter=5000, tol=1e-12).fit(x, y)
    xs, ys = reference.transform(x, y)
    correlations = [np.corrcoef(xs[:, k], ys[:, k])[0, 1] for k in range(4)]
    np.testing.assert_allclose(cca.canonical_correlations_, correlations, rtol=1e-6)
    # every pair kept: ordinary least squares; with a ridge: ridge regression
    design = np.column_stack([np.ones(n), x])
    ols = design @ np.linalg.lstsq(design, y, rcond=None)[0]
    np.testing.assert_allclose(cca.emulate(x), ols, atol=1e-10)
    ridged = CCARegression(4, regularisation=0.3).fit(x, y)
    ridge = Ridge(alpha=ridged.x_ridge_ * (n - 1)).fit(x, y).predict(x)
    np.testing.assert_allclose(ridged.emulate(x), ridge, atol=1e-10)
    # the pairs are nested: a rank-2 fit is the first two pairs of the rank-4 one
    np.testing.assert_allclose(
        CCARegression(2, 0.3).fit(x, y).emulate(x), ridged.emulate(x, 2), atol=1e-10
    )


def test_cca_handles_more_columns_than_samples_and_refuses_bad_input():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(40, 300)), rng.normal(size=(40, 200))
    cca = CCARegression(10, regularisation=0.1).fit(x, y)
    assert cca.x_weights_.shape == (300, 10) and cca.emulate(x).shape == (40, 200)
    assert np.all(np.diff(cca.canonical_correlations_) <= 0)
    with pytest.raises(ValueError, match="n_components=50"):
        CCARegression(50).fit(x, y)
    with pytest.raises(ValueError, match="Y holds NaN"):
        CCARegression(2).fit(x, np.where(y > 2, np.nan, y))
    with pytest.raises(ValueError, match="samples"):
        CCARegression(2).fit(x, y[:10])


def test_cca_takes_a_column_copied_with_an_offset_as_no_new_direction():
    # the copy is 1e-11 off after centring: a third direction, whitened to unit variance,
    # put the emulation 0.007 off least squares on the two columns, and x = (a, a + 1e5)
    # had a second pair (correlation 0.006) where it has one direction
    rng = np.random.default_rng(6)
    base = rng.normal(size=(100, 2))
    y = base @ [[1.0, 0.0], [0.5, -1.0]] + rng.normal(size=(100, 2))
    x = np.column_stack([base, base[:, 1] + 1e5])
    cca = CCARegression(2, regularisation=0.0).fit(x, y)
    new = rng.normal(size=(20, 2))
    design = np.column_stack([np.ones(100), base])
    reference = np.column_stack([np.ones(20), new]) @ np.linalg.lstsq(design, y, rcond=None)[0]
    np.testing.assert_allclose(
        cca.emulate(np.column_stack([new, new[:, 1] + 1e5])), reference, atol=1e-9
    )
    with pytest.raises(ValueError, match="between 1 and 1"):  # one direction in x
        CCARegression(2, regularisation=0.0).fit(x[:, 1:], y)


def test_cca_takes_the_float32_rounding_of_an_offset_copy_as_no_direction():
    # float32 x = (a, b, b + 1e5): the copy is its rounding (1e-3) off after centring; it
    # was a third direction with a third pair (correlation 0.068), the emulation 0.30
    # off CCA on the two stored columns in float64, now 0.0017 (the rounding)
    rng = np.random.default_rng(6)
    base = rng.normal(size=(100, 2))
    y = np.column_stack([base @ [[1.0, 0.0], [0.5, -1.0]], np.zeros(100)])
    y += rng.normal(size=(100, 3))
    x = np.column_stack([base, base[:, 1] + 1e5]).astype(np.float32)
    reference = CCARegression(2, regularisation=0.0).fit(x[:, :2].astype(np.float64), y)
    cca = CCARegression(2, regularisation=0.0).fit(x, y)
    new = rng.normal(size=(20, 2))
    new = np.column_stack([new, new[:, 1] + 1e5]).astype(np.float32)
    np.testing.assert_allclose(cca.emulate(new), reference.emulate(new[:, :2]), atol=0.005)
    with pytest.raises(ValueError, match="between 1 and 2"):  # two directions in x
        CCARegression(3, regularisation=0.0).fit(x, y)


def test_cca_signs_follow_the_data_not_the_order_of_its_samples():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(200, 5))
    y = x[:, :3] + rng.normal(size=(200, 3))
    cca = CCARegression(3, regularisation=0.0).fit(x, y)
    peaks = cca.x_weights_[np.argmax(np.abs(cca.x_weights_), axis=0), np.arange(3)]
    assert np.all(peaks > 0)  # the largest x weight of each pair is positive
    order = rng.permutation(200)
    again = CCARegression(3, regularisation=0.0).fit(x[order], y[order])
    np.testing.assert_allclose(again.x_weights_, cca.x_weights_, atol=1e-12)
    np.testing.assert_allclose(again.transform_y(y), cca.transform_y(y), atol=1e-12)


# -- the estimator -------------------------------------------------------------------


def _fields(n=96, seed=0):
    """Input k on an 8 x 8 grid from 3 factors; output p = tanh of them on a 5 x 7 grid."""
    rng = np.random.default_rng(seed)
    basis_in = np.random.default_rng(10).normal(size=(3, 8, 8))
    basis_out = np.random.default_rng(11).normal(size=(3, 5, 7))
    theta = rng.normal(size=(n, 3))
    k = np.einsum("nf,fyx->nyx", theta, basis_in)
    p = np.tanh(np.einsum("nf,fyx->nyx", theta, basis_out)) * 50.0 + 1000.0
    return xr.Dataset(
        {
            "k": (("sample", "y", "x"), k, {"units": "1", "long_name": "log-permeability"}),
            "p": (("sample", "yc", "xc"), p, {"units": "Pa", "long_name": "pressure"}),
        },
        coords={"sample": np.arange(n) + 100, "y": np.linspace(0, 1, 8),
                "x": np.linspace(0, 1, 8), "yc": np.arange(5.0), "xc": np.arange(7.0)},
        attrs={"title": "toy"},
    )  # fmt: skip


SMALL = dict(latent_dim=3, hidden=32, epochs=40, batch_size=32, lr=3e-3, progress=False)


@pytest.fixture(scope="module")
def fitted():
    train = _fields(400)
    return VED(**SMALL, device="cpu").fit(train, target="p", proxy="k"), _fields(64, seed=1)


def test_estimator_predicts_on_another_grid_with_metadata(fitted):
    ved, test = fitted
    out = ved.emulate(test)
    assert out["p"].dims == ("sample", "yc", "xc")
    assert out["p"].attrs == {"units": "Pa", "long_name": "pressure"}
    assert out.attrs["title"] == "toy" and "VED(" in out.attrs["history"]
    np.testing.assert_array_equal(out["sample"], test["sample"])
    error = float(((out["p"] - test["p"]) ** 2).mean() / test["p"].var())
    assert error < 0.1, error
    mean, std = ved.posterior(test)
    assert mean.dims == ("sample", "latent") and bool((std > 0).all())
    assert ved.encode(test).equals(mean)
    draws = ved.sample(test, 4, seed=1)
    assert draws["p"].dims == ("realization", "sample", "yc", "xc")
    assert draws["realization"].values.tolist() == [0, 1, 2, 3]  # as the downscalers' draws
    assert draws["realization"].attrs["long_name"] == "draw of the conditional distribution"
    assert draws["p"].attrs["comment"] == (  # as VAE.sample's: what the values are
        "decoder mean of each draw of the conditional distribution, without the decoder's "
        "output noise"
    )
    assert (
        ved.sample(test, 1, seed=1, noise=True)["p"]
        .attrs["comment"]
        .endswith("plus the decoder's output noise N(0, sigma^2)")
    )
    assert draws.equals(ved.sample(test, n_samples=4, seed=1))
    assert float(draws["p"].std("realization").mean()) > 0
    with pytest.warns(DeprecationWarning, match="write VED.sample\\(ds, n_samples=4"):
        assert draws.equals(ved.sample(test, n=4, seed=1))
    decoded = ved.decode(mean)
    np.testing.assert_allclose(decoded["p"], out["p"], rtol=1e-6)


def test_estimator_save_load_is_bit_identical(fitted, tmp_path):
    ved, test = fitted
    ved.save(tmp_path / "ved.clm")
    loaded = cl.load(tmp_path / "ved.clm")
    assert isinstance(loaded, VED) and loaded.get_config() == ved.get_config()
    assert loaded.emulate(test).equals(ved.emulate(test))
    assert loaded.encode(test).equals(ved.encode(test))
    assert loaded.sample(test, 2, seed=3).equals(ved.sample(test, 2, seed=3))


def test_estimator_names_bad_inputs(fitted):
    ved, test = fitted
    with pytest.raises(InputDataError, match="'perm'"):
        VED(**SMALL).fit(test, target="p", proxy="perm")
    with pytest.raises(InputDataError, match="'p'.*NaN"):
        VED(**SMALL).fit(test.assign(p=test["p"].where(test["p"] < 1030)), target="p", proxy="k")
    with pytest.raises(InputDataError, match=r"\['k'\] are constant"):
        VED(**SMALL).fit(test.assign(k=test["k"] * 0 + 1), target="p", proxy="k")
    other = xr.Dataset({"k": test["k"], "p": test["p"][:10].rename(sample="member")})
    with pytest.raises(InputDataError, match="'k'.*'p'.*share their sample dims"):
        VED(**SMALL).fit(other, target="p", proxy="k")
    with pytest.raises(InputDataError, match="'k'.*2 grid dims"):
        VED(**SMALL).fit(test.assign(k=test["k"].isel(x=0)), target="p", proxy="k")
    with pytest.raises(InputDataError, match="input 'k' is on grid"):
        ved.emulate(test.isel(x=slice(6)))
    with pytest.raises(InputDataError, match="input variable 'k'"):
        ved.emulate(test.drop_vars("k"))
    with pytest.raises(InputDataError, match="latent"):
        ved.decode(xr.DataArray(np.zeros((2, 5)), dims=("sample", "latent")))
    with pytest.raises(NotFittedError):
        VED(**SMALL).emulate(test)
    with pytest.raises(ValueError, match="architecture"):
        VED(architecture="transformer")


def test_dense_architecture_runs():
    ds = _fields(16)
    ved = VED(latent_dim=2, architecture="dense", n_scales=2, base_channels=4, layers=1,
              growth=4, epochs=1, progress=False, device="cpu")  # fmt: skip
    ved.fit(ds, target="p", proxy="k")
    assert ved.emulate(ds)["p"].shape == (16, 5, 7)


# -- the paper's convolutional encoder ------------------------------------------------


def test_conv_encoder_shapes_on_odd_grids_and_several_channels():
    encoder = FieldConvEncoder((3, 33, 17), 10, filters=(4, 8, 16), residual_blocks=2)
    assert encoder(torch.zeros(5, 3, 33, 17)).shape == (5, 10)
    # 33 x 17 -> 17 x 9 -> 9 x 5 -> 5 x 3 cells of 16 channels feed the read-out
    assert encoder.net[-1].in_features == 16 * 5 * 3
    residual = [m for m in encoder.modules() if type(m).__name__ == "ResidualBlock"]
    assert len(residual) == 2
    ved = VED(latent_dim=2, architecture="conv", n_scales=2, base_channels=4, epochs=1,
              progress=False, device="cpu").fit(_fields(16), target="p", proxy="k")  # fmt: skip
    assert isinstance(ved.module_.encoder, FieldConvEncoder)
    assert isinstance(ved.module_.decoder, FieldMLPDecoder)  # the paper's: fully connected
    assert ved.emulate(_fields(16))["p"].shape == (16, 5, 7)


def test_conv_ved_round_trips_through_save_and_load(tmp_path):
    train, test = _fields(64), _fields(8, seed=1)
    ved = VED(latent_dim=3, architecture="conv", n_scales=2, base_channels=4,
              residual_blocks=2, hidden=16, epochs=2, progress=False, device="cpu")  # fmt: skip
    ved.fit(train, target="p", proxy="k").save(tmp_path / "conv.clm")
    loaded = cl.load(tmp_path / "conv.clm")
    assert loaded.get_config() == ved.get_config() and loaded.architecture == "conv"
    assert loaded.emulate(test).equals(ved.emulate(test))
    assert loaded.posterior(test)[1].equals(ved.posterior(test)[1])


@pytest.mark.slow
def test_conv_ved_beats_the_best_linear_map_on_tiny_darcy():
    """KLE4 Darcy on 17 x 17 nodes, 300 training samples: pressure is a nonlinear function
    of 4 coefficients, so rank-4 CCA (the best linear map through 4 codes; 0.25 relative
    RMSE here) is the easy bar; the converged conv VED reaches about 0.15."""
    train = generate(300, kle_terms=4, n_grid=17, seed=0, workers=1)
    test = generate(100, kle_terms=4, n_grid=17, seed=1, workers=1)
    x, y = (train[v].values.reshape(300, -1) for v in ("log_permeability", "pressure"))
    x_test, y_test = (test[v].values.reshape(100, -1) for v in ("log_permeability", "pressure"))
    mean = y.mean(0)
    linear = ved_study.relative_error(CCARegression(4, 1e-3).fit(x, y).emulate(x_test), y_test,
                                      mean)  # fmt: skip
    ved = VED(latent_dim=4, architecture="conv", n_scales=2, base_channels=8, hidden=64,
              epochs=80, batch_size=32, lr=3e-3, lr_decay=0.3, lr_decay_steps=400,
              progress=False, device="cpu")  # fmt: skip
    ved.fit(train, target="pressure", proxy="log_permeability")
    error = ved_study.relative_error(
        ved.emulate(test)["pressure"].values.reshape(100, -1), y_test, mean
    )
    print(f"tiny Darcy: conv VED {error:.3f}, rank-4 CCA {linear:.3f}")
    assert 0.2 < linear < 0.3
    assert error < 0.75 * linear, (error, linear)


# -- the study -----------------------------------------------------------------------


def test_needed_latent_size_is_the_smallest_reaching_each_level():
    results = ved_study.pd.DataFrame(
        {
            "model": ["CCA"] * 3 + ["VED"] * 2 + ["CCA"],
            "study": ["latent"] * 5 + ["cca_regularisation"],
            "latent_dim": [1, 4, 16, 2, 8, 1],
            "relative_error": [0.8, 0.5, 0.41, 0.45, 0.39, 0.1],
        }
    )
    table = ved_study.needed(results, [0.5, 0.42, 0.3])
    assert table["CCA"].tolist() == [4, 16, ved_study.pd.NA]
    assert table["VED"].tolist() == [2, 8, ved_study.pd.NA]


def test_study_runs_end_to_end(tmp_path):
    ved_study.main(
        ["--n-train", "60", "--n-test", "20", "--kle-terms", "8", "--n-grid", "9",
         "--epochs", "2", "--latent-sizes", "2", "--betas", "1", "--covariance-weights",
         "0", "1", "--grid-latent", "2", "--hidden", "16", "--workers", "1",
         "--cca-regularisations", "0.01", "1", "--output", str(tmp_path)]
    )  # fmt: skip
    results = ved_study.pd.read_csv(tmp_path / "results.csv")
    assert set(results["method"]) == {"CCA", "VED"}
    assert len(results.query("method == 'VED' and study == 'beta_lambda'")) == 2
    assert (tmp_path / "study.png").stat().st_size > 0
    assert (tmp_path / "needed.csv").exists()


def test_draws_of_a_bounded_field_are_held_within_its_bounds_and_counted(fitted):
    """VED's outputs go through the physical bounds of their standard_name: the toy's
    pressure (about 1000) relabelled as a sea-ice fraction in '1' is all above 1."""
    ved, test = fitted
    bounded = copy.deepcopy(ved)
    bounded.attrs_["p"] = {"units": "1", "standard_name": "sea_ice_area_fraction"}
    draws = bounded.sample(test, 2, seed=1, noise=True)["p"]
    assert np.all(draws.values == 1.0)
    n = draws.size
    assert draws.attrs["climlatent_clipped"].startswith(f"{n} of {n} values above the physical")
    assert "climlatent_clipped" not in ved.sample(test, 2, seed=1, noise=True)["p"].attrs


def test_draws_come_from_each_samples_address_not_its_place_in_the_call(fitted):
    """A sample's draws are the same alone or with others, in any order, and the first
    k realisations of a larger n (one random stream gave a member drawn alone draws
    18 % apart from the same member drawn with another); they are mu + sigma times the
    Philox normals of its address, decoded, plus sigma_y times the second stream's."""
    ved, test = fitted
    dates = xr.date_range("2000-01-01", periods=test.sizes["sample"], freq="D")
    days = test.rename(sample="time").assign_coords(time=dates).expand_dims(member=["a", "b"])
    together = ved.sample(days, n_samples=3, seed=7, noise=True)["p"]
    part = days.isel(member=[1], time=[5, 2])
    alone = ved.sample(part, n_samples=2, seed=7, noise=True)["p"]
    np.testing.assert_allclose(
        alone, together.isel(realization=[0, 1], member=[1], time=[5, 2]), rtol=1e-6
    )
    first = together.isel(realization=0).values
    assert not np.allclose(first[0], first[1]) and not np.allclose(first[:, 0], first[:, 1])
    # the known answer, from the posterior, the decoder and the addresses' raw normals
    mean, std = (v.values.reshape(2, -1) for v in ved.posterior(part))
    cell = part["k"].isel(y=0, x=0, drop=True)
    rows = [first for first, _ in block_rows(row_keys(cell), (1, 2), (0, 0))]
    log_var = ved.module_.output_log_var.detach().double().item()
    sigma_y = math.exp(0.5 * log_var) * ved.y_std_.item()
    for realization in range(2):
        latent, noise = (
            np.concatenate([standard_normal_rows(7, realization, r, 1, n, stream) for r in rows])
            for n, stream in ((3, 0), (35, 1))
        )
        z = xr.DataArray(mean + std * latent, dims=("time", "latent"))
        expected = ved.decode(z)["p"].values + sigma_y * noise.reshape(2, 5, 7)
        drawn = alone.isel(realization=realization, member=0).values
        np.testing.assert_allclose(drawn, expected, rtol=1e-5)
