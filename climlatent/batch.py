"""Batch inference over ensembles: lazy emulation and downscaling, schedulers, zarr output.

A batch run opens member files lazily (:func:`open_members`), maps the fitted model
over dask chunks of (member, time) (:func:`emulate`, :func:`downscale`) and writes the
result to a resumable zarr store (:func:`emulate_to_zarr`, :func:`downscale_to_zarr`,
through :func:`climlatent.zarr_store.write_zarr`). Memory is bounded by one region of
the store, not by the ensemble.

The fitted model is one node of the dask graph that every inference task depends on:
a literal key on the threaded scheduler, a future scattered to every worker when a
``dask.distributed`` client is active. It is therefore shipped to each worker once,
not once per task, and stays there for every region of the store. Each task rebuilds
a small Dataset from its block and calls the estimator's own ``emulate`` or
``downscale``, so the checks, unit conversions and transforms are the estimator's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask
import dask.array as dsa
import numpy as np
import torch
import xarray as xr

from climlatent.errors import ClimlatentError, InputDataError
from climlatent.estimators import BaseEstimator, Estimator, ProxyDownscaler
from climlatent.grid import check_same_grid, find_grid, find_member, find_time
from climlatent.io import PathLike, open_dataset
from climlatent.persistence import MANIFEST, WEIGHTS, load
from climlatent.training import resolve_device

if TYPE_CHECKING:
    from distributed import Client

METHODS = {"emulate": Estimator, "downscale": ProxyDownscaler}


class SchedulerError(ClimlatentError, ConnectionError):
    """The dask scheduler named for a batch run cannot be reached."""


@contextlib.contextmanager
def scheduler(
    address: str = "threads",
    *,
    n_workers: int | None = None,
    torch_threads: int = 1,
    processes: bool = True,
    timeout: float = 10.0,
) -> Iterator[Client | None]:
    """Run the dask computations of the block on threads, a local cluster or a scheduler.

    Parameters
    ----------
    address : str
        ``"threads"`` (dask's threaded scheduler), ``"local"`` (a
        ``dask.distributed.LocalCluster`` of single-threaded workers) or the address
        of a running scheduler (``"tcp://host:8786"``).
    n_workers : int, optional
        Threads, or workers of the local cluster (default: dask's, from the cores).
    torch_threads : int
        Torch threads per worker, set on every worker by a worker plugin (and in this
        process on threads), so that workers do not oversubscribe the cores.
    processes : bool
        Local-cluster workers in separate processes (else in threads of this one).
    timeout : float
        Seconds to wait for the scheduler at ``address`` to answer.

    Yields
    ------
    distributed.Client or None
        The client; None on the threaded scheduler.

    Raises
    ------
    SchedulerError
        The scheduler at ``address`` does not answer within ``timeout`` seconds.

    Examples
    --------
    >>> with scheduler("threads", n_workers=2) as client:
    ...     print(client, dask.array.ones(4, chunks=2).sum().compute())
    None 4.0
    """
    with contextlib.ExitStack() as stack:
        stack.callback(torch.set_num_threads, torch.get_num_threads())
        if address == "threads":
            stack.enter_context(dask.config.set(scheduler="threads", num_workers=n_workers))
            torch.set_num_threads(torch_threads)
            yield None
            return
        from distributed import Client

        if address == "local":
            client = Client(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=processes,
                dashboard_address=":0",
            )
        else:
            try:
                client = Client(address, timeout=timeout)
            except (OSError, ValueError) as err:
                reason = " ".join(str(err).split())
                raise SchedulerError(
                    f"cannot reach the dask scheduler at {address!r} within {timeout:g} s: {reason}"
                ) from err
        stack.enter_context(client)
        client.register_plugin(_torch_threads_plugin(torch_threads))
        yield client


def _torch_threads_plugin(n_threads: int) -> Any:
    """A worker plugin setting the torch thread count of each worker as it starts."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class TorchThreads(WorkerPlugin):
        name = "climlatent-torch-threads"

        def setup(self, worker: Any) -> None:
            torch.set_num_threads(n_threads)

    return TorchThreads()


def open_members(
    inputs: PathLike | Sequence[PathLike],
    variables: Sequence[str],
    members: Sequence[str] | None = None,
    time_chunk: int = 365,
) -> xr.Dataset:
    """Open ensemble members lazily, combined along a member dimension.

    Parameters
    ----------
    inputs : path, glob, ``"catalog.yaml#entry"``, or a sequence of them
        Sources of one or more members each. A source with a member dimension (found
        through CF metadata) keeps its labels; any other is one member named after
        its file.
    variables : sequence of str
        Variables to keep (the model's inputs).
    members : sequence of str, optional
        Labels of the members to keep, in this order (default: all).
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
        A source lacks a variable, has another grid or time axis than the first,
        repeats a member, or a requested member is absent (the message names it).

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
    sources = _expand(inputs)
    with contextlib.ExitStack() as files:
        opened = [files.enter_context(open_dataset(source, chunks=None)) for source in sources]
        member_dim = next((m for ds in opened if (m := find_member(ds))), "member")
        parts, seen = [], {}
        for source, ds in zip(sources, opened, strict=True):
            part = _member_part(source, ds, variables, member_dim, time_chunk)
            if parts:
                _check_like(sources[0], parts[0], source, part, variables[0])
            for label in part[member_dim].values.tolist():
                if label in seen:
                    raise InputDataError(
                        f"member {label!r} is in both {seen[label]!r} and {source!r}"
                    )
                seen[label] = source
            parts.append(part)
        combined = xr.concat(
            parts, member_dim, data_vars="all", coords="minimal", compat="override", join="override"
        )
        if members is not None:
            missing = [label for label in members if label not in seen]
            if missing:
                raise InputDataError(f"member(s) {missing} not found; the inputs hold {list(seen)}")
            combined = combined.sel({member_dim: list(members)})
        combined = combined.chunk({member_dim: 1})
        # The files close with the result, not at a garbage collection that may run
        # while netCDF-C opens the same file (which crashes it).
        combined.set_close(files.pop_all().close)
    return combined


def _expand(inputs: PathLike | Sequence[PathLike]) -> list[str]:
    """Sources as strings, globs replaced by their sorted matches."""
    sources = []
    for item in map(str, [inputs] if isinstance(inputs, str | os.PathLike) else inputs):
        matches = sorted(glob.glob(item)) if glob.has_magic(item) and "#" not in item else [item]
        if not matches:
            raise FileNotFoundError(f"no file matches {item!r}")
        sources.extend(matches)
    return sources


def _member_part(
    source: str, ds: xr.Dataset, variables: Sequence[str], member_dim: str, time_chunk: int
) -> xr.Dataset:
    """The source's ``variables``, chunked, with ``member_dim`` (added or renamed)."""
    missing = [name for name in variables if name not in ds.data_vars]
    if missing:
        raise InputDataError(
            f"{source!r} has no variable {', '.join(map(repr, missing))} (data variables: "
            f"{', '.join(map(str, ds.data_vars)) or 'none'})"
        )
    part = ds[list(variables)]
    chunks = dict.fromkeys(find_grid(part[variables[0]], variables[0]).spatial_dims, -1)
    time = find_time(part)
    if time is not None:
        chunks[time] = time_chunk
    part = part.chunk(chunks)
    found = find_member(part)
    if found is None:
        label = source.rsplit("#", 1)[-1] if "#" in source else Path(source.rstrip("/")).stem
        return part.expand_dims({member_dim: [label]})
    return part.rename({found: member_dim}) if found != member_dim else part


def _check_like(
    first: str, reference: xr.Dataset, source: str, part: xr.Dataset, name: str
) -> None:
    """Raise naming ``source`` unless it has the grid and time axis of ``first``."""
    try:
        check_same_grid(reference[name], part[name], name)
    except InputDataError as err:
        detail = str(err).rsplit(": ", 1)[-1]
        raise InputDataError(
            f"member file {source!r} is on a different grid than {first!r}: {detail}"
        ) from err
    time = find_time(reference)
    if time is not None and not (
        time in part.indexes and reference.indexes[time].equals(part.indexes[time])
    ):
        raise InputDataError(
            f"member file {source!r} is on a different time axis than {first!r}; "
            "members must share one time axis"
        )


@dataclasses.dataclass(frozen=True)
class _ShippedModel:
    """What every inference task of one lazy call depends on: one graph node."""

    estimator: BaseEstimator
    method: str
    fields: dict[str, dict]  # input variable -> its attributes
    grid: xr.Dataset  # the input grid's coordinates
    dims: tuple[str, ...]  # dims of an input block: sample dims, then the grid's
    out_dims: tuple[str, ...]

    def predict(self, *blocks: np.ndarray) -> np.ndarray:
        """The estimator's output for one block of each input variable."""
        ds = xr.Dataset(
            {
                name: (self.dims, block, attrs)
                for (name, attrs), block in zip(self.fields.items(), blocks, strict=True)
            },
            coords=self.grid.coords,
        )
        out = getattr(self.estimator, self.method)(ds)[self.estimator.target_]
        return out.transpose(*self.out_dims).values


def _predict_block(*blocks: np.ndarray, model: _ShippedModel) -> np.ndarray:
    return model.predict(*blocks)


def model_inputs(estimator: BaseEstimator) -> list[str]:
    """Names of the variables a fitted estimator reads.

    Examples
    --------
    >>> import climlatent as cl
    >>> ds = cl.datasets.synthetic_circulation(n_years=1, n_lat=4, n_lon=4)
    >>> model_inputs(cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=2).fit(ds, "pr", "psl"))
    ['psl']
    """
    estimator._require_fitted()
    if isinstance(estimator, ProxyDownscaler):
        return list(estimator.drivers_)
    return [estimator.proxy_]


def emulate(estimator: Estimator, ds: xr.Dataset) -> xr.Dataset:
    """``estimator.emulate(ds)``, lazily over the dask chunks of ``ds``.

    The same output as the estimator's method, with the fitted model a single node of
    the graph (see the module docstring). An input without dask is emulated eagerly.

    Examples
    --------
    >>> import climlatent as cl
    >>> ds = cl.datasets.synthetic_circulation(n_years=2, n_lat=6, n_lon=8)
    >>> est = cl.EOFRegression(n_proxy_eofs=3, n_target_eofs=3).fit(ds, "pr", "psl")
    >>> out = emulate(est, ds.chunk(member=1, time=365))
    >>> out["pr"].chunks[:2]
    ((1, 1), (365, 365))
    >>> bool(out["pr"].compute().equals(est.emulate(ds)["pr"]))
    True
    """
    return _lazy_predict(estimator, ds, "emulate")


def downscale(estimator: ProxyDownscaler, ds: xr.Dataset) -> xr.Dataset:
    """``estimator.downscale(ds)``, lazily over the dask chunks of ``ds``.

    Examples
    --------
    >>> import climlatent as cl
    >>> world = cl.datasets.synthetic_biogeochem(n_years=2, n_fine_lat=16, n_fine_lon=16)
    >>> est = cl.ProxyDownscaler(epochs=1).fit(world.coarse, world.fine, "chl",
    ...     proxies={"tos": "exponential"})
    >>> out = downscale(est, world.coarse.chunk(time=12))
    >>> out["chl"].chunks[1], out["chl"].shape == world.fine["chl"].shape
    ((12, 12), True)
    """
    return _lazy_predict(estimator, ds, "downscale")


def _lazy_predict(estimator: BaseEstimator, ds: xr.Dataset, method: str) -> xr.Dataset:
    if not isinstance(estimator, METHODS[method]):
        raise ClimlatentError(
            f"a {type(estimator).__name__} cannot {method}; that takes a {METHODS[method].__name__}"
        )
    names = model_inputs(estimator)
    if not all(name in ds.data_vars for name in names) or not any(ds[n].chunks for n in names):
        return getattr(estimator, method)(ds)  # eager, or the estimator's error
    fields = xr.unify_chunks(*(ds[name] for name in names))
    spatial = find_grid(fields[0], names[0]).spatial_dims
    sample = tuple(dim for dim in fields[0].dims if dim not in spatial)
    # One field through the eager method: every boundary check, and the output's metadata.
    first = ds[names].isel(dict.fromkeys(sample, slice(0, 1))).compute()
    template = getattr(estimator, method)(first)
    target = template[estimator.target_]
    out_spatial = tuple(dim for dim in target.dims if dim not in sample)
    model = _ShippedModel(
        estimator,
        method,
        {name: dict(ds[name].attrs) for name in names},
        first.drop_dims(sample),
        sample + spatial,
        sample + out_spatial,
    )
    arrays = [field.transpose(*sample, *spatial).data for field in fields]
    chunks = arrays[0].chunks[: len(sample)] + tuple((target.sizes[d],) for d in out_spatial)
    data = dsa.map_blocks(
        _predict_block,
        *arrays,
        model=_ship(model),
        chunks=chunks,
        dtype=target.dtype,
        meta=np.empty((0,) * len(chunks), target.dtype),
    )
    coords = {k: c for k, c in fields[0].coords.items() if set(c.dims) <= set(sample)}
    for name, coord in target.coords.items():
        if set(coord.dims) <= set(out_spatial):
            coords.setdefault(name, coord)
    out = xr.DataArray(data, dims=sample + out_spatial, coords=coords, attrs=target.attrs)
    return out.to_dataset(name=estimator.target_).assign_attrs(template.attrs)


def _ship(model: _ShippedModel) -> Any:
    """The model as one graph node: scattered to all workers under a distributed client."""
    client = _active_client()
    if client is None:
        return dask.delayed(model, name=f"climlatent-model-{uuid.uuid4().hex}", traverse=False)
    return client.scatter(model, broadcast=True, hash=False)


def _active_client() -> Any:
    """The distributed client that dask computes on now, or None."""
    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):  # distributed not installed, or no client
        return None
    return client if dask.base.get_scheduler() == client.get else None


def emulate_to_zarr(model: PathLike, inputs: Any, store: PathLike, **options: Any) -> Path:
    """Emulate every member of ``inputs`` with a saved model into a resumable zarr store.

    Inputs are opened lazily (:func:`open_members`), the model is mapped over their
    (member, time) chunks, and the output is written region by region by
    :func:`~climlatent.zarr_store.write_zarr`: the same call after an interruption
    computes only the regions not yet complete.

    Parameters
    ----------
    model : str or path-like
        An emulator saved with ``est.save``.
    inputs : path, glob, ``"catalog.yaml#entry"``, or a sequence of them
        Member files holding the model's input variables.
    store : str or path-like
        Target zarr store. One written by another model, config or input is refused
        (``StoreMismatchError``), and so is a path that cannot be written
        (``StoreWriteError``), leaving nothing behind.
    **options
        Keywords below.

    Other Parameters
    ----------------
    members : sequence of str, optional
        Member labels to process (default: all).
    time_chunk : int
        Time steps per model call (one dask task).
    time_per_region : int, optional
        Time steps per zarr chunk, the unit of resumption and of memory; default
        ``4 * time_chunk``, so that workers share each region.
    device : {"auto", "cpu", "cuda"}
        Where a torch model runs.
    progress : bool
        Show a progress bar over the regions.

    Returns
    -------
    pathlib.Path
        The store.

    Examples
    --------
    >>> import climlatent as cl, tempfile, os, xarray as xr
    >>> folder = tempfile.mkdtemp()
    >>> ds = cl.datasets.synthetic_circulation(n_members=2, n_years=2, n_lat=6, n_lon=8)
    >>> for m in ds.member.values:
    ...     _ = cl.io.to_netcdf(ds.sel(member=[m]), os.path.join(folder, f"{m}.nc"))
    >>> est = cl.EOFRegression(n_proxy_eofs=3, n_target_eofs=3).fit(ds, "pr", "psl")
    >>> est.save(os.path.join(folder, "model.clm"))
    >>> out = emulate_to_zarr(os.path.join(folder, "model.clm"), os.path.join(folder, "r*.nc"),
    ...                       os.path.join(folder, "pr.zarr"))
    >>> xr.open_zarr(out)["pr"].sizes["member"]
    2
    """
    return _to_zarr("emulate", model, inputs, store, **options)


def downscale_to_zarr(model: PathLike, inputs: Any, store: PathLike, **options: Any) -> Path:
    """Downscale every member of ``inputs`` with a saved ``ProxyDownscaler`` into zarr.

    As :func:`emulate_to_zarr` (same options), with coarse driver files as inputs.

    Examples
    --------
    >>> downscale_to_zarr("missing.clm", "coarse/*.nc", "out.zarr")
    Traceback (most recent call last):
    ...
    climlatent.errors.CheckpointError: 'missing.clm' is not a climlatent model (no manifest.json)
    """
    return _to_zarr("downscale", model, inputs, store, **options)


def _to_zarr(
    method: str,
    model: PathLike,
    inputs: PathLike | Sequence[PathLike],
    store: PathLike,
    *,
    members: Sequence[str] | None = None,
    time_chunk: int = 365,
    time_per_region: int | None = None,
    device: str = "auto",
    progress: bool = False,
) -> Path:
    estimator = load(model)
    if not isinstance(estimator, METHODS[method]):
        raise ClimlatentError(
            f"{str(model)!r} holds a {type(estimator).__name__}, which cannot {method} "
            f"(use 'climlatent {'downscale' if method == 'emulate' else 'emulate'}')"
        )
    from climlatent.zarr_store import write_zarr

    placed = resolve_device(device)  # refuses "cuda" without a GPU, whatever the model
    if getattr(estimator, "module_", None) is not None:
        estimator.device_ = placed
        estimator.module_.to(placed)
    with open_members(inputs, model_inputs(estimator), members, time_chunk) as ds:
        out = _lazy_predict(estimator, ds, method)
        time, member = find_time(out), find_member(out)
        return write_zarr(
            out,
            store,
            regions_dims=tuple(dim for dim in (member, time) if dim),
            chunks={time: time_per_region or 4 * time_chunk} if time else {},
            fingerprint=_fingerprint(model, method, _expand(inputs)),
            progress=progress,
        )


def _fingerprint(model: PathLike, method: str, sources: list[str]) -> dict:
    """What produced a store: the saved model's identity, the method and the inputs."""
    manifest = json.loads((Path(model) / MANIFEST).read_text())
    return {
        "estimator": manifest["estimator"],
        "config": manifest["config"],
        "weights_sha256": manifest["files"][WEIGHTS],
        "method": method,
        "inputs": [s if "#" in s else str(Path(s).resolve()) for s in sources],
    }
