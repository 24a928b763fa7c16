"""The worker processes of a study: forked from the study's process, or that process alone."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed

import torch

from climlatent.errors import ClimlatentError


def study_runs(
    run: Callable[[dict], dict], jobs: Iterable[dict], n_workers: int, ordered: bool = False
) -> Iterator[dict]:
    """Each job's result, ``run(job)``, as soon as that job ends (in the order they end).

    A study records each row as it is yielded: a run that ends while an earlier one
    goes on is recorded at once, not after it (a converged Darcy run deletes its
    checkpoint, so a row held back until the session ended would have been lost).
    ``ordered``: in the jobs' order instead, for a study that writes its rows together
    at the end (its files then keep one order, whichever run ends first).

    ``n_workers`` processes forked from this one share the study's data (generated
    once, by the parent) without copying it; one worker is this process, which forks
    nothing. A process that has run CUDA cannot fork workers that run it (CUDA and
    autograd's device threads do not survive a fork): more than one worker is then
    refused, naming what to do.

    Examples
    --------
    >>> list(study_runs(lambda job: {**job, "square": job["x"] ** 2}, [{"x": 2}], 1))
    [{'x': 2, 'square': 4}]
    """
    if n_workers == 1:
        yield from map(run, jobs)
        return
    if torch.cuda.is_initialized():
        raise ClimlatentError(
            f"--workers {n_workers}: this process has run CUDA, and a forked worker cannot; "
            "run the study in a fresh process (python -m climlatent.studies...) or with "
            "--workers 1"
        )
    with ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [pool.submit(run, job) for job in jobs]
        for future in futures if ordered else as_completed(futures):
            yield future.result()
