"""scikit-learn's parameter protocol for estimators and transforms, without scikit-learn.

The parameters of an estimator are its constructor's arguments, read from the
signature and stored under the same names (scikit-learn's convention). ``get_params``
returns them; ``set_params`` changes them through the constructor, so it refuses what
the constructor refuses and normalises as it does (``LLAAE``'s ``filters`` to a tuple
of ints, a ``Grouper`` to its string); ``sklearn.base.clone`` builds an unfitted
estimator of the same parameters through ``__sklearn_clone__``. That hook, not
scikit-learn's default clone, because the default one refuses a constructor that
normalises an argument (it checks that each parameter is the very object passed).

A fit is made under its parameters: a fit records them (`ParamsMixin._record_fit_params`,
as loading a saved model does), and the calls that use the fit refuse once one that
shapes it has changed since (`ParamsMixin._check_fit_params`, a `StaleFitError`
naming each with its fitted and current values), until it is set back or the estimator
refitted. Those that do not shape it, a class's `_runtime_params` (a progress bar, the
tolerance of a range check), change freely.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
from collections.abc import Iterator
from typing import Any, ClassVar, TypeVar

import numpy as np

from climlatent.errors import StaleFitError

__all__ = ["ParamsMixin", "fitting"]

P = TypeVar("P", bound="ParamsMixin")


class ParamsMixin:
    """``get_params``, ``set_params`` and cloning, from the constructor's signature.

    A subclass stores each argument of its ``__init__`` (a dataclass field, or an
    attribute its ``__init__`` sets) under the argument's name; a ``**kwargs`` argument
    is no parameter. Parameters that are themselves estimators or transforms (or the
    parts a subclass names in `_parts`) have their own parameters nested under
    ``name__``.
    """

    #: Parameters that do not shape the fit, read only by the calls that use it (or by
    #: the next fit alone): changed on a fitted estimator, they keep its fit valid.
    #: A subclass extends its base's: ``Base._runtime_params | {"name"}``.
    _runtime_params: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def _param_names(cls) -> list[str]:
        """The constructor's named arguments, in order."""
        arguments = list(inspect.signature(cls.__init__).parameters.values())[1:]  # not self
        variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        return [argument.name for argument in arguments if argument.kind not in variadic]

    def _parts(self) -> dict[str, ParamsMixin]:
        """The parts whose parameters are nested under ``name__``: parameters with their own."""
        return {
            name: value
            for name, value in self.get_params(deep=False).items()
            if isinstance(value, ParamsMixin)
        }

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments, as scikit-learn's ``get_params``.

        Parameters
        ----------
        deep : bool
            Also the parameters of the parts (a `~climlatent.transforms.Pipeline`'s
            steps), as ``part__name``.

        Returns
        -------
        dict
            Name -> value; ``type(self)(**self.get_params(deep=False))`` is an unfitted
            estimator of the same configuration.

        Examples
        --------
        >>> import climlatent as cl
        >>> cl.EOFRegression(n_proxy_eofs=3).get_params()["n_proxy_eofs"]
        3
        >>> from climlatent.transforms import Log1p, Pipeline, Standardize
        >>> Pipeline([Log1p(), Standardize()]).get_params()["step1__dims"]
        ('time',)
        """
        params = {name: getattr(self, name) for name in self._param_names()}
        if deep:
            for part_name, part in self._parts().items():
                params |= {f"{part_name}__{k}": v for k, v in part.get_params(deep=True).items()}
        return params

    def set_params(self: P, **params: Any) -> P:
        """Change parameters, checked as the constructor checks them; return ``self``.

        The new values pass through the constructor with the others, so a value it
        refuses is refused here with its message (which names the parameter), and the
        estimator is left unchanged. A fitted estimator keeps its fit (scikit-learn's
        rule): the new values apply from the next ``fit``, and until then the calls
        using the fit raise a `StaleFitError` naming those that shape it (not the
        class's `_runtime_params`), unless they are set back.

        Parameters
        ----------
        **params
            Parameter -> new value; ``part__name`` for a part's parameter.

        Returns
        -------
        estimator
            ``self``, changed in place.

        Raises
        ------
        ValueError
            A name that is no parameter (naming it and listing the valid ones), or a
            value the constructor refuses.

        Examples
        --------
        >>> import climlatent as cl
        >>> cl.EOFRegression().set_params(n_proxy_eofs=3, ridge=0.1)
        EOFRegression(n_proxy_eofs=3, ridge=0.1)
        >>> cl.EOFRegression().set_params(ridge=-1.0)
        Traceback (most recent call last):
        ...
        ValueError: invalid EOFRegression configuration: ridge=-1.0 must be at least 0
        """
        valid = self.get_params(deep=True)
        for key in params:
            if key not in valid:
                raise ValueError(
                    f"invalid parameter {key!r} for {type(self).__name__}: valid parameters "
                    f"are {', '.join(valid)}"
                )
        own, nested, parts = {}, {}, self._parts()
        for key, value in params.items():
            part, separator, name = key.partition("__")
            if separator and part in parts:
                nested.setdefault(part, {})[name] = value
            else:
                own[key] = value
        checked = type(self)(**{**self.get_params(deep=False), **own}) if own else None
        for part, values in nested.items():  # checked on copies before any part changes
            parts[part].__sklearn_clone__().set_params(**values)
        for part, values in nested.items():
            parts[part].set_params(**values)
        if checked is not None:  # the constructor's (normalised) values, not its fit
            public = {k: v for k, v in vars(checked).items() if not k.startswith("_")}
            vars(self).update({k: v for k, v in public.items() if not k.endswith("_")})
        return self

    def _shaping_params(self) -> dict[str, Any]:
        """The parameters that shape the fit, as compared: parts by class, lists as tuples."""
        params = self.get_params(deep=False)
        return {k: _comparable(v) for k, v in params.items() if k not in self._runtime_params}

    def _record_fit_params(self) -> None:
        """Record the parameters as those of the fit: at the end of ``fit``, and on loading."""
        self._fit_params = self._shaping_params()

    def _changed_params(self) -> dict[str, tuple[Any, Any]]:
        """Name -> (fitted, current) of each parameter shaping the fit that has changed.

        Those of the parts (a `~climlatent.transforms.Pipeline`'s steps) as ``part__name``;
        nothing before a fit, or for one that recorded none.
        """
        fitted = vars(self).get("_fit_params")
        if fitted is None:
            return {}
        changed = {
            name: (fitted.get(name), now)
            for name, now in self._shaping_params().items()
            if name not in fitted or not _same(fitted[name], now)
        }
        for part_name, part in self._parts().items():
            changed |= {f"{part_name}__{k}": v for k, v in part._changed_params().items()}
        return changed

    def _check_fit_params(self, method: str | None = None) -> None:
        """Refuse a use of the fit (``method``) once a parameter shaping it has changed.

        Raises
        ------
        StaleFitError
            Naming each changed parameter with its fitted and current values, and the
            `set_params` call that sets them back.

        Examples
        --------
        >>> import climlatent as cl
        >>> ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1)
        >>> est = cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=2).fit(ds, "pr", "psl")
        >>> est.set_params(n_target_eofs=3).emulate(ds)
        Traceback (most recent call last):
        ...
        climlatent.errors.StaleFitError: EOFRegression was fitted with n_target_eofs=2, now \
n_target_eofs=3: refit it, or set it back with set_params(n_target_eofs=2), before emulate()
        >>> est.set_params(n_target_eofs=2).emulate(ds)["pr"].dims
        ('member', 'time', 'lat', 'lon')
        """
        changed = self._changed_params()
        if not changed:
            return
        fitted = ", ".join(f"{name}={_shown(old)}" for name, (old, _) in changed.items())
        now = ", ".join(f"{name}={_shown(new)}" for name, (_, new) in changed.items())
        them = "them" if len(changed) > 1 else "it"
        raise StaleFitError(
            f"{type(self).__name__} was fitted with {fitted}, now {now}: refit it, or set "
            f"{them} back with set_params({fitted})" + (f", before {method}()" if method else "")
        )

    def __sklearn_clone__(self: P) -> P:
        """An unfitted estimator of the same parameters (`sklearn.base.clone`'s hook).

        Parameters that are estimators or transforms are cloned (unfitted) in turn,
        also inside lists and tuples; other values are deep copies.

        Examples
        --------
        >>> import climlatent as cl
        >>> cl.LLAAE(filters=[8, 16]).__sklearn_clone__()
        LLAAE(filters=(8, 16))
        """
        return type(self)(**{k: _clone(v) for k, v in self.get_params(deep=False).items()})


def _clone(value: Any) -> Any:
    """``value``'s unfitted clone where it has parameters, else a deep copy of it."""
    if isinstance(value, ParamsMixin):
        return value.__sklearn_clone__()
    if isinstance(value, list | tuple | set | frozenset):
        return type(value)(_clone(v) for v in value)
    return copy.deepcopy(value)


@contextlib.contextmanager
def fitting(estimator: Any) -> Iterator[None]:
    """The block fits ``estimator`` under its current parameters, recorded as the fit's.

    While it runs its own calls compare nothing (the fit in progress is of these
    parameters); if it raises, the previous fit's record is put back (the fit kept,
    if any). A no-op for an object without parameters.

    Examples
    --------
    >>> import climlatent as cl
    >>> est = cl.EOFRegression(n_proxy_eofs=3)
    >>> with fitting(est):
    ...     pass
    >>> est._fit_params["n_proxy_eofs"]
    3
    """
    if not isinstance(estimator, ParamsMixin):
        yield
        return
    previous = vars(estimator).get("_fit_params")
    estimator._record_fit_params()
    try:
        yield
    except BaseException:
        estimator._fit_params = previous
        raise


def _comparable(value: Any) -> Any:
    """``value`` as recorded and compared: a part by its class, a list as a tuple."""
    if isinstance(value, ParamsMixin):
        return type(value)
    if isinstance(value, list | tuple):
        return tuple(_comparable(v) for v in value)
    return copy.deepcopy(value)


def _same(a: Any, b: Any) -> bool:
    """Whether two recorded parameter values are equal, NaN equal to NaN, at any depth.

    Examples
    --------
    >>> _same((1.0, float("nan")), (1, float("nan"))), _same(np.zeros(2), np.ones(2))
    (True, False)
    """
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and bool(np.all((a == b) | ((a != a) & (b != b))))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # no truth value
        return a is b


def _shown(value: Any) -> str:
    """A recorded value as written in a call: a part's class by its name."""
    if isinstance(value, tuple):
        inner = ", ".join(map(_shown, value))
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return value.__name__ if isinstance(value, type) else repr(value)
