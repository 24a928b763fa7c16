import json
import pickle

import numpy as np
import pytest

import climlatent as cl
from climlatent.errors import CheckpointError, NotFittedError


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


def test_unknown_estimator_refused(saved):
    manifest = json.loads((saved / "manifest.json").read_text())
    manifest["estimator"] = "os.system"
    (saved / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="unknown estimator 'os.system'"):
        cl.load(saved)


def test_save_replaces_existing_and_leaves_no_temp(fitted_eof, saved):
    fitted_eof.save(saved)
    assert sorted(p.name for p in saved.parent.iterdir()) == ["model.clm"]


def test_unfitted_estimator(tmp_path, split):
    with pytest.raises(NotFittedError, match="fit"):
        cl.EOFRegression().emulate(split[1])
    with pytest.raises(NotFittedError):
        cl.EOFRegression().save(tmp_path / "m.clm")
