"""Training throughput of the DenseVAE on Darcy KLE2 data: one 512-sample epoch.

Generates ``--samples`` KLE2 samples (pressure and both velocities, 65 x 65), then
times ``--epochs`` epochs of `climlatent.VAE.fit` (the package's training loop, with
the hierarchical prior when ``--prior hierarchical``) on ``--device`` (``auto``: CUDA
when present) and prints samples per second and seconds per epoch; the first epoch
is reported apart (warm-up: allocations, cuDNN autotuning).

Run ``python -m climlatent.benchmarks.darcy_vae_epoch --help`` for the options.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import torch

from climlatent.estimators.vae import VAE
from climlatent.reference.darcy import generate
from climlatent.training import resolve_device


def main(argv: Sequence[str] | None = None) -> None:
    """Print the epoch throughput of the Darcy DenseVAE."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--prior", default="standard", choices=["standard", "hierarchical"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = generate(args.samples, kle_terms=2, seed=0)
    device = resolve_device(args.device)
    vae = VAE(
        prior=args.prior,
        epochs=args.epochs,
        batch_size=args.batch_size,
        device=str(device),
        progress=False,
    )
    started = time.perf_counter()
    vae.fit(data, ["pressure", "u_x", "u_y"])
    total = time.perf_counter() - started
    seconds = vae.history_["seconds"]
    print(f"device: {device} (torch {torch.__version__}, {torch.get_num_threads()} threads)")
    print(
        f"data: {args.samples} samples x 3 x 65 x 65, batch {args.batch_size}, {args.prior} prior"
    )
    print(f"first epoch     : {seconds.iloc[0]:8.2f} s")
    if len(seconds) > 1:  # one epoch has no epoch after the warm-up to report
        steady = seconds.iloc[1:].mean()
        print(f"later epochs    : {steady:8.2f} s each, {args.samples / steady:8.1f} samples/s")
    else:
        print("later epochs    : none (--epochs 1: the first epoch includes the warm-up)")
    print(f"fit, everything : {total:8.2f} s for {args.epochs} epochs")


if __name__ == "__main__":
    main()
