r"""Physics-proxy downscaling: coarse drivers -> proxy latent field -> fine field.

Seed 000, Section 4.4: coarse physical drivers (e.g. temperature, radiation) pass
through learnable proxy functions :math:`g_k` into a latent field at the coarse
resolution; a decoder maps it to the fine grid. Here the decoder is an interpolation
operator :math:`U` (fixed, sparse: bilinear weights from the coarse to the fine grid)
followed by a learned per-cell fine-scale structure, in one of two forms:

- ``"multiplicative"`` (growth laws, positive targets such as chlorophyll):
  :math:`\log \hat y = s(x) + U \sum_k \log g_k(d_k)`, so that
  :math:`\hat y = e^{s(x)} \prod_k g_k` interpolated: growth laws multiply. The loss
  is the squared error of :math:`\log y` (the likelihood of lognormal noise).
- ``"additive"`` (a variable downscaled by itself, e.g. temperature):
  :math:`\hat y = w(x)\,(U \sum_k g_k(d_k) - c(x)) + s(x)`, a per-cell gain on the
  interpolated anomaly from its training mean :math:`c(x)`, and an offset; the loss is
  the squared error of :math:`y`.

With ``noise=True`` the module also learns a per-cell residual standard deviation
:math:`\sigma(x)` (in log space for the multiplicative form) by Gaussian negative
log-likelihood, and :meth:`ProxyDownscaler.sample` draws stochastic fine fields.

Batches are ``(y, weight, drivers)``: fine target cells (NaN set to a valid
placeholder), their data mask, and drivers ``(batch, n_proxies, n_coarse_cells)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

MODES = ("multiplicative", "additive")


class ProxyDownscaler(nn.Module):
    """Coarse drivers through proxy functions, interpolated and refined on the fine grid.

    Parameters
    ----------
    upsample : torch.Tensor
        Sparse ``(n_fine_cells, n_coarse_cells)`` interpolation matrix.
    proxies : sequence of nn.Module
        One elementwise proxy function per driver.
    mode : {"multiplicative", "additive"}
        How the latent field combines with the fine-scale structure.
    structure : torch.Tensor
        Initial fine-scale structure ``s(x)`` (log-scale in the multiplicative form).
    floor : float
        Smallest target value taken into the log (multiplicative form).
    noise : bool
        Learn a per-cell residual standard deviation for stochastic downscaling.

    Examples
    --------
    >>> from climlatent.models.proxies import ExponentialGrowth
    >>> upsample = torch.eye(3).to_sparse()
    >>> model = ProxyDownscaler(upsample, [ExponentialGrowth()], "multiplicative",
    ...                         torch.zeros(3))
    >>> model(torch.full((2, 1, 3), 20.0)).shape
    torch.Size([2, 3])
    """

    def __init__(
        self,
        upsample: Tensor,
        proxies: Sequence[nn.Module],
        mode: str,
        structure: Tensor,
        floor: float = 1e-12,
        noise: bool = False,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode, self.floor, self.noise = mode, float(floor), bool(noise)
        self.register_buffer("upsample", upsample.coalesce(), persistent=False)
        self.proxies = nn.ModuleList(proxies)
        self.structure = nn.Parameter(structure.clone().float())
        self.gain = nn.Parameter(torch.ones_like(self.structure))
        self.register_buffer("centre", torch.zeros_like(self.structure))
        self.log_sigma = nn.Parameter(torch.zeros_like(self.structure), requires_grad=noise)

    def latent(self, drivers: Tensor) -> Tensor:
        """The coarse latent field ``(batch, n_coarse)``: summed (log-)proxy terms."""
        terms = [proxy(drivers[:, k]) for k, proxy in enumerate(self.proxies)]
        if self.mode == "multiplicative":
            terms = [torch.log(torch.clamp(term, min=1e-12)) for term in terms]
        return torch.stack(terms).sum(0)

    def predictor(self, drivers: Tensor) -> Tensor:
        """The linear predictor on the fine grid (log of the field if multiplicative)."""
        fine = torch.sparse.mm(self.upsample, self.latent(drivers).T).T
        if self.mode == "multiplicative":
            return self.structure + fine
        return self.gain * (fine - self.centre) + self.structure

    def forward(self, drivers: Tensor) -> Tensor:
        """The downscaled field ``(batch, n_fine)`` (its median if multiplicative)."""
        predictor = self.predictor(drivers)
        return torch.exp(predictor) if self.mode == "multiplicative" else predictor

    def sample(self, drivers: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One stochastic fine field per batch row, with the learned residual noise."""
        predictor = self.predictor(drivers)
        eps = torch.randn(predictor.shape, generator=generator, device=predictor.device)
        draw = predictor + torch.exp(self.log_sigma) * eps
        return torch.exp(draw) if self.mode == "multiplicative" else draw

    def training_losses(self, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
        """Squared error (or Gaussian NLL with ``noise``) on the fine valid cells."""
        y, weight, drivers = batch
        target = torch.log(torch.clamp(y, min=self.floor)) if self.mode == "multiplicative" else y
        residual = (target - self.predictor(drivers)) ** 2
        n_valid = weight.sum().clamp(min=1)
        mse = (weight * residual).sum() / n_valid
        if not self.noise:
            return {"loss": mse, "mse": mse}
        nll = weight * (self.log_sigma + 0.5 * residual * torch.exp(-2 * self.log_sigma))
        return {"loss": nll.sum() / n_valid, "mse": mse}
