"""The CF-1.8 metadata and encodings of a Dataset about to be written.

:func:`cf_encode` completes what a CF checker and a downstream tool (CDO, xESMF) expect
of a file climlatent writes, netCDF (`climlatent.io.to_netcdf`) or zarr
(`climlatent.zarr_store.write_zarr`), without touching the values: the conventions,
coordinate attributes, bounds and grid mappings, fill values, time and integer
encodings.
"""

from __future__ import annotations

from collections.abc import Hashable

import cftime
import numpy as np
import xarray as xr
from xarray.coding.times import infer_datetime_units
from xarray.conventions import CF_RELATED_DATA, encode_cf_variable

from climlatent.grid import GridInfo, find_grid, find_member, find_time
from climlatent.packing import PACKING, unpack_valid_range

CONVENTIONS = "CF-1.8"
FILL_VALUE = 1.0e20  # the CMIP fill value for floating-point fields
# CF attributes of variables, not of a file: xr.merge of DataArrays gives the Dataset the
# first one's (a global "units: K" of an RMSE map), which iris refuses as global attributes.
_VARIABLE_ONLY_ATTRS = ("units", "standard_name", "long_name", "cell_methods", "coordinates")
_COORD_ATTRS = {
    "lat": {"standard_name": "latitude", "units": "degrees_north", "axis": "Y"},
    "lon": {"standard_name": "longitude", "units": "degrees_east", "axis": "X"},
}


def cf_encode(ds: xr.Dataset, complete_coords: bool = True) -> xr.Dataset:
    """Complete the CF-1.8 metadata of ``ds`` for writing, without touching its values.

    - ``Conventions`` names CF-1.8 (in place of another CF version; other conventions
      stay); a missing ``title`` is made of the data variables' long names; the
      attributes that CF gives variables only (``units``, ``long_name``...) are
      not written as global attributes;
    - with ``complete_coords``, latitude, longitude and time get their axis attributes
      where missing (on a rotated-pole grid its ``rlat`` and ``rlon``, not the 2-D
      latitude and longitude), a member dimension ``standard_name: realization``
      (and ``units: 1`` when numeric);
    - a ``bounds`` attribute naming a variable not in ``ds`` is dropped; when ``ds``
      holds one grid-mapping variable, the variables on the horizontal grid name it;
      each data variable names the auxiliary coordinates on its dimensions;
    - encodings: ``_FillValue`` on floating-point data variables, written unpacked
      (a file's ``scale_factor``, ``add_offset``, integer dtype and ``missing_value``
      dropped), and none on coordinates, bounds and grid mappings (as CF asks); times
      as float64 (in days where a file counted months or years), bounds in the units
      of their coordinate; 64-bit integers as int32 where the values fit
      (CF-1.8 has no 64-bit integers); no fixed text width narrower than the text
      (one inherited from the first of several files would cut ``r10`` to ``r1``).

    Parameters
    ----------
    ds : xr.Dataset
        Data to write.
    complete_coords : bool
        Add the coordinate attributes above; ``False`` leaves every attribute of the
        variables as it is.

    Returns
    -------
    xr.Dataset
        A shallow copy of ``ds`` with the metadata and encodings to write.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"pr": (("lat", "lon"), np.ones((2, 2)), {"units": "kg m-2 s-1"})},
    ...     coords={"lat": [0.0, 1.0], "lon": [0.0, 1.0]}, attrs={"Conventions": "CF-1.5"})
    >>> encoded = cf_encode(ds)
    >>> encoded.attrs, encoded["pr"].encoding["_FillValue"], encoded["lat"].encoding
    ({'Conventions': 'CF-1.8', 'title': 'pr'}, 1e+20, {'_FillValue': None})
    """
    out = ds.copy()
    out.attrs = {k: v for k, v in out.attrs.items() if k not in _VARIABLE_ONLY_ATTRS}
    out.attrs["Conventions"] = " ".join(
        [CONVENTIONS, *(c for c in out.attrs.get("Conventions", "").split() if c[:3] != "CF-")]
    )
    try:
        grid = find_grid(out)
    except ValueError:
        grid = None
    if complete_coords:
        _complete_coordinates(out, grid)
    bounds = _drop_dangling_bounds(out)
    # bounds as data variables: as coordinates, xarray lists them in a global attribute
    out = out.reset_coords([name for name in bounds if name in out.coords])
    mappings = {name for name, var in out.variables.items() if "grid_mapping_name" in var.attrs}
    if grid is not None and len(mappings) == 1:
        _name_grid_mapping(out, grid, next(iter(mappings)))
    plain = [name for name in out.data_vars if name not in bounds | mappings]
    out.attrs.setdefault(
        "title",
        ", ".join(str(out[n].attrs.get("long_name", n)) for n in plain) or "climlatent output",
    )
    _encode_times(out, bounds)
    _name_coordinates(out, plain)
    for name, var in out.variables.items():
        if var.dtype.kind in "iu" and var.dtype.itemsize == 8 and _fits_int32(var):
            var.encoding["dtype"] = "int32"
        if _cut_by_encoding(var):
            var.encoding.pop("dtype")
        if name in plain:
            if var.dtype.kind == "f":  # written unpacked, NaN as the one fill value
                unpack_valid_range(var)
                for key in PACKING:
                    var.encoding.pop(key, None)
                if np.dtype(var.encoding.get("dtype", var.dtype)).kind != "f":
                    var.encoding.pop("dtype")
                var.encoding["_FillValue"] = FILL_VALUE
        else:
            var.encoding["_FillValue"] = None
        if name in bounds:  # a scalar coordinate (member) is no coordinate of bounds (CDO)
            var.encoding["coordinates"] = None
    return out


def _characters(dtype: np.dtype) -> int:
    return dtype.itemsize // (4 if dtype.kind == "U" else 1)


def _cut_by_encoding(var: xr.Variable) -> bool:
    """Whether text would be cut to the fixed width its encoding keeps from a file."""
    stored = var.encoding.get("dtype")
    if var.dtype.kind not in "US" or stored is None or np.dtype(stored).kind not in "US":
        return False
    return 1 < _characters(np.dtype(stored)) < _characters(var.dtype)  # 1: a char array


def _complete_coordinates(out: xr.Dataset, grid: GridInfo | None) -> None:
    """CF attributes of the latitude, longitude, time and member coordinates, in place."""
    if grid is not None:
        for key, name, dim in (("lat", grid.lat, grid.y_dim), ("lon", grid.lon, grid.x_dim)):
            attrs = dict(_COORD_ATTRS[key])
            if out[name].ndim != 1:  # 2-D: the axes are those of its dims (rlat, rlon)
                axis = attrs.pop("axis")
                if grid.kind == "rotated_pole" and dim in out.coords:
                    out[dim].attrs = {"axis": axis, **out[dim].attrs}
            out[name].attrs = {**attrs, **out[name].attrs}
    time = find_time(out)
    if time is not None and time in out.coords:
        out[time].attrs = {"standard_name": "time", "axis": "T", **out[time].attrs}
    member = find_member(out)
    if member is not None and member in out.coords:
        units = {"units": "1"} if out[member].dtype.kind in "iuf" else {}
        out[member].attrs = {"standard_name": "realization", **units, **out[member].attrs}


def _drop_dangling_bounds(out: xr.Dataset) -> set[Hashable]:
    """Drop ``bounds`` attributes naming no variable of ``out``; the names of the others."""
    found = set()
    for var in out.variables.values():
        for holder in (var.attrs, var.encoding):
            if "bounds" in holder:
                if holder["bounds"] in out.variables:
                    found.add(holder["bounds"])
                else:
                    del holder["bounds"]
    return found


def _name_grid_mapping(out: xr.Dataset, grid: GridInfo, mapping: Hashable) -> None:
    """Name ``mapping`` in the variables on the horizontal grid that name none."""
    for name in out.data_vars:
        var = out.variables[name]
        on_grid = set(grid.spatial_dims) <= set(var.dims)
        if on_grid and "grid_mapping" not in var.attrs and "grid_mapping" not in var.encoding:
            var.encoding["grid_mapping"] = mapping


def _encode_times(out: xr.Dataset, bounds: set[Hashable]) -> None:
    """Times as float64 (not int64 nor float32), each bounds variable in its coordinate's units.

    A float32 encoding read from a file holds whole days since 1850 but not the hours
    of recent dates (a step of 5.6 min near 2015): hourly times written as float32
    "days since 1850-01-01" came back up to 112 s off, 32 of 48 of them.
    """
    for name, var in out.variables.items():
        if not _is_time(var) or name in bounds:
            continue
        pair = [var]
        ref = var.attrs.get("bounds", var.encoding.get("bounds"))
        if ref is not None:
            pair.append(out.variables[ref])
            if "units" not in var.encoding:
                values = np.concatenate([np.ravel(v.values) for v in pair])
                var.encoding["units"] = infer_datetime_units(values)
        step, since, reference = var.encoding.get("units", "").partition(" since ")
        if since and step.strip().rstrip("s") in ("month", "year", "common_year"):
            var.encoding["units"] = f"days since {reference}"  # xarray encodes no months
        for item in pair:
            item.encoding.update(
                {key: var.encoding[key] for key in ("units", "calendar") if key in var.encoding}
            )
            stored = np.dtype(item.encoding.get("dtype", "int64"))
            if stored == np.int64 or (stored.kind == "f" and stored.itemsize < 8):
                item.encoding["dtype"] = "float64"
        if len(pair) == 2 and "units" in var.encoding:
            # as xarray writes the coordinate's units (tidied: "days since 1970-01-01" for
            # "days since 1970-01-01 00:00:00"); it writes those of lazy bounds untidied,
            # and the CF checker found bounds in other units than their time
            pair[1].encoding["units"] = encode_cf_variable(var).attrs["units"]


def _name_coordinates(out: xr.Dataset, plain: list[Hashable]) -> None:
    """Name in each of the ``plain`` variables its auxiliary coordinates, in place.

    As xarray would, but a coordinate whose name is part of a ``bounds`` name stays named:
    xarray left ``forecast_reference_time`` (bounds ``forecast_reference_time_bnds``) out
    of ``coordinates``, so that iris and xarray read it detached from the data.
    """
    related = {
        word
        for var in out.variables.values()
        for holder in (var.attrs, var.encoding)
        for key in CF_RELATED_DATA
        for word in str(holder.get(key, "")).split()
    }
    auxiliary = [
        name
        for name in out.coords
        if name not in out.dims and name not in related and " " not in str(name)
    ]
    for name in plain:
        var = out.variables[name]
        if "coordinates" in var.attrs or "coordinates" in var.encoding:
            continue
        found = sorted(str(c) for c in auxiliary if set(out[c].dims) <= set(var.dims))
        if found:
            var.encoding["coordinates"] = " ".join(found)


def _is_time(var: xr.Variable) -> bool:
    """Whether ``var`` holds datetimes (numpy or cftime)."""
    if var.dtype.kind != "O" or not var.size:
        return var.dtype.kind == "M"
    return isinstance(var[(0,) * var.ndim].values.item(), cftime.datetime)


def _fits_int32(var: xr.Variable) -> bool:
    """Whether an in-memory integer variable's values fit int32 (a lazy one: no)."""
    if var.chunks is not None:
        return False
    limits = np.iinfo(np.int32)
    return var.size == 0 or (limits.min <= var.values.min() and var.values.max() <= limits.max)
