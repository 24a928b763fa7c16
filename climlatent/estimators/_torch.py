"""Numpy <-> torch plumbing shared by the torch-backed estimators."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch

from climlatent.errors import CheckpointError

INFERENCE_BATCH = 4096
CUDA_MEMORY_SHARE = 0.25  # of free device memory for one batch's inputs and activations
ACTIVATION_FACTOR = 64  # device bytes per input byte assumed for activations


def inference_batch_size(device: torch.device, row_bytes: int) -> int:
    """Rows per inference call: fixed on the CPU, sized to free memory on CUDA.

    Parameters
    ----------
    device : torch.device
        Where the model runs.
    row_bytes : int
        Bytes of one sample's inputs (all arrays).

    Returns
    -------
    int
        ``INFERENCE_BATCH`` on the CPU; on CUDA a quarter of the free device memory
        divided by ``ACTIVATION_FACTOR * row_bytes``, between 1024 and 2**18 rows.

    Examples
    --------
    >>> inference_batch_size(torch.device("cpu"), row_bytes=4096)
    4096
    """
    if device.type != "cuda":
        return INFERENCE_BATCH
    free_bytes, _ = torch.cuda.mem_get_info(device)
    rows = int(CUDA_MEMORY_SHARE * free_bytes) // (ACTIVATION_FACTOR * max(row_bytes, 1))
    return int(np.clip(rows, 1024, 2**18))


def inference(
    func: Callable[..., torch.Tensor],
    *arrays: np.ndarray,
    device: torch.device,
    batch_size: int | None = None,
) -> np.ndarray:
    """Apply a torch function to numpy arrays batch by batch, without gradients.

    On CUDA, batches are staged in pinned host memory and copied without blocking
    in both directions, and the host waits for the device once, at the end, so that
    transfers and kernels queue back to back.

    Parameters
    ----------
    func : callable
        Takes one tensor per array (a batch of rows) and returns a tensor.
    *arrays : np.ndarray
        Sample-major arrays with the same number of rows.
    device : torch.device
        Where ``func``'s module lives; batches move there and results come back.
    batch_size : int, optional
        Rows per call; `inference_batch_size` by default.

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
    if batch_size is None:
        row_bytes = sum(4 * int(np.prod(a.shape[1:])) for a in arrays)
        batch_size = inference_batch_size(device, row_bytes)
    cuda = device.type == "cuda"
    pieces, staged = [], []
    with torch.inference_mode():
        for start in range(0, max(n, 1), batch_size):
            host = [
                torch.from_numpy(np.ascontiguousarray(a[start : start + batch_size], np.float32))
                for a in arrays
            ]
            if cuda:
                host = [t.pin_memory() for t in host]
                staged.append(host)  # pinned buffers must outlive their asynchronous copies
            result = func(*(t.to(device, non_blocking=cuda) for t in host)).float()
            if cuda:
                out = torch.empty(result.shape, dtype=torch.float32, pin_memory=True)
                pieces.append(out.copy_(result, non_blocking=True))
            else:
                pieces.append(result)
        if cuda:
            torch.cuda.synchronize(device)
    return np.concatenate([piece.numpy() for piece in pieces], axis=0)


def state_to_numpy(module: torch.nn.Module, prefix: str = "module.") -> dict[str, np.ndarray]:
    """A module's state dict as numpy arrays with prefixed names (for safetensors).

    Examples
    --------
    >>> sorted(state_to_numpy(torch.nn.Linear(2, 1)))
    ['module.bias', 'module.weight']
    """
    return {prefix + k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def load_numpy_state(
    module: torch.nn.Module, state: Mapping[str, np.ndarray], prefix: str = "module."
) -> None:
    """Load arrays saved by :func:`state_to_numpy` into ``module``, checking them first.

    Every tensor of ``module``'s state dict must be in ``state`` (under ``prefix``)
    with its shape and dtype, and ``state`` may hold no other tensor under ``prefix``;
    nothing is loaded otherwise.

    Raises
    ------
    CheckpointError
        A tensor is missing, unexpected, or of another shape or dtype; it is named.

    Examples
    --------
    >>> a, b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    >>> load_numpy_state(b, state_to_numpy(a))
    >>> bool(torch.equal(a.weight, b.weight))
    True
    >>> load_numpy_state(b, state_to_numpy(torch.nn.Linear(3, 1)))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    climlatent.errors.CheckpointError: tensor 'module.weight' is float32 (1, 3), the model ...
    """
    expected = module.state_dict()
    unexpected = sorted({k[len(prefix) :] for k in state if k.startswith(prefix)} - set(expected))
    if unexpected:
        name = prefix + unexpected[0]
        raise CheckpointError(f"unexpected tensor {name!r}: the model has no such tensor")
    tensors = {}
    for name, reference in expected.items():
        key = prefix + name
        if key not in state:
            raise CheckpointError(f"tensor {key!r} is missing")
        tensor = torch.from_numpy(np.array(state[key]))
        if reference.dim() == 0 and tensor.shape == (1,):
            tensor = tensor.reshape(())  # a scalar is saved as a one-element vector
        if tensor.shape != reference.shape or tensor.dtype != reference.dtype:
            raise CheckpointError(
                f"tensor {key!r} is {_describe(tensor)}, the model expects {_describe(reference)}"
            )
        tensors[name] = tensor
    module.load_state_dict(tensors, strict=True)


def _describe(tensor: torch.Tensor) -> str:
    """A tensor's dtype and shape as ``float32 (3, 4)``."""
    return f"{str(tensor.dtype).removeprefix('torch.')} {tuple(tensor.shape)}"
