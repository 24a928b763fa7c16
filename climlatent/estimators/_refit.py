"""A fit that fails leaves its estimator as it was, or unfitted: never half refitted."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def all_or_nothing(fit: Callable[..., Any]) -> Callable[..., Any]:
    """``fit`` that, when it raises (a refusal, a Ctrl-C), leaves no mix of two fits.

    A refit that fails before it changes the fitted state (the ``name_`` attributes)
    keeps the previous fit; one that fails after, an interrupted training or a
    refusal once the new data's units, layouts or weights were set, removes all of
    the fitted state: the estimator is unfitted, and `predict`-like calls refuse.

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
