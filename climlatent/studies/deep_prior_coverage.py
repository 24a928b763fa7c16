"""Coverage of deep-prior posteriors on Darcy flow with known truth.

An `~climlatent.AuxVAE` (pressure field, guided block tethered to the two KLE
coefficients ``theta``) is trained on KLE2 Darcy data; then for ``--cases`` held-out
fields, pressure is observed at a 3 x 3 array of wells with Gaussian noise
(``--noise`` times the pressure's standard deviation) and the latent posterior is
sampled with NUTS (`climlatent.deep_prior.posterior`, two chains). Printed: how often
the ``--credibility`` intervals of the two ``theta`` contain the true values (nominal:
the credibility), the MAP error, and the worst split R-hat and smallest effective
sample size over all cases. Results also go to ``--output`` as CSV.

The defaults are the committed budget (``docs/studies/deep_prior/coverage.csv``, the
seed-002 ledger's deep-prior row): 60 cases, 600 draws per chain after 400 warm-up
steps, about 40 minutes on one thread. Run ``python -m
climlatent.studies.deep_prior_coverage --help``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

import climlatent as cl
from climlatent.deep_prior import map_estimate, posterior
from climlatent.reference import darcy


def wells(ds: xr.Dataset, indices: Sequence[int] = (2, 8, 14)) -> dict[str, xr.DataArray]:
    """Coordinates of a square array of wells (grid indices ``indices`` on both axes).

    Examples
    --------
    >>> flow = darcy.generate(1, n_grid=17, workers=1)
    >>> {k: v.sizes["well"] for k, v in wells(flow).items()}
    {'y': 9, 'x': 9}
    """
    iy, ix = np.meshgrid(indices, indices, indexing="ij")
    return {
        "y": xr.DataArray(ds["y"].values[iy.ravel()], dims="well"),
        "x": xr.DataArray(ds["x"].values[ix.ravel()], dims="well"),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Run the coverage experiment and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=60)
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--credibility", type=float, default=0.9)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=400)
    parser.add_argument("--output", type=Path, default=Path("docs/studies/deep_prior"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(1)
    train = darcy.generate(512, kle_terms=2, n_grid=17, seed=0, workers=1)
    test = darcy.generate(args.cases, kle_terms=2, n_grid=17, seed=5, workers=1)
    aux = cl.AuxVAE(latent_dim=4, n_scales=2, epochs=args.epochs, lr=3e-3, batch_size=32,
                    random_streams=1, progress=False)  # fmt: skip
    aux.fit(train, "pressure", auxiliary=["theta"])
    rec = aux.reconstruct(test)["pressure"]
    error = float(np.sqrt(((rec - test["pressure"]) ** 2).mean() / test["pressure"].var()))
    noise = args.noise * float(test["pressure"].std())
    points = wells(test)
    rows = []
    for case in range(args.cases):
        truth = test.isel(sample=case)
        rng = np.random.default_rng(100 + case)
        clean = truth["pressure"].sel(points)
        observed = (clean + noise * rng.normal(size=clean.shape)).rename("pressure")
        z_map = map_estimate(aux, observed, noise, seed=case)
        post = posterior(aux, observed, noise, num_samples=args.samples, warmup=args.warmup,
                         credibility=args.credibility, seed=10 * case)  # fmt: skip
        theta = truth["theta"].values
        interval = post.intervals.values
        map_theta = z_map[:2] * aux.aux_std_ + aux.aux_mean_
        for k in range(2):
            rows.append({
                "case": case, "parameter": f"theta[{k + 1}]", "truth": theta[k],
                "map": map_theta[k], "lower": interval[k, 0], "upper": interval[k, 1],
                "covered": bool(interval[k, 0] <= theta[k] <= interval[k, 1]),
                "r_hat_max": float(post.r_hat.max()), "ess_min": float(post.ess.min()),
                "draws": args.samples, "warmup": args.warmup,
            })  # fmt: skip
        bounds = np.round(interval, 2).tolist()
        print(f"case {case:2d}: theta {np.round(theta, 2)} interval {bounds}", flush=True)
    table = pd.DataFrame(rows)
    args.output.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.output / "coverage.csv", index=False)
    print(f"decoder relative RMSE on held-out fields: {error:.3f}; noise std {noise:.4f}")
    print(f"coverage of the {args.credibility:.0%} intervals: {table['covered'].mean():.3f} "
          f"({table['covered'].sum()} of {len(table)}), per parameter "
          f"{table.groupby('parameter')['covered'].mean().round(3).to_dict()}")  # fmt: skip
    print(
        f"MAP |error| mean {np.abs(table['map'] - table['truth']).mean():.3f}; "
        f"interval width mean {(table['upper'] - table['lower']).mean():.3f}"
    )
    print(f"worst R-hat {table['r_hat_max'].max():.3f}, smallest ESS {table['ess_min'].min():.0f}")
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
