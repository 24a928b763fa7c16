"""A stochastic downscaling draws each sample's noise from its member's label and its
date, however the data reached it: a member selected as a scalar
(``coarse.sel(member="r2")``) is still that member, and a date is the same date decoded
by xarray (datetime64) or by ``climlatent.io`` (cftime, calendar ``standard``).
"""

from __future__ import annotations

import cftime
import numpy as np
import pytest
import xarray as xr

import climlatent as cl
from climlatent.draw_addresses import _seconds, row_keys


@pytest.fixture(scope="module")
def world():
    return cl.datasets.synthetic_biogeochem(
        n_members=2, n_years=1, n_fine_lat=8, n_fine_lon=8, calendar="standard"
    )


@pytest.fixture(scope="module")
def noisy(world):
    return cl.ProxyDownscaler(epochs=1, noise=True, progress=False).fit(
        world.coarse, world.fine, "chl", proxies={"tos": "exponential"}
    )


def test_scalar_member_draws_its_own_noise(world, noisy):
    coarse = world.coarse
    whole = noisy.downscale(coarse, n_samples=2, seed=1)["chl"]
    first, second = coarse.member.values
    alone = {
        m: noisy.downscale(coarse.sel(member=m), n_samples=2, seed=1)["chl"]
        for m in (first, second)
    }
    # the members' draws differ (they were equal: a correlation of 1 between members)
    assert not np.allclose(alone[first].values, alone[second].values, equal_nan=True)
    for m in (first, second):  # and are those of the ensemble downscaled whole
        np.testing.assert_array_equal(alone[m].values, whole.sel(member=m).values)


def test_draws_same_for_datetime64_and_cftime_standard_dates(world, noisy):
    coarse = world.coarse
    assert coarse.time.values[0].calendar == "standard"
    as_numpy = coarse.convert_calendar("proleptic_gregorian", use_cftime=False)
    assert as_numpy.time.dtype.kind == "M"  # as xr.open_dataset decodes the files
    drawn = noisy.downscale(coarse, n_samples=2, seed=1)["chl"]
    again = noisy.downscale(as_numpy, n_samples=2, seed=1)["chl"]
    np.testing.assert_array_equal(drawn.values, again.values)


def test_scalar_member_keys_plain_arrays():
    """`row_keys` itself: a scalar member shifts every address by its label's hash."""
    time = xr.date_range("2000-01-01", periods=3, calendar="noleap", use_cftime=True)
    base = xr.DataArray(np.zeros(3), dims="time", coords={"time": time})
    keys = {m: row_keys(base.assign_coords(member=m))[0] for m in ("r1i1p1f1", "r2i1p1f1")}
    assert set(keys["r1i1p1f1"]).isdisjoint(keys["r2i1p1f1"])


def test_a_gregorian_date_has_one_address_however_it_is_decoded():
    dates = ["1850-01-01", "1960-06-01T06:00", "2000-01-01", "2000-03-01"]
    numpy_dates = xr.DataArray(np.array(dates, dtype="datetime64[ns]"), dims="time")
    for calendar in ("standard", "gregorian", "proleptic_gregorian"):
        cf_dates = xr.DataArray(
            [
                cftime.datetime(1850, 1, 1, calendar=calendar),
                cftime.datetime(1960, 6, 1, 6, calendar=calendar),
                cftime.datetime(2000, 1, 1, calendar=calendar),
                cftime.datetime(2000, 3, 1, calendar=calendar),
            ],
            dims="time",
        )
        np.testing.assert_array_equal(_seconds(cf_dates), _seconds(numpy_dates))
