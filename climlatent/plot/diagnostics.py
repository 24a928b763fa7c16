"""Maps that judge a fitted model (cartopy); its other figures are in `charts`.

- `skill_maps`: RMSE, bias and R2 of a prediction in every grid cell;
- `latent_traversal`: decoded maps along one latent dimension (``est.traverse``).
"""

from __future__ import annotations

from collections.abc import Sequence

import xarray as xr
from matplotlib.figure import Figure

from climlatent.grid import find_grid
from climlatent.metrics import r2_map, rmse_map
from climlatent.metrics.skill import as_score, paired
from climlatent.plot.charts import MAX_PANEL_COLUMNS
from climlatent.plot.maps import map, map_panels, panel_figure
from climlatent.units import difference_units


def skill_maps(
    prediction: xr.DataArray, truth: xr.DataArray, dims: Sequence[str] | None = None
) -> Figure:
    """Maps of the RMSE, mean bias and R2 of ``prediction`` against ``truth``.

    Parameters
    ----------
    prediction, truth : xr.DataArray
        Fields on the same grid and samples; the prediction is scored in the truth's
        units (converted where both name theirs), as `climlatent.metrics` scores it.
    dims : sequence of str, optional
        Dims the scores are computed over; by default every non-spatial dim of
        ``truth`` (time, member).

    Returns
    -------
    Figure
        Three maps: RMSE (sequential from 0), bias and R2 (diverging, R2 in [-1, 1]),
        each with its colourbar.

    Examples
    --------
    >>> import climlatent as cl
    >>> ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=8, n_lon=12)
    >>> fig = cl.plot.skill_maps(ds["tas"] + 0.5, ds["tas"])
    >>> [ax.get_title() for ax in fig.axes[:3]]
    ['RMSE', 'bias', 'R$^2$']
    """
    grid = find_grid(truth, truth.name)
    dims = tuple(d for d in truth.dims if d not in grid.spatial_dims) if dims is None else dims
    predicted, observed = paired(prediction, truth)
    bias = (predicted - observed).mean(dims).rename("bias")
    bias = as_score(bias, "mean bias", difference_units(truth.attrs.get("units")))
    panels = [
        ("RMSE", rmse_map(prediction, truth, tuple(dims)), {"diverging": False, "vmin": 0.0}),
        ("bias", bias, {"diverging": True}),
        (
            "R$^2$",
            r2_map(prediction, truth, tuple(dims)),
            {"diverging": True, "vmin": -1.0, "vmax": 1.0},
        ),
    ]
    fig, axes = panel_figure(truth, 1, len(panels))
    for (title, field, scale), ax in zip(panels, axes[0], strict=True):
        map(field, ax, title=title, **scale)
    return fig


def latent_traversal(
    traversal: xr.Dataset, variable: str | None = None, anomaly: bool = False
) -> Figure:
    """Maps of the fields decoded along one latent dimension, on one colour scale.

    Parameters
    ----------
    traversal : xr.Dataset
        From ``estimator.traverse(latent, values)`` (or `AuxVAE.traverse`, titled by the
        driver): the target with a ``value`` dim.
    variable : str, optional
        The variable to map; by default the first one.
    anomaly : bool
        Map each decoded field minus their mean over the values, on a diverging scale,
        so that the latent's effect shows even on a large mean (temperature in K).

    Returns
    -------
    Figure
        One map per value, titled ``z[k] = value``, at most four to a row.

    Examples
    --------
    >>> import climlatent as cl
    >>> ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=8, n_lon=12)
    >>> est = cl.LLAAE(latent_dim=2, epochs=1, filters=(8,)).fit(ds, "tas", "psl")
    >>> fig = cl.plot.latent_traversal(est.traverse(0, [-2, 0, 2]), anomaly=True)
    >>> [ax.get_title() for ax in fig.axes[:3]]
    ['z[0] = -2', 'z[0] = +0', 'z[0] = +2']
    """
    da = traversal[variable or next(iter(traversal.data_vars))]
    if anomaly:
        long_name = da.attrs.get("long_name") or da.name
        da = (da - da.mean("value")).assign_attrs(
            long_name=f"{long_name} anomaly", units=difference_units(da.attrs.get("units"))
        )
    n = da.sizes["value"]
    n_cols = min(n, MAX_PANEL_COLUMNS)
    fig, axes = panel_figure(da, -(-n // n_cols), n_cols)
    for ax in axes.ravel()[n:]:
        ax.remove()
    latent = traversal.attrs.get("traversed_latent", "k")
    label = traversal.attrs.get("traversed_auxiliary", f"z[{latent}]")  # AuxVAE's: a driver
    titles = [f"{label} = {float(v):+.3g}" for v in da["value"].values]
    map_panels([da.isel(value=i) for i in range(n)], titles, axes.ravel()[:n])
    return fig
