"""What the proxy downscalers get right and wrong when the truth is outside their family.

The growth-law downscalers (:class:`climlatent.ProxyDownscaler`,
:class:`climlatent.ProxyLatentDownscaler`) assume chlorophyll grows exponentially
with temperature and quadratically with light (seed 000, Section 4.4). This study
fits both on synthetic biogeochemistry worlds (:func:`climlatent.datasets.synthetic_biogeochem`)
whose true laws are in that family and on worlds whose laws are not: a saturating
light response, a thermal optimum, a nutrient limitation the proxies omit, and all
three together. For each it prints:

- the fitted identifiable parameters (the exponential's *b*, the quadratic's *d / c*)
  beside the generator's and beside the **pseudo-true** values: the best the model
  family can do, the least-squares projection of the noise-free log chlorophyll,
  aggregated to the coarse grid (area-weighted block means of the sea cells, as the
  latent model's growth channel), onto ``m(cell) + b T + log(R + (d / c) R^2)`` of the
  coarse drivers (a per-cell intercept, *b* in closed form for each *d / c*, *d / c*
  by a bounded scalar search). On a misspecified world the pseudo-true value is what
  a consistent fit converges to; the true law has no *b* or *d / c* to compare with;
- the held-out log-space RMSE of the downscaled mean against the noise floor (what
  the noise-free truth leaves), its excess in percent;
- the error of the downscaled domain-mean log-chlorophyll trend over the held-out
  years (per decade: what a misspecified law gets wrong under warming);
- the calibration of 20 stochastic realisations on held-out data: the rank
  histogram's largest deviation from flat (relative, 0 is flat) and the spread/skill
  ratio (1 is calibrated).

Run ``python -m climlatent.studies.misspecified_world --output
docs/studies/misspecified_world`` (about 10 minutes on one core): it prints the
table and writes ``misspecified_world.csv`` and ``misspecified_world.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy.optimize import minimize_scalar

from climlatent.datasets.biogeochem import BiogeochemWorld, synthetic_biogeochem
from climlatent.estimators.downscaler import ProxyDownscaler
from climlatent.estimators.proxy_latent import ProxyLatentDownscaler
from climlatent.grid import cell_area
from climlatent.metrics.ensemble import rank_histogram, spread_skill_ratio
from climlatent.metrics.trends import linear_trend
from climlatent.studies.markdown import markdown_table

LAWS = {"tos": "exponential", "rsds": "quadratic"}
WORLDS = {  # name: synthetic_biogeochem options beyond the shared ones
    "in family": {},
    "saturating light": {"light_half_saturation": 100.0},
    "thermal optimum": {"temperature_optimum": 18.0, "temperature_width": 10.0},
    "nutrient limited": {"nutrient_half_saturation": 0.8},
    "all three": {
        "light_half_saturation": 100.0,
        "temperature_optimum": 18.0,
        "temperature_width": 10.0,
        "nutrient_half_saturation": 0.8,
    },
}
SHARED = {"n_years": 15, "n_fine_lat": 40, "n_fine_lon": 60, "factor": 10, "seed": 4}
TEST_YEARS = 5
REALISATIONS = 20


@dataclasses.dataclass(frozen=True)
class PseudoTruth:
    """The model family's best fit to a world's noise-free chlorophyll (coarse scale)."""

    b: float  # degC-1
    ratio: float  # d / c, m2 W-1


def coarse_log_chlorophyll(world: BiogeochemWorld, factor: int) -> xr.DataArray:
    """Area-weighted block means of the noise-free log chlorophyll over sea cells.

    Examples
    --------
    >>> w = synthetic_biogeochem(n_years=1, n_fine_lat=8, n_fine_lon=8, factor=4)
    >>> coarse_log_chlorophyll(w, 4).sizes["lat"]
    2
    """
    log_chl = np.log(world.truth.chl_noise_free)
    weight = cell_area(world.fine).where(log_chl.notnull(), 0.0)
    blocks = {"lat": factor, "lon": factor}
    total = (log_chl.fillna(0.0) * weight).coarsen(blocks).sum()
    return total / weight.coarsen(blocks).sum()


def pseudo_truth(world: BiogeochemWorld, factor: int) -> PseudoTruth:
    """Least-squares projection of the coarse noise-free log chlorophyll on the family.

    ``y = m(cell) + b T + log(R + r R^2)`` over all (member, time, cell) of the coarse
    drivers, ``T`` in degC: for each ``r`` the intercepts and ``b`` have a closed form
    (within-cell centring); ``r`` minimises the residual sum of squares over the range
    that keeps the light term positive.

    Examples
    --------
    >>> w = synthetic_biogeochem(n_years=3, n_fine_lat=16, n_fine_lon=16, factor=4,
    ...                          chl_noise=0.0, tos_anomaly=0.0, cloud_amplitude=0.0)
    >>> p = pseudo_truth(w, 4)
    >>> round(p.b / float(w.truth.b), 2)
    1.0
    """
    y = coarse_log_chlorophyll(world, factor)
    temperature = world.coarse.tos.astype(np.float64) - 273.15
    radiation = world.coarse.rsds.astype(np.float64)
    valid = (y.notnull() & temperature.notnull() & radiation.notnull()).values
    cells = valid.reshape(-1, *valid.shape[-2:]).all(axis=0)  # sea in every sample
    flat = [
        np.asarray(v.values).reshape(-1, cells.size)[:, cells.ravel()]
        for v in (y, temperature, radiation)
    ]
    y, temperature, radiation = flat
    centred_t = temperature - temperature.mean(axis=0)

    def fit(ratio: float) -> tuple[float, float]:
        z = y - np.log(radiation + ratio * radiation**2)
        z = z - z.mean(axis=0)
        b = float((centred_t * z).sum() / (centred_t**2).sum())
        return b, float(((z - b * centred_t) ** 2).sum())

    largest = float(radiation.max())
    search = minimize_scalar(
        lambda r: fit(r)[1],
        bounds=(-0.999 / largest, 10.0 / largest),
        method="bounded",
        options={"xatol": 1e-9},
    )
    return PseudoTruth(b=fit(float(search.x))[0], ratio=float(search.x))


def evaluate(
    model: ProxyDownscaler, world: BiogeochemWorld, split: int, seed: int = 0
) -> dict[str, float]:
    """Fitted laws, held-out skill and calibration of one fitted model.

    Examples
    --------
    >>> w = synthetic_biogeochem(n_years=2, n_fine_lat=8, n_fine_lon=8, factor=4)
    >>> est = ProxyDownscaler(epochs=2, noise=True, progress=False).fit(
    ...     w.coarse.isel(time=slice(0, 12)), w.fine.isel(time=slice(0, 12)), "chl", LAWS)
    >>> sorted(evaluate(est, w, 12))[:3]
    ['b_fitted', 'excess_percent', 'log_rmse']
    """
    test = {"time": slice(split, None)}
    coarse, truth = world.coarse.isel(test), np.log(world.fine.chl.isel(test))
    noise_free = np.log(world.truth.chl_noise_free.isel(test))
    mean = np.log(model.downscale(coarse).chl)
    draws = np.log(model.downscale(coarse, n_samples=REALISATIONS, seed=seed).chl)
    rmse = float(np.sqrt(((mean - truth) ** 2).mean()))
    floor = float(np.sqrt(((noise_free - truth) ** 2).mean()))
    params = model.proxy_parameters()
    histogram = rank_histogram(draws, truth) * (REALISATIONS + 1)
    return {
        "b_fitted": float(params.tos_b),
        "ratio_fitted": float(params.rsds_d / params.rsds_c),
        "log_rmse": rmse,
        "noise_floor": floor,
        "excess_percent": 100 * (rmse / floor - 1),
        "trend_error_per_decade": _trend(mean) - _trend(noise_free),
        "rank_histogram_max_deviation": float(abs(histogram - 1).max()),
        "spread_skill": float(spread_skill_ratio(draws, truth)),
    }


def _trend(log_chl: xr.DataArray) -> float:
    """Least-squares trend of the domain-mean log chlorophyll, per decade."""
    return float(linear_trend(log_chl.mean([d for d in log_chl.dims if d != "time"])))


def models(epochs: int) -> dict[str, ProxyDownscaler]:
    """The two growth-law downscalers, each with calibrated noise."""
    quiet = {"epochs": epochs, "progress": False, "noise": True, "seed": 0, "random_streams": 1}
    return {
        "ProxyDownscaler": ProxyDownscaler(**quiet),
        "ProxyLatentDownscaler": ProxyLatentDownscaler(channels=2, hidden=8, **quiet),
    }


def study(
    worlds: dict[str, dict] = WORLDS, shared: dict = SHARED, epochs: int = 150
) -> pd.DataFrame:
    """One row per (world, model): fitted, pseudo-true and generator parameters, skill.

    Examples
    --------
    >>> small = {"n_years": 3, "n_fine_lat": 8, "n_fine_lon": 8, "factor": 4, "seed": 0}
    >>> table = study({"in family": {}}, small, epochs=2)
    >>> list(table.index.names), len(table)
    (['world', 'model'], 2)
    """
    rows = []
    for name, options in worlds.items():
        world = synthetic_biogeochem(**shared, **options)
        split = world.fine.sizes["time"] - 12 * min(TEST_YEARS, shared["n_years"] - 1)
        train = {"time": slice(None, split)}
        pseudo = pseudo_truth(world, shared["factor"])
        in_family = not options
        for label, model in models(epochs).items():
            start = time.perf_counter()
            model.fit(world.coarse.isel(train), world.fine.isel(train), "chl", LAWS)
            rows.append(
                {
                    "world": name,
                    "model": label,
                    "b_true": float(world.truth.b) if in_family else np.nan,
                    "b_pseudo_true": pseudo.b,
                    "ratio_true": float(world.truth.d / world.truth.c) if in_family else np.nan,
                    "ratio_pseudo_true": pseudo.ratio,
                    **evaluate(model, world, split),
                    "fit_seconds": time.perf_counter() - start,
                }
            )
    table = pd.DataFrame(rows).set_index(["world", "model"])
    table["b_error_percent"] = 100 * (table.b_fitted / table.b_pseudo_true - 1)
    table["ratio_error_percent"] = 100 * (table.ratio_fitted / table.ratio_pseudo_true - 1)
    return table


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: run the study, print the table, write CSV and Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("docs/studies/misspecified_world"))
    parser.add_argument("--epochs", type=int, default=150)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    table = study(epochs=args.epochs)
    args.output.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.output / "misspecified_world.csv", float_format="%.6g")
    shown = table[
        [
            "b_true",
            "b_pseudo_true",
            "b_fitted",
            "ratio_true",
            "ratio_pseudo_true",
            "ratio_fitted",
            "log_rmse",
            "noise_floor",
            "excess_percent",
            "trend_error_per_decade",
            "rank_histogram_max_deviation",
            "spread_skill",
        ]
    ]
    text = markdown_table(shown)
    (args.output / "misspecified_world.md").write_text(
        f"# Growth-law downscalers on worlds outside their family\n\n"
        f"`python -m climlatent.studies.misspecified_world --epochs {args.epochs}`; "
        f"worlds {SHARED}, last {TEST_YEARS} years held out, {REALISATIONS} realisations."
        f"\n\n{text}\n"
    )
    print(text)
    print(f"wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
