"""Between gridded DataArrays and sample matrices: stacking, NaN masks, chunked mapping.

A model sees a field as a matrix of shape ``(n_samples, n_cells)``: every dimension
that is not horizontal (time, member, any extra dim) is stacked into samples, and only
the grid cells that hold data (the field's NaN mask, e.g. land for gridded
observations) become columns. :class:`FieldLayout` remembers that mapping and the grid,
so a model's output matrix can be laid back onto the grid with every coordinate,
attribute and dimension order of the input.

:func:`map_samples` applies a matrix-to-matrix function (a model's prediction) to a
DataArray block by block with :func:`xarray.apply_ufunc`: dask-backed input stays
lazy, and memory is bounded by the chunk, not by the ensemble.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import xarray as xr

from climlatent.errors import InputDataError
from climlatent.grid import find_grid, grid_dataset


@dataclass(frozen=True)
class FieldLayout:
    """How the grid cells of one field map onto the columns of a sample matrix.

    Attributes
    ----------
    name : str
        Variable name of the field.
    grid : xr.Dataset
        The horizontal grid: latitude/longitude coordinates with their attributes,
        ``cell_area`` and the boolean ``valid_mask`` of cells that hold data.
    spatial_dims : tuple of str
        The horizontal dimensions, in data order.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.ones((4, 2, 3)), dims=("time", "lat", "lon"), name="tas",
    ...     coords={"lat": [0.0, 1.0], "lon": [0.0, 1.0, 2.0]})
    >>> layout = FieldLayout.from_data(da)
    >>> layout.n_features, layout.sample_dims(da)
    (6, ('time',))
    """

    name: str
    grid: xr.Dataset
    spatial_dims: tuple[str, ...]

    @classmethod
    def from_data(cls, da: xr.DataArray, valid: xr.DataArray | None = None) -> FieldLayout:
        """Layout of ``da``: its grid and its valid cells.

        ``valid`` is a boolean field on the horizontal dims; by default the cells
        finite in any sample.
        """
        spatial = find_grid(da, da.name).spatial_dims
        if valid is None:
            sample = [d for d in da.dims if d not in spatial]
            valid = np.isfinite(da).any(dim=sample) if sample else np.isfinite(da)
        grid = grid_dataset(da)
        valid = valid.drop_vars([c for c in valid.coords if c not in grid.coords])
        grid = grid.assign(valid_mask=valid.transpose(*spatial).compute())
        return cls(str(da.name), grid, spatial)

    @classmethod
    def from_dataset(cls, grid: xr.Dataset) -> FieldLayout:
        """Rebuild a layout saved with :meth:`to_dataset`."""
        mask = grid["valid_mask"].astype(bool)
        return cls(grid.attrs["field"], grid.assign(valid_mask=mask), tuple(mask.dims))

    def to_dataset(self) -> xr.Dataset:
        """The layout as a netCDF-writable Dataset (mask stored as int8)."""
        grid = self.grid.assign(valid_mask=self.grid["valid_mask"].astype("int8"))
        return grid.assign_attrs(field=self.name)

    @property
    def mask(self) -> np.ndarray:
        """Flat boolean mask of the valid cells, in C order over ``spatial_dims``."""
        return np.asarray(self.grid["valid_mask"].values, dtype=bool).ravel()

    @property
    def shape(self) -> tuple[int, ...]:
        """Sizes of the horizontal dims."""
        return tuple(self.grid.sizes[d] for d in self.spatial_dims)

    @property
    def n_features(self) -> int:
        """Number of valid cells: the columns of the sample matrix."""
        return int(self.mask.sum())

    @property
    def area_weights(self) -> np.ndarray:
        """Cell areas of the valid cells, normalised to mean one."""
        area = np.asarray(self.grid["cell_area"].values, dtype=float).ravel()[self.mask]
        return area / area.mean()

    def sample_dims(self, da: xr.DataArray) -> tuple[str, ...]:
        """Dims of ``da`` stacked into samples: every dim that is not horizontal."""
        return tuple(d for d in da.dims if d not in self.spatial_dims)


def to_matrix(da: xr.DataArray, layout: FieldLayout, dtype=np.float32) -> np.ndarray:
    """Stack ``da`` into a ``(n_samples, n_valid_cells)`` matrix.

    Samples run over the non-horizontal dims in the order they appear in ``da``
    (C order). A dask-backed array is computed chunk by chunk into the result.

    Parameters
    ----------
    da : xr.DataArray
        Field on the layout's grid.
    layout : FieldLayout
        Layout giving the horizontal dims and the valid cells.
    dtype : numpy dtype
        Dtype of the matrix.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> values = np.array([[[1.0, np.nan], [3.0, 4.0]], [[2.0, np.nan], [5.0, 6.0]]])
    >>> da = xr.DataArray(values, dims=("time", "lat", "lon"), name="pr",
    ...     coords={"lat": [0.0, 1.0], "lon": [0.0, 1.0]})
    >>> to_matrix(da, FieldLayout.from_data(da)).tolist()
    [[1.0, 3.0, 4.0], [2.0, 5.0, 6.0]]
    """
    sample = layout.sample_dims(da)
    ordered = da.transpose(*sample, *layout.spatial_dims)
    n_samples = int(np.prod([da.sizes[d] for d in sample])) if sample else 1
    if isinstance(ordered.data, np.ndarray):
        return _gather(ordered.data.reshape(n_samples, -1), layout.mask, dtype)
    flat = ordered.data.reshape(n_samples, -1)[:, layout.mask]
    return np.asarray(flat, dtype=dtype)


def from_matrix(
    matrix: np.ndarray,
    layout: FieldLayout,
    samples: Mapping[str, xr.DataArray | np.ndarray | int],
) -> xr.DataArray:
    """Lay a ``(n_samples, n_valid_cells)`` matrix back onto the layout's grid.

    Parameters
    ----------
    matrix : np.ndarray
        One row per sample, in C order over ``samples``; one column per valid cell.
    layout : FieldLayout
        The grid the columns belong to; invalid cells come back as NaN.
    samples : mapping
        The sample dims in order, each to its coordinate values, or to its size for a
        dim without coordinate (see :func:`sample_coords`).

    Examples
    --------
    >>> values = np.array([[[1.0, np.nan], [3.0, 4.0]], [[2.0, np.nan], [5.0, 6.0]]])
    >>> da = xr.DataArray(values, dims=("time", "lat", "lon"), name="pr",
    ...     coords={"lat": [0.0, 1.0], "lon": [0.0, 1.0]})
    >>> layout = FieldLayout.from_data(da)
    >>> back = from_matrix(to_matrix(da, layout), layout, sample_coords(da, layout))
    >>> back.equals(da)
    True
    """
    sizes = tuple(v if isinstance(v, int) else len(v) for v in samples.values())
    coords = {d: v for d, v in samples.items() if not isinstance(v, int)}
    full = _scatter(matrix, layout).reshape(sizes + layout.shape)
    out = xr.DataArray(full, dims=tuple(samples) + layout.spatial_dims, coords=coords)
    return _attach_grid(out, layout)


def sample_coords(da: xr.DataArray, layout: FieldLayout) -> dict[str, xr.DataArray | int]:
    """The sample dims of ``da`` in order, each to its coordinate (or size if it has none).

    Examples
    --------
    >>> da = xr.DataArray(np.zeros((2, 3, 2)), dims=("member", "lat", "lon"),
    ...     coords={"lat": [0.0, 1.0, 2.0], "lon": [0.0, 1.0]})
    >>> sample_coords(da, FieldLayout.from_data(da))
    {'member': 2}
    """
    return {d: (da[d] if d in da.coords else da.sizes[d]) for d in layout.sample_dims(da)}


def _runs(mask: np.ndarray) -> list[tuple[int, int, int]]:
    """``(start, stop, column)`` of each run of adjacent valid cells of a flat ``mask``.

    Cells ``start:stop`` of the grid are columns ``column:column + stop - start`` of
    the sample matrix. Copying run by run is 5-40 times faster than numpy's boolean
    column indexing, in either direction, even when the runs are a few cells long.

    Examples
    --------
    >>> _runs(np.array([True, True, False, True]))
    [(0, 2, 0), (3, 4, 2)]
    """
    edges = np.flatnonzero(np.diff(mask.astype(np.int8), prepend=0, append=0)).tolist()
    starts, stops = edges[::2], edges[1::2]
    columns = np.cumsum([0] + [b - a for a, b in zip(starts, stops, strict=True)]).tolist()
    return list(zip(starts, stops, columns, strict=False))


def _gather(flat: np.ndarray, mask: np.ndarray, dtype) -> np.ndarray:
    """Full flattened grids ``(n, mask.size)`` -> columns of the valid cells, as ``dtype``.

    Always a new array (``func`` of :func:`map_samples` may change its input).
    """
    matrix = np.empty((flat.shape[0], int(np.count_nonzero(mask))), dtype=dtype)
    for start, stop, column in _runs(mask):
        matrix[:, column : column + stop - start] = flat[:, start:stop]
    return matrix


def _scatter(matrix: np.ndarray, layout: FieldLayout) -> np.ndarray:
    """Columns of valid cells -> full flattened grid with NaN in invalid cells."""
    mask = layout.mask
    full = np.full((matrix.shape[0], mask.size), np.nan, dtype=matrix.dtype)
    for start, stop, column in _runs(mask):
        full[:, start:stop] = matrix[:, column : column + stop - start]
    return full


def _attach_grid(out: xr.DataArray, layout: FieldLayout) -> xr.DataArray:
    coords = {
        name: coord
        for name, coord in layout.grid.coords.items()
        if set(coord.dims) <= set(layout.spatial_dims)
    }
    return out.assign_coords(coords)


def map_samples(
    da: xr.DataArray,
    func: Callable[[np.ndarray], np.ndarray],
    source: FieldLayout,
    target: FieldLayout,
    dtype=np.float32,
) -> xr.DataArray:
    """Apply a sample-matrix function to ``da`` block by block, lazily for dask input.

    ``func`` maps a ``(n, source.n_features)`` matrix to ``(n, target.n_features)``;
    each block of ``da`` (one dask chunk along the sample dims, or the whole array) is
    stacked with ``source``, passed through ``func`` and laid onto ``target``'s grid.

    Parameters
    ----------
    da : xr.DataArray
        Input field on ``source``'s grid; any sample dims (time, member, ...).
    func : callable
        The model's matrix-to-matrix prediction.
    source, target : FieldLayout
        Layouts of the input and of the output field.
    dtype : numpy dtype
        Dtype of the output.

    Returns
    -------
    xr.DataArray
        Output on ``target``'s grid, with ``da``'s sample dims and coordinates; lazy
        when ``da`` is dask-backed.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.ones((3, 2, 2)), dims=("time", "lat", "lon"), name="psl",
    ...     coords={"lat": [0.0, 1.0], "lon": [0.0, 1.0]})
    >>> layout = FieldLayout.from_data(da)
    >>> out = map_samples(da.chunk(time=1), lambda m: 2 * m, layout, layout)
    >>> out.chunks is not None, float(out.sum())
    (True, 24.0)
    """
    sample = source.sample_dims(da)
    out_dims = tuple(f"__out_{d}" for d in target.spatial_dims)

    source_mask = source.mask

    def block(values: np.ndarray) -> np.ndarray:
        lead = values.shape[: len(sample)]
        matrix = _gather(values.reshape(-1, source_mask.size), source_mask, dtype)
        result = np.asarray(func(matrix), dtype=dtype)
        if result.shape != (matrix.shape[0], target.n_features):
            raise ValueError(
                f"model output has shape {result.shape}, expected "
                f"{(matrix.shape[0], target.n_features)}"
            )
        return _scatter(result, target).reshape(lead + target.shape)

    if da.chunks is not None:
        da = da.chunk(dict.fromkeys(source.spatial_dims, -1))
    ordered = da.transpose(*sample, *source.spatial_dims)
    out = xr.apply_ufunc(
        block,
        ordered,
        input_core_dims=[list(source.spatial_dims)],
        output_core_dims=[list(out_dims)],
        dask="parallelized",
        output_dtypes=[dtype],
        dask_gufunc_kwargs={"output_sizes": dict(zip(out_dims, target.shape, strict=True))},
        keep_attrs=False,
    )
    out = out.rename(dict(zip(out_dims, target.spatial_dims, strict=True)))
    return _attach_grid(out.drop_vars(list(source.spatial_dims), errors="ignore"), target)


def check_finite(matrix: np.ndarray, name: str) -> None:
    """Raise if a sample matrix holds NaN or inf (e.g. in a proxy field).

    Examples
    --------
    >>> check_finite(np.array([[np.nan, 1.0]]), "psl")
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: variable 'psl' has 1 non-finite value(s) in grid ...
    """
    bad = int(np.size(matrix) - np.count_nonzero(np.isfinite(matrix)))
    if bad:
        raise InputDataError(
            f"variable {name!r} has {bad} non-finite value(s) in grid cells the model "
            f"uses; fill or drop them"
        )
