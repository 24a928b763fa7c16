"""The xarray face of regridding: :class:`Regridder`.

Weights are built once, from the source and destination grids found through CF
metadata (:func:`climlatent.grid.find_grid`), and applied to any DataArray or Dataset
on the source grid. Numbers live in :mod:`climlatent.regrid.backend` (weights) and
:mod:`climlatent.regrid.smm` (application); this module does the checks and the
metadata.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import sparse

from climlatent.cell_edges import bounds_name, latitude_edges, longitude_edges
from climlatent.errors import InputDataError, file_errors_as
from climlatent.grid import GridInfo, find_grid
from climlatent.grid_order import GridOrder, canonical_order
from climlatent.io import add_history, check_declared_size, to_netcdf
from climlatent.regrid import backend, smm

ENGINES = ("auto", "climlatent", "xesmf")


def _grid_dataset(obj: xr.Dataset | xr.DataArray, grid: GridInfo) -> xr.Dataset:
    """The horizontal coordinates of ``obj`` (and their CF bounds) as a Dataset."""
    names = [grid.lat, grid.lon, *(d for d in grid.spatial_dims if d in obj.coords)]
    out = xr.Dataset(coords={name: obj[name].variable for name in dict.fromkeys(names)})
    if isinstance(obj, xr.Dataset):
        for name in (grid.lat, grid.lon):
            bounds = bounds_name(obj[name])
            if bounds in obj.variables:
                out[bounds] = obj[bounds].variable
    return out


def _horizontal_shape(obj: xr.Dataset | xr.DataArray, grid: GridInfo) -> tuple[int, int]:
    return tuple(obj.sizes[d] for d in grid.spatial_dims)


def _without_bounds(attrs: dict) -> dict:
    return {key: value for key, value in attrs.items() if key != "bounds"}


def _geometry(
    obj: xr.Dataset | xr.DataArray, grid: GridInfo, role: str, edges: bool
) -> backend.GridGeometry:
    """Centres (and, for rectilinear grids when ``edges``, cell edges) of a grid."""
    lat = np.asarray(obj[grid.lat].values, dtype=float)
    lon = np.asarray(obj[grid.lon].values, dtype=float)
    if not (edges and grid.kind == "rectilinear"):
        return backend.GridGeometry(lat, lon)
    try:
        lat_edges = latitude_edges(obj[grid.lat], obj)
        lon_edges = backend.close_ring(longitude_edges(obj[grid.lon], obj))
    except InputDataError as err:
        raise InputDataError(f"{role} grid: {err}") from err
    if np.ptp(lon_edges) > 360.0 + 1e-6:
        raise InputDataError(
            f"{role} grid: longitude {grid.lon!r} cells span {np.ptp(lon_edges):g} degrees, "
            "more than 360 (drop the repeated cyclic column)"
        )
    return backend.GridGeometry(lat, lon, lat_edges, lon_edges)


def _check_supported(src: GridInfo, dst: GridInfo, method: str, engine: str) -> None:
    """Refuse grid kinds a method (on an engine) cannot handle, naming the coordinate."""
    needs = []
    if method == "conservative":
        needs = [("source", src), ("destination", dst)]
    elif method == "bilinear" and engine == "climlatent":
        needs = [("source", src)]
    for role, grid in needs:
        if grid.kind != "rectilinear":
            raise InputDataError(
                f"method={method!r} (engine={engine!r}) needs a rectilinear {role} grid, but "
                f"the {role} grid is {grid.kind} (latitude {grid.lat!r} on dims "
                f"{grid.spatial_dims}); use method='nearest'"
                # regrid_file and `climlatent regrid` have no engine: Regridder's is named
                + ("" if method == "conservative" else ", or Regridder(..., engine='xesmf')")
            )


def _describe(grid: GridInfo, geometry: backend.GridGeometry) -> str:
    lat0, lat1, lon0, lon1 = geometry.extent()
    return f"latitude {grid.lat!r} {lat0:g}..{lat1:g}, longitude {grid.lon!r} {lon0:g}..{lon1:g}"


def _resolve_engine(engine: str) -> str:
    if engine == "auto":
        return "xesmf" if backend.xesmf_available() else "climlatent"
    return engine


def _prefixed(ds: xr.Dataset, prefix: str) -> xr.Dataset:
    """Rename every variable and dim (and ``bounds`` references) with ``prefix``."""
    out = ds.rename({name: prefix + str(name) for name in [*ds.variables, *ds.dims]})
    for var in out.variables.values():
        if "bounds" in var.attrs:
            var.attrs["bounds"] = prefix + var.attrs["bounds"]
    return out


def _unprefixed(ds: xr.Dataset, prefix: str) -> xr.Dataset:
    """The variables of ``ds`` named with ``prefix``, the prefix removed."""
    own = [name for name in ds.variables if str(name).startswith(prefix)]
    part = ds.drop_vars([name for name in ds.variables if name not in own]).drop_attrs(deep=False)
    part = part.rename({name: str(name).removeprefix(prefix) for name in [*own, *part.dims]})
    for var in part.variables.values():
        if "bounds" in var.attrs:
            var.attrs["bounds"] = var.attrs["bounds"].removeprefix(prefix)
    return part


def _with_extrapolation(
    weights: sparse.coo_array, src: backend.GridGeometry, dst: backend.GridGeometry
) -> sparse.coo_array:
    """``weights`` plus weight 1 on the nearest source centre of each empty row.

    As xESMF's ``extrap_method="nearest_s2d"``: a destination cell that the method
    gives no weight at all takes the value of the great-circle nearest source centre.
    """
    nearest = backend.nearest_weights(src, dst).tocoo()
    empty = np.bincount(weights.row, minlength=weights.shape[0])[nearest.row] == 0
    return sparse.coo_array(
        (
            np.concatenate([weights.data, nearest.data[empty]]),
            (
                np.concatenate([weights.row, nearest.row[empty]]),
                np.concatenate([weights.col, nearest.col[empty]]),
            ),
        ),
        shape=weights.shape,
    )


def _caller_cells(order: GridOrder, shape: tuple[int, int]) -> np.ndarray:
    """Flat (C order) caller index of each canonical cell of a grid."""
    if not order.rectilinear:
        return np.arange(shape[0] * shape[1])
    return (order.lat_index[:, None] * shape[1] + order.lon_index[None, :]).ravel()


def _apply_in_blocks(
    apply: Callable[[np.ndarray], np.ndarray],
    da: xr.DataArray,
    order: GridOrder,
    leading: list[str],
    dst_shape: tuple[int, int],
) -> np.ndarray:
    """``apply`` over blocks of ``da`` along its ``leading`` dims, into one numpy array.

    Each block is read (from a file, for file-backed data), put in the canonical
    layout and regridded before the next is read, so that only the output and one
    block of the source (at most `smm.BLOCK_BYTES`) are in memory at a time.
    """
    sizes = tuple(da.sizes[d] for d in leading)
    field_bytes = da.dtype.itemsize * (da.size // max(math.prod(sizes), 1))
    out = np.empty((*sizes, *dst_shape), smm.output_dtype(da.dtype))
    for block in smm.leading_blocks(sizes, max(1, smm.BLOCK_BYTES // max(field_bytes, 1))):
        source = order.canonical(da.isel(dict(zip(leading, block, strict=True))).load())
        out[block] = apply(source.values)
    return out


class Regridder:
    """Regrid fields from one latitude-longitude grid to another with sparse weights.

    Parameters
    ----------
    src : xr.Dataset or xr.DataArray
        Data on the source grid (only its horizontal coordinates and CF bounds are
        used).
    dst : xr.Dataset or xr.DataArray
        Data or a grid Dataset (latitude/longitude, optionally CF bounds) defining the
        destination grid.
    method : {"conservative", "bilinear", "nearest"}
        First-order conservative (exact spherical overlaps; rectilinear grids),
        bilinear (rectilinear source on the climlatent engine) or great-circle nearest
        source centre.
    engine : {"auto", "climlatent", "xesmf"}
        Who builds the weights: ``"auto"`` uses xESMF when it is importable and the
        climlatent engine (numpy/scipy) otherwise.
    weights : scipy sparse array, optional
        Precomputed weights ``(n_dst_cells, n_src_cells)``; nothing is built (and
        ``extrapolate`` is only recorded: the weights are used as they are).
    extrapolate : bool
        Give each destination cell that the method leaves empty (no weight at all,
        e.g. bilinear points outside the source centres) the value of its great-circle
        nearest source centre, as xESMF's ``extrap_method="nearest_s2d"``. Cells the
        method covers, even partly, are unchanged.

    Attributes
    ----------
    weights : scipy.sparse.csr_array
        The weights; row ``j`` holds the contributions to destination cell ``j`` of the
        grids flattened in C order, and sums to the covered fraction of the cell.

    Notes
    -----
    Missing data and partial coverage (see :mod:`climlatent.regrid.smm`): with the
    default ``skipna=False`` a NaN source cell makes every destination cell it touches
    NaN, and destination cells not fully covered by the source domain are NaN. With
    ``skipna=True`` the result is renormalised by the valid covered fraction ``f`` of
    each destination cell and is NaN only where ``1 - f > na_thres`` (default 1.0: NaN
    only where no valid source data overlaps). Nearest-neighbour fills every
    destination cell, and so does ``extrapolate=True`` for empty cells.

    Raises
    ------
    InputDataError
        A grid is missing, unsupported by the method, has a single point and no bounds
        (conservative), or the two grids do not overlap (the message gives both ranges).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> src = xr.DataArray(np.arange(8.0).reshape(2, 4), dims=("lat", "lon"), name="tas",
    ...     coords={"lat": [-45.0, 45.0], "lon": [45.0, 135.0, 225.0, 315.0]})
    >>> dst = xr.Dataset(coords={"lat": [-45.0, 45.0], "lon": [90.0, 270.0]})
    >>> regridder = Regridder(src, dst, method="conservative", engine="climlatent")
    >>> regridder(src).values.tolist()
    [[0.5, 2.5], [4.5, 6.5]]

    Bilinear leaves the points beyond the source centres empty; ``extrapolate`` fills
    them from the nearest source centre:

    >>> edge = xr.Dataset(coords={"lat": [-60.0, 0.0, 60.0], "lon": [45.0]})
    >>> Regridder(src, edge, "bilinear", engine="climlatent")(src).values.ravel().tolist()
    [nan, 2.0, nan]
    >>> filled = Regridder(src, edge, "bilinear", engine="climlatent", extrapolate=True)
    >>> filled(src).values.ravel().tolist()
    [0.0, 2.0, 4.0]
    """

    def __init__(
        self,
        src: xr.Dataset | xr.DataArray,
        dst: xr.Dataset | xr.DataArray,
        method: str = "conservative",
        engine: str = "auto",
        weights: sparse.sparray | sparse.spmatrix | None = None,
        extrapolate: bool = False,
    ) -> None:
        if method not in backend.METHODS:
            raise ValueError(f"method must be one of {backend.METHODS}, not {method!r}")
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
        self.method = method
        self.extrapolate = extrapolate
        src_info, dst_info = find_grid(src), find_grid(dst)
        self._src_grid = _grid_dataset(src, src_info)
        self._dst_grid = _grid_dataset(dst, dst_info)
        self._dst_coords = {  # for DataArray outputs, which cannot hold the bounds
            name: xr.Variable(coord.dims, coord.values, _without_bounds(coord.attrs))
            for name, coord in self._dst_grid.coords.items()
        }
        self._dst_info = dst_info
        self._src_shape = _horizontal_shape(src, src_info)
        self._dst_shape = _horizontal_shape(dst, dst_info)
        if weights is None:
            self.engine = _resolve_engine(engine)
            weights = self._build(src, src_info, dst, dst_info)
        else:
            self.engine = "precomputed" if engine == "auto" else engine
        self.weights = sparse.csr_array(weights)
        expected = (int(np.prod(self._dst_shape)), int(np.prod(self._src_shape)))
        if self.weights.shape != expected:
            raise InputDataError(
                f"weights have shape {self.weights.shape}, expected {expected} "
                f"(destination cells, source cells) for these grids"
            )
        # applied in the canonical layouts, so that input order never changes a sum
        self._src_order, self._dst_order = (GridOrder.of(g) for g in (src, dst))
        canonical = self.weights[_caller_cells(self._dst_order, self._dst_shape)][
            :, _caller_cells(self._src_order, self._src_shape)
        ]
        canonical.sort_indices()
        self._canonical_weights = canonical

    def _build(self, src, src_info, dst, dst_info) -> sparse.csr_array:
        """Weights built on the canonical layouts, indexed in the callers' layouts."""
        _check_supported(src_info, dst_info, self.method, self.engine)
        src_order, dst_order = GridOrder.of(src), GridOrder.of(dst)
        src, dst = src_order.canonical(self._src_grid), dst_order.canonical(self._dst_grid)
        src_geo = _geometry(src, src_info, "source", edges=self.method != "nearest")
        dst_geo = _geometry(dst, dst_info, "destination", edges=self.method == "conservative")
        if self.method == "bilinear" and min(src_geo.shape) < 2:
            raise InputDataError(
                f"method='bilinear' needs at least two source latitudes and longitudes; "
                f"{src_info.lat!r} x {src_info.lon!r} is {src_geo.shape}"
            )
        no_overlap = InputDataError(
            f"the source grid ({_describe(src_info, src_geo)}) and the destination grid "
            f"({_describe(dst_info, dst_geo)}) do not overlap"
        )
        if not backend.domains_overlap(src_geo, dst_geo):
            raise no_overlap
        weights = sparse.coo_array(backend.ENGINES[self.engine](src_geo, dst_geo, self.method))
        if weights.nnz == 0:
            raise no_overlap
        if self.extrapolate:  # in the canonical layouts too: ties never depend on order
            weights = _with_extrapolation(weights, src_geo, dst_geo)
        rows = _caller_cells(dst_order, self._dst_shape)[weights.row]
        cols = _caller_cells(src_order, self._src_shape)[weights.col]
        return sparse.csr_array((weights.data, (rows, cols)), shape=weights.shape)

    def __repr__(self) -> str:
        extrapolate = ", extrapolate=True" if self.extrapolate else ""
        return (
            f"Regridder(method={self.method!r}, engine={self.engine!r}{extrapolate}, "
            f"source {self._src_shape} -> destination {self._dst_shape}, "
            f"{self.weights.nnz} weights)"
        )

    def __call__(
        self, obj: xr.Dataset | xr.DataArray, skipna: bool = False, na_thres: float = 1.0
    ) -> xr.Dataset | xr.DataArray:
        """Regrid a DataArray or every horizontal variable of a Dataset.

        Parameters
        ----------
        obj : xr.Dataset or xr.DataArray
            Data on the source grid, with any other dims (member, time, level, ...).
            Dask-backed data stays lazy (the horizontal dims become one chunk; each
            chunk is regridded when computed). Other data, in memory or file-backed
            (opened without dask), is read and regridded in blocks along the other
            dims of about ``smm.BLOCK_BYTES`` (16 MiB) each, so that a file is never
            loaded whole: only the result and one block are held at a time.
        skipna : bool
            Ignore NaN source cells and renormalise by the valid covered fraction.
        na_thres : float
            With ``skipna``, the largest missing fraction of a destination cell that
            still gets a value, in [0, 1].

        Returns
        -------
        xr.Dataset or xr.DataArray
            The same type on the destination grid: destination coordinates (with CF
            bounds, for a Dataset, when the destination has them), the input's other
            coordinates, dim order and attributes, plus a ``regrid_method`` attribute
            on each regridded variable and a ``history`` line on a Dataset. Dataset
            variables without the horizontal dims pass through unchanged.

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> src = xr.DataArray(np.ones((3, 2, 4)), dims=("time", "lat", "lon"),
        ...     coords={"lat": [-45.0, 45.0], "lon": [45.0, 135.0, 225.0, 315.0]})
        >>> dst = xr.Dataset(coords={"lat": [-60.0, 0.0, 60.0], "lon": [0.0, 180.0]})
        >>> out = Regridder(src, dst, "bilinear", engine="climlatent")(src)
        >>> out.dims, out.isel(time=0).values.tolist()
        (('time', 'lat', 'lon'), [[nan, nan], [1.0, 1.0], [nan, nan]])
        """
        if not 0.0 <= na_thres <= 1.0:
            raise ValueError(f"na_thres must be within [0, 1], not {na_thres}")
        if isinstance(obj, xr.DataArray):
            return self._regrid_array(obj, find_grid(obj, obj.name), skipna, na_thres)
        grid = find_grid(obj)
        horizontal = set(grid.spatial_dims)
        bounds = {bounds_name(obj[c]) for c in (grid.lat, grid.lon)}
        regridded, dropped = {}, []
        for name, var in obj.data_vars.items():
            if horizontal <= set(var.dims):
                regridded[name] = self._regrid_array(var, grid, skipna, na_thres)
            elif horizontal & set(var.dims) and name not in bounds:
                dropped.append(name)
        if dropped:
            warnings.warn(
                f"variables {dropped} have only one of the horizontal dims "
                f"{grid.spatial_dims} and are dropped by the regridding",
                stacklevel=2,
            )
        if not regridded:
            raise InputDataError(
                f"no variable of the dataset lies on its grid ({grid.lat!r}, {grid.lon!r}): "
                "nothing to regrid"
            )
        all_bounds = {bounds_name(obj[c]) for c in obj.variables}
        other_grid = {
            d for key in ("latitude", "longitude") for c in obj.cf.coordinates.get(key, [])
            if c not in all_bounds for d in obj[c].dims
        } - horizontal  # fmt: skip
        elsewhere = [
            n for n, v in obj.data_vars.items() if other_grid & set(v.dims) and n not in all_bounds
        ]
        if elsewhere:
            warnings.warn(
                f"variables {elsewhere} lie on another horizontal grid than "
                f"({grid.lat!r}, {grid.lon!r}) and pass through as they are; regrid them "
                "on their own (select them first, or --variables on the command line)",
                stacklevel=2,
            )
        kept = obj.drop_vars([n for n, v in obj.variables.items() if horizontal & set(v.dims)])
        names = [n for n in obj.data_vars if n in regridded or n in kept.data_vars]
        out = xr.Dataset(
            {n: regridded[n] if n in regridded else kept[n] for n in names},
            coords=kept.coords,
            attrs=obj.attrs,
        )
        out = out.assign(self._dst_grid.data_vars).assign_coords(self._dst_grid.coords)
        return add_history(out, f"{self!r}(skipna={skipna}, na_thres={na_thres})")

    def _regrid_array(
        self, da: xr.DataArray, grid: GridInfo, skipna: bool, na_thres: float
    ) -> xr.DataArray:
        """Regrid one variable: lazily for dask data, block by block otherwise."""
        order = canonical_order(da, self._src_grid, str(da.name))  # reads no data
        y_dim, x_dim = grid.spatial_dims
        dst_y, dst_x = self._dst_info.spatial_dims
        leading = [d for d in da.dims if d not in (y_dim, x_dim)]
        apply = functools.partial(
            smm.apply_weights,
            self._canonical_weights,
            n_src_shape=self._src_shape,
            n_dst_shape=self._dst_shape,
            skipna=skipna,
            na_thres=na_thres,
        )
        if da.chunks is not None:
            source = order.canonical(da).chunk({y_dim: -1, x_dim: -1}).data
            values = source.map_blocks(
                apply,
                chunks=(*source.chunks[:-2], *((n,) for n in self._dst_shape)),
                dtype=smm.output_dtype(da.dtype),
                meta=np.empty((0,) * source.ndim, smm.output_dtype(da.dtype)),
            )
        else:
            values = _apply_in_blocks(apply, da, order, leading, self._dst_shape)
        kept = {
            name: coord.variable
            for name, coord in da.coords.items()
            if not set(coord.dims) & {y_dim, x_dim}
        }
        out = xr.DataArray(
            values, dims=(*leading, dst_y, dst_x), coords=kept, name=da.name, attrs=dict(da.attrs)
        )
        renamed = {y_dim: dst_y, x_dim: dst_x}
        out = self._dst_order.restore(out).transpose(*(renamed.get(d, d) for d in da.dims))
        described = f"{self.method} (engine: {self.engine}, skipna: {skipna}"
        described += ", extrapolate: nearest_s2d" if self.extrapolate else ""
        described += f", na_thres: {na_thres})" if skipna else ")"
        return out.assign_coords(self._dst_coords).assign_attrs(regrid_method=described)

    def to_netcdf(self, path: str | os.PathLike) -> Path:
        """Save the weights, both grids, the method and ``extrapolate`` to a netCDF file.

        The weights are 1-based COO triplets ``row``/``col``/``S``, as ESMF and xESMF
        write them; the grids keep their coordinate attributes and bounds. No pickle.

        Examples
        --------
        >>> import numpy as np, xarray as xr, tempfile, os
        >>> grid = xr.Dataset(coords={"lat": [0.0, 10.0], "lon": [0.0, 10.0]})
        >>> rg = Regridder(grid, grid, "nearest", engine="climlatent")
        >>> path = rg.to_netcdf(os.path.join(tempfile.mkdtemp(), "w.nc"))
        >>> Regridder.from_netcdf(path).weights.nnz
        4
        """
        coo = self.weights.tocoo()
        weights = xr.Dataset(
            {
                "row": ("n_s", coo.row + 1, {"long_name": "destination cell (1-based)"}),
                "col": ("n_s", coo.col + 1, {"long_name": "source cell (1-based)"}),
                "S": ("n_s", coo.data, {"long_name": "regridding weight", "units": "1"}),
            },
            attrs={
                "title": f"{self.method} regridding weights",
                "regrid_method": self.method,
                "regrid_engine": self.engine,
                "regrid_extrapolate": "nearest_s2d" if self.extrapolate else "none",
            },
        )
        grids = [_prefixed(self._src_grid, "src_"), _prefixed(self._dst_grid, "dst_")]
        # CF-1.8 encodings, but no attributes added: the grids must read back unchanged.
        ds = xr.merge([weights, *grids], combine_attrs="override")
        for var in ds.variables.values():  # each array's HDF5 checksum, checked as it is read
            if var.ndim:  # a filter needs chunks: a grid read contiguous from a file has none
                var.encoding.update(fletcher32=True, contiguous=False, chunksizes=None)
        return to_netcdf(ds, path, repr(self), complete_coords=False)

    @classmethod
    def from_netcdf(cls, path: str | os.PathLike) -> Regridder:
        """Load a regridder saved by :meth:`to_netcdf` without recomputing the weights.

        Raises
        ------
        InputDataError
            The file is truncated, corrupted (an array failing its checksum), not a
            weights file, or its weights do not fit its grids; the message names it.

        Examples
        --------
        See :meth:`to_netcdf`.
        """
        corrupt = f"weights file {str(path)!r} is truncated or corrupted"
        with file_errors_as(InputDataError, corrupt):
            try:
                check_declared_size(path)  # before xarray allocates its indexes
            except ValueError as err:
                raise InputDataError(f"weights file {str(path)!r} is invalid: {err}") from err
            with xr.open_dataset(path, engine="netcdf4") as ds:
                ds = ds.load()  # each array checked against its checksum, when it has one
        missing = sorted({"row", "col", "S"} - set(ds.variables))
        missing += [
            f"attribute {a!r}" for a in ("regrid_method", "regrid_engine") if a not in ds.attrs
        ]
        if missing:
            raise InputDataError(
                f"{str(path)!r} is not a climlatent weights file: it lacks {', '.join(missing)}"
            )
        try:
            src, dst = _unprefixed(ds, "src_"), _unprefixed(ds, "dst_")
            shape = tuple(int(np.prod(_horizontal_shape(g, find_grid(g)))) for g in (dst, src))
            # scipy truncates a fractional cell number (row 2.9 is cell 1) and keeps NaN
            if {ds["row"].dtype.kind, ds["col"].dtype.kind} - set("iu"):
                raise ValueError("row and col must hold integer (1-based) cell numbers")
            if ds["S"].dtype.kind != "f" or not np.isfinite(ds["S"].values).all():
                raise ValueError("S must hold finite floating-point weights")
            weights = sparse.coo_array(
                (ds["S"].values, (ds["row"].values - 1, ds["col"].values - 1)), shape=shape
            )
            extrapolate = ds.attrs.get("regrid_extrapolate", "none") == "nearest_s2d"
            return cls(
                src, dst, ds.attrs["regrid_method"], ds.attrs["regrid_engine"], weights, extrapolate
            )
        except (ValueError, LookupError) as err:  # InputDataError included
            raise InputDataError(f"weights file {str(path)!r} is invalid: {err}") from err
