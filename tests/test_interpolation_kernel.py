"""The downscaler's interpolation kernel is the bilinear regridding, on any grid."""

import numpy as np
import pytest
import xarray as xr

from climlatent.batching import FieldLayout
from climlatent.interpolation_kernel import interpolation_kernel
from climlatent.regrid import Regridder


def field(lat, lon):
    return xr.DataArray(
        np.ones((lat.size, lon.size)),
        dims=("lat", "lon"),
        coords={"lat": lat, "lon": lon},
        name="t",
    )


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        (np.arange(-10, 11, 2.0), np.arange(0, 21, 2.0)),  # isotropic
        (np.arange(-10, 11, 1.0), np.arange(0, 31, 5.0)),  # 1 x 5 degrees
        (np.arange(65, 88, 2.5), np.arange(0, 30.1, 2.5)),  # polar rows, narrow in longitude
    ],
    ids=["isotropic", "1x5", "polar"],
)
def test_the_kernel_equals_the_bilinear_weights(lat, lon):
    """The 9 nearest coarse cells by distance missed bilinear corners where cells are
    narrow one way: 136 of 667 polar fine cells, weights up to 0.23 off."""
    coarse = field(lat, lon)
    fine = field(np.linspace(lat[2], lat[-3], 23), np.linspace(lon[2], lon[-3], 29))
    neighbours, weights = interpolation_kernel(
        FieldLayout.from_data(coarse), FieldLayout.from_data(fine)
    )
    kernel = np.zeros((fine.size, coarse.size))
    np.put_along_axis(kernel, neighbours, weights, axis=1)
    bilinear = Regridder(coarse, fine, "bilinear", engine="climlatent").weights.toarray()
    np.testing.assert_allclose(kernel, bilinear, atol=1e-12)
    assert (np.unique(neighbours[0]).size, neighbours.shape[1]) == (9, 9)  # 9 distinct cells


def test_a_fine_cell_without_valid_corners_takes_its_nearest_coarse_cell():
    lat, lon = np.arange(0.0, 10, 2.0), np.arange(0.0, 10, 2.0)
    coarse = field(lat, lon).where(lambda da: (da.lat < 4) | (da.lon > 4))  # a land corner
    fine = field(np.array([5.0, 5.5]), np.array([1.0, 1.5]))  # inside the land corner
    neighbours, weights = interpolation_kernel(
        FieldLayout.from_data(coarse), FieldLayout.from_data(fine)
    )
    valid = np.argwhere(np.isfinite(coarse.values))
    nearest = np.argmin(np.hypot(lat[valid[:, 0]] - 5.0, lon[valid[:, 1]] - 1.0))
    assert (neighbours[0, 0], weights[0, 0], weights[0, 1:].sum()) == (nearest, 1.0, 0.0)
