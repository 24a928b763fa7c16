"""Numpy <-> torch plumbing shared by the torch-backed estimators."""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Hashable, Mapping

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from climlatent.errors import CheckpointError
from climlatent.training import resolve_device

INFERENCE_BATCH = 4096  # rows per inference call at most
#: Bytes of the largest tensor one CPU batch may create: a core's share of the last
#: level cache. Larger batches run slower, not faster: beyond glibc's 32 MiB mmap
#: threshold every intermediate is a fresh mapping whose pages fault in on first touch
#: (a 65x65 decoder at 4096 rows runs at a third of its speed at 32 rows).
CPU_TENSOR_BYTES = 4 * 2**20
PROBE_ROWS = 16  # rows of the first CPU batch, whose largest tensor sets the others
CUDA_MEMORY_SHARE = 0.25  # of device memory for one batch's inputs and activations
ACTIVATION_FACTOR = 64  # device bytes per input byte assumed for activations
#: CPU batch sizes found by a probe, remembered on the module they were probed for,
#: per method and row shapes: a model run block by block probes once, not per block.
_PROBED: weakref.WeakKeyDictionary[torch.nn.Module, dict[Hashable, int]] = (
    weakref.WeakKeyDictionary()
)


def set_torch_threads(n: int) -> int:
    """Set the number of torch intra-op threads; return the previous number.

    For scripts that must not import torch themselves (the data layers).

    Examples
    --------
    >>> previous = set_torch_threads(1)
    >>> _ = set_torch_threads(previous)
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    return previous


def loading_device(name: str) -> torch.device:
    """Where a loaded model runs: its ``device`` option, resolved (`resolve_device`).

    A model configured for CUDA (trained on a GPU) loads onto the CPU of a machine
    without CUDA, with a warning: it computes the same numbers, to float tolerance.

    Examples
    --------
    >>> loading_device("cpu")
    device(type='cpu')
    """
    if name != "auto" and torch.device(name).type == "cuda" and not torch.cuda.is_available():
        warnings.warn(
            f"the model is configured for device {name!r}, but CUDA is not available: "
            "it runs on the CPU",
            RuntimeWarning,
            stacklevel=4,
        )
        return torch.device("cpu")
    return resolve_device(name)


def inference_batch_size(device: torch.device, row_bytes: int) -> int:
    """Rows per CUDA inference call, sized to the device's memory.

    Its total memory, not the free: the free memory counts what torch's allocator keeps
    cached as used, so it shrinks after earlier calls, and a seeded draw (``VED.sample``,
    ``LLAAE.evaluate``) split into other batches would draw other numbers.

    Parameters
    ----------
    device : torch.device
        A CUDA device.
    row_bytes : int
        Bytes of one sample's inputs (all arrays).

    Returns
    -------
    int
        A quarter of the device memory divided by ``ACTIVATION_FACTOR * row_bytes``,
        between 1024 and 2**18 rows.

    Examples
    --------
    >>> if torch.cuda.is_available():
    ...     assert inference_batch_size(torch.device("cuda"), row_bytes=4096) >= 1024
    """
    total_bytes = torch.cuda.get_device_properties(device).total_memory
    rows = int(CUDA_MEMORY_SHARE * total_bytes) // (ACTIVATION_FACTOR * max(row_bytes, 1))
    return int(np.clip(rows, 1024, 2**18))


def cpu_batch_size(largest_tensor_bytes: int, rows: int) -> int:
    """Rows per CPU inference call from the largest tensor a batch of ``rows`` made.

    Parameters
    ----------
    largest_tensor_bytes : int
        Bytes of the largest tensor (input, intermediate or output) of a call on
        ``rows`` rows.
    rows : int
        Rows of that call.

    Returns
    -------
    int
        The rows whose largest tensor fits ``CPU_TENSOR_BYTES``, between 1 and
        ``INFERENCE_BATCH``.

    Examples
    --------
    >>> cpu_batch_size(largest_tensor_bytes=16 * 98_304, rows=16)  # a 32x48 decoder
    42
    >>> cpu_batch_size(largest_tensor_bytes=16 * 24, rows=16)  # a small MLP
    4096
    """
    if largest_tensor_bytes <= 0:
        return INFERENCE_BATCH
    return int(np.clip(CPU_TENSOR_BYTES * max(rows, 1) // largest_tensor_bytes, 1, INFERENCE_BATCH))


class LargestTensor(TorchDispatchMode):
    """Records the bytes of the largest tensor any torch operation creates inside it.

    Views (a transposed weight, a reshaped batch) allocate nothing and are not counted,
    nor are the wrappers of ``torch.func`` transforms (``vmap``, ``jacrev``), which
    have no memory of their own.

    Examples
    --------
    >>> weight = torch.ones(1000, 100)
    >>> with LargestTensor() as probe:
    ...     _ = torch.ones(8, 100) @ weight.T
    >>> probe.bytes  # the 8 x 1000 product, not the transposed weight
    32000
    """

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        """No: nothing compiles inside a probe.

        torch wraps the ``__torch_dispatch__`` of a mode that says yes in
        ``torch._disable_dynamo``, whose first call imports ``torch._dynamo`` (1.1 s, once
        per process: every command line run and every dask worker).
        """
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, D105
        out = func(*args, **(kwargs or {}))
        inputs = {_storage(t) for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        inputs.add(None)
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor) and _storage(leaf) not in inputs:
                self.bytes = max(self.bytes, leaf.numel() * leaf.element_size())
        return out


def _storage(tensor: torch.Tensor) -> int | None:
    """The address of a tensor's memory, shared by its views (None: a functorch wrapper)."""
    try:
        return tensor.untyped_storage().data_ptr()
    except RuntimeError:
        return None


def inference(
    func: Callable[..., torch.Tensor],
    *arrays: np.ndarray,
    device: torch.device,
    batch_size: int | None = None,
) -> np.ndarray:
    """Apply a torch function to numpy arrays batch by batch, without gradients.

    On the CPU, the first batch is ``PROBE_ROWS`` rows, and the largest tensor it
    creates sets the rows of the others (`cpu_batch_size`): the model's efficient
    batch, whatever its grid. For a module or a module's method, that size is
    remembered on the module per row shapes, and later calls (the next block of a
    lazy map) use it without probing, in the same batches (the first of
    ``PROBE_ROWS`` rows), so that a call gives the bits the first call gave: the
    probe traces every torch operation in Python, which costs a block a few ms and
    holds the GIL that other threads' blocks need. On CUDA, batches are sized to the
    device's memory (`inference_batch_size`), staged in pinned host memory and
    copied without blocking in both directions, and the host waits for the device once,
    at the end, so that transfers and kernels queue back to back.

    Parameters
    ----------
    func : callable
        Takes one tensor per array (a batch of rows) and returns a tensor with one
        row per input row.
    *arrays : np.ndarray
        Sample-major arrays with the same number of rows.
    device : torch.device
        Where ``func``'s module lives; batches move there and results come back.
    batch_size : int, optional
        Rows per call, instead of the rules above.

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
    cuda = device.type == "cuda"
    results: list[torch.Tensor] = []  # one tensor of all rows, allocated with the first batch
    staged = []

    def run(start: int, stop: int) -> None:
        host = [torch.from_numpy(np.ascontiguousarray(a[start:stop], np.float32)) for a in arrays]
        if cuda:
            host = [t.pin_memory() for t in host]
            staged.append(host)  # pinned buffers must outlive their asynchronous copies
        result = func(*(t.to(device, non_blocking=cuda) for t in host)).float()
        if result.shape[0] != len(host[0]):  # a batch summary would be broadcast silently
            raise ValueError(
                f"inference: the function returned {result.shape[0]} rows for {len(host[0])}"
            )
        if not results:
            shape = (n, *result.shape[1:])
            if cuda:
                results.append(torch.empty(shape, dtype=torch.float32, pin_memory=True))
            else:  # numpy's large arrays get transparent huge pages, torch's do not
                results.append(torch.from_numpy(np.empty(shape, np.float32)))
        results[0][start:stop].copy_(result, non_blocking=cuda)

    with torch.inference_mode():
        done = 0
        if batch_size is None and cuda:
            row_bytes = sum(4 * int(np.prod(a.shape[1:])) for a in arrays)
            batch_size = inference_batch_size(device, row_bytes)
        elif batch_size is None:
            module, key = _probe_key(func, arrays)
            batch_size = _PROBED.get(module, {}).get(key) if module is not None else None
            # The first batch is PROBE_ROWS rows, probed or not: a call's batches, and so
            # its bits (a matrix product's sums depend on the rows it is blocked by), do
            # not depend on whether the model ran before.
            done = min(PROBE_ROWS, n)
            if batch_size is not None:
                run(0, done)
            else:
                with LargestTensor() as probe:
                    run(0, done)
                batch_size = cpu_batch_size(probe.bytes, done)
                if module is not None and done == PROBE_ROWS:  # a full probe only
                    _PROBED.setdefault(module, {})[key] = batch_size
        for start in range(done, n, batch_size):
            run(start, start + batch_size)
        if not results:
            run(0, 0)
        if cuda:
            torch.cuda.synchronize(device)
    return results[0].numpy()


def _probe_key(
    func: Callable[..., torch.Tensor], arrays: tuple[np.ndarray, ...]
) -> tuple[torch.nn.Module | None, Hashable]:
    """The module a probed batch size is remembered on, and its key there.

    ``func`` is a module or a bound method of one (the key holds the method and each
    array's row shape and dtype); for any other function (a lambda, a closure) the
    module is None and the size is probed on every call.
    """
    module = getattr(func, "__self__", func)
    if not isinstance(module, torch.nn.Module):
        return None, None
    rows = tuple((a.shape[1:], a.dtype.str) for a in arrays)
    return module, (getattr(func, "__func__", None), rows)


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
