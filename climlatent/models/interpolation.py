r"""The coarse-to-fine interpolation operator :math:`U` as a sparse matrix product.

Seed 000, Section 4.4: the proxy models' decoder interpolates a coarse latent field to
the fine grid with a fixed (or learned) operator :math:`U`: each fine cell is a
weighted sum of its ``k`` nearest coarse cells (bilinear weights,
:func:`climlatent.interpolation_kernel.interpolation_kernel`). Stored as ``neighbours``
and ``weights`` ``(n_fine, k)``, it runs as a CSR matrix ``(n_fine, n_coarse)`` times
the coarse fields: on one CPU thread, 64 x 96 fine cells from 362 coarse ones, 9 each,
took 8 us a row against 228 us for the gather ``(coarse[:, neighbours] *
weights).sum(-1)`` it replaces (a copy of ``k`` values per fine cell and row, then two
passes over them), for the same sums to float32 rounding.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn


class CoarseToFine(nn.Module):
    """A module that interpolates coarse cells to fine ones with the kernel :math:`U`.

    Holds the buffer ``neighbours`` and the parameter ``weights`` (what the state dict
    stores) and, beside them, their CSR layout (not stored: rebuilt from
    ``neighbours`` whenever a state dict is loaded). A coarse cell named twice among a
    fine cell's neighbours counts with the sum of its weights.

    Parameters
    ----------
    neighbours : torch.Tensor
        ``(n_fine, k)`` coarse-cell indices of each fine cell.
    weights : torch.Tensor
        ``(n_fine, k)`` their weights.
    n_coarse : int
        Cells of the coarse fields; a neighbour outside them is refused.
    learn_interpolation : bool
        Whether the weights train.

    Examples
    --------
    >>> module = CoarseToFine(torch.tensor([[0, 1], [1, 2]]), torch.full((2, 2), 0.5), 3, False)
    >>> module.interpolate(torch.tensor([[2.0, 4.0, 8.0]]))
    tensor([[3., 6.]])
    """

    def __init__(
        self, neighbours: Tensor, weights: Tensor, n_coarse: int, learn_interpolation: bool
    ) -> None:
        super().__init__()
        self.n_coarse = int(n_coarse)
        self.register_buffer("neighbours", neighbours.long())
        self.weights = nn.Parameter(weights.clone().float(), requires_grad=learn_interpolation)
        self._index_kernel()
        self.register_load_state_dict_post_hook(_index_loaded_kernel)  # picklable: no lambda

    def _index_kernel(self) -> None:
        """The CSR rows and columns of ``neighbours``, and each weight's entry among them."""
        n_fine, k = self.neighbours.shape
        if self.neighbours.numel():  # the sparse product does not check its indices
            if int(self.neighbours.min()) < 0:
                raise ValueError("interpolation neighbours: negative coarse-cell indices")
            if int(self.neighbours.max()) >= self.n_coarse:
                raise ValueError(
                    f"interpolation neighbours: a fine cell names coarse cell "
                    f"{int(self.neighbours.max())} of {self.n_coarse}"
                )
        rows = torch.arange(n_fine, device=self.neighbours.device).repeat_interleave(k)
        entries, slot = torch.unique(
            rows * self.n_coarse + self.neighbours.reshape(-1), return_inverse=True
        )
        counts = torch.bincount(entries // self.n_coarse, minlength=n_fine)
        crow = torch.zeros(n_fine + 1, dtype=torch.long, device=counts.device)
        torch.cumsum(counts, 0, out=crow[1:])
        self.register_buffer("kernel_crow", crow, persistent=False)
        self.register_buffer("kernel_col", entries % self.n_coarse, persistent=False)
        self.register_buffer("kernel_slot", slot, persistent=False)
        self._fixed_values: tuple[tuple, Tensor] | None = None

    def _kernel_values(self) -> Tensor:
        """The CSR values: each entry's weights summed; kept while the weights do not change.

        Rebuilt on every call that trains the weights (differentiable), otherwise only
        when the weights are other tensors or were changed in place.
        """
        if torch.is_grad_enabled() and self.weights.requires_grad:
            return self._summed_weights()
        key = (self.weights.data_ptr(), self.weights._version, self.kernel_slot.data_ptr())
        if self._fixed_values is None or self._fixed_values[0] != key:
            with torch.inference_mode(False), torch.no_grad():  # usable in training too
                self._fixed_values = (key, self._summed_weights())
        return self._fixed_values[1]

    def _summed_weights(self) -> Tensor:
        values = self.weights.new_zeros(len(self.kernel_col))
        return values.index_add(0, self.kernel_slot, self.weights.reshape(-1))

    def interpolate(self, coarse: Tensor) -> Tensor:
        """``U`` applied to coarse cells ``(..., n_coarse)``: fine cells ``(..., n_fine)``.

        In the weights' dtype whatever autocast is active (the kernel is sparse and cheap).
        """
        n_fine = len(self.kernel_crow) - 1
        values = self._kernel_values()
        kernel = torch.sparse_csr_tensor(
            self.kernel_crow,
            self.kernel_col,
            values,
            (n_fine, self.n_coarse),
            check_invariants=False,
        )  # sorted and distinct columns in each row, by construction
        rows = coarse.reshape(-1, coarse.shape[-1]).to(values.dtype)
        with torch.autocast(coarse.device.type, enabled=False):
            fine = (kernel @ rows.T).T  # torch refuses a field of other than n_coarse cells
        return fine.reshape(*coarse.shape[:-1], n_fine)


def _take_the_beta_notice() -> None:
    """Have torch's once-a-process notice that CSR tensors are "in beta" said, unheard.

    The kernel uses their product with a dense matrix only, which the tests check
    against the gather. The filter is the call's alone: the user's filters stay as they
    were, and the warnings they have seen once are not shown again, as a filter set
    around each product would have them (it resets Python's record of them).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning)
        rows, columns = torch.zeros(1, dtype=torch.long), torch.zeros(0, dtype=torch.long)
        torch.sparse_csr_tensor(rows, columns, torch.zeros(0), (0, 0), check_invariants=True)


_take_the_beta_notice()


def _index_loaded_kernel(module: CoarseToFine, incompatible_keys: object) -> None:
    """Index the kernel of the ``neighbours`` a state dict just loaded."""
    module._index_kernel()
