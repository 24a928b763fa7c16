"""Data plumbing of the training loop in `climlatent.training`.

Counting the samples of the input tensors, splitting them into training and validation
sets, placing them on the training device, and averaging the losses of an epoch over
its samples (and over the ranks of a data-parallel run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from climlatent import distributed
from climlatent.errors import InputDataError
from climlatent.random_streams import stream_seed


class LossMeans:
    """Sample-weighted means of scalar losses, summed on the device, read back once.

    Parameters
    ----------
    monitor : str, optional
        A key the losses must hold (``TrainingConfig.monitor``): refused at the first
        batch, naming the keys there are, rather than at the end of the epoch.

    Examples
    --------
    >>> means = LossMeans()
    >>> means.add({"loss": torch.tensor(1.0)}, size=3)
    >>> means.add({"loss": torch.tensor(5.0)}, size=1)
    >>> means.means()
    {'loss': 2.0}
    >>> LossMeans(monitor="los").add({"loss": torch.tensor(1.0)}, size=3)
    Traceback (most recent call last):
    ...
    ValueError: monitor 'los' is not a loss of the model: its training_losses are ['loss']
    """

    def __init__(self, monitor: str | None = None) -> None:
        self.sums: dict[str, Tensor] = {}
        self.count = 0
        self.monitor = monitor

    def add(self, losses: Mapping[str, Tensor], size: int) -> None:
        """Add the losses of one batch of ``size`` samples."""
        if self.monitor is not None and self.monitor not in losses:
            raise ValueError(
                f"monitor {self.monitor!r} is not a loss of the model: its training_losses "
                f"are {sorted(losses)}"
            )
        if not self.sums:
            self.sums = {  # at least float32, float64 for a float64 model's losses
                key: torch.zeros(
                    (), dtype=torch.promote_types(loss.dtype, torch.float32), device=loss.device
                )
                for key, loss in losses.items()
            }
        for key, total in self.sums.items():
            total.add_(losses[key].detach(), alpha=size)  # one kernel per key and batch
        self.count += size

    def means(
        self, *, some_rank_empty: bool = False, device: torch.device | None = None
    ) -> dict[str, float]:
        """Means over the samples of every rank.

        Parameters
        ----------
        some_rank_empty : bool
            Whether a rank may have added no batch (fewer samples than ranks): the ranks
            then first exchange their loss keys and dtypes (one more collective), and a
            rank without samples contributes zero sums, made on ``device``. It must be
            the same on every rank.
        device : torch.device, optional
            The device of the losses (the CPU by default).
        """
        if some_rank_empty:
            layouts = distributed.gather({key: total.dtype for key, total in self.sums.items()})
            layout = next(keys for keys in layouts if keys)
            if not self.sums:
                self.sums = {
                    key: torch.zeros((), dtype=dtype, device=device)
                    for key, dtype in layout.items()
                }
        sums = torch.stack(list(self.sums.values()))
        totals = distributed.all_reduce_sum(torch.cat([sums, sums.new_tensor([self.count])]))
        values = (totals[:-1] / totals[-1]).tolist()
        return dict(zip(self.sums, values, strict=True))


def shuffled(indices: Tensor, seed: int, epoch: int, random_streams: int) -> Tensor:
    """``indices`` in the epoch's random order, drawn from ``seed`` and ``epoch`` alone.

    The order is ``DistributedSampler``'s (shuffled, one replica), the same on every
    rank, and needs no state to resume. Its stream is the epoch's ``"order"`` stream of
    version ``random_streams`` (`climlatent.random_streams.stream_seed`; version 1
    seeds it with ``seed + epoch``).

    Examples
    --------
    >>> shuffled(torch.arange(10, 15), seed=0, epoch=1, random_streams=2).sort().values.tolist()
    [10, 11, 12, 13, 14]
    """
    generator = torch.Generator()
    generator.manual_seed(stream_seed(seed, random_streams, "order", epoch))
    return indices[torch.randperm(len(indices), generator=generator)]


def count_samples(tensors: Sequence[Tensor]) -> int:
    """The number of samples (first dimension) that all ``tensors`` share.

    Raises
    ------
    InputDataError
        If there is no tensor or they disagree on the number of samples.

    Examples
    --------
    >>> count_samples((torch.zeros(5, 2), torch.zeros(5)))
    5
    """
    if not tensors:
        raise InputDataError("fit needs at least one tensor")
    n_samples = len(tensors[0])
    if any(len(t) != n_samples for t in tensors):
        shapes = [tuple(t.shape) for t in tensors]
        raise InputDataError(f"tensors must share their first (sample) dimension, got {shapes}")
    return n_samples


def place(tensors: tuple[Tensor, ...], device: torch.device) -> tuple[Tensor, ...]:
    """Move the data to a CUDA ``device`` once if it takes under half its free memory.

    Otherwise (or on the CPU) the tensors stay where they are and move batch by batch.

    Examples
    --------
    >>> data = (torch.zeros(4, 2),)
    >>> place(data, torch.device("cpu")) is data
    True
    """
    if device.type != "cuda" or all(t.device == device for t in tensors):
        return tensors
    free_bytes, _ = torch.cuda.mem_get_info(device)
    if sum(t.element_size() * t.nelement() for t in tensors) < free_bytes // 2:
        return tuple(t.to(device) for t in tensors)
    return tensors


def validation_split(
    n_samples: int, fraction: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Split sample indices at random into training and validation sets.

    Parameters
    ----------
    n_samples : int
        Number of samples.
    fraction : float
        Fraction held out for validation, rounded to a whole number of samples (at
        least one when ``fraction > 0``). Zero draws nothing from ``generator``.
    generator : torch.Generator
        Source of the random permutation.

    Returns
    -------
    train, valid : torch.Tensor
        Disjoint sorted int64 indices covering ``range(n_samples)``.

    Examples
    --------
    >>> train, valid = validation_split(10, 0.2, torch.Generator().manual_seed(0))
    >>> len(train), len(valid)
    (8, 2)
    """
    if fraction == 0:
        return torch.arange(n_samples), torch.arange(0)
    n_valid = max(round(n_samples * fraction), 1)
    if n_valid >= n_samples:
        raise InputDataError(
            f"{n_samples} samples leave none for training with validation_fraction={fraction}"
        )
    permutation = torch.randperm(n_samples, generator=generator)
    return permutation[n_valid:].sort().values, permutation[:n_valid].sort().values
