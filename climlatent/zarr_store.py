"""Write a (possibly lazy) Dataset to a zarr store region by region, resumably.

A batch run over an ensemble can take hours; :func:`write_zarr` makes it restartable.
The store is created once (metadata, coordinates and the variables that do not vary
along the region dimensions), then filled region by region in order, a region being
one dask block along ``regions_dims`` (by default one member chunk by one time chunk);
the next region is computed while one is written. On a dask cluster (a
``distributed.Client``) a worker writes each region, reads it back and hashes it, and
only the checksums come to this process (:mod:`climlatent.store_cluster`).

A manifest inside the store, ``.climlatent_manifest.json``, records what produced the
data and its regions; it is written once, with the store::

    {"format": "climlatent-zarr-manifest-3", "climlatent_version": "0.1.0",
     "fingerprint": {"model": "LLAAE", "config_sha256": "..."},
     "layout": {"dims": {...}, "variables": {name: {"dims": [...], "dtype": ...}},
                "coords": {name: "sha256:..."}, "attrs": {name: "sha256:..."}},
     "inputs": {"dims": ..., "variables": ..., "coords": ..., "attrs": ...},
     "regions_dims": ["member", "time"], "region_variables": ["pr"],
     "regions": [{"member": [0, 1], "time": [0, 365]}, ...]}

How far the writing got is a log beside it, ``.climlatent_regions.jsonl``, one line
per region completed (:mod:`climlatent.store_log`); :func:`read_manifest` gives both
as one document. Until every region is written the store's global attributes say so
(``climlatent_incomplete``, :mod:`climlatent.store_status`): its pending regions read
as missing values. A region is marked complete only after its data is written and
read back for its checksum. A run killed at any point and restarted with the same call computes only
the regions not yet stored and ends with the same data as an uninterrupted run; a
completed region whose stored bytes no longer match their checksum is rewritten; a
store written from other data, by another model or by another tool is refused.

Given the ``inputs`` a store is computed from, the manifest also holds their layout
(sizes, coordinate and attribute hashes) and, per region, a checksum of the input
values read to compute it. A resume reads and hashes the input of every region it
skips again, and refuses to mix: an input whose content changed since the store was
started is named, and the store must be restarted (``overwrite=True``). No path is
part of the manifest, so a data folder moved together with its store still resumes.

A lock file in the store, ``.climlatent_lock``, holds the process and host writing it;
a second writer is refused, and the lock of a process that died on this host (a
``kill -9``) is taken over with a warning.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import itertools
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import dask
import numpy as np
import xarray as xr
import zarr
from tqdm.auto import tqdm

from climlatent._version import __version__
from climlatent.cf_encoding import cf_encode
from climlatent.errors import ClimlatentError, InputDataError, is_netcdf_error
from climlatent.io import PathLike, add_history
from climlatent.memory import release_free_memory
from climlatent.store_changes import leaf_changes, section_changes, untiled_regions
from climlatent.store_checksums import (
    changed_inputs,
    digest,
    input_block,
    input_checksum,
    is_intact,
    region_label,
    stored_checksum,
)
from climlatent.store_cluster import cluster_client, fill_on_cluster
from climlatent.store_lock import LOCK, StoreLockedError, acquire, new_record, release
from climlatent.store_log import PENDING, log_completed, log_regions, region_states
from climlatent.store_status import INCOMPLETE, NOTE, mark_store

MANIFEST = ".climlatent_manifest.json"
_FORMAT_PREFIX = "climlatent-zarr-manifest-"
MANIFEST_FORMAT = f"{_FORMAT_PREFIX}3"
# Version 2 of the zarr format: consolidated metadata and fixed-width strings are part
# of its specification, so every zarr reader opens the store.
ZARR_FORMAT = 2
_RESTART = "restart it with --overwrite (command line) or overwrite=True (Python)"
_LAYOUT_SECTIONS = ("dims", "variables", "coords", "attrs")
SOURCE_CHUNKS = ("chunks", "preferred_chunks")  # a source's chunking, not the store's


class StoreMismatchError(ClimlatentError, ValueError):
    """The target zarr store holds other data: another model, config, layout or input.

    A store is only ever resumed by the call that created it, on inputs of unchanged
    content; anything else could mix two models' output, or two inputs', in one store.
    """


class StoreWriteError(ClimlatentError, OSError):
    """The zarr store cannot be written: unwritable folder, full disk, missing parent."""


def write_zarr(
    ds: xr.Dataset,
    store: PathLike,
    regions_dims: Sequence[str] = ("member", "time"),
    chunks: Mapping[str, int] | None = None,
    *,
    fingerprint: str | dict,
    inputs: xr.Dataset | None = None,
    sources: Mapping[str, str] | None = None,
    overwrite: bool = False,
    verify: bool = True,
    progress: bool = True,
    call: str | None = None,
) -> Path:
    """Write ``ds`` to a zarr store region by region, resuming an interrupted run.

    A new store gets its metadata, coordinates, CF attributes (see
    :func:`climlatent.cf_encoding.cf_encode`) and a manifest first; then each region not yet
    complete is computed (``ds.isel(region).compute()``, the next one while a region
    is written, so memory is bounded by two regions), written, and marked complete in
    the manifest with a checksum of the stored bytes. Calling again with the same
    arguments after a crash, a ``kill -9`` or a full disk finishes the store; the
    result equals an uninterrupted run's byte for byte.

    Parameters
    ----------
    ds : xr.Dataset
        Data to write, typically lazy (dask-backed), e.g. the output of
        ``est.emulate(members)``.
    store : str or path-like
        Target store folder (conventionally ending in ``.zarr``). Its parent folder
        must exist.
    regions_dims : sequence of str
        Dimensions along which the store is split into regions, one region per dask
        block; dimensions absent from ``ds`` are ignored. Variables without any of
        these dimensions are written with the metadata.
    chunks : mapping, optional
        Chunks applied with ``ds.chunk(chunks)`` before writing; they become the
        zarr chunks and the regions. Without it the Dataset's own dask chunks are
        used (an in-memory Dataset is then one region: pass e.g. ``{"member": 1}``),
        a dim chunked unevenly in its largest chunk throughout.
    fingerprint : str or dict
        What produced ``ds`` (model name, config hash), any JSON-serialisable value.
        A store is resumed only with an equal fingerprint.
    inputs : xr.Dataset, optional
        The data ``ds`` is computed from, with the sizes of ``ds`` along the
        ``regions_dims`` it has. Its layout is recorded, and the data variables of
        each region are hashed as they are read; a resume hashes the input of the
        regions it skips again and refuses to mix an input whose content changed.
    sources : mapping of str to str, optional
        File of each label along a region dimension of ``inputs`` (e.g. member ->
        member file), to name a changed input by its file. Not recorded.
    overwrite : bool
        Replace a store written before by this function (another model, config or
        input) with a new one, instead of refusing it.
    verify : bool
        Before resuming, check the checksum of every completed region and rewrite
        those whose stored bytes differ (corrupt or partially overwritten chunks).
    progress : bool
        Show a progress bar over regions (``tqdm.auto``: a widget in Jupyter).
    call : str, optional
        What the store's ``history`` line records as the call that wrote it (e.g. the
        command line); default this function's call.

    Returns
    -------
    pathlib.Path
        The store, with consolidated metadata.

    Raises
    ------
    StoreMismatchError
        ``store`` exists but was written with another fingerprint, holds other
        variables, dimensions or coordinates, was started from other inputs or from
        inputs whose content changed since (the message names only what differs),
        or was not written by this function.
    StoreLockedError
        Another process is writing ``store`` (the message names it).
    StoreWriteError
        The store cannot be written (the message names it); regions written before
        stay complete and the next call resumes after them.

    Notes
    -----
    The metadata is consolidated when the store is created; region writes leave it
    unchanged. An empty folder at ``store`` counts as a new store; a new store that a
    refusal or error stops before any region is complete is removed (the folder given
    emptied), so that no output is left that holds nothing. On a dask cluster
    the workers write the regions: ``store`` must be on a file system they reach.

    Examples
    --------
    >>> import numpy as np, xarray as xr, tempfile, os
    >>> ds = xr.Dataset(
    ...     {"tas": (("member", "time"), np.arange(6.0).reshape(2, 3), {"units": "K"})},
    ...     coords={"member": ["r1", "r2"], "time": [0, 1, 2]},
    ... )
    >>> path = os.path.join(tempfile.mkdtemp(), "tas.zarr")
    >>> store = write_zarr(ds, path, chunks={"member": 1}, fingerprint={"model": "demo"})
    >>> xr.open_zarr(store)["tas"].values.tolist()
    [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    >>> write_zarr(ds, path, fingerprint={"model": "other"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    climlatent.zarr_store.StoreMismatchError: zarr store ... (model: demo -> other); refusing ...
    >>> _ = write_zarr(ds * 2, path, chunks={"member": 1}, fingerprint="doubled", overwrite=True)
    >>> xr.open_zarr(path)["tas"].values.tolist()
    [[0.0, 2.0, 4.0], [6.0, 8.0, 10.0]]
    """
    target = Path(store)
    fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True))
    call = call or f"write_zarr(ds, {target.name!r}, fingerprint={fingerprint})"
    encoded = _prepare(ds, chunks, call)
    fresh = _new_manifest(encoded, regions_dims, fingerprint, inputs)
    with _claim(target, encoded, fresh, overwrite) as manifest:
        if inputs is not None:
            _check_inputs(target, manifest, inputs, sources or {})
        _fill_regions(encoded, inputs, sources or {}, target, manifest, verify, progress)
    return target


def _prepare(ds: xr.Dataset, chunks: Mapping[str, int] | None, call: str) -> xr.Dataset:
    """CF-encode, chunk every variable evenly (as zarr stores), drop the source's chunking."""
    encoded = cf_encode(add_history(ds, call)).chunk(dict(chunks or {})).unify_chunks()
    uneven = {d: max(c) for d, c in encoded.chunks.items() if len(set(c[:-1])) > 1 or c[-1] > c[0]}
    encoded = encoded.chunk(uneven)
    for var in encoded.variables.values():
        var.encoding = {k: v for k, v in var.encoding.items() if k not in SOURCE_CHUNKS}
    return encoded


def _layout(ds: xr.Dataset) -> dict:
    """Dimensions, variables (dims, dtype), coordinate values and attributes, as JSON."""
    return {
        "dims": {str(dim): int(size) for dim, size in ds.sizes.items()},
        "variables": {
            str(name): {"dims": [str(dim) for dim in var.dims], "dtype": str(var.dtype)}
            for name, var in ds.variables.items()
        },
        "coords": {str(name): digest({str(name): ds[name].values}) for name in ds.coords},
        "attrs": {
            str(name): digest({str(name): np.array(json.dumps(var.attrs, default=str))})
            for name, var in ds.variables.items()
        },
    }


def _new_manifest(
    encoded: xr.Dataset,
    regions_dims: Sequence[str],
    fingerprint: object,
    inputs: xr.Dataset | None,
) -> dict:
    """The manifest of a new store for ``encoded``: every region pending."""
    dims = [dim for dim in regions_dims if dim in encoded.dims]
    names = [str(name) for name, var in encoded.data_vars.items() if set(var.dims) & set(dims)]
    if inputs is not None:
        differing = [d for d in dims if inputs.sizes.get(d, encoded.sizes[d]) != encoded.sizes[d]]
        if differing:
            raise ValueError(f"inputs differ from the Dataset in the size of {differing}")
    regions = itertools.product(*(_blocks(encoded, dim) for dim in dims)) if names else []
    return {
        "format": MANIFEST_FORMAT,
        "climlatent_version": __version__,
        "fingerprint": fingerprint,
        "layout": _layout(encoded),
        "inputs": None if inputs is None else _layout(inputs),
        "regions_dims": dims,
        "region_variables": names,
        "regions": [
            {"region": dict(zip(dims, bounds, strict=True)), **PENDING} for bounds in regions
        ],
    }


def _blocks(ds: xr.Dataset, dim: str) -> list[list[int]]:
    """``[start, stop]`` of each dask block of ``ds`` along ``dim``."""
    edges = np.cumsum((0, *ds.chunks.get(dim, (ds.sizes[dim],)))).tolist()
    return [[start, stop] for start, stop in itertools.pairwise(edges)]


@contextlib.contextmanager
def _claim(target: Path, encoded: xr.Dataset, fresh: dict, overwrite: bool) -> Iterator[dict]:
    """The manifest to fill (``fresh`` for a new store), the store locked meanwhile."""
    record = new_record()
    new_folder = not target.exists()
    new = new_folder or (target.is_dir() and not any(target.iterdir()))
    if not new:
        _read_manifest(target)  # refuse what write_zarr did not write before touching it
        with _writing(target):
            acquire(target, record)
    created = remove = False
    try:
        manifest = fresh
        if new or overwrite:
            _create_store(encoded, target, fresh, record, replace=not new)
            created = new
        else:
            manifest = read_manifest(target)  # again: it is ours to change now
            _check_store(target, manifest, fresh)
        yield manifest
    except BaseException:
        remove = created and _nothing_written(target)  # then no output to leave behind
        raise
    finally:
        release(target, record)
        if remove:  # a store this call made, refused before any region was written
            shutil.rmtree(target, ignore_errors=True)
            if not new_folder:
                target.mkdir()  # the empty folder the caller gave


def _nothing_written(target: Path) -> bool:
    """Whether the store ``target`` has no complete region (or no readable manifest)."""
    try:
        regions = read_manifest(target)["regions"]
    except (ClimlatentError, OSError, ValueError):
        return True
    return not any(entry["status"] == "complete" for entry in regions)


def read_manifest(store: PathLike) -> dict:
    """The manifest of a store written by :func:`write_zarr`, with each region's state.

    The manifest file's document, its ``"regions"`` each given the state its last line
    in the regions log says (``"pending"`` without one): ``{"region": {dim: [start,
    stop]}, "status": "complete" | "pending", "checksum", "input_checksum",
    "completed_at"}``.

    Parameters
    ----------
    store : str or path-like
        A zarr store written by :func:`write_zarr`.

    Returns
    -------
    dict
        The manifest (see the module docstring); a store of an older format as its
        manifest file holds it.

    Raises
    ------
    StoreMismatchError
        ``store`` has no manifest :func:`write_zarr` wrote.

    Examples
    --------
    >>> import numpy as np, xarray as xr, tempfile, os
    >>> ds = xr.Dataset({"tas": (("member", "time"), np.zeros((2, 3)))},
    ...     coords={"member": ["r1", "r2"], "time": [0, 1, 2]})
    >>> path = os.path.join(tempfile.mkdtemp(), "tas.zarr")
    >>> _ = write_zarr(ds, path, chunks={"member": 1}, fingerprint="demo", progress=False)
    >>> [(e["region"]["member"], e["status"]) for e in read_manifest(path)["regions"]]
    [([0, 1], 'complete'), ([1, 2], 'complete')]
    """
    target = Path(store)
    manifest = _read_manifest(target)
    if manifest["format"] != MANIFEST_FORMAT:
        return manifest
    return {**manifest, "regions": region_states(target, manifest["regions"])}


def _read_manifest(target: Path) -> dict:
    """The manifest file of a store written by :func:`write_zarr`; refuse anything else."""
    try:
        manifest = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
        if manifest["format"].startswith(_FORMAT_PREFIX):
            return manifest
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    raise StoreMismatchError(
        f"{str(target)!r} exists and was not written by write_zarr (no readable "
        f"{MANIFEST}); refusing to write into it"
    )


def _check_store(target: Path, manifest: dict, fresh: dict) -> None:
    """Refuse to resume a store unless this call, on these inputs, started it."""
    refusal = f"zarr store {str(target)!r}"
    if manifest["format"] != MANIFEST_FORMAT:
        refusal += f" was written in the format {manifest['format']}, not {MANIFEST_FORMAT}"
    elif changes := "; ".join(leaf_changes(manifest["fingerprint"], fresh["fingerprint"])):
        refusal += f" was written with another fingerprint ({changes})"
    elif changes := section_changes(manifest["layout"], fresh["layout"], _LAYOUT_SECTIONS):
        refusal += f" holds other data than the Dataset given (differing {changes})"
    elif changes := section_changes(
        manifest["inputs"] or {}, fresh["inputs"] or {}, _LAYOUT_SECTIONS
    ):
        refusal += f" was started from other inputs (differing {changes})"
    elif problem := untiled_regions(manifest):
        refusal += f" has a manifest that does not cover its data: {problem}"
    else:
        return
    raise StoreMismatchError(
        f"{refusal}; refusing to append to it (write to a new store, or {_RESTART})"
    )


def _check_inputs(
    target: Path, manifest: dict, inputs: xr.Dataset, sources: Mapping[str, str]
) -> None:
    """Refuse to resume when the input of a completed region reads differently now."""
    changed = changed_inputs(manifest, inputs, sources)
    if changed:
        named = "; ".join(f"{label}: content changed" for label in changed[:3])
        more = f" (and {len(changed) - 3} more)" if len(changed) > 3 else ""
        raise StoreMismatchError(
            f"zarr store {str(target)!r}: {named}{more} since the store was started; "
            f"refusing to mix old and new inputs ({_RESTART})"
        )


def _create_store(
    encoded: xr.Dataset, target: Path, manifest: dict, record: str, replace: bool
) -> None:
    """Write metadata, coordinates and region-less variables, with the manifest and lock.

    The skeleton is written in a private folder beside the target and renamed into
    place with its manifest and this call's lock, so that a store never exists
    without them; a store replaced is moved into that folder and deleted with it.
    """
    names = manifest["region_variables"]
    # Everything but the region variables is written now, with the metadata.
    skeleton = encoded.drop_vars(names).compute().assign({name: encoded[name] for name in names})
    skeleton.attrs[INCOMPLETE] = NOTE
    with _writing(target):
        workdir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            tmp = workdir / target.name
            skeleton.to_zarr(
                tmp, compute=False, consolidated=True, mode="w-", zarr_format=ZARR_FORMAT
            )
            _save_manifest(tmp, manifest)
            (tmp / LOCK).write_text(record, encoding="utf-8")
            if replace:
                os.replace(target, workdir / "replaced")
            try:
                os.replace(tmp, target)
            except OSError as err:
                if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                raise StoreLockedError(
                    f"zarr store {str(target)!r} was just created by another writer; "
                    "refusing to write it too"
                ) from err
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def _fill_regions(
    encoded: xr.Dataset,
    inputs: xr.Dataset | None,
    sources: Mapping[str, str],
    target: Path,
    manifest: dict,
    verify: bool,
    progress: bool,
) -> None:
    """Compute, write and mark complete every region not (intact and) complete.

    ``sources``: the file of each member label of ``inputs``, named when one cannot be
    read.
    """
    variables = manifest["layout"]["variables"]
    var_dims = {name: variables[name]["dims"] for name in manifest["region_variables"]}
    with _writing(target):
        # Temporary files of a chunk write that a killed run left behind.
        for leftover in target.rglob("*.partial"):
            leftover.unlink()
    group = zarr.open_group(str(target), mode="r", zarr_format=ZARR_FORMAT)
    todo = [
        (index, entry)
        for index, entry in enumerate(manifest["regions"])
        if entry["status"] != "complete" or (verify and not is_intact(group, var_dims, entry))
    ]
    corrupt = [index for index, entry in todo if entry["status"] == "complete"]
    if corrupt:
        warnings.warn(
            f"zarr store {str(target)!r}: {len(corrupt)} completed region(s) no longer match "
            f"their checksum and are rewritten: "
            f"{[manifest['regions'][index]['region'] for index in corrupt]}",
            RuntimeWarning,
            stacklevel=3,
        )
        with _writing(target):
            log_regions(target, [{"region": index, "status": "pending"} for index in corrupt])
    total = len(manifest["regions"])
    if todo:  # resumed, or completed regions found corrupt
        with _writing(target):
            mark_store(target, True)

    def region(entry: dict) -> tuple[xr.Dataset, xr.Dataset | None]:
        block = encoded[list(var_dims)].isel(_slices(entry["region"]))
        read = None if inputs is None else input_block(inputs, entry["region"])
        return block.drop_vars(list(block.coords)), read

    def compute(entry: dict) -> tuple[xr.Dataset, xr.Dataset | None]:
        # One computation: the input is read once, for the model and for its checksum.
        try:
            return dask.compute(*region(entry))
        except (RuntimeError, InputDataError) as err:  # a file unread, or data refused
            if isinstance(err, RuntimeError) and not is_netcdf_error(err):
                raise
            where = "" if inputs is None else region_label(inputs, entry["region"], sources)
            doing = "reading the inputs of" if isinstance(err, RuntimeError) else "in"
            raise InputDataError(f"{doing} {where or 'a region'}: {err}") from err

    with tqdm(total=total, initial=total - len(todo), unit="region", disable=not progress) as bar:

        def mark(index: int, checksums: dict[str, str | None]) -> None:
            with _writing(target):
                log_completed(target, index, checksums)
            bar.update()

        client = cluster_client()
        if client is not None:  # each region written by a worker: only its checksums come here
            store_region = dask.delayed(_store_region, pure=False)
            tasks = (
                (index, store_region(*region(entry), str(target), entry["region"], var_dims))
                for index, entry in todo
            )
            fill_on_cluster(client, tasks, mark)
        else:
            _fill_in_order(todo, compute, target, var_dims, mark)
    with _writing(target):
        mark_store(target, False)


def _fill_in_order(
    todo: list[tuple[int, dict]], compute: Callable, target: Path, var_dims: dict, mark: Callable
) -> None:
    """Compute and write the regions ``todo`` here, in order; ``mark`` each complete.

    The next region is computed while this one is written, read back and hashed
    (about as long as computing it, for a fine output grid): two regions are held at a
    time. Regions still complete in order: one whose computation fails is raised after
    the region before it is marked complete, and nothing after it is. Regions are
    computed in the calling thread: in a new thread each call, dask's threaded
    scheduler made a pool for it and kept it (by an ``atexit`` hook) call after call.
    """
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="climlatent") as writer:
        writing = None  # the region being written: its index and future checksums
        for index, entry in todo:
            try:
                block, read = compute(entry)
            finally:  # the region before is complete (or raises) first
                if writing is not None:
                    mark(writing[0], writing[1].result())
                    release_free_memory()  # what the region freed, back to the system
            store = (block, read, str(target), entry["region"], var_dims)
            writing = index, writer.submit(_store_region, *store)
            del block, read, store
        if writing is not None:
            mark(writing[0], writing[1].result())


def _slices(region: dict) -> dict[str, slice]:
    return {dim: slice(*bounds) for dim, bounds in region.items()}


def _store_region(
    block: xr.Dataset, read: xr.Dataset | None, target: str, region: dict, var_dims: dict
) -> dict[str, str | None]:
    """Write a computed region and read it back: the checksums of its stored and input data.

    On a cluster a worker runs it, where the region was computed.
    """
    with _writing(Path(target)):
        # mode "r+" reads the consolidated metadata and leaves all metadata as is.
        block.to_zarr(target, region=_slices(region), mode="r+", consolidated=True)
        group = zarr.open_group(target, mode="r", zarr_format=ZARR_FORMAT)
        return {
            "checksum": stored_checksum(group, var_dims, region),
            "input_checksum": None if read is None else input_checksum(read),
        }


def _save_manifest(store: Path, manifest: dict) -> None:
    """Write the manifest file of a new store: its regions without their state."""
    regions = [entry["region"] for entry in manifest["regions"]]
    with open(store / MANIFEST, "w", encoding="utf-8") as file:
        json.dump({**manifest, "regions": regions}, file, indent=1)
        file.flush()
        os.fsync(file.fileno())


@contextlib.contextmanager
def _writing(store: Path) -> Iterator[None]:
    """Turn an ``OSError`` while writing into a :class:`StoreWriteError` naming the store."""
    try:
        yield
    except OSError as err:
        raise StoreWriteError(f"cannot write zarr store {str(store)!r}: {err}") from err
