"""climlatent: climate downscaling and emulation with physics-guided latent models.

Examples
--------
>>> import climlatent as cl
>>> ds = cl.datasets.synthetic_circulation(n_years=2)
>>> emulated = cl.EOFRegression(n_proxy_eofs=3).fit(ds, "pr", "psl").emulate(ds)

Names resolve on first use (PEP 562): ``import climlatent`` loads neither torch nor
matplotlib; ``cl.LLAAE`` imports the estimators, ``cl.plot`` matplotlib and cartopy.
"""

from __future__ import annotations

import importlib
from typing import Any

from climlatent._version import __version__ as __version__

_SUBMODULES = ("baselines", "datasets", "io", "metrics", "transforms")
_OPTIONAL_SUBMODULES = ("plot",)  # needs cartopy: not in __all__, so ``import *`` skips it
_ATTRIBUTES = {
    "AuxVAE": "climlatent.estimators",
    "CCARegression": "climlatent.cca",
    "EOFRegression": "climlatent.estimators",
    "Estimator": "climlatent.estimators",
    "LLAAE": "climlatent.estimators",
    "ProxyDownscaler": "climlatent.estimators",
    "ProxyLatentDownscaler": "climlatent.estimators",
    "Regridder": "climlatent.regrid",
    "VAE": "climlatent.estimators",
    "VAEDLM": "climlatent.estimators",
    "VED": "climlatent.estimators",
    "load": "climlatent.persistence",
    "open_catalog": "climlatent.catalog",
    "open_entry": "climlatent.catalog",
}

__all__ = sorted([*_ATTRIBUTES, *_SUBMODULES, "__version__"])


def __getattr__(name: str) -> Any:
    """Import the module behind ``cl.<name>`` (or submodule ``name``) on first use.

    Examples
    --------
    >>> import climlatent as cl
    >>> cl.EOFRegression.__name__
    'EOFRegression'
    """
    if name in _ATTRIBUTES:
        value = getattr(importlib.import_module(_ATTRIBUTES[name]), name)
    else:  # a submodule: the public ones above, or any other (``cl.batching``)
        try:
            value = importlib.import_module(f"climlatent.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"climlatent.{name}":
                raise
            raise AttributeError(f"module 'climlatent' has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """List the public names, the lazy ones included.

    Examples
    --------
    >>> import climlatent as cl
    >>> "LLAAE" in dir(cl) and "plot" in dir(cl)
    True
    """
    return sorted({*globals(), *__all__, *_OPTIONAL_SUBMODULES})
