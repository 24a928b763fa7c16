"""Aux-VAE: guided latents follow the named drivers, residual latents stay clear of them."""

import hashlib
import json

import numpy as np
import pytest
import torch
import xarray as xr
from safetensors.numpy import load_file, save_file

import climlatent as cl
from climlatent.draws import standard_normal_rows
from climlatent.errors import InputDataError
from climlatent.models.aux_vae import cross_correlation, gaussian_kl

OPTIONS = dict(latent_dim=6, n_scales=2, epochs=10, lr=2e-3, batch_size=64, progress=False)


@pytest.fixture(scope="module")
def circulation():
    ds = cl.datasets.synthetic_circulation(n_members=1, n_years=3)
    return ds.isel(time=slice(0, 730)), ds.isel(time=slice(730, None))


@pytest.fixture(scope="module")
def fitted(circulation):
    train, _ = circulation
    guided = cl.AuxVAE(**OPTIONS).fit(train, "psl", auxiliary=["circulation_factor"])
    plain = cl.VAE(**OPTIONS).fit(train, "psl")
    return guided, plain


def test_gaussian_kl_and_cross_correlation_match_references():
    rng = np.random.default_rng(0)
    mean, log_var, centre = (torch.tensor(rng.normal(size=(4, 3))) for _ in range(3))
    q = torch.distributions.Normal(mean, (0.5 * log_var).exp())
    p = torch.distributions.Normal(centre, 0.3)
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    np.testing.assert_allclose(gaussian_kl(mean, log_var, centre, 0.09), expected, rtol=1e-10)
    a, b = rng.normal(size=(200, 2)), rng.normal(size=(200, 3))
    reference = np.corrcoef(np.c_[a, b].T)[:2, 2:]
    result = cross_correlation(torch.tensor(a), torch.tensor(b), eps=0)
    np.testing.assert_allclose(result, reference, rtol=1e-10)


def test_guided_latents_track_the_factors_and_residuals_do_not(circulation, fitted):
    _, test = circulation
    guided, plain = fitted
    factors = test["circulation_factor"].values.reshape(-1, 3)
    z = guided.encode(test).values.reshape(-1, 6)
    corr = np.corrcoef(np.c_[z, factors].T)[:6, 6:]
    print("guided |r| with their factor:", np.round(np.abs(np.diag(corr[:3])), 3))
    print("largest residual |r| with any factor:", np.round(np.abs(corr[3:]).max(), 3))
    assert np.all(np.abs(np.diag(corr[:3])) > 0.95)  # measured 0.99-1.00
    assert np.abs(corr[3:]).max() < 0.3  # measured 0.14
    in_units = guided.guided(test)
    scale = np.abs(in_units.values.reshape(-1, 3) - factors).mean() / np.abs(factors).mean()
    assert scale < 0.2  # guided latents come back in the factors' own units


def test_reconstruction_within_a_stated_ratio_of_an_unguided_vae(circulation, fitted):
    _, test = circulation
    errors = []
    for est in fitted:
        rec = est.reconstruct(test)["psl"]
        errors.append(float(((rec - test["psl"]) ** 2).mean() / test["psl"].var()))
    print("relative MSE AuxVAE, VAE:", np.round(errors, 4), "ratio", errors[0] / errors[1])
    assert errors[0] < 0.05 and errors[0] < 2.0 * errors[1]  # measured ratio 1.6


def test_traversal_moves_the_field_along_its_driver_mode(circulation, fitted):
    _, test = circulation
    guided, _ = fitted
    reference = test.isel(time=[0])
    name = "circulation_factor[1]"
    traversal = guided.traverse(reference, name, [-2.0, 0.0, 2.0])
    out = traversal["psl"]
    assert out.dims == ("value", "lat", "lon") and out["value"].values.tolist() == [-2, 0, 2]
    assert traversal.attrs["traversed_auxiliary"] == name  # a dim 'name' is no CF name
    change = (out.isel(value=2) - out.isel(value=0)).values.ravel()
    mode = test["slp_mode"].sel(mode=1).values.ravel()
    assert np.corrcoef(change, mode)[0, 1] > 0.9  # the decoded change is that mode's pattern
    with pytest.raises(InputDataError, match="no guided coordinate 'nao'"):
        guided.traverse(reference, "nao", [0.0])


def test_residual_tail_samples_and_save_load(circulation, fitted, tmp_path):
    _, test = circulation
    guided, _ = fitted
    reference = test.isel(time=[0])
    tails = guided.residual_tail_samples(reference, 20, quantile=0.99)
    assert tails["psl"].shape == (20, 16, 24)
    centre = guided.reconstruct(reference)["psl"].values[0]
    typical = guided.residual_tail_samples(reference, 20, quantile=0.0)["psl"].values
    far = np.abs(tails["psl"].values - centre).mean()
    assert far > np.abs(typical - centre).mean()
    guided.save(tmp_path / "aux.clm")
    loaded = cl.load(tmp_path / "aux.clm")
    assert loaded.guided(test).equals(guided.guided(test))


def test_bad_auxiliaries_are_named(circulation):
    train, _ = circulation
    small = train.isel(time=slice(0, 64))
    with pytest.raises(InputDataError, match="auxiliary variable 'nao' is not in the Dataset"):
        cl.AuxVAE(**OPTIONS).fit(small, "psl", auxiliary=["nao"])
    with pytest.raises(InputDataError, match="auxiliary 'slp_mode' has dims"):
        cl.AuxVAE(**OPTIONS).fit(small, "psl", auxiliary=["slp_mode"])
    with pytest.raises(InputDataError, match="leave no residual latent"):
        cl.AuxVAE(**{**OPTIONS, "latent_dim": 3}).fit(small, "psl", ["circulation_factor"])
    bad = small.assign(circulation_factor=small["circulation_factor"].where(small.time.dt.day > 1))
    with pytest.raises(InputDataError, match="NaN"):
        cl.AuxVAE(**OPTIONS).fit(bad, "psl", auxiliary=["circulation_factor"])


def test_residual_tail_samples_refuse_several_references_and_an_infinite_quantile():
    """A two-sample reference was decoded at its first sample's drivers alone, the
    second silently ignored (traverse refuses it); quantile=1 drew infinite norms and
    returned fields finite nowhere."""
    ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=8, n_lon=8)
    aux = cl.AuxVAE(latent_dim=5, n_scales=1, epochs=1, progress=False)
    aux.fit(ds, "psl", auxiliary=["circulation_factor"])
    one = aux.residual_tail_samples(ds.isel(time=[0]), 3, seed=0)["psl"]
    assert one.shape == (3, 8, 8) and bool(np.isfinite(one).all())
    with pytest.raises(InputDataError, match="holding one sample, got 2"):
        aux.residual_tail_samples(ds.isel(time=[0, 100]), 3, seed=0)
    for quantile in (1.0, -0.1):
        with pytest.raises(ValueError, match=r"quantile must be in \[0, 1\)"):
            aux.residual_tail_samples(ds.isel(time=[0]), 3, quantile=quantile)


def test_prior_samples_keep_the_drivers_joint_distribution(circulation, tmp_path):
    """Two drivers, bimodal and correlated 0.99: the guided latents of a prior draw are
    a training sample's standardised drivers plus tau * N(0, 1), the residual ones
    N(0, 1), from the Philox rows of the seed (independent N(0, 1) guided draws fell
    between the modes, in combinations of the drivers never seen). A model saved before
    it kept its training drivers refuses to sample, and saves again as it was."""
    train, _ = circulation
    rng = np.random.default_rng(3)
    mode = np.where(rng.random(train.sizes["time"]) < 0.5, -2.0, 2.0) + rng.normal(0, 0.1, 730)
    drivers = {"a": ("time", mode), "b": ("time", mode + rng.normal(0, 0.3, 730))}
    ds = train.isel(member=0).assign(drivers)
    aux = cl.AuxVAE(**{**OPTIONS, "epochs": 1}).fit(ds, "psl", auxiliary=["a", "b"])
    u = np.c_[ds["a"].values, ds["b"].values]
    u = (u - u.mean(0)) / u.std(0)
    z = standard_normal_rows(4, 0, 0, 50, OPTIONS["latent_dim"], 0).astype(np.float64)
    z[:, :2] = u[np.random.default_rng(4).integers(730, size=50)] + aux.tau * z[:, :2]
    drawn = aux.sample(50, seed=4)["psl"]
    decoded = aux.decode(xr.DataArray(z, dims=("sample", "latent")))["psl"]
    np.testing.assert_allclose(drawn, decoded, rtol=1e-5)
    np.testing.assert_allclose(aux.sample(5, seed=4)["psl"], drawn[:5], rtol=1e-5)
    aux.save(tmp_path / "aux.clm")
    np.testing.assert_array_equal(cl.load(tmp_path / "aux.clm").sample(50, seed=4)["psl"], drawn)
    weights = tmp_path / "aux.clm" / "weights.safetensors"  # as saved before: no drivers
    state = load_file(weights)
    del state["aux_standard"]
    save_file(state, weights)
    manifest = json.loads((tmp_path / "aux.clm" / "manifest.json").read_text())
    del manifest["fitted"]["auxiliary_samples"]
    manifest["files"]["weights.safetensors"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (tmp_path / "aux.clm" / "manifest.json").write_text(json.dumps(manifest))
    old = cl.load(tmp_path / "aux.clm")
    assert old.guided(ds).equals(aux.guided(ds))
    with pytest.raises(InputDataError, match="saved before it kept its training auxiliaries"):
        old.sample(5)
    old.save(tmp_path / "again.clm")  # saved again as it was (it has no drivers to write)
    again = cl.load(tmp_path / "again.clm")
    assert again.guided(ds).equals(aux.guided(ds)) and again.aux_standard_ is None
