"""Error of a high (or low) quantile of a predicted field, cell by cell.

A downscaling method can match the mean of the fine field and still miss its warm or
wet tail. The tail error compares, in every grid cell, the ``q``-quantile of the
prediction along time with that of the truth, and takes the area-weighted root mean
square of the differences over the grid (:func:`climlatent.metrics.rmse`).
"""

from __future__ import annotations

import xarray as xr

from climlatent.metrics.skill import paired, rmse

__all__ = ["quantile_error"]


def quantile_error(
    prediction: xr.DataArray, truth: xr.DataArray, q: float = 0.9, dim: str = "time"
) -> xr.DataArray:
    """Area-weighted RMS over the grid of the per-cell ``q``-quantile error along ``dim``.

    Parameters
    ----------
    prediction, truth : xr.DataArray
        Fields on the same latitude/longitude grid and ``dim``.
    q : float
        Quantile in [0, 1] (0.9: the 90th percentile).
    dim : str
        The dim the quantile is taken along (linear interpolation between order
        statistics, as :func:`numpy.quantile`).

    Returns
    -------
    xr.DataArray
        ``sqrt(area_mean((Q_q(prediction) - Q_q(truth)) ** 2))`` in the truth's units,
        over the cells with no missing value along ``dim`` in either field; other
        dims (e.g. ``member``) are kept.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> truth = xr.DataArray(np.arange(11.0)[:, None, None] * np.ones((1, 2, 2)),
    ...     dims=("time", "lat", "lon"), coords={"lat": [0.0, 1.0], "lon": [0.0, 1.0]},
    ...     attrs={"units": "K"})
    >>> error = quantile_error(1.5 * truth, truth)  # q90: 13.5 against 9.0 everywhere
    >>> float(error), error.attrs["units"]
    (4.5, 'K')
    """
    if not 0 <= q <= 1:
        raise ValueError(f"q must be in [0, 1], got {q}")
    prediction, truth = paired(prediction, truth)
    predicted = prediction.quantile(q, dim, skipna=False).drop_vars("quantile")
    expected = truth.quantile(q, dim, skipna=False, keep_attrs=True).drop_vars("quantile")
    return rmse(predicted, expected).assign_attrs(
        long_name=f"root mean squared error of the {q:g} quantile along {dim}"
    )
