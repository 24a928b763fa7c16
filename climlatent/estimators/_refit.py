"""A fit that fails leaves its estimator as it was, or unfitted: never half refitted.

And any fit leaves the caller's global random states as it found them; from the moment
it seeds them (`seed_global`) to its end, it and the other calls that seed those states
(`global_random_states`) run one at a time in a process. Its inputs are read before:
a lazy input whose tasks fit (on dask's threaded scheduler) does not wait on the fit
that reads it.
"""

from __future__ import annotations

import contextlib
import functools
import random
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from climlatent._params import fitting
from climlatent.random_streams import stream_seed


def all_or_nothing(fit: Callable[..., Any]) -> Callable[..., Any]:
    """``fit`` that, when it raises (a refusal, a Ctrl-C), leaves no mix of two fits.

    A refit that fails before it changes the fitted state (the ``name_`` attributes)
    keeps the previous fit; one that fails after, an interrupted training or a
    refusal once the new data's units, layouts or weights were set, removes all of
    the fitted state: the estimator is unfitted, and `predict`-like calls refuse.

    Either way the global torch, numpy and python random states are given back as the
    fit found them when it seeded them (`seed_global`): a torch estimator's fit seeds
    them from its ``seed``, and the caller's next ``np.random`` or ``torch`` draw came
    from that seed. A fit holds the lock of `global_random_states` from its seeding to
    its end, not before: a fit that computes a lazy input on dask's threaded scheduler,
    whose tasks fit other estimators in the pool's threads, waited on itself for good.

    A fit that returns has its parameters recorded as the fit's (`_params.fitting`):
    the calls using it refuse once one that shapes it changes.

    Examples
    --------
    >>> class Mean:
    ...     @all_or_nothing
    ...     def fit(self, values):
    ...         self.n_ = len(values)
    ...         self.mean_ = sum(values) / len(values)
    ...         return self
    >>> model = Mean().fit([1.0, 3.0])
    >>> model.fit([])
    Traceback (most recent call last):
    ...
    ZeroDivisionError: division by zero
    >>> hasattr(model, "mean_"), hasattr(model, "n_")  # not mean 2.0 of n 0
    (False, False)
    """

    @functools.wraps(fit)
    def atomic(self: Any, *args: Any, **kwargs: Any) -> Any:
        before = _fitted_state(self)
        with _seeding_scope(), fitting(self):
            try:
                return fit(self, *args, **kwargs)
            except BaseException:
                after = _fitted_state(self)
                if after.keys() != before.keys() or any(after[k] is not before[k] for k in after):
                    for name in after:
                        delattr(self, name)
                raise

    return atomic


def _fitted_state(estimator: Any) -> dict[str, Any]:
    """The fitted attributes of ``estimator``: those named with a trailing underscore."""
    return {k: v for k, v in vars(estimator).items() if k.endswith("_") and not k.startswith("__")}


#: Held while a call seeds and draws from the global random states: two threads' fits
#: (or `LLAAE.evaluate` calls) run one after the other, not interleaving their draws.
_SEEDING = threading.RLock()

#: Per thread, the fits running (nested): None until the fit seeds, then its restore.
_FITS = threading.local()


@contextlib.contextmanager
def _seeding_scope() -> Iterator[None]:
    """A fit: where it seeds (`seed_global`), it holds `_SEEDING` to its end."""
    fits = _FITS.__dict__.setdefault("stack", [])
    fits.append(None)
    try:
        yield
    finally:
        restore = fits.pop()
        if restore is not None:
            try:
                restore()
            finally:
                _SEEDING.release()


def hold_global_states() -> None:
    """From here to the end of the running fit, its thread alone draws from the global states.

    Takes `_SEEDING` (once per fit) and the states to give back at the fit's end
    (`all_or_nothing`); outside a fit, nothing.

    Examples
    --------
    >>> class Draw:
    ...     @all_or_nothing
    ...     def fit(self):
    ...         hold_global_states()
    ...         np.random.seed(0)
    ...         self.first_ = np.random.random()
    ...         return self
    >>> state = np.random.get_state()[1][0]
    >>> _ = Draw().fit()
    >>> bool(np.random.get_state()[1][0] == state)
    True
    """
    fits = getattr(_FITS, "stack", [])
    if fits and fits[-1] is None:
        _SEEDING.acquire()
        fits[-1] = _random_states()


def seed_global(seed: int, random_streams: int) -> None:
    """Seed torch's global generator for a fit's initial weights: `hold_global_states`.

    From the ``"weights"`` stream of ``seed``, by version ``random_streams`` of
    `climlatent.random_streams.stream_seed` (version 1: ``seed`` itself).
    """
    import torch  # here: the numpy estimators never load torch

    hold_global_states()
    torch.manual_seed(stream_seed(seed, random_streams, "weights"))


@contextlib.contextmanager
def global_random_states() -> Iterator[None]:
    """Seed and draw from the global random states inside; they are given back after.

    Python's, numpy's and torch's (`_random_states`), when the block returns or raises.
    The block runs alone among those of other threads: a seed set in one thread would
    otherwise reset the draws of another's, and each thread give back the states it
    found, another's draws among them.

    Examples
    --------
    >>> with global_random_states():
    ...     np.random.seed(0)
    ...     first = np.random.random()
    >>> with global_random_states():
    ...     np.random.seed(0)
    ...     first == np.random.random()
    True
    """
    with _SEEDING:
        restore = _random_states()
        try:
            yield
        finally:
            restore()


def _random_states() -> Callable[[], None]:
    """A function that restores the global random states of now: python, numpy, torch.

    torch is not imported here: a fit that finds it unloaded (an ``EOFRegression``'s)
    keeps numpy's and python's states. CUDA's are kept where CUDA was initialised.

    Examples
    --------
    >>> restore = _random_states()
    >>> first = np.random.random()
    >>> restore()
    >>> first == np.random.random()
    True
    """
    torch = sys.modules.get("torch")
    cuda = torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized()
    python, numpy = random.getstate(), np.random.get_state()  # noqa: NPY002 (the caller's)
    cpu = None if torch is None else torch.get_rng_state()
    devices = torch.cuda.get_rng_state_all() if cuda else None

    def restore() -> None:
        random.setstate(python)
        np.random.set_state(numpy)  # noqa: NPY002 (the caller's)
        if cpu is not None:
            torch.set_rng_state(cpu)
        if devices is not None:
            torch.cuda.set_rng_state_all(devices)

    return restore
