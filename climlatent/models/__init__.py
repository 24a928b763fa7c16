"""Pure torch modules: encoders, decoders, latent distributions and losses."""

from climlatent.models.autoencoder import DenseAutoencoder
from climlatent.models.losses import masked_mse

__all__ = ["DenseAutoencoder", "masked_mse"]
