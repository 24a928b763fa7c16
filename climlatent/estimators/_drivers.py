"""The drivers of a downscaler: the law of each, and rows and cells that pair.

A downscaler's drivers (and a coarse target given as an input) stack into one matrix,
row by row and cell by cell: each must share the first driver's sample dims and
coarse grid, or the rows of one would meet another's samples. ``proxies`` maps each
driver to its law (`climlatent.models.proxies.PROXY_KINDS`). The additive form learns
in the target's own units (`check_additive_scale`).
"""

from __future__ import annotations

from collections.abc import Mapping

import xarray as xr

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


def check_additive_scale(y: xr.DataArray, target: str, lr: float) -> None:
    """Refuse an additive fit whose target varies by less than the optimiser's step.

    The additive form learns its fine-scale terms in the target's units, with Adam
    steps of about ``lr`` each: chlorophyll in kg m-3 (about 1e-7) came out 1000 times
    off (RMSE 1154 times the truth's sd), where the same field in mg m-3 gave 0.41.

    Examples
    --------
    >>> chl = xr.DataArray([2e-7, 3e-7], attrs={"units": "kg m-3"})
    >>> check_additive_scale(chl * 1e6, "chl", 1e-2)  # mg m-3
    >>> check_additive_scale(chl, "chl", 1e-2)
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: target 'chl' varies by 5e-08 kg m-3 (its sd), ...
    """
    spread = float(y.std())
    if spread < lr:
        raise InputDataError(
            f"target {target!r} varies by {spread:.3g} {y.attrs.get('units', '')} (its sd), "
            f"less than the additive form's learning steps (lr={lr:g}), which learns in the "
            "target's units: convert it to units in which it varies by about 1 or more "
            "(chlorophyll in mg m-3), or use mode='multiplicative' for a positive field"
        )
