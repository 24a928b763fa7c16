"""Between gridded DataArrays and sample matrices: stacking, NaN masks, chunked mapping.

A model sees a field as a matrix of shape ``(n_samples, n_cells)``: every dimension
that is not horizontal (time, member, any extra dim) is stacked into samples, and only
the grid cells that hold data (the field's NaN mask, e.g. land for gridded
observations) become columns. :class:`FieldLayout` remembers that mapping and the grid,
so a model's output matrix can be laid back onto the grid with every coordinate,
attribute and dimension order of the input.

:func:`map_model` applies a fitted model (matrices to a matrix) to fields block by
block: dask-backed input stays lazy, memory is bounded by the chunk, not by the
ensemble, and a block runs numpy and the model only. Stochastic realisations draw
each sample's noise from its member's label and its date
(:mod:`climlatent.draw_addresses`), so that they do not depend on the blocks, nor on
how an ensemble is split between runs.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import xarray as xr

from climlatent.dask_threads import shared_cores
from climlatent.draw_addresses import block_rows, draw_order, row_keys
from climlatent.draws import CONDITIONAL_DRAW, REALIZATION_DIM, BlockNormals, Draws, realizations
from climlatent.errors import ClimlatentError, InputDataError
from climlatent.graph_node import model_node
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
        return _ValidCells.of(layout.mask).gather(ordered.data.reshape(n_samples, -1), dtype)
    flat = ordered.data.reshape(n_samples, -1)[:, layout.mask]
    return np.asarray(flat, dtype=dtype)


def in_sample_order(da: xr.DataArray, sample_dims: Sequence[Hashable]) -> xr.DataArray:
    """``da`` with its sample dims first, in the order of ``sample_dims``.

    Fields whose matrices pair row by row (a proxy and its target, the drivers of a
    downscaling) must stack their samples in one order: `to_matrix` follows each
    field's own, and a proxy stored (time, member) beside a target stored (member,
    time) would pair one member's day with another's. The other dims keep their order.

    Examples
    --------
    >>> da = xr.DataArray(np.zeros((3, 2, 4, 5)), dims=("time", "member", "lon", "lat"))
    >>> in_sample_order(da, ("member", "time")).dims
    ('member', 'time', 'lon', 'lat')
    """
    return da.transpose(*(d for d in sample_dims if d in da.dims), ...)


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
    full = _ValidCells.of(layout.mask).scatter(matrix).reshape(sizes + layout.shape)
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


@dataclass(frozen=True)
class _ValidCells:
    """The valid cells of a flat mask, as the runs that map grid cells to matrix columns.

    Found once per layout and reused for every block of a map.
    """

    runs: list[tuple[int, int, int]]
    size: int  # cells of the grid
    count: int  # valid ones: the matrix columns

    @classmethod
    def of(cls, mask: np.ndarray) -> _ValidCells:
        return cls(_runs(mask), mask.size, int(np.count_nonzero(mask)))

    def gather(self, flat: np.ndarray, dtype) -> np.ndarray:
        """Full flattened grids ``(n, size)`` -> columns of the valid cells, as ``dtype``.

        Always a new array (a model may change its input).
        """
        matrix = np.empty((flat.shape[0], self.count), dtype=dtype)
        for start, stop, column in self.runs:
            matrix[:, column : column + stop - start] = flat[:, start:stop]
        return matrix

    def scatter(self, matrix: np.ndarray) -> np.ndarray:
        """Columns of valid cells -> full flattened grids with NaN in invalid cells.

        Each cell is written once: a run of valid cells from its columns, the gap
        before it with NaN (a fill of the whole grid first would write it twice).
        """
        full = np.empty((matrix.shape[0], self.size), dtype=matrix.dtype)
        end = 0
        for start, stop, column in self.runs:
            full[:, end:start] = np.nan
            full[:, start:stop] = matrix[:, column : column + stop - start]
            end = stop
        full[:, end:] = np.nan
        return full


def _attach_grid(out: xr.DataArray, layout: FieldLayout) -> xr.DataArray:
    """``out`` with the layout's grid coordinates.

    Without a ``bounds`` attribute naming a variable the layout does not keep (the
    input's, put back by `carry_provenance` when ``out`` is on the input grid).
    """
    coords = {}
    for name, coord in layout.grid.coords.items():
        if set(coord.dims) <= set(layout.spatial_dims):
            if coord.attrs.get("bounds", name) not in layout.grid.variables:
                coord = coord.copy(deep=False)
                coord.attrs = {k: v for k, v in coord.attrs.items() if k != "bounds"}
            coords[name] = coord
    return out.assign_coords(coords)


class RowModel(Protocol):
    """A fitted model as :func:`map_model` calls it: sample matrices in, one matrix out."""

    def _predict_rows(self, matrices: list[np.ndarray], groups: np.ndarray) -> np.ndarray:
        """``(n, target cells)`` from one ``(n, source cells)`` matrix per input field.

        ``groups`` holds each row's group (0 without groups); the model checks the
        values it needs finite, and raises naming the variable.
        """
        ...

    def _draw_rows(
        self, matrices: list[np.ndarray], groups: np.ndarray, normals: BlockNormals
    ) -> np.ndarray:
        """``(normals.n, n, target cells)`` stochastic realisations of the rows.

        The noise comes from ``normals(realization, stream, n_cells)`` only. Only
        models that draw (``map_model(..., draws=...)``) need it.
        """
        ...


def map_model(
    model: RowModel,
    fields: Sequence[xr.DataArray],
    source: FieldLayout,
    target: FieldLayout,
    groups: xr.DataArray | None = None,
    draws: Draws | None = None,
    precision: Callable[[], AbstractContextManager] | None = None,
) -> xr.DataArray:
    """A model over the samples of its input fields, lazily block by block for dask.

    Each block of the fields (one dask chunk along the sample dims, or the whole
    fields) is stacked into one matrix per field with ``source``, passed to
    ``model._predict_rows`` and laid onto ``target``'s grid. The fields are checked
    and in the fitted layout already (their coordinates were checked once, by the
    caller): a block runs numpy and the model, nothing else. On dask the model is
    one node of the graph (:func:`climlatent.graph_node.model_node`), and a block
    computed by a thread of dask's threaded scheduler shares the cores with the
    others (:func:`climlatent.dask_threads.shared_cores`).

    Parameters
    ----------
    model : RowModel
        The fitted model.
    fields : sequence of xr.DataArray
        The model's input fields on ``source``'s grid, with the same sample dims
        (time, member, ...); the first gives the output its sample coordinates.
    source, target : FieldLayout
        Layouts of the inputs and of the output.
    groups : xr.DataArray, optional
        The group of each sample (e.g. its month), on some of the sample dims (e.g.
        ``time``); 0 for every sample if None.
    draws : Draws, optional
        Stochastic realisations instead of the model's output: each is
        ``model._draw_rows``, whose noise comes from the seed, the realisation and
        each sample's position in the sample dims (the same numbers whatever the
        blocks).
    precision : callable, optional
        Makes the context each block's model call runs in, entered by the thread that
        computes the block: an estimator's mixed precision under ``amp``
        (:func:`climlatent.precision.amp_context`). A block whose output is not finite
        under it is refused (float16 overflowed or underflowed where float32 would not
        have).

    Returns
    -------
    xr.DataArray
        float32 output on ``target``'s grid with the sample dims and coordinates of
        ``fields[0]`` (after a ``realization`` dim, 0 to ``draws.n - 1``, with
        ``draws``); lazy when a field is dask-backed.

    Examples
    --------
    >>> class Twice:
    ...     def _predict_rows(self, matrices, groups):
    ...         return 2 * matrices[0] + groups[:, None]
    >>> da = xr.DataArray(np.ones((3, 2, 2)), dims=("time", "lat", "lon"), name="psl",
    ...     coords={"lat": [0.0, 1.0], "lon": [0.0, 1.0]})
    >>> layout = FieldLayout.from_data(da)
    >>> months = xr.DataArray([0, 1, 2], dims="time")
    >>> out = map_model(Twice(), [da.chunk(time=1)], layout, layout, months)
    >>> out.chunks is not None, out.sum(["lat", "lon"]).values.tolist()
    (True, [8.0, 12.0, 16.0])
    """
    sample = stored = source.sample_dims(fields[0])
    spatial = source.spatial_dims
    if draws is not None:  # rows addressed by member, date, then the other dims
        sample = draw_order(fields[0], sample)
        fields = [field.transpose(*sample, ...) for field in fields]
    coords = {k: c for k, c in fields[0].coords.items() if set(c.dims) <= set(sample)}
    samples = fields[0].isel(dict.fromkeys(spatial, 0), drop=True)  # the sample dims
    keys = None if draws is None else tuple(row_keys(samples))
    mapped = _MappedModel(
        model,
        _ValidCells.of(source.mask),
        len(spatial),
        _ValidCells.of(target.mask),
        target.shape,
        groups is not None,
        draws,
        precision,
        keys,
    )
    if all(field.chunks is None for field in fields):
        rows = None if groups is None else groups.broadcast_like(samples).transpose(*sample)
        data = mapped(
            *(field.transpose(*sample, *spatial).values for field in fields),
            *(() if rows is None else (rows.values,)),
        )
    else:
        data = _lazy_blocks(mapped, fields, groups, samples, spatial)
    if draws is not None:
        drawn = realizations(draws.n, CONDITIONAL_DRAW)
        sample, coords = (REALIZATION_DIM, *sample), {REALIZATION_DIM: drawn, **coords}
    out = xr.DataArray(data, dims=sample + target.spatial_dims, coords=coords)
    if draws is not None:
        out = out.transpose(REALIZATION_DIM, *stored, ...)
    return _attach_grid(out.rename(None), target)  # not the dask array's name


@dataclass(frozen=True, eq=False)
class _MappedModel:
    """A model and the layouts of its matrices: what every block of a map needs."""

    model: RowModel
    source: _ValidCells
    n_spatial: int  # the source's horizontal dims
    target: _ValidCells
    target_shape: tuple[int, ...]
    grouped: bool  # the last block holds the groups of the samples
    draws: Draws | None = None
    precision: Callable[[], AbstractContextManager] | None = None  # around the model
    keys: tuple[np.ndarray, ...] | None = None  # each sample dim's part of a row's address

    def __call__(self, *blocks: np.ndarray, offsets: tuple[int, ...] | None = None) -> np.ndarray:
        """The output for the field blocks ``(samples..., cells...)`` (and the groups).

        ``offsets``: where the block starts in the whole sample dims (default: the
        block is the whole).
        """
        lead = blocks[0].shape[: blocks[0].ndim - self.n_spatial]
        n = int(np.prod(lead))
        fields = blocks[:-1] if self.grouped else blocks
        groups = blocks[-1].reshape(n) if self.grouped else np.zeros(n, np.int64)
        matrices = [self.source.gather(block.reshape(n, -1), np.float32) for block in fields]
        if self.draws is None:
            with self._model_context():
                result = np.asarray(self.model._predict_rows(matrices, groups), dtype=np.float32)
            self._check_shape(result, (n, self.target.count))
            return self.target.scatter(result).reshape(lead + self.target_shape)
        rows = block_rows(self.keys, lead, offsets or (0,) * len(lead))
        normals = BlockNormals(self.draws, rows)
        with self._model_context():
            drawn = np.asarray(self.model._draw_rows(matrices, groups, normals), dtype=np.float32)
        self._check_shape(drawn, (self.draws.n, n, self.target.count))
        full = [self.target.scatter(realization) for realization in drawn]
        return np.stack(full).reshape((self.draws.n, *lead, *self.target_shape))

    def _model_context(self) -> AbstractContextManager:
        """What the model's call runs in: the precision's context, or nothing."""
        return self.precision() if self.precision else nullcontext()

    def _check_shape(self, result: np.ndarray, expected: tuple[int, ...]) -> None:
        if result.shape != expected:
            raise ValueError(f"model output has shape {result.shape}, expected {expected}")
        if self.precision and not np.isfinite(result).all():
            bad = result.size - np.count_nonzero(np.isfinite(result))
            raise ClimlatentError(
                f"amp: the model's output is not finite at {bad} of {result.size} values "
                "(float16 overflowed or underflowed); run it without amp"
            )


def _lazy_blocks(
    mapped: _MappedModel,
    fields: Sequence[xr.DataArray],
    groups: xr.DataArray | None,
    samples: xr.DataArray,
    spatial: tuple[str, ...],
) -> Any:
    """``mapped`` over the blocks of the fields (some dask-backed): a dask array.

    ``samples`` holds the fields' sample dims, which ``groups`` is broadcast to.
    """
    import dask.array

    fields = [_whole_cells(field, spatial) for field in fields]
    if len(fields) > 1:
        fields = list(xr.unify_chunks(*fields))
    sample = samples.dims
    arrays = [field.transpose(*sample, *spatial).data for field in fields]
    chunks = arrays[0].chunks[: len(sample)]
    if groups is not None:  # chunked along its own dims first: broadcast lazily
        own = {dim: fields[0].chunksizes[dim] for dim in groups.dims}
        rows = groups.chunk(own).broadcast_like(samples)
        rows = rows.transpose(*sample).data.rechunk(chunks)
        arrays.append(rows.reshape(rows.shape + (1,) * len(spatial)))  # dims as the fields
    out_chunks = chunks + tuple((size,) for size in mapped.target_shape)
    if mapped.draws is not None:
        out_chunks = ((mapped.draws.n,), *out_chunks)
    return dask.array.map_blocks(
        _task,
        *arrays,
        mapped=model_node(mapped),
        chunks=out_chunks,
        dtype=np.float32,
        meta=np.empty((0,) * len(out_chunks), np.float32),
    )


def _whole_cells(field: xr.DataArray, spatial: tuple[str, ...]) -> xr.DataArray:
    """``field`` on dask with each horizontal dim in one chunk.

    Rechunked only if it is not (a rechunk of a field with a cftime coordinate costs
    its tokenising: pickling every date).
    """
    if field.chunks is not None and all(len(field.chunksizes[dim]) == 1 for dim in spatial):
        return field
    return field.chunk(dict.fromkeys(spatial, -1))


def _task(*blocks: np.ndarray, mapped: _MappedModel, block_info: dict | None = None) -> np.ndarray:
    """One block as a dask task, on its share of the cores on a threaded scheduler.

    ``block_info`` (from dask) places the block in the sample dims, for draws.
    """
    offsets = None
    if mapped.draws is not None:
        output = block_info[None]
        sample = slice(1, len(output["shape"]) - len(mapped.target_shape))  # after realization
        offsets = tuple(start for start, _ in output["array-location"][sample])
    with shared_cores():
        return mapped(*blocks, offsets=offsets)


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
