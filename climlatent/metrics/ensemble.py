"""Stochastic realisations scored: rank histograms, the spread-skill ratio and the CRPS.

An ensemble of ``n`` realisations is calibrated when the truth is statistically one
more member: its rank among the members is uniform on ``0..n`` (a flat rank histogram,
Hamill 2001, MWR 129:550) and the ensemble's spread matches the error of its mean,
``sqrt((n + 1) / n * mean(var)) / rmse(mean) = 1`` (Fortin et al. 2014, J. Hydromet.
15:1708; the factor corrects for the finite ensemble). Cells where the truth or any
member is missing are left out. On a latitude-longitude grid each point counts with
its cell's area, as every spatial average of :mod:`climlatent.metrics.skill` does
(pooled equally, the many small polar cells of a 1-degree grid outweighed the
tropics: a spread-skill ratio of 0.84 for an area-weighted 0.94); fields without a
grid count every point once. The continuous ranked probability score (CRPS) of the
ensemble's empirical distribution scores calibration and sharpness together
(Gneiting & Raftery 2007, JASA 102:359); with ``m`` members it is the mean absolute
error for ``m = 1``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from climlatent.draws import REALIZATION_DIM
from climlatent.errors import InputDataError
from climlatent.grid import area_weights
from climlatent.metrics.skill import _dims, as_score, in_float64, in_units_of, on_grid_of
from climlatent.units import difference_units


def _aligned(
    ensemble: xr.DataArray, truth: xr.DataArray, dim: str
) -> tuple[xr.DataArray, xr.DataArray]:
    """The ensemble and the truth in float64, in the truth's units, on its coordinates."""
    if dim not in ensemble.dims:
        raise InputDataError(f"ensemble has no {dim!r} dim (dims: {ensemble.dims})")
    if dim in truth.dims:
        raise InputDataError(f"truth must not have the ensemble dim {dim!r}")
    extra = [d for d in ensemble.dims if d != dim and d not in truth.dims]
    if extra:
        raise InputDataError(
            f"ensemble has dim(s) {extra} that the truth lacks (dims: {truth.dims}); "
            "select or stack them first"
        )
    fields = (in_float64(f) for f in on_grid_of(in_units_of((ensemble, truth), truth), truth))
    ensemble, truth = xr.align(*fields, join="exact")
    return ensemble, truth


def _point_weights(truth: xr.DataArray) -> xr.DataArray:
    """Each point's weight, on the truth's dims: its cell's area, or 1 without a grid."""
    try:
        return area_weights(truth).broadcast_like(truth).transpose(*truth.dims)
    except InputDataError:  # no latitude-longitude grid: every point once
        if any(truth[c].ndim for c in _horizontal_coords(truth)):
            raise  # on a grid whose areas are unknown (one column): not unweighted
        return xr.ones_like(truth)


def _paired(
    ensemble: xr.DataArray, truth: xr.DataArray, dim: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Members ``(n_points, n)``, truth and weights ``(n_points,)`` where all are finite."""
    ensemble, truth = _aligned(ensemble, truth, dim)
    members = ensemble.transpose(..., dim).broadcast_like(truth).transpose(*truth.dims, dim)
    values = members.values.reshape(-1, ensemble.sizes[dim])
    target = truth.values.ravel()
    keep = np.isfinite(target) & np.isfinite(values).all(axis=1)
    if not keep.any():
        raise InputDataError("no point where the truth and every member are finite")
    area = _point_weights(truth).values.ravel()
    return values[keep], target[keep], area[keep] / area[keep].mean()


def _horizontal_coords(da: xr.DataArray) -> list[str]:
    """The latitude and longitude coordinates of ``da`` (CF metadata or their names).

    Examples
    --------
    >>> da = xr.DataArray([1.0, 2.0], dims="lat", coords={"lat": [0.0, 10.0], "lon": 5.0})
    >>> _horizontal_coords(da)
    ['lat', 'lon']
    """
    found = da.copy(deep=False).cf.guess_coord_axis().cf.coordinates
    return [str(n) for key in ("latitude", "longitude") for n in found.get(key, [])]


def rank_histogram(
    ensemble: xr.DataArray, truth: xr.DataArray, dim: str = REALIZATION_DIM
) -> xr.DataArray:
    """Frequency of the truth's rank among the members (0: below every member).

    Parameters
    ----------
    ensemble : xr.DataArray
        Realisations along ``dim``, on the truth's coordinates otherwise.
    truth : xr.DataArray
        The verifying field.
    dim : str
        The ensemble dim.

    Returns
    -------
    xr.DataArray
        ``(rank,)`` frequencies summing to 1; calibrated: each ``1 / (n + 1)``. A truth
        tied with ``k`` members counts ``1 / (k + 1)`` in each of the ``k + 1`` ranks it
        could take: the mean histogram over random tie-breaks, without its noise.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth = xr.DataArray(rng.normal(size=4000), dims="time")
    >>> members = xr.DataArray(rng.normal(size=(4000, 4)), dims=("time", "realization"))
    >>> hist = rank_histogram(members, truth)
    >>> hist.sizes["rank"], bool(np.allclose(hist, 0.2, atol=0.02))
    (5, True)
    """
    values, target, weight = _paired(ensemble, truth, dim)
    below = (values < target[:, None]).sum(axis=1)
    ties = (values == target[:, None]).sum(axis=1)
    share = weight / (ties + 1)  # a tied truth counts equally in ranks below .. below + ties
    n = values.shape[1]
    steps = np.bincount(below, share, n + 2) - np.bincount(below + ties + 1, share, n + 2)
    counts = np.cumsum(steps)[: n + 1]
    return xr.DataArray(
        counts / counts.sum(),
        dims="rank",
        coords={"rank": np.arange(n + 1)},
        attrs={"long_name": "frequency of the truth's rank among the realisations", "units": "1"},
    )


def spread_skill_ratio(
    ensemble: xr.DataArray, truth: xr.DataArray, dim: str = REALIZATION_DIM
) -> float:
    """``sqrt((n + 1) / n * mean ensemble variance) / rmse of the ensemble mean``.

    Parameters
    ----------
    ensemble : xr.DataArray
        Realisations along ``dim``.
    truth : xr.DataArray
        The verifying field.
    dim : str
        The ensemble dim.

    Returns
    -------
    float
        1 for a calibrated ensemble; below 1 overconfident, above 1 underconfident.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> centre = rng.normal(size=(20000, 1))
    >>> truth = xr.DataArray(centre[:, 0] + rng.normal(size=20000), dims="time")
    >>> members = xr.DataArray(centre + rng.normal(size=(20000, 3)), dims=("time", "realization"))
    >>> round(spread_skill_ratio(members, truth), 1)
    1.0
    """
    values, target, weight = _paired(ensemble, truth, dim)
    n = values.shape[1]
    if n < 2:
        raise InputDataError(f"the spread needs at least 2 realisations along {dim!r}, got {n}")
    variance = np.average(values.var(axis=1, ddof=1), weights=weight)
    mse = np.average((values.mean(axis=1) - target) ** 2, weights=weight)
    return float(np.sqrt((n + 1) / n * variance / mse))


def _crps(error: np.ndarray, fair: bool) -> np.ndarray:
    """CRPS from the members' errors ``(..., m)``, sorted: ``O(m log m)`` per point.

    ``E|X - y| - E|X - X'| / 2``, where the sum of ``|x_i - x_j|`` over all pairs is
    ``2 sum_i (2 i - m - 1) x_(i)`` over the sorted members; a missing error gives NaN.
    """
    m = error.shape[-1]
    rank_weights = 2.0 * np.arange(1, m + 1) - m - 1
    pairs = m * (m - 1) if fair else m * m
    return np.abs(error).mean(axis=-1) - np.sort(error, axis=-1) @ rank_weights / pairs


def crps_ensemble(
    prediction: xr.DataArray,
    truth: xr.DataArray,
    dim: str = REALIZATION_DIM,
    fair: bool = False,
    dims: str | tuple[str, ...] | None = None,
) -> xr.DataArray:
    """Continuous ranked probability score of an ensemble: ``E|X - y| - E|X - X'| / 2``.

    Parameters
    ----------
    prediction : xr.DataArray
        Realisations along ``dim``, on the truth's coordinates otherwise; converted to
        the truth's units.
    truth : xr.DataArray
        The verifying field.
    dim : str
        The ensemble dim.
    fair : bool
        Divide the sum over pairs of ``m`` members by ``m (m - 1)`` rather than ``m ** 2``:
        unbiased for the CRPS of the distribution the members are drawn from, the score
        the ensemble would have with infinitely many (Ferro 2014, QJRMS 140:1917).
    dims : str or tuple of str, optional
        Dims of the truth to average the score over: area-weighted on a latitude-longitude
        grid, each point once without one. None: the score at every point.

    Returns
    -------
    xr.DataArray
        The CRPS (0 is perfect) in the units of a difference of the truth's values; NaN
        where the truth or any member is missing, and left out of the mean over ``dims``
        (NaN where no point is left). Lazy for dask-backed fields.

    Raises
    ------
    InputDataError
        No member (fewer than two for the fair score), or fields the other scores
        refuse (another grid or coordinates, units not convertible to the truth's).

    Examples
    --------
    >>> members = xr.DataArray([[0.0, 1.0, 2.0, 3.0]], dims=("time", "realization"))
    >>> truth = xr.DataArray([1.5], dims="time", attrs={"units": "degC"})
    >>> score = crps_ensemble(members, truth)
    >>> score.values.tolist(), score.attrs["units"]
    ([0.375], 'K')
    >>> round(float(crps_ensemble(members, truth, fair=True, dims="time")), 6)
    0.166667
    """
    ensemble, truth = _aligned(prediction, truth, dim)
    long_name = f"{'fair ' if fair else ''}continuous ranked probability score"
    least = 2 if fair else 1
    if ensemble.sizes[dim] < least:
        raise InputDataError(
            f"the {long_name} needs at least {least} realisations along {dim!r}, "
            f"got {ensemble.sizes[dim]}"
        )
    error = (ensemble - truth).transpose(*truth.dims, dim)
    if error.chunks is not None:
        error = error.chunk({dim: -1})
    score = xr.apply_ufunc(
        _crps,
        error,
        input_core_dims=[[dim]],
        dask="parallelized",
        output_dtypes=[float],
        kwargs={"fair": fair},
    )
    if dims is not None:
        score = score.weighted(_point_weights(truth)).mean(_dims(score, dims))
    return as_score(score.rename("crps"), long_name, difference_units(truth.attrs.get("units")))
