"""A variational encoder-decoder (VED) for input -> output maps between fields.

Venkatasubramanian & Barajas-Solano (2024) model ``p(y | x)`` through a latent code:
an encoder ``q(z | x) = N(mean(x), diag(exp(log_var(x))))`` from the input field (a
log-permeability, coarse predictors) and a decoder ``p(y | z) = N(decoder(z),
diag(sigma^2))`` to the output field (a pressure, fine fields), with a learned constant
log-variance per output channel. The ELBO of ``log p(y | x)`` with the prior
``p(z) = N(0, I)``, weighted as in the beta-VAE, and their covariance penalty give the
loss minimised over a mini-batch of ``B`` pairs:

    (1/B) sum_i [ -E_q log p(y_i | z) + beta KL(q(z | x_i) || N(0, I)) ]
        + lambda || Cov_q(z)[z] - I ||_F^2,

``-E_q log p(y | z)`` estimated with one reparameterised draw. ``q(z) = E_p(x)[q(z | x)]``
is the aggregate encoding distribution; on a batch it is the mixture
``(1/B) sum_i q(z | x_i)``, whose covariance is exact by the law of total covariance
(as in DIP-VAE-II, Kumar et al. 2018):

    Cov_q(z)[z] = Cov_i[mean_i] + (1/B) sum_i diag(exp(log_var_i))

(`aggregate_covariance`, the covariance of the means with the 1/B normalisation of the
mixture). The penalty pushes the codes towards decorrelated, unit-variance factors.
Losses are in nats; the minimised ``loss`` is divided by the number of output values
per sample, so that learning rates do not depend on the grid size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from climlatent.models.conv import ConvEncoder
from climlatent.models.priors import gaussian_kl_standard
from climlatent.models.vae import GaussianEncoderDecoder

__all__ = [
    "FieldConvEncoder",
    "FieldMLPDecoder",
    "FieldMLPEncoder",
    "VariationalEncoderDecoder",
    "aggregate_covariance",
    "covariance_penalty",
]


def aggregate_covariance(mean: Tensor, log_var: Tensor) -> Tensor:
    """Covariance of the mixture ``(1/B) sum_i N(mean_i, diag(exp(log_var_i)))``.

    Parameters
    ----------
    mean, log_var : torch.Tensor
        ``(B, r)`` posterior means and log-variances of a batch.

    Returns
    -------
    torch.Tensor
        ``(r, r)``: covariance of the means (divided by ``B``) plus the mean of the
        posterior variances on the diagonal.

    Examples
    --------
    >>> mean = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    >>> aggregate_covariance(mean, torch.zeros(2, 2))
    tensor([[2., 0.],
            [0., 1.]])
    """
    centred = mean - mean.mean(0, keepdim=True)
    return centred.T @ centred / len(mean) + torch.diag(log_var.exp().mean(0))


def covariance_penalty(mean: Tensor, log_var: Tensor) -> Tensor:
    """``|| Cov_q(z)[z] - I ||_F^2`` of the batch's aggregate encoding distribution.

    Examples
    --------
    >>> mean = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    >>> float(covariance_penalty(mean, torch.zeros(2, 2)))
    1.0
    """
    cov = aggregate_covariance(mean, log_var)
    return ((cov - torch.eye(len(cov), dtype=cov.dtype, device=cov.device)) ** 2).sum()


class VariationalEncoderDecoder(GaussianEncoderDecoder):
    """Encoder ``q(z|x)``, decoder ``p(y|z)``: trained by `climlatent.training.fit`.

    Parameters
    ----------
    encoder : torch.nn.Module
        Input fields ``(batch, ...)`` -> ``(batch, 2 * latent_dim)``: mean, then
        log-variance of ``q(z|x)``.
    decoder : torch.nn.Module
        ``(batch, latent_dim)`` -> output fields ``(batch, channels, ...)``.
    latent_dim : int
        Size of ``z`` (``r``).
    channels : int
        Output channels (one learned output log-variance each).
    beta : float
        Weight of ``KL(q(z|x) || N(0, I))``.
    covariance_weight : float
        ``lambda``, weight of the covariance penalty.

    Examples
    --------
    >>> encoder, decoder = FieldMLPEncoder((1, 4, 4), 6), FieldMLPDecoder(3, (2, 5, 5))
    >>> ved = VariationalEncoderDecoder(encoder, decoder, latent_dim=3, channels=2,
    ...                                 covariance_weight=1.0)
    >>> losses = ved.training_losses((torch.randn(8, 1, 4, 4), torch.randn(8, 2, 5, 5)))
    >>> sorted(losses)
    ['covariance', 'kl', 'loss', 'mse', 'reconstruction']
    >>> ved.predict(torch.randn(3, 1, 4, 4)).shape
    torch.Size([3, 2, 5, 5])
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_dim: int,
        channels: int,
        beta: float = 1.0,
        covariance_weight: float = 0.0,
    ) -> None:
        if beta < 0 or covariance_weight < 0:
            raise ValueError(f"beta={beta} and covariance_weight={covariance_weight} must be >= 0")
        super().__init__(encoder, decoder, latent_dim, channels)
        self.beta, self.covariance_weight = beta, covariance_weight

    def predict(self, x: Tensor) -> Tensor:
        """Decode the posterior mean of ``x``: the point prediction of ``y``."""
        return self.decode(self.encode(x))

    def sample(self, x: Tensor, latent_noise: Tensor, output_noise: Tensor | None = None) -> Tensor:
        """One predictive draw of ``y`` per row of ``x`` from the given standard normals.

        ``z = mu + sigma * latent_noise`` (``(rows, latent)``), decoded; with
        ``output_noise`` (``(rows, outputs...)``, any shape of that size) the output
        noise of ``p(y|z)`` is added, ``sigma_y * output_noise``.
        """
        mean, log_var = self.posterior(x)
        y = self.decode(mean + latent_noise.to(mean.dtype) * (0.5 * log_var).exp())
        return y if output_noise is None else self.with_output_noise(y, output_noise)

    def training_losses(self, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
        """Negative ELBO (``beta``-weighted KL) plus ``lambda`` times the penalty.

        ``batch`` is ``(x, y)``. Diagnostics: ``reconstruction`` (``-log p(y|z)``
        per output value), ``kl`` (nats per sample), ``covariance`` (the penalty)
        and ``mse`` (mean squared error of the decoded draw).
        """
        x, y = batch
        mean, log_var = self.posterior(x)
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        decoded = self.decoder(z)
        nll = self.negative_log_likelihood(y, decoded)
        kl = gaussian_kl_standard(mean, log_var)
        penalty = covariance_penalty(mean, log_var)
        n_values = math.prod(y.shape[1:])
        objective = (nll + self.beta * kl).mean() + self.covariance_weight * penalty
        return {
            "loss": objective / n_values,
            "reconstruction": nll.mean() / n_values,
            "kl": kl.mean(),
            "covariance": penalty,
            "mse": ((y - decoded) ** 2).mean(),
        }


class FieldMLPEncoder(nn.Module):
    """Fields ``(batch, *in_shape)`` -> ``(batch, out_features)`` by a fully connected net.

    Parameters
    ----------
    in_shape : sequence of int
        Shape of one input sample, e.g. ``(channels, ny, nx)``.
    out_features : int
        Output length (``2 * latent_dim`` for a Gaussian encoder).
    hidden, layers : int
        Width and number of the hidden layers (SiLU activations).

    Examples
    --------
    >>> FieldMLPEncoder((2, 5, 5), 4, hidden=8)(torch.zeros(3, 2, 5, 5)).shape
    torch.Size([3, 4])
    """

    def __init__(
        self, in_shape: Sequence[int], out_features: int, hidden: int = 256, layers: int = 2
    ) -> None:
        super().__init__()
        sizes = [math.prod(in_shape)] + [hidden] * layers + [out_features]
        self.net = nn.Sequential(nn.Flatten(), *_linear_stack(sizes))

    def forward(self, x: Tensor) -> Tensor:
        """Encode fields to vectors."""
        return self.net(x)


class FieldConvEncoder(nn.Module):
    """Fields ``(batch, channels, ny, nx)`` -> ``(batch, out_features)``, convolutional.

    The VED encoder of Venkatasubramanian & Barajas-Solano (2024): a convolutional
    network with residual blocks, read out by one linear layer. Each level is a stride-2
    3x3 convolution (padding 1, so ``n`` cells become ``ceil(n / 2)``) and a leaky
    ReLU; ``residual_blocks`` blocks of two 3x3 convolutions with a skip connection
    (:class:`~climlatent.models.conv.ResidualBlock`) follow the coarsest level
    (:class:`~climlatent.models.conv.ConvEncoder`, here on any grid and any number of
    input channels); the flattened features map linearly to the output.

    Parameters
    ----------
    in_shape : sequence of int
        ``(channels, ny, nx)`` of one input sample.
    out_features : int
        Output length (``2 * latent_dim`` for a Gaussian encoder).
    filters : sequence of int
        Channels of each stride-2 level.
    residual_blocks : int
        Residual blocks after the coarsest level.

    Examples
    --------
    >>> encoder = FieldConvEncoder((2, 33, 33), 6, filters=(4, 8), residual_blocks=2)
    >>> encoder(torch.zeros(3, 2, 33, 33)).shape
    torch.Size([3, 6])
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        out_features: int,
        filters: Sequence[int] = (16, 32, 64),
        residual_blocks: int = 1,
    ) -> None:
        super().__init__()
        channels, ny, nx = in_shape
        features = ConvEncoder((ny, nx), filters, residual_blocks, in_channels=channels)
        self.net = nn.Sequential(features, nn.Linear(features.out_features, out_features))

    def forward(self, x: Tensor) -> Tensor:
        """Encode fields to vectors."""
        return self.net(x)


class FieldMLPDecoder(nn.Module):
    """Vectors ``(batch, in_features)`` -> fields ``(batch, *out_shape)``, fully connected.

    Examples
    --------
    >>> FieldMLPDecoder(3, (2, 5, 5), hidden=8)(torch.zeros(4, 3)).shape
    torch.Size([4, 2, 5, 5])
    """

    def __init__(
        self, in_features: int, out_shape: Sequence[int], hidden: int = 256, layers: int = 2
    ) -> None:
        super().__init__()
        sizes = [in_features] + [hidden] * layers + [math.prod(out_shape)]
        self.net = nn.Sequential(*_linear_stack(sizes), nn.Unflatten(1, tuple(out_shape)))

    def forward(self, z: Tensor) -> Tensor:
        """Decode vectors to fields."""
        return self.net(z)


def _linear_stack(sizes: Sequence[int]) -> list[nn.Module]:
    """Linear layers between consecutive ``sizes``, SiLU between them (not after the last)."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(n_in, n_out), nn.SiLU()]
    return layers[:-1]
