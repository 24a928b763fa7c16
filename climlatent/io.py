"""Open climate data lazily and write CF-1.8 output atomically, with provenance.

Reading: netCDF files (one path, a glob or a list), zarr stores and catalog entries
(``"catalog.yaml#entry"``) open lazily, times decoded to cftime objects so that every
CF calendar (360_day, noleap, ...) survives.

Writing: :func:`to_netcdf` completes the CF-1.8 metadata a checker and a downstream
tool expect (:func:`climlatent.cf_encoding.cf_encode`), appends a ``history`` line,
and writes to a temporary file in the target folder that is renamed into place only
once complete: an error, whenever it happens, leaves no half-written file behind.

Provenance: an output computed from some data keeps that data's own description (its
global attributes, scalar coordinates, time bounds, grid mapping: see
:func:`carry_provenance`) and only the physical description of what a model was
trained on (:func:`physical_attrs`), never the attributes of its training files.
"""

from __future__ import annotations

import datetime as _dt
import glob
import os
import re
import warnings
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from climlatent._version import __version__
from climlatent.atomic import written_atomically
from climlatent.cf_encoding import cf_encode
from climlatent.errors import InputDataError, is_netcdf_error, require_extra
from climlatent.grid import find_member
from climlatent.packing import mask_invalid
from climlatent.store_status import INCOMPLETE

#: Attributes that describe a physical quantity rather than the data it came from.
PHYSICAL_ATTRS = ("standard_name", "long_name", "units", "cell_methods")

PathLike = str | os.PathLike


def natural_key(text: object) -> tuple[str | tuple[int, str], ...]:
    """Sort key that orders the numbers in a label by value: ``r2`` before ``r10``.

    Two texts share a key only if they are equal: ``r01`` and ``r1``, one value, are
    ordered by their digits, not left in the order given (a glob's is the file
    system's, which differs between two copies of one folder).

    Parameters
    ----------
    text : object
        A label or path (its ``str``).

    Returns
    -------
    tuple
        Text and numbers alternating, starting with text (possibly empty); a number as
        ``(value, digits)``.

    Examples
    --------
    >>> sorted(["r10i1p1f1.nc", "r2i1p1f1.nc", "r1i1p1f1.nc"], key=natural_key)
    ['r1i1p1f1.nc', 'r2i1p1f1.nc', 'r10i1p1f1.nc']
    >>> sorted(["r1.nc", "r01.nc"], key=natural_key)
    ['r01.nc', 'r1.nc']
    """
    parts = re.split(r"([0-9]+)", str(text))
    return tuple((int(part), part) if i % 2 else part for i, part in enumerate(parts))


def glob_matches(pattern: str) -> list[str]:
    """The files a path or glob names, as CDO takes them: the glob's matches, else the path.

    The matches are in natural order (``r2`` before ``r10``); a file named with a
    glob's characters (``tas[1].nc``) and matching nothing but itself is that file
    (it was "no file matches"). As with CDO, a glob that matches other files
    (``tas[1].nc`` matches ``tas1.nc``) is taken as the glob.

    Examples
    --------
    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> for name in ("tas[1].nc", "tas2.nc", "tas10.nc"):
    ...     open(os.path.join(folder, name), "w").close()
    >>> [os.path.basename(p) for p in glob_matches(os.path.join(folder, "tas[1].nc"))]
    ['tas[1].nc']
    >>> [os.path.basename(p) for p in glob_matches(os.path.join(folder, "tas[0-9]*.nc"))]
    ['tas2.nc', 'tas10.nc']
    """
    if not glob.has_magic(pattern):
        return [pattern]
    matches = sorted(glob.glob(pattern), key=natural_key)
    if not matches and os.path.lexists(pattern):
        return [pattern]
    return matches


def _in_natural_member_order(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with its members (if any) in natural order: ``r1, r2, ..., r10``."""
    member = find_member(ds)
    if member is None or member not in ds.indexes:
        return ds
    labels = ds.indexes[member]
    order = sorted(range(labels.size), key=lambda i: natural_key(labels[i]))
    return ds if order == list(range(labels.size)) else ds.isel({member: order})


class SharedTimeAxis(xr.coders.CFDatetimeCoder):
    """Decodes CF times to cftime dates, each distinct time variable once.

    The member files of an ensemble share their time axis and its bounds, number for
    number; decoding them is pure Python, about 1 ms per 1000 dates (150 years of days
    and their bounds: about 0.2 s per file). Given to :func:`open_dataset` for each
    file, one coder decodes a time axis or bounds variable (1-D, or 2-D of two
    columns) whose name, attributes and raw numbers it has seen before by handing back
    the dates it decoded then (shared, not copied); any other variable of dates is
    decoded lazily, as xarray does.

    Examples
    --------
    >>> coder = SharedTimeAxis()
    >>> raw = xr.Variable("time", [0, 31], {"units": "days since 2000-01-01",
    ...                                     "calendar": "noleap"})
    >>> first, second = coder.decode(raw, "time"), coder.decode(raw.copy(), "time")
    >>> str(first.values[1]), second.data is first.data
    ('2000-02-01 00:00:00', True)
    """

    def __init__(self) -> None:
        super().__init__(use_cftime=True)
        self._decoded: dict[tuple, xr.Variable] = {}

    def decode(self, variable: xr.Variable, name: Hashable = None) -> xr.Variable:
        """``variable`` decoded (or as it is if it is not a CF time)."""
        decoded = super().decode(variable, name)
        axis_like = variable.ndim == 1 or (variable.ndim == 2 and variable.shape[1] == 2)
        if decoded is variable or not axis_like:  # a field of dates stays lazy
            return decoded
        numbers = np.asarray(variable.values)
        key = (name, variable.dims, numbers.dtype.str, numbers.tobytes(), repr(variable.attrs))
        if key not in self._decoded:
            self._decoded[key] = decoded.load()
        return self._decoded[key].copy(deep=False)


def open_dataset(
    source: PathLike | Sequence[PathLike],
    chunks: dict | str | None = "auto",
    *,
    time_coder: xr.coders.CFDatetimeCoder | None = None,
):
    """Open climate data lazily from netCDF, zarr or a catalog entry.

    Parameters
    ----------
    source : path, glob, list of paths, or ``"catalog.yaml#entry"``
        A netCDF file, a glob or list of netCDF files (combined by coordinates, the
        members in natural order: ``r1, r2, ..., r10``), a zarr store (a folder or a
        path ending in ``.zarr``), or an entry of an intake catalog.
    chunks : dict, "auto" or None
        Dask chunks; ``None`` opens without dask (still lazy, through xarray's own
        lazy indexing).
    time_coder : xr.coders.CFDatetimeCoder, optional
        Decodes the time axes of netCDF files and zarr stores (default: to cftime
        dates); a :class:`SharedTimeAxis` given for many files decodes their common
        time axis once.

    Returns
    -------
    xr.Dataset
        The data, with times decoded to cftime objects; CF bounds and grid-mapping
        variables are coordinates (``decode_coords="all"``), so that they follow the
        variables selected from it. Values of a netCDF variable beyond its CF
        ``valid_range`` (``valid_min``, ``valid_max``) are missing, as netCDF4 and CDO
        read them (such a variable is read into memory when ``chunks`` is None).

    Raises
    ------
    FileNotFoundError
        The path, glob or catalog does not exist (the message names it).
    IsADirectoryError
        A folder that is not a zarr store is given as a netCDF file (named).

    Warns
    -----
    RuntimeWarning
        A zarr store that ``write_zarr`` has not finished (its regions not yet written
        read as missing values).

    Examples
    --------
    >>> import climlatent as cl, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "x.nc")
    >>> _ = cl.io.to_netcdf(cl.datasets.synthetic_circulation(n_years=1), path)
    >>> cl.io.open_dataset(path)["pr"].dims
    ('member', 'time', 'lat', 'lon')
    """
    time_coder = time_coder or xr.coders.CFDatetimeCoder(use_cftime=True)
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
            require_extra("zarr", "dask", f"reading the zarr store {text!r}")
            ds = xr.open_zarr(text, chunks=chunks, decode_times=time_coder, decode_coords="all")
            if INCOMPLETE in ds.attrs:
                warnings.warn(
                    f"zarr store {text!r} is not finished: {ds.attrs[INCOMPLETE]}",
                    RuntimeWarning,
                    stacklevel=2,
                )
            return ds
        paths = glob_matches(text)
        if not paths:
            raise FileNotFoundError(f"no file matches {text!r}")
    for path in paths:
        if Path(path).is_dir():  # was "does not exist"
            raise IsADirectoryError(
                f"{path!r} is a folder, not a netCDF file (a zarr store, with its .zgroup "
                "or zarr.json, opens by its own path, not in a glob or list)"
            )
        if not Path(path).is_file():
            raise FileNotFoundError(f"netCDF file {path!r} does not exist")
    try:
        if len(paths) == 1:
            return mask_invalid(
                xr.open_dataset(
                    paths[0],
                    engine="netcdf4",
                    chunks=chunks,
                    decode_times=time_coder,
                    decode_coords="all",
                )
            )
        combined = xr.open_mfdataset(
            paths,
            engine="netcdf4",
            chunks=chunks,
            decode_times=time_coder,
            decode_coords="all",
            combine="by_coords",
            data_vars="minimal",
            coords="minimal",
            # what the files do not concatenate (a curvilinear grid's 2-D latitude and
            # longitude, bounds, a land fraction) must be equal: "override" took the
            # first file's for all, and a file stored in another order was read with
            # the first file's labels, its cells paired by position
            compat="equals",
        )
        for dim, index in combined.indexes.items():  # files overlapping in time
            if not index.is_unique:
                raise ValueError(f"{dim} {index[index.duplicated()][0]} is in two files")
        return mask_invalid(_in_natural_member_order(combined))  # by_coords sorts as text
    except xr.MergeError as err:
        raise InputDataError(
            f"the files {', '.join(paths)} do not share the coordinates and variables they "
            f"do not concatenate ({str(err).split('. You can skip', 1)[0]}): reorder or "
            f"regrid them alike"
        ) from err
    except (ValueError, TypeError) as err:
        if "decode time" in str(err):
            raise InputDataError(
                f"cannot decode the time axis of {', '.join(paths)}: {err}"
            ) from err
        if len(paths) == 1:
            raise
        # xarray's combine by coordinates: a file stored north to south, overlapping
        # or repeated times, calendars that differ between files
        raise InputDataError(
            f"cannot combine the files {', '.join(paths)} by their coordinates ({err}): "
            "each file must hold its own time steps, in one calendar, on the same grid "
            "in the same order"
        ) from err


#: The most bytes of array that deflate, netCDF-4's compression, packs into a byte of file.
MAX_EXPANSION = 1032


def check_declared_size(path: PathLike) -> None:
    """Refuse a netCDF file whose arrays declare more bytes than the file can hold.

    An HDF5 chunk never written reads as the fill value, so a file of a few hundred
    bytes can declare arrays of terabytes, which opening it with xarray (its dimension
    coordinates, read into indexes) or loading it would allocate. Written data takes at
    least one byte of file per `MAX_EXPANSION` bytes of array, compressed or not. Read
    from the file's header only, before xarray opens it.

    Raises
    ------
    ValueError
        The arrays declare more than `MAX_EXPANSION` times the file's size.
    OSError
        The file is not netCDF.

    Examples
    --------
    >>> import netCDF4, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "bomb.nc")
    >>> with netCDF4.Dataset(path, "w") as nc:
    ...     _ = nc.createDimension("lat", 10**12)
    ...     _ = nc.createVariable("lat", "f8", ("lat",))
    >>> check_declared_size(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: its arrays declare 8000000000000 bytes, more than ... of file can hold ...
    """
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        # a variable-length string's size is unknown: a pointer per element at least
        declared = sum(v.size * getattr(v.dtype, "itemsize", 8) for v in nc.variables.values())
    size = os.path.getsize(path)
    if declared > MAX_EXPANSION * size:
        raise ValueError(
            f"its arrays declare {declared} bytes, more than its {size} bytes of file can hold "
            f"(at most {MAX_EXPANSION} bytes of array a byte); refusing to allocate them"
        )


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


def physical_attrs(attrs: Mapping[Hashable, object]) -> dict[Hashable, object]:
    """The attributes in ``attrs`` that describe a physical quantity (`PHYSICAL_ATTRS`).

    What an output keeps of the variable a model was trained on: the provenance of
    the training files (their source, scenario, model version...) is not the output's.

    Examples
    --------
    >>> physical_attrs({"units": "K", "standard_name": "air_temperature", "scenario": "A1B"})
    {'standard_name': 'air_temperature', 'units': 'K'}
    """
    return {key: attrs[key] for key in PHYSICAL_ATTRS if key in attrs}


def carry_provenance(out: xr.Dataset, source: xr.Dataset) -> xr.Dataset:
    """``out`` with the provenance of the data ``source`` that it was computed from.

    ``out`` gets the global attributes of ``source`` (its own win, and ``history``
    keeps the lines of both, ``source``'s first, once) and the coordinates, CF bounds and
    grid-mapping variables of ``source`` that fit it: scalars (``height``, a grid
    mapping, ...) and variables whose every dimension ``out`` has, with the same
    coordinate values (the time axis and its ``time_bnds``; the grid's bounds when
    ``out`` is on the input grid). A dimension coordinate of ``out`` equal to that of
    ``source`` is taken from ``source``, attributes and encoding included.

    Parameters
    ----------
    out : xr.Dataset
        An output computed from ``source``.
    source : xr.Dataset
        The data it was computed from.

    Returns
    -------
    xr.Dataset
        ``out`` with the provenance of ``source``.

    Examples
    --------
    >>> import xarray as xr
    >>> source = xr.Dataset(
    ...     {"x": ("time", [1.0, 2.0]), "time_bnds": (("time", "nv"), [[0, 1], [1, 2]])},
    ...     coords={"time": ("time", [0.5, 1.5], {"bounds": "time_bnds"}), "height": 2.0},
    ...     attrs={"source": "run 1"})
    >>> out = xr.Dataset({"y": ("time", [3.0, 4.0])}, coords={"time": [0.5, 1.5]})
    >>> out = carry_provenance(out, source)
    >>> sorted(out.coords), out["time"].attrs, out.attrs
    (['height', 'time', 'time_bnds'], {'bounds': 'time_bnds'}, {'source': 'run 1'})
    """
    bounds = _references(source, "bounds", list(source.coords))
    mappings = _references(source, "grid_mapping", list(source.data_vars))
    carried = {}
    for name in dict.fromkeys([*source.coords, *bounds, *mappings]):
        var = source.variables[name]
        free = var.dims[-1:] if name in bounds else ()
        fits = all(
            _same_axis(dim, out, source) or (dim in free and dim not in out.dims)
            for dim in var.dims
        )
        if fits and (name not in out.variables or name in out.indexes):
            carried[name] = var
    result = out.assign_coords(carried)
    before, after = source.attrs.get("history", ""), out.attrs.get("history", "")
    history = after if after.startswith(before) else "\n".join(filter(None, (before, after)))
    result.attrs = {**source.attrs, **out.attrs, **({"history": history} if history else {})}
    return result


def _references(ds: xr.Dataset, key: str, names: list[Hashable]) -> list[Hashable]:
    """The variables of ``ds`` that the attribute (or encoding) ``key`` of ``names`` name."""
    found = []
    for name in names:
        var = ds.variables[name]
        ref = var.attrs.get(key, var.encoding.get(key))
        if isinstance(ref, str) and ref in ds.variables:
            found.append(ref)
    return found


def _same_axis(dim: Hashable, out: xr.Dataset, source: xr.Dataset) -> bool:
    """Whether ``out`` has the dimension ``dim`` of ``source``, with the same coordinates."""
    if dim not in out.dims or out.sizes[dim] != source.sizes[dim]:
        return False
    mine, theirs = out.indexes.get(dim), source.indexes.get(dim)
    if mine is None or theirs is None:
        return mine is None and theirs is None
    return mine.equals(theirs)


def to_netcdf(
    ds: xr.Dataset | xr.DataArray,
    path: PathLike,
    call: str | None = None,
    complete_coords: bool = True,
) -> Path:
    """Write ``ds`` as a CF-1.8 netCDF4 file, atomically.

    The Dataset is computed (if lazy) and written to a temporary file in the target
    folder, which is renamed to ``path`` only once the write has succeeded; on any
    error the temporary file is removed and no file exists at ``path`` that was not
    there before.

    Parameters
    ----------
    ds : xr.Dataset or xr.DataArray
        Data to write (a DataArray as the Dataset of its one variable, by its name).
    path : str or path-like
        Target file.
    call : str, optional
        Description of the call that produced ``ds``, appended to ``history``; by
        default the write itself, so that every file names the climlatent that wrote it.
    complete_coords : bool
        Add the CF attributes that coordinates lack (see :func:`cf_encode`); ``False``
        for a file whose coordinates must read back with the attributes they have.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    InputDataError
        A DataArray without a name or named as one of its coordinates, or an attribute
        netCDF cannot hold (None, a bool, a dict), naming the variable and the attribute.
    FileNotFoundError, IsADirectoryError
        The target's folder does not exist, or the target is a folder (before any
        data is computed).
    RuntimeError
        netCDF-C's (a full disk, or a lazy input that fails to read), naming ``path``.

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
    if target.is_dir():  # found before the (lazy) data is computed, not after
        raise IsADirectoryError(f"output {str(target)!r} is a folder; name a file to write")
    if isinstance(ds, xr.DataArray):
        if ds.name is None:
            raise InputDataError("a DataArray without a name cannot be written: name it first")
        if ds.name in ds.coords:  # as VAE.encode's "latent" on its "latent" dim
            raise InputDataError(
                f"a DataArray named as its coordinate {ds.name!r} cannot be written: "
                "rename it first (da.rename('...'))"
            )
        ds = ds.to_dataset()
    call = call or f"to_netcdf(ds, {target.name!r})"
    encoded = cf_encode(add_history(ds, call), complete_coords)
    for name, var in [(None, encoded), *encoded.variables.items()]:
        for key, value in var.attrs.items():
            if value is None or isinstance(value, bool | np.bool_ | Mapping):
                where = "global attribute" if name is None else f"attribute of {name!r}"
                raise InputDataError(
                    f"{where} {key!r} is {value!r}, which a netCDF file cannot hold "
                    "(text, numbers or arrays of them): drop it or write it as text"
                )
    with written_atomically(target) as tmp:
        try:
            encoded.to_netcdf(tmp, engine="netcdf4", format="NETCDF4")
        except RuntimeError as err:  # netCDF-C's message names no file
            if not is_netcdf_error(err):
                raise
            raise RuntimeError(f"{err} (while writing {str(target)!r})") from err
    return target
