"""Regrid a netCDF file to another grid, streaming it in time blocks (``climlatent regrid``).

The source is opened lazily and cut into blocks of time steps (dask chunks of about
`climlatent.regrid.smm.BLOCK_BYTES` each); each block is read, regridded and written
before the next ones are read, so that memory holds a few blocks, never the whole
file. The output is written atomically as CF-1.8 netCDF by `climlatent.io.to_netcdf`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

import xarray as xr

from climlatent import io
from climlatent.atomic import same_path
from climlatent.cell_edges import bounds_name
from climlatent.errors import InputDataError, is_netcdf_error
from climlatent.grid import find_grid, find_time
from climlatent.grid_spec import _EXAMPLES, grid_from_spec, is_grid_spec
from climlatent.regrid import smm
from climlatent.regrid.frontend import Regridder

__all__ = ["destination_grid", "regrid_file"]


def destination_grid(text: str | os.PathLike) -> xr.Dataset:
    """The grid named by ``text``: a CDO grid spec (``r180x90``) or a netCDF file's grid.

    Examples
    --------
    >>> destination_grid("r180x90").sizes["lon"]
    180
    """
    text = str(text)
    if is_grid_spec(text) and not Path(text).exists():
        return grid_from_spec(text)
    if not Path(text).is_file():
        raise FileNotFoundError(
            f"destination grid {text!r} is neither a netCDF file nor a grid spec {_EXAMPLES}"
        )
    grid = io.open_dataset(text, chunks=None)
    try:
        _check_grid(grid, f"destination grid file {text!r}")
    except InputDataError:
        grid.close()  # not held open (and locked) by the refusal's traceback
        raise
    return grid


def _check_grid(ds: xr.Dataset, label: str) -> None:
    try:
        find_grid(ds)
    except InputDataError as err:
        raise InputDataError(f"{label}: {err}") from err


def _selected(ds: xr.Dataset, variables: Sequence[str] | None, source) -> xr.Dataset:
    """``variables`` of the source (all by default), its grid and time steps checked."""
    _check_grid(ds, f"source {str(source)!r}")
    grid_dims = set(find_grid(ds).spatial_dims)
    time = find_time(ds)
    if time in ds.dims and ds.sizes[time] == 0:
        raise InputDataError(f"source {str(source)!r}: time dim {time!r} has no steps")
    if variables is None:
        return ds
    missing = [v for v in variables if v not in ds.data_vars]
    if missing:
        raise InputDataError(
            f"source {str(source)!r} has no variable {', '.join(map(repr, missing))}; "
            f"it has {', '.join(map(repr, ds.data_vars))}"
        )
    if not any(grid_dims <= set(ds[name].dims) for name in variables):
        raise InputDataError(
            f"source {str(source)!r}: none of the variables {', '.join(map(repr, variables))} "
            f"lies on its grid (dims {', '.join(sorted(grid_dims))}): nothing to regrid"
        )
    selected = ds[list(variables)]
    # with the CF bounds of their coordinates (a CMIP file's time_bnds), whose extra
    # vertex dim ``ds[variables]`` drops
    bounds = [bounds_name(coord) for coord in selected.coords.values()]
    return selected.assign_coords({name: ds[name] for name in bounds if name in ds.variables})


def _time_blocks(ds: xr.Dataset, time_chunk: int | None) -> dict[str, int] | None:
    """Dask chunks of ``time_chunk`` time steps (default: `smm.BLOCK_BYTES` of data).

    ``None`` for data without a time dim: the regridder then reads it block by block
    along its other dims, and the (regridded) output is held in memory.
    """
    if time_chunk is not None and time_chunk < 1:
        raise ValueError(f"time_chunk must be at least 1, not {time_chunk}")
    time = find_time(ds)
    if time is None:
        return None
    if time_chunk is None:
        step_bytes = max(
            (v.nbytes // v.sizes[time] for v in ds.data_vars.values() if time in v.dims),
            default=1,
        )
        time_chunk = max(1, smm.BLOCK_BYTES // max(step_bytes, 1))
    return {time: time_chunk}


def regrid_file(
    source: str | os.PathLike,
    destination: str | os.PathLike | xr.Dataset,
    output: str | os.PathLike,
    method: str = "conservative",
    variables: Sequence[str] | None = None,
    time_chunk: int | None = None,
    skipna: bool = False,
) -> Path:
    """Regrid the variables of a netCDF file onto another grid and write them, streaming.

    The command ``climlatent regrid SOURCE DESTINATION --output OUTPUT`` in Python:
    weights from the climlatent engine (exact; equal to CDO's ``remapcon`` for
    ``"conservative"``), the source read, regridded and written one time block at a
    time.

    Parameters
    ----------
    source : path
        netCDF file, glob or catalog entry (see `climlatent.io.open_dataset`).
    destination : path, grid spec or xr.Dataset
        A netCDF file whose horizontal grid is taken, a CDO grid spec (``r180x90``,
        ``global_2``: see `climlatent.grid_spec`) or a grid Dataset.
    output : path
        netCDF file to write (atomically: nothing is left behind on an error).
    method : {"conservative", "bilinear", "nearest"}
        See `climlatent.regrid.Regridder`.
    variables : sequence of str, optional
        Variables to write (default: all of them): those on the horizontal grid are
        regridded, the others (without horizontal dims) written as they are.
    time_chunk : int, optional
        Time steps per block (default: about `smm.BLOCK_BYTES` of source per block).
    skipna : bool
        Leave NaN source cells out and renormalise (CDO's ``remapcon`` behaviour for
        missing values and partly covered cells); by default a NaN spreads.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    FileNotFoundError
        ``source`` does not exist, or ``destination`` is neither a file nor a spec.
    InputDataError
        A grid without latitude/longitude, an unknown variable, grids that do not
        overlap (the message names the file, variable or coordinate).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from climlatent.grid_spec import grid_from_spec
    >>> folder = tempfile.mkdtemp()
    >>> src = grid_from_spec("r72x36").assign(
    ...     tas=(("time", "lat", "lon"), np.full((4, 36, 72), 280.0), {"units": "K"}))
    >>> _ = io.to_netcdf(src, os.path.join(folder, "tas.nc"))
    >>> out = regrid_file(os.path.join(folder, "tas.nc"), "r36x18",
    ...     os.path.join(folder, "tas_r36x18.nc"), time_chunk=3)
    >>> xr.open_dataset(out)["tas"].shape
    (4, 18, 36)
    """
    if same_path(output, source):
        raise InputDataError(f"the output {str(output)!r} is the source file: write another")
    # The files opened here are closed on return and on every refusal: a refusal's
    # traceback (kept by a notebook) held them open, and a netCDF file held open and
    # opened again can crash netCDF-C (see `climlatent.batch.members.open_members`).
    with contextlib.ExitStack() as files:
        grid = destination
        if not isinstance(destination, xr.Dataset):
            grid = files.enter_context(destination_grid(destination))
        ds = _selected(files.enter_context(io.open_dataset(source, chunks=None)), variables, source)
        blocks = _time_blocks(ds, time_chunk)
        if blocks is not None:  # opened again in blocks: each file read one block at a time
            opened = files.enter_context(io.open_dataset(source, chunks=blocks))
            ds = _selected(opened, variables, source).chunk(blocks)
        named = "<grid>" if isinstance(destination, xr.Dataset) else str(destination)
        call = f"climlatent regrid {source} {named} --method {method}" + (" --skipna" * skipna)
        try:
            out = Regridder(ds, grid, method=method, engine="climlatent")(ds, skipna=skipna)
            return io.to_netcdf(out, output, call=call)
        except (InputDataError, RuntimeError) as err:
            if isinstance(err, RuntimeError) and not is_netcdf_error(err):
                raise
            raise InputDataError(f"regridding {str(source)!r} to {named!r}: {err}") from err
