"""Figures of climlatent's fields, skill and latent spaces: each call returns matplotlib.

Maps (`map`, `compare_maps`, `return_level_maps`, `skill_maps`, `latent_traversal`)
are cartopy maps with coastlines drawn from data shipped in the package, so they render
with no network. Importing this module also points cartopy's ``pre_existing_data_dir``
at that data, unless the user set one (see `use_vendored_data`). Needs cartopy
(``pip install 'climlatent[maps]'``).

Examples
--------
>>> import climlatent as cl
>>> import climlatent.plot
>>> ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=8, n_lon=12)
>>> ax = cl.plot.map(ds["pr"].mean(("member", "time")))
>>> ax.figure.axes[-1].get_ylabel()
'precipitation [kg m-2 s-1]'
"""

from climlatent.plot._cartopy import coastline_feature, use_vendored_data
from climlatent.plot.diagnostics import (
    aggregate_posterior,
    latent_factor_heatmap,
    latent_factor_scatter,
    latent_traversal,
    skill_maps,
    training_history,
)
from climlatent.plot.maps import (
    choose_projection,
    colour_scale,
    colourbar_label,
    compare_maps,
    map,
    map_panels,
    panel_figure,
    return_level_maps,
)

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
