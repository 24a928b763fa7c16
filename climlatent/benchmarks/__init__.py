"""Benchmarks: performance measurements that print measured ratios (``climlatent bench``).

The PDE reference cases moved to :mod:`climlatent.reference` and the paper-reproduction
studies to :mod:`climlatent.studies`; ``from climlatent.benchmarks import darcy, burgers``
still works for one release, with a `ClimlatentDeprecationWarning`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_MOVED = {"darcy": "climlatent.reference.darcy", "burgers": "climlatent.reference.burgers"}


def __getattr__(name: str) -> ModuleType:
    """The reference cases under their old names, with a deprecation warning."""
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from climlatent._deprecation import warn_deprecated

    module = importlib.import_module(_MOVED[name])  # first: its imports may reset filters
    warn_deprecated(f"climlatent.benchmarks.{name}", _MOVED[name])
    return module
