"""Offline map data for cartopy: coastlines from disk, never downloaded.

cartopy downloads Natural Earth shapefiles on first use, which fails where there is no
network (HPC compute nodes). climlatent ships the public-domain Natural Earth 1:110m
coastline in ``climlatent/data/cartopy`` (see the README there) laid out as cartopy's
``pre_existing_data_dir`` expects, and draws coastlines straight from the first
shapefile it finds on disk:

1. the Natural Earth 110m coastline under a ``pre_existing_data_dir`` the user set;
2. the vendored Natural Earth 110m coastline;
3. the crude GSHHS coastline (``GSHHS_c_L1``) under the user's directory or Debian's
   ``python-cartopy-data`` (``/usr/share/cartopy/data``).
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

from climlatent.errors import require_extra

require_extra("cartopy", "maps", "a map of climlatent.plot")

import cartopy  # noqa: E402 (after the one-line refusal of a missing cartopy)
import cartopy.crs as ccrs  # noqa: E402
import cartopy.feature as cfeature  # noqa: E402
from cartopy.io import shapereader  # noqa: E402

VENDORED_DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "cartopy"
SYSTEM_DATA_DIR = Path("/usr/share/cartopy/data")  # Debian's python-cartopy-data
NE_COASTLINE = Path("shapefiles", "natural_earth", "physical", "ne_110m_coastline.shp")
GSHHS_COASTLINE = Path("shapefiles", "gshhs", "c", "GSHHS_c_L1.shp")


def _user_data_dir() -> Path | None:
    """The ``pre_existing_data_dir`` the user (or a site config) set, if any."""
    configured = Path(cartopy.config["pre_existing_data_dir"])
    return configured if configured != Path() and configured.is_dir() else None


def use_vendored_data() -> Path:
    """Point cartopy's ``pre_existing_data_dir`` at climlatent's vendored shapefiles.

    Then ``ax.coastlines()`` and ``cartopy.feature.COASTLINE`` (110m) work offline too,
    on any axes. A directory the user already set (``CARTOPY_DATA_DIR`` or
    ``cartopy.config``) is left as it is.

    Returns
    -------
    pathlib.Path
        The ``pre_existing_data_dir`` in force afterwards.

    Examples
    --------
    >>> import cartopy
    >>> use_vendored_data() == Path(cartopy.config["pre_existing_data_dir"])
    True
    """
    if _user_data_dir() is None:
        cartopy.config["pre_existing_data_dir"] = VENDORED_DATA_DIR
    return Path(cartopy.config["pre_existing_data_dir"])


def coastline_path() -> Path | None:
    """The coastline shapefile that maps draw: see the module docstring for the order.

    Returns
    -------
    pathlib.Path or None
        None when no coastline shapefile is on disk.

    Examples
    --------
    >>> coastline_path().name
    'ne_110m_coastline.shp'
    """
    user = _user_data_dir()
    candidates = [root / NE_COASTLINE for root in (user, VENDORED_DATA_DIR) if root]
    candidates += [root / GSHHS_COASTLINE for root in (user, SYSTEM_DATA_DIR) if root]
    return next((path for path in candidates if path.is_file()), None)


@lru_cache(maxsize=4)
def _coastline(path: Path) -> cfeature.ShapelyFeature:
    return cfeature.ShapelyFeature(
        list(shapereader.Reader(path).geometries()),
        ccrs.PlateCarree(),
        edgecolor="black",
        facecolor="none",
    )


def coastline_feature() -> cfeature.ShapelyFeature | None:
    """The coastline as a cartopy feature read from disk (no download is ever tried).

    Returns
    -------
    cartopy.feature.ShapelyFeature or None
        None, with a warning, when no coastline shapefile is found (a broken install:
        the vendored files are package data).

    Examples
    --------
    >>> len(list(coastline_feature().geometries())) > 100
    True
    """
    path = coastline_path()
    if path is None:
        warnings.warn(
            f"no coastline shapefile found (looked for {NE_COASTLINE} under "
            f"{VENDORED_DATA_DIR}); maps are drawn without coastlines",
            stacklevel=3,
        )
        return None
    return _coastline(path)
