"""A fitted model mapped lazily over the (member, time) chunks of a dask-backed Dataset."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from climlatent.errors import ClimlatentError
from climlatent.estimators import BaseEstimator, Estimator, ProxyDownscaler
from climlatent.estimators._torch import INFERENCE_BATCH

METHODS = {"emulate": Estimator, "downscale": ProxyDownscaler}
#: float32 output of one model call at most, by default (:func:`block_steps`).
BLOCK_BYTES = 32 * 2**20


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

    Each call pays a fixed cost besides the model (a dask task, the output laid on
    the grid, the model's batch size probed by the first: a few ms) that a block of 365
    steps of a small model does not amortise; a call is therefore ``INFERENCE_BATCH``
    steps (4096), which the model runs in batches of its own efficient size (see
    ``estimators._torch``), and fewer steps where their output would exceed
    ``BLOCK_BYTES`` (a fine grid of 10**5 cells: 83 steps, whose model time dwarfs the
    fixed cost).

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
    """``estimator.emulate(ds)``, refused for an estimator that is not an emulator.

    On a dask-backed ``ds`` the estimator's method is lazy: the inputs are checked
    once, from their coordinates, and each (member, time) chunk runs the model alone,
    the fitted model a single node of the graph (`climlatent.batching.map_model`).
    An input without dask is emulated eagerly.

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
    """``estimator.downscale(ds)``, refused for an estimator that is not a downscaler.

    Lazy on a dask-backed ``ds``, as `emulate`.

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


def _lazy_predict(
    estimator: BaseEstimator, ds: xr.Dataset, method: str, **options: Any
) -> xr.Dataset:
    if not isinstance(estimator, METHODS[method]):
        raise ClimlatentError(
            f"a {type(estimator).__name__} cannot {method}; that takes a {METHODS[method].__name__}"
        )
    return getattr(estimator, method)(ds, **options)
