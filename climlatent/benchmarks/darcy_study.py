"""The Darcy-flow disentanglement study of Jacobsen & Duraisamy (2022), reproduced.

KLE2 Darcy flow (pressure and both velocity components on the 65 x 65 grid), 512
training and 512 test samples for each generative-parameter distribution p(theta)
(standard normal, shifted ``N([1, 1], 0.5 I)``, four-component mixture). For each, the
DenseVAE is trained with a standard-normal prior (VAE) and with the hierarchical prior
(VAE+HP) over several seeds, with the seed's schedule against over-regularisation
(``beta_0 = 1e-7`` for a warm-up, a geometric ramp to ``beta = 1``, then a lower
learning rate). Then semi-supervised runs (standard p(theta)) label 0, ~1, 5 and 20 % of
the training samples (Eq. 28), with the labels' term weighted 1 (Eq. 28 as written)
and, by default, also 100 (see `climlatent.models.vae` on why the weight matters).

Every run reports, on the test set: relative reconstruction error of the three fields
(mean squared error over variance, averaged), the training regularisation loss of the
last epoch, S_D (Eq. 6, higher is better) and S_KL (Eq. 7, lower is better) of the
posterior means against theta, and two flags: over-regularised (``L_REG`` below
``--over-regularised`` nats: the decoder ignores z) and disentangled (``S_D`` at least
``--disentangled``). Outputs in ``--output``: ``runs.csv`` (one row per run),
``summary.csv`` (means, standard deviations and shares per case) and ``study.png``.

Run ``python -m climlatent.benchmarks.darcy_study --help`` (or ``climlatent bench
darcy_study``); runs are spread over ``--workers`` processes of one torch thread each.
Each finished run is appended to ``runs.partial.csv``; the same command after an
interruption runs only the missing ones.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

from climlatent.benchmarks.darcy import generate
from climlatent.estimators.vae import VAE
from climlatent.metrics.disentanglement import disentanglement_score, kl_disentanglement_score

FIELDS = ["pressure", "u_x", "u_y"]
DISTRIBUTIONS = ("standard", "shifted", "mixture")
LABEL_FRACTIONS = (0.01, 0.05, 0.2)  # 0 %: the VAE runs of the prior study

_DATA: dict[str, tuple[xr.Dataset, xr.Dataset]] = {}  # inherited by forked workers


def _options(epochs: int) -> dict:
    """The seed's three-phase schedule scaled to ``epochs``."""
    warmup = max(epochs // 4, 1)
    return dict(
        latent_dim=2,
        epochs=epochs,
        batch_size=64,
        lr=1e-3,
        beta_0=1e-7,
        warmup_epochs=warmup,
        ramp_epochs=max(epochs // 3, 1),
        lr_drop_epoch=epochs - max(epochs // 5, 1),
        lr_factor=0.1,
        progress=False,
    )


def run_case(job: dict) -> dict:
    """Train one VAE and score it on the test set (one row of ``runs.csv``)."""
    torch.set_num_threads(1)
    train, test = _DATA[job["distribution"]]
    started = time.perf_counter()
    vae = VAE(
        prior=job["prior"],
        seed=job["seed"],
        supervision_weight=job["supervision_weight"],
        **_options(job["epochs"]),
    )
    labels = None
    flags = None
    if job["labelled"]:
        labels = "theta"
        rng = np.random.default_rng(1000 + job["seed"])
        flags = np.zeros(train.sizes["sample"], bool)
        flags[rng.choice(len(flags), job["labelled"], replace=False)] = True
    vae.fit(train, FIELDS, labels=labels, labelled=flags)
    z = vae.encode(test).values
    theta = test["theta"].values
    rec = vae.reconstruct(test)
    error = np.mean([float(((rec[f] - test[f]) ** 2).mean() / test[f].var()) for f in FIELDS])
    last = vae.history_.iloc[-1]
    return {
        **{k: v for k, v in job.items() if k != "epochs"},
        "reconstruction_error": error,
        "regularisation": float(last["train_regularisation"]),
        "S_D": disentanglement_score(z, theta),
        "S_KL": float(kl_disentanglement_score(z, theta)),
        "seconds": time.perf_counter() - started,
    }


def jobs(
    seeds: int,
    epochs: int,
    n_train: int,
    weights: Sequence[float],
    fractions: Sequence[float] = LABEL_FRACTIONS,
) -> list[dict]:
    """Every run: priors x p(theta) x seeds, then label fractions x weights x seeds."""
    out = [
        {"study": "prior", "distribution": d, "prior": p, "labelled": 0, "seed": s,
         "supervision_weight": 1.0}
        for d in DISTRIBUTIONS
        for p in ("standard", "hierarchical")
        for s in range(seeds)
    ]  # fmt: skip
    out += [
        {
            "study": "labels",
            "distribution": "standard",
            "prior": "standard",
            "labelled": max(round(f * n_train), 1),
            "seed": s,
            "supervision_weight": float(w),
        }
        for w in weights
        for f in fractions
        for s in range(seeds)
    ]
    return [{**job, "epochs": epochs} for job in out]


def _key(job: dict) -> tuple:
    fields = ("study", "distribution", "prior", "labelled", "seed", "supervision_weight")
    return tuple(str(job[f]) if f in ("study", "distribution", "prior") else float(job[f])
                 for f in fields)  # fmt: skip


def summarise(runs: pd.DataFrame, over: float, disentangled: float) -> pd.DataFrame:
    """Means, standard deviations and shares per (study, p(theta), prior, labels)."""
    runs = runs.assign(
        over_regularised=runs["regularisation"] < over, disentangled=runs["S_D"] >= disentangled
    )
    keys = ["study", "distribution", "prior", "supervision_weight", "labelled"]
    metrics = ["reconstruction_error", "regularisation", "S_D", "S_KL"]
    grouped = runs.groupby(keys, sort=True)
    table = grouped[metrics].agg(["mean", "std"])
    table.columns = [f"{m}_{s}" for m, s in table.columns]
    table["share_over_regularised"] = grouped["over_regularised"].mean()
    table["share_disentangled"] = grouped["disentangled"].mean()
    table["runs"] = grouped.size()
    return table.reset_index()


def plot(runs: pd.DataFrame, path: Path) -> None:
    """S_D of every run: VAE vs VAE+HP per p(theta), and against the share of labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    prior_runs = runs[runs["study"] == "prior"]
    for offset, (prior, label) in enumerate([("standard", "VAE"), ("hierarchical", "VAE+HP")]):
        for i, dist in enumerate(DISTRIBUTIONS):
            values = prior_runs[
                (prior_runs["distribution"] == dist) & (prior_runs["prior"] == prior)
            ]
            x = np.full(len(values), i + 0.2 * (2 * offset - 1))
            left.scatter(x, values["S_D"], color=f"C{offset}", label=label if i == 0 else None)
    left.set_xticks(range(len(DISTRIBUTIONS)), [f"p(theta): {d}" for d in DISTRIBUTIONS])
    left.set_ylabel("S_D (Eq. 6)")
    left.set_ylim(0.45, 1.02)
    left.legend()
    label_runs = runs[runs["study"] == "labels"]
    for i, (weight, group) in enumerate(label_runs.groupby("supervision_weight")):
        right.scatter(group["labelled"], group["S_D"], color=f"C{i + 2}",
                      label=f"supervision weight {weight:g}")  # fmt: skip
    right.legend()
    right.set_xscale("symlog", linthresh=1)
    right.set_xlabel("labelled training samples (of 512)")
    right.set_ylabel("S_D (Eq. 6)")
    right.set_ylim(0.45, 1.02)
    fig.suptitle("Darcy KLE2: disentanglement of DenseVAE latents")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the study and write runs.csv, summary.csv and study.png."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--n-train", type=int, default=512)
    parser.add_argument("--n-test", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--over-regularised", type=float, default=0.1)
    parser.add_argument("--disentangled", type=float, default=0.9)
    parser.add_argument("--supervision-weights", type=float, nargs="+", default=[1.0, 100.0])
    parser.add_argument("--label-fractions", type=float, nargs="+", default=LABEL_FRACTIONS)
    parser.add_argument("--output", type=Path, default=Path("darcy-study"))
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for dist in DISTRIBUTIONS:
        _DATA[dist] = (
            generate(args.n_train, kle_terms=2, theta=dist, seed=0),
            generate(args.n_test, kle_terms=2, theta=dist, seed=1),
        )
    todo = jobs(
        args.seeds, args.epochs, args.n_train, args.supervision_weights, args.label_fractions
    )
    partial = args.output / "runs.partial.csv"  # one row per finished run: resumable
    rows = pd.read_csv(partial).to_dict("records") if partial.exists() else []
    done = {_key(row) for row in rows}
    todo = [job for job in todo if _key(job) not in done]
    print(f"{len(todo)} runs of {args.epochs} epochs on {args.workers} processes "
          f"({len(done)} done before)", flush=True)  # fmt: skip
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        for row in pool.map(run_case, todo):
            rows.append(row)
            pd.DataFrame(rows).to_csv(partial, index=False)
            print(
                f"  {row['study']:6s} {row['distribution']:8s} {row['prior']:12s} "
                f"labels={row['labelled']:3d} seed={row['seed']}: S_D={row['S_D']:.3f} "
                f"S_KL={row['S_KL']:.3f} rec={row['reconstruction_error']:.4f} "
                f"reg={row['regularisation']:.2f} ({row['seconds']:.0f} s)",
                flush=True,
            )
    runs = pd.DataFrame(rows)
    partial.unlink()
    prior_study = runs[runs["study"] == "prior"]
    unlabelled = prior_study[
        (prior_study["distribution"] == "standard") & (prior_study["prior"] == "standard")
    ]
    extra = [
        unlabelled.assign(study="labels", supervision_weight=w) for w in args.supervision_weights
    ]
    runs = pd.concat([runs, *extra], ignore_index=True)
    runs.to_csv(args.output / "runs.csv", index=False)
    summary = summarise(runs, args.over_regularised, args.disentangled)
    summary.to_csv(args.output / "summary.csv", index=False)
    plot(runs, args.output / "study.png")
    columns = ["study", "distribution", "prior", "supervision_weight", "labelled",
               "reconstruction_error_mean",
               "regularisation_mean", "S_D_mean", "S_D_std", "S_KL_mean",
               "share_over_regularised", "share_disentangled", "runs"]  # fmt: skip
    with pd.option_context("display.width", 200, "display.precision", 3):
        print(summary[columns].to_string(index=False))
    print(f"total {time.perf_counter() - started:.0f} s; wrote {args.output}/")


if __name__ == "__main__":
    main()
