"""Figures of climlatent's fields, skill and latent spaces: each call returns matplotlib.

Maps (`map`, `compare_maps`, `return_level_maps`, `skill_maps`, `latent_traversal`)
are cartopy maps with coastlines drawn from data shipped in the package, so they render
with no network. Importing this module also points cartopy's ``pre_existing_data_dir``
at that data, unless the user set one (see `use_vendored_data`). They need cartopy
(``pip install 'climlatent[maps]'``); without it they raise `MissingDependencyError`,
saying so, and the figures that are no maps (`training_history`,
`aggregate_posterior`, `latent_factor_heatmap`, `latent_factor_scatter`) still draw.

Examples
--------
>>> import climlatent as cl
>>> import climlatent.plot
>>> ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=8, n_lon=12)
>>> ax = cl.plot.map(ds["pr"].mean(("member", "time")))
>>> ax.figure.axes[-1].get_ylabel()
'precipitation [kg m-2 s-1]'
"""

from climlatent.errors import MissingDependencyError
from climlatent.plot.charts import (
    aggregate_posterior,
    colourbar_label,
    latent_factor_heatmap,
    latent_factor_scatter,
    training_history,
)

_maps_missing: MissingDependencyError | None = None
try:
    from climlatent.plot._cartopy import coastline_feature, use_vendored_data
    from climlatent.plot.diagnostics import latent_traversal, skill_maps
    from climlatent.plot.maps import (
        choose_projection,
        colour_scale,
        compare_maps,
        map,
        map_panels,
        panel_figure,
        return_level_maps,
    )
except MissingDependencyError as err:  # the charts draw without cartopy
    _maps_missing = err
else:
    use_vendored_data()

__all__ = [
    "aggregate_posterior",
    "choose_projection",
    "coastline_feature",
    "colour_scale",
    "colourbar_label",
    "compare_maps",
    "latent_factor_heatmap",
    "latent_factor_scatter",
    "latent_traversal",
    "map",
    "map_panels",
    "panel_figure",
    "return_level_maps",
    "skill_maps",
    "training_history",
    "use_vendored_data",
]


def __getattr__(name: str):
    """A map's name without cartopy: the `MissingDependencyError` saying to install it."""
    if _maps_missing is not None and name in __all__:
        raise MissingDependencyError(str(_maps_missing))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
