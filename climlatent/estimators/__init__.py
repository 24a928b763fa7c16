"""The public xarray-native estimators.

Each name resolves on first use (PEP 562), so ``EOFRegression`` (and loading or
describing a saved EOF-regression model) imports no torch; the torch estimators import
it with their own module.
"""

from __future__ import annotations

import importlib
from typing import Any

from climlatent.estimators.base import REGISTRY, BaseEstimator, Estimator

#: Built-in estimator -> the module defining it.
MODULES = {
    "AuxVAE": "climlatent.estimators.aux_vae",
    "EOFRegression": "climlatent.estimators.eof_regression",
    "LLAAE": "climlatent.estimators.llaae",
    "ProxyDownscaler": "climlatent.estimators.downscaler",
    "ProxyLatentDownscaler": "climlatent.estimators.proxy_latent",
    "VAE": "climlatent.estimators.vae",
    "VAEDLM": "climlatent.estimators.vae_dlm",
    "VED": "climlatent.estimators.ved",
}

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


def __getattr__(name: str) -> Any:
    """Import the module of the estimator ``name`` on first use.

    Examples
    --------
    >>> import climlatent.estimators as estimators
    >>> estimators.EOFRegression.__name__
    'EOFRegression'
    """
    if name not in MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(MODULES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """List the public names, the lazy ones included."""
    return sorted({*globals(), *__all__})


def estimator_class(name: str) -> type[BaseEstimator] | None:
    """The registered estimator class called ``name``, importing only its module.

    Parameters
    ----------
    name : str
        A built-in estimator's name, or that of a subclass defined (hence registered)
        elsewhere.

    Returns
    -------
    type or None
        The class; None when no estimator of that name is registered.

    Examples
    --------
    >>> estimator_class("EOFRegression").__name__
    'EOFRegression'
    >>> estimator_class("GAN") is None
    True
    """
    if name in MODULES:
        importlib.import_module(MODULES[name])
    return REGISTRY.get(name)


def registry() -> dict[str, type[BaseEstimator]]:
    """Every registered estimator by name, the built-in ones all imported.

    Returns
    -------
    dict
        Name -> class: the built-in estimators and any subclass defined elsewhere.

    Examples
    --------
    >>> {"EOFRegression", "LLAAE", "VED"} <= set(registry())
    True
    """
    for module in MODULES.values():
        importlib.import_module(module)
    return REGISTRY
