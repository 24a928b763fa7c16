"""Loss functions shared by the models."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["masked_mse"]


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over the valid cells only.

    Parameters
    ----------
    pred, target : torch.Tensor
        Prediction and truth of the same shape. Values of ``target`` at invalid cells
        (NaN over land, say) are ignored and do not reach the gradient.
    mask : torch.Tensor
        Boolean, True at valid cells; broadcastable to ``pred`` (a per-cell mask of
        shape ``(n_features,)`` serves every sample of a batch).

    Returns
    -------
    torch.Tensor
        Scalar mean of the squared error over the valid cells (NaN if there are none).

    Examples
    --------
    >>> pred = torch.tensor([[1.0, 2.0, 0.0]])
    >>> target = torch.tensor([[0.0, 0.0, float("nan")]])
    >>> masked_mse(pred, target, torch.tensor([True, True, False]))
    tensor(2.5000)
    """
    valid = mask.expand_as(pred)
    squared_error = torch.where(valid, pred - target, 0.0).square()
    return squared_error.sum() / valid.sum()
