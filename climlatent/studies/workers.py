"""The worker processes of a study: forked from the study's process, or that process alone."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any

import torch

from climlatent.errors import ClimlatentError


class _ThisProcess(Executor):
    """Runs each job in the calling process, one at a time, as its result is asked for."""

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # the caller's .result() raises it
            future.set_exception(error)
        return future

    def map(self, fn: Callable, *iterables: Iterable, **options: Any) -> Iterator:
        return map(fn, *iterables)  # lazily: each result as soon as its job ends


def study_workers(n_workers: int) -> Executor:
    """``n_workers`` processes forked from this one, or this process for one worker.

    Forked workers share the study's data (generated once, by the parent) without
    copying it. A process that has run CUDA cannot fork workers that run it (CUDA and
    autograd's device threads do not survive a fork): more than one worker is then
    refused, naming what to do; one worker runs in this process, which forks nothing.

    Parameters
    ----------
    n_workers : int
        Processes running jobs at once.

    Returns
    -------
    concurrent.futures.Executor
        Its ``map`` yields each job's result in order, as the job ends.

    Examples
    --------
    >>> with study_workers(1) as pool:
    ...     list(pool.map(abs, [-1, 2]))
    [1, 2]
    """
    if n_workers == 1:
        return _ThisProcess()
    if torch.cuda.is_initialized():
        raise ClimlatentError(
            f"--workers {n_workers}: this process has run CUDA, and a forked worker cannot; "
            "run the study in a fresh process (python -m climlatent.studies...) or with "
            "--workers 1"
        )
    return ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("fork"))
