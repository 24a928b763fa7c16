"""Training resume from the public API: ``fit(..., checkpoint=PATH, resume=True)`` on every
torch estimator and ``checkpoint:`` in ``climlatent fit`` configs. An interrupted run
resumed equals an uninterrupted one bit for bit; a checkpoint of another run is refused,
naming the file and what differs."""

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
import torch
import yaml
from click.testing import CliRunner

import climlatent as cl
from climlatent.cli import main
from climlatent.errors import CheckpointError
from climlatent.estimators import registry
from climlatent.fit_config import ConfigError, fit_from_config, load_fit_config
from climlatent.persistence import load
from climlatent.reference.burgers import generate

QUIET = {"progress": False, "device": "cpu", "batch_size": 8}


def circulation(n_times: int = 40):
    ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=8, n_lon=12)
    return ds.isel(time=slice(0, n_times))


def biogeochem(n_times: int = 36):
    world = cl.datasets.synthetic_biogeochem(n_years=3, n_fine_lat=8, n_fine_lon=8)
    return world.coarse.isel(time=slice(0, n_times)), world.fine.isel(time=slice(0, n_times))


def burgers(n_samples: int = 16):
    return generate(16, nx=32, nt=4, seed=0).isel(sample=slice(0, n_samples))


@dataclasses.dataclass(frozen=True)
class Case:
    """A torch estimator: its class and options, its data and how it is fitted."""

    cls: type
    options: dict[str, Any]
    data: Callable[..., Any]  # called without arguments: 40 or so samples; with 30: fewer
    fit: Callable[..., Any]  # fit(estimator, data, **checkpoint_and_resume)
    change: dict[str, Any]  # an option that changes the run, not the training loop
    samples: int

    def make(self, **options: Any):
        return self.cls(**{**QUIET, **self.options, **options})


CASES = {
    "LLAAE": Case(
        cl.LLAAE,
        {"latent_dim": 2, "filters": (4,), "n_proxy_eofs": 3},
        circulation,
        lambda est, ds, **kw: est.fit(ds, "pr", "psl", **kw),
        {"alpha": 2.0},
        40,
    ),
    "ProxyDownscaler": Case(
        cl.ProxyDownscaler,
        {},
        biogeochem,
        lambda est, data, **kw: est.fit(*data, "chl", proxies={"tos": "exponential"}, **kw),
        {"noise": True},
        36,
    ),
    "ProxyLatentDownscaler": Case(
        cl.ProxyLatentDownscaler,
        {"channels": 2, "hidden": 4},
        biogeochem,
        lambda est, data, **kw: est.fit(*data, "chl", proxies={"tos": "exponential"}, **kw),
        {"beta": 0.5},
        36,
    ),
    "VAE": Case(
        cl.VAE,
        {"latent_dim": 2, "n_scales": 2, "base_channels": 4, "layers": 1, "growth": 2},
        circulation,
        lambda est, ds, **kw: est.fit(ds, "psl", **kw),
        {"beta_0": 0.5},
        40,
    ),
    "AuxVAE": Case(
        cl.AuxVAE,
        {"latent_dim": 4, "n_scales": 2, "base_channels": 4, "layers": 1, "growth": 2},
        circulation,
        lambda est, ds, **kw: est.fit(ds, "psl", auxiliary=["circulation_factor"], **kw),
        {"tau": 0.2},
        40,
    ),
    "VED": Case(
        cl.VED,
        {"latent_dim": 2, "hidden": 8, "validation_fraction": 0.25},
        circulation,
        lambda est, ds, **kw: est.fit(ds, target="tas", proxy="psl", **kw),
        {"beta": 0.5},
        40,
    ),
    "VAEDLM": Case(
        cl.VAEDLM,
        {"intrinsic_dim": 2, "extrinsic_dim": 3, "hidden": 8, "geometry_hidden": 4},
        burgers,
        lambda est, ds, **kw: est.fit(ds, "u", **kw),
        {"gamma_geo": 0.5},
        16,
    ),
}
ESTIMATORS = pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())


def assert_same_weights(a, b) -> None:
    state_a, state_b = a.module_.state_dict(), b.module_.state_dict()
    assert list(state_a) == list(state_b)
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key


def assert_same_fit(a, b) -> None:
    assert_same_weights(a, b)
    pd.testing.assert_frame_equal(
        a.history_.drop(columns="seconds"), b.history_.drop(columns="seconds"), check_exact=True
    )


def test_every_torch_estimator_is_covered():
    trained = {
        name
        for name, cls in registry().items()
        if cls.__module__.startswith("climlatent.")
        and "epochs" in {field.name for field in dataclasses.fields(cls)}
    }
    assert trained == set(CASES)


@ESTIMATORS
def test_interrupted_run_resumed_equals_an_uninterrupted_one(case, tmp_path):
    data = case.data()
    straight = case.fit(case.make(epochs=4), data)
    path = tmp_path / "run.pt"
    case.fit(case.make(epochs=2), data, checkpoint=path)
    torch.manual_seed(99)  # as in a fresh process
    resumed = case.fit(case.make(epochs=4), data, checkpoint=path, resume=True)
    assert_same_fit(straight, resumed)
    assert len(resumed.history_) == 4
    assert torch.load(path, weights_only=True)["epoch"] == 4


@ESTIMATORS
@pytest.mark.parametrize("change", ["batch_size", "samples", "values", "option"])
def test_a_checkpoint_of_another_run_is_refused(case, change, tmp_path):
    path = tmp_path / "run.pt"
    case.fit(case.make(epochs=1), case.data(), checkpoint=path)
    options, data = {"epochs": 2}, case.data()
    if change == "batch_size":
        options["batch_size"], expected = 4, "batch_size: 8 -> 4"
    elif change == "samples":
        data = case.data(12)
        expected = f"samples: {case.samples} -> 12; data_sha256: "
    elif change == "values":  # the same shapes: was resumed silently
        data = tuple(map(_rolled, data)) if isinstance(data, tuple) else _rolled(data)
        expected = "data_sha256: "
    else:
        options.update(case.change)
        ((key, value),) = case.change.items()
        expected = f"{key}: {getattr(case.make(), key)!r} -> {value!r}"
    with pytest.raises(CheckpointError, match=re.escape(str(path))) as error:
        case.fit(case.make(**options), data, checkpoint=path, resume=True)
    assert f"it is from another run ({expected}" in str(error.value)
    assert "); to resume it" in str(error.value)
    assert "to start afresh, pass resume=False" in str(error.value) and "{" not in str(error.value)


def test_a_checkpoint_from_before_the_data_digest_still_resumes(tmp_path):
    """Checkpoints written before fingerprints held data_sha256 (a study's in flight)."""
    case = CASES["VED"]
    data, path = case.data(), tmp_path / "run.pt"
    straight = case.fit(case.make(epochs=2), data)
    case.fit(case.make(epochs=1), data, checkpoint=path)
    state = torch.load(path, weights_only=True)
    del state["fingerprint"]["data_sha256"]
    torch.save(state, path)
    assert_same_fit(straight, case.fit(case.make(epochs=2), data, checkpoint=path, resume=True))


def test_a_file_that_is_no_training_checkpoint_is_refused_before_anything_loads(tmp_path):
    """Its message was a bare 'format', after the weights had been loaded."""
    case, path = CASES["VED"], tmp_path / "run.pt"
    torch.save({"module": {}, "epoch": 1}, path)
    with pytest.raises(
        CheckpointError, match=r"not a climlatent training checkpoint \(no \['format'"
    ):
        case.fit(case.make(epochs=2), case.data(), checkpoint=path, resume=True)


def _rolled(ds):
    """``ds`` with each variable's values moved one step along its first long dim."""

    def roll(var):
        long = [dim for dim in var.dims if var.sizes[dim] > 1]
        return var.roll({long[0]: 1}) if long else var

    return ds.map(roll, keep_attrs=True)


def test_resume_without_a_checkpoint_starts_afresh_and_writes_it(tmp_path):
    case = CASES["VED"]
    data = case.data()
    straight = case.fit(case.make(epochs=2), data)
    path = tmp_path / "new" / "run.pt"
    fresh = case.fit(case.make(epochs=2), data, checkpoint=path, resume=True)
    assert_same_fit(straight, fresh)
    assert path.exists()


def test_checkpoint_path_option_is_the_default_checkpoint(tmp_path):
    case = CASES["VED"]
    data = case.data()
    straight = case.fit(case.make(epochs=3), data)
    path = tmp_path / "run.pt"
    case.fit(case.make(epochs=1, checkpoint_path=str(path)), data)
    resumed = case.fit(case.make(epochs=3), data, checkpoint=path, resume=True)
    assert_same_fit(straight, resumed)


def test_a_checkpoint_past_the_requested_epochs_is_refused(tmp_path):
    case = CASES["VED"]
    path = tmp_path / "run.pt"
    case.fit(case.make(epochs=2), case.data(), checkpoint=path)
    with pytest.raises(CheckpointError, match="trained 2 epochs, more than 1"):
        case.fit(case.make(epochs=1), case.data(), checkpoint=path, resume=True)


def test_proxy_laws_are_part_of_the_run(tmp_path):
    coarse, fine = biogeochem()
    path = tmp_path / "run.pt"
    est = CASES["ProxyDownscaler"].make(epochs=1)
    est.fit(coarse, fine, "chl", proxies={"tos": "exponential"}, checkpoint=path)
    with pytest.raises(
        CheckpointError, match="proxies: {'tos': 'exponential'} -> {'tos': 'linear'}"
    ):
        est.fit(coarse, fine, "chl", proxies={"tos": "linear"}, checkpoint=path, resume=True)


def write_config(folder, epochs: int, **keys):
    config = {
        "estimator": "LLAAE",
        "options": {**CASES["LLAAE"].options, **QUIET, "epochs": epochs},
        "data": "train.nc",
        "target": "pr",
        "proxy": "psl",
        "output": f"model_{epochs}.clm",
        **keys,
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_yaml_checkpoint_resumes_a_rerun_fit(tmp_path):
    cl.io.to_netcdf(circulation(), tmp_path / "train.nc")
    straight = load(fit_from_config(load_fit_config(write_config(tmp_path, 4))))
    fit_from_config(load_fit_config(write_config(tmp_path, 2, checkpoint="ckpt/run.pt")))
    assert (tmp_path / "ckpt" / "run.pt").exists()
    config = load_fit_config(write_config(tmp_path, 4, checkpoint="ckpt/run.pt"))
    assert config.checkpoint == tmp_path / "ckpt" / "run.pt"
    resumed = load(fit_from_config(config))
    assert_same_weights(straight, resumed)  # a saved model keeps no history
    other = write_config(tmp_path, 4, checkpoint="ckpt/run.pt")
    other.write_text(other.read_text().replace("batch_size: 8", "batch_size: 4"))
    refused = CliRunner().invoke(main, ["fit", str(other)])
    assert refused.exit_code == 1
    assert str(tmp_path / "ckpt" / "run.pt") in refused.stderr
    assert "batch_size: 8 -> 4" in refused.stderr


def test_yaml_checkpoint_is_refused_for_a_closed_form_fit(tmp_path):
    config = {
        "estimator": "EOFRegression",
        "data": "train.nc",
        "target": "pr",
        "proxy": "psl",
        "output": "eof.clm",
        "checkpoint": "run.pt",
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="EOFRegression does not take the key 'checkpoint'"):
        load_fit_config(path)
