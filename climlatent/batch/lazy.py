"""A fitted model mapped lazily over the (member, time) chunks of a dask-backed Dataset."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import xarray as xr

from climlatent.errors import ClimlatentError
from climlatent.estimators import BaseEstimator, Estimator, ProxyDownscaler
from climlatent.estimators._torch import INFERENCE_BATCH
from climlatent.training import resolve_device

METHODS = {"emulate": Estimator, "downscale": ProxyDownscaler}
#: float32 output of one model call at most, by default (:func:`block_steps`). glibc
#: gives each worker thread heaps of 64 MiB at most: a block of 32 MiB, its inputs and
#: the model's tensors did not fit one, each block spilled into a fresh heap unmapped
#: when the block was freed, and the tensors of every batch faulted in afresh (0.3-1.4
#: million page faults, 0.7-2.5 s of system time, per emulation of 4 members x 10
#: years on a 32 x 48 grid); blocks of 8 MiB and their batches reuse one heap (on 2
#: threads: 344k faults -> 16), unless what the process allocated before has moved
#: glibc's dynamic thresholds (on 1 thread in `climlatent.benchmarks.ensemble_pipeline`
#: 1 million faults remained in one session's runs, 23-83 in the next's).
BLOCK_BYTES = 8 * 2**20


def model_inputs(estimator: BaseEstimator) -> list[str]:
    """Names of the variables a fitted estimator reads.

    Examples
    --------
    >>> import climlatent as cl
    >>> ds = cl.datasets.synthetic_circulation(n_years=1, n_lat=4, n_lon=4)
    >>> model_inputs(cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=2).fit(ds, "pr", "psl"))
    ['psl']
    """
    estimator._require_fitted("model_inputs")
    if isinstance(estimator, ProxyDownscaler):
        return estimator.input_variables()
    return [estimator.proxy_]


def block_steps(estimator: BaseEstimator, max_bytes: int | None = None) -> int:
    """Time steps per model call that a batch run chunks its inputs into by default.

    Each call pays a fixed cost besides the model (a dask task, the output laid on
    the grid, the model's batch size probed by the first: a few ms) that a block of 365
    steps of a small model does not amortise; a call is therefore ``INFERENCE_BATCH``
    steps (4096), which the model runs in batches of its own efficient size (see
    ``estimators._torch``), and fewer steps where their output would exceed
    ``max_bytes`` (``BLOCK_BYTES``: a fine grid of 10**5 cells, 20 steps, whose model
    time dwarfs the fixed cost).

    Parameters
    ----------
    estimator : BaseEstimator
        A fitted emulator or downscaler.
    max_bytes : int, optional
        float32 output of a block at most (a zarr region's in `emulate_to_zarr`);
        default ``BLOCK_BYTES``.

    Returns
    -------
    int
        Time steps, between 1 and ``INFERENCE_BATCH``.

    Examples
    --------
    >>> import climlatent as cl
    >>> ds = cl.datasets.synthetic_circulation(n_years=1, n_lat=6, n_lon=8)
    >>> block_steps(cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=2).fit(ds, "pr", "psl"))
    4096
    >>> block_steps(cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=2).fit(ds, "pr", "psl"),
    ...             max_bytes=6 * 8 * 4 * 100)  # 100 steps of 6 x 8 float32 cells
    100
    """
    downscaler = isinstance(estimator, ProxyDownscaler)
    output = estimator.fine_layout_ if downscaler else estimator.target_layout_
    step_bytes = np.dtype(np.float32).itemsize * output.mask.size
    max_bytes = BLOCK_BYTES if max_bytes is None else max_bytes
    return max(1, min(INFERENCE_BATCH, max_bytes // step_bytes))


def place(estimator: BaseEstimator, device: str = "auto") -> torch.device:
    """Move a fitted estimator's torch model to ``device``, for the runs that follow.

    Parameters
    ----------
    estimator : BaseEstimator
        A fitted estimator; one without a torch model (``EOFRegression``) stays as
        it is.
    device : {"auto", "cpu", "cuda"}
        ``"auto"``: CUDA when there is a GPU. ``"cuda"`` without one is refused,
        whatever the model.

    Returns
    -------
    torch.device
        Where the model now runs.

    Examples
    --------
    >>> import climlatent as cl
    >>> ds = cl.datasets.synthetic_circulation(n_years=1, n_lat=4, n_lon=4)
    >>> est = cl.LLAAE(latent_dim=2, epochs=1, filters=(4,), progress=False)
    >>> place(est.fit(ds, "pr", "psl"), "cpu"), next(est.module_.parameters()).device
    (device(type='cpu'), device(type='cpu'))
    """
    placed = resolve_device(device)
    if getattr(estimator, "module_", None) is not None:
        estimator.device_ = placed
        estimator.module_.to(placed)
    return placed


def emulate(estimator: Estimator, ds: xr.Dataset, amp: bool = False) -> xr.Dataset:
    """``estimator.emulate(ds, amp=amp)``, refused for an estimator that is not an emulator.

    On a dask-backed ``ds`` the estimator's method is lazy: the inputs are checked
    once, from their coordinates, and each (member, time) chunk runs the model alone,
    the fitted model a single node of the graph (`climlatent.batching.map_model`).
    An input without dask is emulated eagerly. ``amp`` runs the model in CUDA's
    float16 autocast, entered by whichever thread computes a block.

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
    return _lazy_predict(estimator, ds, "emulate", amp=amp)


def downscale(estimator: ProxyDownscaler, ds: xr.Dataset, amp: bool = False) -> xr.Dataset:
    """``estimator.downscale(ds, amp=amp)``, refused for an estimator that is not a downscaler.

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
    return _lazy_predict(estimator, ds, "downscale", amp=amp)


def _lazy_predict(
    estimator: BaseEstimator, ds: xr.Dataset, method: str, **options: Any
) -> xr.Dataset:
    if not isinstance(estimator, METHODS[method]):
        raise ClimlatentError(
            f"a {type(estimator).__name__} cannot {method}; that takes a {METHODS[method].__name__}"
        )
    return getattr(estimator, method)(ds, **options)
