"""Seed 003's training-size claim: the covariance penalty against the KL term, by data size.

Venkatasubramanian & Barajas-Solano (2024) find that "for larger training datasets,
disentanglement-promoting regularization proves more critical than KL regularization
for accuracy" (the seed gives no numbers). This driver trains VEDs
(:class:`~climlatent.estimators.ved.VED` with the paper's convolutional encoder with
residual blocks and fully connected decoder, ``architecture="conv"``) on Darcy flow --
log-permeability (a ``--kle-terms``-term KLE on the ``--n-grid`` node grid) ->
pressure -- with one regulariser each:

- ``kl``: the ELBO's KL term alone (``beta = 1``, ``lambda = 0``);
- ``covariance``: the covariance penalty alone (``beta = 0``, ``lambda = 1``)

(``--arms`` also takes ``both``, ``beta = lambda = 1``, and ``none``, neither), for
each training size of ``--sizes`` and each of ``--seeds`` seeds. Seed ``s`` draws a
training pool of ``max(--sizes)`` samples (data seed ``1000 + s``) and each size takes
its first samples, so one seed's training sets are nested. Every run is scored on the
same ``--n-test`` held-out samples (data seed 1) by
:func:`~climlatent.studies.ved_study.score_ved` (test relative RMSE, latent KL and
covariance, prior-sample score); the row also holds the error of rank-``r`` CCA on the
same data, its ridge chosen on a validation split
(:func:`~climlatent.studies.ved_study.cca_rows`).

Each run trains until its validation loss (10 % of its training set) stops improving:
after ``--patience`` epochs without improvement the learning rate drops tenfold, up to
``--lr-drops`` times, and the next plateau stops it (``--max-epochs`` caps it; the
epochs run, the best epoch and whether the cap was hit are recorded). Rows land in
``runs.partial.csv`` as they finish (:class:`~climlatent.studies.run_ledger.RunLedger`:
the same command runs only what is missing; ``--status`` counts the runs done per arm
and size and estimates the time left; ``--max-runs`` stops after that many), seed by
seed, so that each finished seed is a complete slice; the claims ledger
(:mod:`climlatent.studies.ved_claims`) is rewritten after each run.

Run ``python -m climlatent.studies.ved_training_size --output docs/studies/ved``
(or ``climlatent study ved_training_size``).
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
import xarray as xr
from threadpoolctl import threadpool_limits

from climlatent.estimators.ved import VED
from climlatent.reference.darcy import generate
from climlatent.studies.run_ledger import RunLedger
from climlatent.studies.ved_claims import BUDGET, write_ledger
from climlatent.studies.ved_study import INPUT, OUTPUT, cca_rows, relative_error, score_ved

ARMS = {  # arm -> (beta, covariance_weight)
    "kl": (1.0, 0.0),
    "covariance": (0.0, 1.0),
    "both": (1.0, 1.0),
    "none": (0.0, 0.0),
}
KEY = ("arm", "n_train", "seed", *BUDGET)
CASE = ("arm", "n_train")
TEST_SEED, POOL_SEED = 1, 1000
CCA_REGULARISATIONS = (1e-2, 1e-1, 1.0, 10.0, 100.0)

DEFAULT_BUDGET = {
    "max_epochs": 1000,
    "patience": 20,
    "lr_drops": 1,
    "lr": 3e-3,
    "architecture": "conv",
    "latent_dim": 8,
    "n_grid": 33,
    "kle_terms": 128,
    "n_test": 500,
}


def plan(
    sizes: Sequence[int], seeds: int, arms: Sequence[str] = ("kl", "covariance"), **budget: object
) -> list[dict]:
    """Every run, seed by seed (each seed a complete slice of sizes x arms).

    ``budget`` overrides settings of :data:`DEFAULT_BUDGET`; ``pool`` is ``max(sizes)``.

    Examples
    --------
    >>> jobs = plan([250, 1000], seeds=3)
    >>> len(jobs), jobs[0]["arm"], jobs[0]["beta"], jobs[1]["covariance_weight"]
    (12, 'kl', 1.0, 1.0)
    >>> jobs[0]["pool"], jobs[0]["max_epochs"]
    (1000, 1000)
    """
    settings = {**DEFAULT_BUDGET, **budget, "pool": max(sizes)}
    return [
        {"arm": arm, "beta": ARMS[arm][0], "covariance_weight": ARMS[arm][1],
         "n_train": int(n), "seed": seed, **settings}
        for seed in range(seeds)
        for n in sizes
        for arm in arms
    ]  # fmt: skip


@functools.lru_cache(maxsize=2)
def _darcy(n: int, seed: int, kle_terms: int, n_grid: int) -> xr.Dataset:
    ds = generate(n, kle_terms=kle_terms, n_grid=n_grid, seed=seed, workers=1)
    return ds[[INPUT, OUTPUT]].load()


def run(job: dict, device: str = "cpu") -> dict:
    """Train one VED to its plateau and score it; the job plus its results (a row).

    Examples
    --------
    >>> job = plan([40], seeds=1, max_epochs=2, patience=1, n_grid=9, kle_terms=4,
    ...            latent_dim=2, n_test=20)[0]
    >>> row = run(job)
    >>> row["n_train"], row["epochs_run"], row["capped"], row["cca_error"] > 0
    (40, 2, True, True)
    """
    torch.set_num_threads(1)
    threadpool_limits(1)
    started = time.perf_counter()
    data = {"kle_terms": int(job["kle_terms"]), "n_grid": int(job["n_grid"])}
    pool = _darcy(int(job["pool"]), POOL_SEED + int(job["seed"]), **data)
    train = pool.isel(sample=slice(int(job["n_train"])))
    test = _darcy(int(job["n_test"]), TEST_SEED, **data)
    ved = VED(
        latent_dim=int(job["latent_dim"]),
        beta=float(job["beta"]),
        covariance_weight=float(job["covariance_weight"]),
        architecture=str(job["architecture"]),
        epochs=int(job["max_epochs"]),
        batch_size=64,
        lr=float(job["lr"]),
        validation_fraction=0.1,
        early_stopping_patience=int(job["patience"]),
        plateau_lr_drops=int(job["lr_drops"]),
        seed=int(job["seed"]),
        random_streams=1,
        device=device,
        progress=False,
    ).fit(train, target=OUTPUT, proxy=INPUT)
    seconds = time.perf_counter() - started
    fitted = ved.emulate(train)[OUTPUT].values
    truth = train[OUTPUT].values
    cca = [
        row
        for row in cca_rows(train, test, CCA_REGULARISATIONS, int(job["seed"]))
        if row["study"] == "latent" and row["latent_dim"] == int(job["latent_dim"])
    ]
    return {
        **job,
        **score_ved(ved, train, test),
        "train_error": relative_error(fitted, truth, truth.mean(0)),
        "cca_error": cca[0]["relative_error"] if cca else float("nan"),
        "epochs_run": len(ved.history_),
        "best_epoch": ved.best_epoch_,
        "capped": len(ved.history_) >= int(job["max_epochs"]),
        "seconds": seconds,
    }


def status(ledger: RunLedger, todo: list[dict]) -> pd.DataFrame:
    """Runs done and planned per arm and size, with the mean time of the runs done.

    Examples
    --------
    >>> import tempfile
    >>> ledger = RunLedger(Path(tempfile.mkdtemp()) / "runs.csv", KEY)
    >>> status(ledger, plan([100], seeds=2))[["arm", "done", "planned"]].values.tolist()
    [['kl', 0, 2], ['covariance', 0, 2]]
    """
    table = ledger.status(todo, CASE)
    done = pd.DataFrame(ledger.rows)
    if done.empty:
        table["mean_seconds"] = float("nan")
        return table
    mean = done.groupby(list(CASE))["seconds"].mean().rename("mean_seconds").reset_index()
    return table.merge(mean, on=list(CASE), how="left")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the missing runs (or print progress), rewriting the claims ledger after each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[125, 250, 500, 1000, 2000])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=["kl", "covariance"])
    for name, value in DEFAULT_BUDGET.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-runs", type=int, default=None, help="stop after this many runs")
    parser.add_argument("--status", action="store_true", help="print runs done per case")
    parser.add_argument("--output", type=Path, default=Path("docs/studies/ved"))
    args = parser.parse_args(argv)
    budget = {name: getattr(args, name) for name in DEFAULT_BUDGET}
    todo = plan(args.sizes, args.seeds, args.arms, **budget)
    ledger = RunLedger(args.output / "runs.partial.csv", KEY)
    missing = ledger.missing(todo)
    if args.status:
        table = status(ledger, todo)
        with pd.option_context("display.precision", 0):
            print(table.to_string(index=False))
        left = (table["planned"] - table["done"]) * table["mean_seconds"]
        print(f"{len(todo) - len(missing)} of {len(todo)} runs done; about "
              f"{left.sum() / 3600:.1f} h left for the cases with a finished run")  # fmt: skip
        return
    print(f"{len(missing)} runs to do, {len(todo) - len(missing)} done", flush=True)
    for job in missing[: args.max_runs]:
        row = run(job, device=args.device)
        ledger.append(row)
        write_ledger(args.output)
        print(
            f"  {row['arm']:10s} n={row['n_train']:5d} seed={row['seed']}: test error "
            f"{row['relative_error']:.4f} (CCA {row['cca_error']:.4f}), cov dev "
            f"{row['covariance_deviation']:.3f}, prior {row['prior_std_error']:.3f}, "
            f"epochs {row['epochs_run']} ({row['seconds']:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
