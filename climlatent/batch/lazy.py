"""A fitted model mapped lazily over the (member, time) chunks of a dask-backed Dataset."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

import dask
import dask.array as dsa
import numpy as np
import xarray as xr

from climlatent.batch.scheduler import _active_client
from climlatent.dask_threads import share_cores
from climlatent.errors import ClimlatentError
from climlatent.estimators import BaseEstimator, Estimator, ProxyDownscaler
from climlatent.estimators._torch import INFERENCE_BATCH
from climlatent.grid import find_grid, reused_discovery
from climlatent.io import carry_provenance

METHODS = {"emulate": Estimator, "downscale": ProxyDownscaler}
#: float32 output of one model call at most, by default (:func:`block_steps`).
BLOCK_BYTES = 32 * 2**20


@dataclasses.dataclass(frozen=True)
class _ShippedModel:
    """What every inference task of one lazy call depends on: one graph node."""

    estimator: BaseEstimator
    method: str
    fields: dict[str, dict]  # input variable -> its attributes
    grid: xr.Dataset  # the input grid's coordinates
    dims: tuple[str, ...]  # dims of an input block: sample dims, then the grid's
    out_dims: tuple[str, ...]
    samples: dict[str, xr.Variable]  # the sample dims' coordinates (time, member)
    # cf-xarray's findings on the first block, reused for the others (every block has
    # the same variables, coordinates and attributes); one per worker
    discovery: dict = dataclasses.field(default_factory=dict, compare=False)

    def predict(self, *blocks: np.ndarray, location: Sequence[tuple[int, int]]) -> np.ndarray:
        """The estimator's output for one block of each input variable.

        ``location`` is the block's ``(start, stop)`` along each of ``dims``: the block
        has its dates (a seasonal model downscales each with its date's group).
        """
        coords = dict(self.grid.coords)
        for dim, (start, stop) in zip(self.dims, location, strict=False):
            if dim in self.samples:
                coords[dim] = self.samples[dim][start:stop]
        ds = xr.Dataset(
            {
                name: (self.dims, block, attrs)
                for (name, attrs), block in zip(self.fields.items(), blocks, strict=True)
            },
            coords=coords,
        )
        with reused_discovery(self.discovery):
            out = getattr(self.estimator, self.method)(ds)[self.estimator.target_]
        return out.transpose(*self.out_dims).values


def _predict_block(*blocks: np.ndarray, model: _ShippedModel, block_info: dict) -> np.ndarray:
    share_cores()
    return model.predict(*blocks, location=block_info[0]["array-location"])


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
        return estimator.input_variables()
    return [estimator.proxy_]


def block_steps(estimator: BaseEstimator) -> int:
    """Time steps per model call that a batch run chunks its inputs into by default.

    Each call pays a fixed cost besides the model (checks of the block, its Dataset,
    the output laid on the grid: tens of ms) that a block of 365 steps of a small model
    does not amortise; a call is therefore ``INFERENCE_BATCH`` steps (4096), which the
    model runs in batches of its own efficient size (see ``estimators._torch``), and
    fewer steps where their output would exceed ``BLOCK_BYTES`` (a fine grid of 10**5
    cells: 83 steps, whose model time dwarfs the fixed cost).

    Examples
    --------
    >>> import climlatent as cl
    >>> ds = cl.datasets.synthetic_circulation(n_years=1, n_lat=6, n_lon=8)
    >>> block_steps(cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=2).fit(ds, "pr", "psl"))
    4096
    """
    downscaler = isinstance(estimator, ProxyDownscaler)
    output = estimator.fine_layout_ if downscaler else estimator.target_layout_
    step_bytes = np.dtype(np.float32).itemsize * output.mask.size
    return max(1, min(INFERENCE_BATCH, BLOCK_BYTES // step_bytes))


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
    # One field through the eager method: every boundary check, and the output's metadata;
    # what it finds of the grid is kept for the blocks.
    first = ds[names].isel(dict.fromkeys(sample, slice(0, 1))).compute()
    discovery: dict = {}
    with reused_discovery(discovery):
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
        {dim: fields[0][dim].variable for dim in sample if dim in fields[0].coords},
        discovery,
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
    out = carry_provenance(out.to_dataset(name=estimator.target_), ds)
    return out.assign_attrs(template.attrs)


def _ship(model: _ShippedModel) -> Any:
    """The model as one graph node: scattered to all workers under a distributed client."""
    client = _active_client()
    if client is None:
        return dask.delayed(model, name=f"climlatent-model-{uuid.uuid4().hex}", traverse=False)
    return client.scatter(model, broadcast=True, hash=False)
