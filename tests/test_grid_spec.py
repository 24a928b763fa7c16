"""CDO grid specs: centres as ``cdo griddes`` (CDO 2.1.1) prints them, edges, errors.

The expected numbers are CDO's (``xfirst``/``xinc``/``yfirst``/``yinc`` of
``cdo griddes -const,1,<spec>``); tests/test_regrid_cdo.py checks them against a
running CDO when one is installed.
"""

import numpy as np
import pytest

from climlatent.errors import InputDataError
from climlatent.grid import cell_area
from climlatent.grid_spec import grid_from_spec, is_grid_spec


@pytest.mark.parametrize(
    ("spec", "xfirst", "xinc", "nx", "yfirst", "yinc", "ny"),
    [
        ("r360x180", 0.0, 1.0, 360, -89.5, 1.0, 180),
        ("r180x90", 0.0, 2.0, 180, -89.0, 2.0, 90),
        ("r144x73", 0.0, 2.5, 144, -90.0, 2.5, 73),  # odd: the poles are centres
        ("r128x64", 0.0, 2.8125, 128, -88.59375, 2.8125, 64),
        ("r7x5", 0.0, 360 / 7, 7, -90.0, 45.0, 5),
        ("global_1", -179.5, 1.0, 360, -89.5, 1.0, 180),
        ("global_0.5", -179.75, 0.5, 720, -89.75, 0.5, 360),
    ],
)
def test_centres_are_cdos(spec, xfirst, xinc, nx, yfirst, yinc, ny):
    grid = grid_from_spec(spec)
    np.testing.assert_allclose(grid.lon.values, xfirst + xinc * np.arange(nx), rtol=0, atol=1e-12)
    np.testing.assert_allclose(grid.lat.values, yfirst + yinc * np.arange(ny), rtol=0, atol=1e-12)


@pytest.mark.parametrize("spec", ["r180x90", "r144x73", "global_2", "r1x2"])
def test_cells_tile_the_sphere(spec):
    """Edges halfway between centres, clipped at the poles: the cells cover the sphere
    once (their areas sum to 4 pi R^2), and each centre lies within its cell."""
    grid = grid_from_spec(spec)
    area = cell_area(grid, radius=1.0)
    np.testing.assert_allclose(float(area.sum()), 4 * np.pi, rtol=1e-12)
    for name in ("lat", "lon"):
        bounds = grid[f"{name}_bnds"].values
        assert np.all(bounds[:, 0] <= grid[name].values) and np.all(
            grid[name].values <= bounds[:, 1]
        )
        np.testing.assert_array_equal(bounds[1:, 0], bounds[:-1, 1])
    assert grid.lat_bnds.values.min() == -90.0 and grid.lat_bnds.values.max() == 90.0
    assert (
        grid.lat.attrs["standard_name"] == "latitude" and grid.lon.attrs["units"] == "degrees_east"
    )


def test_odd_latitude_counts_have_half_cells_at_the_poles():
    bounds = grid_from_spec("r144x73").lat_bnds.values
    np.testing.assert_allclose(
        bounds[[0, 1, -1]], [[-90.0, -88.75], [-88.75, -86.25], [88.75, 90.0]]
    )


@pytest.mark.parametrize("ny", [73, 79, 339, 677, 1431])
def test_odd_latitude_counts_have_centres_exactly_at_the_poles(ny):
    """-90 + 338 * (180 / 338) is 90 + 3e-14: r4x339 had a latitude beyond the pole,
    which climlatent's own grid check then refused (r4x79: 90 - 3e-14, not the pole)."""
    lat = grid_from_spec(f"r4x{ny}").lat.values
    assert lat[0] == -90.0 and lat[-1] == 90.0
    np.testing.assert_allclose(np.diff(lat), 180 / (ny - 1), rtol=1e-12)
    np.testing.assert_allclose(float(cell_area(grid_from_spec(f"r4x{ny}"), 1.0).sum()), 4 * np.pi)


def test_is_grid_spec_only_recognises_the_forms():
    assert all(map(is_grid_spec, ["r180x90", "r1x2", "global_2", "global_0.25", "global_.5"]))
    assert not any(map(is_grid_spec, ["r180", "R180x90", "r180x90.nc", "global", "grid.nc"]))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("r0x90", "grid spec 'r0x90': needs at least 1 longitude and 2 latitudes, not 0 x 90"),
        ("r180x1", "grid spec 'r180x1': needs at least 1 longitude and 2 latitudes"),
        ("global_0.7", "grid spec 'global_0.7': the increment 0.7 degrees must divide 180"),
        ("global_0", "grid spec 'global_0': the increment 0 degrees must divide 180"),
        ("n32", "unknown grid spec 'n32': expected r<NX>x<NY> (e.g. r180x90) or global_<INC>"),
    ],
)
def test_bad_specs_are_refused_by_name(spec, message):
    with pytest.raises(InputDataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        grid_from_spec(spec)
