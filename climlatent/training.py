"""The one training loop shared by every torch model in climlatent.

`fit` trains a ``torch.nn.Module`` on sample-major tensors (first dimension = samples)
with mini-batches, a seeded validation split, early stopping, learning-rate decay,
mixed precision on CUDA and exact checkpoint/resume. It never sees an ``xr.Dataset``:
the estimators turn Datasets into tensors before calling it.

Model contract
--------------
A trainable module implements

``training_losses(batch: tuple[Tensor, ...]) -> dict[str, Tensor]``
    Scalar losses for one mini-batch. ``batch`` holds one slice of each tensor given
    to `fit`, in the same order, already on the training device. The same keys must
    come back for every batch.

and may implement

``optimizer_groups() -> dict[str, list[torch.nn.Parameter]]``
    Parameters grouped by the loss that trains them; the default is
    ``{"loss": list(module.parameters())}``. The trainer keeps one optimiser and one
    learning-rate schedule per group. For each batch it visits the groups in order;
    for each group it recomputes ``training_losses``, backpropagates the loss whose
    key is the group's name into that group's parameters only, and steps that
    group's optimiser. This is alternating optimisation: for the LLAAE, group
    ``"autoencoder"`` minimises L1, then group ``"latent"`` minimises L2. With a single
    group the losses are computed once per batch. Keys naming no group are
    diagnostics: logged, never minimised.

``on_epoch_start(epoch: int) -> None``
    Called before each epoch (0-based), e.g. to set a beta warm-up weight. It must
    depend on ``epoch`` only, so that a resumed run follows the same schedule.

``lr_scale(epoch: int) -> float``
    Learning rate of the epoch as a multiple of ``config.lr`` (e.g. a drop after
    a warm-up, `climlatent.schedules.BetaSchedule`); not combinable with ``lr_decay``.

The logged training losses of an epoch are sample-weighted means of the values from
each batch's first forward pass; validation losses are computed in eval mode without
gradients. Losses are summed on the device and read back once per epoch.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import StepLR
from tqdm.auto import tqdm

from climlatent import distributed
from climlatent._epoch import LossMeans, count_samples, place, shuffled, validation_split
from climlatent.checkpoint import (
    fingerprint_changes,
    load_checkpoint,
    rng_state,
    run_fingerprint,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from climlatent.errors import CheckpointError, ClimlatentError
from climlatent.precision import mixed_precision, training_amp
from climlatent.random_streams import VERSIONS, stream_seed

__all__ = ["TrainingConfig", "TrainingResult", "fit", "resolve_device", "validation_split"]

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
CHECKPOINT_FORMAT = 4
CHECKPOINT_KEYS = """format world_size fingerprint epoch module optimizers schedulers scaler
rng history best stopped_early plateau""".split()  # what a checkpoint holds
# TrainingConfig fields that a resumed run may change; the others must match its checkpoint
RESUMABLE_CHANGES = ("epochs", "device", "progress", "checkpoint_path", "checkpoint_every")


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Settings of one `fit` call.

    Parameters
    ----------
    epochs, batch_size : int
        Passes over the training samples; samples per optimiser step (per rank in a
        data-parallel run, see `climlatent.distributed`).
    lr, weight_decay : float
        Initial learning rate and weight decay of every optimiser group.
    optimizer : {"adam", "adamw", "sgd"}
        Optimiser class, one instance per optimiser group.
    lr_decay, lr_decay_steps : float and int, optional
        Multiply the learning rate by ``lr_decay`` (in (0, 1]) every ``lr_decay_steps``
        (>= 1) optimiser steps of a group (as ``StepLR``). None keeps it constant.
    validation_fraction : float
        Fraction of the samples held out for validation, drawn from ``seed``.
    early_stopping_patience : int, optional
        Stop once the monitored validation loss has not improved for this many
        epochs, then restore the weights of the best epoch. None trains all epochs.
    early_stopping_start : int
        Epochs before this one neither count as best nor use up patience (a loss whose
        weights still change with the epoch, as under a beta ramp, is not comparable).
    plateau_lr_drops, plateau_lr_factor : int and float
        On a plateau (patience used up) multiply the learning rate by
        ``plateau_lr_factor`` (in (0, 1]) and go on, up to ``plateau_lr_drops`` times; the next
        plateau stops. 0 stops at the first plateau.
    monitor : str, optional
        Key of ``training_losses`` that defines the best epoch; the first group's by default.
    seed, random_streams : int
        Seed the validation split, the batch orders and the global torch, numpy and python
        generators (two runs give identical weights), each its own stream: version 2 of
        `climlatent.random_streams`, or 1, the overlapping streams of checkpoints before it.
    device : str
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:1"``...
    amp : bool
        Mixed precision (float16 autocast and gradient scaling); only on CUDA.
    progress : bool
        Show a progress bar over epochs; False prints nothing.
    checkpoint_path, checkpoint_every : str or os.PathLike, optional, and int
        File written every ``checkpoint_every`` epochs and after the last epoch.
    grad_clip : float, optional
        Clip the gradient norm of each group to this value before its step.

    Examples
    --------
    >>> config = TrainingConfig(epochs=50, batch_size=64, lr_decay=0.5, lr_decay_steps=1000)
    >>> config.optimizer, config.validation_fraction
    ('adam', 0.1)
    >>> TrainingConfig(epochs=0)
    Traceback (most recent call last):
    ...
    ValueError: invalid TrainingConfig: epochs must be >= 1
    """

    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    lr_decay: float | None = None
    lr_decay_steps: int | None = None
    validation_fraction: float = 0.1
    early_stopping_patience: int | None = None
    early_stopping_start: int = 0
    plateau_lr_drops: int = 0
    plateau_lr_factor: float = 0.1
    monitor: str | None = None
    seed: int = 0
    random_streams: int = 2
    device: str = "auto"
    amp: bool = False
    progress: bool = True
    checkpoint_path: str | os.PathLike | None = None
    checkpoint_every: int = 1
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        rules = (
            ("epochs must be >= 1", self.epochs >= 1),
            ("batch_size must be >= 1", self.batch_size >= 1),
            ("lr must be > 0 and finite", 0 < self.lr < math.inf),
            ("weight_decay must be >= 0", self.weight_decay >= 0),
            ("grad_clip must be > 0", self.grad_clip is None or self.grad_clip > 0),
            (f"optimizer must be one of {sorted(OPTIMIZERS)}", self.optimizer in OPTIMIZERS),
            ("validation_fraction must be in [0, 1)", 0 <= self.validation_fraction < 1),
            (
                "lr_decay in (0, 1] and lr_decay_steps >= 1 go together",
                (self.lr_decay, self.lr_decay_steps) == (None, None)
                or (0 < (self.lr_decay or 0) <= 1 and (self.lr_decay_steps or 0) >= 1),
            ),
            (
                "early stopping needs patience >= 1 and validation_fraction > 0",
                self.early_stopping_patience is None
                or (self.early_stopping_patience >= 1 and self.validation_fraction > 0),
            ),
            ("early_stopping_start must be >= 0", self.early_stopping_start >= 0),
            (
                "plateau_lr_drops must be >= 0 and plateau_lr_factor in (0, 1]",
                self.plateau_lr_drops >= 0 and 0 < self.plateau_lr_factor <= 1,
            ),
            ("seed must be in [0, 2**32)", 0 <= self.seed < 2**32),
            (f"random_streams must be one of {VERSIONS}", self.random_streams in VERSIONS),
            ("checkpoint_every must be >= 1", self.checkpoint_every >= 1),
        )
        problems = [message for message, ok in rules if not ok]
        if problems:
            raise ValueError("invalid TrainingConfig: " + "; ".join(problems))


@dataclasses.dataclass
class TrainingResult:
    """What `fit` returns; the module itself is trained in place.

    Attributes
    ----------
    history : pandas.DataFrame
        One row per epoch (index ``epoch``, 0-based): ``train_<key>`` and
        ``valid_<key>`` for every loss key, ``lr`` at the end of the epoch and the
        epoch's wall-clock ``seconds``.
    best_epoch : int or None
        Epoch of the lowest monitored validation loss; None without validation.
    stopped_early : bool
        Whether early stopping ended training before ``config.epochs``.
    train_indices, valid_indices : torch.Tensor
        Sorted sample indices of the training and validation sets.

    Examples
    --------
    >>> import torch
    >>> from climlatent.models import DenseAutoencoder
    >>> model = DenseAutoencoder(n_features=8, latent_dim=2, hidden=(16,))
    >>> result = fit(model, (torch.randn(64, 8),), TrainingConfig(epochs=3, progress=False))
    >>> list(result.history.columns)
    ['train_loss', 'valid_loss', 'lr', 'seconds']
    >>> len(result.train_indices), len(result.valid_indices)
    (58, 6)
    """

    history: pd.DataFrame
    best_epoch: int | None
    stopped_early: bool
    train_indices: Tensor
    valid_indices: Tensor


def resolve_device(name: str = "auto") -> torch.device:
    """Turn a device name into a ``torch.device``, resolving ``"auto"``.

    Parameters
    ----------
    name : str
        ``"auto"`` picks CUDA when available, else the CPU; any other value is
        passed to ``torch.device``.

    Returns
    -------
    torch.device
        The device; a bare ``"cuda"`` gets the current CUDA device's index.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} was requested but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
    return device


def fit(
    module: nn.Module,
    tensors: Sequence[Tensor],
    config: TrainingConfig | None = None,
    *,
    resume: bool = False,
    fingerprint: Mapping[str, Any] | None = None,
) -> TrainingResult:
    """Train ``module`` in place on sample-major tensors.

    Parameters
    ----------
    module : torch.nn.Module
        A module following the contract in this module's docstring.
    tensors : sequence of torch.Tensor
        Inputs sharing their first (sample) dimension; each batch passed to
        ``module.training_losses`` is the tuple of their slices. They are moved to the
        device once when they fit in half of its free memory, else batch by batch.
    config : TrainingConfig, optional
        Training settings; ``TrainingConfig()`` by default.
    resume : bool
        Continue from ``config.checkpoint_path`` when that file exists, else start
        afresh (so that a batch job can always pass ``resume=True``). The result is
        exactly that of an uninterrupted run; a larger ``config.epochs`` trains a
        finished run further. Only the fields in ``RESUMABLE_CHANGES`` may differ from
        the checkpoint's run.
    fingerprint : mapping, optional
        Further settings that determine the run (an estimator's configuration). With
        the config and the data (shapes and a digest) they make the checkpoint's
        `~climlatent.checkpoint.run_fingerprint`; keys must not be config fields.

    Returns
    -------
    TrainingResult
        History and best epoch. With early stopping the module holds the weights of
        the best epoch.

    Raises
    ------
    InputDataError
        If the tensors disagree on the number of samples.
    CheckpointError
        If ``resume`` and the checkpoint is truncated, of another format, past
        ``config.epochs`` or of another run; the message names the file and each
        difference, e.g. ``batch_size: 64 -> 32`` or ``samples: 512 -> 480``.

    Examples
    --------
    >>> import torch
    >>> from climlatent.models import DenseAutoencoder
    >>> model = DenseAutoencoder(n_features=16, latent_dim=2, hidden=(8,))
    >>> config = TrainingConfig(epochs=20, batch_size=32, lr=1e-2, progress=False)
    >>> result = fit(model, (torch.randn(256, 16),), config)
    >>> bool(result.history["train_loss"].iloc[-1] < result.history["train_loss"].iloc[0])
    True
    """
    config = TrainingConfig() if config is None else config
    if not hasattr(module, "training_losses"):
        raise TypeError(f"{type(module).__name__} does not implement training_losses(batch)")
    n_samples = count_samples(tensors)
    distributed.setup()
    device = resolve_device(distributed.training_device(config.device))
    module.to(device)
    distributed.broadcast_module(module)
    seed, streams = config.seed, config.random_streams
    split = torch.Generator().manual_seed(stream_seed(seed, streams, "validation"))
    train_indices, valid_indices = validation_split(n_samples, config.validation_fraction, split)
    data = place(tuple(tensors), device)
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k not in RESUMABLE_CHANGES}
    if streams == 1:  # as in the checkpoints written before random_streams: they resume
        del settings["random_streams"]
    run = run_fingerprint({**settings, **(fingerprint or {})}, tensors)
    trainer = _Trainer(module, config, device, run)
    path = config.checkpoint_path
    if resume and path is None:
        raise ValueError("resume=True needs config.checkpoint_path")
    if resume and os.path.exists(path):
        trainer.resume(path)
    else:
        seed_everything(stream_seed(seed, streams, "noise", distributed.rank()))
    show = config.progress and distributed.is_main_process()
    with tqdm(total=config.epochs, initial=trainer.epoch, unit="epoch", disable=not show) as bar:
        while trainer.epoch < config.epochs and not trainer.stopped_early:
            trainer.run_epoch(data, train_indices, valid_indices)
            bar.update()
            bar.set_postfix(trainer.summary())
            last = trainer.epoch == config.epochs or trainer.stopped_early
            if path is not None and (trainer.epoch % config.checkpoint_every == 0 or last):
                trainer.save(path)
    trainer.restore_best()
    module.zero_grad(set_to_none=True)  # the last step's gradients: a copy of the weights
    history = pd.DataFrame(trainer.history, index=pd.RangeIndex(trainer.epoch, name="epoch"))
    return TrainingResult(
        history, trainer.best_epoch, trainer.stopped_early, train_indices, valid_indices
    )


class _Trainer:
    """Optimisers, schedules, batch order, history and best epoch of one `fit` call."""

    def __init__(
        self,
        module: nn.Module,
        config: TrainingConfig,
        device: torch.device,
        fingerprint: dict[str, Any],
    ) -> None:
        groups = (
            module.optimizer_groups()
            if hasattr(module, "optimizer_groups")
            else {"loss": list(module.parameters())}
        )
        self.groups = {
            name: [p for p in params if p.requires_grad] for name, params in groups.items()
        }
        trainable = {p for p in module.parameters() if p.requires_grad}
        # backward(inputs=...) costs graph bookkeeping; only pay it when it excludes some
        self.backward_inputs = {
            name: None if set(params) == trainable else params
            for name, params in self.groups.items()
        }
        optimizer_class = OPTIMIZERS[config.optimizer]
        self.optimizers = {
            name: optimizer_class(params, lr=config.lr, weight_decay=config.weight_decay)
            for name, params in self.groups.items()
        }
        self.schedulers = {
            name: StepLR(optimizer, config.lr_decay_steps, config.lr_decay)
            for name, optimizer in self.optimizers.items()
            if config.lr_decay is not None
        }
        if hasattr(module, "lr_scale") and self.schedulers:
            raise ValueError("a module with lr_scale() cannot train with config.lr_decay")
        self.use_amp = training_amp(config.amp, device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.use_amp)
        self.module, self.config, self.device = module, config, device
        self.fingerprint = fingerprint  # what determines the run, see run_fingerprint
        self.monitor = config.monitor or next(iter(self.groups))
        self.epoch = 0
        self.history: dict[str, list[float]] = {}
        self.best_epoch, self.best_loss = None, math.inf
        self.best_state: dict[str, Tensor] | None = None
        self.stopped_early = False
        self.lr_drops = 0  # learning-rate drops at plateaus so far
        self.plateau_since = config.early_stopping_start - 1  # patience counts after it

    def run_epoch(self, data: tuple[Tensor, ...], train: Tensor, valid: Tensor) -> None:
        """Train one epoch, validate, log it and update the best epoch."""
        started = time.perf_counter()
        if hasattr(self.module, "on_epoch_start"):
            self.module.on_epoch_start(self.epoch)
        if hasattr(self.module, "lr_scale"):
            for optimizer in self.optimizers.values():
                for group in optimizer.param_groups:
                    group["lr"] = (
                        self.config.lr
                        * self.module.lr_scale(self.epoch)
                        * self.config.plateau_lr_factor**self.lr_drops
                    )
        self.module.train()
        train_means = LossMeans(self.monitor)
        order = shuffled(train, self.config.seed, self.epoch, self.config.random_streams)
        for batch, size, total in self._batches(data, order):
            for position, name in enumerate(self.groups):
                losses = self._step(name, batch, size, total)
                if position == 0 and size:  # a rank without samples adds nothing
                    train_means.add(losses, size)
        distributed.broadcast_buffers(self.module)  # one model on every rank, as DDP's
        empty = len(train) < distributed.world_size()  # a rank without training samples
        train_losses = train_means.means(some_rank_empty=empty, device=self.device)
        diverged = [key for key in self.groups if not math.isfinite(train_losses[key])]
        if diverged:
            raise ClimlatentError(f"training diverged at epoch {self.epoch}: {diverged} not finite")
        valid_losses = self._evaluate(data, valid) if len(valid) else {}
        row = {f"train_{key}": value for key, value in train_losses.items()}
        row.update({f"valid_{key}": value for key, value in valid_losses.items()})
        row["lr"] = next(iter(self.optimizers.values())).param_groups[0]["lr"]
        row["seconds"] = time.perf_counter() - started
        for key, value in row.items():
            self.history.setdefault(key, []).append(value)
        self._track_best(valid_losses)
        self.epoch += 1

    def summary(self) -> dict[str, str]:
        """Last epoch's monitored losses, for the progress bar."""
        keys = (f"train_{self.monitor}", f"valid_{self.monitor}")
        return {key: f"{self.history[key][-1]:.4g}" for key in keys if key in self.history}

    def restore_best(self) -> None:
        """Load the best epoch's weights when early stopping kept them."""
        if self.best_state is not None:
            self.module.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training exactly, as weights-only types."""
        return {
            "format": CHECKPOINT_FORMAT,
            "world_size": distributed.world_size(),
            "fingerprint": self.fingerprint,
            "epoch": self.epoch,
            "module": self.module.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedulers": {name: s.state_dict() for name, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict(),
            "rng": distributed.gather(rng_state()),  # one per rank
            "history": self.history,
            "best": {"epoch": self.best_epoch, "loss": self.best_loss, "state": self.best_state},
            "stopped_early": self.stopped_early,
            "plateau": {"lr_drops": self.lr_drops, "since": self.plateau_since},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a `state_dict`; raise on any mismatch, before anything is loaded."""
        missing = [k for k in CHECKPOINT_KEYS if not isinstance(state, Mapping) or k not in state]
        if missing:
            raise ValueError(f"it is not a climlatent training checkpoint (no {missing})")
        if state["format"] != CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint format {state['format']}, expected {CHECKPOINT_FORMAT}")
        if (written := state["world_size"]) != distributed.world_size():
            raise ValueError(
                f"written by {written} processes, resumed by {distributed.world_size()}"
            )
        if changes := fingerprint_changes(state["fingerprint"], self.fingerprint):
            raise ValueError(
                "it is from another run ("
                + "; ".join(changes)
                + "); to resume it, fit with that run's settings and data; to start afresh, "
                "pass resume=False or another checkpoint file (in a YAML config: another "
                "checkpoint), or delete this one"
            )
        if state["epoch"] > self.config.epochs:
            raise ValueError(
                f"it has trained {state['epoch']} epochs, more than {self.config.epochs}"
            )
        self.module.load_state_dict(state["module"])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][name])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"][distributed.rank()])
        self.epoch, self.history = state["epoch"], state["history"]
        best = state["best"]
        self.best_epoch, self.best_loss = best["epoch"], best["loss"]
        self.best_state = best["state"]
        self.stopped_early = state["stopped_early"]
        plateau = state["plateau"]
        self.lr_drops, self.plateau_since = plateau["lr_drops"], plateau["since"]

    def _step(
        self, name: str, batch: tuple[Tensor, ...], size: int, total: int
    ) -> dict[str, Tensor]:
        """Step group ``name`` on its loss over this rank's ``size`` of ``total`` samples."""
        optimizer, params = self.optimizers[name], self.groups[name]
        optimizer.zero_grad(set_to_none=True)
        losses = {}
        if size:
            with self._autocast():
                losses = self.module.training_losses(batch)
            if name not in losses:
                raise KeyError(f"training_losses() returned {sorted(losses)}, no loss {name!r}")
            self.scaler.scale(losses[name]).backward(inputs=self.backward_inputs[name])
        else:  # no sample here: no gradient, but the all-reduce, and an AMP scale as elsewhere
            self.scaler.scale(torch.zeros((), device=self.device))
        distributed.all_reduce_gradients(params, size, total)
        if self.config.grad_clip is not None:
            self.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        self.scaler.step(optimizer)
        self.scaler.update()
        if name in self.schedulers:
            self.schedulers[name].step()
        return losses

    @torch.no_grad()
    def _evaluate(self, data: tuple[Tensor, ...], indices: Tensor) -> dict[str, float]:
        self.module.eval()
        means = LossMeans(self.monitor)
        for batch, size, _ in self._batches(data, indices):
            if size:  # a rank has no share of a batch of fewer samples than ranks
                with self._autocast():
                    means.add(self.module.training_losses(batch), size)
        empty = len(indices) < distributed.world_size()  # a rank without validation samples
        return means.means(some_rank_empty=empty, device=self.device)

    def _track_best(self, valid_losses: Mapping[str, float]) -> None:
        if not valid_losses or self.epoch < self.config.early_stopping_start:
            return
        patience = self.config.early_stopping_patience
        if valid_losses[self.monitor] < self.best_loss:
            self.best_epoch, self.best_loss = self.epoch, valid_losses[self.monitor]
            if patience is not None:
                self.best_state = {
                    key: value.detach().clone() for key, value in self.module.state_dict().items()
                }
            return
        if patience is None:
            return
        last_good = max(self.plateau_since, -1 if self.best_epoch is None else self.best_epoch)
        if self.epoch - last_good < patience:
            return
        factor = self.config.plateau_lr_factor
        if self.lr_drops < self.config.plateau_lr_drops:
            self.lr_drops += 1  # a plateau: a lower learning rate, fresh patience
            self.plateau_since = self.epoch
            for optimizer in self.optimizers.values():
                for group in optimizer.param_groups:
                    group["lr"] *= factor
        else:
            self.stopped_early = True

    def save(self, path: str | os.PathLike) -> None:
        """Write a checkpoint from rank 0 (every rank takes part in `state_dict`)."""
        state = self.state_dict()
        if distributed.is_main_process():
            save_checkpoint(state, path)
        distributed.barrier()

    def resume(self, path: str | os.PathLike) -> None:
        """Load a checkpoint (weights only); any failure names the file."""
        state = load_checkpoint(path)
        try:
            self.load_state_dict(state)
        except Exception as error:
            raise CheckpointError(
                f"cannot resume from checkpoint {os.fspath(path)!r}: {error}"
            ) from error

    def _batches(
        self, data: tuple[Tensor, ...], order: Tensor
    ) -> Iterator[tuple[tuple[Tensor, ...], int, int]]:
        shares = distributed.batch_shares(order.to(data[0].device), self.config.batch_size)
        for index, total in shares:  # this rank's samples, maybe none; the global batch's
            batch = tuple(t[index].to(self.device, non_blocking=True) for t in data)
            yield batch, len(index), total

    def _autocast(self) -> AbstractContextManager:
        return mixed_precision(self.device, self.use_amp)
