"""Old spellings of the API that keep working for one release, with a warning.

Every estimator speaks one vocabulary (see the README's table): emulators
``fit(ds, target=..., proxy=...)`` then ``emulate(ds)``, downscalers
``fit(coarse, fine, target, proxies)`` then ``downscale(coarse)``, generative models
``fit(ds, target)`` then ``sample(n)``. The spellings it replaced (``VED.predict``,
``fit(ds, inputs=, outputs=)``, ``fit(ds, variables=)``...) go through the two helpers
here, which do what the new spelling does after a `ClimlatentDeprecationWarning`
that names it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

from climlatent.errors import ClimlatentDeprecationWarning


def warn_deprecated(old: str, new: str, stacklevel: int = 2) -> None:
    """Warn that the spelling ``old`` goes in the next release; ``new`` replaces it.

    Parameters
    ----------
    old, new : str
        The deprecated spelling and the one to write instead, as code.
    stacklevel : int
        As for `warnings.warn`: 2 attributes the warning to the caller of the function
        that calls this one.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_deprecated("est.predict(ds)", "est.emulate(ds)")
    >>> print(caught[0].message)
    est.predict(ds) is deprecated and goes in the next climlatent release: write est.emulate(ds)
    """
    warnings.warn(
        f"{old} is deprecated and goes in the next climlatent release: write {new}",
        ClimlatentDeprecationWarning,
        stacklevel=stacklevel + 1,
    )


def renamed_method(old: str, new: str) -> Callable[..., Any]:
    """A method ``old`` that warns, then calls the method ``new`` with the same arguments.

    Parameters
    ----------
    old, new : str
        The deprecated method name (the attribute it is assigned to) and its
        replacement's.

    Returns
    -------
    callable
        The method, to assign in the class body: ``predict = renamed_method("predict",
        "emulate")``.

    Examples
    --------
    >>> import warnings
    >>> class Model:
    ...     def emulate(self, x):
    ...         return 2 * x
    ...     predict = renamed_method("predict", "emulate")
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     Model().predict(3)
    6
    >>> print(caught[0].message)
    Model.predict() is deprecated and goes in the next climlatent release: write Model.emulate()
    """

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        cls = type(self).__name__
        warn_deprecated(f"{cls}.{old}()", f"{cls}.{new}()")
        return getattr(self, new)(*args, **kwargs)

    method.__name__ = method.__qualname__ = old
    method.__doc__ = f"Deprecated spelling of `{new}` (same arguments and result)."
    return method


def renamed_arguments(
    call: str,
    new: Mapping[str, Any],
    old: Mapping[str, Any],
    renames: Mapping[str, str],
    positional: tuple[Any, ...] = (),
    required: tuple[str, ...] = (),
    stacklevel: int = 2,
    first: str | None = "ds",
) -> dict[str, Any]:
    """The arguments of a call under their new names, old names and order still accepted.

    A call may give an argument by its new keyword, by its old keyword, or (for a call
    whose positional order changed meaning) positionally in the old order, which is
    then read in that old order, never reinterpreted. Old spellings warn once per call
    with the call to write instead, holding the caller's own values.

    Parameters
    ----------
    call : str
        The method as users write it (``"VED.fit"``).
    new : mapping
        New name -> value as called, ``None`` when not given, in the order the
        replacement spelling lists them.
    old : mapping
        Old keyword -> value, as the call gave them.
    renames : mapping
        Old name -> new name, in the old positional order.
    positional : tuple
        Arguments given positionally after ``ds``, in the old order.
    required : tuple of str
        New names that must end up with a value.
    stacklevel : int
        As for `warnings.warn`: 2 attributes the warning to the caller of the method
        that calls this one (3 when a helper of that method calls it).
    first : str or None
        The method's first argument, which keeps its name (``ds``); None when all of
        its arguments may be renamed.

    Returns
    -------
    dict
        New name -> value, for every name of ``new``.

    Raises
    ------
    TypeError
        An unknown keyword, too many positional arguments, an argument given twice,
        or a required one missing.

    Examples
    --------
    >>> import warnings
    >>> renames = {"inputs": "proxy", "outputs": "target"}
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     renamed_arguments("VED.fit", {"target": None, "proxy": None}, {}, renames,
    ...                       positional=("psl", "tas"))
    {'target': 'tas', 'proxy': 'psl'}
    >>> print(caught[0].message)  # doctest: +NORMALIZE_WHITESPACE
    VED.fit(ds, 'psl', 'tas') is deprecated and goes in the next climlatent release:
    write VED.fit(ds, target='tas', proxy='psl')
    """
    unknown = [name for name in old if name not in renames]
    if unknown:
        raise TypeError(f"{call}() got an unexpected keyword argument {unknown[0]!r}")
    if len(positional) > len(renames):
        raise TypeError(
            f"{call}() takes at most {len(renames)} positional arguments after ds "
            f"({', '.join(renames)}, deprecated), got {len(positional)}"
        )
    values = dict(new)
    given = list(zip(renames, positional, strict=False)) + list(old.items())
    for name, value in given:
        if values[renames[name]] is not None:
            raise TypeError(f"{call}() got {renames[name]!r} twice (also as {name!r})")
        values[renames[name]] = value
    missing = [name for name in required if values[name] is None]
    if missing:
        raise TypeError(f"{call}() missing the argument(s) {', '.join(map(repr, missing))}")
    if given:
        head = [first] if first else []
        spelled_old = head + [repr(value) for value in positional]
        spelled_old += [f"{name}={value!r}" for name, value in old.items()]
        spelled_old += [f"{name}={value!r}" for name, value in new.items() if value is not None]
        spelled_new = head + [f"{n}={v!r}" for n, v in values.items() if v is not None]
        warn_deprecated(
            f"{call}({', '.join(spelled_old)})",
            f"{call}({', '.join(spelled_new)})",
            stacklevel=stacklevel + 1,
        )
    return values
