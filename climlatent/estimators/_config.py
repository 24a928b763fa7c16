"""Checks of an estimator's configuration at construction, before any data is seen.

Every configuration field is checked against its declared type (a bool is not a
number, 2.5 is not an int, NaN and inf are not a float setting), and the fields an
estimator shares with `~climlatent.training.TrainingConfig` are checked by it, so that
``LLAAE(epochs=0)`` or ``EOFRegression(ridge=nan)`` fail where they are written, with
the field named, not minutes later inside a training loop or as a quietly wrong fit.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from climlatent.transforms import Transform

__all__ = ["check_config", "make_transform"]

#: The least value of the options estimators share, by name: sizes (of a network, a
#: latent space, a basis; every entry of ``filters``), counts of blocks or epochs, and
#: loss weights and scales (a negative KL weight rewards a mismatch).
LEAST = {
    **dict.fromkeys(
        ("base_channels", "channels", "extrinsic_dim", "filters", "geometry_hidden", "growth",
         "hidden", "hidden_layers", "intrinsic_dim", "latent_dim", "layers", "n_components",
         "n_proxy_eofs", "n_scales", "n_target_eofs", "times_per_sample"),
        1,
    ),
    **dict.fromkeys(
        ("residual_blocks", "plateau_lr_drops", "ramp_epochs", "warmup_epochs",
         "beta_warmup_epochs", "alignment_weight", "alpha", "beta", "beta_0", "beta_final",
         "covariance_weight", "decorrelation_weight", "flow_alpha", "gamma_geo", "gamma_metric",
         "supervision_weight", "weight_decay", "weight_l2", "ridge", "regularisation"),
        0,
    ),
}  # fmt: skip
#: Options that must be above zero: a spread (``tau=0`` divides by a zero variance)
#: and the range tolerance of `climlatent.fitted_range`.
POSITIVE = ("range_tolerance", "tau")
#: Options naming one of a set (listed as ``{"a", "b"}`` in each estimator's Parameters):
#: another value was refused only by ``fit``, or never (``ProxyLatentDownscaler`` with one
#: channel has no learned latent).
CHOICES = {
    "latent": ("none", "gaussian", "gaussian_hp", "gev", "gev_moments"),
    "prior": ("standard", "hierarchical"),
    "proxy_transform": ("none", "standardize", "log1p"),
    "target_transform": ("none", "standardize", "log1p"),
}


def _matches(value: Any, kind: Any) -> bool:
    """Whether ``value`` is of the annotated type ``kind`` (the types configs use)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, option) for option in typing.get_args(kind))
    if kind is type(None):
        return value is None
    if kind is Any:
        return True
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number and math.isfinite(value)
    if kind is str:
        return isinstance(value, str)
    if origin in (tuple, list) or kind in (tuple, list):
        args = typing.get_args(kind)
        if not isinstance(value, tuple | list) or not args:
            return isinstance(value, tuple | list)
        if origin is tuple and Ellipsis not in args and len(value) != len(args):
            return False  # a fixed-length tuple: (x, y) is not (x, y, z)
        return all(_matches(v, args[0]) for v in value)
    if origin is dict or kind is dict:
        return isinstance(value, dict)
    return True  # a type configs do not use: nothing to check


def check_config(estimator: Any) -> None:
    """Raise a `ValueError` naming every configuration field of the wrong type or value.

    Examples
    --------
    >>> import climlatent as cl
    >>> cl.EOFRegression(ridge=float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: invalid EOFRegression configuration: ridge=nan is not a finite float
    >>> cl.LLAAE(epochs=0)
    Traceback (most recent call last):
    ...
    ValueError: invalid LLAAE configuration: epochs must be >= 1
    >>> cl.LLAAE(filters=(8, 0))
    Traceback (most recent call last):
    ...
    ValueError: invalid LLAAE configuration: filters=(8, 0) must be at least 1 each
    """
    cls = type(estimator)
    hints = typing.get_type_hints(cls)
    problems, mistyped = [], set()
    for field in dataclasses.fields(estimator):
        value, kind = getattr(estimator, field.name), hints[field.name]
        if not _matches(value, kind):
            described = "a finite float" if kind is float else _describe(kind)
            problems.append(f"{field.name}={value!r} is not {described}")
            mistyped.add(field.name)
    for name, least in LEAST.items():
        if name in mistyped or not hasattr(estimator, name):
            continue
        value = getattr(estimator, name)
        values = value if isinstance(value, tuple | list) else (value,)
        if not values:
            problems.append(f"{name} must hold at least one value")
        elif any(v < least for v in values):
            each = " each" if isinstance(value, tuple | list) else ""
            problems.append(f"{name}={value!r} must be at least {least}{each}")
    for name in POSITIVE:
        if name not in mistyped and getattr(estimator, name, 1.0) <= 0:
            problems.append(f"{name}={getattr(estimator, name)!r} must be > 0")
    for name, choices in CHOICES.items():
        value = getattr(estimator, name, choices[0])
        if name not in mistyped and value not in choices:
            problems.append(f"{name} must be one of {choices}, got {value!r}")
    if not problems and hasattr(estimator, "epochs"):  # trained (with torch): its loop's settings
        try:
            if hasattr(estimator, "schedule"):  # its beta and learning-rate schedule
                estimator.schedule()
            estimator._training_config()
        except ValueError as error:
            problems.append(str(error).removeprefix("invalid TrainingConfig: "))
    if problems:
        raise ValueError(f"invalid {cls.__name__} configuration: " + "; ".join(problems))


def _describe(kind: Any) -> str:
    names = {int: "an int", float: "a finite float", bool: "a bool", str: "a str"}
    if kind in names:
        return names[kind]
    if typing.get_origin(kind) in (tuple, list):
        args = typing.get_args(kind)
        fixed = typing.get_origin(kind) is tuple and Ellipsis not in args
        each = _describe(args[0]).split(" ", 1)[-1]  # "a finite float" -> "finite float"
        return f"a pair of {each}s" if fixed and len(args) == 2 else "a list"
    options = typing.get_args(kind)
    if options:
        return " or ".join(
            "None" if option is type(None) else _describe(option) for option in options
        )
    return f"a {getattr(kind, '__name__', kind)}"


def make_transform(kind: str, sample_dims: tuple[str, ...]) -> Transform | None:
    """Build the preprocessing named by an estimator's configuration (unfitted).

    Examples
    --------
    >>> make_transform("standardize", ("time",)), make_transform("none", ("time",))
    (Standardize(dims=['time']), None)
    """
    from climlatent import transforms

    if kind == "none":
        return None
    if kind == "standardize":
        return transforms.Standardize(dims=sample_dims)
    if kind == "log1p":
        return transforms.Log1p()
    raise ValueError(f"unknown transform {kind!r}: use 'none', 'standardize' or 'log1p'")
