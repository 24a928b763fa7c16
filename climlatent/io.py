"""Open climate data lazily and write CF-1.8 output atomically, with provenance.

Reading: netCDF files (one path, a glob or a list), zarr stores and catalog entries
(``"catalog.yaml#entry"``) open lazily, times decoded to cftime objects so that every
CF calendar (360_day, noleap, ...) survives.

Writing: :func:`to_netcdf` fills in the CF attributes a downstream tool expects
(``Conventions``, coordinate ``axis``/``standard_name``, ``_FillValue`` for masked
fields), appends a ``history`` line, and writes to a temporary file in the target
folder that is renamed into place only once complete: an error, whenever it happens,
leaves no half-written file behind.
"""

from __future__ import annotations

import datetime as _dt
import glob
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import xarray as xr

from climlatent._version import __version__
from climlatent.errors import InputDataError
from climlatent.grid import find_grid, find_member, find_time

CONVENTIONS = "CF-1.8"
FILL_VALUE = 1.0e20  # the CMIP fill value for floating-point fields

PathLike = str | os.PathLike


def _time_coder() -> xr.coders.CFDatetimeCoder:
    return xr.coders.CFDatetimeCoder(use_cftime=True)


def open_dataset(source: PathLike | Sequence[PathLike], chunks: dict | str | None = "auto"):
    """Open climate data lazily from netCDF, zarr or a catalog entry.

    Parameters
    ----------
    source : path, glob, list of paths, or ``"catalog.yaml#entry"``
        A netCDF file, a glob or list of netCDF files (combined by coordinates), a zarr
        store (a folder or a path ending in ``.zarr``), or an entry of an intake catalog.
    chunks : dict, "auto" or None
        Dask chunks; ``None`` opens without dask (still lazy, through xarray's own
        lazy indexing).

    Returns
    -------
    xr.Dataset
        The data, with times decoded to cftime objects.

    Raises
    ------
    FileNotFoundError
        The path, glob or catalog does not exist (the message names it).

    Examples
    --------
    >>> import climlatent as cl, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "x.nc")
    >>> _ = cl.io.to_netcdf(cl.datasets.synthetic_circulation(n_years=1), path)
    >>> cl.io.open_dataset(path)["pr"].dims
    ('member', 'time', 'lat', 'lon')
    """
    if isinstance(source, (list, tuple)):
        paths = [str(p) for p in source]
    else:
        text = str(source)
        if "#" in text and text.split("#", 1)[0].endswith((".yaml", ".yml")):
            from climlatent.catalog import open_entry

            catalog, entry = text.split("#", 1)
            return open_entry(entry, path=catalog)
        if (
            text.rstrip("/").endswith(".zarr")
            or (Path(text) / ".zgroup").exists()
            or (Path(text) / "zarr.json").exists()
        ):
            if not Path(text).exists():
                raise FileNotFoundError(f"zarr store {text!r} does not exist")
            return xr.open_zarr(text, chunks=chunks, decode_times=_time_coder())
        paths = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
        if not paths:
            raise FileNotFoundError(f"no file matches {text!r}")
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"netCDF file {path!r} does not exist")
    try:
        if len(paths) == 1:
            return xr.open_dataset(
                paths[0], engine="netcdf4", chunks=chunks, decode_times=_time_coder()
            )
        return xr.open_mfdataset(
            paths,
            engine="netcdf4",
            chunks=chunks,
            decode_times=_time_coder(),
            combine="by_coords",
            data_vars="minimal",
            coords="minimal",
            compat="override",
        )
    except ValueError as err:
        if "decode time" not in str(err):
            raise
        raise InputDataError(f"cannot decode the time axis of {', '.join(paths)}: {err}") from err


def history_line(call: str) -> str:
    """One CF ``history`` line: UTC timestamp, climlatent version and the call.

    Examples
    --------
    >>> history_line("EOFRegression.emulate(ds)").split(": ", 1)[1]
    'EOFRegression.emulate(ds)'
    """
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{stamp} climlatent {__version__}: {call}"


def add_history(ds: xr.Dataset, call: str) -> xr.Dataset:
    """Return ``ds`` with a history line for ``call`` appended to its ``history`` attr.

    Examples
    --------
    >>> import xarray as xr
    >>> ds = add_history(xr.Dataset(attrs={"history": "created"}), "fit")
    >>> ds.attrs["history"].splitlines()[0]
    'created'
    """
    previous = ds.attrs.get("history", "")
    line = history_line(call)
    return ds.assign_attrs(history=f"{previous}\n{line}" if previous else line)


_COORD_ATTRS = {
    "lat": {"standard_name": "latitude", "units": "degrees_north", "axis": "Y"},
    "lon": {"standard_name": "longitude", "units": "degrees_east", "axis": "X"},
}


def cf_encode(ds: xr.Dataset) -> xr.Dataset:
    """Complete the CF metadata of ``ds`` for writing, without touching its values.

    Adds ``Conventions``, the latitude/longitude/time axis attributes where missing,
    ``standard_name: realization`` on a member dimension, and an encoding with
    ``_FillValue`` on floating-point data variables (none on coordinates, as CF asks).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"pr": (("lat", "lon"), np.ones((2, 2)), {"units": "kg m-2 s-1"})},
    ...     coords={"lat": [0.0, 1.0], "lon": [0.0, 1.0]})
    >>> cf_encode(ds)["pr"].encoding["_FillValue"]
    1e+20
    """
    out = ds.copy()
    out.attrs.setdefault("Conventions", CONVENTIONS)
    try:
        grid = find_grid(out)
    except ValueError:
        grid = None
    if grid is not None:
        for key, name in (("lat", grid.lat), ("lon", grid.lon)):
            out[name].attrs = {**_COORD_ATTRS[key], **out[name].attrs}
    time = find_time(out)
    if time is not None and time in out.coords:
        out[time].attrs = {"standard_name": "time", "axis": "T", **out[time].attrs}
    member = find_member(out)
    if member is not None and member in out.coords:
        out[member].attrs = {"standard_name": "realization", **out[member].attrs}
    for name, var in out.data_vars.items():
        if var.dtype.kind == "f":
            out[name].encoding = {**var.encoding, "_FillValue": FILL_VALUE}
    for name in out.coords:
        if out[name].dtype.kind == "f":
            out[name].encoding = {**out[name].encoding, "_FillValue": None}
    return out


def to_netcdf(ds: xr.Dataset, path: PathLike, call: str | None = None) -> Path:
    """Write ``ds`` as a CF-1.8 netCDF4 file, atomically.

    The Dataset is computed (if lazy) and written to a temporary file in the target
    folder, which is renamed to ``path`` only once the write has succeeded; on any
    error the temporary file is removed and no file exists at ``path`` that was not
    there before.

    Parameters
    ----------
    ds : xr.Dataset
        Data to write.
    path : str or path-like
        Target file.
    call : str, optional
        Description of the call that produced ``ds``, appended to ``history``.

    Returns
    -------
    pathlib.Path
        The written file.

    Examples
    --------
    >>> import numpy as np, xarray as xr, tempfile, os
    >>> ds = xr.Dataset({"tas": ("time", np.array([280.0, np.nan]), {"units": "K"})})
    >>> out = to_netcdf(ds, os.path.join(tempfile.mkdtemp(), "tas.nc"), call="example")
    >>> xr.open_dataset(out).attrs["Conventions"]
    'CF-1.8'
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(f"output folder {str(target.parent)!r} does not exist")
    encoded = cf_encode(add_history(ds, call) if call else ds)
    # A private folder beside the target: should a dask worker thread still be writing
    # when an error propagates, removing the folder keeps it from re-creating the file.
    workdir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        tmp = workdir / target.name
        encoded.to_netcdf(tmp, engine="netcdf4", format="NETCDF4")
        os.replace(tmp, target)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return target
