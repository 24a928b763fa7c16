"""Regridding between latitude-longitude grids with sparse weights built once.

The split follows xESMF: :mod:`~climlatent.regrid.frontend` is the xarray face
(:class:`Regridder`), :mod:`~climlatent.regrid.backend` builds the weights (the exact
climlatent engine, or xESMF when installed) and :mod:`~climlatent.regrid.smm` applies
them to numpy arrays, block by block. :mod:`~climlatent.regrid.files` regrids a
netCDF file in time blocks (:func:`regrid_file`, the ``climlatent regrid`` command).
"""

from climlatent.regrid.files import regrid_file
from climlatent.regrid.frontend import Regridder

__all__ = ["Regridder", "regrid_file"]
