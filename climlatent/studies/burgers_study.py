"""The seed's Burgers table: VAE, extended VAE and VAE-DLM in and out of distribution.

Seed 004 (Gracyk, VAE-DLM) compares three models, all options of
:class:`climlatent.estimators.vae_dlm.VAEDLM`, trained here on the same trajectories,
architecture widths, optimiser and seeds:

- ``VAE``: the traditional VAE (``flow=False, manifold=False``: the decoder reads the
  local coordinates and time);
- ``VAE extended``: "a VAE endowed with identical architecture" (the author's README):
  encoder, chart and decoder of the VAE-DLM without its geometric terms (``flow=False``);
- ``VAE-DLM (gamma=g)``: the VAE-DLM with ``gamma_geo = gamma_metric = g``, and the
  ablation without the flow's steady term, ``VAE-DLM (gamma=g, no steady term)``.

The seed's "unweighted" VAE-DLM is its loss as written; its "weighted" one adds a
weighting term of the ELBO that the seed does not define, so it is not run. The loss
is per trajectory, in nats, its reconstruction summed over the 100 grid values:
``gamma = 1`` is the seed's formula with unit weights (the unweighted model);
``gamma = 100`` weighs each geometric term like the per-value mean of that sum.

Each model is scored by the relative L1 error ``sum_x |u_pred - u| / sum_x |u|`` of
the trajectory predicted from the initial state at t = 0, 0.25, 0.5, 0.75, 1, on
held-out in-distribution trajectories and on the four out-of-distribution sets of
:data:`climlatent.reference.burgers.DATASETS` (for ``ood4`` the model sees the noisy
field and is scored against the noise-free one). Beside it stands the error of
predicting zero everywhere, 1 by construction: a model at or above 1 does no better
than that, and an ordering among such models means nothing; the tables mark those
cells with ``†``.

Every run trains until its validation loss (10 % of the training trajectories) has
not improved for ``--patience`` epochs (``--max-epochs`` caps it; the epoch reached
is recorded) and also records the mean diagonal of the learned metric ``g`` and of
the chart's ``J^T J`` at the encodings of the in-distribution test set (and of the
sphere metric there, the flow's baseline), and statistics of 200 trajectories decoded
from prior draws. Rows land in ``runs.partial.csv`` as runs finish (resumable: the
same command runs only what is missing; ``--status`` counts them per model); the
tables (``table.txt``, ``table.csv``, ``winners.csv``), ``study.png`` and the claims
ledger (:mod:`climlatent.studies.burgers_claims`) are rewritten after each.

Run ``python -m climlatent.studies.burgers_study --output docs/studies/burgers``;
one torch thread; the data take about a minute, a run 0.2-5 minutes (median 1.1). One
budget per output folder (the tables refuse two runs of one model and seed).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from climlatent.estimators.vae_dlm import VAEDLM, set_torch_threads
from climlatent.reference.burgers.generate import DATASETS, generate_set
from climlatent.studies.run_ledger import RunLedger

EVAL_TIMES = (0.0, 0.25, 0.5, 0.75, 1.0)
BASELINE = "VAE"
LABELS = {
    "in_distribution": "In-distribution",
    "ood1": "Out-of-distribution 1",
    "ood2": "Out-of-distribution 2",
    "ood3": "Out-of-distribution 3",
    "ood4": "Out-of-distribution 4",
}
KEY = ("model", "seed", "max_epochs", "patience", "n_train")
CASE = ("model",)
N_PRIOR = 200  # prior trajectories decoded per run
WORSE_THAN_ZERO = "†"
KINDS = {"mean": "err", "sd": "sd", "zero": "zero"}  # arrays and their run columns


def model_variants(
    gammas: Sequence[float] = (1.0, 100.0), no_steady: Sequence[float] = (1.0,)
) -> dict[str, dict]:
    """Label -> :class:`VAEDLM` settings of every model of the study.

    Examples
    --------
    >>> list(model_variants([1.0], no_steady=[1.0]))
    ['VAE', 'VAE extended', 'VAE-DLM (gamma=1)', 'VAE-DLM (gamma=1, no steady term)']
    >>> model_variants([], no_steady=[])["VAE"]
    {'flow': False, 'manifold': False, 'steady': True, 'gamma': 0.0}
    """
    base = {"flow": False, "manifold": True, "steady": True, "gamma": 0.0}
    variants = {BASELINE: {**base, "manifold": False}, "VAE extended": base}
    for gamma in gammas:
        variants[f"VAE-DLM (gamma={gamma:g})"] = {**base, "flow": True, "gamma": float(gamma)}
    for gamma in no_steady:
        label = f"VAE-DLM (gamma={gamma:g}, no steady term)"
        variants[label] = {**base, "flow": True, "steady": False, "gamma": float(gamma)}
    return variants


def column(kind: str, name: str, t: float) -> str:
    """The run-table column of ``kind`` (``err``, ``sd``, ``zero``) for a set and time.

    Examples
    --------
    >>> column("err", "ood1", 0.25)
    'err_ood1_t0.25'
    """
    return f"{kind}_{name}_t{t:g}"


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


def _truth(ds: xr.Dataset) -> xr.DataArray:
    return (ds["u_clean"] if "u_clean" in ds else ds["u"]).sel(t=list(EVAL_TIMES))


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
        errors.append(relative_l1(prediction, _truth(ds)).expand_dims(set=[name]))
    return xr.concat(errors, "set")


def zero_errors(tests: dict[str, xr.Dataset]) -> xr.DataArray:
    """Relative L1 errors ``(set, t)`` of predicting zero, averaged over the samples.

    ``sum |0 - u| / sum |u|`` is 1 for every nonzero field; computed, not assumed.

    Examples
    --------
    >>> _, tests = make_sets(1, 3, nt=4)
    >>> bool((zero_errors(tests) == 1).all())
    True
    """
    zero = [relative_l1(0 * _truth(ds), _truth(ds)).mean("sample") for ds in tests.values()]
    return xr.concat(zero, "set").assign_coords(set=list(tests))


def plan(
    variants: dict[str, dict], seeds: int, max_epochs: int, patience: int, n_train: int
) -> list[dict]:
    """Every run, seed by seed (each seed's models together, so that seeds stay balanced).

    Examples
    --------
    >>> jobs = plan(model_variants([1.0], []), 2, 400, 20, 1000)
    >>> len(jobs), jobs[0]["model"], jobs[-1]["seed"]
    (6, 'VAE', 1)
    """
    budget = {"max_epochs": max_epochs, "patience": patience, "n_train": n_train}
    return [
        {"model": label, **settings, "seed": seed, **budget}
        for seed in range(seeds)
        for label, settings in variants.items()
    ]


def run(
    job: dict,
    train: xr.Dataset,
    tests: dict[str, xr.Dataset],
    device: str = "cpu",
    **options: float,
) -> dict:
    """Train one model to its plateau; its errors, metric and prior statistics (a row).

    ``options`` are other :class:`VAEDLM` settings (the study uses the defaults).

    Examples
    --------
    >>> train, tests = make_sets(8, 2, nt=4)
    >>> job = plan(model_variants([1.0], []), 1, 2, 1, 8)[2]
    >>> row = run(job, train, tests, hidden=8, geometry_hidden=4)
    >>> row["model"], row["epochs_run"], row["zero_ood2_t0.5"]
    ('VAE-DLM (gamma=1)', 2, 1.0)
    """
    started = time.perf_counter()
    model = VAEDLM(
        flow=bool(job["flow"]),
        manifold=bool(job["manifold"]),
        steady=bool(job["steady"]),
        gamma_geo=float(job["gamma"]),
        gamma_metric=float(job["gamma"]),
        epochs=int(job["max_epochs"]),
        validation_fraction=0.1,
        early_stopping_patience=int(job["patience"]),
        seed=int(job["seed"]),
        random_streams=1,
        device=device,
        progress=False,
        **options,
    ).fit(train)
    errors, zero = evaluate(model, tests), zero_errors(tests)
    row = {**job, "n_test": int(errors.sizes["sample"]), "epochs_run": len(model.history_),
           "best_epoch": model.best_epoch_}  # fmt: skip
    for name in errors["set"].values:
        for t in EVAL_TIMES:
            at = {"set": name, "t": t}
            row[column("err", name, t)] = float(errors.sel(at).mean())
            row[column("sd", name, t)] = float(errors.sel(at).std())
            row[column("zero", name, t)] = float(zero.sel(at))
    in_distribution = tests["in_distribution"]
    row |= {"induced_diag": np.nan, "learned_diag": np.nan, "learned_min_eig": np.nan}
    if model.manifold:
        metric = model.latent_metric(in_distribution, EVAL_TIMES)
        row["induced_diag"] = float(np.diagonal(metric["induced"].values, 0, -2, -1).mean())
        if "learned" in metric:
            row["learned_diag"] = float(np.diagonal(metric["learned"].values, 0, -2, -1).mean())
            row["learned_min_eig"] = float(
                np.linalg.eigvalsh(metric["learned"].values)[..., 0].mean()
            )
    u = model.encode(in_distribution)
    row["sphere_diag"] = float((4.0 / (1.0 + (u**2).sum("latent")) ** 2).mean())
    prior, data = model.sample(N_PRIOR, seed=int(job["seed"]))["u"], train["u"]
    row["prior_in_range"] = float(((prior >= data.min()) & (prior <= data.max())).mean())
    row["prior_energy_ratio"] = float(prior.std("x").mean() / data.std("x").mean())
    row["prior_spread_ratio"] = float(prior.std("realization").mean() / data.std("sample").mean())
    row["seconds"] = time.perf_counter() - started
    return row


def errors_from_runs(runs: pd.DataFrame) -> xr.Dataset:
    """Per-run errors as arrays: ``mean``, ``sd`` ``(model, seed, set, t)`` and ``zero``.

    ``mean`` and ``sd`` are each run's mean and standard deviation over the test
    trajectories; ``zero`` (``set, t``) the error of predicting zero. The sets and
    times are those with columns in ``runs``.

    Raises
    ------
    ValueError
        Two rows of one model and seed (runs of two budgets in one study folder).

    Examples
    --------
    >>> runs = pd.DataFrame([{"model": "VAE", "seed": 0, "err_ood1_t0": 0.5,
    ...                       "sd_ood1_t0": 0.1, "zero_ood1_t0": 1.0}])
    >>> errors_from_runs(runs)["mean"].sel(set="ood1", t=0.0).values.tolist()
    [[0.5]]
    """
    twice = runs.duplicated(["model", "seed"], keep=False)
    if twice.any():
        budgets = runs.loc[twice, list(KEY)].drop_duplicates().to_dict("records")
        raise ValueError(f"runs of one model and seed under two budgets: {budgets}; "
                         "give each budget its own --output folder")  # fmt: skip
    sets = [s for s in LABELS if column("err", s, EVAL_TIMES[0]) in runs]
    times = [t for t in EVAL_TIMES if column("err", sets[0], t) in runs]
    long = pd.DataFrame(
        {"model": run["model"], "seed": run["seed"], "set": name, "t": t,
         **{kind: run[column(key, name, t)] for kind, key in KINDS.items()}}
        for run in runs.to_dict("records") for name in sets for t in times
    )  # fmt: skip
    table = long.set_index(["model", "seed", "set", "t"]).to_xarray()
    table = table.sel(model=list(dict.fromkeys(runs["model"])))
    return table.assign(zero=table["zero"].mean(("model", "seed")))


def summary_table(results: xr.Dataset) -> pd.DataFrame:
    """Mean and std over (seed, test trajectory), and std over seeds of the mean.

    The pooled standard deviation is that of all the runs' errors together (ddof 0),
    from each run's mean and standard deviation (every run has the same test sets); the
    std over seeds is the sample standard deviation of the runs' means (ddof 1, as the
    claims ledger's "±").

    Examples
    --------
    >>> results = errors_from_runs(pd.DataFrame([
    ...     {"model": "VAE", "seed": s, "err_ood1_t0": m, "sd_ood1_t0": 1.0, "zero_ood1_t0": 1.0}
    ...     for s, m in enumerate([1.0, 3.0])]))
    >>> summary_table(results)[["mean", "std", "seed_std"]].values.tolist()
    [[2.0, 1.4142135623730951, 1.4142135623730951]]
    """
    mean, sd = results["mean"], results["sd"]
    pooled = mean.mean("seed")
    within, between = (sd**2).mean("seed"), ((mean - pooled) ** 2).mean("seed")
    table = xr.Dataset(
        {
            "mean": pooled,
            "std": np.sqrt(within + between),  # E[x2] - E[x]2 went below 0: NaN
            "seed_std": mean.std("seed", ddof=1),
            "seeds": mean.count("seed"),
        }  # fmt: skip
    )
    frame = table.to_dataframe()[["mean", "std", "seed_std", "seeds"]]
    return frame.reorder_levels(["model", "set", "t"]).sort_index()


def winners(results: xr.Dataset) -> pd.DataFrame:
    """Per set and time: each model's mean, ratios to the VAE, seeds won, best model.

    Returns
    -------
    pandas.DataFrame
        Index ``(set, t)``; per model its mean; per other model ``<label> ratio`` (its
        mean over the VAE's) and ``<label> seeds won`` (seeds where its mean is below
        the VAE's); ``zero`` (the error of predicting zero), ``best`` (lowest mean),
        ``meaningless`` (the best mean is not below ``zero``) and ``n_seeds``.

    Examples
    --------
    >>> runs = pd.DataFrame([{"model": m, "seed": 0, "err_ood2_t0": e, "sd_ood2_t0": 0.1,
    ...                       "zero_ood2_t0": 1.0} for m, e in [("VAE", 1.8), ("DLM", 1.6)]])
    >>> wins = winners(errors_from_runs(runs))
    >>> wins[["best", "DLM ratio", "meaningless"]].values.tolist()
    [['DLM', 0.888..., True]]
    """
    mean = results["mean"]
    pooled = mean.mean("seed")
    models = [str(m) for m in mean["model"].values]
    columns = {model: pooled.sel(model=model, drop=True) for model in models}
    vae = mean.sel(model=BASELINE, drop=True)
    for model in models:
        if model != BASELINE:
            columns[f"{model} ratio"] = columns[model] / columns[BASELINE]
            columns[f"{model} seeds won"] = (mean.sel(model=model, drop=True) < vae).sum("seed")
    columns["zero"] = results["zero"]
    frame = xr.Dataset(columns).to_dataframe()[list(columns)]
    frame["best"] = frame[models].idxmin(axis=1)
    frame["meaningless"] = frame[models].min(axis=1) >= frame["zero"]
    frame["n_seeds"] = int((mean.count(("set", "t")) > 0).all("model").sum())
    return frame


def _number(value: float) -> str:
    """The seed's number style: ``3.90e-2``, ``1.20e0``."""
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def format_table(table: pd.DataFrame, wins: pd.DataFrame) -> str:
    """The seed's layout: one block per model, rows = sets, columns = times.

    The first block is the error of predicting zero. ``*`` marks the lowest mean of a
    set and time among the models, ``†`` a mean at or above the zero prediction's.

    Examples
    --------
    >>> runs = pd.DataFrame([{"model": "VAE", "seed": 0, "err_ood2_t0": 1.6,
    ...                       "sd_ood2_t0": 0.5, "zero_ood2_t0": 1.0}])
    >>> results = errors_from_runs(runs)
    >>> print(format_table(summary_table(results), winners(results)).splitlines()[3])
    Out-of-distribution 2   1.60e0 ± 5.00e-1*†
    """
    times = table.index.get_level_values("t").unique()
    models = table.index.get_level_values("model").unique()
    sets = table.index.get_level_values("set").unique()
    width = max(22, *(len(str(m)) + 1 for m in models))
    header = "".join(f"{'t = ' + format(t, 'g'):>20s}" for t in times)
    lines = [f"{'Predicting zero':{width}s}{header}"]
    for name in sets:
        zeros = "".join(f"{_number(wins.loc[(name, t), 'zero']):>20s}" for t in times)
        lines.append(f"{LABELS.get(name, name):{width}s}{zeros}")
    for model in models:
        lines.append(f"{model:{width}s}{header}")
        for name in sets:
            cells = []
            for t in times:
                row, win = table.loc[(model, name, t)], wins.loc[(name, t)]
                tied = (win[list(models)] == win[model]).sum() > 1
                mark = "*" if win["best"] == model and not tied else ""
                mark += WORSE_THAN_ZERO if row["mean"] >= win["zero"] else ""
                text = f"{_number(row['mean'])} ± {_number(row['std'])}{mark}"
                cells.append(f"{text:>20s}")
            lines.append(f"{LABELS.get(name, name):{width}s}" + "".join(cells).rstrip())
    return "\n".join(lines)


def format_winners(wins: pd.DataFrame) -> str:
    """Best model per set and time (``†``: not better than zero); ratios to the VAE.

    Examples
    --------
    >>> runs = pd.DataFrame([{"model": m, "seed": 0, "err_ood1_t0": e, "sd_ood1_t0": 0.1,
    ...                       "zero_ood1_t0": 1.0} for m, e in [("VAE", 1.0), ("DLM", 0.5)]])
    >>> print(format_winners(winners(errors_from_runs(runs))))
    Best model (lowest mean error; † = not below the error 1 of predicting zero)
    set                     t = 0
    Out-of-distribution 1   DLM
    <BLANKLINE>
    DLM: mean error / VAE mean error (seeds where it beats the VAE)
    set                     t = 0
    Out-of-distribution 1   0.50 (1/1)
    """
    times = wins.index.get_level_values("t").unique()
    sets = wins.index.get_level_values("set").unique()
    header = f"{'set':22s}  " + "".join(f"{'t = ' + format(t, 'g'):36s}" for t in times).rstrip()

    def block(title: str, cell) -> list[str]:
        rows = [title, header]
        for name in sets:
            text = "".join(f"{cell(wins.loc[(name, t)]):36s}" for t in times).rstrip()
            rows.append(f"{LABELS.get(name, name):22s}  {text}")
        return rows

    lines = block(
        f"Best model (lowest mean error; {WORSE_THAN_ZERO} = not below the error 1 of "
        "predicting zero)",
        lambda row: row["best"] + (f" {WORSE_THAN_ZERO}" if row["meaningless"] else ""),
    )
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
    """Mean relative L1 error against time, one panel per set, every model and zero."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mean = results["mean"]
    sets = list(mean["set"].values)
    fig, axes = plt.subplots(1, len(sets), figsize=(3.4 * len(sets), 3.6), sharex=True,
                             constrained_layout=True)  # fmt: skip
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, sets, strict=True):
        for i, model in enumerate(mean["model"].values):
            per_seed = mean.sel(model=model, set=name)
            ax.errorbar(per_seed["t"], per_seed.mean("seed"), yerr=per_seed.std("seed", ddof=1),
                        color=f"C{i}", marker="o", capsize=3, label=str(model))  # fmt: skip
        zero = results["zero"].sel(set=name)
        ax.plot(zero["t"], zero, "k--", lw=1, label="predicting zero")
        ax.set_yscale("log")
        ax.set_title(LABELS.get(name, name))
        ax.set_xlabel("t")
    axes[0].set_ylabel("relative L1 error")
    axes[0].legend(fontsize=7)
    fig.suptitle(
        "Burgers: relative L1 error of the trajectory from the initial state (mean over "
        f"up to {mean.sizes['seed']} seeds, bars: std over seeds; dashed: predicting zero)"
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(output: Path) -> str:
    """Rewrite the tables, the figure and the claims ledger from ``runs.partial.csv``."""
    from climlatent.studies.burgers_claims import write_ledger  # it imports this module

    runs = pd.read_csv(output / "runs.partial.csv")
    results = errors_from_runs(runs)
    table, wins = summary_table(results), winners(results)
    table.to_csv(output / "table.csv")
    wins.to_csv(output / "winners.csv")
    plot(results, output / "study.png")
    budget = runs.groupby("model", sort=False).agg(
        runs=("seed", "size"), epochs_min=("epochs_run", "min"),
        epochs_max=("epochs_run", "max"), cap=("max_epochs", "max"), seconds=("seconds", "mean"),
    )  # fmt: skip
    text = (
        f"Relative L1 error, mean ± std over {int(runs['n_test'].iloc[0])} test trajectories "
        f"x seeds (* = lowest mean; {WORSE_THAN_ZERO} = not below predicting zero)\n"
        f"{format_table(table, wins)}\n\n{format_winners(wins)}\n\n"
        f"Std over seeds of the mean error:\n"
        f"{table['seed_std'].unstack('t').to_string(float_format=_number)}\n\n"
        f"Runs, epochs reached (early stopping) and mean training seconds per model:\n"
        f"{budget.to_string(float_format=lambda v: f'{v:.0f}')}"
    )
    (output / "table.txt").write_text(text + "\n")
    write_ledger(output)
    return text


def main(argv: Sequence[str] | None = None) -> None:
    """Run the missing runs (or print progress), rewriting tables and ledger after each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=16, help="training seeds per model")
    parser.add_argument("--max-epochs", type=int, default=1500)
    parser.add_argument("--patience", type=int, default=20)
    parser.add_argument("--n-train", type=int, default=1000, help="training trajectories")
    parser.add_argument("--n-test", type=int, default=200, help="test trajectories per set")
    parser.add_argument(
        "--gammas",
        type=float,
        nargs="*",
        default=[1.0, 100.0],
        help="one VAE-DLM per value, gamma_geo = gamma_metric = value",
    )
    parser.add_argument("--no-steady", type=float, nargs="*", default=[1.0],
                        help="one VAE-DLM without the steady term per gamma")  # fmt: skip
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--status", action="store_true", help="print runs done per model")
    parser.add_argument("--output", type=Path, default=Path("docs/studies/burgers"))
    args = parser.parse_args(argv)
    variants = model_variants(args.gammas, args.no_steady)
    todo = plan(variants, args.seeds, args.max_epochs, args.patience, args.n_train)
    ledger = RunLedger(args.output / "runs.partial.csv", KEY)
    if args.status:
        print(ledger.status(todo, CASE).to_string(index=False))
        return
    missing = ledger.missing(todo)
    print(f"{len(missing)} runs to do, {len(todo) - len(missing)} done", flush=True)
    if not missing:
        return
    set_torch_threads(args.threads)
    started = time.perf_counter()
    train, tests = make_sets(args.n_train, args.n_test)
    print(f"data: {time.perf_counter() - started:.0f} s", flush=True)
    for job in missing:
        row = run(job, train, tests, device=args.device)
        ledger.append(row)
        write_outputs(args.output)
        mean = np.mean([row[column("err", s, t)] for s in LABELS if s != "in_distribution"
                        for t in EVAL_TIMES])  # fmt: skip
        print(f"  {row['model']:34s} seed {row['seed']}: OOD mean {mean:.3e}, epochs "
              f"{row['epochs_run']} ({row['seconds']:.0f} s)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
