"""A dense (fully connected) autoencoder for flattened grids."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from climlatent.models.losses import masked_mse

__all__ = ["ACTIVATIONS", "DenseAutoencoder"]

ACTIVATIONS = {
    "leaky_relu": nn.LeakyReLU,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


def _mlp(sizes: Sequence[int], activation: str) -> nn.Sequential:
    """Linear layers between consecutive ``sizes``, activated except the last."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(n_in, n_out), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers[:-1])


class DenseAutoencoder(nn.Module):
    """Fully connected autoencoder: grid cells -> latent vector -> grid cells.

    Parameters
    ----------
    n_features : int
        Number of grid cells (features) of a flattened sample.
    latent_dim : int
        Size of the latent vector.
    hidden : sequence of int
        Widths of the encoder's hidden layers; the decoder mirrors them.
    activation : str
        One of `ACTIVATIONS`, applied after every hidden layer.
    mask : torch.Tensor, optional
        Boolean ``(n_features,)``, True at valid cells. Invalid cells are fed to the
        encoder as zeros and left out of the reconstruction loss. All cells are valid
        by default.

    Attributes
    ----------
    encoder, decoder : torch.nn.Sequential
        The two halves.
    valid_mask : torch.Tensor
        The boolean cell mask (a buffer, saved with the weights).

    Examples
    --------
    >>> model = DenseAutoencoder(n_features=100, latent_dim=4, hidden=(32,))
    >>> x = torch.randn(8, 100)
    >>> model.encode(x).shape, model(x).shape
    (torch.Size([8, 4]), torch.Size([8, 100]))
    >>> sorted(model.training_losses((x,)))
    ['loss']
    """

    def __init__(
        self,
        n_features: int,
        latent_dim: int,
        hidden: Sequence[int] = (256, 64),
        activation: str = "leaky_relu",
        mask: Tensor | None = None,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, not {activation!r}")
        sizes = (n_features, *hidden, latent_dim)
        self.encoder = _mlp(sizes, activation)
        self.decoder = _mlp(sizes[::-1], activation)
        valid = torch.ones(n_features, dtype=torch.bool) if mask is None else mask.bool()
        if valid.shape != (n_features,):
            raise ValueError(f"mask must have shape ({n_features},), not {tuple(valid.shape)}")
        self.register_buffer("valid_mask", valid)

    def encode(self, x: Tensor) -> Tensor:
        """Map samples ``(batch, n_features)`` to latent vectors ``(batch, latent_dim)``.

        Examples
        --------
        >>> DenseAutoencoder(10, 2, hidden=(5,)).encode(torch.zeros(3, 10)).shape
        torch.Size([3, 2])
        """
        return self.encoder(torch.where(self.valid_mask, x, 0.0))

    def decode(self, z: Tensor) -> Tensor:
        """Map latent vectors ``(batch, latent_dim)`` to samples ``(batch, n_features)``.

        Examples
        --------
        >>> DenseAutoencoder(10, 2, hidden=(5,)).decode(torch.zeros(3, 2)).shape
        torch.Size([3, 10])
        """
        return self.decoder(z)

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruct samples: ``decode(encode(x))``.

        Examples
        --------
        >>> DenseAutoencoder(10, 2, hidden=(5,))(torch.zeros(3, 10)).shape
        torch.Size([3, 10])
        """
        return self.decode(self.encode(x))

    def training_losses(self, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
        """Reconstruction loss of one batch ``(x,)``, for `climlatent.training.fit`.

        Examples
        --------
        >>> model = DenseAutoencoder(10, 2, hidden=(5,))
        >>> model.training_losses((torch.zeros(3, 10),))["loss"].ndim
        0
        """
        (x,) = batch
        return {"loss": masked_mse(self(x), x, self.valid_mask)}
