import numpy as np
import pandas as pd
import pytest
from scipy import stats

from climlatent.studies import darcy_claims as dc


@pytest.mark.parametrize(("p1", "n1", "p0", "n0"), [(0.5, 16, 0.0, 16), (0.5, 8, 0.1, 8)])
def test_fisher_power_matches_a_simulation(p1, n1, p0, n0):
    rng = np.random.default_rng(0)
    k1, k0 = rng.binomial(n1, p1, 4000), rng.binomial(n0, p0, 4000)
    simulated = np.mean([
        stats.fisher_exact([[a, n1 - a], [b, n0 - b]], alternative="greater").pvalue < 0.05
        for a, b in zip(k1, k0, strict=True)
    ])  # fmt: skip
    exact = dc.fisher_power(p1, n1, p0, n0)
    assert abs(exact - simulated) < 4 * np.sqrt(exact * (1 - exact) / 4000) + 1e-3


def _runs(hp_sd, vae_sd, epochs_run=120, best_epoch=105):
    rows = [
        {"study": "prior", "distribution": "mixture", "prior": prior, "labelled": 0,
         "supervision_weight": 1.0, "S_D": sd, "regularisation": 8.0,
         "reconstruction_error": 1e-3, "epochs_run": epochs_run, "max_epochs": 300,
         "best_epoch": best_epoch, "patience": 10}
        for prior, values in (("hierarchical", hp_sd), ("standard", vae_sd)) for sd in values
    ]  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("hp", "vae", "expected"),
    [
        ([0.95] * 8 + [0.7] * 8, [0.7] * 16, "reproduced"),  # the paper's half vs none
        ([0.7] * 16, [0.7] * 16, "not reproduced"),  # power 0.96 against half vs none
        # short of the 16 runs per arm the study plans on the mixture: said so
        ([0.7] * 3, [0.7] * 3, "inconclusive (underpowered) (interim: runs 3 and 3 of 16 and 16)"),
        ([0.7] * 10, [0.7] * 11, "not reproduced (interim: runs 10 and 11 of 16 and 16)"),
    ],
)
def test_share_verdicts(hp, vae, expected):
    row = dc.share_row(_runs(hp, vae), dc.CLAIMS[0])
    assert row["verdict"] == expected
    assert row["ours"] == f"{sum(v >= 0.9 for v in hp)}/{len(hp)} vs 0/{len(vae)}"


def test_bootstrap_interval_covers_a_known_difference():
    rng = np.random.default_rng(1)
    a, b = rng.normal(1.0, 1.0, 400), rng.normal(0.0, 1.0, 400)
    diff, low, high = dc.bootstrap_difference(a, b)
    half_width = 1.96 * np.sqrt(a.var() / 400 + b.var() / 400)
    assert low == pytest.approx(diff - half_width, abs=0.03)
    assert high == pytest.approx(diff + half_width, abs=0.03)


def test_runs_still_improving_at_the_cap_give_no_verdict():
    """The paper's effect, but every run stopped at the cap with its loss still falling."""
    runs = _runs([0.95] * 8 + [0.7] * 8, [0.7] * 16, epochs_run=300, best_epoch=299)
    for row in (dc.share_row(runs, dc.CLAIMS[0]), dc.reconstruction_row(runs)):
        assert row["verdict"] == "inconclusive (32 of 32 runs still improving at the epoch cap)"
    plateaued = _runs([0.95] * 8 + [0.7] * 8, [0.7] * 16, epochs_run=300, best_epoch=280)
    assert dc.share_row(plateaued, dc.CLAIMS[0])["verdict"] == "reproduced"


def test_label_claims_are_the_acceptance_shares():
    labelled = [c.case["labelled"] for c in dc.CLAIMS if c.case.get("study") == "labels"]
    assert labelled == [round(f * 512) for f in (0.01, 0.03, 0.08)]


def test_ledger_tests_only_the_runs_of_its_budget(tmp_path):
    """Runs at a 300-epoch cap, still improving, are left out of a 2000-epoch ledger."""
    old = _runs([0.7] * 16, [0.7] * 16, epochs_run=300, best_epoch=299)
    new = _runs([0.95] * 8 + [0.7] * 8, [0.7] * 16, epochs_run=1600, best_epoch=1580)
    new["max_epochs"] = 2000
    pd.concat([old, new]).to_csv(tmp_path / "runs.partial.csv", index=False)
    table = dc.write_ledger(tmp_path, {"max_epochs": 2000, "patience": 10})
    assert table.loc[0, "verdict"] == "reproduced" and table.loc[0, "ours"] == "8/16 vs 0/16"
    assert "32 runs of other budgets left out" in (tmp_path / "claims.md").read_text()


def test_between_test_and_its_power_by_hand():
    """Binomial tails of 8 runs by hand: P(X >= 3 | 0.1) = 1 - P(X = 0, 1 or 2 | 0.1)."""
    tail = 1 - (0.9**8 + 8 * 0.1 * 0.9**7 + 28 * 0.01 * 0.9**6)
    assert dc.between_test(3, 8) == pytest.approx(tail) and tail < 0.05
    assert dc.between_test(5, 8) == pytest.approx(tail)  # the mirror image: X <= 5 at 0.9
    assert dc.between_test(2, 8) > 0.05 and dc.between_test(6, 8) > 0.05
    # 3, 4 or 5 of 8 reject at a true share of one half: (56 + 70 + 56) / 256
    assert dc.between_power(0.5, 8) == pytest.approx(182 / 256)


@pytest.mark.parametrize(
    ("sd", "expected"),
    [
        ([0.95] * 4 + [0.7] * 4, "reproduced"),
        ([0.7] * 8, "inconclusive (underpowered)"),  # power 0.71 against a half at 8 runs
        ([0.95] * 2 + [0.7], "inconclusive (underpowered) (interim: runs 3 of 8)"),
        ([], "not run yet"),
    ],
)
def test_the_standard_case_claim(sd, expected):
    runs = _runs([], sd).assign(distribution="standard")
    row = dc.inconsistency_row(pd.concat([runs, _runs([0.95], [0.95])]))  # mixture ignored
    assert row["verdict"] == expected
    if sd:
        assert row["ours"].startswith(f"{sum(v >= 0.9 for v in sd)}/{len(sd)} disentangled")


def test_runs_on_the_same_seeds_are_compared_as_pairs():
    """A seed's two runs share data, split and initial weights: McNemar's test on the
    seeds whose outcomes differ, not Fisher's on independent shares."""
    hp, vae = [0.95] * 5 + [0.7] * 11, [0.7] * 16
    runs = _runs(hp, vae).assign(seed=list(range(16)) * 2)
    row = dc.share_row(runs, dc.CLAIMS[0])
    assert row["test"].startswith("McNemar exact one-sided p = 0.0312 (seeds for/against 5/0)")
    assert row["verdict"] == "reproduced"  # Fisher: p = 0.0217 on 5/16 vs 0/16 as well
    unpaired = dc.share_row(_runs(hp, vae).assign(seed=range(32)), dc.CLAIMS[0])
    assert unpaired["test"].startswith("Fisher one-sided p = 0.0217")


def test_mcnemar_power_matches_a_simulation():
    rng = np.random.default_rng(1)
    x, y = rng.random((4000, 16)) < 0.5, rng.random((4000, 16)) < 0.1
    gained, lost = (x & ~y).sum(1), (~x & y).sum(1)
    simulated = np.mean([dc.mcnemar_p(g, b) < 0.05 for g, b in zip(gained, lost, strict=True)])
    exact = dc.mcnemar_power(0.5, 0.1, 16)
    assert abs(exact - simulated) < 4 * np.sqrt(exact * (1 - exact) / 4000) + 1e-3


def test_reconstruction_pairs_the_seeds_and_ties_are_inconclusive():
    """A seed's two priors share data, split and initial weights: a seed-level error
    (sd 1e-4) common to both hides HP's 2e-6 gain from an unpaired bootstrap, not from
    the bootstrap of the per-seed differences, which matches the t interval of the
    paired differences (scipy) to bootstrap error. Equal errors tie: no 'HP worse'."""
    rng = np.random.default_rng(2)
    level, noise = rng.normal(1e-3, 1e-4, 16), rng.normal(0, 1e-6, 32)
    runs = _runs([0.7] * 16, [0.7] * 16, epochs_run=1600, best_epoch=1500)
    runs = runs.assign(seed=list(range(16)) * 2, max_epochs=3000)
    runs["reconstruction_error"] = np.tile(level, 2) + noise - np.repeat([2e-6, 0.0], 16)
    row = dc.reconstruction_row(runs)
    assert row["verdict"] == "reproduced" and "(16 seed pairs)" in row["test"]
    gaps = runs.reconstruction_error.to_numpy()[16:] - runs.reconstruction_error.to_numpy()[:16]
    low, high = stats.t.interval(0.95, 15, gaps.mean(), stats.sem(gaps))
    shown = [float(x) for x in row["test"].split("[")[1].rstrip("]").split(", ")]
    assert shown == pytest.approx([low, high], abs=0.15 * (high - low))
    unpaired = dc.reconstruction_row(runs.assign(seed=range(32)))
    assert unpaired["verdict"] == "inconclusive (interval includes 0)"
    tied = dc.reconstruction_row(runs.assign(reconstruction_error=1e-3))
    assert tied["verdict"] == "inconclusive (interval includes 0)"


def test_bootstrap_interval_has_its_nominal_coverage_from_eight_runs():
    """8 normal values: the plain percentile interval covered the mean 88 % of the time
    (its 'reproduced' side rejected a true null 6 % > alpha); the expanded one ~95 %."""
    rng = np.random.default_rng(3)
    samples = rng.normal(0.0, 1.0, (1000, 8))
    intervals = [dc.bootstrap_mean(x, n_boot=2000, seed=i)[1:] for i, x in enumerate(samples)]
    covered = [low <= 0 <= high for low, high in intervals]
    assert 0.93 <= np.mean(covered) <= 0.965
    widened = np.sqrt(8 / 7) * stats.t.ppf(0.975, 7)  # Hesterberg (2015)
    assert dc.expanded_levels(samples[0]) == pytest.approx(stats.norm.cdf([-widened, widened]))


def test_bootstrap_and_ledger_do_not_depend_on_the_order_of_the_rows():
    rng = np.random.default_rng(4)
    a, b = rng.normal(0.0, 1.0, 16), rng.normal(0.5, 1.0, 12)
    order = rng.permutation(16)
    # the same resamples: equal bounds, means to summation order
    assert dc.bootstrap_mean(a[order]) == pytest.approx(dc.bootstrap_mean(a), rel=1e-12)
    shuffled = dc.bootstrap_difference(a[order], b[::-1])
    assert shuffled == pytest.approx(dc.bootstrap_difference(a, b), rel=1e-12)
    runs = _runs([0.7] * 16, [0.7] * 16, epochs_run=1600, best_epoch=1500)
    runs = runs.assign(seed=list(range(16)) * 2, max_epochs=3000)
    runs["reconstruction_error"] = rng.normal(1e-3, 1e-5, 32)
    shuffled = runs.sample(frac=1, random_state=0)
    assert dc.reconstruction_row(shuffled) == dc.reconstruction_row(runs)


def test_a_run_without_a_reconstruction_error_gives_no_verdict():
    """A failed run's NaN error made the interval [nan, nan]: 'not reproduced (HP worse)'."""
    runs = _runs([0.7] * 16, [0.7] * 16, epochs_run=1600, best_epoch=1500)
    runs = runs.assign(seed=list(range(16)) * 2, max_epochs=3000)
    runs["reconstruction_error"] = np.r_[np.full(16, 9e-4), np.nan, np.full(15, 1e-3)]
    row = dc.reconstruction_row(runs)
    assert row["verdict"] == "inconclusive (1 runs without an error)"


def test_a_claim_without_runs_in_an_arm_shows_no_test():
    """It printed 'Fisher one-sided p = 1; power vs paper 0.00' for a test never run."""
    runs = _runs([0.7] * 3, [0.7] * 3)
    shifted = runs.assign(distribution=["shifted"] * 3 + ["mixture"] * 3)
    row = dc.share_row(shifted, dc.CLAIMS[2])
    assert (row["ours"], row["test"], row["verdict"]) == ("0/3 vs 0/0", "-", "not run yet")
