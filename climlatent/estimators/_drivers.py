"""The drivers of a downscaler: the law of each, and rows and cells that pair.

A downscaler's drivers (and a coarse target given as an input) stack into one matrix,
row by row and cell by cell: each must share the first driver's sample dims and
coarse grid, or the rows of one would meet another's samples. ``proxies`` maps each
driver to its law (`climlatent.models.proxies.PROXY_KINDS`). The additive forms (and
`ProxyLatentDownscaler`'s log form) learn the target in units of its spread
(`anomaly_scale`), whatever its physical units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import xarray as xr
from torch import nn

from climlatent.errors import InputDataError
from climlatent.grid import check_same_grid, find_grid
from climlatent.models.proxies import PROXY_KINDS


def proxy_laws(proxies: object, target: str) -> dict[str, object]:
    """The ``proxies`` mapping of driver variables to laws, refused if it is none.

    Examples
    --------
    >>> proxy_laws(None, "chl"), proxy_laws({"tos": "exponential"}, "chl")
    ({'chl': 'identity'}, {'tos': 'exponential'})
    >>> proxy_laws("tos", "chl")
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: proxies must map each driver variable to its law, not ...
    """
    if proxies is None or (isinstance(proxies, Mapping) and not proxies):
        return {target: "identity"}
    if not isinstance(proxies, Mapping):
        names = [proxies] if isinstance(proxies, str) else list(proxies)  # type: ignore[call-overload]
        example = ", ".join(f"{name!r}: 'linear'" for name in names) or "'tos': 'exponential'"
        raise InputDataError(
            f"proxies must map each driver variable to its law, not {proxies!r}: "
            f"e.g. proxies={{{example}}} (laws: {', '.join(sorted(PROXY_KINDS))})"
        )
    return dict(proxies)


def check_alike(
    reference: xr.DataArray,
    x: xr.DataArray,
    role: str,
    grid: bool = True,
    single: bool = False,
) -> None:
    """Refuse a coarse field whose sample dims (or, with ``grid``, grid) differ.

    The drivers of a downscaler (and a coarse target) stack into one matrix row by
    row and cell by cell: each must have the sample dims of ``reference`` and, with
    ``grid``, its horizontal dims and coordinates (both in the canonical layout).
    ``single``: a dim of one value that either lacks does not count (the rows are
    the same).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray(np.zeros((2, 3, 1, 1)), dims=("member", "time", "lat", "lon"),
    ...     coords={"lat": [0.0], "lon": [0.0]}, name="tos")
    >>> check_alike(a, a.rename("rsds"), "proxy")
    >>> check_alike(a, a.isel(member=0, drop=True).rename("rsds"), "proxy")
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: proxy variable 'rsds' has sample dims ('time',), ...
    """
    spatial = find_grid(reference, reference.name).spatial_dims
    x_spatial = find_grid(x, x.name).spatial_dims
    if grid:
        if set(x_spatial) != set(spatial):
            raise InputDataError(
                f"{role} variable {x.name!r} has horizontal dims {x_spatial}, "
                f"{reference.name!r} {spatial}: the drivers must share one coarse grid "
                f"(rename or regrid {x.name!r} to {reference.name!r}'s)"
            )
        check_same_grid(reference, x, str(x.name))
    ours = tuple(d for d in reference.dims if d not in spatial)
    theirs = tuple(d for d in x.dims if d not in x_spatial)
    if single:
        ours = tuple(d for d in ours if reference.sizes[d] > 1 or d in theirs)
        theirs = tuple(d for d in theirs if x.sizes[d] > 1 or d in ours)
    if set(ours) != set(theirs):
        missing = [d for d in ours if d not in theirs]
        hint = (
            f"broadcast it (ds[{x.name!r}].broadcast_like(ds[{reference.name!r}])) or "
            f"select the same samples"
            if missing
            else "select the same samples"
        )
        raise InputDataError(
            f"{role} variable {x.name!r} has sample dims {theirs}, {reference.name!r} "
            f"{ours}: its rows would not pair with {reference.name!r}'s; {hint}"
        )
    for dim in ours:
        if x.sizes[dim] != reference.sizes[dim]:
            raise InputDataError(
                f"{role} variable {x.name!r} has {x.sizes[dim]} values along {dim!r}, "
                f"{reference.name!r} {reference.sizes[dim]}: select the same samples"
            )


def anomaly_scale(y: np.ndarray) -> float:
    """The spread of a target's anomalies: the scale a downscaler learns it in.

    The standard deviation of each cell's departures from its mean over the samples,
    pooled over the cells: the size of what is left to learn once the mean state is
    known, and of the residuals that the loss and ``lr`` deal in. A standard deviation
    rather than a robust spread (median absolute deviation): a field that is mostly
    zero (precipitation) has a median deviation of 0. It need only be right to an
    order of magnitude, and is scaled with the target: its units do not matter.

    Parameters
    ----------
    y : np.ndarray
        ``(n_samples, n_cells)``, NaN where a cell has no data; each cell with data in
        some sample.

    Returns
    -------
    float
        The pooled anomaly sd; the sd of all values if no cell varies, 1 if none do.

    Examples
    --------
    >>> y = np.array([[1.0, 10.0], [3.0, np.nan], [2.0, 12.0]])
    >>> round(anomaly_scale(y), 4), round(anomaly_scale(y * 1e-6) * 1e6, 4)
    (0.8944, 0.8944)
    >>> anomaly_scale(np.array([[1.0, 3.0], [1.0, 3.0]])), anomaly_scale(np.ones((2, 2)))
    (1.0, 1.0)
    """
    anomaly = y - np.nanmean(y, axis=0, dtype=np.float64)
    return float(np.nanstd(anomaly)) or float(np.nanstd(y)) or 1.0


def check_positive_terms(x: np.ndarray, proxies: Sequence[nn.Module], laws: Mapping) -> None:
    """Refuse drivers with a proxy term < 0: the multiplicative form takes its log.

    ``x``: the driver matrix ``(n, n_drivers, n_coarse)``; ``proxies`` the drivers' laws
    as modules and ``laws`` their names by driver, in the same order. A term < 0 (a
    temperature in degC through ``"identity"``, a standardised driver through
    ``"linear"``) has no log: it was taken at the floor, and the downscaled field came
    out orders of magnitude off. A term of 0 (no light) is taken at its floor
    (`climlatent.models.proxies.log_terms`).

    Examples
    --------
    >>> from climlatent.models.proxies import make_proxy
    >>> x = np.array([[[1.5, -0.5, 0.0]]], np.float32)
    >>> try:
    ...     check_positive_terms(x, [make_proxy("identity")], {"tos": "identity"})
    ... except InputDataError as error:
    ...     print(str(error)[:64])
    proxy variable 'tos': its law 'identity' gives 1 of 3 values < 0
    """
    with torch.no_grad():
        for k, (proxy, (name, law)) in enumerate(zip(proxies, laws.items(), strict=True)):
            device = next(iter(proxy.parameters()), torch.empty(0)).device
            term = proxy(torch.from_numpy(np.ascontiguousarray(x[:, k])).to(device))
            n_bad = int((term < 0).sum())
            if n_bad:
                raise InputDataError(
                    f"proxy variable {name!r}: its law {law!r} gives {n_bad} of "
                    f"{term.numel()} values < 0, which have no log, and the multiplicative "
                    f"form takes the log of each term; use a positive law (e.g. "
                    f"'exponential') or mode='additive'"
                )
