"""The Darcy study's runs: checkpointed, resumed under a larger cap, carried over."""

import re
from pathlib import Path

import pandas as pd
import pytest

from climlatent.checkpoint import load_checkpoint
from climlatent.errors import CheckpointError
from climlatent.reference.darcy import generate
from climlatent.studies import darcy_study
from climlatent.studies.run_ledger import RunLedger

JOB = {"study": "prior", "distribution": "mixture", "prior": "hierarchical", "labelled": 0,
       "seed": 1, "supervision_weight": 1.0, "patience": 50}  # fmt: skip
SCORES = ["epochs_run", "best_epoch", "reconstruction_error", "regularisation", "S_D", "S_KL"]


@pytest.fixture
def small_study(monkeypatch):
    """The study on 48 + 16 samples, a 1-epoch warm-up, a 2-epoch ramp, lr 3e-2, on the
    CPU (where a resumed run is bitwise the run done straight)."""
    options = darcy_study._options
    small = {"lr": 3e-2, "device": "cpu"}
    monkeypatch.setattr(darcy_study, "_options", lambda *a: {**options(*a), **small})
    monkeypatch.setattr(darcy_study, "WARMUP", 1)
    monkeypatch.setattr(darcy_study, "RAMP", 2)
    monkeypatch.setattr(darcy_study, "N_TRAIN", 48)
    monkeypatch.setattr(darcy_study, "N_VALID", 16)
    data = {"mixture": tuple(generate(n, kle_terms=2, theta="mixture", seed=s)
                             for n, s in ((64, 0), (32, 1), (8, 2)))}  # fmt: skip
    monkeypatch.setattr(darcy_study, "_DATA", data)


def test_a_run_at_the_cap_goes_on_under_a_larger_cap_as_if_run_straight(small_study, tmp_path):
    straight = darcy_study.run_case({**JOB, "max_epochs": 7})
    first = darcy_study.run_case({**JOB, "max_epochs": 4}, checkpoints=tmp_path)
    kept = tmp_path / darcy_study.checkpoint_file(JOB)
    assert first["epochs_run"] == 4 and kept.exists()  # at the cap: kept to go on
    resumed = darcy_study.run_case({**JOB, "max_epochs": 7}, checkpoints=tmp_path)
    assert {k: resumed[k] for k in SCORES} == {k: straight[k] for k in SCORES}
    assert straight["epochs_run"] == 7 and kept.exists()


def test_a_converged_run_leaves_no_checkpoint(small_study, tmp_path):
    row = darcy_study.run_case({**JOB, "patience": 1, "max_epochs": 300}, checkpoints=tmp_path)
    assert row["epochs_run"] < 300  # early stopping ended it
    assert list(tmp_path.iterdir()) == []


def test_the_checkpoint_of_another_run_is_refused(small_study, tmp_path):
    darcy_study.run_case({**JOB, "seed": 2, "max_epochs": 4}, checkpoints=tmp_path)
    theirs = tmp_path / darcy_study.checkpoint_file({**JOB, "seed": 2})
    theirs.rename(tmp_path / darcy_study.checkpoint_file(JOB))  # read on resume, so refused
    with pytest.raises(CheckpointError, match="seed: 2 -> 1"):
        darcy_study.run_case({**JOB, "max_epochs": 7}, checkpoints=tmp_path)


def test_two_machines_halves_merge_into_the_committed_ledger(tmp_path):
    """Known answer: the committed runs split in two overlapping halves (two machines'
    ledgers), merged, give the committed rows and regenerate the committed claims."""
    committed = Path(__file__).resolve().parents[1] / "docs" / "studies" / "darcy"
    runs = pd.read_csv(committed / "runs.partial.csv")
    here, there = tmp_path / "here", tmp_path / "there"
    for folder, rows in ((here, runs.iloc[:40]), (there, runs.iloc[30:])):
        folder.mkdir()
        rows.to_csv(folder / "runs.partial.csv", index=False)
    darcy_study.main(["--output", str(here), "--merge", str(there / "runs.partial.csv")])
    merged = pd.read_csv(here / "runs.partial.csv")
    pd.testing.assert_frame_equal(merged, runs)
    for name in ("claims.md", "claims.csv"):
        assert (here / name).read_text() == (committed / name).read_text()


def test_a_cap_within_the_warm_up_and_ramp_is_refused_before_any_run(tmp_path, capsys):
    """The best epoch is chosen after the ramp: a smaller cap has none (it failed after
    training, on an empty argmin)."""
    with pytest.raises(SystemExit):
        darcy_study.main(["--max-epochs", "30", "--output", str(tmp_path / "out")])
    assert "--max-epochs 30: a run needs more than the 30 epochs" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_readme_counts_the_committed_runs():
    """The README quotes the ledger: its Darcy "N of M runs are done" is the committed
    runs.partial.csv counted against the study's default plan (it once lagged a row)."""
    root = Path(__file__).resolve().parents[1]
    ledger = RunLedger(root / "docs" / "studies" / "darcy" / "runs.partial.csv", darcy_study.KEY)
    plan = [
        {
            **job,
            "max_epochs": darcy_study.BUDGET["max_epochs"],
            "patience": darcy_study.BUDGET["patience"],
        }
        for job in darcy_study.jobs(
            darcy_study.SEEDS,
            darcy_study.MIXTURE_SEEDS,
            darcy_study.SUPERVISION_WEIGHTS,
            darcy_study.LABEL_FRACTIONS,
        )
    ]
    status = ledger.status(plan, darcy_study.CASE)
    quoted = re.findall(r"(\d+) of (\d+) runs are done", (root / "README.md").read_text())
    assert quoted == [(str(status["done"].sum()), str(status["planned"].sum()))]


def test_status_reports_the_runs_in_flight_from_their_checkpoints(small_study, tmp_path):
    darcy_study.run_case({**JOB, "max_epochs": 4}, checkpoints=tmp_path)  # at the cap: kept
    broken = {**JOB, "seed": 2}
    (tmp_path / darcy_study.checkpoint_file(broken)).write_bytes(b"cut short")
    table = darcy_study.in_flight([JOB, broken, {**JOB, "seed": 3}], tmp_path)
    assert table["seed"].tolist() == [1, 2]  # seed 3 has no checkpoint
    run = table.iloc[0]
    assert run["epochs"] == 4 and run["lr_drops"] == 0
    losses = load_checkpoint(tmp_path / darcy_study.checkpoint_file(JOB))["history"]["valid_loss"]
    assert run["best_valid_loss"] == losses[int(run["best_epoch"])]  # the epoch's own loss
    assert "cannot read checkpoint" in table.iloc[1]["error"]
