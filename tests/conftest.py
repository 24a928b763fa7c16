"""Shared fixtures: small synthetic climates with known truth."""

import numpy as np
import pytest
import xarray as xr

import climlatent as cl


@pytest.fixture(scope="session")
def circulation() -> xr.Dataset:
    """Two members, eight years of daily data on a small grid (fits in seconds)."""
    return cl.datasets.synthetic_circulation(n_members=2, n_years=8, n_lat=8, n_lon=12, seed=1)


@pytest.fixture(scope="session")
def split(circulation):
    """First six years for training, last two held out."""
    years = circulation.time.dt.year
    cut = int(years[0]) + 6
    return circulation.sel(time=years < cut), circulation.sel(time=years >= cut)


@pytest.fixture(scope="session")
def fitted_eof(split):
    train, _ = split
    return cl.EOFRegression(n_proxy_eofs=6, n_target_eofs=12).fit(train, "pr", "psl")


def rectilinear(n_lat=6, n_lon=8, n_time=5, seed=0, **attrs) -> xr.DataArray:
    """A random field on a regular lat/lon grid with CF attributes."""
    rng = np.random.default_rng(seed)
    time = xr.date_range("2000-01-01", periods=n_time, calendar="noleap", use_cftime=True)
    lat = np.linspace(-50, 50, n_lat)
    lon = np.linspace(0, 350, n_lon)
    return xr.DataArray(
        rng.normal(size=(n_time, n_lat, n_lon)),
        dims=("time", "lat", "lon"),
        coords={
            "time": time,
            "lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east"}),
        },
        name="tas",
        attrs={"units": "K", "standard_name": "air_temperature", **attrs},
    )
