"""A study's runs come back as each ends, so that its row is recorded at once."""

import time

from climlatent.studies.workers import study_runs


def _nap(job):
    time.sleep(job["seconds"])
    return {**job, "ended": time.monotonic()}


def test_a_run_that_ends_first_is_yielded_first_whatever_its_place():
    jobs = [{"name": "slow", "seconds": 2.0}, {"name": "quick", "seconds": 0.0}]
    started = time.monotonic()
    runs = study_runs(_nap, jobs, n_workers=2)
    first, elapsed = next(runs), time.monotonic() - started
    assert first["name"] == "quick" and elapsed < 1.5  # not held back behind the slow one
    assert [row["name"] for row in runs] == ["slow"]


def test_ordered_runs_come_back_in_the_jobs_order():
    jobs = [{"name": "slow", "seconds": 0.5}, {"name": "quick", "seconds": 0.0}]
    rows = study_runs(_nap, jobs, n_workers=2, ordered=True)
    assert [row["name"] for row in rows] == ["slow", "quick"]


def test_one_worker_runs_the_jobs_here_in_order():
    rows = list(study_runs(_nap, [{"seconds": 0.0, "n": n} for n in range(3)], n_workers=1))
    assert [row["n"] for row in rows] == [0, 1, 2]
