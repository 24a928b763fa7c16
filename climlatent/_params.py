"""scikit-learn's parameter protocol for estimators and transforms, without scikit-learn.

The parameters of an estimator are its constructor's arguments, read from the
signature and stored under the same names (scikit-learn's convention). ``get_params``
returns them; ``set_params`` changes them through the constructor, so it refuses what
the constructor refuses and normalises as it does (``LLAAE``'s ``filters`` to a tuple
of ints, a ``Grouper`` to its string); ``sklearn.base.clone`` builds an unfitted
estimator of the same parameters through ``__sklearn_clone__``. That hook, not
scikit-learn's default clone, because the default one refuses a constructor that
normalises an argument (it checks that each parameter is the very object passed).
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, TypeVar

__all__ = ["ParamsMixin"]

P = TypeVar("P", bound="ParamsMixin")


class ParamsMixin:
    """``get_params``, ``set_params`` and cloning, from the constructor's signature.

    A subclass stores each argument of its ``__init__`` (a dataclass field, or an
    attribute its ``__init__`` sets) under the argument's name; a ``**kwargs`` argument
    is no parameter. Parameters that are themselves estimators or transforms (or the
    parts a subclass names in `_parts`) have their own parameters nested under
    ``name__``.
    """

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
        rule): the new values apply from the next ``fit``.

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
