"""Throughput of the Darcy KLE generator, and its sparse solver against a dense solve.

Generates ``--samples`` KLE2 samples (default 512, the seed paper's training-set size) on
the 65 x 65 grid with :func:`~climlatent.reference.darcy.generate` on ``--workers``
processes (default: the available CPUs) and prints samples per second. The KLE basis is
computed first, once, and timed apart (it is cached). Then the first ``--dense-samples``
permeabilities are solved again by the dense LU of the same discrete system
(:func:`~climlatent.reference.darcy.solve_dense`, LAPACK on all cores) and by the sparse
solver alone in this process; the ratio of per-sample times is printed twice: dense
against the sparse generator's wall time per sample (goal >= 100), and dense against one
sparse solve. The dense and sparse pressures must agree to round-off.

Run ``python -m climlatent.benchmarks.darcy_generation --help`` for the options.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np

from climlatent.reference.darcy.generate import generate
from climlatent.reference.darcy.kle import LENGTH_SCALE, N_GRID, kle_basis
from climlatent.reference.darcy.solver import available_cpus, solve_dense, solve_pressure

#: Largest relative difference of the dense and sparse pressures (round-off).
AGREEMENT = 1e-10


def run(
    n_samples: int = 512,
    kle_terms: int = 2,
    workers: int | None = None,
    dense_samples: int = 3,
    n_grid: int = N_GRID,
    seed: int = 0,
) -> dict[str, float]:
    """Time the generator and the dense reference solve.

    Parameters
    ----------
    n_samples : int
        Samples to generate.
    kle_terms : int
        KLE terms *s*.
    workers : int, optional
        Processes of the generator; default the available CPUs.
    dense_samples : int
        Samples solved again densely (and sparsely, alone), at least 1.
    n_grid : int
        Nodes per side.
    seed : int
        Seed of the generator.

    Returns
    -------
    dict
        ``workers``, ``kle_seconds`` (first computation of the basis),
        ``generate_seconds``, ``samples_per_second``, ``dense_seconds_per_sample``,
        ``sparse_seconds_per_sample`` (one solve, this process), ``ratio_generator``
        (dense per sample / generator wall time per sample), ``ratio_solver`` (dense /
        sparse solve) and ``max_difference`` (dense vs generated pressure, relative to
        the largest pressure).

    Examples
    --------
    >>> result = run(n_samples=4, dense_samples=1, n_grid=17, workers=1)
    >>> result["max_difference"] < 1e-10, result["ratio_solver"] > 0
    (True, True)
    """
    workers = available_cpus() if workers is None else workers
    started = time.perf_counter()
    kle_basis(n_grid, LENGTH_SCALE, kle_terms)
    kle_seconds = time.perf_counter() - started

    started = time.perf_counter()
    ds = generate(n_samples, kle_terms=kle_terms, seed=seed, n_grid=n_grid, workers=workers)
    generate_seconds = time.perf_counter() - started

    permeability = ds.permeability.values[:dense_samples]
    source = ds.source.values
    started = time.perf_counter()
    for sample in permeability:
        solve_pressure(sample, source)
    sparse_seconds = (time.perf_counter() - started) / len(permeability)
    started = time.perf_counter()
    dense = np.stack([solve_dense(sample, source) for sample in permeability])
    dense_seconds = (time.perf_counter() - started) / len(permeability)

    generated = ds.pressure.values[: len(permeability)]
    return {
        "workers": float(workers),
        "kle_seconds": kle_seconds,
        "generate_seconds": generate_seconds,
        "samples_per_second": n_samples / generate_seconds,
        "dense_seconds_per_sample": dense_seconds,
        "sparse_seconds_per_sample": sparse_seconds,
        "ratio_generator": dense_seconds / (generate_seconds / n_samples),
        "ratio_solver": dense_seconds / sparse_seconds,
        "max_difference": float(np.abs(dense - generated).max() / np.abs(dense).max()),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Print the generator throughput and the dense / sparse time ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--kle-terms", type=int, default=2)
    parser.add_argument("--workers", type=int, default=None, help="default: available CPUs")
    parser.add_argument("--dense-samples", type=int, default=3)
    parser.add_argument("--grid", type=int, default=N_GRID, help="nodes per side")
    args = parser.parse_args(argv)
    result = run(args.samples, args.kle_terms, args.workers, args.dense_samples, args.grid)
    workers = int(result["workers"])
    print(
        f"KLE{args.kle_terms} basis on {args.grid} x {args.grid} nodes: "
        f"{result['kle_seconds']:.2f} s (once, cached)"
    )
    print(
        f"generate {args.samples} samples on {workers} worker(s): "
        f"{result['generate_seconds']:.2f} s, {result['samples_per_second']:.0f} samples/s "
        f"({1e3 / result['samples_per_second']:.2f} ms per sample)"
    )
    print(
        f"dense solve: {result['dense_seconds_per_sample']:.3f} s per sample "
        f"({args.dense_samples} samples); one sparse solve: "
        f"{1e3 * result['sparse_seconds_per_sample']:.2f} ms"
    )
    print(
        f"ratio dense / generator per sample: {result['ratio_generator']:.0f} (goal >= 100); "
        f"dense / sparse solve: {result['ratio_solver']:.0f}"
    )
    agree = result["max_difference"] <= AGREEMENT
    print(
        f"max |dense - sparse| / max |p|: {result['max_difference']:.1e} "
        f"(goal <= {AGREEMENT:.0e}: {'met' if agree else 'MISSED: the timed solves disagree'})"
    )


if __name__ == "__main__":
    main()
