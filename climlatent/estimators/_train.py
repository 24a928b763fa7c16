"""Training the module of a torch estimator: its settings, checkpoint and fingerprint."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from climlatent.estimators._refit import seed_global
from climlatent.training import TrainingConfig, TrainingResult, fit

__all__ = ["seed_global", "train_module"]

if TYPE_CHECKING:
    from climlatent.estimators.base import BaseEstimator


def train_module(
    estimator: BaseEstimator,
    module: torch.nn.Module,
    tensors: Sequence[torch.Tensor],
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    settings: Mapping[str, Any] | None = None,
) -> TrainingResult:
    """Train ``module`` with the estimator's training settings, checkpoint and resume.

    Every torch estimator trains through here, so that each records the same
    ``history_`` (a DataFrame, one row per epoch: ``train_<loss>``, ``valid_<loss>``,
    ``lr``, ``seconds``) and ``best_epoch_`` (None without validation), and runs the
    module where it trained (``device_``, `trained_on`).

    Parameters
    ----------
    estimator : BaseEstimator
        Supplies the `~climlatent.training.TrainingConfig` (its ``_training_config``)
        and the configuration that, with its class name, joins the checkpoint's run
        fingerprint (the fields named as in ``TrainingConfig`` are in it already).
    module : torch.nn.Module
        The estimator's model, trained in place.
    tensors : sequence of torch.Tensor
        The sample-major training data.
    checkpoint : str or os.PathLike, optional
        Checkpoint file written every epoch; the estimator's ``checkpoint_path``
        option, if it has one, by default.
    resume : bool
        Continue from the checkpoint when it exists (`climlatent.training.fit`).
    settings : mapping, optional
        Arguments of the estimator's ``fit`` that shape the model (e.g. the proxy
        laws of `ProxyDownscaler`), added to the fingerprint.

    Returns
    -------
    TrainingResult
        As returned by `climlatent.training.fit`; its ``history`` and ``best_epoch``
        are also set on the estimator as ``history_`` and ``best_epoch_``.

    Examples
    --------
    >>> import tempfile, numpy as np, xarray as xr
    >>> from climlatent.estimators import VED
    >>> ds = xr.Dataset({"k": (("sample", "y", "x"), np.random.rand(32, 4, 4), {"units": "1"})})
    >>> path = os.path.join(tempfile.mkdtemp(), "run.pt")
    >>> ved = VED(latent_dim=2, hidden=8, epochs=2, progress=False, device="cpu")
    >>> _ = ved.fit(ds, target="k", proxy="k", checkpoint=path)
    >>> ved.batch_size = 16
    >>> ved.fit(ds, target="k", proxy="k", checkpoint=path, resume=True)
    Traceback (most recent call last):
    ...
    climlatent.errors.CheckpointError: cannot resume ... another run (batch_size: 64 -> 16); ...
    """
    overrides = {} if checkpoint is None else {"checkpoint_path": checkpoint}
    config = estimator._training_config(**overrides)
    training = {field.name for field in dataclasses.fields(TrainingConfig)}
    options = {k: v for k, v in estimator.get_config().items() if k not in training}
    fingerprint = {"estimator": type(estimator).__name__, **options, **(settings or {})}
    result = fit(module, tensors, config, resume=resume, fingerprint=fingerprint)
    estimator.history_, estimator.best_epoch_ = result.history, result.best_epoch
    estimator.device_ = trained_on(module)
    return result


def trained_on(module: torch.nn.Module) -> torch.device:
    """The device `fit` left ``module`` on: where the estimator runs it next.

    Not the estimator's ``device`` option resolved again: under ``torchrun`` rank r
    trains on ``cuda:r``, and ``resolve_device("auto")`` gives the current CUDA device,
    ``cuda:0`` unless the rank made its own current (a group joined by the caller).

    Examples
    --------
    >>> trained_on(torch.nn.Linear(2, 1))
    device(type='cpu')
    """
    tensor = next(iter(module.parameters()), None)
    if tensor is None:
        tensor = next(iter(module.buffers()), torch.empty(0))
    return tensor.device
