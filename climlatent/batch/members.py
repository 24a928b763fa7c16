"""Member files opened lazily as one ensemble Dataset, checked to share one grid."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from climlatent.errors import InputDataError
from climlatent.grid import (
    GridInfo,
    check_same_grid,
    find_grid,
    find_member,
    find_time,
    scalar_member,
)
from climlatent.grid_order import canonical_order
from climlatent.io import PathLike, SharedTimeAxis, carry_provenance, glob_matches, open_dataset
from climlatent.units import units_quantity

#: Member files a batch run holds open at once (xarray's file cache): each open netCDF
#: file keeps about 1 MB, and a region reads one member.
OPEN_FILES = 8


def open_members(
    inputs: PathLike | Sequence[PathLike],
    variables: Sequence[str],
    members: Sequence[Hashable] | None = None,
    time_chunk: int = 365,
) -> xr.Dataset:
    """Open ensemble members lazily, combined along a member dimension.

    Parameters
    ----------
    inputs : path, glob, ``"catalog.yaml#entry"``, or a sequence of them
        Sources of one or more members each. A source with a member dimension (found
        through CF metadata) keeps its labels; any other is one member named after
        its file, or, when every source is one member with a scalar member coordinate
        (a CMIP file's ``realization``, found as `~climlatent.grid.scalar_member`
        finds it) of one name and distinct values, labelled by its value. The files
        of a glob are taken in natural order (``r2`` before ``r10``).
    variables : sequence of str
        Variables to keep (the model's inputs).
    members : sequence of str or int, optional
        Labels of the members to keep, in this order (default: all). A string selects
        a numbered member by its number (``"2"`` the member labelled ``2``).
    time_chunk : int
        Time steps per dask chunk; a chunk holds one member and the whole grid.

    Returns
    -------
    xr.Dataset
        ``variables``, dask-backed, with the member dimension first.

    Raises
    ------
    FileNotFoundError
        A file, glob or catalog does not exist (the message names it).
    InputDataError
        A source lacks a variable, has another grid, time axis or units than the
        first, repeats a member, or a requested member is absent (the message names
        it).

    Notes
    -----
    A scalar member coordinate that does not label the members (values repeated) is
    kept as a coordinate along the member dimension, each member's own value; as a
    scalar only if every source has the same value; dropped if some source lacks it.
    The first member's scalar value never stands for the others'.

    Close the ensemble (or open it in a ``with`` block) before its files are opened
    again, by another ``open_members`` or a batch writer: with netCDF4 1.7 (netCDF-C
    4.10, HDF5 2.2) a file held open by xarray and opened, closed and opened again
    crashes the process in netCDF-C (pydata/xarray#8289), whatever climlatent does.

    Examples
    --------
    >>> import climlatent as cl, tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> ds = cl.datasets.synthetic_circulation(n_members=3, n_years=1, n_lat=4, n_lon=4)
    >>> for m in ds.member.values:
    ...     _ = cl.io.to_netcdf(ds.sel(member=[m]), os.path.join(folder, f"{m}.nc"))
    >>> ens = open_members(os.path.join(folder, "*.nc"), ["psl"], time_chunk=100)
    >>> ens["psl"].sizes["member"], ens["psl"].data.chunksize
    (3, (1, 100, 4, 4))
    >>> ens.close()  # or: with open_members(...) as ens:
    """
    return _open_members(inputs, variables, members, time_chunk)[0]


def _open_members(
    inputs: PathLike | Sequence[PathLike],
    variables: Sequence[str],
    members: Sequence[Hashable] | None,
    time_chunk: int,
) -> tuple[xr.Dataset, dict[str, str]]:
    """As :func:`open_members`, with the source (file or entry) of each member label."""
    sources = _expand(inputs)
    time_coder = SharedTimeAxis()  # the members' common time axis decoded once
    with contextlib.ExitStack() as files:
        parts, found, scalars, first_grid = [], [], [], None
        for source in sources:
            ds = open_dataset(source, chunks=None, time_coder=time_coder)
            # Only the file's closer is kept, not the Dataset: its decoded time axis
            # would otherwise stay in memory once per member.
            if ds._close is not None:
                files.callback(ds._close)
            found.append(find_member(ds))
            dim = found[-1] or "member"
            scalar = None if found[-1] else scalar_member(ds)
            scalars.append(None if scalar is None else (scalar, ds[scalar].values.item()))
            part, grid = _member_part(source, ds, variables, dim, time_chunk)
            first_grid = first_grid or grid
            if parts:
                _check_like(sources[0], parts[0], source, part, variables[0], (first_grid, grid))
                _check_other_grids(sources[0], parts[0], source, part, variables, dim, first_grid)
                _check_units(sources[0], parts[0], source, part, variables)
                # Equal to the first member's: the first's stand for all.
                part = part.drop_vars(
                    [name for name, coord in part.coords.items() if dim not in coord.dims]
                )
            parts.append(part)
        parts, seen = _with_scalar_labels(parts, scalars), {}
        for source, part, dim in zip(sources, parts, found, strict=True):
            for label in part[dim or "member"].values.tolist():
                if label in seen:
                    raise InputDataError(
                        f"member {label!r} is in both {seen[label]!r} and {source!r}"
                    )
                seen[label] = source
        member_dim = next((dim for dim in found if dim), "member")
        combined = xr.concat(
            [
                part.rename({dim or "member": member_dim})
                for part, dim in zip(parts, found, strict=True)
            ],
            member_dim,
            data_vars="all",
            coords="minimal",
            compat="override",
            join="override",
        )
        # A member file's own attributes (variant_label, tracking_id) would stand for
        # every member: only those all the files share are kept, and the first file's
        # history (its lines' times differ from file to file).
        combined.attrs = {
            key: value
            for key, value in parts[0].attrs.items()
            if key == "history"
            or all(key in part.attrs and _same(part.attrs[key], value) for part in parts)
        }
        if members is not None:
            if not list(members):  # no member: a store of none was written
                raise InputDataError(f"members selects none; the inputs hold {list(seen)}")
            labels = [_as_label(label, combined[member_dim].dtype) for label in members]
            missing = [label for label in labels if label not in seen]
            if missing:
                raise InputDataError(f"member(s) {missing} not found; the inputs hold {list(seen)}")
            repeated = sorted({label for label in labels if labels.count(label) > 1})
            if repeated:
                raise InputDataError(f"members names {repeated} more than once")
            combined = combined.sel({member_dim: labels})
        # A fresh token, as in _member_part: dask would hash the (cftime) time index by
        # pickling it (0.03-0.3 s).
        combined = combined.chunk({member_dim: 1}, token=uuid.uuid4().hex)
        # The files close with the result, not at a garbage collection that may run
        # while netCDF-C opens the same file (which crashes it).
        combined.set_close(files.pop_all().close)
    return combined, seen


def _as_label(label: Hashable, dtype: np.dtype) -> Hashable:
    """``label`` read as a member label of ``dtype``: a numeric label from a string.

    A command line gives ``--members 2`` as ``"2"``; members numbered ``1, 2, 3`` (a
    numbered member dim, or CMIP's ``realization``) are labelled by integers. A string
    that is not a number of ``dtype`` is kept (and then not found among the labels).

    Examples
    --------
    >>> _as_label("2", np.dtype("int32")), _as_label("2.5", np.dtype("int64"))
    (2, '2.5')
    >>> _as_label("2", np.dtype("float64")), _as_label("r2i1p1f1", np.dtype("<U8"))
    (2.0, 'r2i1p1f1')
    """
    if not isinstance(label, str) or dtype.kind not in "iuf":
        return label
    try:
        return np.array(label).astype(dtype).item()
    except ValueError:
        return label


def _with_scalar_labels(
    parts: list[xr.Dataset], scalars: list[tuple[str, object] | None]
) -> list[xr.Dataset]:
    """The one-member ``parts`` labelled by their scalar member coordinates, if they can be.

    ``scalars``: each source's scalar member coordinate, ``(name, value)``, or None
    (a source with a member dim, or none). Only the first part holds its scalar.
    Values of one name, distinct: the labels along ``member``; repeated: a coordinate
    along it; the same in every source: the first's stands for all; a source without:
    none (`open_members`, Notes).

    Examples
    --------
    >>> parts = [xr.Dataset(coords={"member": [f]}) for f in ("a", "b")]
    >>> parts[0] = parts[0].assign_coords(realization=1)
    >>> both = _with_scalar_labels(parts, [("realization", 1), ("realization", 2)])
    >>> [part.member.values.tolist() for part in both], "realization" in both[0].coords
    ([[1], [2]], False)
    >>> repeated = _with_scalar_labels(parts * 2, [("realization", 1), ("realization", 2)] * 2)
    >>> [part.realization.values.tolist() for part in repeated]
    [[1], [2], [1], [2]]
    """
    names = {scalar[0] for scalar in scalars if scalar is not None}
    if None in scalars or len(names) != 1:
        return [part.drop_vars(names, errors="ignore") for part in parts]
    (name,), values = names, [scalar[1] for scalar in scalars]
    if len(set(values)) == len(values):
        return [
            part.drop_vars(name, errors="ignore").assign_coords(member=[value])
            for part, value in zip(parts, values, strict=True)
        ]
    if len(set(values)) == 1 or name == "member":  # "member": replaced by the file's name
        return parts
    return [
        part.drop_vars(name, errors="ignore").assign_coords({name: ("member", [value])})
        for part, value in zip(parts, values, strict=True)
    ]


def _expand(inputs: PathLike | Sequence[PathLike]) -> list[str]:
    """Sources as strings, globs replaced by their matches in natural order (r2, r10)."""
    sources = []
    for item in map(str, [inputs] if isinstance(inputs, str | os.PathLike) else inputs):
        matches = [item] if "#" in item else glob_matches(item)
        if not matches:
            raise FileNotFoundError(f"no file matches {item!r}")
        sources.extend(matches)
    return sources


def _member_part(
    source: str, ds: xr.Dataset, variables: Sequence[str], member_dim: str, time_chunk: int
) -> tuple[xr.Dataset, GridInfo]:
    """The source's ``variables``, chunked, with ``member_dim`` (added or renamed).

    Also returns the grid of the first variable (its horizontal dims are one chunk),
    found once per member.
    """
    missing = [name for name in variables if name not in ds.data_vars]
    if missing:
        raise InputDataError(
            f"{source!r} has no variable {', '.join(map(repr, missing))} (data variables: "
            f"{', '.join(map(str, ds.data_vars)) or 'none'})"
        )
    part = carry_provenance(ds[list(variables)], ds)  # with their time and grid bounds
    grid = find_grid(part[variables[0]], variables[0])
    chunks = dict.fromkeys(grid.spatial_dims, -1)
    time = find_time(part)
    if time is not None:
        chunks[time] = time_chunk
    # A fresh token names the chunks: dask would otherwise hash the lazily indexed file
    # arrays by pickling them (0.2 s per member file).
    part = part.chunk(chunks, token=uuid.uuid4().hex)
    found = find_member(part)
    if found is None:
        label = source.rsplit("#", 1)[-1] if "#" in source else Path(source.rstrip("/")).stem
        return part.expand_dims({member_dim: [label]}), grid
    part = part.rename({found: member_dim}) if found != member_dim else part
    return part.transpose(member_dim, ...), grid


def _check_like(
    first: str,
    reference: xr.Dataset,
    source: str,
    part: xr.Dataset,
    name: str,
    grids: tuple[GridInfo, GridInfo],
) -> None:
    """Raise naming ``source`` unless it has the grid and time axis of ``first``.

    ``grids``: the grids of ``name`` in ``first`` and in ``source``.
    """
    refusal = f"member file {source!r} is on a different grid than {first!r}"
    try:
        check_same_grid(reference[name], part[name], name, grids=grids, refusal=refusal)
    except InputDataError as err:
        try:  # the same cells in another order: no regridding needed
            canonical_order(part[name], reference[name], name)
        except InputDataError:
            raise err from None
        raise InputDataError(
            f"{refusal}: the same cells in another order; reorder it like the first: "
            f"ds = {_reordered(reference, part, grids)}"
        ) from err
    time = find_time(reference)
    if time is not None and not (
        time in part.indexes and reference.indexes[time].equals(part.indexes[time])
    ):
        raise InputDataError(
            f"member file {source!r} is on a different time axis than {first!r}; "
            "members must share one time axis"
        )


def _reordered(reference: xr.Dataset, part: xr.Dataset, grids: tuple[GridInfo, GridInfo]) -> str:
    """The expression that puts the cells of ``part`` in the order of ``reference``'s.

    Both hold the same cells, each coordinate monotonic: ``part``'s latitudes may run
    the other way, its longitudes in another convention (relabelled into the range
    of ``reference``'s) or the other way.
    """
    (ref, new), steps = grids, []
    for coord, other in ((ref.lat, new.lat), (ref.lon, new.lon)):
        theirs, ours = (
            np.asarray(ds[c].values, float) for ds, c in ((reference, coord), (part, other))
        )
        if coord == ref.lon and not np.allclose(np.sort(theirs), np.sort(ours)):
            start = float(theirs.min())  # the first's range is [start, start + 360)
            steps.append(f".assign_coords({other}=(ds[{other!r}] - {start!r}) % 360 + {start!r})")
            ours = (ours - start) % 360 + start
        ascending = bool(theirs.size < 2 or theirs[1] > theirs[0])
        if not np.array_equal(np.sort(ours) if ascending else np.sort(ours)[::-1], ours):
            steps.append(f".sortby({other!r}, ascending={ascending})")
    return "ds" + "".join(steps)


def _check_other_grids(
    first: str,
    reference: xr.Dataset,
    source: str,
    part: xr.Dataset,
    variables: Sequence[str],
    member_dim: str,
    first_grid: GridInfo,
) -> None:
    """Raise naming ``source`` unless every variable is on the grid it has in ``first``.

    `_check_like` checks the first variable's grid; the members are then concatenated
    with the first file's coordinates standing for all (``join="override"``), so a
    variable on another grid (a proxy on its own coarse dims, stored north to south in
    one file) would otherwise take the first file's labels, its cells paired by
    position. Any other shared index (a vertical level, a mode) must be equal.
    """
    checked = set(first_grid.spatial_dims)
    samples = {member_dim, find_member(reference), find_time(reference)}
    for name in variables[1:]:
        if set(reference[name].dims) <= checked | samples:
            continue  # on the grid checked already (no grid discovery: once per file)
        try:
            grid = find_grid(reference[name], name)
        except InputDataError:  # not gridded (a time series): its dims are compared below
            continue
        if set(grid.spatial_dims) <= checked:
            continue
        try:
            _check_like(first, reference, source, part, name, (grid, find_grid(part[name], name)))
        except InputDataError as err:
            raise InputDataError(f"variable {name!r}: {err}") from err
        checked |= set(grid.spatial_dims)
    for dim, index in reference.indexes.items():
        if dim in checked or dim in samples:
            continue
        if dim not in part.indexes or not index.equals(part.indexes[dim]):
            raise InputDataError(
                f"member file {source!r} has other {dim!r} coordinate values than {first!r}; "
                f"members must share them (select or reorder it like the first)"
            )


def _check_units(
    first: str, reference: xr.Dataset, source: str, part: xr.Dataset, variables: Sequence[str]
) -> None:
    """Raise naming ``source`` and the variable unless its units are those of ``first``.

    The members are read as one variable, in the first member's units: a member in
    ``hPa`` beside one in ``Pa`` would be read 100 times too small.
    """
    for name in variables:
        ours, theirs = (ds[name].attrs.get("units") for ds in (reference, part))
        if ours == theirs:
            continue
        try:
            same = None not in (ours, theirs) and units_quantity(ours) == units_quantity(theirs)
        except InputDataError:
            same = False
        if not same:
            raise InputDataError(
                f"variable {name!r} of member file {source!r} is in {theirs!r}, but in "
                f"{ours!r} in {first!r}; members must share their units (convert the file)"
            )


def _same(a: object, b: object) -> bool:
    """Whether two attribute values are equal (arrays element by element)."""
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))
