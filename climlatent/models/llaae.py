r"""The latent linear adjustment autoencoder (LLAAE) as a torch module.

Heinze-Deml et al. (2021, GMD 14, 4977), with the variational and GEV-latent
extensions of seed 000: an autoencoder ``d(e(Y))`` on the target field ``Y`` and a
linear map ``h`` from the proxy ``X`` into the same latent space, trained by
alternating two losses,

.. math::

    L_1 = \|Y - d(e(Y))\|^2 + \alpha \|Y - d(h(X))\|^2 + \beta\,KL
          + \lambda \sum_{w \in AE} w^2, \qquad
    L_2 = \|e(Y) - h(X)\|^2,

``L1`` over the encoder, latent head and decoder; ``L2`` over ``h`` only. Squared
errors are summed over the valid grid cells of a sample and averaged over the batch;
the KL is summed over latent dimensions. ``e(Y)`` in ``L2`` is the encoder's
deterministic code (the posterior mean), held fixed. ``d(h(X))`` is the emulation of
``Y`` from ``X`` alone: the circulation-induced part of ``Y``.

Batches are ``(y, weight, x)``: ``y`` the target's valid cells (NaN replaced by 0),
``weight`` 1 where ``y`` holds data and 0 elsewhere, ``x`` the proxy features.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from climlatent.models.conv import ConvDecoder, ConvEncoder, GridScatter
from climlatent.models.latents import LatentSample, make_latent

LOSS_NAMES = ("autoencoder", "latent", "reconstruction", "reconstruction_proxy", "kl")


class LLAAE(nn.Module):
    """Latent linear adjustment autoencoder on a masked grid.

    Parameters
    ----------
    mask : torch.Tensor
        Boolean ``(H, W)`` mask of the target's valid cells.
    n_proxy_features : int
        Length of a proxy sample (grid cells or EOF principal components).
    latent_dim : int
        Size of the latent space.
    latent : {"none", "gaussian", "gaussian_hp", "gev", "gev_moments"}
        Posterior family (``"none"``: the deterministic LLAAE).
    alpha, beta : float
        Weights of the proxy reconstruction and of the KL term in ``L1``.
    weight_l2 : float
        L2 penalty on the autoencoder's weights (reference: 1e-3).
    filters : sequence of int
        Channels of the stride-2 convolution levels (reference: 16, 32, 64).
    residual_blocks : int
        Residual blocks at the coarsest level (reference: 1).
    negative_slope : float
        Leaky ReLU slope.
    latent_options : dict, optional
        Passed to the latent head (e.g. ``{"xi": -0.5}`` for the GEV).
    beta_warmup_epochs : int
        Raise the KL weight linearly from 0 to ``beta`` over this many epochs (0: off),
        against posterior collapse early in training. Outside training (a fitted or
        loaded model) the weight is ``beta``: `end_training` restores it.

    Examples
    --------
    >>> import torch
    >>> model = LLAAE(torch.ones(6, 8, dtype=torch.bool), n_proxy_features=5, latent_dim=3,
    ...               latent="gaussian", filters=(4, 8))
    >>> y, x = torch.randn(10, 48), torch.randn(10, 5)
    >>> losses = model.training_losses((y, torch.ones_like(y), x))
    >>> sorted(losses)
    ['autoencoder', 'kl', 'latent', 'reconstruction', 'reconstruction_proxy']
    >>> model.emulate(x).shape
    torch.Size([10, 48])
    """

    def __init__(
        self,
        mask: Tensor,
        n_proxy_features: int,
        latent_dim: int,
        latent: str = "gaussian",
        alpha: float = 1.0,
        beta: float = 1.0,
        weight_l2: float = 0.0,
        filters: Sequence[int] = (16, 32, 64),
        residual_blocks: int = 1,
        negative_slope: float = 0.2,
        latent_options: dict | None = None,
        beta_warmup_epochs: int = 0,
    ) -> None:
        super().__init__()
        self.alpha, self.beta, self.weight_l2 = float(alpha), float(beta), float(weight_l2)
        self.beta_warmup_epochs = int(beta_warmup_epochs)
        self.beta_now = self.beta  # the KL weight of L1; on_epoch_start sets a warm-up's
        self.grid = GridScatter(mask, multiple=2 ** len(filters))
        self.encoder = ConvEncoder(self.grid.padded, filters, residual_blocks, negative_slope)
        self.latent = make_latent(
            latent,
            in_features=self.encoder.out_features,
            latent_dim=latent_dim,
            **(latent_options or {}),
        )
        self.decoder = ConvDecoder(
            latent_dim, self.encoder.coarse_shape, filters, residual_blocks, negative_slope
        )
        self.proxy_map = nn.Linear(n_proxy_features, latent_dim)

    def posterior(self, y: Tensor) -> LatentSample:
        """Latent sample, code (posterior mean) and KL of target cells ``y``."""
        return self.latent(self.encoder(self.grid.to_image(y)))

    def encode(self, y: Tensor) -> Tensor:
        """Deterministic latent code ``e(Y)`` of target cells ``(batch, n_cells)``."""
        return self.posterior(y).mean

    def decode(self, z: Tensor) -> Tensor:
        """Target cells ``(batch, n_cells)`` decoded from latents ``(batch, latent_dim)``."""
        return self.grid.to_cells(self.decoder(z))

    def emulate(self, x: Tensor) -> Tensor:
        """``d(h(X))``: the target emulated from proxy features ``x``."""
        return self.decode(self.proxy_map(x))

    def autoencoder_parameters(self) -> list[nn.Parameter]:
        """Parameters of encoder, latent head and decoder (trained by ``L1``)."""
        return [*self.encoder.parameters(), *self.latent.parameters(), *self.decoder.parameters()]

    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        """``L1`` trains the autoencoder, then ``L2`` trains the proxy map ``h``."""
        return {
            "autoencoder": self.autoencoder_parameters(),
            "latent": list(self.proxy_map.parameters()),
        }

    def on_epoch_start(self, epoch: int) -> None:
        """Set the KL weight of this epoch (linear warm-up)."""
        if self.beta_warmup_epochs:
            self.beta_now = self.beta * min(1.0, epoch / self.beta_warmup_epochs)

    def end_training(self) -> None:
        """Restore the KL weight ``beta`` of ``L1`` after a warm-up left a lower one."""
        self.beta_now = self.beta

    def training_losses(self, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
        """``L1``, ``L2`` and their parts for one batch ``(y, weight, x)``."""
        y, weight, x = batch
        sample = self.posterior(y)
        z_proxy = self.proxy_map(x)
        reconstruction = _sse(self.decode(sample.z), y, weight)
        reconstruction_proxy = _sse(self.decode(z_proxy), y, weight)
        kl = sample.kl.mean()
        l1 = reconstruction + self.alpha * reconstruction_proxy + self.beta_now * kl
        if self.weight_l2:
            l1 = l1 + self.weight_l2 * sum(
                (p**2).sum() for p in self.autoencoder_parameters() if p.ndim > 1
            )
        l2 = ((sample.mean.detach() - z_proxy) ** 2).sum(dim=1).mean()
        return {
            "autoencoder": l1,
            "latent": l2,
            "reconstruction": reconstruction,
            "reconstruction_proxy": reconstruction_proxy,
            "kl": kl,
        }


def _sse(prediction: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Squared error summed over cells (weighted by the data mask), mean over the batch."""
    return (weight * (prediction - target) ** 2).sum(dim=1).mean()
