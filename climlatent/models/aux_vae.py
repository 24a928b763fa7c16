"""Aux-VAE: a Gaussian VAE whose first latents are tethered to named physical drivers.

The latent splits into a guided block and a residual block, ``z = (z_aux, z_rec)``,
with the conditional prior ``z_aux | u ~ N(u, tau^2 I)`` and ``z_rec ~ N(0, I)``, where
``u`` are auxiliary variables (standardised): a circulation index, global-mean
temperature, the known factors of a synthetic world. The loss is the negative ELBO
under that prior plus two light penalties:

- alignment, ``|| mean_aux(y) - u ||^2``: the guided posterior means track ``u``;
- decorrelation, ``|| corr(mean_aux, mean_rec) ||_F^2`` over the batch: the residual
  block carries what the drivers do not explain, not a copy of them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from climlatent.models.priors import gaussian_kl_standard
from climlatent.models.vae import GaussianVAE
from climlatent.schedules import BetaSchedule

__all__ = ["AuxiliaryVAE", "cross_correlation", "gaussian_kl"]


def gaussian_kl(mean: Tensor, log_var: Tensor, prior_mean: Tensor, prior_var: float) -> Tensor:
    """``KL[N(mean, exp(log_var)) || N(prior_mean, prior_var I)]`` summed over the last dim.

    Examples
    --------
    >>> float(gaussian_kl(torch.ones(1, 2), torch.zeros(1, 2), torch.ones(1, 2), 1.0))
    0.0
    """
    log_prior_var = math.log(prior_var)
    return 0.5 * (
        (log_var.exp() + (mean - prior_mean) ** 2) / prior_var - 1 - log_var + log_prior_var
    ).sum(-1)


def cross_correlation(a: Tensor, b: Tensor, eps: float = 1e-6) -> Tensor:
    """Pearson correlations between the columns of ``a`` and of ``b`` over the batch.

    Examples
    --------
    >>> x = torch.randn(50, 1)
    >>> round(float(cross_correlation(x, -2 * x)), 4)
    -1.0
    """
    a = a - a.mean(0)
    b = b - b.mean(0)
    return (a.T @ b) / (a.norm(dim=0)[:, None] * b.norm(dim=0)[None, :] + eps)


class AuxiliaryVAE(GaussianVAE):
    """`GaussianVAE` with a guided latent block (conditional prior) and a residual block.

    Parameters
    ----------
    encoder, decoder, latent_dim, channels, schedule
        As for `GaussianVAE` (the prior of the residual block is ``N(0, I)``).
    n_guided : int
        Size of the guided block (the number of auxiliary variables), < ``latent_dim``.
    tau : float
        Standard deviation of the guided prior around ``u``.
    alignment_weight, decorrelation_weight : float
        Weights of the two penalties (nats per sample).

    Examples
    --------
    >>> from climlatent.models.dense_blocks import DenseDecoder, DenseEncoder
    >>> vae = AuxiliaryVAE(DenseEncoder(1, 9, 8, n_scales=2), DenseDecoder(4, 1, 9, n_scales=2),
    ...                    latent_dim=4, channels=1, n_guided=2)
    >>> losses = vae.training_losses((torch.randn(6, 1, 9, 9), torch.randn(6, 2)))
    >>> sorted(losses)
    ['alignment', 'decorrelation', 'loss', 'reconstruction', 'regularisation']
    >>> vae.generate(torch.zeros(3, 2)).shape
    torch.Size([3, 1, 9, 9])
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_dim: int,
        channels: int,
        n_guided: int,
        tau: float = 0.1,
        alignment_weight: float = 1.0,
        decorrelation_weight: float = 100.0,
        schedule: BetaSchedule | None = None,
    ) -> None:
        if not 0 < n_guided < latent_dim:
            raise ValueError(f"n_guided must be in [1, latent_dim), got {n_guided} of {latent_dim}")
        super().__init__(encoder, decoder, latent_dim, channels, "standard", schedule)
        self.n_guided, self.tau = n_guided, tau
        self.alignment_weight = alignment_weight
        self.decorrelation_weight = decorrelation_weight

    def generate(
        self,
        guided: Tensor,
        residual: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Decode guided values with given (or prior-drawn) residual latents."""
        if residual is None:
            shape = (len(guided), self.latent_dim - self.n_guided)
            residual = torch.randn(shape, generator=generator, device=guided.device)
        return self.decode(torch.cat([guided, residual], dim=-1))

    def training_losses(self, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
        """Negative ELBO under the conditional prior, plus the two penalties.

        ``batch`` is ``(y, u)``: fields and standardised auxiliaries ``(batch, n_guided)``.
        """
        y, u = batch[0], batch[1]
        mean, log_var = self.posterior(y)
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        nll = self.negative_log_likelihood(y, self.decoder(z))
        k = self.n_guided
        reg = gaussian_kl(mean[:, :k], log_var[:, :k], u, self.tau**2)
        reg = reg + gaussian_kl_standard(mean[:, k:], log_var[:, k:])
        alignment = ((mean[:, :k] - u) ** 2).sum(-1).mean()
        decorrelation = cross_correlation(mean[:, :k], mean[:, k:]).pow(2).sum()
        objective = (nll + self.beta * reg).mean()
        objective = objective + self.alignment_weight * alignment
        objective = objective + self.decorrelation_weight * decorrelation
        return {
            "loss": objective / math.prod(y.shape[1:]),
            "reconstruction": nll.mean() / math.prod(y.shape[1:]),
            "regularisation": reg.mean(),
            "alignment": alignment,
            "decorrelation": decorrelation,
        }
