"""How an estimator shows itself: plain text anywhere, an HTML table in Jupyter.

The plain text is the class and the options that differ from their defaults, as
scikit-learn writes it (``latent_dim=2`` is the default):

>>> import climlatent as cl
>>> cl.VAE(latent_dim=2, epochs=2), cl.VAE(latent_dim=4, epochs=2)
(VAE(epochs=2), VAE(latent_dim=4, epochs=2))

The HTML adds whether it is fitted, its variables, its grids and a summary of its
training history.
"""

from __future__ import annotations

import dataclasses
import html
from typing import TYPE_CHECKING, Any

import pandas as pd
import xarray as xr

from climlatent.batching import FieldLayout

if TYPE_CHECKING:
    from climlatent.estimators.base import BaseEstimator

#: Fitted attributes naming the variables an estimator reads from new data ...
INPUT_ATTRS = ("proxy_", "drivers_", "inputs_")
#: ... and those it predicts, when it maps one set to another.
OUTPUT_ATTRS = ("target_", "outputs_")
#: Fitted attributes naming the variables an estimator learned, in display order.
VARIABLE_ATTRS = (*INPUT_ATTRS, *OUTPUT_ATTRS, "variables_", "variable_", "guided_names_")


def changed_options(estimator: BaseEstimator) -> dict[str, Any]:
    """The configuration fields whose value differs from the field's default.

    Examples
    --------
    >>> from climlatent.estimators import EOFRegression
    >>> changed_options(EOFRegression(n_proxy_eofs=3))
    {'n_proxy_eofs': 3}
    """
    changed = {}
    for field in dataclasses.fields(estimator):
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = dataclasses.MISSING
        value = getattr(estimator, field.name)
        if value != default:
            changed[field.name] = value
    return changed


def text_repr(estimator: BaseEstimator) -> str:
    """``Class(option=value, ...)`` with the options that differ from their defaults.

    Examples
    --------
    >>> from climlatent.estimators import EOFRegression
    >>> text_repr(EOFRegression(n_proxy_eofs=3))
    'EOFRegression(n_proxy_eofs=3)'
    """
    options = ", ".join(f"{k}={v!r}" for k, v in changed_options(estimator).items())
    return f"{type(estimator).__name__}({options})"


def _variables(estimator: BaseEstimator, attrs: tuple[str, ...] = VARIABLE_ATTRS) -> list[str]:
    """The variable names the fitted attributes ``attrs`` hold, each once, in order."""
    names = []
    for attr in attrs:
        value = getattr(estimator, attr, None)
        for name in [value] if isinstance(value, str) else list(value or []):
            if name not in names:
                names.append(str(name))
    return names


def _grid_text(grid: FieldLayout | xr.Dataset | xr.DataArray) -> str:
    if isinstance(grid, FieldLayout):
        sizes = " x ".join(f"{d} {grid.grid.sizes[d]}" for d in grid.spatial_dims)
        return f"{grid.name}: {sizes} ({grid.n_features} valid cells)"
    return " x ".join(f"{d} {n}" for d, n in grid.sizes.items())


def _grids(estimator: BaseEstimator) -> dict[str, str]:
    """Fitted layouts and grids, by attribute name without the trailing underscore."""
    grids = {
        name.rstrip("_"): _grid_text(value)
        for name, value in vars(estimator).items()
        if name.endswith("_")
        and not name.startswith("_")
        and (
            isinstance(value, FieldLayout)
            or ("grid" in name and isinstance(value, xr.Dataset | xr.DataArray))
        )
    }
    return {name: text for name, text in grids.items() if text}  # a grid without dims


def history_summary(history: pd.DataFrame, best_epoch: int | None = None) -> str:
    """One line: epochs run, the last losses, the best epoch and the time taken.

    Examples
    --------
    >>> import pandas as pd
    >>> history = pd.DataFrame({"train_loss": [3.0, 2.0], "valid_loss": [3.5, 2.5],
    ...                         "seconds": [0.5, 0.25]})
    >>> history_summary(history, best_epoch=1)
    '2 epochs; last train_loss 2, valid_loss 2.5; best epoch 1; 0.75 s'
    """
    parts = [f"{len(history)} epochs"]
    if len(history):
        losses = [c for c in ("train_loss", "valid_loss") if c in history]
        losses = losses or [c for c in history if str(c).startswith(("train_", "valid_"))]
        parts.append("last " + ", ".join(f"{c} {history[c].iloc[-1]:.4g}" for c in losses))
    if best_epoch is not None:
        parts.append(f"best epoch {best_epoch}")
    if "seconds" in history:
        parts.append(f"{history['seconds'].sum():.3g} s")
    return "; ".join(parts)


def missing_history(estimator: BaseEstimator) -> str:
    """Why ``estimator`` has no ``history_``: unfitted, saved without it, or not trained.

    A fitted torch estimator (one with a ``module_``) without it was loaded from a
    model saved before climlatent kept the history (`climlatent.persistence`).

    Examples
    --------
    >>> from climlatent.estimators import EOFRegression
    >>> missing_history(EOFRegression())
    'fit it first (only the torch estimators record one, as history_)'
    """
    if not estimator.is_fitted:
        return "fit it first (only the torch estimators record one, as history_)"
    if hasattr(estimator, "module_"):
        return "the model was saved without it (by an older climlatent); refit to record one"
    return "only the torch estimators record one, as history_"


def _training(estimator: BaseEstimator) -> str | None:
    """The training history's one-line summary; None for an estimator without one.

    A fitted torch estimator loaded from a model saved without it says so.
    """
    history = getattr(estimator, "history_", None)
    if not isinstance(history, pd.DataFrame):
        torch_fitted = estimator.is_fitted and hasattr(estimator, "module_")
        return "not saved with the model (saved by an older climlatent)" if torch_fitted else None
    return history_summary(history, getattr(estimator, "best_epoch_", None))


def describe(estimator: BaseEstimator) -> str:
    """Plain text for ``climlatent info``: the class, its variables, training, options.

    The first line is ``Class: inputs -> outputs`` for an estimator mapping some
    variables to others, ``Class: variables`` for an autoencoder; one line per option
    follows.

    Parameters
    ----------
    estimator : BaseEstimator
        Fitted or not.

    Returns
    -------
    str
        Lines without a final newline.

    Examples
    --------
    >>> import climlatent as cl
    >>> ds = cl.datasets.synthetic_circulation(n_years=1, n_lat=4, n_lon=6)
    >>> print(describe(cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=2).fit(ds, "pr", "psl")))
    EOFRegression: psl -> pr
      target_transform = 'none'
      proxy_transform = 'standardize'
      range_tolerance = 5.0
      n_proxy_eofs = 2
      n_target_eofs = 2
      ridge = 0.0
    """
    if not estimator.is_fitted:
        head = "not fitted"
    else:
        inputs = _variables(estimator, INPUT_ATTRS)
        outputs = _variables(estimator, OUTPUT_ATTRS)
        if inputs and outputs:
            head = f"{', '.join(inputs)} -> {', '.join(outputs)}"
        else:
            head = ", ".join(_variables(estimator))
    lines = [f"{type(estimator).__name__}: {head}"]
    training = _training(estimator)
    if training:
        lines.append(f"  training: {training}")
    lines += [f"  {key} = {value!r}" for key, value in estimator.get_config().items()]
    return "\n".join(lines)


def html_repr(estimator: BaseEstimator) -> str:
    """An HTML table for Jupyter: options, fitted or not, variables, grids, training.

    Examples
    --------
    >>> from climlatent.estimators import EOFRegression
    >>> "<b>n_proxy_eofs</b>" in html_repr(EOFRegression(n_proxy_eofs=3))
    True
    """
    changed = changed_options(estimator)
    options = ", ".join(
        f"<b>{html.escape(k)}</b>={html.escape(repr(v))}"
        if k in changed
        else f"{html.escape(k)}={html.escape(repr(v))}"
        for k, v in estimator.get_config().items()
    )
    rows = [("options (changed in bold)", options)]
    if estimator.is_fitted:
        rows.append(("variables", html.escape(", ".join(_variables(estimator)))))
        rows += [(name, html.escape(text)) for name, text in _grids(estimator).items()]
        training = _training(estimator)
        if training:
            rows.append(("training", html.escape(training)))
    status = "fitted" if estimator.is_fitted else "not fitted"
    body = "".join(
        f"<tr><th style='text-align:left'>{key}</th><td style='text-align:left'>{value}</td></tr>"
        for key, value in rows
    )
    return (
        f"<div class='climlatent-estimator'><details open><summary>"
        f"<b>{type(estimator).__name__}</b> ({status})</summary>"
        f"<table>{body}</table></details></div>"
    )
