"""Seed 002's claims ledger on runs with known effects; its tests against scipy/simulation."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from climlatent.studies.guided_latent_claims import (
    aux_vae_rows,
    coverage_test,
    deep_prior_rows,
    dl_cfm_rows,
    mean_above,
    write_ledger,
)


def _runs(n: int, lsd_gain: float, rng: np.random.Generator) -> pd.DataFrame:
    lsd_vae = 0.15 + 0.01 * rng.standard_normal(n)
    return pd.DataFrame({
        "seed": range(n), "n_years": 3, "vae_epochs": 200, "flow_epochs": 200,
        "psl_noise": 400.0, "vae_epochs_run": 60,
        "lsd_vae": lsd_vae, "lsd_cfm": lsd_vae - lsd_gain + 0.005 * rng.standard_normal(n),
        "variance_ratio_vae": 0.85 + 0.02 * rng.standard_normal(n),
        "variance_ratio_cfm": 0.95 + 0.02 * rng.standard_normal(n),
        "guided_r_vae": 0.99 + 0.001 * rng.standard_normal(n),
        "guided_r_cfm": 0.99 + 0.001 * rng.standard_normal(n),
        "aligned_r": 0.97 + 0.01 * rng.standard_normal(n),
        "crossed_r": 0.1 + 0.01 * rng.standard_normal(n),
    })  # fmt: skip


def test_dl_cfm_verdicts_follow_the_effects():
    rng = np.random.default_rng(0)
    better = dl_cfm_rows(_runs(8, 0.05, rng))
    assert [r["verdict"] for r in better] == ["reproduced"] * 3
    same = dl_cfm_rows(_runs(8, 0.0, rng))
    assert same[0]["verdict"] == "not reproduced"  # a 20 % gain (0.03) would show


def test_mean_above_is_scipys_one_sample_t_test():
    values = np.random.default_rng(1).normal(0.93, 0.02, 6)
    p, _ = mean_above(values, 0.9, 0.05)
    assert p == pytest.approx(stats.ttest_1samp(values, 0.9, alternative="greater").pvalue)


def test_coverage_power_matches_simulation():
    rng = np.random.default_rng(2)
    _, power = coverage_test(np.ones(40, bool), 0.9, 0.15)
    draws = rng.binomial(40, 0.75, 4000)
    rejected = [stats.binomtest(int(k), 40, 0.9).pvalue < 0.05 for k in range(41)]
    assert power == pytest.approx(np.mean([rejected[k] for k in draws]), abs=0.03)


def test_deep_prior_verdicts():
    def coverage(k, n=40, r_hat=1.005, k2=None):
        """``n`` cases of two parameters; the first ``k`` (``k2``) cases covered."""
        covered = {"theta[1]": np.arange(n) < k, "theta[2]": np.arange(n) < (k2 or k)}
        return pd.DataFrame([
            {"case": case, "parameter": name, "covered": hits[case], "r_hat_max": r_hat,
             "ess_min": 300.0} for case in range(n) for name, hits in covered.items()
        ])  # fmt: skip

    assert deep_prior_rows(coverage(54, n=60))[0]["verdict"] == "reproduced"
    # 40 cases: power 0.70 against 75 % coverage at the Bonferroni level 0.025
    assert deep_prior_rows(coverage(36))[0]["verdict"] == "inconclusive (underpowered)"
    assert deep_prior_rows(coverage(25))[0]["verdict"] == "not reproduced"
    assert deep_prior_rows(coverage(36, r_hat=1.2))[0]["verdict"].startswith("inconclusive")
    # 104 of 120 pooled (binomial p = 0.22) hides a parameter covered 46 of 60 times
    skewed = deep_prior_rows(coverage(46, n=60, k2=58))[0]
    assert stats.binomtest(104, 120, 0.9).pvalue > 0.2
    assert skewed["verdict"] == "not reproduced" and "theta[1] 46 of 60" in skewed["ours"]


def test_ledger_files(tmp_path):
    study = tmp_path / "guided_latents"
    study.mkdir()
    _runs(4, 0.05, np.random.default_rng(3)).to_csv(study / "runs.partial.csv", index=False)
    ledger = write_ledger(study)
    assert len(ledger) == 5 and ledger.verdict.iloc[-1] == "not run yet"
    lines = (study / "claims.md").read_text().splitlines()
    table = [line for line in lines if line.startswith("| ")]
    assert {line.replace("\\|", "").count("|") for line in table} == {8}  # 7 columns


def test_values_without_spread_give_no_verdict():
    """Eight identical correlations: the t statistic is x/0 (or round-off: three 0.95
    have an sd of 1e-17), not evidence above 0.9 with power 1."""
    runs = _runs(8, 0.05, np.random.default_rng(0)).assign(aligned_r=0.95)
    row = aux_vae_rows(runs)[0]
    assert row["verdict"] == "inconclusive (no spread)"
    assert np.isnan(mean_above(np.array([0.95] * 3), 0.9, 0.05)).all()
