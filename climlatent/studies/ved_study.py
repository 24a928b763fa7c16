"""VED vs regularised CCA on Darcy flow: the latent size each needs for a test error.

The study of Venkatasubramanian & Barajas-Solano (2024) on our Darcy data: the input
``x`` is the log-permeability (a ``--kle-terms``-term KLE, so ``x`` spans that many
dimensions), the output ``y`` the pressure, both on the ``--n-grid`` node grid. Two
encoder-decoders of latent size ``r`` are compared on held-out samples:

- ``VED`` (:class:`climlatent.estimators.ved.VED`, fully connected encoder and
  decoder): ELBO of ``log p(y|x)`` with ``beta`` KL and the covariance penalty
  ``lambda ||Cov_q(z)[z] - I||_F^2``; trained for each ``r`` in ``--latent-sizes``
  at each ``beta,lambda`` pair of ``--curves`` (default: the full loss, ``1,1``, and
  the covariance penalty alone, ``0,1``), then over the ``--betas`` x
  ``--covariance-weights`` grid at ``r = --grid-latent``;
- ``CCA`` (:class:`climlatent.cca.CCARegression`): the code is the first ``r``
  canonical variates of ``x``, ``y`` is predicted through the canonical
  correlations; the ridge regularisation is chosen for each ``r`` among
  ``--cca-regularisations`` on a validation split of the training set, then CCA
  is refitted on the whole training set.

Test error is the relative RMSE ``sqrt(sum (y - y_hat)^2 / sum (y - mean_train(y))^2)``
over test samples and grid nodes (1 = predicting the training mean). For the VED the
table also gives, on the test set, the mean KL of ``q(z|x)`` to ``N(0, I)`` (nats),
``||Cov_q(z)[z] - I||_F`` of the aggregate encoding distribution, the active latent
dimensions (variance of the posterior mean over samples > 0.01) and a generative
score: the relative error of the pointwise standard deviation of 1000 pressures
decoded from prior draws ``z ~ N(0, I)`` against that of the test pressures.

Outputs in ``--output``: ``results.csv`` (one row per run or CCA rank), ``needed.csv``
(smallest evaluated ``r`` reaching each error level, per model) and ``study.png``.
Run ``python -m climlatent.studies.ved_study`` (or ``climlatent study ved_study``).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr
from threadpoolctl import threadpool_limits

from climlatent.cca import CCARegression
from climlatent.estimators.ved import VED
from climlatent.reference.darcy import generate
from climlatent.studies.workers import study_runs

INPUT, OUTPUT = "log_permeability", "pressure"
CCA_RANKS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)

_DATA: dict[str, xr.Dataset] = {}  # inherited by forked workers


def relative_error(prediction: np.ndarray, truth: np.ndarray, mean: np.ndarray) -> float:
    """Relative RMSE of ``prediction`` against ``truth``, w.r.t. predicting ``mean``."""
    return math.sqrt(float(((prediction - truth) ** 2).sum() / ((truth - mean) ** 2).sum()))


def _matrix(ds: xr.Dataset, name: str) -> np.ndarray:
    return ds[name].values.reshape(ds.sizes["sample"], -1).astype(np.float64)


def cca_rows(
    train: xr.Dataset, test: xr.Dataset, regularisations: Sequence[float], seed: int
) -> list[dict]:
    """Test error of CCA for each rank, the regularisation chosen on a validation split."""
    x, y = _matrix(train, INPUT), _matrix(train, OUTPUT)
    x_test, y_test = _matrix(test, INPUT), _matrix(test, OUTPUT)
    order = np.random.default_rng(seed).permutation(len(x))
    valid, fit = order[: len(x) // 10], order[len(x) // 10 :]
    available = min(np.linalg.matrix_rank(x - x.mean(0)), len(fit) - 1)
    ranks = [r for r in CCA_RANKS if r <= available]
    valid_errors = {}
    for reg in regularisations:
        cca = CCARegression(max(ranks), reg).fit(x[fit], y[fit])
        mean = y[fit].mean(0)
        valid_errors[reg] = [
            relative_error(cca.emulate(x[valid], r), y[valid], mean) for r in ranks
        ]
    rows, mean = [], y.mean(0)
    for reg in regularisations:
        started = time.perf_counter()
        cca = CCARegression(max(ranks), reg).fit(x, y)
        seconds = time.perf_counter() - started
        for i, r in enumerate(ranks):
            best = min(regularisations, key=lambda g, i=i: valid_errors[g][i])
            rows.append(
                {
                    "method": "CCA",
                    "model": "CCA",
                    "study": "latent" if reg == best else "cca_regularisation",
                    "latent_dim": r,
                    "regularisation": reg,
                    "relative_error": relative_error(cca.emulate(x_test, r), y_test, mean),
                    "valid_error": valid_errors[reg][i],
                    "canonical_correlation": float(cca.canonical_correlations_[i]),
                    "seconds": seconds,
                }
            )
    return rows


def score_ved(ved: VED, train: xr.Dataset, test: xr.Dataset) -> dict[str, float]:
    """Test error, latent statistics and prior-sample score of a fitted VED.

    Returns
    -------
    dict
        ``relative_error`` (test pressure, w.r.t. the training mean), ``kl`` (mean KL of
        ``q(z|x)`` to ``N(0, I)`` on the test set, nats), ``covariance_deviation``
        (``||Cov_q(z)[z] - I||_F`` of the test set's aggregate encoding distribution),
        ``active_dims`` (variance of the posterior mean > 0.01) and ``prior_std_error``
        (relative error of the pointwise standard deviation of 1000 pressures decoded
        from ``z ~ N(0, I)`` against that of the test pressures).

    Examples
    --------
    >>> from climlatent.reference.darcy import generate
    >>> data = generate(40, kle_terms=4, n_grid=9, workers=1)
    >>> ved = VED(latent_dim=2, hidden=8, epochs=1, progress=False, device="cpu")
    >>> ved = ved.fit(data, target=OUTPUT, proxy=INPUT)
    >>> sorted(score_ved(ved, data, data))
    ['active_dims', 'covariance_deviation', 'kl', 'prior_std_error', 'relative_error']
    """
    truth = test[OUTPUT].values
    mean = train[OUTPUT].values.mean(0)
    error = relative_error(ved.emulate(test)[OUTPUT].values, truth, mean)
    mu, std = (a.values.astype(np.float64) for a in ved.posterior(test))
    kl = 0.5 * (mu**2 + std**2 - 1 - 2 * np.log(std)).sum(1).mean()
    centred = mu - mu.mean(0)
    cov = centred.T @ centred / len(mu) + np.diag((std**2).mean(0))
    r = mu.shape[1]
    z = np.random.default_rng(0).normal(size=(1000, r))
    generated = ved.decode(xr.DataArray(z, dims=("sample", "latent")))[OUTPUT].values
    sd_test = truth.std(0)
    return {
        "relative_error": error,
        "kl": float(kl),
        "covariance_deviation": float(np.linalg.norm(cov - np.eye(r))),
        "active_dims": int((mu.var(0) > 0.01).sum()),
        "prior_std_error": float(
            np.linalg.norm(generated.std(0) - sd_test) / np.linalg.norm(sd_test)
        ),
    }


def run_ved(job: dict) -> dict:
    """Train one VED on the training set and score it on the test set."""
    torch.set_num_threads(1)
    threadpool_limits(1)  # one BLAS thread per process: the cores are shared
    train, test = _DATA["train"], _DATA["test"]
    config = job["config"]
    started = time.perf_counter()
    ved = VED(**config, random_streams=1).fit(train, target=OUTPUT, proxy=INPUT)
    seconds = time.perf_counter() - started
    return {
        "method": "VED",
        "model": _label(config["beta"], config["covariance_weight"]),
        "study": job["study"],
        "latent_dim": config["latent_dim"],
        "beta": config["beta"],
        "covariance_weight": config["covariance_weight"],
        **score_ved(ved, train, test),
        "epochs_run": len(ved.history_),
        "seconds": seconds,
    }


def jobs(args: argparse.Namespace, n_train: int) -> list[dict]:
    """The VED runs: the latent sizes, then the (beta, lambda) grid at one latent size."""
    steps = math.ceil(n_train * 0.9 / args.batch_size) * args.epochs
    base = dict(
        hidden=args.hidden,
        hidden_layers=2,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_decay=0.3,
        lr_decay_steps=max(int(0.4 * steps), 1),
        validation_fraction=0.1,
        early_stopping_patience=args.patience,
        seed=args.seed,
        device="cpu",
        progress=False,
    )
    out = [
        {"study": "latent", "config": {**base, "latent_dim": r, "beta": beta,
                                       "covariance_weight": lam}}
        for beta, lam in args.curves
        for r in args.latent_sizes
    ]  # fmt: skip
    for beta in args.betas:
        for lam in args.covariance_weights:
            if (beta, lam) in args.curves and args.grid_latent in args.latent_sizes:
                continue  # a run of the latent-size study
            config = {**base, "latent_dim": args.grid_latent, "beta": beta,
                      "covariance_weight": lam}  # fmt: skip
            out.append({"study": "beta_lambda", "config": config})
    return out


def needed(results: pd.DataFrame, levels: Sequence[float]) -> pd.DataFrame:
    """Smallest evaluated latent size reaching each error level, per model (NA: none)."""
    curves = results[results["study"] == "latent"]
    table = pd.DataFrame({"error_level": list(levels)})
    for model, curve in curves.groupby("model", sort=False):
        table[model] = pd.array(
            [curve.loc[curve["relative_error"] <= level, "latent_dim"].min() for level in levels],
            dtype="Int64",
        )
    return table


def _label(beta: float, lam: float) -> str:
    return f"VED beta={beta:g} lambda={lam:g}"


def _pair(text: str) -> tuple[float, float]:
    beta, lam = (float(v) for v in text.split(","))
    return beta, lam


def plot(results: pd.DataFrame, args: argparse.Namespace, path: Path) -> None:
    """Error vs latent size per model; error, covariance, prior samples over (beta, lambda)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(20, 4.2), constrained_layout=True)
    curves = results[results["study"] == "latent"].sort_values("latent_dim")
    for model, curve in curves.groupby("model", sort=False):
        marker = "s" if model == "CCA" else "o"
        axes[0].plot(curve["latent_dim"], curve["relative_error"], marker=marker, label=model)
    axes[0].axhline(args.target_error, color="grey", ls="--", label=f"target {args.target_error:g}")
    axes[0].set_xscale("log", base=2)
    axes[0].set_xlabel("latent size r")
    axes[0].set_ylabel("test relative RMSE of pressure")
    axes[0].legend()
    ved = results[results["method"] == "VED"]
    grid = ved[ved["latent_dim"] == args.grid_latent]
    for ax, column, title in (
        (axes[1], "relative_error", "test relative RMSE"),
        (axes[2], "covariance_deviation", "||Cov_q(z)[z] - I||_F (test)"),
        (axes[3], "prior_std_error", "prior samples: std-field error"),
    ):
        table = grid.pivot_table(index="beta", columns="covariance_weight", values=column)
        image = ax.imshow(table.values, origin="lower", cmap="viridis", aspect="auto")
        for (i, j), value in np.ndenumerate(table.values):
            ax.text(j, i, f"{value:.3g}", ha="center", va="center",
                    bbox={"facecolor": "white", "alpha": 0.7, "linewidth": 0})  # fmt: skip
        ax.set_xticks(range(table.shape[1]), [f"{v:g}" for v in table.columns])
        ax.set_yticks(range(table.shape[0]), [f"{v:g}" for v in table.index])
        ax.set_xlabel("lambda (covariance_weight)")
        ax.set_ylabel("beta")
        ax.set_title(f"VED r = {args.grid_latent}: {title}")
        fig.colorbar(image, ax=ax)
    fig.suptitle(
        f"Darcy KLE{args.kle_terms}, {args.n_grid}x{args.n_grid}: log-permeability -> pressure"
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the study; write results.csv, needed.csv and study.png; print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=500)
    parser.add_argument("--kle-terms", type=int, default=128)
    parser.add_argument("--n-grid", type=int, default=33)
    parser.add_argument("--latent-sizes", type=int, nargs="+", default=[2, 4, 6, 8, 12, 16, 32])
    parser.add_argument("--curves", type=_pair, nargs="+", default=[(1.0, 1.0), (0.0, 1.0)],
                        metavar="BETA,LAMBDA")  # fmt: skip
    parser.add_argument("--grid-latent", type=int, default=8)
    parser.add_argument("--betas", type=float, nargs="+", default=[0.0, 1.0, 4.0])
    parser.add_argument("--covariance-weights", type=float, nargs="+", default=[0.0, 1.0, 10.0])
    parser.add_argument("--cca-regularisations", type=float, nargs="+",
                        default=[1e-2, 1e-1, 1.0, 10.0, 100.0])  # fmt: skip
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--patience", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--target-error", type=float, default=0.4)
    parser.add_argument("--error-levels", type=float, nargs="+",
                        default=[0.5, 0.45, 0.42, 0.38, 0.36, 0.34])  # fmt: skip
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("ved-study"))
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    torch.set_num_threads(1)
    threadpool_limits(1)
    torch.manual_seed(args.seed)
    options = dict(kle_terms=args.kle_terms, n_grid=args.n_grid)
    _DATA["train"] = generate(args.n_train, seed=args.seed, **options)
    _DATA["test"] = generate(args.n_test, seed=args.seed + 1, **options)
    print(f"data: {time.perf_counter() - started:.0f} s", flush=True)
    rows = cca_rows(_DATA["train"], _DATA["test"], args.cca_regularisations, args.seed)
    print(f"CCA: {time.perf_counter() - started:.0f} s", flush=True)
    todo = jobs(args, args.n_train)
    print(f"{len(todo)} VED runs of <= {args.epochs} epochs on {args.workers} processes")
    for row in study_runs(run_ved, todo, args.workers, ordered=True):  # results.csv's order
        rows.append(row)
        print(
            f"  VED r={row['latent_dim']:3d} beta={row['beta']:g} "
            f"lambda={row['covariance_weight']:g}: error={row['relative_error']:.3f} "
            f"({row['seconds']:.0f} s)",
            flush=True,
        )
    results = pd.DataFrame(rows)
    shared = results[
        (results["method"] == "VED")
        & (results["study"] == "latent")
        & (results["latent_dim"] == args.grid_latent)
        & results["beta"].isin(args.betas)
        & results["covariance_weight"].isin(args.covariance_weights)
    ]  # the runs of the latent-size study that also belong to the grid
    results = pd.concat([results, shared.assign(study="beta_lambda")], ignore_index=True)
    results.to_csv(args.output / "results.csv", index=False)
    levels = sorted({*args.error_levels, args.target_error}, reverse=True)
    table = needed(results, levels)
    table.to_csv(args.output / "needed.csv", index=False)
    plot(results, args, args.output / "study.png")
    curve_columns = ["model", "latent_dim", "regularisation", "relative_error", "kl",
                     "covariance_deviation", "active_dims", "prior_std_error"]  # fmt: skip
    grid_columns = ["beta", "covariance_weight", *curve_columns[3:], "epochs_run"]
    curves = results[results["study"] == "latent"].sort_values(["method", "model", "latent_dim"])
    grid = results[results["study"] == "beta_lambda"].sort_values(["beta", "covariance_weight"])
    with pd.option_context("display.width", 200, "display.precision", 3):
        print("\nTest error vs latent size r:")
        print(curves.reindex(columns=curve_columns).to_string(index=False))
        print(f"\nbeta x lambda at r = {args.grid_latent}:")
        print(grid.reindex(columns=grid_columns).to_string(index=False))
        print("\nSmallest evaluated r reaching each test error:")
        print(table.to_string(index=False))
    target = table[table["error_level"] == args.target_error].iloc[0]
    print(f"\nTarget test relative RMSE {args.target_error:g}; smallest evaluated r reaching it:")
    for model in table.columns[1:]:
        print(f"  {model}: {'not reached' if pd.isna(target[model]) else int(target[model])}")
    print(f"total {time.perf_counter() - started:.0f} s; wrote {args.output}/")


if __name__ == "__main__":
    main()
