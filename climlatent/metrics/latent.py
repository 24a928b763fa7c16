"""Diagnostics of a latent space against known generating factors.

With synthetic data the true factors are known (``circulation_factor`` in
:func:`climlatent.datasets.synthetic_circulation`); these diagnostics ask whether the
learned latents recover them: a correlation table between every latent and every
factor, and a linear probe (least squares of each factor on all latents) scored by R2.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from climlatent.errors import InputDataError


def _stack(da: xr.DataArray, feature: str) -> np.ndarray:
    sample = [d for d in da.dims if d != feature]
    return da.transpose(*sample, feature).values.reshape(-1, da.sizes[feature]).astype(np.float64)


def _paired(
    latents: xr.DataArray, factors: xr.DataArray, latent_dim: str, factor_dim: str
) -> tuple[np.ndarray, np.ndarray]:
    for da, dim in ((latents, latent_dim), (factors, factor_dim)):
        if dim not in da.dims:
            raise InputDataError(f"{da.name!r} has no dimension {dim!r} (dims: {da.dims})")
    latents, factors = xr.align(latents, factors, join="inner")
    if latents.size == 0:
        raise InputDataError("latents and factors share no samples (check their coordinates)")
    factors = factors.transpose(*[d for d in latents.dims if d != latent_dim], factor_dim)
    z, f = _stack(latents, latent_dim), _stack(factors, factor_dim)
    for values, role in ((z, "latents"), (f, "factors")):
        bad = int((~np.isfinite(values)).sum())
        if bad:
            raise InputDataError(f"the {role} hold {bad} NaN/inf value(s) on shared samples")
    return z, f


def _centred(x: np.ndarray) -> np.ndarray:
    """Columns of ``x`` less their means; NaN for a column constant over the samples.

    A constant column has no variance, so its correlation and R2 are undefined: tested
    on the values themselves, as the float64 mean of 100 values 0.1 is not exactly 0.1,
    which put an R2 of 0.95 on a constant factor.
    """
    return np.where(np.ptp(x, axis=0) > 0, x - x.mean(0), np.nan)


def latent_factor_correlation(
    latents: xr.DataArray,
    factors: xr.DataArray,
    latent_dim: str = "latent",
    factor_dim: str = "mode",
) -> xr.DataArray:
    """Pearson correlation of every latent with every factor, over all shared samples.

    Parameters
    ----------
    latents : xr.DataArray
        Latent codes, e.g. from ``estimator.encode(ds)``: sample dims and ``latent_dim``.
    factors : xr.DataArray
        True factors on the same sample coordinates, with ``factor_dim``.
    latent_dim, factor_dim : str
        The dims indexing the latents and the factors; every other dim is a sample dim.

    Returns
    -------
    xr.DataArray
        ``(latent_dim, factor_dim)`` correlation table; NaN for a latent or a factor
        constant over the samples (a collapsed latent: correlation undefined).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> f = xr.DataArray(np.random.default_rng(0).normal(size=(100, 2)), dims=("time", "mode"))
    >>> z = xr.DataArray(f.values @ [[0.0, 2.0], [1.0, 0.0]], dims=("time", "latent"))
    >>> np.abs(latent_factor_correlation(z, f).values).round(6).max(axis=1).tolist()
    [1.0, 1.0]
    """
    z, f = _paired(latents, factors, latent_dim, factor_dim)
    zc, fc = _centred(z), _centred(f)
    denom = np.outer(np.linalg.norm(zc, axis=0), np.linalg.norm(fc, axis=0))
    corr = np.clip((zc.T @ fc) / denom, -1, 1)  # round-off: 1 + 2e-16
    return xr.DataArray(
        corr,
        dims=(latent_dim, factor_dim),
        coords={
            d: c
            for d, c in (
                (latent_dim, latents.coords.get(latent_dim)),
                (factor_dim, factors.coords.get(factor_dim)),
            )
            if c is not None
        },
        name="correlation",
        attrs={"long_name": "correlation of latent with factor", "units": "1"},
    )


def linear_probe_r2(
    latents: xr.DataArray,
    factors: xr.DataArray,
    latent_dim: str = "latent",
    factor_dim: str = "mode",
) -> xr.DataArray:
    """R2 of each factor regressed (least squares, with intercept) on all latents.

    Parameters
    ----------
    latents, factors, latent_dim, factor_dim
        As for `latent_factor_correlation`.

    Returns
    -------
    xr.DataArray
        ``(factor_dim,)`` R2 of each factor (1: a linear function of the latents); NaN
        for a factor constant over the samples (R2 undefined).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> f = xr.DataArray(np.random.default_rng(0).normal(size=(100, 2)), dims=("time", "mode"))
    >>> z = xr.DataArray(f.values @ [[1.0, 1.0], [1.0, -1.0]], dims=("time", "latent"))
    >>> np.round(linear_probe_r2(z, f).values, 6).tolist()
    [1.0, 1.0]
    """
    z, f = _paired(latents, factors, latent_dim, factor_dim)
    design = np.hstack([np.ones((z.shape[0], 1)), z])
    coef = np.linalg.lstsq(design, f, rcond=None)[0]
    sse = ((f - design @ coef) ** 2).sum(0)
    sst = (_centred(f) ** 2).sum(0)
    return xr.DataArray(
        1 - sse / sst,
        dims=factor_dim,
        coords={factor_dim: factors[factor_dim]} if factor_dim in factors.coords else {},
        name="probe_r2",
        attrs={"long_name": "linear probe R2 of factor on latents", "units": "1"},
    )
