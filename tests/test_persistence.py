import hashlib
import json
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from test_fit_resume import CASES, circulation

import climlatent as cl
from climlatent.errors import CheckpointError, NotFittedError
from climlatent.estimators._repr import history_summary


@pytest.fixture
def saved(fitted_eof, tmp_path):
    path = tmp_path / "model.clm"
    fitted_eof.save(path)
    return path


def test_round_trip_is_bit_identical(fitted_eof, saved, split):
    _, test = split
    loaded = cl.load(saved)
    a, b = fitted_eof.emulate(test)["pr"].values, loaded.emulate(test)["pr"].values
    assert a.tobytes() == b.tobytes()
    assert loaded.get_config() == fitted_eof.get_config()
    np.testing.assert_array_equal(loaded.encode(test).values, fitted_eof.encode(test).values)


def test_loading_never_unpickles(saved, monkeypatch, split):
    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    cl.load(saved).emulate(split[1])


def test_truncated_weights_refused(saved):
    weights = saved / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="weights.safetensors.*truncated or modified"):
        cl.load(saved)


def test_tampered_grid_refused(saved):
    grid = saved / "target_grid.nc"
    data = bytearray(grid.read_bytes())
    data[len(data) // 2] ^= 0xFF
    grid.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="target_grid.nc"):
        cl.load(saved)


def test_corrupt_manifest_refused(saved):
    (saved / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="manifest.json.*corrupt"):
        cl.load(saved)


def test_missing_file_and_not_a_model(saved, tmp_path):
    (saved / "proxy_grid.nc").unlink()
    with pytest.raises(CheckpointError, match="proxy_grid.nc.*missing"):
        cl.load(saved)
    with pytest.raises(CheckpointError, match="not a climlatent model"):
        cl.load(tmp_path / "nothing")


def _edit_manifest(folder, edit) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_a_transform_the_configuration_needs_must_be_in_the_files(fitted_eof, saved):
    """A folder copied without its proxy transform (and the manifest entry) emulated
    unstandardised proxies: 5 kg m-2 s-1 off."""
    assert fitted_eof.proxy_transform == "standardize"
    (saved / "proxy_transform.nc").unlink()
    _edit_manifest(saved, lambda manifest: manifest["files"].pop("proxy_transform.nc"))
    with pytest.raises(CheckpointError, match="proxy_transform='standardize' needs a Standardize"):
        cl.load(saved)


def test_a_target_without_units_is_refused(saved):
    _edit_manifest(saved, lambda manifest: manifest["fitted"]["target_attrs"].pop("units"))
    with pytest.raises(CheckpointError, match="target_attrs of 'pr' have no 'units'"):
        cl.load(saved)


def test_unknown_estimator_refused(saved):
    manifest = json.loads((saved / "manifest.json").read_text())
    manifest["estimator"] = "os.system"
    (saved / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="unknown estimator 'os.system'"):
        cl.load(saved)


def test_save_replaces_existing_and_leaves_no_temp(fitted_eof, saved):
    fitted_eof.save(saved)
    assert sorted(p.name for p in saved.parent.iterdir()) == ["model.clm"]


@pytest.mark.parametrize("occupant", ["data folder", "file", "link"])
def test_save_refuses_to_replace_what_is_not_a_model(fitted_eof, saved, tmp_path, occupant):
    path = tmp_path / "results"
    if occupant == "data folder":
        path.mkdir()
        (path / "thesis.txt").write_text("precious")
    elif occupant == "file":
        path.write_text("precious")
    else:
        path.symlink_to(saved)  # a model, but through a link: replacing it would follow it
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(CheckpointError, match="is not a climlatent model; refusing"):
        fitted_eof.save(path)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    if occupant != "link":
        assert path.is_file() or not (path / "manifest.json").exists()


def test_save_fills_an_empty_folder(fitted_eof, split, tmp_path):
    (tmp_path / "model.clm").mkdir()
    fitted_eof.save(tmp_path / "model.clm")
    out = cl.load(tmp_path / "model.clm").emulate(split[1])
    assert out.equals(fitted_eof.emulate(split[1]))


def test_save_names_a_missing_folder(fitted_eof, tmp_path):
    with pytest.raises(CheckpointError, match="folder .*absent.* does not exist"):
        fitted_eof.save(tmp_path / "absent" / "model.clm")
    assert list(tmp_path.iterdir()) == []


def test_unfitted_estimator(tmp_path, split):
    with pytest.raises(NotFittedError, match="fit"):
        cl.EOFRegression().emulate(split[1])
    with pytest.raises(NotFittedError):
        cl.EOFRegression().save(tmp_path / "m.clm")


def test_a_target_with_numeric_netcdf_attributes_saves(split, tmp_path):
    """valid_min / valid_range read from netCDF are numpy values: saving raised TypeError
    (not JSON serialisable), and `climlatent fit` lost the trained model."""
    train, test = split
    pr = train["pr"].assign_attrs(
        valid_min=np.float32(0.0), valid_range=np.array([0.0, 1.0], np.float32), flag=np.int16(3)
    )
    est = cl.EOFRegression(n_proxy_eofs=3, n_target_eofs=3).fit(train.assign(pr=pr), "pr", "psl")
    est.save(tmp_path / "m.clm")
    loaded = cl.load(tmp_path / "m.clm")
    assert loaded.target_attrs_["valid_range"] == [0.0, 1.0]
    np.testing.assert_array_equal(loaded.emulate(test)["pr"].values, est.emulate(test)["pr"].values)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_a_model_configured_for_cuda_loads_onto_the_cpu_without_it(tmp_path):
    """A model trained with device='cuda' could not be loaded here: 'weights.safetensors
    is invalid: device cuda was requested but CUDA is not available'."""
    world = cl.datasets.synthetic_biogeochem(n_years=1, n_fine_lat=8, n_fine_lon=8)
    est = cl.ProxyDownscaler(epochs=1, progress=False)
    est.fit(world.coarse, world.fine, "chl", proxies={"tos": "exponential"})
    est.save(tmp_path / "m.clm")
    manifest = json.loads((tmp_path / "m.clm" / "manifest.json").read_text())
    manifest["config"]["device"] = "cuda"  # as saved by a fit on a GPU
    (tmp_path / "m.clm" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.warns(RuntimeWarning, match="configured for device 'cuda'.*runs on the CPU"):
        loaded = cl.load(tmp_path / "m.clm")
    assert loaded.device_.type == "cpu"
    np.testing.assert_array_equal(
        loaded.downscale(world.coarse)["chl"].values, est.downscale(world.coarse)["chl"].values
    )


def test_a_model_saved_before_random_streams_refits_with_version_1(tmp_path):
    """A manifest without ``random_streams`` (every model saved before the field) loads
    with version 1, the streams it trained with: a refit gives the weights of
    ``random_streams=1``, not those of the new default, 2."""
    world = cl.datasets.synthetic_biogeochem(n_years=1, n_fine_lat=8, n_fine_lon=8)
    data = (world.coarse, world.fine, "chl")
    options = dict(epochs=2, progress=False, device="cpu", noise=True, seed=4)
    cl.ProxyDownscaler(**options).fit(*data, proxies={"tos": "exponential"}).save(tmp_path / "m")
    assert cl.load(tmp_path / "m").random_streams == 2
    _edit_manifest(tmp_path / "m", lambda manifest: manifest["config"].pop("random_streams"))
    loaded = cl.load(tmp_path / "m")
    assert loaded.random_streams == 1
    loaded.fit(*data, proxies={"tos": "exponential"})
    version = {v: cl.ProxyDownscaler(**options, random_streams=v) for v in (1, 2)}
    for est in version.values():
        est.fit(*data, proxies={"tos": "exponential"})
    weights = {
        name: est.module_.state_dict() for name, est in [("loaded", loaded), *version.items()]
    }
    assert all(torch.equal(t, weights[1][k]) for k, t in weights["loaded"].items())
    assert not all(torch.equal(t, weights[2][k]) for k, t in weights["loaded"].items())


def test_loading_leaves_the_callers_global_random_states_as_it_found_them(tmp_path):
    """Building the loaded torch model drew its initial weights from the global
    generator: after ``cl.load``, the caller's seeded ``torch.rand`` gave other numbers."""
    ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=8, n_lon=8)
    est = cl.VED(latent_dim=2, hidden=8, epochs=1, progress=False, device="cpu")
    est.fit(ds, target="tas", proxy="psl").save(tmp_path / "m.clm")
    torch.manual_seed(13)
    expected = torch.rand(4)
    torch.manual_seed(13)
    loaded = cl.load(tmp_path / "m.clm")
    assert torch.equal(torch.rand(4), expected)
    np.testing.assert_array_equal(loaded.emulate(ds)["tas"].values, est.emulate(ds)["tas"].values)


# Saves a model and a checkpoint over good ones on a full disk: files over 4000 bytes
# fail with EFBIG (SIGXFSZ ignored), as on a full file system.
_FULL_DISK = """
import resource, signal, sys, torch
import climlatent as cl
from climlatent.checkpoint import save_checkpoint
model = cl.load("model.clm")
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))
for name, write in [("model.clm", lambda: model.save("model.clm")),
                    ("run.pt", lambda: save_checkpoint({"w": torch.ones(5000)}, "run.pt"))]:
    try:
        write()
    except Exception as error:
        print(name, type(error).__name__, str(error).splitlines()[0])
"""


def test_a_full_disk_leaves_the_model_and_checkpoint_saved_before(fitted_eof, saved, split):
    """On a full disk safetensors' SafetensorError and torch's RuntimeError ("enforce
    fail at inline_container.cc") came out raw (a traceback from ``climlatent fit``),
    and the checkpoint left a truncated ``run.pt.tmp`` beside the good one."""
    from climlatent.checkpoint import load_checkpoint, save_checkpoint

    save_checkpoint({"epoch": 3}, saved.parent / "run.pt")
    before = {p: p.read_bytes() for p in saved.parent.rglob("*") if p.is_file()}
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_FULL_DISK)],
        cwd=saved.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = run.stdout.splitlines()
    assert len(lines) == 2, run.stdout
    assert lines[0].startswith("model.clm CheckpointError cannot save a model to 'model.clm': ")
    assert "File too large" in lines[0]  # the cause, EFBIG, is said
    assert lines[1].startswith("run.pt CheckpointError cannot write checkpoint 'run.pt': ")
    assert {p: p.read_bytes() for p in saved.parent.rglob("*") if p.is_file()} == before
    assert load_checkpoint(saved.parent / "run.pt") == {"epoch": 3}
    assert cl.load(saved).emulate(split[1]).equals(fitted_eof.emulate(split[1]))


@pytest.mark.parametrize("name", list(CASES))
def test_the_training_history_is_saved_with_the_model(name, tmp_path):
    """A loaded model had no history_ (the repr no training row, training_history(loaded)
    said "fit it first"): history.nc now holds it, every value, column, dtype and the
    epoch index as they were, with best_epoch_."""
    case = CASES[name]
    est = case.make(epochs=2)
    case.fit(est, case.data())
    est.save(tmp_path / "m.clm")
    loaded = cl.load(tmp_path / "m.clm")
    pd.testing.assert_frame_equal(
        loaded.history_, est.history_, check_exact=True, check_index_type=True
    )
    assert loaded.history_.index.equals(pd.RangeIndex(2, name="epoch"))
    assert loaded.best_epoch_ == est.best_epoch_
    summary = history_summary(est.history_, est.best_epoch_)
    assert f"{summary}</td>" in loaded._repr_html_()
    assert [ax.get_title() for ax in cl.plot.training_history(loaded).axes] == [
        ax.get_title() for ax in cl.plot.training_history(est).axes
    ]


def test_a_model_saved_without_its_history_loads_and_says_so(tmp_path):
    case = CASES["VED"]
    est = case.make(epochs=2)
    case.fit(est, case.data())
    est.save(tmp_path / "m.clm")
    history = xr.open_dataset(tmp_path / "m.clm" / "history.nc").load()
    (tmp_path / "m.clm" / "history.nc").unlink()  # as saved before it was kept
    _edit_manifest(tmp_path / "m.clm", lambda manifest: manifest["files"].pop("history.nc"))
    old = cl.load(tmp_path / "m.clm")
    assert not hasattr(old, "history_")
    with pytest.raises(cl.errors.InputDataError, match="VED has no training history: the model "
                       r"was saved without it \(by an older climlatent\); refit"):  # fmt: skip
        cl.plot.training_history(old)
    assert "not saved with the model" in old._repr_html_()
    with pytest.raises(cl.errors.InputDataError, match="only the torch estimators record one"):
        cl.plot.training_history(cl.EOFRegression(n_proxy_eofs=2).fit(circulation(), "pr", "psl"))
    # a history.nc listed with its checksum but not a history is refused, naming it
    file = tmp_path / "m.clm" / "history.nc"
    for bad in (history.assign_attrs(best_epoch=7), history.isel(epoch=[1, 0])):
        bad.to_netcdf(file)
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        _edit_manifest(file.parent, lambda m, d=digest: m["files"].update({file.name: d}))
        with pytest.raises(CheckpointError, match=r"history\.nc' is invalid"):
            cl.load(file.parent)
