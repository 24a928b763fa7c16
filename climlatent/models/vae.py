"""A Gaussian VAE on gridded fields, with a switchable prior and optional labels.

``q(z|y) = N(mean(y), diag(exp(log_var(y))))`` from an encoder, ``p(y|z) =
N(decoder(z), diag(sigma^2))`` with a learned constant log-variance per output
channel (Jacobsen & Duraisamy 2022, Sec. 4.1), and a prior from
:mod:`climlatent.models.priors`. The per-sample loss is the negative ELBO with the
regularisation weighted by ``beta`` (their Eq. 5 and the beta-VAE):

    -log p(y|z) + beta * REG(z, y),

and, with labels, the semi-supervised term of their Eq. 28,
``E_{p_l(y)}[-log q(z = theta | y)]``: the labels' log density under the encoder,
averaged over the labelled samples and weighted by ``supervision_weight`` (1 in Eq.
28; the reconstruction term sums over every value of a field, so on large grids a
larger weight keeps a few labels from being drowned out). Each batch estimates it
without bias whatever its number of labelled samples (none, often, with a few labels):
the labelled ones count the inverse of their share of the training set. Losses are in
nats; the minimised ``loss`` is divided by the number of output values per sample
so that learning rates do not depend on the grid size.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from climlatent.draws import standard_normal_rows
from climlatent.models.priors import LOG_2PI, gaussian_log_prob, make_prior, prior_draws
from climlatent.schedules import BetaSchedule

__all__ = ["GaussianEncoderDecoder", "GaussianVAE"]

LOG_VAR_RANGE = (-12.0, 8.0)


class GaussianEncoderDecoder(nn.Module):
    """Encoder to ``q(z|.) = N(mean, diag(exp(log_var)))``, decoder to a Gaussian output.

    The part shared by `GaussianVAE` and the variational encoder-decoder: the output
    ``p(y|z) = N(decoder(z), diag(sigma^2))`` has one learned log-variance per channel.

    Examples
    --------
    >>> model = GaussianEncoderDecoder(nn.Linear(3, 4), nn.Linear(2, 3), 2, channels=3)
    >>> model.encode(torch.zeros(5, 3)).shape
    torch.Size([5, 2])
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent_dim: int, channels: int):
        super().__init__()
        self.encoder, self.decoder, self.latent_dim = encoder, decoder, latent_dim
        self.output_log_var = nn.Parameter(torch.zeros(channels))

    def posterior(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of ``q(z|y)``."""
        mean, log_var = self.encoder(y).chunk(2, dim=-1)
        return mean, log_var.clamp(*LOG_VAR_RANGE)

    def encode(self, y: Tensor) -> Tensor:
        """Posterior means (the deterministic code of ``y``)."""
        return self.posterior(y)[0]

    def decode(self, z: Tensor) -> Tensor:
        """Output means ``E[y | z]``."""
        return self.decoder(z)

    def with_output_noise(self, y: Tensor, output_noise: Tensor) -> Tensor:
        """Output means ``y`` plus the output noise of ``p(y|z)``, ``sigma_y * output_noise``.

        ``output_noise``: standard normals, any shape of ``y``'s size.
        """
        shape = (1, -1) + (1,) * (y.dim() - 2)
        std = (0.5 * self.output_log_var).exp().view(shape)
        return y + std * output_noise.to(y.dtype).reshape(y.shape)

    def negative_log_likelihood(self, y: Tensor, mean: Tensor) -> Tensor:
        """Per-sample ``-log p(y | z)`` of the Gaussian output, summed over values."""
        shape = (1, -1) + (1,) * (y.dim() - 2)
        log_var = self.output_log_var.view(shape)
        values = 0.5 * (LOG_2PI + log_var + (y - mean) ** 2 * torch.exp(-log_var))
        return values.flatten(1).sum(1)


class GaussianVAE(GaussianEncoderDecoder):
    """Encoder + Gaussian latent + decoder + prior, trained by `climlatent.training.fit`.

    Parameters
    ----------
    encoder : torch.nn.Module
        Fields ``(batch, channels, ...)`` -> ``(batch, 2 * latent_dim)``: mean, then
        log-variance of ``q(z|y)``.
    decoder : torch.nn.Module
        ``(batch, latent_dim)`` -> fields shaped like the input.
    latent_dim : int
        Size of ``z``.
    channels : int
        Output channels (one learned output log-variance each).
    prior : {"standard", "hierarchical"}
        ``N(0, I)`` or the learned hierarchical prior.
    schedule : BetaSchedule, optional
        ``beta`` and learning-rate factor per epoch; ``beta = 1`` throughout by default.
    supervision_weight : float
        Weight of the semi-supervised term for labelled samples.

    Examples
    --------
    >>> from climlatent.models.dense_blocks import DenseDecoder, DenseEncoder
    >>> vae = GaussianVAE(DenseEncoder(3, 17, 4, n_scales=2), DenseDecoder(2, 3, 17, n_scales=2),
    ...                   latent_dim=2, channels=3, prior="hierarchical")
    >>> losses = vae.training_losses((torch.randn(4, 3, 17, 17),))
    >>> sorted(losses)
    ['loss', 'reconstruction', 'regularisation']
    >>> vae.sample(2).shape
    torch.Size([2, 3, 17, 17])
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_dim: int,
        channels: int,
        prior: str = "standard",
        schedule: BetaSchedule | None = None,
        supervision_weight: float = 1.0,
    ) -> None:
        super().__init__(encoder, decoder, latent_dim, channels)
        self.prior = make_prior(prior, latent_dim)
        self.schedule = schedule or BetaSchedule.constant(1.0)
        self.beta = self.schedule.beta(0)
        self.supervision_weight = supervision_weight

    def on_epoch_start(self, epoch: int) -> None:
        """Set ``beta`` from the schedule."""
        self.beta = self.schedule.beta(epoch)

    def lr_scale(self, epoch: int) -> float:
        """Learning-rate factor from the schedule."""
        return self.schedule.lr_scale(epoch)

    def reconstruct(self, y: Tensor) -> Tensor:
        """Decode the posterior mean of ``y``."""
        return self.decode(self.encode(y))

    def sample(self, n: int, seed: int = 0, noise: bool = False) -> Tensor:
        """Output means of ``n`` latent draws from the prior (`prior_draws`).

        With ``noise`` the output noise of ``p(y|z)`` is added, from the Philox stream
        after the prior's: draw ``i`` still comes from ``seed`` and ``i`` alone.
        """
        device = self.output_log_var.device
        y = self.decode(prior_draws(self.prior, n, self.latent_dim, seed, device))
        if not noise:
            return y
        stream = len(self.prior.noise_widths(self.latent_dim))
        normals = standard_normal_rows(seed, 0, 0, n, y[0].numel(), stream)
        return self.with_output_noise(y, torch.from_numpy(normals).to(device))

    def training_losses(self, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
        """Negative ELBO (``beta``-weighted) and, with labels, the Eq. 28 term.

        ``batch`` is ``(y,)`` or ``(y, theta, labelled)``: fields, label vectors
        ``(batch, latent_dim)`` (those of unlabelled samples are not read: NaN will do)
        and per sample 0 (no label) or the inverse of the labelled share of the
        training set (``N / n_labelled``; 1 when all are labelled).
        ``sum(labelled * -log q(theta | y)) / batch`` is then an unbiased estimate of
        the mean over the labelled samples in every batch: their mean within the batch,
        weighted 1, would weigh the term by the chance that a batch holds a label (0.43
        for 5 labels among 516 samples in batches of 64).
        """
        y = batch[0]
        mean, log_var = self.posterior(y)
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        nll = self.negative_log_likelihood(y, self.decoder(z))
        reg = self.prior.regularisation(z, mean, log_var)
        n_values = math.prod(y.shape[1:])
        objective = (nll + self.beta * reg).mean()
        losses = {"reconstruction": nll.mean() / n_values, "regularisation": reg.mean()}
        if len(batch) == 3:
            labelled = batch[2].to(mean.dtype)
            # a NaN label of an unlabelled row, were it masked out of the term only, would
            # still make the gradient NaN (0 * NaN in the backward pass)
            theta = torch.where(labelled[:, None] > 0, batch[1], 0.0)
            supervision = -gaussian_log_prob(theta, mean, log_var)
            term = (labelled * supervision).sum() / len(y)
            losses["supervision"] = term
            objective = objective + self.supervision_weight * term
        losses["loss"] = objective / n_values
        return losses
