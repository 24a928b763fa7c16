"""Training throughput of `climlatent.training.fit` against a bare torch loop.

Both train the same `DenseAutoencoder` (same initial weights) on the same random data
with the same optimiser and the same batches, without validation, progress bar or
checkpoints. Runs alternate, after a warm-up, and the best of the repeats is kept.
The goal is ``fit`` at >= 0.9 of the bare loop's samples per second. Each repeat's two
models must end with the same weights (to 1e-6 relative on the CPU; on CUDA the
difference is printed): a loop that skipped work would not pass.

Run ``python -m climlatent.benchmarks.training_throughput --help`` for the options.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch
from torch import Tensor, nn

from climlatent.checkpoint import seed_everything
from climlatent.models import DenseAutoencoder
from climlatent.random_streams import stream_seed
from climlatent.training import TrainingConfig, fit, resolve_device

__all__ = ["bare_loop", "main", "measure", "synchronize", "weights_difference"]
#: Largest relative weight difference between the two loops' models on the CPU.
CPU_TOLERANCE = 1e-6


def bare_loop(module: nn.Module, tensors: Sequence[Tensor], config: TrainingConfig) -> None:
    """Train ``module`` with a hand-written loop on the batches `fit` would draw.

    One Adam optimiser per parameter group of ``module.optimizer_groups()`` (or one for
    all parameters), stepped in order on the loss of the same name, and the global
    random generators seeded from ``config.seed``'s noise stream first, and each epoch's
    order from its stream, as `fit` does by ``config.random_streams`` (a model that
    draws noise, a VAE's sampling or dropout, then trains on the same draws).

    Parameters
    ----------
    module : torch.nn.Module
        A module following the `climlatent.training` contract, on the tensors' device.
    tensors : sequence of torch.Tensor
        Sample-major training tensors.
    config : TrainingConfig
        Uses ``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``seed`` and
        ``random_streams``.

    Examples
    --------
    >>> model = DenseAutoencoder(8, 2, hidden=(4,))
    >>> bare_loop(model, (torch.randn(32, 8),), TrainingConfig(epochs=1, batch_size=8))
    """
    groups = (
        module.optimizer_groups()
        if hasattr(module, "optimizer_groups")
        else {"loss": list(module.parameters())}
    )
    optimizers = {
        name: torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
        for name, params in groups.items()
    }
    n = len(tensors[0])
    seed_everything(stream_seed(config.seed, config.random_streams, "noise", 0))
    module.train()
    for epoch in range(config.epochs):
        order_seed = stream_seed(config.seed, config.random_streams, "order", epoch)
        generator = torch.Generator().manual_seed(order_seed)  # as _epoch.shuffled
        order = torch.randperm(n, generator=generator).to(tensors[0].device)
        for start in range(0, n, config.batch_size):
            batch = tuple(t[order[start : start + config.batch_size]] for t in tensors)
            for name, optimizer in optimizers.items():
                loss = module.training_losses(batch)[name]
                optimizer.zero_grad(set_to_none=True)
                loss.backward(inputs=groups[name])
                optimizer.step()


def measure(
    n_samples: int = 20000,
    n_features: int = 1024,
    latent_dim: int = 32,
    hidden: Sequence[int] = (512, 128),
    batch_size: int = 256,
    epochs: int = 2,
    repeats: int = 3,
    device: str = "auto",
    seed: int = 0,
) -> dict[str, list[float]]:
    """Time `fit` and `bare_loop` side by side, alternating their order.

    Parameters
    ----------
    n_samples, n_features : int
        Size of the random training data.
    latent_dim : int
        Latent size of the autoencoder.
    hidden : sequence of int
        Hidden widths of the autoencoder.
    batch_size, epochs : int
        Training settings shared by both loops.
    repeats : int
        Timed runs of each loop, after one warm-up epoch of each.
    device : str
        Device name, see `climlatent.training.resolve_device`.
    seed : int
        Seed of the data, the initial weights and the batch order.

    Returns
    -------
    dict
        ``{"bare": [...], "fit": [...]}``: samples per second of each timed run, and
        ``"difference"``: each repeat's `weights_difference` of the two models.

    Raises
    ------
    RuntimeError
        On the CPU, if the two loops' models differ by more than ``CPU_TOLERANCE``.

    Examples
    --------
    >>> rates = measure(n_samples=64, n_features=8, latent_dim=2, hidden=(4,),
    ...                 batch_size=16, epochs=1, repeats=1, device="cpu")
    >>> sorted(rates), rates["difference"]
    (['bare', 'difference', 'fit'], [0.0])
    """
    torch_device = resolve_device(device)
    data_generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n_samples, n_features, generator=data_generator).to(torch_device)
    config = TrainingConfig(
        epochs=epochs,
        batch_size=batch_size,
        validation_fraction=0.0,
        seed=seed,
        device=str(torch_device),
        progress=False,
    )

    def new_model() -> DenseAutoencoder:
        torch.manual_seed(seed)
        return DenseAutoencoder(n_features, latent_dim, hidden=hidden).to(torch_device)

    loops: dict[str, Callable[[nn.Module, TrainingConfig], object]] = {
        "bare": lambda model, cfg: bare_loop(model, (x,), cfg),
        "fit": lambda model, cfg: fit(model, (x,), cfg),
    }
    for run in loops.values():
        run(new_model(), replace(config, epochs=1))
    rates: dict[str, list[float]] = {name: [] for name in (*loops, "difference")}
    for repeat in range(repeats):
        names = list(loops) if repeat % 2 == 0 else list(loops)[::-1]
        models = {}
        for name in names:
            models[name] = model = new_model()
            synchronize(torch_device)
            started = time.perf_counter()
            loops[name](model, config)
            synchronize(torch_device)
            rates[name].append(n_samples * epochs / (time.perf_counter() - started))
        rates["difference"].append(weights_difference(models["fit"], models["bare"]))
        check_same_weights(rates["difference"][-1], torch_device)
    return rates


def weights_difference(a: nn.Module, b: nn.Module) -> float:
    """Largest absolute difference of the two modules' weights, relative to the largest.

    Examples
    --------
    >>> a = nn.Linear(2, 2)
    >>> weights_difference(a, a)
    0.0
    """
    state_a, state_b = a.state_dict(), b.state_dict()
    if list(state_a) != list(state_b):
        raise ValueError(f"modules of other weights: {list(state_a)} and {list(state_b)}")
    largest = max(float(v.detach().float().abs().max()) for v in state_a.values() if v.numel())
    gap = max(
        float((state_a[key].detach().float() - state_b[key].detach().float()).abs().max())
        for key in state_a
        if state_a[key].numel()
    )
    return gap / max(largest, 1e-30)


def check_same_weights(difference: float, device: torch.device) -> None:
    """Refuse a run whose two loops trained different weights (the CPU is deterministic)."""
    if device.type == "cpu" and not difference <= CPU_TOLERANCE:
        raise RuntimeError(
            f"the timed loops trained different weights ({difference:.2e} relative): "
            "they did not do the same work, so their speeds do not compare"
        )


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, run `measure` and print both throughputs and their ratio.

    Examples
    --------
    >>> main(["--samples", "64", "--features", "8", "--latent-dim", "2", "--hidden", "4",
    ...       "--batch-size", "16", "--epochs", "1", "--repeats", "1", "--device", "cpu"])
    ... # doctest: +ELLIPSIS
    device: cpu ...
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--features", type=int, default=1024)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 128])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rates = measure(
        args.samples,
        args.features,
        args.latent_dim,
        args.hidden,
        args.batch_size,
        args.epochs,
        args.repeats,
        args.device,
        args.seed,
    )
    print(
        f"device: {resolve_device(args.device)} (torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads)\n"
        f"data: {args.samples} samples x {args.features} features, batch {args.batch_size}, "
        f"{args.epochs} epochs, {args.repeats} repeats"
    )
    for name, label in (("bare", "bare torch loop"), ("fit", "climlatent fit")):
        print(
            f"{label:16s}: {max(rates[name]):10.0f} samples/s best, "
            f"{statistics.median(rates[name]):10.0f} median"
        )
    ratio = max(rates["fit"]) / max(rates["bare"])
    print(f"ratio fit/bare  : {ratio:.3f} (goal >= 0.9)")
    print(f"weights fit vs bare: {max(rates['difference']):.1e} relative (same work)")


if __name__ == "__main__":
    main()
