"""Batch inference over ensembles: lazy emulation and downscaling, schedulers, zarr output.

A batch run opens member files lazily (:func:`open_members`), maps the fitted model
over dask chunks of (member, time) (:func:`emulate`, :func:`downscale`) and writes the
result to a resumable zarr store (:func:`emulate_to_zarr`, :func:`downscale_to_zarr`,
through :func:`climlatent.zarr_store.write_zarr`). Memory is bounded by two regions of
the store (the next is computed while one is written), not by the ensemble.

The fitted model is one node of the dask graph that every inference task depends on:
a literal key on the threaded scheduler, a future scattered to every worker when a
``dask.distributed`` client is active. It is therefore shipped to each worker once,
not once per task, and stays there for every region of the store. Each task rebuilds
a small Dataset from its block and calls the estimator's own ``emulate`` or
``downscale``, so the checks, unit conversions and transforms are the estimator's.
"""

from climlatent.batch.lazy import block_steps, downscale, emulate, model_inputs, place
from climlatent.batch.members import open_members
from climlatent.batch.scheduler import SchedulerError, scheduler, worker_count
from climlatent.batch.store import downscale_to_zarr, emulate_to_zarr

__all__ = [
    "SchedulerError",
    "block_steps",
    "downscale",
    "downscale_to_zarr",
    "emulate",
    "emulate_to_zarr",
    "model_inputs",
    "open_members",
    "place",
    "scheduler",
    "worker_count",
]
