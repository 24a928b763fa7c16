"""A weather generator on top of a fitted proxy -> target estimator.

New realisations of the target come from new proxy series: the proxy's leading
principal components (PCs) are either block-bootstrapped from the given data or
simulated by a vector autoregression VAR(p) fitted to them; each simulated PC series
is mapped back to a proxy field and through the estimator. The target variability the
proxy does not explain is added back by resampling the residuals
``target - emulate(proxy)`` of the given data: jointly with the proxy blocks for the
bootstrap (so each realisation is a block bootstrap of the true target), in
independent blocks for the VAR. Residuals add where the estimator's model is additive,
after its target transform: with ``target_transform="log1p"`` they add to
``log1p(pr / s)``, which bounds precipitation below at ``-s``, not at 0. What a model
puts beyond a physical bound (below 0) is set to it, with a record of how much
(`climlatent.physical_bounds.clip_to_bounds`): the realisations' variance is then below
the data's (a VAR run on the synthetic data clipped 11 % of its values, keeping 0.75
of the variance).

The realisations carry the dates of the given data, and their seasons are where those
dates say: each block comes from the same time of year as the steps it fills (within
15 days, or the same month of monthly data), and the VAR runs on anomalies about the
PCs' annual cycle (3 harmonics), added back at each date. A time axis without dates
has no seasons: blocks then come from anywhere.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from climlatent.batching import from_matrix, to_matrix
from climlatent.checks import check_int
from climlatent.draw_addresses import check_draw_dim_free
from climlatent.draws import REALIZATION_DIM, realizations
from climlatent.errors import InputDataError
from climlatent.estimators._seasons import annual_cycle, fit_annual_cycle, year_phase
from climlatent.estimators._weather import block_bootstrap, fit_var
from climlatent.estimators.base import Estimator
from climlatent.grid import find_member, find_time
from climlatent.physical_bounds import CLIPPED_ATTR
from climlatent.transforms import Log1p

PC_DIM = "pc"


def weather_generator(
    estimator: Estimator,
    ds: xr.Dataset,
    n_realizations: int,
    method: str = "var",
    order: int = 1,
    block_length: int = 30,
    add_residuals: bool = True,
    seed: int = 0,
    check_range: bool = True,
) -> xr.Dataset:
    """New realisations of the target from resampled or simulated proxy series.

    Parameters
    ----------
    estimator : Estimator
        A fitted estimator with a proxy EOF basis (``EOFRegression``, or ``LLAAE``
        with ``proxy_input="eofs"``).
    ds : xr.Dataset
        Proxy and target on the estimator's grids (in any latitude order, longitude
        convention or dim order), with a time axis and optionally a member dim (pooled:
        one named ``realization`` too); the series to resample or to fit the VAR to. A
        scalar ``realization`` coordinate (a member selected) is refused: rename it.
    n_realizations : int
        Realisations to generate, each as long as ``ds``'s time axis.
    method : {"var", "bootstrap"}
        Simulate the proxy PCs with a VAR(``order``) or block-bootstrap them.
    order, block_length : int
        VAR order; bootstrap block length in time steps (also used for residuals).
    add_residuals : bool
        Add resampled residuals ``target - emulate(proxy)`` so that realisations carry
        the target's full variability, not only its proxy-induced part.
    seed : int
        Seed of the random generator (>= 0).
    check_range : bool
        Refuse proxy values beyond the fitted range by more than the estimator's
        ``range_tolerance`` times its width (fill values, mislabelled units).

    Returns
    -------
    xr.Dataset
        The target with dims ``(realization, time, <grid>)`` on ``ds``'s time axis
        (``realization`` numbered from 0, CF's; within its physical bounds: values set
        to them counted in its attribute ``climlatent_clipped``), and the proxy PCs
        used, ``<proxy>_pc`` with dims ``(realization, pc, time)`` (CF's order: other
        dims before time).

    Warns
    -----
    UserWarning
        Residuals added in the target's units (a model without
        ``target_transform="log1p"``) took values beyond a physical bound: set to it,
        they raise the realisations' mean above the data's.

    Examples
    --------
    >>> import climlatent as cl
    >>> ds = cl.datasets.synthetic_circulation(n_members=1, n_years=3, n_lat=8, n_lon=8)
    >>> est = cl.EOFRegression(n_proxy_eofs=3, target_transform="log1p").fit(ds, "pr", "psl")
    >>> gen = weather_generator(est, ds, n_realizations=2)
    >>> gen["pr"].dims, gen["psl_pc"].sizes["pc"]
    (('realization', 'time', 'lat', 'lon'), 3)
    """
    estimator._require_fitted("weather_generator")
    basis = getattr(estimator, "proxy_basis_", None)
    if basis is None:
        raise ValueError(
            f"{type(estimator).__name__} has no proxy EOF basis: fit it with "
            f"proxy EOFs (proxy_input='eofs') to use the weather generator"
        )
    if method not in ("var", "bootstrap"):
        raise ValueError(f"method must be 'var' or 'bootstrap', got {method!r}")
    check_int("seed", seed, 0)  # numpy's errors do not name it; True seeds as 1
    check_draw_dim_free(ds, members_pooled=True)  # a scalar realization: a member's label
    x = estimator._prepare_proxy(ds, check_range)
    time, member = find_time(x), find_member(x)
    if time is None:
        raise InputDataError(f"proxy variable {estimator.proxy_!r} has no time axis")
    extra = set(estimator.proxy_layout_.sample_dims(x)) - {time, member}
    if extra:
        raise InputDataError(
            f"proxy variable {estimator.proxy_!r} has extra dims {sorted(extra)}; "
            f"select them away first"
        )
    x = x.transpose(*[d for d in (member, time) if d], ...)
    x_in = estimator.proxy_transform_.forward(x) if estimator.proxy_transform_ else x
    n_members, n_time = (x.sizes[member] if member else 1), x.sizes[time]
    pcs = basis.project(to_matrix(x_in, estimator.proxy_layout_)).reshape(n_members, n_time, -1)

    rng = np.random.default_rng(seed)
    phases = year_phase(x[time])  # blocks keep their time of year; None without dates
    index = np.arange(n_members * n_time, dtype=np.float64).reshape(n_members, n_time, 1)
    draw = {"n_realizations": n_realizations, "block_length": block_length, "rng": rng}
    if method == "bootstrap":
        drawn = block_bootstrap(np.concatenate([pcs, index], -1), phases=phases, **draw)
        sim_pcs, picks = drawn[..., :-1], drawn[..., -1]
    else:
        cycle = np.zeros((n_time, pcs.shape[-1]))
        if phases is not None:  # the VAR runs on anomalies about the annual cycle
            cycle = annual_cycle(fit_annual_cycle(pcs, phases), phases)
        sim_pcs = fit_var(pcs - cycle, order=order).simulate(n_realizations, n_time, rng) + cycle
        picks = block_bootstrap(index, phases=phases, **draw)[..., 0]

    y_sim = estimator._predict(basis.reconstruct(sim_pcs.reshape(-1, sim_pcs.shape[-1])))
    if add_residuals:  # where the model is additive: after its target transform
        y_sim = (
            y_sim + _residuals(estimator, ds, x_in, (member, time))[picks.astype(np.int64).ravel()]
        )
    drawn = realizations(n_realizations, "realisation of the weather generator")
    samples = {REALIZATION_DIM: drawn, time: x[time]}
    target = from_matrix(y_sim, estimator.target_layout_, samples)
    call = (
        f"weather_generator(ds, n_realizations={n_realizations}, method={method!r}, "
        f"order={order}, block_length={block_length}, add_residuals={add_residuals}, "
        f"seed={seed})"
    )
    result = estimator._wrap(target.rename(estimator.target_), ds, call)
    clipped = result[estimator.target_].attrs.get(CLIPPED_ATTR)
    if clipped and add_residuals and not isinstance(estimator.target_transform_, Log1p):
        warnings.warn(
            f"weather_generator: {clipped}: residuals added in "
            f"{estimator.target_attrs_['units']} took them there, so the realisations' mean "
            f"is above the data's; a model fitted with target_transform='log1p' adds them "
            f"as factors",
            UserWarning,
            stacklevel=2,
        )
    result[f"{estimator.proxy_}_pc"] = xr.DataArray(
        sim_pcs.transpose(0, 2, 1).astype(np.float32),
        dims=(REALIZATION_DIM, PC_DIM, time),
        coords={time: x[time]},
        attrs={
            "long_name": f"principal components of {estimator.proxy_} driving the realisation",
            "units": "1",
        },
    )
    return result


def _residuals(
    estimator: Estimator, ds: xr.Dataset, x_in: xr.DataArray, samples: tuple[str | None, str]
) -> np.ndarray:
    """Residuals ``target - prediction(proxy)`` as rows, member-major.

    In the space the model predicts in, after its target transform: residuals of a
    log1p-transformed precipitation add to a simulated day as factors, not as amounts
    a dry day cannot give back. ``x_in`` is the transformed proxy of ``ds``, its sample
    dims ``samples`` (member, time) first.
    """
    y = estimator._prepare_target(ds).transpose(*[d for d in samples if d], ...)
    prediction = estimator._predict(to_matrix(x_in, estimator.proxy_layout_))
    return estimator._target_matrix(y) - prediction
