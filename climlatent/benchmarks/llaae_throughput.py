"""LLAAE training throughput through the estimator against a bare torch loop.

``LLAAE.fit`` on an ``xr.Dataset`` (boundary checks, transforms, EOFs, stacking, the
shared training loop with alternating L1/L2 updates) against a hand-written loop over
the same tensors with the same model initialisation, optimisers, batches and random
draws, neither with a progress bar. Runs alternate after a warm-up of each; the best
of the repeats is kept. Goal: >= 0.9. Each repeat's two models must end with the same
weights (on the CPU; on CUDA the difference is printed).

Run ``python -m climlatent.benchmarks.llaae_throughput --help`` for the options.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Sequence

import numpy as np
import torch

from climlatent.benchmarks.training_throughput import (
    bare_loop,
    check_same_weights,
    synchronize,
    weights_difference,
)
from climlatent.datasets import synthetic_circulation
from climlatent.estimators import LLAAE
from climlatent.random_streams import stream_seed
from climlatent.training import resolve_device


def measure(
    n_members: int = 2,
    n_years: int = 10,
    epochs: int = 3,
    repeats: int = 2,
    device: str = "auto",
    latent: str = "gaussian",
) -> dict[str, list[float]]:
    """Samples per second of ``LLAAE.fit`` and of the bare loop, per timed run.

    Examples
    --------
    >>> rates = measure(n_members=1, n_years=1, epochs=1, repeats=1, device="cpu")
    >>> sorted(rates), rates["difference"]
    (['bare', 'difference', 'estimator'], [0.0])
    """
    ds = synthetic_circulation(n_members=n_members, n_years=n_years)
    options = dict(
        latent=latent,
        latent_dim=16,
        epochs=epochs,
        validation_fraction=0.0,
        device=device,
        n_proxy_eofs=20,
        progress=False,
    )
    reference = LLAAE(**{**options, "epochs": 1}).fit(ds, "pr", "psl")  # also the warm-up
    tensors = tuple(t.to(reference.device_) for t in reference.training_tensors(ds))
    config = reference._training_config()
    n_samples = len(tensors[0])
    mask = np.asarray(reference.target_layout_.grid["valid_mask"].values, dtype=bool)

    def run_estimator(n_epochs: int = epochs) -> torch.nn.Module:
        return LLAAE(**{**options, "epochs": n_epochs}).fit(ds, "pr", "psl").module_

    def run_bare(n_epochs: int = epochs) -> torch.nn.Module:
        torch.manual_seed(stream_seed(reference.seed, reference.random_streams, "weights"))
        module = reference._build(mask, tensors[2].shape[1]).to(reference.device_)
        bare_loop(module, tensors, dataclasses.replace(config, epochs=n_epochs))
        return module

    runs = {"estimator": run_estimator, "bare": run_bare}
    run_bare(1)  # the bare loop's warm-up (the reference fit was the estimator's)
    rates: dict[str, list[float]] = {name: [] for name in (*runs, "difference")}
    for repeat in range(repeats):
        modules = {}
        for name in list(runs) if repeat % 2 == 0 else list(runs)[::-1]:
            synchronize(reference.device_)
            started = time.perf_counter()
            modules[name] = runs[name]()
            synchronize(reference.device_)
            rates[name].append(n_samples * epochs / (time.perf_counter() - started))
        rates["difference"].append(weights_difference(modules["estimator"], modules["bare"]))
        check_same_weights(rates["difference"][-1], reference.device_)
    return rates


def main(argv: Sequence[str] | None = None) -> None:
    """Run :func:`measure` and print both throughputs and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=2)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--latent", default="gaussian")
    args = parser.parse_args(argv)
    rates = measure(args.members, args.years, args.epochs, args.repeats, args.device, args.latent)
    print(
        f"LLAAE[{args.latent}] on {args.members} members x {args.years} years, "
        f"{args.epochs} epochs, device {resolve_device(args.device)} "
        f"({torch.get_num_threads()} threads)"
    )
    for name in ("bare", "estimator"):
        print(f"{name:>10s}: {max(rates[name]):9.0f} samples/s (best of {args.repeats})")
    print(f"ratio estimator/bare: {max(rates['estimator']) / max(rates['bare']):.3f} (goal >= 0.9)")
    print(f"weights estimator vs bare: {max(rates['difference']):.1e} relative (same work)")


if __name__ == "__main__":
    main()
