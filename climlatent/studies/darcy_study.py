"""The Darcy-flow disentanglement study of Jacobsen & Duraisamy (2022), reproduced.

KLE2 Darcy flow (pressure and both velocity components on the seed's 65 x 65 grid), 512
training samples (plus 64 for validation) and 512 test samples for each
generative-parameter distribution p(theta) (standard normal, shifted
``N([1, 1], 0.5 I)``, four-component mixture). For each, the DenseVAE is trained with
a standard-normal prior (VAE) and with the hierarchical prior (VAE+HP), 16 seeds on the
mixture (the seed's headline: about half of the HP runs disentangle, none without) and
8 on the others, with the seed's schedule against over-regularisation (``beta_0 =
1e-7`` for 10 epochs, a 20-epoch geometric ramp to ``beta = 1``) and then to
convergence: on the ELBO until the validation loss has not improved for ``--patience``
epochs, a tenfold lower learning rate (the seed's ``c``), and again until a plateau,
keeping the best epoch (``--max-epochs`` caps it). Then semi-supervised runs on the
mixture add ~1, 3 and 8 % of 512 labelled samples to the 512 unlabelled ones, as the
seed does, with the labels' term weighted 1 (Eq. 28 as written) and 100 (see
`climlatent.models.vae` on why the weight matters). The validation samples are drawn
at random from all training samples, labelled ones included.

Every run reports, on the test set: relative reconstruction error of the three fields
(mean squared error over variance, averaged), the epochs run and the best one, the
training regularisation loss of the best epoch, S_D (Eq. 6, higher is better) and S_KL
(Eq. 7, lower is better) of the posterior means against theta, and two flags:
over-regularised (``L_REG`` below ``--over-regularised`` nats: the decoder ignores z)
and disentangled (``S_D`` at least ``--disentangled``). Outputs in ``--output``:
``runs.csv`` (one row per run), ``summary.csv`` (means, standard deviations and shares
per case) and ``study.png``.

Run ``python -m climlatent.studies.darcy_study --help`` (or ``climlatent study
darcy_study``); runs are spread over ``--workers`` processes of one torch thread each.
Each finished run is appended to ``runs.partial.csv``; the same command after an
interruption runs only the missing ones, each from its checkpoint (``--checkpoints``,
written every epoch), ``--only prior/mixture`` runs one case first and ``--status``
says how many runs of each case are done and how far the runs with a checkpoint have
got (`in_flight`). Under a larger ``--max-epochs``, runs that
converged under a smaller one count as they are, and runs that reached it go on from
their checkpoints. Runs train where ``device="auto"`` puts them (CUDA when present;
each row records its ``device``): cases can run on several machines at once (``--only``
apiece), and ``--merge OTHER/runs.partial.csv`` brings another machine's finished rows
into this ledger (also while this study runs) and rewrites the claims.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

from climlatent.checkpoint import load_checkpoint
from climlatent.errors import CheckpointError
from climlatent.estimators.vae import VAE
from climlatent.metrics.disentanglement import disentanglement_score, kl_disentanglement_score
from climlatent.reference.darcy import generate
from climlatent.studies.darcy_claims import (
    BUDGET,
    MIXTURE_SEEDS,
    SEEDS,
    select_runs,
    write_ledger,
)
from climlatent.studies.run_ledger import RunLedger
from climlatent.studies.workers import study_runs

FIELDS = ["pressure", "u_x", "u_y"]
DISTRIBUTIONS = ("standard", "shifted", "mixture")
LABEL_FRACTIONS = (0.01, 0.03, 0.08)  # 0 %: the VAE runs of the prior study
SUPERVISION_WEIGHTS = (1.0, 100.0)  # Eq. 28 as written, and a weight that matters
N_TRAIN, N_VALID = 512, 64  # the seed's 512 training samples, and a validation set
WARMUP, RAMP = 10, 20  # epochs at beta_0, and of the ramp to beta = 1

# p(theta) -> (training + validation, test, labelled extras); inherited by forked workers
_DATA: dict[str, tuple[xr.Dataset, xr.Dataset, xr.Dataset]] = {}


def _options(max_epochs: int, patience: int) -> dict:
    """The seed's three phases, converged: beta_0, a ramp to 1, then lr drops at plateaus.

    10 epochs at ``beta_0 = 1e-7``, a 20-epoch geometric ramp to ``beta = 1``, then
    training on the ELBO until the validation loss has not improved for ``patience``
    epochs, one learning-rate drop (x 0.1, the seed's ``c``), and the same again.
    """
    return dict(
        latent_dim=2,
        epochs=max_epochs,
        batch_size=64,
        lr=1e-3,
        beta_0=1e-7,
        warmup_epochs=WARMUP,
        ramp_epochs=RAMP,
        lr_factor=0.1,
        early_stopping_patience=patience,
        plateau_lr_drops=1,
        validation_fraction=N_VALID / (N_TRAIN + N_VALID),
        progress=False,
    )


def run_case(job: dict, checkpoints: Path | None = None) -> dict:
    """Train one VAE to convergence and score it on the test set (a row of ``runs.csv``).

    With ``checkpoints``, training is checkpointed there every epoch (`checkpoint_file`)
    and resumed from a checkpoint found there: a run cut off (the end of a session)
    goes on where it stopped, and a run stopped by the epoch cap goes on under a larger
    cap. The checkpoint of a run that converged is deleted (its row stands for any
    larger cap, see `carry_over`); that of a run at the cap is kept.
    """
    torch.set_num_threads(1)
    train, test, extra = _DATA[job["distribution"]]
    started = time.perf_counter()
    vae = VAE(
        prior=job["prior"],
        seed=job["seed"],
        random_streams=1,
        supervision_weight=job["supervision_weight"],
        **_options(job["max_epochs"], job["patience"]),
    )
    labels = flags = None
    if job["labelled"]:  # labelled samples added to the unlabelled ones, as in the seed
        extras = extra.isel(sample=slice(job["labelled"]))
        train = xr.concat([train, extras], "sample", data_vars="minimal", compat="override")
        labels = "theta"
        flags = np.arange(train.sizes["sample"]) >= train.sizes["sample"] - job["labelled"]
    checkpoint = None if checkpoints is None else checkpoints / checkpoint_file(job)
    resume = checkpoint is not None
    vae.fit(train, FIELDS, labels=labels, labelled=flags, checkpoint=checkpoint, resume=resume)
    z = vae.encode(test).values
    theta = test["theta"].values
    rec = vae.reconstruct(test)
    error = np.mean([float(((rec[f] - test[f]) ** 2).mean() / test[f].var()) for f in FIELDS])
    history = vae.history_
    best = int(history["valid_loss"].iloc[WARMUP + RAMP :].idxmin())  # after the ramp, as trained
    if checkpoint is not None and len(history) < job["max_epochs"]:
        checkpoint.unlink(missing_ok=True)
    return {
        **job,
        "epochs_run": len(history),
        "best_epoch": best,
        "lr_drops": int((history["lr"].diff() < 0).sum()),
        "reconstruction_error": error,
        "regularisation": float(history["train_regularisation"].iloc[best]),
        "S_D": disentanglement_score(z, theta),
        "S_KL": float(kl_disentanglement_score(z, theta)),
        "seconds": time.perf_counter() - started,
        "device": vae.device_.type,
    }


def in_flight(jobs: Sequence[dict], checkpoints: Path) -> pd.DataFrame:
    """Progress of the runs among ``jobs`` that have a checkpoint in ``checkpoints``.

    One row per run: its case and seed, the epochs it has trained, its best epoch and
    validation loss so far, the learning-rate drops it has made (of the one plateau
    drop a run makes, see `_options`) and the minutes since its checkpoint was written
    (a run whose process was stopped stays where it was). A checkpoint that cannot be
    read is named in an ``error`` column, not skipped.

    Examples
    --------
    >>> import tempfile
    >>> from climlatent.checkpoint import save_checkpoint
    >>> job = {"study": "prior", "distribution": "mixture", "prior": "standard",
    ...        "labelled": 0, "supervision_weight": 1.0, "seed": 3, "patience": 10}
    >>> folder = Path(tempfile.mkdtemp())
    >>> save_checkpoint({"epoch": 812, "best": {"epoch": 805, "loss": -2.5},
    ...                  "plateau": {"lr_drops": 1}}, folder / checkpoint_file(job))
    >>> in_flight([job], folder)[["seed", "epochs", "best_epoch", "lr_drops"]].values.tolist()
    [[3, 812, 805, 1]]
    """
    rows = []
    for job in jobs:
        path = checkpoints / checkpoint_file(job)
        try:
            written = path.stat().st_mtime
        except FileNotFoundError:  # none, or the run has just converged and removed it
            continue
        row = {key: job[key] for key in (*CASE, "seed")}
        try:
            state = load_checkpoint(path)
            row.update(
                epochs=state["epoch"],
                best_epoch=state["best"]["epoch"],
                best_valid_loss=state["best"]["loss"],
                lr_drops=state["plateau"]["lr_drops"],
            )
        except (CheckpointError, KeyError) as error:
            row["error"] = str(error)
        row["minutes_since_written"] = round((time.time() - written) / 60, 1)
        rows.append(row)
    return pd.DataFrame(rows)


def checkpoint_file(job: dict) -> str:
    """The name of a run's checkpoint: its settings but the epoch cap.

    Examples
    --------
    >>> checkpoint_file({"study": "prior", "distribution": "mixture", "prior": "standard",
    ...     "labelled": 0, "seed": 3, "supervision_weight": 1.0, "max_epochs": 2000,
    ...     "patience": 10})
    'prior-mixture-standard-labelled0-weight1-seed3-patience10.pt'
    """
    return (
        f"{job['study']}-{job['distribution']}-{job['prior']}-labelled{job['labelled']}-"
        f"weight{job['supervision_weight']:g}-seed{job['seed']}-patience{job['patience']}.pt"
    )


def carry_over(ledger: RunLedger, plan: Sequence[dict]) -> list[dict]:
    """Record, for the jobs of ``plan``, the runs that converged under a smaller cap.

    A run that early stopping ended before its epoch cap ends at the same epoch under
    any larger cap (the schedule depends on the epoch only, and training is
    deterministic): its row, with the larger ``max_epochs`` and ``carried_from_cap``
    set to its own, is appended for a job of ``plan`` that has none. Runs that reached
    their cap are not carried over: they are run on (from their checkpoint).

    Returns
    -------
    list of dict
        The rows appended.

    Examples
    --------
    >>> import tempfile
    >>> ledger = RunLedger(Path(tempfile.mkdtemp()) / "runs.csv", KEY)
    >>> job = {"study": "prior", "distribution": "mixture", "prior": "standard",
    ...        "labelled": 0, "seed": 0, "supervision_weight": 1.0, "patience": 10}
    >>> ledger.append({**job, "max_epochs": 2000, "epochs_run": 1537, "S_D": 0.66})
    >>> ledger.append({**job, "seed": 1, "max_epochs": 2000, "epochs_run": 2000, "S_D": 0.7})
    >>> plan = [{**job, "seed": seed, "max_epochs": 3000} for seed in (0, 1)]
    >>> [(row["seed"], row["epochs_run"]) for row in carry_over(ledger, plan)]
    [(0, 1537)]
    >>> [job["seed"] for job in ledger.missing(plan)]
    [1]
    """
    run = [name for name in KEY if name != "max_epochs"]
    converged = {}
    for row in ledger.rows:
        if row["epochs_run"] < row["max_epochs"]:
            converged.setdefault(ledger.identity(row, run), []).append(row)
    carried = []
    for job in ledger.missing(plan):
        smaller = [
            row
            for row in converged.get(ledger.identity(job, run), [])
            if row["max_epochs"] < job["max_epochs"]
        ]
        if smaller:
            source = max(smaller, key=lambda row: row["max_epochs"])
            carried.append(
                {
                    **source,
                    "max_epochs": job["max_epochs"],
                    "carried_from_cap": source["max_epochs"],
                }
            )
            ledger.append(carried[-1])
    return carried


def jobs(
    seeds: int,
    mixture_seeds: int,
    weights: Sequence[float],
    fractions: Sequence[float] = LABEL_FRACTIONS,
) -> list[dict]:
    """Every run, the seed's headline first: prior study on the mixture, then the rest.

    Priors x p(theta) x seeds (``mixture_seeds`` on the mixture), then on the mixture
    label shares x supervision weights x seeds; seeds interleave so that a partial
    study is balanced.
    """
    counts = {"mixture": mixture_seeds, "standard": seeds, "shifted": seeds}
    out = [
        {"study": "prior", "distribution": d, "prior": p, "labelled": 0, "seed": s,
         "supervision_weight": 1.0}
        for d in ("mixture", "standard", "shifted")
        for s in range(counts[d])
        for p in ("standard", "hierarchical")
    ]  # fmt: skip
    out += [
        {
            "study": "labels",
            "distribution": "mixture",
            "prior": "standard",
            "labelled": max(round(f * N_TRAIN), 1),
            "seed": s,
            "supervision_weight": float(w),
        }
        for s in range(seeds)
        for w in weights
        for f in fractions
    ]
    return out


KEY = ("study", "distribution", "prior", "labelled", "seed", "supervision_weight",
       "max_epochs", "patience")  # fmt: skip
CASE = ("study", "distribution", "prior", "labelled", "supervision_weight")


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
    """Run the study (or report its progress) and write runs.csv, summary.csv, study.png."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=SEEDS)
    parser.add_argument("--mixture-seeds", type=int, default=MIXTURE_SEEDS)
    parser.add_argument("--max-epochs", type=int, default=BUDGET["max_epochs"])
    parser.add_argument("--patience", type=int, default=BUDGET["patience"])
    parser.add_argument("--n-test", type=int, default=512)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--over-regularised", type=float, default=0.1)
    parser.add_argument("--disentangled", type=float, default=0.9)
    parser.add_argument("--supervision-weights", type=float, nargs="+", default=SUPERVISION_WEIGHTS)
    parser.add_argument("--label-fractions", type=float, nargs="+", default=LABEL_FRACTIONS)
    parser.add_argument("--only", nargs="+", metavar="STUDY/P_THETA",
                        help="run only these cases, e.g. prior/mixture labels/mixture")  # fmt: skip
    parser.add_argument("--status", action="store_true",
                        help="print runs done per case, and the progress of runs with a "
                        "checkpoint")  # fmt: skip
    parser.add_argument("--merge", type=Path, nargs="+", metavar="RUNS_CSV",
                        help="add the finished runs of other machines' runs.partial.csv, "
                        "rewrite the claims and stop")  # fmt: skip
    parser.add_argument("--checkpoints", type=Path, default=None,
                        help="folder of run checkpoints (default OUTPUT/checkpoints)")  # fmt: skip
    parser.add_argument("--output", type=Path, default=Path("darcy-study"))
    args = parser.parse_args(argv)
    if args.max_epochs <= WARMUP + RAMP:  # the best epoch is chosen after the ramp
        parser.error(
            f"--max-epochs {args.max_epochs}: a run needs more than the {WARMUP + RAMP} "
            f"epochs of warm-up ({WARMUP}) and ramp to beta = 1 ({RAMP})"
        )
    args.output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    budget = {"max_epochs": args.max_epochs, "patience": args.patience}
    todo = [
        {**job, **budget}
        for job in jobs(
            args.seeds, args.mixture_seeds, args.supervision_weights, args.label_fractions
        )
    ]
    ledger = RunLedger(args.output / "runs.partial.csv", KEY)  # one row per run: resumable
    checkpoints = args.checkpoints or args.output / "checkpoints"
    if args.status:
        print(ledger.status(todo, CASE).to_string(index=False))
        running = in_flight(ledger.missing(todo), checkpoints)
        if not running.empty:
            print(f"\nruns with a checkpoint in {checkpoints}:")
            print(running.to_string(index=False))
        return
    if args.merge:
        added = sum(ledger.merge(path) for path in args.merge)
        print(f"{added} runs merged into {ledger.path}")
        write_ledger(args.output, budget)
        return
    carried = carry_over(ledger, todo)
    if carried:
        print(f"{len(carried)} runs converged under a smaller cap stand for this one")
        write_ledger(args.output, budget)
    missing = ledger.missing(todo)
    if args.only:
        missing = [j for j in missing if f"{j['study']}/{j['distribution']}" in args.only]
    for dist in DISTRIBUTIONS:
        _DATA[dist] = (
            generate(N_TRAIN + N_VALID, kle_terms=2, theta=dist, seed=0),
            generate(args.n_test, kle_terms=2, theta=dist, seed=1),
            generate(max(round(f * N_TRAIN) for f in args.label_fractions), kle_terms=2,
                     theta=dist, seed=2),
        )  # fmt: skip
    print(f"{len(missing)} runs (at most {args.max_epochs} epochs, patience {args.patience}) "
          f"on {args.workers} processes ({len(ledger.rows)} done before)", flush=True)  # fmt: skip
    checkpoints.mkdir(parents=True, exist_ok=True)
    run = functools.partial(run_case, checkpoints=checkpoints)
    for row in study_runs(run, missing, args.workers):
        ledger.append(row)
        write_ledger(args.output, budget)
        print(
            f"  {row['study']:6s} {row['distribution']:8s} {row['prior']:12s} "
            f"labels={row['labelled']:3d} w={row['supervision_weight']:g} "
            f"seed={row['seed']}: S_D={row['S_D']:.3f} S_KL={row['S_KL']:.3f} "
            f"rec={row['reconstruction_error']:.4f} reg={row['regularisation']:.2f} "
            f"epochs={row['epochs_run']} ({row['seconds']:.0f} s)",
            flush=True,
        )
    runs = select_runs(pd.DataFrame(ledger.rows), budget)  # other budgets' rows stay apart
    if ledger.missing(todo):
        print(f"{len(ledger.missing(todo))} of {len(todo)} runs left; rerun to continue "
              f"({ledger.path})")  # fmt: skip
        return
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
