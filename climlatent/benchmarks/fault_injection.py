"""Fault injection: ordinary mistakes and layouts against every estimator and the Regridder.

Each case changes clean data the way real files differ (latitude north to south,
longitudes -180..180, dims transposed) or go wrong (an unmasked fill value, pressure in
Pa labelled hPa, inf in the training target, a pressure-level dim, another calendar,
float16 overflow) and says what must happen: the same numbers as the clean run, or a
climlatent error. Every outcome is classified as *correct result*, *clean error*,
*silently wrong* (a result that differs from the clean one, or a result where an error
was due) or *raw exception* (any non-climlatent exception). The acceptance is zero of
the last two. Run ``python -m climlatent.benchmarks.fault_injection`` for the table.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from climlatent.datasets import synthetic_biogeochem, synthetic_circulation
from climlatent.errors import ClimlatentError
from climlatent.estimators.downscaler import ProxyDownscaler
from climlatent.estimators.eof_regression import EOFRegression
from climlatent.estimators.llaae import LLAAE
from climlatent.estimators.vae import VAE
from climlatent.estimators.vae_dlm import VAEDLM
from climlatent.estimators.ved import VED
from climlatent.reference import burgers, darcy
from climlatent.regrid import Regridder

Layout = Callable[[xr.Dataset], xr.Dataset]


def descending_latitude(ds: xr.Dataset) -> xr.Dataset:
    """Latitude north to south, as ERA5 stores it."""
    return ds.isel(lat=slice(None, None, -1))


def longitude_180(ds: xr.Dataset) -> xr.Dataset:
    """Longitudes in -180..180 (the data moved with them)."""
    out = ds.assign_coords(lon=(ds.lon + 180.0) % 360.0 - 180.0).sortby("lon")
    out["lon"].attrs = ds["lon"].attrs
    return out


def transposed(ds: xr.Dataset) -> xr.Dataset:
    """Longitude before latitude, sample dims last."""
    return ds.transpose("lon", "lat", ...)


def fill_value(name: str) -> Layout:
    """One cell of ``name`` at 1e30: an unmasked fill value."""

    def change(ds: xr.Dataset) -> xr.Dataset:
        out = ds.copy(deep=True)
        out[name][(0,) * out[name].ndim] = 1e30
        return out

    return change


def mislabelled(name: str, factor: float, units: str) -> Layout:
    """``name`` multiplied by ``factor`` but labelled ``units`` (e.g. Pa labelled hPa)."""

    def change(ds: xr.Dataset) -> xr.Dataset:
        out = ds.copy()
        out[name] = (ds[name] * factor).assign_attrs({**ds[name].attrs, "units": units})
        return out

    return change


def infinite(name: str) -> Layout:
    """One cell of ``name`` infinite."""

    def change(ds: xr.Dataset) -> xr.Dataset:
        out = ds.copy(deep=True)
        out[name][(0,) * out[name].ndim] = np.inf
        return out

    return change


def pressure_levels(name: str) -> Layout:
    """``name`` on two pressure levels (a ``plev`` dim, CF axis Z)."""

    def change(ds: xr.Dataset) -> xr.Dataset:
        attrs = {"axis": "Z", "units": "Pa", "standard_name": "air_pressure"}
        plev = xr.DataArray([85000.0, 50000.0], dims="plev", name="plev", attrs=attrs)
        out = ds.copy()
        out[name] = ds[name].expand_dims(plev=plev).transpose(..., "lat", "lon")
        return out

    return change


def calendar_360(ds: xr.Dataset) -> xr.Dataset:
    """The same days on the 360_day calendar (an other model's calendar)."""
    return ds.convert_calendar("360_day", align_on="year")


def float16(name: str) -> Layout:
    """``name`` stored as float16 (values above 65504 overflow to inf)."""

    def change(ds: xr.Dataset) -> xr.Dataset:
        out = ds.copy()
        out[name] = ds[name].astype(np.float16)
        return out

    return change


@dataclass(frozen=True)
class Case:
    """One fault: a name, where it is injected, the change, and the required outcome."""

    name: str
    stage: str  # "fit" (training data changed) or "apply" (data given to the fitted model)
    change: Layout
    expect: str  # "equal" or "error"


@dataclass(frozen=True)
class Subject:
    """An estimator (or the Regridder): how to fit it and apply it, and its inputs."""

    name: str
    fit: Callable[[xr.Dataset], object]
    apply: Callable[[object, xr.Dataset], xr.DataArray]
    data: Callable[[], xr.Dataset]
    proxy: str
    target: str | None
    geographic: bool = True  # on a latitude-longitude grid (else a plain image grid)


def _circulation() -> xr.Dataset:
    return synthetic_circulation(n_members=1, n_years=2)


_WORLD = {}


def _world():
    """The small biogeochemistry world (coarse drivers, fine chlorophyll), made once."""
    if not _WORLD:
        _WORLD["world"] = synthetic_biogeochem(n_members=1, n_years=2, n_fine_lat=12,
                                               n_fine_lon=12)  # fmt: skip
    return _WORLD["world"]


def _darcy() -> xr.Dataset:
    """A small Darcy-flow set (17 x 17, 64 samples), made once."""
    if "darcy" not in _WORLD:
        _WORLD["darcy"] = darcy.generate(64, kle_terms=2, n_grid=17, workers=1)
    return _WORLD["darcy"]


def _fit_downscaler(coarse: xr.Dataset) -> ProxyDownscaler:
    """Faults go into the coarse drivers; the fine target is the clean one."""
    return ProxyDownscaler(epochs=2).fit(
        coarse, _world().fine, "chl", proxies={"tos": "exponential", "rsds": "quadratic"}
    )


SUBJECTS = [
    Subject(
        "EOFRegression",
        lambda ds: EOFRegression(n_proxy_eofs=4, n_target_eofs=4).fit(ds, "pr", "psl"),
        lambda est, ds: est.emulate(ds)["pr"],
        _circulation,
        "psl",
        "pr",
    ),
    Subject(
        "LLAAE",
        lambda ds: LLAAE(latent_dim=4, filters=(4, 8), epochs=1, progress=False, device="cpu").fit(
            ds, "pr", "psl"
        ),
        lambda est, ds: est.emulate(ds)["pr"],
        _circulation,
        "psl",
        "pr",
    ),
    Subject(
        "ProxyDownscaler",
        _fit_downscaler,
        lambda est, ds: est.downscale(ds)["chl"],
        lambda: _world().coarse,
        "tos",
        None,  # the target is in the fine Dataset, which the cases leave clean
    ),
    Subject(
        "VAE",
        lambda ds: VAE(latent_dim=2, n_scales=2, epochs=1, progress=False, device="cpu").fit(
            ds, ["pressure", "u_x"]
        ),
        lambda est, ds: est.encode(ds),
        lambda: _darcy(),
        "pressure",
        "u_x",
        geographic=False,
    ),
    Subject(
        "VED",
        lambda ds: VED(latent_dim=2, epochs=1, progress=False, device="cpu").fit(
            ds, target=["pressure"], proxy=["log_permeability"]
        ),
        lambda est, ds: est.emulate(ds)["pressure"],
        lambda: _darcy(),
        "log_permeability",
        "pressure",
        geographic=False,
    ),
    Subject(
        "VAEDLM",
        lambda ds: VAEDLM(epochs=1, progress=False, device="cpu").fit(ds, "u"),
        lambda est, ds: est.emulate(ds)["u"],
        lambda: burgers.generate(16, nx=32, nt=5),
        "u",
        "u",
        geographic=False,
    ),
    Subject(
        "Regridder",
        lambda ds: Regridder(
            ds, ds.coarsen(lat=2, lon=2).mean(), "conservative", engine="climlatent"
        ),  # fmt: skip
        lambda rg, ds: rg(ds["psl"]),
        _circulation,
        "psl",
        "pr",
    ),
]


def cases(subject: Subject) -> list[Case]:
    """The fault table for one subject."""
    proxy, target = subject.proxy, subject.target
    if not subject.geographic:
        return [
            Case(f"{proxy} = 1e30 in one cell", "apply", fill_value(proxy), "error"),
            Case(f"{proxy} at fit: 1e30 in one cell", "fit", fill_value(proxy), "error"),
            Case(f"{target} at fit: one cell inf", "fit", infinite(target), "error"),
        ]
    layouts = [("descending latitude", descending_latitude), ("longitude -180..180",
               longitude_180), ("dims transposed", transposed)]  # fmt: skip
    out = [Case(f"{name} at {stage}", stage, change, "equal")
           for name, change in layouts for stage in ("fit", "apply")]  # fmt: skip
    out += [
        Case(f"{proxy} = 1e30 in one cell", "apply", fill_value(proxy), "error"),
        Case(f"{proxy} at fit: 1e30 in one cell", "fit", fill_value(proxy), "error"),
        Case(f"{proxy} at apply: 2 pressure levels", "apply", pressure_levels(proxy), "error"),
        Case(f"{proxy} at fit: 2 pressure levels", "fit", pressure_levels(proxy), "error"),
    ]
    if subject.name == "Regridder":
        return out[:6]  # the regridder has no fitted range, units or sample dims
    out += [
        Case(f"{proxy} x100 labelled {subject.data()[proxy].attrs['units']}", "apply",
             mislabelled(proxy, 100.0, subject.data()[proxy].attrs["units"]), "error"),
        *([Case(f"{target} at fit: one cell inf", "fit", infinite(target), "error")]
          if target else []),
        Case("360_day calendar at apply", "apply", calendar_360, "error"),
        Case(f"{proxy} at apply: float16 x1e5", "apply",
             lambda ds: float16(proxy)(mislabelled(proxy, 1e5, ds[proxy].attrs["units"])(ds)),
             "error"),
    ]  # fmt: skip
    return out


def _same(a: xr.DataArray, b: xr.DataArray) -> bool:
    """Equal numbers and NaNs once both are in one layout."""

    def tidy(da: xr.DataArray) -> xr.DataArray:
        spatial = [d for d in da.dims if "lat" in str(d) or "lon" in str(d)]
        da = da.transpose(*[d for d in da.dims if d not in spatial], *sorted(spatial))
        for dim in spatial:
            if "lon" in str(dim):
                da = da.assign_coords({dim: da[dim] % 360.0})
            da = da.sortby(dim)
        return da

    a, b = tidy(a), tidy(b)
    return a.shape == b.shape and bool(np.array_equal(a.values, b.values, equal_nan=True))


def run_case(subject: Subject, case: Case, clean: xr.Dataset, reference: xr.DataArray) -> str:
    """The outcome of one case: correct result, clean error, silently wrong or raw."""
    try:
        data = case.change(clean)
        if case.stage == "fit":
            result = subject.apply(subject.fit(data), clean)
        else:
            result = subject.apply(subject.fit(clean), data)
        result = result.compute()
    except ClimlatentError:
        return "clean error" if case.expect == "error" else "silently wrong"
    except Exception as error:  # noqa: BLE001 - classifying is the point
        return f"raw exception: {type(error).__name__}: {str(error)[:80]}"
    if case.expect == "equal" and _same(result, reference):
        return "correct result"
    return "silently wrong"


def table(subjects: Sequence[Subject] = SUBJECTS) -> pd.DataFrame:
    """Every case against every subject: one row each, with its outcome."""
    rows = []
    for subject in subjects:
        clean = subject.data()
        reference = subject.apply(subject.fit(clean), clean).compute()
        for case in cases(subject):
            rows.append(
                {"subject": subject.name, "case": case.name, "expected": case.expect,
                 "outcome": run_case(subject, case, clean, reference)}
            )  # fmt: skip
    return pd.DataFrame(rows)


def counts(outcomes: pd.DataFrame) -> dict[str, int]:
    """Tried, clean error, correct result, silently wrong, raw exception."""
    kinds = outcomes["outcome"].str.split(":").str[0]
    return {
        "tried": len(outcomes),
        **{kind: int((kinds == kind).sum()) for kind in
           ("clean error", "correct result", "silently wrong", "raw exception")},
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    """Print the fault table and its counts."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    outcomes = table()
    with pd.option_context("display.width", 200, "display.max_colwidth", 90):
        print(outcomes.to_string(index=False))
    print(", ".join(f"{k}: {v}" for k, v in counts(outcomes).items()))


if __name__ == "__main__":
    main()
