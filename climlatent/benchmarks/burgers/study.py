"""VAE vs VAE-DLM on Burgers' equation, in and out of distribution (seed 004's table).

Trains the vanilla VAE and the VAE-DLM (:class:`climlatent.estimators.vae_dlm.VAEDLM`,
``flow=False`` and ``flow=True``: same data, architecture, optimiser and seeds) on
in-distribution trajectories, for several training seeds, and evaluates the relative
L1 error ``sum_x |u_pred - u| / sum_x |u|`` of the trajectory predicted from the
initial state at t = 0, 0.25, 0.5, 0.75, 1, on held-out in-distribution trajectories
and on the four out-of-distribution sets of :data:`climlatent.benchmarks.burgers.DATASETS`
(shifted amplitudes, another initial-state family, half the viscosity, noisy
observations). For ``ood4`` the model sees the noisy field and is scored against the
noise-free one (``u_clean``).

The seed reports an "unweighted" and a "weighted" VAE-DLM without saying what the
weights are; here each value of ``--gammas`` is one VAE-DLM with
``gamma_geo = gamma_metric`` = that value. The loss is per trajectory, in nats, and
its reconstruction term sums the negative log-likelihood over the 100 grid values:
``gamma = 100`` weighs each geometric term like the per-value mean of that sum,
``gamma = 1`` a hundred times less (the seed's formula with unit weights).

The table gives mean +- standard deviation over test trajectories pooled over the
training seeds (the seed's ``±``), and the standard deviation over seeds of the
per-seed means; the best model of a set and time has the lowest pooled mean, and the
number of seeds where a VAE-DLM's mean is below the VAE's says how robust that is.
Outputs in ``--output``: ``errors.nc`` (every error), ``table.csv``, ``winners.csv``,
``table.txt`` (the printed table) and ``study.png``.

Run ``python -m climlatent.benchmarks.burgers.study --output DIR`` (``main(argv)`` is the
entry point for ``climlatent bench``); one torch thread, about 12 minutes on two loaded
cores with the defaults (3 seeds x 3 models, 200 epochs, 1000 training trajectories).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from climlatent.benchmarks.burgers.generate import DATASETS, generate_set
from climlatent.estimators.vae_dlm import VAEDLM, set_torch_threads

EVAL_TIMES = (0.0, 0.25, 0.5, 0.75, 1.0)
BASELINE = "VAE"
LABELS = {
    "in_distribution": "In-distribution",
    "ood1": "Out-of-distribution 1",
    "ood2": "Out-of-distribution 2",
    "ood3": "Out-of-distribution 3",
    "ood4": "Out-of-distribution 4",
}


def model_variants(gammas: Sequence[float] = (1.0, 100.0)) -> dict[str, dict]:
    """Label -> :class:`VAEDLM` settings: the vanilla VAE and one VAE-DLM per gamma.

    Examples
    --------
    >>> model_variants([1.0])
    {'VAE': {'flow': False}, 'VAE-DLM (gamma=1)': {'flow': True, 'gamma_geo': 1.0, \
'gamma_metric': 1.0}}
    """
    variants: dict[str, dict] = {BASELINE: {"flow": False}}
    for gamma in gammas:
        settings = {"flow": True, "gamma_geo": float(gamma), "gamma_metric": float(gamma)}
        variants[f"VAE-DLM (gamma={gamma:g})"] = settings
    return variants


def relative_l1(prediction: xr.DataArray, truth: xr.DataArray, dim: str = "x") -> xr.DataArray:
    """Relative L1 error ``sum |prediction - truth| / sum |truth|`` over ``dim``.

    Examples
    --------
    >>> truth = xr.DataArray([[1.0, -1.0]], dims=("t", "x"))
    >>> relative_l1(truth * 1.5, truth).values
    array([0.5])
    """
    return abs(prediction - truth).sum(dim) / abs(truth).sum(dim)


def make_sets(
    n_train: int, n_test: int, data_seed: int = 0, nt: int = 100
) -> tuple[xr.Dataset, dict[str, xr.Dataset]]:
    """Training trajectories and one test Dataset per set of ``DATASETS``.

    The training set uses seed ``data_seed``, the test sets ``data_seed + 1`` (so that
    ``ood3`` and ``ood4`` share the initial states of the in-distribution test set).

    Examples
    --------
    >>> train, tests = make_sets(2, 1, nt=4)
    >>> train.sizes["sample"], sorted(tests)[:2]
    (2, ['in_distribution', 'ood1'])
    """
    train = generate_set("in_distribution", n_train, seed=data_seed, nt=nt)
    tests = {name: generate_set(name, n_test, seed=data_seed + 1, nt=nt) for name in DATASETS}
    return train, tests


def evaluate(model: VAEDLM, tests: dict[str, xr.Dataset]) -> xr.DataArray:
    """Relative L1 errors ``(set, sample, t)`` of a fitted model at :data:`EVAL_TIMES`.

    Examples
    --------
    >>> train, tests = make_sets(4, 2, nt=4)
    >>> model = VAEDLM(flow=False, hidden=8, epochs=1, progress=False).fit(train)
    >>> evaluate(model, tests).sizes["set"]
    5
    """
    errors = []
    for name, ds in tests.items():
        prediction = model.emulate(ds, list(EVAL_TIMES))["u"]
        truth = (ds["u_clean"] if "u_clean" in ds else ds["u"]).sel(t=list(EVAL_TIMES))
        errors.append(relative_l1(prediction, truth).expand_dims(set=[name]))
    return xr.concat(errors, "set")


def run_study(
    train: xr.Dataset,
    tests: dict[str, xr.Dataset],
    seeds: int = 3,
    epochs: int = 200,
    gammas: Sequence[float] = (1.0, 100.0),
    device: str = "auto",
    verbose: bool = True,
    **options: float,
) -> xr.Dataset:
    """Train every model of :func:`model_variants` for every seed; return all errors.

    Parameters
    ----------
    train, tests : xr.Dataset and dict of xr.Dataset
        From :func:`make_sets`.
    seeds : int
        Training seeds ``0 .. seeds - 1`` (initial weights, batches, draws).
    epochs : int
        Epochs per run.
    gammas : sequence of float
        One VAE-DLM per value (``gamma_geo = gamma_metric``).
    device : str
        Training device (``"auto"``: CUDA when present).
    verbose : bool
        Print one line per run.
    **options
        Other :class:`VAEDLM` settings, shared by all models.

    Returns
    -------
    xr.Dataset
        ``error(model, seed, set, sample, t)`` and ``seconds(model, seed)``.

    Examples
    --------
    >>> train, tests = make_sets(4, 2, nt=4)
    >>> out = run_study(train, tests, seeds=1, epochs=1, gammas=[1.0], verbose=False,
    ...                 hidden=8, geometry_hidden=4)
    >>> dict(out.error.sizes), out.model.values.tolist()
    ({'model': 2, 'seed': 1, 'set': 5, 'sample': 2, 't': 5}, ['VAE', 'VAE-DLM (gamma=1)'])
    """
    variants = model_variants(gammas)
    errors, seconds = [], np.zeros((len(variants), seeds))
    for i, (label, settings) in enumerate(variants.items()):
        per_seed = []
        for seed in range(seeds):
            started = time.perf_counter()
            model = VAEDLM(**{**options, **settings}, epochs=epochs, seed=seed, device=device,
                           progress=False).fit(train)  # fmt: skip
            seconds[i, seed] = time.perf_counter() - started
            per_seed.append(evaluate(model, tests))
            if verbose:
                mean = float(per_seed[-1].mean())
                print(f"{label:20s} seed {seed}: {seconds[i, seed]:6.1f} s, mean error "
                      f"{mean:.3e}", flush=True)  # fmt: skip
        errors.append(xr.concat(per_seed, "seed"))
    error = xr.concat(errors, "model").assign_coords(model=list(variants), seed=np.arange(seeds))
    return xr.Dataset(
        {
            "error": error.transpose("model", "seed", "set", "sample", "t").assign_attrs(
                units="1", long_name="relative L1 error of the trajectory from the initial state"
            ),
            "seconds": (("model", "seed"), seconds, {"units": "s", "long_name": "training time"}),
        },
        attrs={"epochs": epochs, "n_train": int(train.sizes["sample"]), **options},
    )


def summary_table(results: xr.Dataset) -> pd.DataFrame:
    """Mean and std over (seed, sample), and std over seeds of the mean, per model/set/t.

    Examples
    --------
    >>> error = xr.DataArray(np.ones((2, 1, 1, 3, 1)), dims=("model", "seed", "set",
    ...     "sample", "t"), coords={"model": ["VAE", "VAE-DLM"], "set": ["ood1"], "t": [0.0]})
    >>> summary_table(xr.Dataset({"error": error}))["mean"].tolist()
    [1.0, 1.0]
    """
    error = results["error"]
    table = xr.Dataset(
        {
            "mean": error.mean(("seed", "sample")),
            "std": error.std(("seed", "sample")),
            "seed_std": error.mean("sample").std("seed"),
        }
    )
    frame = table.to_dataframe()[["mean", "std", "seed_std"]]
    return frame.reorder_levels(["model", "set", "t"]).sort_index()


def winners(results: xr.Dataset) -> pd.DataFrame:
    """Per set and time: each model's pooled mean, ratios to the VAE, seeds won, best model.

    Returns
    -------
    pandas.DataFrame
        Index ``(set, t)``; per model its mean, and per VAE-DLM ``<label> ratio`` (its
        mean over the VAE's) and ``<label> seeds won`` (seeds where its per-seed mean
        is below the VAE's); ``best`` (lowest mean) and ``n_seeds``.

    Examples
    --------
    >>> error = xr.DataArray([[[[[1.0]]]], [[[[0.5]]]]], dims=("model", "seed", "set",
    ...     "sample", "t"), coords={"model": ["VAE", "VAE-DLM"], "set": ["ood1"], "t": [0.0]})
    >>> wins = winners(xr.Dataset({"error": error}))
    >>> wins["best"].tolist(), wins["VAE-DLM ratio"].tolist()
    (['VAE-DLM'], [0.5])
    """
    error = results["error"]
    pooled = error.mean(("seed", "sample"))
    per_seed = error.mean("sample")
    models = [str(m) for m in error["model"].values]
    columns = {model: pooled.sel(model=model, drop=True) for model in models}
    vae = per_seed.sel(model=BASELINE, drop=True)
    for model in models:
        if model != BASELINE:
            columns[f"{model} ratio"] = columns[model] / columns[BASELINE]
            columns[f"{model} seeds won"] = (per_seed.sel(model=model, drop=True) < vae).sum("seed")
    frame = xr.Dataset(columns).to_dataframe()[list(columns)]
    frame["best"] = frame[models].idxmin(axis=1)
    frame["n_seeds"] = error.sizes["seed"]
    return frame


def _number(value: float) -> str:
    """The seed's number style: ``3.90e-2``, ``1.20e0``."""
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def format_table(table: pd.DataFrame, wins: pd.DataFrame) -> str:
    """The seed's layout: one block per model, rows = sets, columns = times.

    A ``*`` marks the lowest pooled mean of the set and time among the models.

    Examples
    --------
    >>> error = xr.DataArray(np.ones((2, 1, 1, 3, 1)), dims=("model", "seed", "set",
    ...     "sample", "t"), coords={"model": ["VAE", "VAE-DLM"], "set": ["ood1"], "t": [0.0]})
    >>> results = xr.Dataset({"error": error})
    >>> print(format_table(summary_table(results), winners(results)).splitlines()[1])
    Out-of-distribution 1    1.00e0 ± 0.00e0
    """
    lines = []
    times = table.index.get_level_values("t").unique()
    models = table.index.get_level_values("model").unique()
    for model in models:
        lines.append(f"{model:22s}" + "".join(f"{'t = ' + format(t, 'g'):>19s}" for t in times))
        for name in table.loc[model].index.get_level_values("set").unique():
            cells = []
            for t in times:
                row, win = table.loc[(model, name, t)], wins.loc[(name, t)]
                tied = (win[list(models)] == win[model]).sum() > 1
                star = "*" if win["best"] == model and not tied else " "
                cells.append(f"{_number(row['mean']) + ' ± ' + _number(row['std']) + star:>19s}")
            lines.append(f"{LABELS.get(name, name):22s}" + "".join(cells).rstrip())
    return "\n".join(lines)


def format_winners(wins: pd.DataFrame) -> str:
    """Best model per set and time; each VAE-DLM's error ratio to the VAE and seeds won.

    Examples
    --------
    >>> error = xr.DataArray([[[[[1.0]]]], [[[[0.5]]]]], dims=("model", "seed", "set",
    ...     "sample", "t"), coords={"model": ["VAE", "VAE-DLM"], "set": ["ood1"], "t": [0.0]})
    >>> print(format_winners(winners(xr.Dataset({"error": error}))))
    Best model (lowest mean error)
    set                     t = 0
    Out-of-distribution 1   VAE-DLM
    <BLANKLINE>
    VAE-DLM: mean error / VAE mean error (seeds where it beats the VAE)
    set                     t = 0
    Out-of-distribution 1   0.50 (1/1)
    """
    times = wins.index.get_level_values("t").unique()
    sets = wins.index.get_level_values("set").unique()
    header = f"{'set':22s}  " + "".join(f"{'t = ' + format(t, 'g'):22s}" for t in times).rstrip()

    def block(title: str, cell) -> list[str]:
        rows = [title, header]
        for name in sets:
            text = "".join(f"{cell(wins.loc[(name, t)]):22s}" for t in times).rstrip()
            rows.append(f"{LABELS.get(name, name):22s}  {text}")
        return rows

    lines = block("Best model (lowest mean error)", lambda row: row["best"])
    for model in (c[: -len(" ratio")] for c in wins.columns if c.endswith(" ratio")):
        lines.append("")
        lines += block(
            f"{model}: mean error / {BASELINE} mean error (seeds where it beats the {BASELINE})",
            lambda row, m=model: (
                f"{row[m + ' ratio']:.2f} ({int(row[m + ' seeds won'])}/{int(row['n_seeds'])})"
            ),
        )
    return "\n".join(lines)


def plot(results: xr.Dataset, path: Path) -> None:
    """Mean relative L1 error against time, one panel per set, every model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    error = results["error"]
    sets = list(error["set"].values)
    fig, axes = plt.subplots(1, len(sets), figsize=(3.2 * len(sets), 3.4), sharex=True,
                             constrained_layout=True)  # fmt: skip
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, sets, strict=True):
        for i, model in enumerate(error["model"].values):
            sub = error.sel(model=model, set=name)
            per_seed = sub.mean("sample")
            ax.errorbar(sub["t"], sub.mean(("seed", "sample")), yerr=per_seed.std("seed"),
                        color=f"C{i}", marker="o", capsize=3, label=str(model))  # fmt: skip
            for seed_mean in per_seed:
                ax.plot(sub["t"], seed_mean, color=f"C{i}", alpha=0.25, lw=0.8)
        ax.set_yscale("log")
        ax.set_title(LABELS.get(name, name))
        ax.set_xlabel("t")
    axes[0].set_ylabel("relative L1 error")
    axes[0].legend()
    fig.suptitle(
        f"Burgers: relative L1 error of the trajectory from the initial state (mean over "
        f"{error.sizes['seed']} seeds, bars: std over seeds, thin lines: single seeds)"
    )
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the study; print and write the table, the winners and the figure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per model")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--n-train", type=int, default=1000, help="training trajectories")
    parser.add_argument("--n-test", type=int, default=200, help="test trajectories per set")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument(
        "--gammas", type=float, nargs="+", default=[1.0, 100.0],
        help="one VAE-DLM per value, gamma_geo = gamma_metric = value",
    )  # fmt: skip
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--output", type=Path, default=Path("burgers-study"))
    args = parser.parse_args(argv)
    set_torch_threads(args.threads)
    args.output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    train, tests = make_sets(args.n_train, args.n_test, args.data_seed)
    print(f"data: {args.n_train} training and {len(tests)} x {args.n_test} test trajectories "
          f"in {time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
    results = run_study(train, tests, args.seeds, args.epochs, args.gammas, args.device)
    results.to_netcdf(args.output / "errors.nc")
    table, wins = summary_table(results), winners(results)
    table.to_csv(args.output / "table.csv")
    wins.to_csv(args.output / "winners.csv")
    plot(results, args.output / "study.png")
    seconds = results.seconds.mean("seed").to_series()
    text = (
        f"Relative L1 error, mean ± std over {args.n_test} test trajectories x {args.seeds} "
        f"seeds (* = lowest mean)\n{format_table(table, wins)}\n\n{format_winners(wins)}\n\n"
        f"Std over seeds of the mean error:\n"
        f"{table['seed_std'].unstack('t').to_string(float_format=_number)}\n\n"
        f"training seconds per run: "
        + ", ".join(f"{model} {value:.0f}" for model, value in seconds.items())
        + f"; total {time.perf_counter() - started:.0f} s"
    )
    (args.output / "table.txt").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
