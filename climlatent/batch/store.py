"""Saved models over member files into resumable zarr stores, region by region."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import xarray as xr

from climlatent.atomic import same_path
from climlatent.batch.lazy import METHODS, _lazy_predict, block_steps, model_inputs, place
from climlatent.batch.members import OPEN_FILES, _open_members
from climlatent.batch.scheduler import worker_count
from climlatent.errors import ClimlatentError, InputDataError, require_extra
from climlatent.grid import find_member, find_time
from climlatent.io import PathLike
from climlatent.persistence import MANIFEST, WEIGHTS, load

#: float32 output of a zarr region at most, by default: the unit of writing, hashing,
#: resumption and memory, each region paying its write and manifest row; regions of
#: `climlatent.batch.lazy.BLOCK_BYTES` (a model call's) made ``climlatent downscale``
#: of 200 members x 10 years on 32 x 48 cells take 251 s (90-123 s in the runs before,
#: not side by side).
REGION_BYTES = 32 * 2**20


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
        Target zarr store. One written by another model or config, or from inputs
        whose sizes, coordinates or content differ (every member file is hashed as it
        is read, and again for the regions a resume skips), is refused
        (``StoreMismatchError``, naming what differs), and so is a store another
        process is writing (``StoreLockedError``) or a path that cannot be written
        (``StoreWriteError``, leaving nothing behind), or one of the inputs, however
        spelt or linked (``InputDataError``). No path is recorded: a folder of member
        files moved together with its store resumes.
    **options
        Keywords below.

    Other Parameters
    ----------------
    members : sequence of str or int, optional
        Member labels to process (default: all), as `open_members` selects them.
    time_chunk : int, optional
        Time steps per model call (one dask task); default a region's steps divided
        among the scheduler's workers, so that every worker has a block of each
        region, and at most :func:`block_steps` (4096 steps, fewer where the output
        would pass ``BLOCK_BYTES``, 8 MiB).
    time_per_region : int, optional
        Time steps per zarr chunk, the unit of resumption and of memory; default the
        whole model calls that fit in ``REGION_BYTES`` of output (32 MiB, at most
        4096 steps; at least one call), so that workers share a region of small calls.
    device : {"auto", "cpu", "cuda"}
        Where a torch model runs.
    amp : bool
        Run a torch model in CUDA's float16 autocast (``est.emulate(ds, amp=True)``):
        refused off CUDA, and for a block whose output float16 overflows; a store is
        resumed only with the same ``amp``.
    check_range : bool
        Refuse inputs beyond the fitted range by more than the model's
        ``range_tolerance`` (default ``True``; ``est.emulate(ds, check_range=...)``).
    overwrite : bool
        Start the store afresh, replacing one written before by this function (by
        another model, config or input).
    progress : bool
        Show a progress bar over the regions (default ``True``).

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


#: How draws address their noise: a store drawn otherwise (by position) is not resumed.
NOISE = {"noise": "by member label and proleptic Gregorian date"}


def downscale_to_zarr(model: PathLike, inputs: Any, store: PathLike, **options: Any) -> Path:
    """Downscale every member of ``inputs`` with a saved ``ProxyDownscaler`` into zarr.

    As :func:`emulate_to_zarr` (same options), with coarse driver files as inputs,
    and two more keywords: ``n_samples`` (stochastic realisations of a model fitted
    with ``noise=True``, along a ``realization`` dim; default the model's deterministic
    field: a multiplicative ProxyDownscaler's conditional median) and ``seed`` (with
    ``n_samples`` only; default 0). A sample's noise depends on the seed, its member's
    label and its date only, not on the blocks, the workers, or which members a run
    takes; a store is resumed only with the same ``n_samples`` and ``seed``.

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
    members: Sequence[Hashable] | None = None,
    time_chunk: int | None = None,
    time_per_region: int | None = None,
    device: str = "auto",
    amp: bool = False,
    check_range: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    n_samples: int | None = None,
    seed: int | None = None,
) -> Path:
    require_extra("zarr", "dask", f"writing a zarr store (climlatent {method})")
    for name, value in (("time_chunk", time_chunk), ("time_per_region", time_per_region)):
        if value is not None and value < 1:  # 0 fell back to the default silently
            raise ValueError(f"{name} must be at least 1, not {value}")
    if n_samples is None and seed is not None:  # was ignored: the deterministic field
        raise ClimlatentError(f"seed={seed!r} seeds realisations: give n_samples too")
    estimator = load(model)
    if not isinstance(estimator, METHODS[method]):
        other = next((m for m, kind in METHODS.items() if isinstance(estimator, kind)), None)
        advice = (
            f"use 'climlatent {other}'"
            if other
            else "batch runs take EOFRegression and LLAAE (emulate) or ProxyDownscaler "
            "models (downscale); apply this one in Python"
        )
        raise ClimlatentError(
            f"{str(model)!r} holds a {type(estimator).__name__}, which a batch run cannot "
            f"{method} ({advice})"
        )
    if n_samples is not None and method != "downscale":
        raise ClimlatentError(f"n_samples: only downscale draws realisations, not {method}")
    seed = 0 if seed is None else seed
    draws = {} if n_samples is None else {"n_samples": n_samples, "seed": seed}
    call = _command_line(
        method, model, inputs, store, members=members, time_chunk=time_chunk,
        time_per_region=time_per_region, device=device, amp=amp, check_range=check_range,
        overwrite=overwrite, n_samples=n_samples, seed=seed,
    )  # fmt: skip
    precision = {"amp": True} if amp else {}  # the fingerprint of a float32 run as before
    from climlatent.zarr_store import write_zarr

    place(estimator, device)
    draws_per_step = n_samples or 1  # a block holds every draw of its steps
    steps = max(1, block_steps(estimator) // draws_per_step)
    region = max(1, block_steps(estimator, REGION_BYTES) // draws_per_step)
    # A region is split among the workers, in blocks of at most a model call: a member's
    # record shorter than a region would otherwise be one block, for one worker alone.
    time_chunk = time_chunk or min(steps, -(-region // worker_count()))
    time_per_region = time_per_region or time_chunk * max(1, region // time_chunk)
    # A window of member files open at once, however many members (each file held
    # open costs about 1 MB); the others are reopened when their regions come.
    with xr.set_options(file_cache_maxsize=OPEN_FILES):
        ds, sources = _open_members(inputs, model_inputs(estimator), members, time_chunk)
        with ds:
            # --overwrite deleted such an input before its regions were read
            for source in dict.fromkeys(sources.values()):
                if same_path(store, source):
                    raise InputDataError(
                        f"the output store {str(store)!r} is the input {source!r}: write another"
                    )
            checks = {} if check_range else {"check_range": False}
            out = _lazy_predict(estimator, ds, method, **draws, **precision, **checks)
            time, member = find_time(out), find_member(ds)  # not the draws' realization
            return write_zarr(
                out,
                store,
                regions_dims=tuple(dim for dim in (member, time) if dim),
                chunks={time: time_per_region} if time else {},
                fingerprint=_fingerprint(model, method)
                | draws
                | (NOISE if draws else {})
                | precision,  # refused if other
                inputs=ds,
                sources=sources,
                overwrite=overwrite,
                progress=progress,
                call=call,
            )


def _fingerprint(model: PathLike, method: str) -> dict:
    """The saved model's identity and the method; the inputs are hashed by write_zarr."""
    manifest = json.loads((Path(model) / MANIFEST).read_text())
    return {
        "estimator": manifest["estimator"],
        "config": manifest["config"],
        "weights_sha256": manifest["files"][WEIGHTS],
        "method": method,
    }


def _command_line(
    method: str,
    model: PathLike,
    inputs: PathLike | Sequence[PathLike],
    store: PathLike,
    **settings: Any,
) -> str:
    """The ``climlatent emulate|downscale`` command that does what this call does.

    Examples
    --------
    >>> _command_line("downscale", "m.clm", ["r1.nc", "r 2.nc"], "o.zarr", members=None,
    ...               time_chunk=None, time_per_region=None, device="auto", amp=False,
    ...               check_range=False, overwrite=False, n_samples=3, seed=0).split(" --")
    ["climlatent downscale m.clm r1.nc 'r 2.nc'", 'output o.zarr', 'n-samples 3', 'seed 0', \
'no-range-check']
    """
    sources = [inputs] if isinstance(inputs, str | os.PathLike) else inputs
    options = {
        "--members": ",".join(map(str, settings["members"] or [])) or None,
        "--time-chunk": settings["time_chunk"],
        "--time-per-region": settings["time_per_region"],
        "--device": None if settings["device"] == "auto" else settings["device"],
        "--n-samples": settings["n_samples"],
        "--seed": None if settings["n_samples"] is None else settings["seed"],
    }
    flags = {
        "--amp": settings["amp"],
        "--no-range-check": not settings["check_range"],
        "--overwrite": settings["overwrite"],
    }
    words = ["climlatent", method, str(model), *map(str, sources), "--output", str(store)]
    words += [
        text for key, value in options.items() if value is not None for text in (key, str(value))
    ]
    return shlex.join(words + [flag for flag, given in flags.items() if given])
