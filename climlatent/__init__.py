"""climlatent: climate downscaling and emulation with physics-guided latent models.

Examples
--------
>>> import climlatent as cl
>>> ds = cl.datasets.synthetic_circulation(n_years=2)
>>> emulated = cl.EOFRegression(n_proxy_eofs=3).fit(ds, "pr", "psl").emulate(ds)
"""

from climlatent import baselines, datasets, io, metrics, transforms
from climlatent._version import __version__
from climlatent.catalog import open_catalog, open_entry
from climlatent.cca import CCARegression
from climlatent.estimators import (
    LLAAE,
    VAE,
    VAEDLM,
    VED,
    AuxVAE,
    EOFRegression,
    Estimator,
    ProxyDownscaler,
)
from climlatent.persistence import load
from climlatent.regrid import Regridder

__all__ = [
    "LLAAE",
    "AuxVAE",
    "CCARegression",
    "EOFRegression",
    "Estimator",
    "ProxyDownscaler",
    "Regridder",
    "VAE",
    "VAEDLM",
    "VED",
    "__version__",
    "baselines",
    "datasets",
    "io",
    "load",
    "metrics",
    "open_catalog",
    "open_entry",
    "transforms",
]


def __getattr__(name: str):
    """Import the optional ``climlatent.plot`` (cartopy) on first use of ``cl.plot``."""
    if name == "plot":
        import importlib

        return importlib.import_module("climlatent.plot")
    raise AttributeError(f"module 'climlatent' has no attribute {name!r}")
