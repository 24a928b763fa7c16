"""Data-parallel training over ``torch.distributed``, as launched by ``torchrun``.

`climlatent.training.fit` calls `setup` first: under ``torchrun`` (the ``RANK``,
``WORLD_SIZE`` and ``MASTER_ADDR`` variables are set) it joins the process group with
NCCL for CUDA tensors and gloo for CPU ones (gloo alone on a machine without CUDA),
``cuda:LOCAL_RANK`` made each rank's current device; a group the caller initialised
already is used as it is (its ranks must have set their CUDA device themselves).
Then each optimiser step takes the next R * B samples of the epoch's shuffled order
(R ranks, ``batch_size`` B per rank): the global batch that one process with batch
size R * B takes. Rank r trains on its share, samples ``r, r + R, ...`` of
that batch (`batch_shares`; in the last batch of an epoch a share may be smaller than
another's, or empty). Gradients are all-reduced after each backward pass, each rank's
weighted by its share of the global batch (one bucketed all-reduce per optimiser
group), so that every step is the step of one process on the global batch; logged
losses are reduced to the global sample-weighted means (validation splits its samples
the same way; a rank without any adds nothing), and rank 0 alone writes checkpoints.
R ranks with batch size B thus train exactly as one process with batch size R * B,
whether or not R divides the training samples, up to the order of floating-point sums
(two ranks agree with one process to 1e-5 in the tests, 1e-7 in the weights after 4
epochs), for losses that average over a batch's samples (a batch-norm layer still
normalises over each rank's share alone, as under DDP).

Gradients are all-reduced here rather than by wrapping the module in
``DistributedDataParallel``: the training contract computes losses with
``training_losses`` (not ``forward``) and steps several optimiser groups on one batch
with ``backward(inputs=...)``, which DDP's reducer does not support. Nor does
``DistributedSampler`` split the epochs: it pads the order with its first samples so
that every rank takes as many samples, and a padded epoch counts up to R - 1 samples
twice.

A training script needs no change to run on several processes::

    torchrun --nproc_per_node 4 train.py

It should write its outputs from rank 0 only (``if is_main_process(): model.save(...)``).
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = [
    "all_reduce_gradients",
    "all_reduce_sum",
    "barrier",
    "batch_shares",
    "broadcast_buffers",
    "broadcast_module",
    "gather",
    "is_distributed",
    "is_main_process",
    "rank",
    "setup",
    "training_device",
    "world_size",
]

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def setup() -> bool:
    """Join the ``torchrun`` process group when launched by it.

    Returns
    -------
    bool
        Whether training is distributed: a process group is initialised now.

    Examples
    --------
    >>> setup()  # a plain python process
    False
    """
    if not dist.is_available():
        return False
    if not dist.is_initialized() and all(key in os.environ for key in TORCHRUN_VARIABLES):
        # Imported after the group exists (the optimisers import it through
        # torch._dynamo), this module's functions hold the group as the default value of
        # their ``group`` argument, so destroy_process_group would leave it and its
        # gloo worker threads alive into the interpreter's teardown (see _leave_group).
        import torch.distributed.nn.functional  # noqa: F401

        dist.init_process_group(_backend())
        atexit.register(_leave_group)
    return dist.is_initialized()


def _backend() -> str:
    """The backend `setup` joins with; on a CUDA machine, first this rank's GPU made current.

    NCCL for CUDA tensors and gloo for CPU ones, in one group: a run with
    ``device="cpu"`` on a machine with GPUs all-reduces CPU tensors, which NCCL alone
    refuses, and the object collectives (`gather`) and `barrier` run on gloo, not on the
    current CUDA device. That device is ``LOCAL_RANK``'s: every rank left on ``cuda:0``
    would put NCCL's communicators and ``resolve_device("auto")`` (an estimator's
    ``device_``) there, where rank r trains on ``cuda:r``.
    """
    if not (torch.cuda.is_available() and dist.is_nccl_available()):
        return "gloo"
    torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    return "cpu:gloo,cuda:nccl"


def _leave_group() -> None:
    """Destroy the process group `setup` joined, before the interpreter tears down.

    Destroying the group joins its gloo worker threads. A worker still running at the
    teardown may release the last reference to a tensor that Python dropped (a
    collective's buffer) after the interpreter began finalising: taking the GIL then
    ends the thread inside C++ code, and the rank aborts ("terminate called without an
    active exception", SIGABRT; torchrun reports a failed run after training
    succeeded, about once in a few hundred runs under load).
    """
    if dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    """Whether a ``torch.distributed`` process group is initialised.

    Examples
    --------
    >>> is_distributed()
    False
    """
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """Rank of this process; 0 without a process group.

    Examples
    --------
    >>> rank()
    0
    """
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes training together; 1 without a process group.

    Examples
    --------
    >>> world_size()
    1
    """
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """Whether this process writes outputs (rank 0).

    Examples
    --------
    >>> is_main_process()
    True
    """
    return rank() == 0


def barrier() -> None:
    """Wait for every rank; nothing without a process group.

    Examples
    --------
    >>> barrier()
    """
    if is_distributed():
        dist.barrier()


def training_device(name: str) -> str:
    """The device name a rank trains on: its own GPU (``LOCAL_RANK``) under ``torchrun``.

    Parameters
    ----------
    name : str
        The configured device; ``"auto"`` and bare ``"cuda"`` become ``"cuda:LOCAL_RANK"``
        in a distributed run with CUDA. Anything else is returned unchanged.

    Examples
    --------
    >>> training_device("cpu")
    'cpu'
    """
    if is_distributed() and name in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return name


def broadcast_module(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank, as DDP does at wrap time.

    Parameters
    ----------
    module : torch.nn.Module
        The module, already on its training device.

    Examples
    --------
    >>> broadcast_module(nn.Linear(2, 1))  # no process group: nothing to do
    """
    if is_distributed():
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src=0)


def broadcast_buffers(module: nn.Module) -> None:
    """Copy rank 0's buffers (batch-norm running statistics) to every rank.

    Gradients keep the parameters equal on every rank, not the buffers a forward pass
    updates: without this, each rank's running statistics follow its own shard, the
    validation loss averages different models, and rank 0 saves only its own. DDP
    broadcasts rank 0's buffers before every forward pass (``broadcast_buffers=True``);
    rank 0's buffers are then the same as here.

    Examples
    --------
    >>> broadcast_buffers(nn.BatchNorm1d(2))  # no process group: nothing to do
    """
    if is_distributed():
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def all_reduce_gradients(parameters: Sequence[nn.Parameter], size: int, total: int) -> None:
    """Sum the gradients of ``parameters`` over ranks, weighted, in one bucketed all-reduce.

    Parameters
    ----------
    parameters : sequence of torch.nn.Parameter
        The same parameters, in the same order, on every rank.
    size, total : int
        This rank's samples in the global batch, and the global batch's samples over
        all ranks. Each rank's gradient (of a loss averaged over its own samples) is
        weighted by ``size / total``: the sum is the gradient of the loss averaged over
        the global batch. A rank with ``size`` 0 has no gradients and still joins the
        all-reduce.

    Notes
    -----
    When ``total < world_size()`` (some rank has no sample) the ranks exchange which
    parameters have a gradient: one without a gradient on every rank keeps None (an
    optimiser skips it, as one process would), the others get the reduced gradient.
    Otherwise every rank must have gradients for the same parameters.

    Examples
    --------
    >>> layer = nn.Linear(2, 1)
    >>> layer(torch.ones(1, 2)).sum().backward()
    >>> all_reduce_gradients(list(layer.parameters()), 1, 1)  # world size 1: unchanged
    >>> layer.bias.grad
    tensor([1.])
    """
    if not is_distributed():
        return
    exchange = total < world_size()  # some rank has no gradients
    params = [p for p in parameters if exchange or p.grad is not None]
    if not params:
        return
    flat = torch.cat(
        [(torch.zeros_like(p) if p.grad is None else p.grad).reshape(-1) for p in params]
    )
    if exchange:  # one flag per parameter: whether this rank has its gradient
        flat = torch.cat([flat, flat.new_tensor([p.grad is not None for p in params])])
    flat *= size / total
    dist.all_reduce(flat)
    reduced = flat.split([p.numel() for p in params] + [len(params)] * exchange)
    present = reduced[-1].tolist() if exchange else [1] * len(params)
    for param, value, flag in zip(params, reduced, present, strict=False):
        if param.grad is not None:
            param.grad.copy_(value.view_as(param))
        elif flag:  # a gradient on another rank only
            param.grad = value.view_as(param).clone()


def gather(value: object) -> list:
    """Every rank's ``value``, in rank order (``[value]`` without a process group).

    Examples
    --------
    >>> gather({"epoch": 3})
    [{'epoch': 3}]
    """
    if not is_distributed():
        return [value]
    values = [None] * world_size()
    dist.all_gather_object(values, value)
    return values


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` over ranks in place and return it.

    Parameters
    ----------
    tensor : torch.Tensor
        Same shape on every rank; on the CPU for gloo, on the rank's GPU for NCCL.

    Examples
    --------
    >>> all_reduce_sum(torch.tensor([1.0, 2.0]))
    tensor([1., 2.])
    """
    if is_distributed():
        dist.all_reduce(tensor)
    return tensor


def batch_shares(order: Tensor, batch_size: int) -> Iterator[tuple[Tensor, int]]:
    """The share of this rank in each global batch of ``world_size() * batch_size`` samples.

    Parameters
    ----------
    order : torch.Tensor
        The epoch's sample indices, in the order one process would take them.
    batch_size : int
        Samples per rank and step: a global batch holds ``world_size()`` times as many.

    Yields
    ------
    share : torch.Tensor
        Samples ``r, r + R, ...`` of the global batch for rank r of R, without padding:
        in the last batch of an epoch a share may be one sample short of another, or
        empty (when the batch has fewer samples than there are ranks).
    total : int
        The samples of the global batch, over all ranks.

    Examples
    --------
    >>> [(share.tolist(), total) for share, total in batch_shares(torch.arange(5), 2)]
    [([0, 1], 2), ([2, 3], 2), ([4], 1)]
    """
    own, ranks = rank(), world_size()
    for start in range(0, len(order), ranks * batch_size):
        batch = order[start : start + ranks * batch_size]
        yield batch[own::ranks], len(batch)
