"""Convolutional encoder and decoder for gridded fields with a fixed mask of valid cells.

Fields reach a model as matrices ``(batch, n_valid_cells)``: only the cells that hold
data (e.g. land for precipitation) are columns. :class:`GridScatter` lays such a
matrix onto a zero-padded image ``(batch, 1, H', W')`` whose sides are multiples of
``2**n_levels`` and gathers an image back into valid cells, so convolutions see the
geometry while losses only ever involve valid cells.

The architecture follows the reference LLAAE (Heinze-Deml et al. 2021): stride-2
convolutions with 16/32/64 filters, leaky ReLU, one residual block at the coarsest
level, and the mirror image in the decoder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class GridScatter(nn.Module):
    """Move between valid-cell matrices and zero-padded images of the grid.

    Parameters
    ----------
    mask : torch.Tensor
        Boolean ``(H, W)`` mask of valid cells.
    multiple : int
        Pad the image sides up to a multiple of this (``2**n_levels``).

    Examples
    --------
    >>> mask = torch.tensor([[True, False], [True, True]])
    >>> scatter = GridScatter(mask, multiple=4)
    >>> image = scatter.to_image(torch.tensor([[1.0, 2.0, 3.0]]))
    >>> image.shape, scatter.to_cells(image).tolist()
    (torch.Size([1, 1, 4, 4]), [[1.0, 2.0, 3.0]])
    """

    def __init__(self, mask: torch.Tensor, multiple: int = 1) -> None:
        super().__init__()
        height, width = mask.shape
        self.padded = tuple(math.ceil(n / multiple) * multiple for n in (height, width))
        rows, cols = torch.nonzero(mask, as_tuple=True)
        self.register_buffer("index", rows * self.padded[1] + cols, persistent=False)

    @property
    def n_cells(self) -> int:
        """Number of valid cells."""
        return int(self.index.numel())

    def to_image(self, cells: torch.Tensor) -> torch.Tensor:
        """``(batch, n_cells)`` -> ``(batch, 1, H', W')`` with zeros outside valid cells."""
        flat = cells.new_zeros(cells.shape[0], self.padded[0] * self.padded[1])
        flat[:, self.index] = cells
        return flat.view(cells.shape[0], 1, *self.padded)

    def to_cells(self, image: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, H', W')`` -> ``(batch, n_cells)``."""
        return image.reshape(image.shape[0], -1)[:, self.index]


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with leaky ReLU and a skip connection.

    Examples
    --------
    >>> ResidualBlock(8)(torch.zeros(2, 8, 4, 4)).shape
    torch.Size([2, 8, 4, 4])
    """

    def __init__(self, channels: int, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.LeakyReLU(negative_slope),
            nn.Conv2d(channels, channels, 3, padding=1),
        )
        self.activation = nn.LeakyReLU(negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        return self.activation(x + self.body(x))


class ConvEncoder(nn.Module):
    """Image of a field -> feature vector, by stride-2 convolutions.

    Parameters
    ----------
    padded_shape : tuple of int
        ``(H', W')`` of the input images. Any size: each stride-2 level (3x3 kernel,
        padding 1) maps ``n`` cells to ``ceil(n / 2)``; the LLAAE pads to multiples of
        ``2**len(filters)``.
    filters : sequence of int
        Channels of each stride-2 level (reference: 16, 32, 64).
    residual_blocks : int
        Residual blocks at the coarsest level.
    negative_slope : float
        Slope of the leaky ReLU.
    in_channels : int
        Channels of the input images.

    Examples
    --------
    >>> encoder = ConvEncoder((8, 8), filters=(4, 8))
    >>> encoder(torch.zeros(3, 1, 8, 8)).shape, encoder.out_features
    (torch.Size([3, 32]), 32)
    >>> ConvEncoder((9, 5), filters=(4, 8), in_channels=2).coarse_shape
    (8, 3, 2)
    """

    def __init__(
        self,
        padded_shape: tuple[int, int],
        filters: Sequence[int] = (16, 32, 64),
        residual_blocks: int = 1,
        negative_slope: float = 0.2,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for width in filters:
            layers += [
                nn.Conv2d(channels, width, 3, stride=2, padding=1),
                nn.LeakyReLU(negative_slope),
            ]
            channels = width
        layers += [ResidualBlock(channels, negative_slope) for _ in range(residual_blocks)]
        self.net = nn.Sequential(*layers, nn.Flatten())
        height, width = padded_shape
        for _ in filters:
            height, width = math.ceil(height / 2), math.ceil(width / 2)
        self.coarse_shape = (channels, height, width)
        self.out_features = math.prod(self.coarse_shape)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Encode images ``(batch, 1, H', W')`` to features ``(batch, out_features)``."""
        return self.net(image)


class ConvDecoder(nn.Module):
    """Latent vector -> image of a field, mirroring :class:`ConvEncoder`.

    Examples
    --------
    >>> decoder = ConvDecoder(latent_dim=5, coarse_shape=(8, 2, 2), filters=(4, 8))
    >>> decoder(torch.zeros(3, 5)).shape
    torch.Size([3, 1, 8, 8])
    """

    def __init__(
        self,
        latent_dim: int,
        coarse_shape: tuple[int, int, int],
        filters: Sequence[int] = (16, 32, 64),
        residual_blocks: int = 1,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        self.coarse_shape = coarse_shape
        self.project = nn.Sequential(
            nn.Linear(latent_dim, math.prod(coarse_shape)), nn.LeakyReLU(negative_slope)
        )
        layers: list[nn.Module] = [
            ResidualBlock(coarse_shape[0], negative_slope) for _ in range(residual_blocks)
        ]
        widths = [*reversed(filters[:-1]), filters[0]]
        channels = coarse_shape[0]
        for width in widths:
            layers += [
                nn.ConvTranspose2d(channels, width, 4, stride=2, padding=1),
                nn.LeakyReLU(negative_slope),
            ]
            channels = width
        layers.append(nn.Conv2d(channels, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Decode latents ``(batch, latent_dim)`` to images ``(batch, 1, H', W')``."""
        return self.net(self.project(z).view(z.shape[0], *self.coarse_shape))
