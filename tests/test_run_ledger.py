"""A study's ledger: runs done on several machines come together, none lost."""

import threading

import pandas as pd
import pytest

from climlatent.studies.run_ledger import RunLedger, _locked

KEY = ["case", "seed"]


def test_a_merge_adds_the_runs_this_ledger_lacks_and_keeps_its_own(tmp_path):
    here, there = RunLedger(tmp_path / "here.csv", KEY), RunLedger(tmp_path / "there.csv", KEY)
    here.append({"case": "a", "seed": 0, "S_D": 0.5})
    there.append({"case": "a", "seed": 0, "S_D": 0.9})  # the same run, done twice
    there.append({"case": "a", "seed": 1, "S_D": 0.6, "device": "cuda"})
    there.append({"case": "b", "seed": 0, "S_D": 0.7, "device": "cuda"})
    assert here.merge(there.path) == 2
    assert here.merge(there.path) == 0  # twice: nothing more
    table = pd.read_csv(here.path)
    assert table[KEY].values.tolist() == [["a", 0], ["a", 1], ["b", 0]]
    assert table["S_D"].tolist() == [0.5, 0.6, 0.7]
    assert table["device"].isna().tolist() == [True, False, False]


def test_a_run_appended_later_keeps_the_rows_merged_meanwhile(tmp_path):
    """A study running while another machine's rows are merged into its file."""
    running = RunLedger(tmp_path / "runs.csv", KEY)
    running.append({"case": "a", "seed": 0, "S_D": 0.5})
    other = RunLedger(tmp_path / "other.csv", KEY)
    other.append({"case": "b", "seed": 0, "S_D": 0.7})
    RunLedger(tmp_path / "runs.csv", KEY).merge(other.path)  # another process
    running.append({"case": "a", "seed": 1, "S_D": 0.6})
    rows = RunLedger(tmp_path / "runs.csv", KEY).rows
    assert [(row["case"], row["seed"]) for row in rows] == [("a", 0), ("b", 0), ("a", 1)]


def test_a_run_waits_for_a_merge_in_progress_and_keeps_its_rows(tmp_path):
    """The read-and-rewrite of a run's row waits while another process holds the folder."""
    running = RunLedger(tmp_path / "runs.csv", KEY)
    running.append({"case": "a", "seed": 0, "S_D": 0.5})
    appending = threading.Thread(target=running.append, args=({"case": "a", "seed": 1},))
    with _locked(tmp_path):  # a merge from another process, between its read and write
        rows = RunLedger(tmp_path / "runs.csv", KEY).rows
        appending.start()
        appending.join(timeout=0.5)
        assert appending.is_alive()  # the run's row waits for the lock
        merged = [*rows, {"case": "b", "seed": 0, "S_D": 0.7}]
        pd.DataFrame(merged).to_csv(tmp_path / "runs.csv", index=False)
    appending.join(timeout=10)
    table = pd.read_csv(tmp_path / "runs.csv")
    assert table[KEY].values.tolist() == [["a", 0], ["b", 0], ["a", 1]]


def test_a_missing_or_foreign_ledger_is_refused_by_name(tmp_path):
    here = RunLedger(tmp_path / "here.csv", KEY)
    with pytest.raises(FileNotFoundError, match="no study ledger at .*missing.csv"):
        here.merge(tmp_path / "missing.csv")
    pd.DataFrame([{"model": "x", "seed": 0}]).to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(ValueError, match="other.csv' is another study's ledger: no case"):
        here.merge(tmp_path / "other.csv")
    assert not here.path.exists()


def test_an_interrupted_append_counts_no_run_the_file_lacks(tmp_path, monkeypatch):
    """Ctrl-C while the file was rewritten: the file kept its one run, but the ledger
    held two, and the study's next pass skipped the run it had not recorded."""
    ledger = RunLedger(tmp_path / "runs.csv", KEY)
    ledger.append({"case": "a", "seed": 0, "S_D": 0.5})
    plan = [{"case": "a", "seed": 0}, {"case": "a", "seed": 1}]

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", interrupt)
    with pytest.raises(KeyboardInterrupt):
        ledger.append({"case": "a", "seed": 1, "S_D": 0.6})
    monkeypatch.undo()
    assert pd.read_csv(ledger.path)["seed"].tolist() == [0]
    assert ledger.missing(plan) == [{"case": "a", "seed": 1}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.csv"]
