"""The two forms of a field-to-field estimator's ``fit``: emulator and downscaler.

`~climlatent.estimators.base.Estimator` (EOF regression, the LLAAE) maps one proxy
field to one target field on any two grids. Fitted as an emulator, both fields come
in one Dataset; fitted as a downscaler, the proxy comes from a coarse Dataset and the
target from a fine one, as every downscaler of the package takes them, so that the
two grids may share dim names.
"""

from __future__ import annotations

import inspect
from typing import Any

import xarray as xr


def _emulator_fit(
    ds: xr.Dataset, target: str, proxy: str, **training: Any
) -> tuple[xr.Dataset, xr.Dataset, str, str, dict[str, Any]]:
    return ds, ds, target, proxy, training


def _downscaler_fit(
    coarse: xr.Dataset,
    fine: xr.Dataset,
    target: str,
    proxies: str | None = None,
    **training: Any,
) -> tuple[xr.Dataset, xr.Dataset, str, str, dict[str, Any]]:
    if proxies is not None and not isinstance(proxies, str):
        raise TypeError(
            f"proxies must name one coarse field of the proxy, got {proxies!r}: this "
            f"estimator maps one field, with no growth laws (those are ProxyDownscaler's)"
        )
    return coarse, fine, target, proxies or target, training


def fit_call(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[xr.Dataset, xr.Dataset, str, str, dict[str, Any]]:
    """Read an `Estimator.fit` call in either form.

    ``fit(ds, target, proxy, **training)`` (an emulator: both fields in ``ds``) or
    ``fit(coarse, fine, target, proxies=None, **training)`` (a downscaler: the proxy,
    by default the target's own coarse field, from ``coarse``, the target from
    ``fine``), told apart by a Dataset second or the keywords ``coarse``/``fine``.

    Returns
    -------
    proxy_data, target_data, target, proxy, training
        The Datasets holding the proxy and the target, their names, and the options
        passed on to the training loop.

    Examples
    --------
    >>> ds = xr.Dataset()
    >>> fit_call((ds,), {"target": "pr", "proxy": "psl"})[2:]
    ('pr', 'psl', {})
    >>> fit_call((ds, ds, "tas"), {"resume": True})[2:]
    ('tas', 'tas', {'resume': True})
    >>> fit_call((ds, "pr"), {})
    Traceback (most recent call last):
    ...
    TypeError: fit(ds, target, proxy): missing a required argument: 'proxy'
    """
    downscaling = bool({"coarse", "fine"} & set(kwargs)) or (
        len(args) > 1 and isinstance(args[1], xr.Dataset)
    )
    form, spelling = (
        (_downscaler_fit, "fit(coarse, fine, target, proxies=None)")
        if downscaling
        else (_emulator_fit, "fit(ds, target, proxy)")
    )
    try:
        inspect.signature(form).bind(*args, **kwargs)
    except TypeError as err:
        raise TypeError(f"{spelling}: {err}") from None
    return form(*args, **kwargs)
