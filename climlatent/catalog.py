"""The intake catalog of climlatent's datasets.

``climlatent/data/climlatent.yaml`` (package data, installed with climlatent) is a
classic intake catalog. Its entries use the two intake drivers defined here, so that
opening an entry through intake gives exactly what :mod:`climlatent.datasets` gives:

- :class:`SyntheticCirculationSource` (``driver:
  climlatent.catalog.SyntheticCirculationSource``): its ``args`` are the keyword
  arguments of :func:`climlatent.datasets.synthetic_circulation`;
- :class:`SampleDataSource` (``driver: climlatent.catalog.SampleDataSource``):
  ``args: {filename: ...}`` names a file of the ``iris-sample-data`` package, which
  is found in site-packages when the entry is read, whatever the catalog's location.

Plain intake reads the catalog as well (``intake.open_catalog(path)``). The
``netcdf`` driver of intake-xarray is not used for the sample files: YAML
arguments cannot hold an ``xarray.coders.CFDatetimeCoder`` (so the Gregorian
OSTIA times would come back as ``datetime64``, not ``cftime``), and its path
template would need the site-packages folder passed in by every caller.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import intake
import xarray as xr
import yaml
from intake.source.base import DataSource, Schema

from climlatent._version import __version__
from climlatent.datasets import open_sample_data, synthetic_circulation
from climlatent.errors import InputDataError

__all__ = [
    "SampleDataSource",
    "SyntheticCirculationSource",
    "default_catalog_path",
    "open_catalog",
    "open_entry",
]


def default_catalog_path() -> Path:
    """Path of the catalog shipped with climlatent, ``climlatent/data/climlatent.yaml``.

    The catalog is package data, so it is found in an installed wheel as in a
    source checkout.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> from climlatent.catalog import default_catalog_path
    >>> default_catalog_path().name
    'climlatent.yaml'
    """
    return Path(__file__).resolve().parent / "data" / "climlatent.yaml"


def open_catalog(path: str | os.PathLike | None = None) -> intake.catalog.Catalog:
    """Open an intake catalog, by default climlatent's own.

    Parameters
    ----------
    path : str or path-like, optional
        A classic intake YAML catalog; default :func:`default_catalog_path`.

    Returns
    -------
    intake.catalog.Catalog

    Raises
    ------
    FileNotFoundError
        If the catalog file does not exist.

    Examples
    --------
    >>> from climlatent.catalog import open_catalog
    >>> sorted(open_catalog())[:2]
    ['a1b_north_america', 'e1_north_america']
    """
    path = default_catalog_path() if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"intake catalog {str(path)!r} not found; climlatent's own is "
            f"{str(default_catalog_path())!r}"
        )
    _check_drivers(path)
    # No environment variable or shell command is expanded into an entry's arguments.
    return intake.open_catalog(str(path), getenv=False, getshell=False)


def _check_drivers(path: Path) -> None:
    """Refuse a catalog that would make intake import or call anything but `DRIVERS`.

    Intake imports every ``driver`` (and ``plugins`` module, and ``cls``) when it
    opens a catalog, and calls it when an entry is read: a derived driver calls any
    function it names, ``subprocess.check_output`` included.
    """
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise InputDataError(f"intake catalog {str(path)!r} is not YAML: {err}") from err
    if not isinstance(spec, dict) or "plugins" in spec:
        raise InputDataError(
            f"intake catalog {str(path)!r} must be a mapping without 'plugins': climlatent "
            f"reads entries of the drivers {', '.join(DRIVERS)} only"
        )
    sources = spec.get("sources") or {}
    for name, entry in sources.items() if isinstance(sources, dict) else [("sources", None)]:
        driver = entry.get("driver") if isinstance(entry, dict) else None
        if driver not in DRIVERS or "cls" in entry:
            raise InputDataError(
                f"intake catalog {str(path)!r}, entry {name!r}: driver {driver!r} is not "
                f"one of climlatent's ({', '.join(DRIVERS)}), which alone it reads"
            )


def open_entry(name: str, path: str | os.PathLike | None = None, **parameters: Any) -> xr.Dataset:
    """Read one catalog entry into an :class:`xarray.Dataset`.

    Parameters
    ----------
    name : str
        Entry name, e.g. ``"synthetic_circulation"`` or ``"ostia_sst"``.
    path : str or path-like, optional
        Catalog file; default climlatent's own (see :func:`open_catalog`).
    **parameters
        Override the entry's arguments, e.g. ``seed=3`` for the synthetic entry.

    Returns
    -------
    xarray.Dataset
        Lazily loaded where the driver supports it (netCDF files).

    Raises
    ------
    InputDataError
        If the catalog has no entry ``name``.

    Examples
    --------
    >>> from climlatent.catalog import open_entry
    >>> ds = open_entry("synthetic_circulation", n_years=1, n_members=1)
    >>> dict(ds.pr.sizes)
    {'member': 1, 'time': 365, 'lat': 16, 'lon': 24}
    """
    catalog = open_catalog(path)
    if name not in catalog:
        raise InputDataError(
            f"catalog {catalog.path!r} has no entry {name!r}; entries: {sorted(catalog)}"
        )
    return catalog[name](**parameters).read()


class _DatasetSource(DataSource):
    """A one-partition intake source returning an :class:`xarray.Dataset`."""

    container = "xarray"
    version = __version__
    partition_access = False

    def _open(self) -> xr.Dataset:
        raise NotImplementedError

    def _get_schema(self) -> Schema:
        return Schema(dtype=None, shape=None, npartitions=1, extra_metadata={})

    def _get_partition(self, i: int) -> xr.Dataset:
        return self._open()

    def to_dask(self) -> xr.Dataset:
        """Return the Dataset backed by dask arrays, one chunk per variable."""
        return self._open().chunk()

    def _close(self) -> None:
        """Nothing to release: every read opens afresh."""


class SyntheticCirculationSource(_DatasetSource):
    """Intake driver for :func:`climlatent.datasets.synthetic_circulation`.

    Parameters
    ----------
    metadata : dict, optional
        Entry metadata, filled in by intake.
    **parameters
        Keyword arguments of :func:`~climlatent.datasets.synthetic_circulation`.

    Examples
    --------
    >>> from climlatent.catalog import SyntheticCirculationSource
    >>> source = SyntheticCirculationSource(n_years=1, n_members=1)
    >>> source.read().sizes["time"]
    365
    """

    name = "climlatent_synthetic"

    def __init__(self, metadata: dict | None = None, **parameters: Any) -> None:
        super().__init__(metadata=metadata)
        self.parameters = parameters

    def _open(self) -> xr.Dataset:
        return synthetic_circulation(**self.parameters)


class SampleDataSource(_DatasetSource):
    """Intake driver for a netCDF file of the ``iris-sample-data`` package.

    Parameters
    ----------
    filename : str
        Path relative to ``iris_sample_data.path``.
    metadata : dict, optional
        Entry metadata, filled in by intake.

    Examples
    --------
    >>> from climlatent.catalog import SampleDataSource
    >>> SampleDataSource("ostia_monthly.nc").read().sizes["longitude"]
    432
    """

    name = "climlatent_sample_data"

    def __init__(self, filename: str, metadata: dict | None = None) -> None:
        super().__init__(metadata=metadata)
        self.filename = filename

    def _open(self) -> xr.Dataset:
        return open_sample_data(self.filename)


#: The drivers a catalog opened by climlatent may name (see `_check_drivers`).
DRIVERS = tuple(
    f"{__name__}.{cls.__name__}" for cls in (SyntheticCirculationSource, SampleDataSource)
)
