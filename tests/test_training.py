import dataclasses
import random
import re
import struct
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from climlatent._epoch import LossMeans, shuffled
from climlatent.benchmarks.training_throughput import bare_loop
from climlatent.errors import CheckpointError, InputDataError
from climlatent.estimators._refit import seed_global
from climlatent.models import DenseAutoencoder
from climlatent.random_streams import stream_seed
from climlatent.training import TrainingConfig, fit, validation_split

QUIET = TrainingConfig(epochs=4, batch_size=16, lr=1e-2, progress=False, device="cpu")


class Regressor(nn.Module):
    """Small MLP regressor; dropout makes training draw from the global torch RNG."""

    def __init__(self, n_in: int = 4, width: int = 16, dropout: float = 0.2) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_in, width), nn.Tanh(), nn.Dropout(dropout), nn.Linear(width, 1)
        )
        self.epochs_started: list[int] = []
        self.calls = 0

    def on_epoch_start(self, epoch: int) -> None:
        self.epochs_started.append(epoch)

    def training_losses(self, batch):
        self.calls += 1
        x, y = batch
        return {"loss": F.mse_loss(self.net(x).squeeze(-1), y)}


class TwoGroups(nn.Module):
    """Group "first" pulls p to 2 and q to 5; group "second" owns q and pulls it to target."""

    def __init__(self, second_target: float | None) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.zeros(3))
        self.q = nn.Parameter(torch.ones(3))
        self.second_target = second_target
        self.calls = 0

    def optimizer_groups(self):
        return {"first": [self.p], "second": [self.q]}

    def training_losses(self, batch):
        self.calls += 1
        first = ((self.p - 2) ** 2).sum() + ((self.q - 5) ** 2).sum()
        if self.second_target is None:
            second = (self.q * 0).sum()
        else:
            second = ((self.q - self.second_target) ** 2).sum()
        return {"first": first, "second": second, "gap": (self.p - self.q).abs().mean()}


def regression_data(n: int = 96, n_in: int = 4, noise: float = 0.1, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, n_in, generator=generator)
    y = x @ torch.linspace(-1.0, 2.0, n_in) + 0.5 + noise * torch.randn(n, generator=generator)
    return x, y


def new_regressor(seed: int = 0, **kwargs) -> Regressor:
    torch.manual_seed(seed)
    return Regressor(**kwargs)


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    state_a, state_b = a.state_dict(), b.state_dict()
    assert list(state_a) == list(state_b)
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key


def losses_only(history: pd.DataFrame) -> pd.DataFrame:
    return history.drop(columns="seconds")


@pytest.mark.parametrize("streams", [1, 2])
def test_same_seed_same_weights_and_history(streams):
    data = regression_data()
    runs = [(new_regressor(), seed) for seed in (3, 3, 4)]
    config = dataclasses.replace(QUIET, random_streams=streams)
    results = [fit(model, data, dataclasses.replace(config, seed=seed)) for model, seed in runs]
    assert_same_weights(runs[0][0], runs[1][0])
    pd.testing.assert_frame_equal(
        losses_only(results[0].history), losses_only(results[1].history), check_exact=True
    )
    assert not torch.equal(runs[0][0].net[0].weight, runs[2][0].net[0].weight)


def test_history_layout_and_epoch_hook():
    model = new_regressor()
    result = fit(model, regression_data(), QUIET)
    history = result.history
    assert list(history.columns) == ["train_loss", "valid_loss", "lr", "seconds"]
    assert history.index.name == "epoch" and list(history.index) == [0, 1, 2, 3]
    assert model.epochs_started == [0, 1, 2, 3]
    assert result.best_epoch == history["valid_loss"].idxmin()
    assert not result.stopped_early


def test_a_trained_module_keeps_no_gradients():
    """The last step's gradients stayed on every fitted model: as much memory again as
    its weights, for as long as the model lived (and in its pickles)."""
    model = new_regressor()
    fit(model, regression_data(), QUIET)
    assert [name for name, p in model.named_parameters() if p.grad is not None] == []


@pytest.mark.parametrize(("stop_at", "every"), [(1, 1), (3, 2)])
def test_resume_is_bit_identical_to_uninterrupted(tmp_path, stop_at, every):
    data = regression_data()
    config = dataclasses.replace(QUIET, epochs=6, checkpoint_every=every)
    full_model = new_regressor()
    full = fit(full_model, data, dataclasses.replace(config, checkpoint_path=tmp_path / "a.pt"))
    full_rng = (np.random.get_state()[1].copy(), random.getstate())  # noqa: NPY002

    path = tmp_path / "b.pt"
    fit(new_regressor(), data, dataclasses.replace(config, epochs=stop_at, checkpoint_path=path))
    for seed_global_rng in (torch.manual_seed, np.random.seed, random.seed):  # noqa: NPY002
        seed_global_rng(99)  # as in a fresh process
    resumed_model = new_regressor(seed=123)
    resumed = fit(
        resumed_model, data, dataclasses.replace(config, checkpoint_path=path), resume=True
    )

    assert_same_weights(full_model, resumed_model)
    pd.testing.assert_frame_equal(
        losses_only(full.history), losses_only(resumed.history), check_exact=True
    )
    assert resumed_model.epochs_started == list(range(stop_at, 6))
    assert resumed.best_epoch == full.best_epoch
    np.testing.assert_array_equal(np.random.get_state()[1], full_rng[0])  # noqa: NPY002
    assert random.getstate() == full_rng[1]


def test_early_stopping_restores_best_weights():
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(48, 4, generator=generator), torch.randn(48, generator=generator)
    model = new_regressor(width=256, dropout=0.0)
    patience = 5
    config = dataclasses.replace(
        QUIET, epochs=300, validation_fraction=0.25, early_stopping_patience=patience
    )
    result = fit(model, (x, y), config)

    valid = result.history["valid_loss"]
    assert result.stopped_early
    assert result.best_epoch == valid.idxmin()
    assert len(valid) == result.best_epoch + patience + 1 < config.epochs
    index = result.valid_indices
    with torch.no_grad():
        restored = model.eval().training_losses((x[index], y[index]))["loss"].item()
    assert restored == pytest.approx(valid.min(), rel=1e-5)
    assert restored < valid.iloc[-1]


def test_plateaus_drop_the_learning_rate_then_stop_after_the_start_epoch():
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(48, 4, generator=generator), torch.randn(48, generator=generator)
    patience, start = 4, 6
    config = dataclasses.replace(
        QUIET, epochs=400, validation_fraction=0.25, early_stopping_patience=patience,
        early_stopping_start=start, plateau_lr_drops=2, plateau_lr_factor=0.5,
    )  # fmt: skip
    result = fit(new_regressor(width=256, dropout=0.0), (x, y), config)

    history = result.history
    valid = history["valid_loss"]
    assert result.stopped_early
    assert result.best_epoch == valid.iloc[start:].idxmin() >= start
    lrs = history["lr"].to_numpy()
    drops = np.flatnonzero(np.diff(lrs)) + 1  # first epoch at each lower rate
    np.testing.assert_allclose(lrs[drops], [5e-3, 2.5e-3])
    for first in drops:  # each drop came after `patience` epochs without a new best
        before = valid.iloc[start : first - 1]
        assert valid.iloc[first - 1 - patience + 1 : first].min() >= before.min()
    assert len(valid) - 1 - max(result.best_epoch, drops[-1] - 1) == patience


@pytest.mark.parametrize(("n_samples", "fraction"), [(100, 0.1), (7, 0.5), (10, 0.01)])
def test_validation_split_is_disjoint_and_reproducible(n_samples, fraction):
    def split(seed):
        return validation_split(n_samples, fraction, torch.Generator().manual_seed(seed))

    train, valid = split(0)
    assert len(valid) == max(round(n_samples * fraction), 1)
    assert set(train.tolist()).isdisjoint(valid.tolist())
    assert sorted(train.tolist() + valid.tolist()) == list(range(n_samples))
    for a, b in zip(split(0), (train, valid), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(split(1)[1], valid) or n_samples < 10


@pytest.mark.parametrize("streams", [1, 2])
def test_fit_uses_the_documented_split(streams):
    data = regression_data(n=50)
    config = dataclasses.replace(QUIET, epochs=1, validation_fraction=0.2, seed=7)
    config = dataclasses.replace(config, random_streams=streams)
    result = fit(new_regressor(), data, config)
    seed = 7 if streams == 1 else stream_seed(7, 2, "validation")  # version 1: the seed itself
    train, valid = validation_split(50, 0.2, torch.Generator().manual_seed(seed))
    assert torch.equal(result.train_indices, train) and torch.equal(result.valid_indices, valid)
    no_validation = fit(new_regressor(), data, dataclasses.replace(config, validation_fraction=0))
    assert len(no_validation.valid_indices) == 0 and "valid_loss" not in no_validation.history


def test_groups_step_only_their_own_parameters():
    model = TwoGroups(second_target=None)
    config = dataclasses.replace(QUIET, epochs=5, lr=0.1, validation_fraction=0.0)
    result = fit(model, (torch.zeros(64, 1),), config)
    assert model.calls == 5 * 4 * 2  # one forward pass per group and batch
    assert torch.equal(model.q.detach(), torch.ones(3))  # its only gradient came from "first"
    assert (model.p.detach() > 1.0).all()
    assert {"train_first", "train_second", "train_gap"} <= set(result.history.columns)


def test_alternating_groups_minimise_their_own_losses():
    model = TwoGroups(second_target=-1.0)
    config = dataclasses.replace(QUIET, epochs=40, lr=0.1, validation_fraction=0.0)
    fit(model, (torch.zeros(64, 1),), config)
    torch.testing.assert_close(model.p.detach(), torch.full((3,), 2.0), atol=0.05, rtol=0)
    torch.testing.assert_close(model.q.detach(), torch.full((3,), -1.0), atol=0.05, rtol=0)


def test_single_group_computes_losses_once_per_batch():
    model = new_regressor()
    fit(model, regression_data(n=64), dataclasses.replace(QUIET, validation_fraction=0.0))
    assert model.calls == 4 * 4


@pytest.mark.parametrize("streams", [1, 2])
def test_fit_trains_like_a_bare_torch_loop(streams):
    x = torch.randn(200, 16, generator=torch.Generator().manual_seed(0))
    config = dataclasses.replace(QUIET, epochs=2, batch_size=32, validation_fraction=0.0)
    config = dataclasses.replace(config, random_streams=streams)
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(DenseAutoencoder(16, 3, hidden=(8,)))
    fit(models[0], (x,), config)
    bare_loop(models[1], (x,), config)
    assert_same_weights(*models)


@pytest.mark.parametrize("streams", [1, 2])
def test_bare_loop_draws_the_noise_fit_draws(streams):
    """A model that draws from the global generator (dropout) trains alike in both."""
    config = dataclasses.replace(QUIET, epochs=2, validation_fraction=0.0, random_streams=streams)
    models = [new_regressor(), new_regressor()]
    fit(models[0], regression_data(n=64), config)
    bare_loop(models[1], regression_data(n=64), config)
    assert_same_weights(*models)


def test_version_1_streams_replay_the_seeding_before_version_2():
    """random_streams=1 is the old arithmetic, bit for bit: a dropout model trained on
    splits, noise and orders seeded with seed, seed and seed + epoch (as before it)."""
    data = regression_data(n=60)
    config = dataclasses.replace(QUIET, epochs=3, seed=5, validation_fraction=0.25)
    model = new_regressor()
    result = fit(model, data, dataclasses.replace(config, random_streams=1))
    old = new_regressor()
    valid = torch.randperm(60, generator=torch.Generator().manual_seed(5))[:15].sort().values
    train = torch.tensor(sorted(set(range(60)) - set(valid.tolist())))
    torch.manual_seed(5), np.random.seed(5), random.seed(5)  # noqa: NPY002
    optimizer = torch.optim.Adam(old.parameters(), lr=config.lr)
    for epoch in range(3):
        old.train()
        order = train[torch.randperm(45, generator=torch.Generator().manual_seed(5 + epoch))]
        for start in range(0, 45, config.batch_size):
            loss = old.training_losses(tuple(t[order[start : start + 16]] for t in data))["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    assert torch.equal(result.valid_indices, valid)
    assert_same_weights(model, old)


class _NoiseRecorder(nn.Module):
    """Records the standard normals each batch draws from the global torch generator."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.draws: list[Tensor] = []

    def training_losses(self, batch):
        self.draws.append(torch.randn(len(batch[0])))
        return {"loss": ((self.w - batch[0].mean()) ** 2).sum()}


@pytest.mark.parametrize(("streams", "replayed"), [(1, True), (2, False)])
def test_version_2_training_noise_is_not_the_initial_weights_stream(streams, replayed):
    """Version 1's first noise draws are the very normals behind the initial weights
    (seed_global and fit's noise both seed torch with ``seed``); version 2's are not."""
    seed_global(11, streams)
    weights_draws = torch.randn(16)
    model = _NoiseRecorder()
    config = dataclasses.replace(QUIET, epochs=1, seed=11, validation_fraction=0.0)
    fit(model, (torch.zeros(16),), dataclasses.replace(config, random_streams=streams))
    assert torch.equal(model.draws[0], weights_draws) is replayed
    assert bool((model.draws[0] == weights_draws).any()) is replayed  # none shared in 2


@pytest.mark.parametrize(("streams", "shared"), [(1, 49 * 9), (2, 0)])
def test_version_2_batch_orders_of_neighbouring_seeds_never_coincide(streams, shared):
    """Version 1 seeds epoch e's order with seed + e: seed s + 1 replays seed s's orders
    one epoch later (49 of 50 epochs for each of 9 seed pairs). Version 2 shares none
    at any epoch pair, and its epoch-0 order is not the split's permutation."""
    indices = torch.arange(40)
    orders = {
        seed: [tuple(shuffled(indices, seed, epoch, streams).tolist()) for epoch in range(50)]
        for seed in range(10)
    }
    coinciding = sum(len(set(orders[s]) & set(orders[s + 1])) for s in range(9))
    assert coinciding == shared
    split_permutation = torch.randperm(40, generator=torch.Generator().manual_seed(
        stream_seed(3, streams, "validation")))  # fmt: skip
    assert (orders[3][0] == tuple(split_permutation.tolist())) is (streams == 1)
    assert len({order for seed_orders in orders.values() for order in seed_orders}) == (
        10 * 50 - shared
    )


def test_a_checkpoint_of_version_1_resumes_only_as_version_1(tmp_path):
    """Version 1 leaves random_streams out of the run fingerprint, as every checkpoint
    written before the field did: those resume with random_streams=1, and a default
    (version 2) fit refuses them, naming the field."""
    path = tmp_path / "run.pt"
    config = dataclasses.replace(QUIET, epochs=2, checkpoint_path=path, random_streams=1)
    fit(new_regressor(), regression_data(), config)
    assert "random_streams" not in torch.load(path, weights_only=True)["fingerprint"]
    with pytest.raises(CheckpointError, match=r"random_streams: \(absent\) -> 2"):
        fit(new_regressor(), regression_data(), dataclasses.replace(config, random_streams=2,
            epochs=3), resume=True)  # fmt: skip
    resumed = fit(new_regressor(), regression_data(), dataclasses.replace(config, epochs=3),
                  resume=True)  # fmt: skip
    assert len(resumed.history) == 3


class _Foreign:
    pass


def _flip_a_bit_of_the_largest_record(path) -> None:
    """Flip one bit amid the bytes of the checkpoint archive's largest record (a tensor)."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        record = max(archive.infolist(), key=lambda info: info.file_size)
    start = record.header_offset + 30  # the local header's fixed part, then name and extra
    name, extra = struct.unpack("<HH", raw[record.header_offset + 26 : start])
    raw[start + name + extra + record.file_size // 2] ^= 0x01
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "foreign_object", "bit_flipped"])
def test_damaged_checkpoint_raises_checkpoint_error(tmp_path, damage):
    path = tmp_path / "run" / "checkpoint.pt"
    data = regression_data(n=32)
    config = dataclasses.replace(QUIET, epochs=1, checkpoint_path=path)
    fit(new_regressor(), data, config)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint")
    elif damage == "bit_flipped":  # torch.load reads it: a wrong weight, silently
        _flip_a_bit_of_the_largest_record(path)
        assert torch.load(path, weights_only=True)
    else:
        torch.save({"format": 1, "payload": _Foreign()}, path)
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        fit(new_regressor(), data, dataclasses.replace(config, epochs=2), resume=True)


def test_recovers_linear_regression_coefficients():
    x, y = regression_data(n=512, n_in=3, noise=0.1)
    model = nn.Linear(3, 1)
    model.training_losses = lambda batch: {
        "loss": F.mse_loss(model(batch[0]).squeeze(-1), batch[1])
    }
    config = dataclasses.replace(
        QUIET,
        epochs=60,
        batch_size=64,
        lr=0.05,
        validation_fraction=0.0,
        lr_decay=0.5,
        lr_decay_steps=60,
    )
    result = fit(model, (x, y), config)

    design = np.column_stack([x.numpy(), np.ones(len(x))])
    exact, *_ = np.linalg.lstsq(design, y.numpy(), rcond=None)
    fitted = np.append(model.weight.detach().numpy().ravel(), model.bias.item())
    np.testing.assert_allclose(fitted, exact, atol=2e-3)
    train_loss = result.history["train_loss"]
    assert train_loss.iloc[-1] < 0.02 < train_loss.iloc[0]


def test_lr_decay_follows_step_schedule():
    steps_per_epoch, decay, every = 10, 0.5, 3
    config = dataclasses.replace(
        QUIET,
        batch_size=10,
        lr=0.1,
        lr_decay=decay,
        lr_decay_steps=every,
        validation_fraction=0.0,
    )
    result = fit(new_regressor(), regression_data(n=100), config)
    steps = steps_per_epoch * (result.history.index + 1)
    np.testing.assert_allclose(result.history["lr"], 0.1 * decay ** (steps // every), rtol=1e-12)


def test_progress_false_prints_nothing(capsys):
    data = regression_data(n=32)
    fit(new_regressor(), data, QUIET)
    assert capsys.readouterr() == ("", "")
    fit(new_regressor(), data, dataclasses.replace(QUIET, progress=True))
    assert "epoch" in capsys.readouterr().err  # the check above can see a bar


def test_rejects_bad_input():
    with pytest.raises(InputDataError, match="first"):
        fit(new_regressor(), (torch.zeros(10, 4), torch.zeros(9)), QUIET)
    with pytest.raises(ValueError, match="early stopping"):
        TrainingConfig(early_stopping_patience=3, validation_fraction=0.0)


@pytest.mark.parametrize("validation_fraction", [0.0, 0.25])
def test_an_unknown_monitor_is_refused_at_the_first_batch_naming_the_losses(
    validation_fraction,
):
    """A misspelt monitor trained a whole epoch, then failed as KeyError: 'los' (or,
    without validation, was never looked at); a key the losses hold is taken."""
    model = new_regressor()
    config = dataclasses.replace(QUIET, monitor="los", validation_fraction=validation_fraction)
    message = re.escape(
        "monitor 'los' is not a loss of the model: its training_losses are ['loss']"
    )
    with pytest.raises(ValueError, match=message):
        fit(model, regression_data(n=64), config)
    assert model.calls == 1  # of 3 or 4 batches an epoch
    fit(new_regressor(), regression_data(n=64), dataclasses.replace(config, monitor="loss"))


def test_amp_off_cuda_warns_that_it_is_ignored():
    with pytest.warns(RuntimeWarning, match="amp=True is ignored: mixed precision trains on CUDA"):
        fit(new_regressor(), regression_data(n=32), dataclasses.replace(QUIET, epochs=1, amp=True))


def test_the_losses_of_a_float64_model_are_logged_in_float64():
    means = LossMeans()
    means.add({"loss": torch.tensor(1 + 1e-12, dtype=torch.float64)}, size=3)
    means.add({"loss": torch.tensor(1.0, dtype=torch.float64)}, size=1)
    assert means.means()["loss"] == (3 * (1 + 1e-12) + 1) / 4  # was 1.0: float32 sums
