"""weather_generator gives the same realisations for the same seed in any grid order.

The simulated target and the resampled residuals ``target - emulate(proxy)`` are added
cell by cell: both must be on the fitted grid in one order, whatever the latitude order
or longitude convention of the input (the residuals came back flipped for latitude
north to south, and longitudes 0..360 against a -180..180 fit failed with a raw reshape
error).
"""

import numpy as np
import pytest
import xarray as xr

import climlatent as cl
from climlatent.errors import InputDataError
from climlatent.estimators.weather import weather_generator

METHODS = ["var", "bootstrap"]


def _lat_reversed(ds: xr.Dataset) -> xr.Dataset:
    return ds.isel(lat=slice(None, None, -1))


def _lon_360(ds: xr.Dataset) -> xr.Dataset:
    """Longitudes relabelled into [0, 360) (bounds alike) and sorted."""
    lon = ds["lon"]
    out = ds.assign_coords(lon=(lon.dims, lon.values % 360.0, lon.attrs))
    if "lon_bnds" in ds.variables:
        out = out.assign_coords(lon_bnds=(ds["lon_bnds"].dims, ds["lon_bnds"].values % 360.0))
    return out.sortby("lon")


LAYOUTS = {
    "lat_reversed": _lat_reversed,
    "lon_360": _lon_360,
    "both": lambda ds: _lon_360(_lat_reversed(ds)),
}


@pytest.fixture(scope="module")
def world():
    ds = cl.datasets.synthetic_circulation(n_members=2, n_years=1, n_lat=6, n_lon=8, seed=2)
    est = cl.EOFRegression(n_proxy_eofs=3, n_target_eofs=4).fit(ds, "tas", "psl")
    return ds, est


def _assert_same(gen: xr.Dataset, ref: xr.Dataset) -> None:
    """Same coordinates (after sorting latitude) and the same numbers."""
    pair = gen["tas"].sortby("lat"), ref["tas"].sortby("lat")
    for a, b in (xr.align(*pair, join="exact"), (gen["psl_pc"], ref["psl_pc"])):
        assert a.dims == b.dims
        np.testing.assert_allclose(a.values, b.values, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("method", METHODS)
def test_same_realisations_in_another_grid_order(world, method, layout):
    ds, est = world
    ref = weather_generator(est, ds, 2, method=method, block_length=20, seed=5)
    gen = weather_generator(est, LAYOUTS[layout](ds), 2, method=method, block_length=20, seed=5)
    _assert_same(gen, ref)


@pytest.mark.parametrize("method", METHODS)
def test_same_realisations_for_a_model_fitted_north_to_south(world, method):
    ds, _ = world
    era5 = _lon_360(_lat_reversed(ds))
    est = cl.EOFRegression(n_proxy_eofs=3, n_target_eofs=4).fit(era5, "tas", "psl")
    ref = weather_generator(est, era5, 2, method=method, block_length=20, seed=7)
    gen = weather_generator(est, ds, 2, method=method, block_length=20, seed=7)
    assert list(gen["lat"].values) == list(era5["lat"].values)  # the fitted layout
    _assert_same(gen, ref)


def test_target_on_another_grid_refused_naming_it(world):
    ds, _ = world
    # target and proxy on grids of their own, so that only the target's can move
    two = xr.Dataset({"psl": ds["psl"], "tas": ds["tas"].rename(lat="tlat", lon="tlon")})
    est = cl.EOFRegression(n_proxy_eofs=3, n_target_eofs=4).fit(two, "tas", "psl")
    shifted = two.assign_coords(tlat=two["tlat"] + 1.0)
    with pytest.raises(InputDataError, match="'tas'"):
        weather_generator(est, shifted, 1, block_length=20, seed=1)
