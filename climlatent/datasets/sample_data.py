"""Real climate-model output shipped by the PyPI package ``iris-sample-data``.

Opened with xarray and decoded to ``cftime`` dates. The GloSea4 ensemble of
``iris-sample-data`` is stored only as Met Office PP files, which xarray cannot read
without ``iris``; it is therefore not offered.
"""

from __future__ import annotations

from pathlib import Path

import xarray as xr


def sample_data_path(filename: str) -> Path:
    """Locate a file of the ``iris-sample-data`` package.

    Parameters
    ----------
    filename : str
        Path relative to ``iris_sample_data.path``, e.g. ``"ostia_monthly.nc"``.

    Returns
    -------
    pathlib.Path
        Absolute path of the file.

    Raises
    ------
    ImportError
        If ``iris-sample-data`` is not installed.
    FileNotFoundError
        If the installed version does not ship the file, or ``filename`` leads out of
        its folder.

    Examples
    --------
    >>> from climlatent.datasets import sample_data_path
    >>> sample_data_path("A1B_north_america.nc").name
    'A1B_north_america.nc'
    """
    try:
        import iris_sample_data
    except ImportError as error:
        raise ImportError(
            "the real sample datasets need the PyPI package 'iris-sample-data': "
            "pip install iris-sample-data"
        ) from error
    folder = Path(iris_sample_data.path).resolve()
    path = folder / filename
    if not path.resolve().is_relative_to(folder):  # "/etc/passwd", "../../x", a link out
        raise FileNotFoundError(f"{filename!r} is not a file of iris-sample-data ({folder})")
    if not path.is_file():
        raise FileNotFoundError(f"iris-sample-data has no file {filename!r} (looked for {path})")
    return path


def open_sample_data(filename: str, chunks: dict | None = None) -> xr.Dataset:
    """Open a netCDF file of ``iris-sample-data`` as a CF Dataset with cftime dates.

    The netCDF4 engine is used, times are decoded to ``cftime`` objects on the
    file's calendar, and CF bounds and grid-mapping variables become coordinates
    (``decode_coords="all"``); names and attributes are left as the file has them.

    Parameters
    ----------
    filename : str
        Path relative to ``iris_sample_data.path``.
    chunks : dict, optional
        Passed to :func:`xarray.open_dataset`; ``{}`` gives dask arrays with the
        file's chunks, ``None`` (default) lazily loaded numpy arrays.

    Returns
    -------
    xarray.Dataset

    Examples
    --------
    >>> from climlatent.datasets import open_sample_data
    >>> ds = open_sample_data("ostia_monthly.nc")
    >>> ds.surface_temperature.attrs["units"]
    'K'
    """
    return xr.open_dataset(
        sample_data_path(filename),
        engine="netcdf4",
        decode_times=xr.coders.CFDatetimeCoder(use_cftime=True),
        decode_timedelta=False,
        decode_coords="all",
        chunks=chunks,
    )


def a1b_north_america(chunks: dict | None = None) -> xr.Dataset:
    """Annual-mean air temperature over North America, HadCM3-era UM, SRES A1B.

    ``air_temperature`` (K) on ``time`` (240 annual means, 1860-2099, 360_day
    calendar, with ``time_bnds``), ``latitude`` (37, 15N-60N) and ``longitude``
    (49, 225E-315E), from ``iris-sample-data``'s ``A1B_north_america.nc``.

    Parameters
    ----------
    chunks : dict, optional
        See :func:`open_sample_data`.

    Returns
    -------
    xarray.Dataset

    Examples
    --------
    >>> from climlatent.datasets import a1b_north_america
    >>> dict(a1b_north_america().air_temperature.sizes)
    {'time': 240, 'latitude': 37, 'longitude': 49}
    """
    return open_sample_data("A1B_north_america.nc", chunks=chunks)


def e1_north_america(chunks: dict | None = None) -> xr.Dataset:
    """Annual-mean air temperature over North America, E1 mitigation scenario.

    Same grid and 360_day time axis as :func:`a1b_north_america` (the two runs
    share the historical period), from ``E1_north_america.nc``.

    Parameters
    ----------
    chunks : dict, optional
        See :func:`open_sample_data`.

    Returns
    -------
    xarray.Dataset

    Examples
    --------
    >>> from climlatent.datasets import e1_north_america
    >>> e1_north_america().air_temperature.attrs["Model scenario"]
    'E1'
    """
    return open_sample_data("E1_north_america.nc", chunks=chunks)


def ostia_sst(chunks: dict | None = None) -> xr.Dataset:
    """Monthly OSTIA sea-surface temperature analysis of the equatorial band.

    ``surface_temperature`` (K, NaN over land) on ``time`` (54 months,
    2006-04 to 2010-09, gregorian calendar), ``latitude`` (18, 5S-4.4N) and
    ``longitude`` (432, 0-359.2E), from ``ostia_monthly.nc``.

    Parameters
    ----------
    chunks : dict, optional
        See :func:`open_sample_data`.

    Returns
    -------
    xarray.Dataset

    Examples
    --------
    >>> from climlatent.datasets import ostia_sst
    >>> ostia_sst().sizes["time"]
    54
    """
    return open_sample_data("ostia_monthly.nc", chunks=chunks)
