"""The claims ledger of seed 003 (Venkatasubramanian & Barajas-Solano 2024): the VED.

Reads the runs of :mod:`climlatent.studies.ved_training_size` (``runs.partial.csv``)
and the latent-size table of :mod:`climlatent.studies.ved_study` (``needed.csv``),
and writes ``claims.md`` and ``claims.csv`` beside them: per claim, the paper's words
and numbers, ours, the budget (seeds, epochs reached, data size, grid), a test and a
95 % bootstrap interval, and a verdict as in
:func:`climlatent.studies.darcy_claims.verdict`: reproduced (p < 0.05), not
reproduced (p >= 0.05 with >= 80 % power against the effect named in the row),
inconclusive (underpowered), not run yet; and *not reproduced (reversed)* when the
opposite one-sided test rejects at 0.05 (the runs show the other direction, whatever
the power; the power is still given).

The seed states its comparative claims without numbers, so each compares two groups of
runs (a column of one arm against a column of another, at the largest training size
run) and its power is computed against a *stated* effect: a fraction of the worse
group's mean, named in the row. A seed's runs are pairs (both arms train on its pool,
and the CCA error is computed on the same run's data), so the test is a one-sided
paired t-test over seeds and the interval an expanded percentile bootstrap of the mean
per-seed difference, seeds resampled. The training-size claim compares the per-seed gap between
the arms (KL-only error minus covariance-only error, same seed, same data) at the
largest size with that at the smallest, again paired by seed (a seed's training sets
are nested). A non-inferiority claim ("no significant loss of accuracy") adds a margin to
the worse group: reproduced when the better group is significantly below the worse
one plus the margin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from climlatent.studies.darcy_claims import ALPHA, bootstrap_mean, verdict
from climlatent.studies.guided_latent_claims import mean_above
from climlatent.studies.markdown import markdown_table

BUDGET = ("pool", "max_epochs", "patience", "lr_drops", "lr", "architecture", "latent_dim",
          "n_grid", "kle_terms", "n_test")  # fmt: skip
UNDERPOWERED = "inconclusive (underpowered)"
VED_CURVE = "VED beta=1 lambda=1"  # the full-loss curve of ved_study's needed.csv
SIDE = tuple[str, str]  # (arm, column)


@dataclass(frozen=True)
class ArmClaim:
    """The column ``better`` of one arm is below the column ``worse`` of another.

    ``stated`` (and ``margin``) are fractions of the worse group's mean: the effect the
    power is computed against, and the non-inferiority margin added to the worse group.
    With ``growth`` the claim is that the per-seed gap ``worse - better`` is larger at
    the largest training size than at the smallest.
    """

    claim: str
    section: str
    better: SIDE
    worse: SIDE
    stated: float
    paper_text: str
    margin: float = 0.0
    growth: bool = False


CLAIMS = [
    ArmClaim(
        "With more data the covariance penalty matters more than the KL term for accuracy",
        "Key results; regularisation study",
        ("covariance", "relative_error"),
        ("kl", "relative_error"),
        0.05,
        "'for larger training datasets, disentanglement-promoting regularization proves "
        "more critical than KL regularization for accuracy' (no numbers)",
        growth=True,
    ),
    ArmClaim(
        "At the largest training size the covariance penalty alone beats the KL term alone",
        "Key results; regularisation study",
        ("covariance", "relative_error"),
        ("kl", "relative_error"),
        0.05,
        "as above, read at the largest size (no numbers)",
    ),
    ArmClaim(
        "The covariance penalty decorrelates the codes more than the KL term",
        "Abstract; Mechanism 2",
        ("covariance", "covariance_deviation"),
        ("kl", "covariance_deviation"),
        0.2,
        "'KL-divergence and covariance regularization improve feature disentanglement' "
        "(no numbers)",
    ),
    ArmClaim(
        "The KL term alone is not enough for generation: the covariance penalty's prior "
        "samples are better",
        "Mechanism 3",
        ("covariance", "prior_std_error"),
        ("kl", "prior_std_error"),
        0.2,
        "'solely increasing beta is not sufficient to improve generative performance' (no numbers)",
    ),
    ArmClaim(
        "At equal latent size the VED is more accurate than CCA",
        "Abstract (the mechanism of r = 50 vs 147)",
        ("kl", "relative_error"),
        ("kl", "cca_error"),
        0.05,
        "VED r = 50 vs CCA r = 147 at about the same accuracy",
    ),
    ArmClaim(
        "KL and covariance regularisation keep the accuracy of the unregularised VED",
        "Abstract",
        ("both", "relative_error"),
        ("none", "relative_error"),
        0.0,
        "'while maintaining reconstruction accuracy' (tested with a 5 % margin)",
        margin=0.05,
    ),
]


def _side(runs: pd.DataFrame, side: SIDE, n_train: int) -> pd.DataFrame:
    rows = runs[(runs["arm"] == side[0]) & (runs["n_train"] == n_train)]
    return rows.set_index("seed")[side[1]].rename(f"{side[0]}:{side[1]}").to_frame()


def _budget(runs: pd.DataFrame, sizes: list[int], arms: set[str], counts: list[int]) -> str:
    """Runs per tested group, epochs reached and the data of the runs used."""
    used = runs[runs["n_train"].isin(sizes) & runs["arm"].isin(arms)]
    first = used.iloc[0]
    return (
        f"{'/'.join(map(str, counts))} seeds; epochs {int(used['epochs_run'].min())}-"
        f"{int(used['epochs_run'].max())} (cap {int(used['max_epochs'].max())}, "
        f"{int(used['capped'].sum())} at the cap); n_train {'/'.join(map(str, sizes))}, "
        f"{int(first['n_test'])} test; {int(first['n_grid'])}x{int(first['n_grid'])} "
        f"KLE{int(first['kle_terms'])}; r = {int(first['latent_dim'])}, "
        f"{first['architecture']} encoder"
    )


def _sizes(runs: pd.DataFrame, arms: set[str]) -> list[int]:
    """The training sizes at which every arm of ``arms`` has a run."""
    if runs.empty:
        return []
    return sorted(int(n) for n, group in runs.groupby("n_train") if arms <= set(group["arm"]))


def _mean_sd(values: np.ndarray) -> str:
    spread = f" ± {values.std(ddof=1):.2g}" if len(values) > 1 else ""
    return f"{values.mean():.4g}{spread}"


def _label(side: SIDE) -> str:
    return f"CCA (rank r, {side[0]} runs' data)" if side[1] == "cca_error" else f"{side[0]} arm"


def claim_row(runs: pd.DataFrame, claim: ArmClaim) -> dict:
    """Test one claim on the training-size runs; a row of the ledger."""
    row = {"claim": claim.claim, "section": claim.section, "paper": claim.paper_text}
    arms = {claim.better[0], claim.worse[0]}
    sizes = _sizes(runs, arms)
    if len(sizes) < (2 if claim.growth else 1):
        test = "needs two training sizes" if sizes else "-"
        return {**row, "ours": "-", "budget": "-", "test": test, "verdict": "not run yet"}
    used = [sizes[0], sizes[-1]] if claim.growth else [sizes[-1]]
    pairs = [
        _side(runs, claim.better, n).join(_side(runs, claim.worse, n), how="inner") for n in used
    ]
    better, worse = (pairs[-1].iloc[:, k] for k in (0, 1))
    effect = (claim.stated + claim.margin) * worse.mean()
    if claim.growth:  # the per-seed gaps, at the largest size and at the smallest
        a, b = (p.iloc[:, 1] - p.iloc[:, 0] for p in pairs[::-1])
        ours = (
            f"{claim.better[1]}, {claim.worse[0]} arm - {claim.better[0]} arm: {_mean_sd(a)} at "
            f"n = {used[1]}, {_mean_sd(b)} at n = {used[0]}"
        )
    else:
        a, b = worse + claim.margin * worse.mean(), better
        ours = (
            f"{claim.better[1]}: {_label(claim.better)} {_mean_sd(better)} vs "
            f"{_label(claim.worse)} {_mean_sd(worse)} (n = {used[0]})"
        )
    row = {**row, "ours": ours, "budget": _budget(runs, used, arms, [len(a), len(b)])}
    gaps = (a - b).dropna().to_numpy()  # per seed run in both groups
    if len(gaps) < 2:
        return {**row, "test": "needs >= 2 seeds in both groups", "verdict": UNDERPOWERED}
    p_value, power = mean_above(gaps, 0.0, effect)
    reverse_p = mean_above(-gaps, 0.0, effect)[0]
    reversed_ = p_value >= ALPHA and reverse_p < ALPHA
    diff, low, high = bootstrap_mean(gaps)
    if claim.margin:
        named = f"no true difference, margin {claim.margin:.0%} ({effect:.3g})"
    else:
        named = f"stated {claim.stated:.0%} of the {claim.worse[0]} mean ({effect:.3g})"
    return {
        **row,
        "test": f"paired t-test over {len(gaps)} seeds, one-sided p = {p_value:.3g}; power "
        f"vs {named} {power:.2f}; difference {diff:.3g}, 95 % bootstrap [{low:.3g}, {high:.3g}]"
        + (f"; opposite direction p = {reverse_p:.3g}" if reversed_ else ""),
        "verdict": verdict(len(gaps), p_value, power, reverse_p),
    }


def latent_size_row(needed: pd.DataFrame | None) -> dict:
    """The latent sizes VED and CCA need for one test error (``ved_study``, one seed)."""
    row = {
        "claim": "The VED needs fewer latent dimensions than CCA for the same accuracy",
        "section": "Abstract; Key results",
        "paper": "r = 50 (VED) vs r = 147 (CCA): 2.9x fewer",
    }
    reached = None if needed is None else needed.dropna(subset=["CCA", VED_CURVE])
    if reached is None or reached.empty:
        return {**row, "ours": "-", "budget": "-", "test": "-", "verdict": "not run yet"}
    hardest = reached.loc[reached["error_level"].idxmin()]
    cca, ved = int(hardest["CCA"]), int(hardest[VED_CURVE])
    return {
        **row,
        "ours": f"test relative RMSE {hardest['error_level']:g}: CCA r = {cca}, VED r = "
        f"{ved} ({cca / ved:.1f}x fewer)",
        "budget": "1 seed per r; 100 epochs (capped, not converged); 1000 train / 500 "
        "test, 33x33 KLE128; fully connected VED (ved_study)",
        "test": "none: one run per latent size; the equal-r row tests the mechanism",
        "verdict": UNDERPOWERED,
    }


ENCODER_DEPTH_ROW = {
    "claim": "Deeper encoders with shallower decoders perform better",
    "section": "Design trade-offs",
    "paper": "stated as a design finding (no numbers)",
    "ours": "-",
    "budget": "-",
    "test": "-",
    "verdict": "not run yet",
}


def ledger(runs: pd.DataFrame, needed: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every claim, tested on the training-size ``runs`` and ``ved_study``'s ``needed``.

    Examples
    --------
    >>> table = ledger(pd.DataFrame())
    >>> table["verdict"].unique().tolist()
    ['not run yet']
    """
    rows = [claim_row(runs, claim) for claim in CLAIMS]
    rows += [latent_size_row(needed), ENCODER_DEPTH_ROW]
    return pd.DataFrame(rows)


def by_size(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean ± standard deviation of each score per arm and training size."""
    columns = ["relative_error", "train_error", "cca_error", "covariance_deviation",
               "prior_std_error", "kl"]  # fmt: skip
    grouped = runs.groupby(["n_train", "arm"])
    means, spreads = grouped[columns].mean(), grouped[columns].std()
    table = means.map(lambda v: f"{v:.4g}") + " ± " + spreads.map(lambda v: f"{v:.2g}")
    table["seeds"] = grouped.size()
    epochs = grouped["epochs_run"]
    table["epochs"] = epochs.min().astype(str) + "-" + epochs.max().astype(str)
    table["at cap"] = grouped["capped"].sum().astype(int)
    return table


def gaps(runs: pd.DataFrame) -> pd.DataFrame:
    """Per size: test error of the KL arm minus the covariance arm, with a 95 % interval.

    The gap is taken per seed (same seed, same data); the interval is the expanded
    percentile bootstrap of its mean (:func:`climlatent.studies.darcy_claims.expanded_levels`).
    """
    out = []
    for n in _sizes(runs, {"kl", "covariance"}):
        pair = _side(runs, ("covariance", "relative_error"), n).join(
            _side(runs, ("kl", "relative_error"), n), how="inner"
        )
        gap = (pair.iloc[:, 1] - pair.iloc[:, 0]).to_numpy()
        mean, low, high = bootstrap_mean(gap)
        out.append({"n_train": n, "seeds": len(gap), "kl - covariance": mean,
                    "95 % low": low, "95 % high": high})  # fmt: skip
    return pd.DataFrame(out)


def main_budget(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of the budget (the settings :data:`BUDGET`) that has the most runs.

    Runs of other budgets (another learning rate, grid, cap...) are not pooled with it.

    Examples
    --------
    >>> runs = pd.DataFrame({name: [1, 1, 2] for name in BUDGET})
    >>> len(main_budget(runs))
    2
    """
    if runs.empty:
        return runs
    budgets = runs[list(BUDGET)].astype(str).agg("|".join, axis=1)
    return runs[budgets == budgets.value_counts().index[0]]


def write_ledger(study: Path) -> pd.DataFrame:
    """Write ``claims.md`` and ``claims.csv`` in ``study`` from its runs; the ledger."""
    source = study / "runs.partial.csv"
    every = pd.read_csv(source) if source.exists() else pd.DataFrame()
    runs = main_budget(every)
    needed_path = study / "needed.csv"
    needed = pd.read_csv(needed_path) if needed_path.exists() else None
    table = ledger(runs, needed)
    table.to_csv(study / "claims.csv", index=False)
    page = [
        "# Claims ledger: Venkatasubramanian & Barajas-Solano (2024), seed 003 (VED)",
        "",
        "Generated by `python -m climlatent.studies.ved_training_size --output "
        f"{study.as_posix()}` (data, arms and budget in its docstring); tests and verdicts "
        "as in `climlatent.studies.ved_claims` (alpha 0.05; power 80 % against the "
        "effect named in each row: the seed gives no numbers for its comparative "
        "claims). Test error: relative RMSE of the pressure over held-out samples "
        f"(1 = predicting the training mean). {len(runs)} runs of one budget"
        + (
            f" ({len(every) - len(runs)} runs of other budgets left out)."
            if len(every) > len(runs)
            else "."
        ),
        "",
        markdown_table(table),
        "",
    ]
    if len(runs):
        page += [
            "## Scores per training size and arm (mean ± sd over seeds)",
            "",
            "Arms: `kl` beta = 1, lambda = 0; `covariance` beta = 0, lambda = 1.",
            "",
            markdown_table(by_size(runs)),
            "",
            "## Test-error gap, KL arm minus covariance arm (per-seed pairs)",
            "",
            markdown_table(gaps(runs)),
            "",
        ]
    (study / "claims.md").write_text("\n".join(page))
    return table
