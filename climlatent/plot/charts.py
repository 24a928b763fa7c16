"""Figures that need no map (matplotlib alone, no cartopy): latents and training.

- `aggregate_posterior`: encoded samples against the latent prior;
- `latent_factor_heatmap`: correlation of every latent with every known factor;
- `latent_factor_scatter`: every latent against every factor, sample by sample;
- `training_history`: train and validation losses per epoch (``est.history_``);
- `colourbar_label`: ``"long_name [units]"``, the label of every colourbar.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy import stats

from climlatent.errors import InputDataError
from climlatent.estimators._repr import missing_history
from climlatent.metrics import latent_factor_correlation

MAX_PANEL_COLUMNS = 4


def colourbar_label(da: xr.DataArray) -> str:
    """``"long_name [units]"`` (the name when there is no ``long_name``).

    Examples
    --------
    >>> import xarray as xr
    >>> colourbar_label(xr.DataArray(0.0, name="tas", attrs={"units": "K"}))
    'tas [K]'
    """
    text = da.attrs.get("long_name") or da.name or ""
    units = da.attrs.get("units")
    return f"{text} [{units}]" if units is not None else str(text)


def aggregate_posterior(
    latents: xr.DataArray,
    pair: tuple[int, int] = (0, 1),
    latent_dim: str = "latent",
    prior: stats.rv_continuous | None = None,
    seed: int = 0,
) -> Figure:
    """The aggregate posterior (all encoded samples) against the latent prior.

    Parameters
    ----------
    latents : xr.DataArray
        Latent codes, e.g. ``estimator.encode(ds)``: sample dims and ``latent_dim``.
    pair : tuple of int
        The two latent dimensions of the scatter plot (of the ``latent_dim`` positions).
    latent_dim : str
        The latent dimension.
    prior : scipy.stats frozen distribution, optional
        Each latent's prior; standard normal by default (labelled "N(0, 1)": a learned
        prior, such as the hierarchical one, is no scipy distribution).
    seed : int
        Seed of the prior draws.

    Returns
    -------
    Figure
        Left: encoded samples over as many prior draws (grey) in the ``pair`` plane.
        Right: a kernel density estimate of each latent's marginal over the prior
        density (dashed).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> z = xr.DataArray(np.random.default_rng(0).normal(size=(200, 3)), dims=("time", "latent"))
    >>> fig = aggregate_posterior(z)
    >>> fig.axes[0].get_xlabel(), len(fig.axes[1].lines)
    ('z[0]', 4)
    """
    if latent_dim not in latents.dims:
        raise InputDataError(f"latents have no dimension {latent_dim!r} (dims: {latents.dims})")
    n_latents = latents.sizes[latent_dim]
    if not all(0 <= k < n_latents for k in pair):
        raise InputDataError(
            f"pair={tuple(pair)} names latents outside 0..{n_latents - 1}: the latents have "
            f"{n_latents} along {latent_dim!r}"
        )
    name = "prior" if prior is not None else "N(0, 1)"  # not a learned (hierarchical) prior
    prior = prior or stats.norm()
    z = latents.transpose(..., latent_dim).values.reshape(-1, n_latents)
    z = z[np.isfinite(z).all(axis=1)]
    drawn = prior.rvs(size=(len(z), 2), random_state=np.random.default_rng(seed))
    fig, (scatter, marginal) = plt.subplots(1, 2, figsize=(10, 4.5), layout="constrained")
    scatter.scatter(*drawn.T, s=6, color="0.7", label=name)
    scatter.scatter(z[:, pair[0]], z[:, pair[1]], s=6, alpha=0.6, label="aggregate posterior")
    scatter.set(xlabel=f"z[{pair[0]}]", ylabel=f"z[{pair[1]}]", aspect="equal")
    scatter.legend(loc="upper right")
    grid = np.linspace(min(z.min(), drawn.min()), max(z.max(), drawn.max()), 200)
    for k in range(z.shape[1]):
        marginal.plot(grid, stats.gaussian_kde(z[:, k])(grid), label=f"z[{k}]")
    marginal.plot(grid, prior.pdf(grid), "k--", label=name)
    marginal.set(xlabel="latent value", ylabel="density")
    marginal.legend(loc="upper right")
    return fig


def latent_factor_heatmap(
    latents: xr.DataArray,
    factors: xr.DataArray,
    latent_dim: str = "latent",
    factor_dim: str = "mode",
) -> Figure:
    """Heatmap of the correlation of every latent with every known factor.

    Parameters
    ----------
    latents, factors, latent_dim, factor_dim
        As for `climlatent.metrics.latent_factor_correlation`.

    Returns
    -------
    Figure
        Correlations in [-1, 1] on a diverging scale, each cell annotated.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> f = xr.DataArray(np.random.default_rng(0).normal(size=(100, 2)), dims=("time", "mode"))
    >>> z = xr.DataArray(f.values @ [[0.0, 2.0], [1.0, 0.0]], dims=("time", "latent"))
    >>> fig = latent_factor_heatmap(z, f)
    >>> fig.axes[1].get_ylabel()
    'correlation of latent with factor [1]'
    """
    corr = latent_factor_correlation(latents, factors, latent_dim, factor_dim)
    fig, ax = plt.subplots(
        figsize=(1.2 * corr.sizes[factor_dim] + 2.5, 0.6 * corr.sizes[latent_dim] + 1.5),
        layout="constrained",
    )
    image = ax.imshow(corr.values, cmap="RdBu_r", vmin=-1, vmax=1)
    for (i, j), value in np.ndenumerate(corr.values):
        ax.text(
            j, i, f"{value:.2f}", ha="center", va="center", color="k" if abs(value) < 0.6 else "w"
        )
    labels = [
        np.arange(corr.sizes[d]) if d not in corr.coords else corr[d].values
        for d in (latent_dim, factor_dim)
    ]
    ax.set_yticks(range(len(labels[0])), labels[0])
    ax.set_xticks(range(len(labels[1])), labels[1])
    ax.set(ylabel=latent_dim, xlabel=factor_dim)
    fig.colorbar(image, ax=ax, label=colourbar_label(corr))
    return fig


def latent_factor_scatter(
    latents: xr.DataArray,
    factors: xr.DataArray,
    latent_dim: str = "latent",
    factor_dim: str = "mode",
) -> Figure:
    """Every latent against every known factor: the qualitative disentanglement plot.

    A disentangled latent shows one tight curve in its row (one factor) and a
    shapeless cloud against every other factor (Jacobsen & Duraisamy 2022, Fig. 12).

    Parameters
    ----------
    latents, factors, latent_dim, factor_dim
        As for `climlatent.metrics.latent_factor_correlation`.

    Returns
    -------
    Figure
        One panel per (latent, factor), titled with their correlation.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> f = xr.DataArray(np.random.default_rng(0).normal(size=(200, 2)), dims=("time", "mode"))
    >>> z = xr.DataArray(np.tanh(f.values[:, ::-1]), dims=("time", "latent"))
    >>> fig = latent_factor_scatter(z, f)
    >>> [ax.get_title() for ax in fig.axes[:2]]
    ['r = 0.08', 'r = 0.96']
    """
    corr = latent_factor_correlation(latents, factors, latent_dim, factor_dim)
    n_latent, n_factor = corr.sizes[latent_dim], corr.sizes[factor_dim]
    latents, factors = xr.align(latents, factors, join="inner")  # the samples corr pairs
    sample = [d for d in latents.dims if d != latent_dim]
    z = latents.transpose(*sample, latent_dim).values.reshape(-1, n_latent)
    theta = factors.transpose(*sample, factor_dim).values.reshape(-1, n_factor)
    fig, axes = plt.subplots(
        n_latent, n_factor, figsize=(2.4 * n_factor, 2.2 * n_latent), squeeze=False,
        sharex="col", sharey="row", layout="constrained",
    )  # fmt: skip
    for (i, j), ax in np.ndenumerate(axes):
        ax.scatter(theta[:, j], z[:, i], s=4, alpha=0.5, color=f"C{i}")
        ax.set_title(f"r = {float(corr.values[i, j]):.2f}")
        if j == 0:
            ax.set_ylabel(f"{latent_dim} {i}")
        if i == n_latent - 1:
            ax.set_xlabel(f"{factor_dim} {j}")
    return fig


def training_history(history: pd.DataFrame | Any, best_epoch: int | None = None) -> Figure:
    """Train (solid) and validation (dashed) losses per epoch, one panel per loss term.

    Parameters
    ----------
    history : pandas.DataFrame or a fitted torch estimator
        ``estimator.history_`` (one row per epoch, ``train_<key>``/``valid_<key>``
        columns), or the estimator itself: ``training_history(est)``.
    best_epoch : int, optional
        Marked with a vertical line (the epoch early stopping kept); for an estimator,
        its ``best_epoch_`` by default.

    Returns
    -------
    Figure

    Examples
    --------
    >>> import pandas as pd
    >>> history = pd.DataFrame({"train_loss": [3.0, 2.0, 1.5], "valid_loss": [3.5, 2.5, 2.4]})
    >>> fig = training_history(history, best_epoch=2)
    >>> [line.get_label() for line in fig.axes[0].lines][:2]
    ['train', 'valid']
    """
    if not isinstance(history, pd.DataFrame):
        estimator = history
        history = getattr(estimator, "history_", None)
        if not isinstance(history, pd.DataFrame):
            raise InputDataError(
                f"{type(estimator).__name__} has no training history: {missing_history(estimator)}"
            )
        if best_epoch is None:
            best_epoch = getattr(estimator, "best_epoch_", None)
    keys = [c.removeprefix("train_") for c in history.columns if c.startswith("train_")]
    if not keys:
        raise InputDataError(f"history has no train_<loss> columns: {list(history.columns)}")
    n_cols = min(len(keys), MAX_PANEL_COLUMNS)
    n_rows = -(-len(keys) // n_cols)
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(4 * n_cols, 3.2 * n_rows), layout="constrained", squeeze=False
    )
    for ax in axes.ravel()[len(keys) :]:
        ax.remove()
    epochs = np.asarray(history.index)
    for key, ax in zip(keys, axes.ravel()[: len(keys)], strict=True):
        columns = [c for c in (f"train_{key}", f"valid_{key}") if c in history]
        for column, style in zip(columns, ("-", "--")[: len(columns)], strict=True):
            ax.plot(epochs, history[column], style, color="C0", label=column.split("_")[0])
        if (history[columns].to_numpy() > 0).all():
            ax.set_yscale("log")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="0.5", linewidth=0.8, label="best epoch")
        ax.set(title=key, xlabel="epoch", ylabel="loss")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    return fig
