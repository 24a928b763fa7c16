"""Seed 003's claims ledger: verdicts on synthetic runs with known effects, and the driver's
resumable plan."""

import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from climlatent.studies import ved_claims as vc
from climlatent.studies import ved_training_size as vts
from climlatent.studies.run_ledger import RunLedger

SIZES = (125, 500, 2000)
SCORES = ("relative_error", "train_error", "cca_error", "covariance_deviation",
          "prior_std_error", "kl")  # fmt: skip


def _runs(seeds, effect=None, arms=("kl", "covariance"), noise=0.01, sizes=SIZES):
    """Runs of the plan: every score 0.4 + noise, plus ``effect(arm, n)[score]``."""
    rng = np.random.default_rng(0)
    rows = []
    for job in vts.plan(sizes, seeds, arms):
        shift = effect(job["arm"], job["n_train"]) if effect else {}
        scores = {s: 0.4 + shift.get(s, 0.0) + noise * rng.standard_normal() for s in SCORES}
        rows.append({**job, **scores, "epochs_run": 150, "best_epoch": 130, "capped": False})
    return pd.DataFrame(rows)


def _verdict(runs, index):
    return vc.claim_row(runs, vc.CLAIMS[index])


def _p_and_power(row):
    p_value, power = re.search(r"p = ([^;]+);.*\) ([\d.]+);", row["test"]).groups()
    return float(p_value), float(power)


def _covariance_wins_with_data(arm, n):
    """The KL arm is worse by 0.05 at n = 2000 and no worse at the smaller sizes."""
    return {"relative_error": 0.05 if (arm == "kl" and n == 2000) else 0.0}


def test_a_gap_that_grows_with_data_is_reproduced():
    runs = _runs(8, _covariance_wins_with_data)
    growth, largest = _verdict(runs, 0), _verdict(runs, 1)
    assert growth["verdict"] == "reproduced" and largest["verdict"] == "reproduced"
    assert "n = 2000" in growth["ours"] and "n = 125" in growth["ours"]
    assert "8/8 seeds" in growth["budget"] and "n_train 125/2000" in growth["budget"]
    uneven = vc.claim_row(runs.drop(index=0), vc.CLAIMS[0])  # seed 0 loses its n=125 kl run
    assert "8/7 seeds" in uneven["budget"]
    # a constant gap is there at the largest size but does not grow
    constant = _runs(8, lambda arm, n: {"relative_error": 0.05 * (arm == "kl")})
    assert _verdict(constant, 1)["verdict"] == "reproduced"
    assert _verdict(constant, 0)["verdict"] == "not reproduced"  # power vs 5 % (0.02): ~1


def test_no_effect_is_not_reproduced_when_powered_and_inconclusive_when_not():
    powered = _verdict(_runs(8), 1)
    assert powered["verdict"] == "not reproduced"
    assert _p_and_power(powered)[1] >= 0.8
    noisy = _verdict(_runs(3, noise=0.2), 1)
    assert noisy["verdict"] == "inconclusive (underpowered)"
    one_seed = _verdict(_runs(1), 1)
    assert one_seed["verdict"] == "inconclusive (underpowered)"
    assert "2 seeds" in one_seed["test"]


def test_a_reversed_effect_is_not_reproduced_whatever_the_power():
    runs = _runs(8, lambda arm, n: {"covariance_deviation": 0.2 * (arm == "covariance")})
    row = _verdict(runs, 2)
    assert row["verdict"] == "not reproduced (reversed)" and _p_and_power(row)[0] > 0.9
    assert "opposite direction p = " in row["test"]
    # a clear reversal with a spread that leaves little power against the stated effect
    noisy = _runs(4, lambda arm, n: {"prior_std_error": 0.3 * (arm == "covariance")}, noise=0.1)
    row = _verdict(noisy, 3)
    assert _p_and_power(row)[1] < 0.8 and row["verdict"] == "not reproduced (reversed)"
    # a small reversal within the noise stays inconclusive or powered-not-reproduced
    faint = _runs(3, lambda arm, n: {"prior_std_error": 0.01 * (arm == "covariance")}, noise=0.1)
    assert _verdict(faint, 3)["verdict"] == "inconclusive (underpowered)"


def test_cca_comparison_uses_the_cca_column_of_the_same_runs():
    runs = _runs(8, lambda arm, n: {"cca_error": 0.1})
    row = _verdict(runs, 4)
    assert row["verdict"] == "reproduced" and "relative_error: kl arm 0.4" in row["ours"]
    assert "CCA (rank r, kl runs' data) 0.5" in row["ours"]


def test_non_inferiority_needs_its_arms_and_uses_its_margin():
    assert _verdict(_runs(4), 5)["verdict"] == "not run yet"  # no 'both'/'none' arm
    # equal errors: inside a 5 % margin (0.02) with spread 0.002 -> reproduced
    arms = ("both", "none")
    assert _verdict(_runs(8, arms=arms, noise=0.002), 5)["verdict"] == "reproduced"
    # regularisation costs 10 % of the accuracy: outside the margin
    costly = _runs(8, lambda arm, n: {"relative_error": 0.04 * (arm == "both")}, arms=arms)
    assert _verdict(costly, 5)["verdict"] == "not reproduced (reversed)"  # beyond the margin


def test_latent_size_row_reads_the_hardest_level_both_reach():
    needed = pd.DataFrame({"error_level": [0.5, 0.4, 0.38, 0.36], "CCA": [6, 16, 48, None],
                           vc.VED_CURVE: [4, 6, 12, 20]})  # fmt: skip
    row = vc.latent_size_row(needed)
    assert "CCA r = 48, VED r = 12 (4.0x fewer)" in row["ours"]
    assert row["verdict"] == "inconclusive (underpowered)"
    assert vc.latent_size_row(None)["verdict"] == "not run yet"


def test_ledger_files_and_tables(tmp_path):
    runs = _runs(3, _covariance_wins_with_data)
    ledger = RunLedger(tmp_path / "runs.partial.csv", vts.KEY)
    for row in runs.to_dict("records"):
        ledger.append(row)
    table = vc.write_ledger(tmp_path)
    assert len(table) == len(vc.CLAIMS) + 2
    assert set(table.columns) == {"claim", "section", "paper", "ours", "budget", "test",
                                  "verdict"}  # fmt: skip
    page = (tmp_path / "claims.md").read_text()
    assert page.startswith("# Claims ledger") and "## Test-error gap" in page
    gaps = vc.gaps(runs).set_index("n_train")
    assert gaps.loc[2000, "kl - covariance"] == pytest.approx(0.05, abs=0.02)
    assert gaps.loc[2000, "95 % low"] > 0 > gaps.loc[125, "95 % low"]
    assert vc.by_size(runs).loc[(2000, "kl"), "seeds"] == 3
    other = runs.iloc[:5].assign(lr=1e-4, relative_error=9.0)  # another budget: not pooled
    for row in other.to_dict("records"):
        ledger.append(row)
    assert vc.write_ledger(tmp_path).equals(table)
    assert "5 runs of other budgets left out" in (tmp_path / "claims.md").read_text()
    (tmp_path / "nothing").mkdir()
    empty = vc.write_ledger(tmp_path / "nothing")
    assert set(empty["verdict"]) == {"not run yet"}


def test_driver_plan_resumes_one_row_per_run(tmp_path):
    todo = vts.plan([100, 200], seeds=2, max_epochs=50)
    assert [(j["seed"], j["n_train"], j["arm"]) for j in todo[:4]] == [
        (0, 100, "kl"), (0, 100, "covariance"), (0, 200, "kl"), (0, 200, "covariance")]  # fmt: skip
    assert all(j["pool"] == 200 and j["max_epochs"] == 50 for j in todo)
    ledger = RunLedger(tmp_path / "runs.partial.csv", vts.KEY)
    for job in todo[:3]:
        ledger.append({**job, "seconds": 10.0})
    reread = RunLedger(tmp_path / "runs.partial.csv", vts.KEY)
    assert reread.missing(todo) == todo[3:]
    status = vts.status(reread, todo)
    assert status["done"].tolist() == [1, 1, 1, 0] and status["planned"].tolist() == [2] * 4
    assert status["mean_seconds"].tolist()[:3] == [10.0] * 3
    # another budget is another run
    assert len(reread.missing(vts.plan([100, 200], seeds=2, max_epochs=60))) == 8


def test_driver_runs_and_resumes_end_to_end(tmp_path, capsys):
    args = ["--sizes", "30", "40", "--seeds", "1", "--max-epochs", "2", "--patience", "1",
            "--n-grid", "9", "--kle-terms", "4", "--latent-dim", "2", "--n-test", "20",
            "--output", str(tmp_path)]  # fmt: skip
    vts.main([*args, "--max-runs", "3"])
    assert len(pd.read_csv(tmp_path / "runs.partial.csv")) == 3
    vts.main(args)
    runs = pd.read_csv(tmp_path / "runs.partial.csv")
    assert len(runs) == 4 and set(runs["epochs_run"]) == {2}
    capsys.readouterr()
    vts.main([*args, "--status"])
    shown = capsys.readouterr().out
    assert "4 of 4 runs done" in shown
    claims = pd.read_csv(tmp_path / "claims.csv")
    assert claims.loc[0, "verdict"] == "inconclusive (underpowered)"  # one seed


def test_a_seeds_runs_are_compared_as_pairs():
    """Both arms of a seed train on its pool: a seed-level shift common to both arms
    (sd 0.05) hides a 0.02 gap from Welch's unpaired test, not from the paired t-test
    over seeds (scipy's ttest_rel), whose p-value the row gives."""
    runs = _runs(8, lambda arm, n: {"relative_error": 0.02 * (arm == "kl")}, noise=0.002)
    shift = np.random.default_rng(3).normal(0.0, 0.05, 8)
    runs["relative_error"] += shift[runs["seed"]]
    row = _verdict(runs, 1)
    pair = vc._side(runs, ("covariance", "relative_error"), 2000).join(
        vc._side(runs, ("kl", "relative_error"), 2000)
    )
    kl, covariance = pair.iloc[:, 1], pair.iloc[:, 0]
    paired = stats.ttest_rel(kl, covariance, alternative="greater").pvalue
    assert stats.ttest_ind(kl, covariance, equal_var=False, alternative="greater").pvalue > 0.2
    assert row["test"].startswith(f"paired t-test over 8 seeds, one-sided p = {paired:.3g};")
    assert row["verdict"] == "reproduced"
    # the growth claim pairs the seeds' gaps across the sizes too
    growth = _verdict(_runs(8, _covariance_wins_with_data), 0)
    assert growth["verdict"] == "reproduced" and "over 8 seeds" in growth["test"]


def test_runs_without_spread_give_no_verdict():
    """Identical errors in every run: the t statistic is 0/0, not a powered null."""
    flat = _runs(8, noise=0.0)
    assert _verdict(flat, 1)["verdict"] == "inconclusive (no spread)"
