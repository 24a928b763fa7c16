"""Datasets for testing and demonstrating climlatent.

Two kinds of data live here:

- :func:`synthetic_circulation`, a small circulation-driven ensemble whose
  generative equations are known exactly, so that emulators (sea-level pressure
  -> precipitation) and dynamical adjustment can be checked against the truth;
- :func:`synthetic_biogeochem`, fine-scale chlorophyll from known temperature and
  light growth laws with coarse proxies made by conservative coarsening;
- loaders of the real climate-model output shipped by the PyPI package
  ``iris-sample-data`` (:func:`a1b_north_america`, :func:`e1_north_america`,
  :func:`ostia_sst`), opened with xarray and decoded to ``cftime`` dates.
"""

from climlatent.datasets.biogeochem import BiogeochemWorld, synthetic_biogeochem
from climlatent.datasets.circulation import CALENDARS, synthetic_circulation
from climlatent.datasets.sample_data import (
    a1b_north_america,
    e1_north_america,
    open_sample_data,
    ostia_sst,
    sample_data_path,
)

__all__ = [
    "BiogeochemWorld",
    "CALENDARS",
    "a1b_north_america",
    "e1_north_america",
    "open_sample_data",
    "ostia_sst",
    "sample_data_path",
    "synthetic_biogeochem",
    "synthetic_circulation",
]
