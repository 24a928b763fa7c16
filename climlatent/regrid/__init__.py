"""Regridding between latitude-longitude grids with sparse weights built once.

The split follows xESMF: :mod:`~climlatent.regrid.frontend` is the xarray face
(:class:`Regridder`), :mod:`~climlatent.regrid.backend` builds the weights (the exact
climlatent engine, or xESMF when installed) and :mod:`~climlatent.regrid.smm` applies
them to numpy arrays.
"""

from climlatent.regrid.frontend import Regridder

__all__ = ["Regridder"]
