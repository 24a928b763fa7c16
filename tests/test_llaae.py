import threading

import numpy as np
import pytest
import torch

import climlatent as cl
from climlatent.errors import InputDataError

FAST = dict(latent_dim=4, epochs=2, filters=(8, 16), batch_size=128, n_proxy_eofs=8, device="cpu")


@pytest.fixture(scope="module")
def small():
    ds = cl.datasets.synthetic_circulation(n_members=2, n_years=3, n_lat=8, n_lon=12, seed=2)
    return ds.isel(time=slice(0, 730)), ds.isel(time=slice(730, None))


@pytest.fixture(scope="module")
def fitted_gev(small):
    return cl.LLAAE(latent="gev", **FAST).fit(small[0], "pr", "psl")


@pytest.mark.parametrize("latent", ["none", "gaussian", "gaussian_hp", "gev", "gev_moments"])
def test_emulation_keeps_coords_members_mask_and_attrs(latent, small):
    train, test = small
    est = cl.LLAAE(latent=latent, **FAST).fit(train, "pr", "psl")
    out = est.emulate(test)["pr"]
    assert out.dims == test["pr"].dims
    for dim in out.dims:
        np.testing.assert_array_equal(out[dim].values, test[dim].values)
    assert out.attrs == test["pr"].attrs
    truth_mask = np.isnan(test["pr"].isel(member=0, time=0).values)
    np.testing.assert_array_equal(np.isnan(out.values).all(axis=(0, 1)), truth_mask)
    assert np.isfinite(out.values[..., ~truth_mask]).all()
    assert list(est.history_.index) == [0, 1]
    assert {"train_autoencoder", "train_latent", "valid_kl"} <= set(est.history_.columns)


def test_evaluate_gives_the_losses_of_one_pass_over_every_sample(small):
    train, test = small  # 730 x 2 samples: many inference batches
    est = cl.LLAAE(latent="gaussian", **FAST).fit(train, "pr", "psl")
    scores = est.evaluate(test)
    with torch.inference_mode():
        losses = est.module_.eval().training_losses(tuple(est.training_tensors(test)))
    for name, value in losses.items():
        np.testing.assert_allclose(scores[name], float(value), rtol=1e-5, err_msg=name)


def test_evaluate_of_gev_latents_is_reproducible_and_leaves_the_global_rng(fitted_gev, small):
    state = torch.random.get_rng_state()
    first, second = fitted_gev.evaluate(small[1]), fitted_gev.evaluate(small[1])
    assert first == second and first["kl"] > 0
    assert torch.equal(torch.random.get_rng_state(), state)
    assert fitted_gev.evaluate(small[1], seed=1)["kl"] != first["kl"]  # a Monte Carlo term


def test_evaluate_in_two_threads_at_once_gives_each_its_own_draws(fitted_gev, small, monkeypatch):
    expected = {seed: fitted_gev.evaluate(small[1], seed=seed)["kl"] for seed in (0, 1)}
    state, losses = torch.random.get_rng_state(), fitted_gev.module_.training_losses
    inside = {seed: threading.Event() for seed in (0, 1)}
    done = threading.Event()

    def interleaved(batch):  # seed 0 seeds, then seed 1 (if it can enter), then 0 draws
        seed = int(threading.current_thread().name)
        if not inside[seed].is_set():
            inside[seed].set()
            (inside[1] if seed == 0 else done).wait(timeout=1.0)
        return losses(batch)

    monkeypatch.setattr(fitted_gev.module_, "training_losses", interleaved)
    found = {}

    def run(seed: int) -> None:
        found[seed] = fitted_gev.evaluate(small[1], seed=seed)["kl"]
        if seed == 0:
            done.set()

    threads = [threading.Thread(target=run, args=(seed,), name=str(seed)) for seed in (0, 1)]
    threads[0].start()
    inside[0].wait()
    threads[1].start()
    for thread in threads:
        thread.join()
    # before: seed 0 gave 0.243 for 0.263 (seed 1's draws) and seed 1 0.231 for 0.243
    # (a continuation of seed 0's), and torch's global state was left at seed 0's
    assert found == expected
    assert torch.equal(torch.random.get_rng_state(), state)


def test_a_constant_proxy_cell_fed_raw_is_not_blown_up(small):
    # proxy_input="field" without a proxy transform feeds cells divided by their sd;
    # a cell held at 101325 Pa was divided by 0 + 1e-12: an input of 1e17, and the
    # emulated pr spread 2.4e9 kg m-2 s-1 (truth 4.5e-5). Now it is divided by its value.
    train = small[0]
    psl = train["psl"].copy()
    psl[..., 0, 0] = np.float32(101325.0)
    options = {**FAST, "proxy_input": "field", "proxy_transform": "none"}
    est = cl.LLAAE(**options).fit(train.assign(psl=psl), "pr", "psl")
    assert est.feature_scale_[0] == 101325.0
    x = psl.values.reshape(-1, psl[0, 0].size)
    ratio = np.abs(x[:, 1:] / x[:, 1:].std(0)).max()  # the other cells' largest input, 150
    assert np.abs(est.proxy_features(x)).max() == pytest.approx(ratio, rel=1e-5)
    out = est.emulate(train.assign(psl=psl))["pr"]
    assert float(out.std()) < float(train["pr"].std())  # measured 0.08 of it; was 5e13


def test_log1p_emulation_of_a_cell_with_missing_days_is_finite():
    """A land cell missing on 5 of 365 training days: its smearing shift was NaN, so its
    emulation was NaN on every day; now it is finite there, as at the other cells."""
    ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=6, n_lon=8)
    iy, ix = np.argwhere(np.isfinite(ds["pr"].isel(member=0, time=0).values))[0]
    pr = ds["pr"].copy()
    pr[0, :5, iy, ix] = np.nan
    est = cl.LLAAE(latent_dim=2, epochs=1, filters=(4,), target_transform="log1p", device="cpu")
    est.fit(ds.assign(pr=pr), "pr", "psl")
    assert np.isfinite(est.target_shift_).all()
    assert bool(np.isfinite(est.emulate(ds)["pr"].isel(lat=iy, lon=ix)).all())


def test_deterministic_latent_has_zero_kl(small):
    est = cl.LLAAE(latent="none", **FAST).fit(small[0], "pr", "psl")
    assert (est.history_["train_kl"] == 0).all()


def test_save_load_bit_identical(fitted_gev, small, tmp_path):
    _, test = small
    fitted_gev.save(tmp_path / "m.clm")
    loaded = cl.load(tmp_path / "m.clm")
    assert (
        loaded.emulate(test)["pr"].values.tobytes()
        == fitted_gev.emulate(test)["pr"].values.tobytes()
    )
    assert loaded.encode(test).values.tobytes() == fitted_gev.encode(test).values.tobytes()
    assert loaded.encode(test)["latent"].attrs == {"long_name": "latent dimension"}


def test_evaluate_scores_l1_with_beta_after_a_warm_up_fitted_or_loaded(small, tmp_path):
    """L1 = reconstruction + alpha * reconstruction_proxy + beta * KL (weight_l2 = 0).

    A warm-up left its weight on the model: fitted 2 of 5 warm-up epochs, evaluate()
    weighed the KL by 0.4 * beta (the last epoch's); loaded, by 0 (the constructor's).
    """
    train, test = small
    options = {**FAST, "epochs": 2, "alpha": 1.5, "beta": 2.0, "beta_warmup_epochs": 5}
    fitted = cl.LLAAE(latent="gaussian", **options).fit(train, "pr", "psl")
    fitted.save(tmp_path / "m.clm")
    for model in (fitted, cl.load(tmp_path / "m.clm")):
        scores = model.evaluate(test)
        assert scores["kl"] > 0.01
        l1 = scores["reconstruction"] + 1.5 * scores["reconstruction_proxy"] + 2.0 * scores["kl"]
        np.testing.assert_allclose(scores["autoencoder"], l1, rtol=1e-6)


def test_same_seed_same_model(small):
    a = cl.LLAAE(latent="gaussian", **FAST).fit(small[0], "pr", "psl")
    b = cl.LLAAE(latent="gaussian", **FAST).fit(small[0], "pr", "psl")
    out_a, out_b = a.emulate(small[1])["pr"], b.emulate(small[1])["pr"]
    assert out_a.values.tobytes() == out_b.values.tobytes()


def test_closed_form_refit_minimises_latent_loss(small):
    train, _ = small
    trained = cl.LLAAE(latent="none", **FAST).fit(train, "pr", "psl")
    refit = cl.LLAAE(latent="none", refit_proxy_map=True, ridge=0.0, **FAST).fit(train, "pr", "psl")
    # same seed, same training: only h differs
    z = trained.encode(train).values.reshape(-1, 4)
    np.testing.assert_allclose(refit.encode(train).values.reshape(-1, 4), z, rtol=1e-6)
    x = cl.batching.to_matrix(
        trained.proxy_transform_.forward(trained._prepare_proxy(train)), trained.proxy_layout_
    )
    features = trained.proxy_features(x).astype(np.float64)

    def latent_loss(est):
        w = est.module_.proxy_map.weight.detach().numpy().astype(np.float64)
        b = est.module_.proxy_map.bias.detach().numpy().astype(np.float64)
        return float(((z - features @ w.T - b) ** 2).sum(1).mean())

    design = np.hstack([np.ones((len(features), 1)), features])
    best = np.linalg.lstsq(design, z, rcond=None)[0]
    optimum = float(((z - design @ best) ** 2).sum(1).mean())
    assert latent_loss(refit) == pytest.approx(optimum, rel=1e-4)
    assert latent_loss(refit) <= latent_loss(trained)


def test_sample_and_traverse(fitted_gev):
    samples = fitted_gev.sample(5, seed=1)["pr"]
    assert samples.dims == ("realization", "lat", "lon") and samples.sizes["realization"] == 5
    assert samples.attrs["units"] == "kg m-2 s-1"
    assert samples["realization"].attrs["long_name"] == "prior draw"  # no bare coordinate
    assert samples.attrs["comment"].startswith("decoder mean of each prior draw, without")
    trav = fitted_gev.traverse(latent=1, values=[-2.0, 0.0, 2.0])["pr"]
    assert trav.dims == ("value", "lat", "lon")
    zero = fitted_gev._decode(np.zeros((1, 4), np.float32))
    back = fitted_gev.target_transform_.inverse(
        cl.batching.from_matrix(zero, fitted_gev.target_layout_, {"value": [0.0]})
    )
    np.testing.assert_allclose(trav.isel(value=1).values, back.isel(value=0).values, rtol=1e-5)
    with pytest.raises(ValueError, match="latent must be in"):
        fitted_gev.traverse(latent=9, values=[0.0])


def test_reference_preset():
    ref = cl.LLAAE.reference()
    assert (ref.latent_dim, ref.filters, ref.batch_size, ref.epochs, ref.lr) == (
        400,
        (16, 32, 64),
        64,
        100,
        1e-3,
    )
    assert (ref.lr_decay, ref.lr_decay_steps, ref.alpha, ref.weight_l2) == (0.96, 5000, 1.0, 1e-3)


def test_bad_inputs_before_training(small):
    train, _ = small
    with pytest.raises(InputDataError, match="'psl' has .* NaN"):
        cl.LLAAE(**FAST).fit(train.assign(psl=train.psl.where(train.lat > 40)), "pr", "psl")
    with pytest.raises(InputDataError, match="proxy variable 'slp' is not in the Dataset"):
        cl.LLAAE(**FAST).fit(train, "pr", "slp")
    with pytest.raises(ValueError, match="latent must be one of"):
        cl.LLAAE(latent="weibull")


def test_cuda_path_selected_only_when_available():
    est = cl.LLAAE(device="auto")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    from climlatent.training import resolve_device

    assert resolve_device(est.device).type == expected


def test_samples_of_a_hierarchical_prior_model_come_from_its_learned_prior():
    # They came from N(0, I) while the latents were trained under a learned prior with
    # spreads 0.7 and 2.6: sampled fields spread half as much as the data (3.1 for 6.8).
    ds = cl.datasets.synthetic_circulation(n_members=1, n_years=3, n_lat=8, n_lon=8)
    est = cl.LLAAE(latent_dim=2, latent="gaussian_hp", epochs=40, filters=(8,), progress=False)
    est.fit(ds, "tas", "psl")
    sampled = float(est.sample(2000, seed=0)["tas"].std("realization").mean())
    reconstructed = float(est.reconstruct(ds)["tas"].std(("member", "time")).mean())
    print(f"spread of samples {sampled:.2f}, of reconstructions {reconstructed:.2f}")
    assert sampled == pytest.approx(reconstructed, rel=0.15)


def test_a_deterministic_latent_has_no_prior_to_sample_from(small):
    # N(0, I) draws were decoded: the codes of latent="none" spread up to 3.3 with
    # means up to 2.3 (nothing pulls them to N(0, I)), and sampled fields spread 3.2 K
    # where reconstructions spread 6.5 K.
    est = cl.LLAAE(latent="none", **FAST).fit(small[0], "pr", "psl")
    with pytest.raises(ValueError, match="no latent prior"):
        est.sample(3)
    assert est.traverse(latent=0, values=[0.0])["pr"].sizes["value"] == 1
