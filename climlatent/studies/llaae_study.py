"""Seed 000's LLAAE studies at a converged budget: its Table 1 and its latent kinds.

Jiwa et al. train a beta-VAE LLAAE (latent linear adjustment autoencoder) for
precipitation with sea-level pressure as the proxy. Two studies on the synthetic
circulation world (:func:`climlatent.datasets.synthetic_circulation`; 2 members, 12
daily years, the last 3 held out; 16 x 24 grid; 3 known AR(1) circulation factors):

- **Table 1**: a Gaussian-latent LLAAE for each (alpha, beta) of the seed --
  (1, 1), (5, 0.2), (5, 0.5), (2, 0.5) -- reporting the reconstruction loss from the
  input and from the proxy, the KL loss and the latent-space loss on the training and
  held-out years. Scale: per sample, squared errors summed over the 384 cells of
  standardised precipitation (the KL and latent losses summed over the 8 latents);
  the seed does not state its normalisation, so its numbers compare by order, not
  value.
- **Latent kinds**: Gaussian, GEV and hierarchical-Gaussian (``gaussian_hp``) latents
  at (alpha, beta) = (2, 0.5), scored by how well the posterior means on held-out
  days separate the known circulation factors: MIG, DCI (disentanglement,
  completeness, informativeness) and S_D (the Gaussian runs are Table 1's).

Every run trains until its validation loss has not improved for ``--patience``
epochs (``--max-epochs`` caps it; the epoch reached is recorded), one run per seed.
Rows land in ``runs.partial.csv`` as they finish (resumable: the same command runs
only what is missing; ``--status`` counts them per case) and the claims ledger
(:mod:`climlatent.studies.llaae_claims`) is rewritten after each.

Run ``python -m climlatent.studies.llaae_study --output docs/studies/llaae``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from climlatent.datasets import synthetic_circulation
from climlatent.estimators.llaae import LLAAE
from climlatent.metrics.disentanglement import dci, disentanglement_score, mutual_information_gap
from climlatent.studies.llaae_claims import write_ledger
from climlatent.studies.llaae_emulation import split_years
from climlatent.studies.run_ledger import RunLedger

TABLE_1 = ((1.0, 1.0), (5.0, 0.2), (5.0, 0.5), (2.0, 0.5))
KINDS_AT = (2.0, 0.5)  # (alpha, beta) of the latent-kind comparison
LATENT_KINDS = ("gaussian", "gev", "gaussian_hp")
LOSSES = ("reconstruction", "reconstruction_proxy", "kl", "latent")
KEY = ("latent", "alpha", "beta", "seed", "max_epochs", "patience")
CASE = ("latent", "alpha", "beta")
DATA = {"n_members": 2, "n_years": 12, "n_test_years": 3}


def plan(seeds: int, max_epochs: int, patience: int) -> list[dict]:
    """Every run: Table 1's four settings, then the other latent kinds, seed by seed.

    Examples
    --------
    >>> len(plan(5, 200, 10))
    30
    """
    budget = {"max_epochs": max_epochs, "patience": patience}
    cases = [("gaussian", *setting) for setting in TABLE_1]
    cases += [(kind, *KINDS_AT) for kind in LATENT_KINDS if kind != "gaussian"]
    return [
        {"latent": latent, "alpha": alpha, "beta": beta, "seed": seed, **budget}
        for seed in range(seeds)
        for latent, alpha, beta in cases
    ]


def run(job: dict, latent_dim: int = 8, device: str = "cpu", data: dict = DATA) -> dict:
    """Train one LLAAE to its plateau; its losses and disentanglement scores (a row).

    Examples
    --------
    >>> job = {"latent": "gev", "alpha": 2.0, "beta": 0.5, "seed": 0, "max_epochs": 1,
    ...        "patience": 1}
    >>> row = run(job, latent_dim=2, data={"n_members": 1, "n_years": 2, "n_test_years": 1})
    >>> row["epochs_run"], sorted(k for k in row if k.startswith("dci"))
    (1, ['dci_completeness', 'dci_disentanglement', 'dci_informativeness'])
    """
    torch.set_num_threads(1)
    started = time.perf_counter()
    ds = synthetic_circulation(n_members=data["n_members"], n_years=data["n_years"])
    train, test = split_years(ds, data["n_test_years"])
    model = LLAAE(
        latent=job["latent"],
        alpha=job["alpha"],
        beta=job["beta"],
        latent_dim=latent_dim,
        n_proxy_eofs=20,
        epochs=int(job["max_epochs"]),
        early_stopping_patience=int(job["patience"]),
        seed=int(job["seed"]),
        random_streams=1,
        device=device,
        progress=False,
    ).fit(train, "pr", "psl")
    scores = {"training": model.evaluate(train), "testing": model.evaluate(test)}
    z = model.encode(test).stack(sample=("member", "time")).transpose("sample", "latent")
    factors = test.circulation_factor.stack(sample=("member", "time")).transpose("sample", "mode")
    z, factors = z.values, factors.values
    dci_scores = dci(z, factors)
    return {
        **job,
        "epochs_run": len(model.history_),
        "best_epoch": model.best_epoch_,
        **{f"{k}_{part}": scores[part][k] for k in LOSSES for part in scores},
        "mig": mutual_information_gap(z, factors),
        "dci_disentanglement": dci_scores.disentanglement,
        "dci_completeness": dci_scores.completeness,
        "dci_informativeness": dci_scores.informativeness,
        "S_D": disentanglement_score(z, factors),
        "seconds": time.perf_counter() - started,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Run the missing runs (or print progress), rewriting the claims ledger after each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--max-epochs", type=int, default=200)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--status", action="store_true", help="print runs done per case")
    parser.add_argument("--output", type=Path, default=Path("docs/studies/llaae"))
    args = parser.parse_args(argv)
    todo = plan(args.seeds, args.max_epochs, args.patience)
    ledger = RunLedger(args.output / "runs.partial.csv", KEY)
    if args.status:
        print(ledger.status(todo, CASE).to_string(index=False))
        return
    missing = ledger.missing(todo)
    print(f"{len(missing)} runs to do, {len(todo) - len(missing)} done", flush=True)
    for job in missing:
        row = run(job, device=args.device)
        ledger.append(row)
        write_ledger(args.output)
        print(
            f"  {row['latent']:11s} alpha={row['alpha']:g} beta={row['beta']:g} "
            f"seed={row['seed']}: rec {row['reconstruction_training']:.1f}/"
            f"{row['reconstruction_testing']:.1f} KL {row['kl_training']:.1f} "
            f"MIG {row['mig']:.3f} epochs {row['epochs_run']} ({row['seconds']:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
