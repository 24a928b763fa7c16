"""Publication-quality cartopy maps of gridded fields, one call each.

A map is a ``pcolormesh`` of a 2-D field on a projection chosen from its grid, with
coastlines (read from disk, see `climlatent.plot._cartopy`), labelled gridlines and a
colourbar labelled ``"long_name [units]"``. Fields that change sign (anomalies, errors,
biases) get a diverging colormap centred on zero with symmetric limits; others a
sequential one (``YlGnBu`` for precipitation, ``viridis`` otherwise).

Projections (`choose_projection`): a grid spanning (nearly) all longitudes gets
``PlateCarree`` centred on the grid; a regional grid wholly poleward of 15 degrees
and at most 150 degrees wide gets a ``LambertConformal`` fitted to it; any other
regional grid gets ``PlateCarree``. Regional maps are cut to the grid's extent.
Longitudes may run -180..180 or 0..360: a global field's are taken relative to the map
centre, a regional field's relative to its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cartopy.crs as ccrs
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from cartopy.mpl.geoaxes import GeoAxes
from matplotlib.figure import Figure

from climlatent.cell_edges import continuous_longitudes
from climlatent.errors import InputDataError
from climlatent.grid import GridInfo, find_grid
from climlatent.metrics.skill import in_units_of
from climlatent.plot._cartopy import coastline_feature
from climlatent.plot.charts import colourbar_label
from climlatent.units import difference_units

DIVERGING_CMAP = "RdBu_r"
SEQUENTIAL_CMAP = "viridis"
PRECIPITATION_CMAP = "YlGnBu"


@dataclass(frozen=True)
class ColourScale:
    """Colormap and limits shared by the panels of one colourbar."""

    cmap: str
    vmin: float
    vmax: float
    extend: str


def colour_scale(
    fields: Sequence[xr.DataArray],
    diverging: bool | None = None,
    cmap: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
) -> ColourScale:
    """One colour scale for all ``fields``.

    Parameters
    ----------
    fields : sequence of xr.DataArray
        The fields sharing the scale; the first one's attributes pick the colormap.
        The limits are those of the finite values (the map leaves NaN and inf blank).
    diverging : bool, optional
        Centre a diverging colormap on zero with limits ``-max|x|, max|x|``. By default
        when the fields take both signs.
    cmap, vmin, vmax : optional
        Overrides.

    Examples
    --------
    >>> import xarray as xr
    >>> colour_scale([xr.DataArray([-1.0, 3.0])])
    ColourScale(cmap='RdBu_r', vmin=-3.0, vmax=3.0, extend='neither')
    >>> colour_scale([xr.DataArray([1.0, 3.0], attrs={"standard_name": "precipitation_flux"})])
    ColourScale(cmap='YlGnBu', vmin=1.0, vmax=3.0, extend='neither')
    """
    values = np.concatenate([np.ravel(da.values) for da in fields]).astype(float)
    values = values[np.isfinite(values)]  # NaN and inf cells are left blank
    if not values.size:
        raise InputDataError(f"variable {fields[0].name!r} has no finite values to map")
    lo, hi = float(values.min()), float(values.max())
    if diverging is None:
        diverging = lo < 0 < hi
    if diverging:
        limit = max(abs(lo), abs(hi)) or 1.0
        vmin, vmax = (-limit if vmin is None else vmin), (limit if vmax is None else vmax)
        cmap = cmap or DIVERGING_CMAP
    else:
        vmin, vmax = (lo if vmin is None else vmin), (hi if vmax is None else vmax)
        standard_name = fields[0].attrs.get("standard_name", "")
        cmap = cmap or (PRECIPITATION_CMAP if "precipitation" in standard_name else SEQUENTIAL_CMAP)
    extend = {(False, False): "neither", (True, False): "min", (False, True): "max"}
    return ColourScale(cmap, vmin, vmax, extend.get((lo < vmin, hi > vmax), "both"))


def _field2d(da: xr.DataArray) -> tuple[xr.DataArray, GridInfo]:
    grid = find_grid(da, da.name)
    da = da.squeeze([d for d in da.dims if d not in grid.spatial_dims and da.sizes[d] == 1])
    extra = [d for d in da.dims if d not in grid.spatial_dims]
    if extra:
        reduced = extra[0] if len(extra) == 1 else extra  # all of them: a 2-D field
        raise InputDataError(
            f"a map needs a 2-D field, but {da.name!r} also has dims {extra}: "
            f"select or reduce them first, e.g. da.mean({reduced!r})"
        )
    return da.transpose(*grid.spatial_dims), grid


def _extent(lon: np.ndarray, lat: np.ndarray) -> tuple[float, float, float, float]:
    """``(lon_min, lon_max, lat_min, lat_max)`` of the cells, half a cell outside centres."""
    if lon.ndim == 1:
        half_lon = np.abs(np.diff(lon)).max(initial=0.0) / 2
        half_lat = np.abs(np.diff(lat)).max(initial=0.0) / 2
    else:
        half_lon = half_lat = 0.0
    return (
        float(np.nanmin(lon) - half_lon),
        float(np.nanmax(lon) + half_lon),
        float(max(np.nanmin(lat) - half_lat, -90.0)),
        float(min(np.nanmax(lat) + half_lat, 90.0)),
    )


def _is_global(extent: tuple[float, float, float, float]) -> bool:
    return extent[1] - extent[0] >= 350


def _grid_extent(da: xr.DataArray, grid: GridInfo) -> tuple[float, float, float, float]:
    """`_extent` of the grid's cells, longitudes taken without a break around the circle."""
    return _extent(continuous_longitudes(da[grid.lon].values), da[grid.lat].values)


def _centre_longitude(extent: tuple[float, float, float, float]) -> float:
    """The whole degree in [-180, 180) nearest the middle of ``extent``'s longitudes."""
    return float(np.round(((extent[0] + extent[1]) / 2 + 180) % 360 - 180))


def choose_projection(da: xr.DataArray) -> ccrs.Projection:
    """The map projection for the grid of ``da`` (rules in the module docstring).

    Examples
    --------
    >>> import climlatent as cl
    >>> ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=8, n_lon=12)
    >>> type(choose_projection(ds["tas"])).__name__
    'LambertConformal'
    """
    lon0, lon1, lat0, lat1 = _grid_extent(da, find_grid(da, da.name))
    centre_lon = _centre_longitude((lon0, lon1, lat0, lat1))
    one_hemisphere = lat0 >= 15 or lat1 <= -15
    if _is_global((lon0, lon1, lat0, lat1)) or not one_hemisphere or lon1 - lon0 > 150:
        return ccrs.PlateCarree(central_longitude=centre_lon)
    sixth = (lat1 - lat0) / 6
    return ccrs.LambertConformal(
        central_longitude=centre_lon,
        central_latitude=(lat0 + lat1) / 2,
        standard_parallels=(lat0 + sixth, lat1 - sixth),
        cutoff=-30 if lat0 >= 15 else 30,
    )


def _centred(
    field: xr.DataArray, grid: GridInfo, ax: GeoAxes
) -> tuple[xr.DataArray, ccrs.PlateCarree]:
    """``field`` with longitudes in [-180, 180) about a centre, and their CRS.

    The centre is the map's for a global field (its seam at the map's edge) and the
    field's own for a regional one, which so stays whole on axes the caller chose
    with the region across their edge.
    """
    extent = _grid_extent(field, grid)
    if _is_global(extent):
        params = ax.projection.proj4_params  # PlateCarree names its centre "pm"
        centre = float(params.get("lon_0", 0.0)) + float(params.get("pm", 0.0))
    else:
        centre = _centre_longitude(extent)
    lon = field[grid.lon]
    field = field.assign_coords({grid.lon: (lon - centre + 180) % 360 - 180})
    field = field.sortby(grid.lon) if lon.ndim == 1 else field
    return field, ccrs.PlateCarree(central_longitude=centre)


def map(
    da: xr.DataArray,
    ax: GeoAxes | None = None,
    *,
    diverging: bool | None = None,
    cmap: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
    colorbar: bool = True,
    projection: ccrs.Projection | None = None,
) -> GeoAxes:
    """Map a 2-D field with coastlines, labelled gridlines and a colourbar.

    Parameters
    ----------
    da : xr.DataArray
        A field on a lat/lon grid (found through CF metadata); size-1 extra dims are
        dropped, other extra dims (time, member) must be selected or reduced first.
    ax : GeoAxes, optional
        Axes to draw on; by default a new figure on `choose_projection`.
    diverging, cmap, vmin, vmax : optional
        Colour scale overrides, see `colour_scale`.
    title : str, optional
        Axes title.
    colorbar : bool
        Add a colourbar labelled ``"long_name [units]"``.
    projection : cartopy.crs.Projection, optional
        Projection of a new figure (ignored when ``ax`` is given).

    Returns
    -------
    GeoAxes
        The map's axes; ``ax.figure`` is its Figure.

    Examples
    --------
    >>> import climlatent as cl
    >>> ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=8, n_lon=12)
    >>> ax = cl.plot.map(ds["tas"].mean("time") - ds["tas"].mean())
    >>> ax.collections[0].get_clim()[0] == -ax.collections[0].get_clim()[1]
    True
    """
    field, grid = _field2d(da)
    if ax is None:
        fig = plt.figure(figsize=(7, 5), layout="constrained")
        ax = fig.add_subplot(projection=projection or choose_projection(field))
    scale = colour_scale([field], diverging, cmap, vmin, vmax)
    centred, data_crs = _centred(field, grid, ax)
    lon, lat = centred[grid.lon].values, centred[grid.lat].values
    mesh = ax.pcolormesh(
        lon,
        lat,
        centred.values,
        transform=data_crs,
        cmap=scale.cmap,
        vmin=scale.vmin,
        vmax=scale.vmax,
        shading="nearest",
    )
    extent = _extent(lon, lat)
    if _is_global(extent):
        ax.set_global()
    else:
        ax.set_extent(extent, crs=data_crs)
    coastline = coastline_feature()
    if coastline is not None:
        ax.add_feature(coastline, linewidth=0.6)
    gridlines = ax.gridlines(
        draw_labels=True,
        x_inline=False,
        y_inline=False,
        rotate_labels=False,
        linewidth=0.3,
        color="grey",
        alpha=0.6,
    )
    gridlines.top_labels = gridlines.right_labels = False
    if title is not None:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(
            mesh, ax=ax, shrink=0.8, extend=scale.extend, label=colourbar_label(field)
        )
    return ax


def map_panels(
    fields: Sequence[xr.DataArray],
    titles: Sequence[str],
    axes: Sequence[GeoAxes],
    **scale: bool | str | float | None,
) -> None:
    """Map ``fields`` on ``axes`` with one shared colour scale and one colourbar.

    Parameters
    ----------
    fields, titles, axes : sequence
        One field, title and GeoAxes per panel.
    **scale
        ``diverging``, ``cmap``, ``vmin``, ``vmax``: see `colour_scale`.

    Examples
    --------
    >>> import climlatent as cl
    >>> ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=8, n_lon=12)
    >>> fig, axes = panel_figure(ds["tas"], 1, 2)
    >>> days = [ds["tas"].isel(time=0), ds["tas"].isel(time=-1)]
    >>> map_panels(days, ["first day", "last day"], axes.ravel())
    >>> len(fig.axes)  # two maps and their colourbar
    3
    """
    fields = [_field2d(da)[0] for da in fields]
    shared = colour_scale(fields, **scale)
    limits = {"cmap": shared.cmap, "vmin": shared.vmin, "vmax": shared.vmax}
    for field, title, ax in zip(fields, titles, axes, strict=True):
        map(field, ax, title=title, colorbar=False, **limits)
    axes[0].figure.colorbar(
        axes[0].collections[0],
        ax=list(axes),
        shrink=0.8,
        extend=shared.extend,
        label=colourbar_label(fields[0]),
    )


def panel_figure(da: xr.DataArray, n_rows: int, n_cols: int) -> tuple[Figure, np.ndarray]:
    """A figure of ``n_rows x n_cols`` map axes on the projection chosen for ``da``.

    Examples
    --------
    >>> import climlatent as cl
    >>> ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=8, n_lon=12)
    >>> panel_figure(ds["tas"], 2, 3)[1].shape
    (2, 3)
    """
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(4.5 * n_cols, 3.6 * n_rows),
        subplot_kw={"projection": choose_projection(da)},
        layout="constrained",
        squeeze=False,
    )
    return fig, axes


def compare_maps(
    truth: xr.DataArray,
    model: xr.DataArray,
    baseline: xr.DataArray | None = None,
    labels: Sequence[str] = ("truth", "model", "baseline"),
) -> Figure:
    """Truth, model (and baseline) maps on one scale; their differences from the truth.

    Parameters
    ----------
    truth, model : xr.DataArray
        2-D fields on the same grid, e.g. time means or return levels.
    baseline : xr.DataArray, optional
        A baseline model's field, mapped beside the model. The models are mapped in
        the truth's units (converted where both name theirs).
    labels : sequence of str
        Panel titles for truth, model and baseline.

    Returns
    -------
    Figure
        Top row: the fields with a shared colour scale. Bottom row, under each model:
        ``model - truth`` on a shared, zero-centred diverging scale.

    Examples
    --------
    >>> import climlatent as cl
    >>> ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=8, n_lon=12)
    >>> truth = ds["tas"].mean("time")
    >>> fig = cl.plot.compare_maps(truth, truth + 0.5, baseline=truth - 1.0)
    >>> [ax.get_title() for ax in fig.axes[:5]]
    ['truth', 'model', 'baseline', 'model - truth', 'baseline - truth']
    """
    models = list(in_units_of((model,) if baseline is None else (model, baseline), truth))
    fig, axes = panel_figure(truth, 2, len(models) + 1)
    map_panels([truth, *models], labels[: len(models) + 1], axes[0])
    differences = [
        (m - truth).assign_attrs(
            long_name=f"difference from {labels[0]}",
            units=difference_units(truth.attrs.get("units")),
        )
        for m in models
    ]
    titles = [f"{label} - {labels[0]}" for label in labels[1 : len(models) + 1]]
    map_panels(differences, titles, axes[1, 1:], diverging=True)
    axes[1, 0].remove()
    return fig


def return_level_maps(levels: xr.DataArray) -> Figure:
    """One map per return period of GEV return levels, on one colour scale.

    Parameters
    ----------
    levels : xr.DataArray
        From `climlatent.metrics.return_level`: a 2-D field, or one with a
        ``return_period`` dim.

    Returns
    -------
    Figure

    Examples
    --------
    >>> import climlatent as cl
    >>> ds = cl.datasets.synthetic_circulation(n_members=1, n_years=6, n_lat=8, n_lon=12)
    >>> maxima = cl.metrics.annual_maxima(ds["tas"].isel(member=0))
    >>> params = cl.metrics.fit_gev(maxima, method="lmoments")
    >>> fig = cl.plot.return_level_maps(cl.metrics.return_level(params, [5, 50]))
    >>> [ax.get_title() for ax in fig.axes[:2]]
    ['5-year return level', '50-year return level']
    """
    if "return_period" not in levels.dims:
        levels = levels.expand_dims("return_period")
    panels = [levels.sel(return_period=rp) for rp in levels["return_period"].values]
    fig, axes = panel_figure(levels, 1, len(panels))
    titles = [f"{float(rp):g}-year return level" for rp in levels["return_period"].values]
    map_panels(panels, titles, axes[0], diverging=False)
    return fig
