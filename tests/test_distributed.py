"""Data-parallel training: 1-process gloo equals a plain run; 2 torchrun ranks equal batch 2B."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.distributed as dist

from climlatent import distributed
from climlatent.models import DenseAutoencoder
from climlatent.training import TrainingConfig, fit

CONFIG = TrainingConfig(epochs=4, batch_size=32, lr=1e-2, validation_fraction=0.125, progress=False)
# samples and validation_fraction of runs whose samples do not split evenly over 2 ranks:
# 219 training samples (the last batch of 27 splits 14 + 13), 193 (the last batch of 1
# leaves rank 1 nothing), 1 validation sample (rank 1 validates nothing)
UNEVEN = {"odd": (250, 0.125), "one_short": (221, 0.125), "tiny_valid": (64, 0.01)}


def _data(n=256):
    return (torch.randn(n, 12, generator=torch.Generator().manual_seed(1)),)


def _model():
    torch.manual_seed(0)
    return DenseAutoencoder(12, 3, hidden=(16,))


def test_one_process_gloo_group_gives_the_plain_loss_curve(tmp_path):
    plain = _model()
    expected = fit(plain, _data(), CONFIG).history
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1
    )
    try:
        assert distributed.is_distributed() and distributed.world_size() == 1
        parallel = _model()
        history = fit(parallel, _data(), CONFIG).history
    finally:
        dist.destroy_process_group()
    columns = ["train_loss", "valid_loss"]
    np.testing.assert_array_equal(history[columns].to_numpy(), expected[columns].to_numpy())
    for a, b in zip(plain.state_dict().values(), parallel.state_dict().values(), strict=True):
        assert torch.equal(a, b)


SCRIPT = textwrap.dedent(
    """
    import dataclasses, json, sys
    import torch
    from climlatent import distributed
    from climlatent.models import DenseAutoencoder
    from climlatent.training import TrainingConfig, fit

    out = sys.argv[1]
    torch.set_num_threads(1)
    if hasattr(torch._C, "_set_print_stack_traces_on_fatal_signal"):  # C++ stacks on abort
        torch._C._set_print_stack_traces_on_fatal_signal(True)
    def samples(n):
        return (torch.randn(n, 12, generator=torch.Generator().manual_seed(1)),)

    data = samples(256)
    config = TrainingConfig(
        epochs=4, batch_size=16, lr=1e-2, validation_fraction=0.125, progress=False,
        checkpoint_path=f"{out}/straight.pt",
    )

    def model():
        torch.manual_seed(0)
        return DenseAutoencoder(12, 3, hidden=(16,))

    straight = model()
    history = fit(straight, data, config).history
    halves = dataclasses.replace(config, checkpoint_path=f"{out}/halves.pt")
    fit(model(), data, dataclasses.replace(halves, epochs=2))
    resumed = model()
    resumed_history = fit(resumed, data, halves, resume=True).history
    same = all(
        torch.equal(a, b)
        for a, b in zip(straight.state_dict().values(), resumed.state_dict().values())
    )
    # batch norm: every rank validates, and ends with, rank 0's running statistics
    torch.manual_seed(0)
    normed = torch.nn.Sequential(
        torch.nn.Linear(12, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(), torch.nn.Linear(16, 12)
    )
    normed.training_losses = lambda batch: {"loss": ((normed(batch[0]) - batch[0]) ** 2).mean()}
    fit_normed = fit(normed, data, dataclasses.replace(config, epochs=3, checkpoint_path=None))
    normed.eval()
    with torch.no_grad():
        own = normed.training_losses((data[0][fit_normed.valid_indices],))["loss"].item()
    json.dump(
        {
            "logged": fit_normed.history["valid_loss"].iloc[-1],
            "own": own,
            "buffers": {k: v.tolist() for k, v in normed.state_dict().items() if "running" in k},
        },
        open(f"{out}/normed{distributed.rank()}.json", "w"),
    )
    # no padding: an uneven split trains as one process does (early stopping as well)
    uneven = {}
    stopping = dataclasses.replace(config, early_stopping_patience=1, checkpoint_path=None)
    for name, (n, fraction) in UNEVEN.items():
        uneven_model = model()
        split = dataclasses.replace(stopping, validation_fraction=fraction)
        run = fit(uneven_model, samples(n), split)
        uneven[name] = {
            "history": run.history.drop(columns="seconds").to_dict(orient="list"),
            "best_epoch": run.best_epoch,
            "weights": {k: v.tolist() for k, v in uneven_model.state_dict().items()},
        }
    # ... and resumes exactly (a short last batch, an empty share)
    short = dataclasses.replace(stopping, checkpoint_path=f"{out}/short.pt")
    fit(model(), samples(221), dataclasses.replace(short, epochs=2))
    resumed = model()
    fit(resumed, samples(221), short, resume=True)
    uneven["resumed_one_short"] = {k: v.tolist() for k, v in resumed.state_dict().items()}
    json.dump(uneven, open(f"{out}/uneven{distributed.rank()}.json", "w"))
    if distributed.is_main_process():
        json.dump(
            {
                "world_size": distributed.world_size(),
                "train_loss": history["train_loss"].tolist(),
                "valid_loss": history["valid_loss"].tolist(),
                "resumed_train_loss": resumed_history["train_loss"].tolist(),
                "resume_identical": same,
                "weights": {k: v.tolist() for k, v in straight.state_dict().items()},
            },
            open(f"{out}/result.json", "w"),
        )
    """
).replace("UNEVEN", repr(UNEVEN))


@pytest.mark.slow
@pytest.mark.skipif(not dist.is_gloo_available(), reason="torch built without gloo")
def test_two_torchrun_ranks_train_like_one_process_with_twice_the_batch(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", str(script), str(tmp_path)]
    # a rank that aborts prints its Python and C++ stacks; the whole log is kept (an
    # abort at exit, about once in a few hundred runs under load: a gloo worker alive in
    # the interpreter's teardown, see the test of _leave_group below)
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    run = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=240)
    assert run.returncode == 0, run.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["world_size"] == 2
    reference = _model()
    expected = fit(reference, _data(), CONFIG).history
    np.testing.assert_allclose(result["train_loss"], expected["train_loss"], rtol=1e-5)
    np.testing.assert_allclose(result["valid_loss"], expected["valid_loss"], rtol=1e-5)
    for key, value in reference.state_dict().items():
        np.testing.assert_allclose(result["weights"][key], value.numpy(), atol=1e-5)
    # resume under DDP continues exactly; rank 0 alone wrote whole checkpoints
    assert result["resume_identical"]
    assert result["resumed_train_loss"] == result["train_loss"]
    assert sorted(p.name for p in tmp_path.glob("*.pt*")) == [
        "halves.pt",
        "short.pt",
        "straight.pt",
    ]
    # batch norm: one model on both ranks, whose validation loss is the one logged (each
    # rank's statistics followed its own shard, up to 0.14 apart, and the logged loss
    # averaged two models, 8 % off the saved one)
    normed = [json.loads((tmp_path / f"normed{rank}.json").read_text()) for rank in (0, 1)]
    assert normed[0]["buffers"] == normed[1]["buffers"]
    for rank in normed:
        np.testing.assert_allclose(rank["own"], rank["logged"], rtol=1e-6)
    # samples that do not split evenly: no sample repeated (DistributedSampler's padding
    # counted one twice per epoch, 1.4e-2 off in the weights, and an empty validation
    # shard crashed), the same model on both ranks
    uneven = [json.loads((tmp_path / f"uneven{rank}.json").read_text()) for rank in (0, 1)]
    assert uneven[0] == uneven[1]
    assert uneven[0]["resumed_one_short"] == uneven[0]["one_short"]["weights"]
    for name, (n, fraction) in UNEVEN.items():
        reference = _model()
        config = dataclasses.replace(
            CONFIG, validation_fraction=fraction, early_stopping_patience=1
        )
        run = fit(reference, _data(n), config)
        history = run.history.drop(columns="seconds").to_dict(orient="list")
        assert uneven[0][name]["history"].keys() == history.keys()
        assert uneven[0][name]["best_epoch"] == run.best_epoch
        for key, values in history.items():
            np.testing.assert_allclose(uneven[0][name]["history"][key], values, rtol=1e-5)
        for key, value in reference.state_dict().items():
            np.testing.assert_allclose(uneven[0][name]["weights"][key], value.numpy(), atol=1e-5)


def test_resuming_with_another_world_size_is_refused(tmp_path):
    path = tmp_path / "run.pt"
    config = dataclasses.replace(CONFIG, epochs=1, checkpoint_path=path)
    fit(_model(), _data(), config)
    state = torch.load(path, weights_only=True)
    torch.save({**state, "world_size": 2}, path)
    with pytest.raises(Exception, match="written by 2 processes, resumed by 1"):
        fit(_model(), _data(), dataclasses.replace(config, epochs=2), resume=True)


EXIT_SCRIPT = textwrap.dedent(
    """
    import atexit
    import torch.distributed as dist
    from climlatent import distributed

    # registered first, so it runs last: after climlatent's own exit handler
    atexit.register(lambda: print("group at exit:", dist.is_initialized()))
    print("group in run:", distributed.setup())
    """
)


def run_as_one_torchrun_rank(source: str, path) -> subprocess.CompletedProcess:
    """Run the script ``source`` as rank 0 of 1 under torchrun's environment variables."""
    path.write_text(source)
    environment = {
        **os.environ,
        **{"RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "0"},
    }
    run = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, env=environment, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run


@pytest.mark.skipif(not dist.is_gloo_available(), reason="torch built without gloo")
def test_a_group_joined_by_setup_is_destroyed_before_interpreter_teardown(tmp_path):
    run = run_as_one_torchrun_rank(EXIT_SCRIPT, tmp_path / "leave.py")
    assert run.stdout.split("\n")[:2] == ["group in run: True", "group at exit: False"]


THREADS_SCRIPT = textwrap.dedent(
    """
    import os, torch
    from climlatent import distributed
    from climlatent.models import DenseAutoencoder
    from climlatent.training import TrainingConfig, fit

    def threads():
        return sorted(open(f"/proc/self/task/{t}/comm").read().strip()
                      for t in os.listdir("/proc/self/task"))

    config = TrainingConfig(epochs=1, batch_size=16, progress=False)  # Adam: imports dynamo
    fit(DenseAutoencoder(12, 3, hidden=(16,)), (torch.randn(64, 12),), config)
    print("in run:", threads())
    distributed._leave_group()
    print("left:", threads())
    """
)


@pytest.mark.skipif(not dist.is_gloo_available(), reason="torch built without gloo")
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="thread names from Linux /proc")
def test_leaving_the_group_after_training_joins_the_gloo_worker_threads(tmp_path):
    """No gloo worker outlives the group into the interpreter's teardown, where it aborts."""
    run = run_as_one_torchrun_rank(THREADS_SCRIPT, tmp_path / "threads.py")
    in_run, left = run.stdout.splitlines()[-2:]
    assert "pt_gloo_runloop" in in_run
    assert "gloo" not in left, left


class _Joined:
    """Stands in for ``torch.distributed.init_process_group`` and ``set_device``."""

    def __init__(self):
        self.backend, self.device = None, None

    def init(self, backend):
        self.backend = backend

    def set_device(self, index):
        self.device = index


def _torchrun_environment(monkeypatch, cuda):
    joined = _Joined()
    for key, value in {"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1",
                       "LOCAL_RANK": "1"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(dist, "is_nccl_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", joined.init)
    monkeypatch.setattr(torch.cuda, "set_device", joined.set_device)
    monkeypatch.setattr(distributed.atexit, "register", lambda function: None)
    distributed.setup()
    return joined


def test_setup_on_gpus_makes_the_local_rank_current_and_joins_nccl_with_gloo(monkeypatch):
    """Rank 1 of 2 on a GPU node: left on cuda:0, its object collectives (the rng states
    gathered for a checkpoint) and barrier ran on rank 0's GPU, and an estimator's
    ``resolve_device("auto")`` pointed there; a CPU run under NCCL alone could not
    all-reduce at all."""
    joined = _torchrun_environment(monkeypatch, cuda=True)
    assert (joined.backend, joined.device) == ("cpu:gloo,cuda:nccl", 1)


def test_setup_without_cuda_joins_gloo_and_sets_no_device(monkeypatch):
    joined = _torchrun_environment(monkeypatch, cuda=False)
    assert (joined.backend, joined.device) == ("gloo", None)


def test_an_estimator_runs_its_module_where_fit_left_it(monkeypatch):
    """Under torchrun rank r trains on cuda:r; ``device_`` resolved from the estimator's
    ``device`` option said cuda:0 (the meta device stands in for the rank's GPU)."""
    from climlatent.estimators import VED, _train

    def fit_elsewhere(module, tensors, config, **options):
        module.to("meta")
        return __import__("climlatent.training").training.TrainingResult(
            None, None, False, torch.arange(1), torch.arange(0)
        )

    monkeypatch.setattr(_train, "fit", fit_elsewhere)
    est = VED(latent_dim=2, hidden=8, epochs=1, progress=False, device="cpu")
    est.device_ = torch.device("cpu")
    _train.train_module(est, torch.nn.Linear(2, 1), (torch.zeros(4, 2),))
    assert est.device_ == torch.device("meta")


def test_a_checkpoint_from_more_gpus_restores_the_rng_states_this_machine_has(monkeypatch):
    from climlatent import checkpoint

    state = checkpoint.rng_state()
    state["cuda"] = [torch.zeros(16, dtype=torch.uint8)] * 4  # written on a 4-GPU node
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.extend)
    checkpoint.set_rng_state(state)
    assert len(restored) == 1
