"""Write a (possibly lazy) Dataset to a zarr store region by region, resumably.

A batch run over an ensemble can take hours; :func:`write_zarr` makes it restartable.
The store is created once (metadata, coordinates and the variables that do not vary
along the region dimensions), then filled one region at a time, a region being one
dask block along ``regions_dims`` (by default one member chunk by one time chunk).

A manifest inside the store, ``.climlatent_manifest.json``, records what produced the
data and how far the writing got::

    {"format": "climlatent-zarr-manifest-1", "climlatent_version": "0.1.0",
     "fingerprint": {"model": "LLAAE", "config_sha256": "..."},
     "layout": {"dims": {...}, "variables": {name: {"dims": [...], "dtype": ...}},
                "coords": {name: "sha256:..."}},
     "regions_dims": ["member", "time"], "region_variables": ["pr"],
     "regions": [{"region": {"member": [0, 1], "time": [0, 365]},
                  "status": "complete", "checksum": "sha256:...",
                  "completed_at": "2026-01-01T00:00:00Z"}, ...]}

The manifest is replaced atomically, and a region is marked complete only after its
data is written and read back for its checksum. A run killed at any point and
restarted with the same call computes only the regions not yet stored and ends with
the same bytes as an uninterrupted run; a completed region whose stored bytes no
longer match their checksum is rewritten; a store written from other data, by another
model or by another tool is refused.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import itertools
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from tqdm.auto import tqdm

from climlatent._version import __version__
from climlatent.errors import ClimlatentError
from climlatent.io import PathLike, add_history, cf_encode

MANIFEST = ".climlatent_manifest.json"
MANIFEST_FORMAT = "climlatent-zarr-manifest-1"
# Version 2 of the zarr format: consolidated metadata and fixed-width strings are part
# of its specification, so every zarr reader opens the store.
ZARR_FORMAT = 2


class StoreMismatchError(ClimlatentError, ValueError):
    """The target zarr store holds other data: another model, config or layout.

    A store is only ever resumed by the call that created it; anything else could mix
    two models' output in one store.
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
    verify: bool = True,
    progress: bool = False,
) -> Path:
    """Write ``ds`` to a zarr store region by region, resuming an interrupted run.

    A new store gets its metadata, coordinates, CF attributes (see
    :func:`climlatent.io.cf_encode`) and a manifest first; then each region not yet
    complete is computed (``ds.isel(region).compute()``, so memory is bounded by one
    region), written, and marked complete in the manifest with a checksum of the
    stored bytes. Calling again with the same arguments after a crash, a ``kill -9``
    or a full disk finishes the store; the result equals an uninterrupted run's byte
    for byte.

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
        used (an in-memory Dataset is then one region: pass e.g. ``{"member": 1}``).
    fingerprint : str or dict
        What produced ``ds`` (model name, config hash, input description), any
        JSON-serialisable value. A store is resumed only with an equal fingerprint.
    verify : bool
        Before resuming, check the checksum of every completed region and rewrite
        those whose stored bytes differ (corrupt or partially overwritten chunks).
    progress : bool
        Show a progress bar over regions.

    Returns
    -------
    pathlib.Path
        The store, with consolidated metadata.

    Raises
    ------
    StoreMismatchError
        ``store`` exists but was written with another fingerprint, holds other
        variables, dimensions or coordinates, or was not written by this function.
    StoreWriteError
        The store cannot be written (the message names it); regions written before
        stay complete and the next call resumes after them.

    Notes
    -----
    The metadata is consolidated when the store is created; region writes leave it
    unchanged. One process writes a store at a time. An empty folder at ``store``
    counts as a new store.

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
    climlatent.zarr_store.StoreMismatchError: zarr store '...' was written with ...
    """
    target = Path(store)
    fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True))
    encoded = _prepare(ds, chunks, f"write_zarr(ds, {target.name!r}, fingerprint={fingerprint})")
    layout = _layout(encoded)
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        manifest = _create_store(encoded, target, regions_dims, fingerprint, layout)
    else:
        manifest = _check_store(target, fingerprint, layout)
    _fill_regions(encoded, target, manifest, verify, progress)
    return target


def _prepare(ds: xr.Dataset, chunks: Mapping[str, int] | None, call: str) -> xr.Dataset:
    """CF-encode, chunk every variable with dask, drop chunk encodings of the source."""
    encoded = cf_encode(add_history(ds, call)).chunk(dict(chunks or {})).unify_chunks()
    for var in encoded.variables.values():
        var.encoding = {
            key: value
            for key, value in var.encoding.items()
            if key not in ("chunks", "preferred_chunks")
        }
    return encoded


def _digest(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of named arrays; object arrays (cftime dates, strings) by their repr."""
    digest = hashlib.sha256()
    for name, values in arrays.items():
        values = np.asarray(values)
        if values.dtype.kind == "O":
            values = np.array([repr(value) for value in values.ravel()])
        digest.update(f"{name}:{values.dtype}:{values.shape}".encode())
        digest.update(np.ascontiguousarray(values).tobytes())
    return f"sha256:{digest.hexdigest()}"


def _layout(ds: xr.Dataset) -> dict:
    """Dimensions, variables (dims, dtype) and coordinate values of ``ds``, as JSON."""
    return {
        "dims": {str(dim): int(size) for dim, size in ds.sizes.items()},
        "variables": {
            str(name): {"dims": [str(dim) for dim in var.dims], "dtype": str(var.dtype)}
            for name, var in ds.variables.items()
        },
        "coords": {str(name): _digest({str(name): ds[name].values}) for name in ds.coords},
    }


def _check_store(target: Path, fingerprint: object, layout: dict) -> dict:
    """Read the manifest of an existing store; refuse it unless this call wrote it."""
    try:
        manifest = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
        ours = manifest["format"] == MANIFEST_FORMAT
    except (OSError, ValueError, KeyError, TypeError):
        ours = False
    if not ours:
        raise StoreMismatchError(
            f"{str(target)!r} exists and was not written by write_zarr (no readable "
            f"{MANIFEST}); refusing to write into it"
        )
    if manifest["fingerprint"] != fingerprint:
        raise StoreMismatchError(
            f"zarr store {str(target)!r} was written with fingerprint "
            f"{manifest['fingerprint']!r}, not {fingerprint!r}; refusing to append to it "
            "(write to a new store or delete this one)"
        )
    differences = [
        f"{section} {', '.join(changed)}"
        for section in ("dims", "variables", "coords")
        if (changed := _changed_keys(manifest["layout"][section], layout[section]))
    ]
    if differences:
        raise StoreMismatchError(
            f"zarr store {str(target)!r} holds other data than the Dataset given "
            f"(differing {'; '.join(differences)}); refusing to append to it"
        )
    return manifest


def _changed_keys(stored: dict, given: dict) -> list[str]:
    return sorted(key for key in stored.keys() | given.keys() if stored.get(key) != given.get(key))


def _blocks(ds: xr.Dataset, dim: str) -> list[list[int]]:
    """``[start, stop]`` of each dask block of ``ds`` along ``dim``."""
    edges = np.cumsum((0, *ds.chunks.get(dim, (ds.sizes[dim],)))).tolist()
    return [[start, stop] for start, stop in itertools.pairwise(edges)]


def _create_store(
    encoded: xr.Dataset,
    target: Path,
    regions_dims: Sequence[str],
    fingerprint: object,
    layout: dict,
) -> dict:
    """Write metadata, coordinates and region-less variables, with a fresh manifest.

    The skeleton is written in a private folder beside the target and renamed into
    place with its manifest, so that a store never exists without one.
    """
    dims = [dim for dim in regions_dims if dim in encoded.dims]
    names = [str(name) for name, var in encoded.data_vars.items() if set(var.dims) & set(dims)]
    regions = itertools.product(*(_blocks(encoded, dim) for dim in dims)) if names else []
    manifest = {
        "format": MANIFEST_FORMAT,
        "climlatent_version": __version__,
        "fingerprint": fingerprint,
        "layout": layout,
        "regions_dims": dims,
        "region_variables": names,
        "regions": [
            {
                "region": dict(zip(dims, bounds, strict=True)),
                "status": "pending",
                "checksum": None,
                "completed_at": None,
            }
            for bounds in regions
        ],
    }
    # Everything but the region variables is written now, with the metadata.
    skeleton = encoded.drop_vars(names).compute().assign({name: encoded[name] for name in names})
    with _writing(target):
        workdir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            tmp = workdir / target.name
            skeleton.to_zarr(
                tmp, compute=False, consolidated=True, mode="w-", zarr_format=ZARR_FORMAT
            )
            _save_manifest(tmp, manifest)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return manifest


def _fill_regions(
    encoded: xr.Dataset, target: Path, manifest: dict, verify: bool, progress: bool
) -> None:
    """Compute, write and mark complete every region not (intact and) complete."""
    variables = manifest["layout"]["variables"]
    var_dims = {name: variables[name]["dims"] for name in manifest["region_variables"]}
    with _writing(target):
        # Temporary files of a chunk write that a killed run left behind.
        for leftover in target.rglob("*.partial"):
            leftover.unlink()
    group = zarr.open_group(str(target), mode="r", zarr_format=ZARR_FORMAT)
    todo = [
        entry
        for entry in manifest["regions"]
        if entry["status"] != "complete" or (verify and not _is_intact(group, var_dims, entry))
    ]
    corrupt = [entry["region"] for entry in todo if entry["status"] == "complete"]
    if corrupt:
        warnings.warn(
            f"zarr store {str(target)!r}: {len(corrupt)} completed region(s) no longer match "
            f"their checksum and are rewritten: {corrupt}",
            RuntimeWarning,
            stacklevel=3,
        )
        for entry in todo:
            entry.update(status="pending", checksum=None, completed_at=None)
        with _writing(target):
            _save_manifest(target, manifest)
    total = len(manifest["regions"])
    with tqdm(total=total, initial=total - len(todo), unit="region", disable=not progress) as bar:
        for entry in todo:
            region = {dim: slice(*bounds) for dim, bounds in entry["region"].items()}
            block = encoded[list(var_dims)].isel(region)
            block = block.drop_vars(list(block.coords)).compute()
            with _writing(target):
                # mode "r+" reads the consolidated metadata and leaves all metadata as is.
                block.to_zarr(target, region=region, mode="r+", consolidated=True)
                entry.update(
                    status="complete",
                    checksum=_stored_checksum(group, var_dims, entry["region"]),
                    completed_at=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                )
                _save_manifest(target, manifest)
            bar.update()


def _stored_checksum(group: zarr.Group, var_dims: dict[str, list[str]], region: dict) -> str:
    """Checksum of the values stored for ``region``, read back raw (not decoded)."""
    return _digest(
        {
            name: group[name][
                tuple(slice(*region[dim]) if dim in region else slice(None) for dim in dims)
            ]
            for name, dims in var_dims.items()
        }
    )


def _is_intact(group: zarr.Group, var_dims: dict[str, list[str]], entry: dict) -> bool:
    try:
        return _stored_checksum(group, var_dims, entry["region"]) == entry["checksum"]
    except Exception:  # a chunk that cannot be decoded is as corrupt as one that differs
        return False


def _save_manifest(store: Path, manifest: dict) -> None:
    """Replace the manifest atomically: a reader sees the old one or the new one."""
    tmp = store / f"{MANIFEST}.tmp"
    with open(tmp, "w", encoding="utf-8") as file:
        json.dump(manifest, file, indent=1)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, store / MANIFEST)


@contextlib.contextmanager
def _writing(store: Path) -> Iterator[None]:
    """Turn an ``OSError`` while writing into a :class:`StoreWriteError` naming the store."""
    try:
        yield
    except OSError as err:
        raise StoreWriteError(f"cannot write zarr store {str(store)!r}: {err}") from err
