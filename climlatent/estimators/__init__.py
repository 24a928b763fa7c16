"""The public xarray-native estimators."""

from climlatent.estimators.aux_vae import AuxVAE
from climlatent.estimators.base import BaseEstimator, Estimator
from climlatent.estimators.downscaler import ProxyDownscaler
from climlatent.estimators.eof_regression import EOFRegression
from climlatent.estimators.llaae import LLAAE
from climlatent.estimators.proxy_latent import ProxyLatentDownscaler
from climlatent.estimators.vae import VAE
from climlatent.estimators.vae_dlm import VAEDLM
from climlatent.estimators.ved import VED

__all__ = [
    "LLAAE",
    "VAE",
    "AuxVAE",
    "VAEDLM",
    "VED",
    "BaseEstimator",
    "EOFRegression",
    "Estimator",
    "ProxyDownscaler",
    "ProxyLatentDownscaler",
]
