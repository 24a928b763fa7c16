"""Automatic mixed precision: CUDA's float16 autocast, for training and inference."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch

from climlatent.errors import ClimlatentError


def mixed_precision(device: torch.device, amp: bool) -> AbstractContextManager:
    """float16 autocast on ``device`` when ``amp`` (automatic mixed precision), else none.

    Matrix products and convolutions run in float16, reductions, ``exp`` and ``log``
    in float32 (torch's autocast lists): on CUDA, training and inference at tensor-core
    speed, results within float16's precision (about 1e-3 relative) of float32's.

    Examples
    --------
    >>> with mixed_precision(torch.device("cpu"), amp=False):
    ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    torch.float32
    """
    return torch.autocast(device.type, dtype=torch.float16) if amp else nullcontext()


def training_amp(amp: bool, device: torch.device) -> bool:
    """Whether training runs in mixed precision: ``amp`` on CUDA; elsewhere off, warned.

    Examples
    --------
    >>> training_amp(False, torch.device("cpu"))
    False
    """
    if amp and device.type != "cuda":
        warnings.warn(
            f"amp=True is ignored: mixed precision trains on CUDA only, this run is on "
            f"{device} and trains in the model's own precision",
            RuntimeWarning,
            stacklevel=4,
        )
    return amp and device.type == "cuda"


def amp_context(device: torch.device | None, owner: str) -> Callable[[], AbstractContextManager]:
    """The context a model's blocks run in under amp: float16 autocast on ``device``.

    ``device`` is where the model of ``owner`` runs (None: it has no torch model);
    anything but CUDA is refused: on the CPU, float16 autocast would be slower, not
    faster, so it is refused rather than ignored.

    Examples
    --------
    >>> amp_context(torch.device("cpu"), "it")
    Traceback (most recent call last):
    ...
    climlatent.errors.ClimlatentError: amp: float16 autocast runs on CUDA only; it runs on cpu
    """
    if device is None or device.type != "cuda":
        where = "has no torch model" if device is None else f"runs on {device}"
        raise ClimlatentError(f"amp: float16 autocast runs on CUDA only; {owner} {where}")
    return functools.partial(mixed_precision, device, True)
