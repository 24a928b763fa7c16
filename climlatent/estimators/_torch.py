"""Numpy <-> torch plumbing shared by the torch-backed estimators."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

INFERENCE_BATCH = 4096


def inference(
    func: Callable[..., torch.Tensor],
    *arrays: np.ndarray,
    device: torch.device,
    batch_size: int = INFERENCE_BATCH,
) -> np.ndarray:
    """Apply a torch function to numpy arrays batch by batch, without gradients.

    Parameters
    ----------
    func : callable
        Takes one tensor per array (a batch of rows) and returns a tensor.
    *arrays : np.ndarray
        Sample-major arrays with the same number of rows.
    device : torch.device
        Where ``func``'s module lives; batches move there and results come back.
    batch_size : int
        Rows per call.

    Returns
    -------
    np.ndarray
        float32 results stacked along the first axis.

    Examples
    --------
    >>> inference(lambda t: 2 * t, np.ones((5, 2), np.float32), device=torch.device("cpu"),
    ...           batch_size=2).sum()
    np.float32(20.0)
    """
    n = arrays[0].shape[0]
    pieces = []
    with torch.inference_mode():
        for start in range(0, max(n, 1), batch_size):
            batch = [
                torch.from_numpy(
                    np.ascontiguousarray(a[start : start + batch_size], np.float32)
                ).to(device, non_blocking=True)
                for a in arrays
            ]
            pieces.append(func(*batch).float().cpu().numpy())
    return np.concatenate(pieces, axis=0)


def state_to_numpy(module: torch.nn.Module, prefix: str = "module.") -> dict[str, np.ndarray]:
    """A module's state dict as numpy arrays with prefixed names (for safetensors).

    Examples
    --------
    >>> sorted(state_to_numpy(torch.nn.Linear(2, 1)))
    ['module.bias', 'module.weight']
    """
    return {prefix + k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def load_numpy_state(
    module: torch.nn.Module, state: dict[str, np.ndarray], prefix: str = "module."
) -> None:
    """Load arrays saved by :func:`state_to_numpy` into ``module`` (strict).

    Examples
    --------
    >>> a, b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    >>> load_numpy_state(b, state_to_numpy(a))
    >>> bool(torch.equal(a.weight, b.weight))
    True
    """
    tensors = {
        k[len(prefix) :]: torch.from_numpy(np.array(v))
        for k, v in state.items()
        if k.startswith(prefix)
    }
    module.load_state_dict(tensors, strict=True)
