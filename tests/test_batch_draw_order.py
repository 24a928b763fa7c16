"""Draws of an ensemble do not depend on how its files store or name the member dim."""

import numpy as np
import pytest
import xarray as xr

import climlatent as cl
from climlatent import batch
from climlatent.errors import InputDataError
from climlatent.grid import find_member
from climlatent.metrics import rank_histogram
from climlatent.zarr_store import read_manifest


@pytest.fixture(scope="module")
def world():
    world = cl.datasets.synthetic_biogeochem(n_members=3, n_years=2, n_fine_lat=8, n_fine_lon=8)
    coarse = world.coarse.assign_coords(member=["r1", "r2", "r3"])
    fine = world.fine.assign_coords(member=["r1", "r2", "r3"])
    est = cl.ProxyDownscaler(epochs=1, progress=False, noise=True, group="time.season")
    return coarse, est.fit(coarse, fine, "chl", proxies={"tos": "exponential"})


def test_draws_of_a_member_do_not_depend_on_the_stored_order_of_its_dims(world, tmp_path):
    """Samples were numbered in the stored order: (time, member) drew other noise for
    the same member and day (relative differences up to 278), means bitwise equal."""
    coarse, est = world
    expected = est.downscale(coarse, n_samples=2, seed=3)["chl"]
    stored = coarse.transpose("time", "member", ...)
    out = est.downscale(stored, n_samples=2, seed=3)["chl"]
    assert out.dims == ("realization", "time", "member", "lat", "lon")
    xr.testing.assert_identical(out.transpose(*expected.dims), expected)
    est.save(tmp_path / "m.clm")
    cl.io.to_netcdf(stored, tmp_path / "ens.nc")
    with batch.open_members([tmp_path / "ens.nc"], ["tos"]) as ds:
        assert ds["tos"].dims[0] == "member"  # as documented
    store = batch.downscale_to_zarr(
        tmp_path / "m.clm", tmp_path / "ens.nc", tmp_path / "o.zarr", n_samples=2, seed=3,
        progress=False,
    )  # fmt: skip
    np.testing.assert_array_equal(xr.open_zarr(store)["chl"].values, expected.values)


def test_regions_follow_the_members_of_an_ensemble_dim_of_any_name(world, tmp_path):
    """With draws, a dim 'ensemble' lost to the draws' 'realization': 3 regions of all
    members each, not one member each."""
    coarse, est = world
    est.save(tmp_path / "m.clm")
    renamed = coarse.rename(member="ensemble")
    renamed["ensemble"].attrs = {}
    renamed.to_netcdf(tmp_path / "ens.nc")
    store = batch.downscale_to_zarr(
        tmp_path / "m.clm", tmp_path / "ens.nc", tmp_path / "o.zarr", n_samples=2,
        time_per_region=8, progress=False,
    )  # fmt: skip
    manifest = read_manifest(store)
    assert manifest["regions_dims"] == ["ensemble", "time"]
    assert len(manifest["regions"]) == 3 * 3  # 24 months in regions of 8, member by member


def test_an_input_dim_named_like_the_draws_is_refused(world):
    coarse, est = world
    with pytest.raises(InputDataError, match="a dim 'realization', the dim of the draws"):
        est.downscale(coarse.rename(member="realization"), n_samples=2)


def test_a_member_asked_for_twice_is_refused(world, tmp_path):
    coarse, _ = world
    cl.io.to_netcdf(coarse, tmp_path / "ens.nc")
    with pytest.raises(InputDataError, match=r"members names \['r1'\] more than once"):
        batch.open_members([tmp_path / "ens.nc"], ["tos"], members=["r1", "r2", "r1"])


def test_draws_say_their_seed_and_describe_their_dim(world):
    coarse, est = world
    out = est.downscale(coarse, n_samples=2, seed=7)
    assert "downscale(coarse, n_samples=2, seed=7)" in out.attrs["history"]  # seed 1 and 2 alike
    assert out["realization"].attrs == {
        "standard_name": "realization",
        "long_name": "draw of the conditional distribution",
        "units": "1",
    }


def test_draws_beside_an_ensemble_dim_leave_it_the_members_role(world, tmp_path):
    """'realization' before 'ensemble' in the member names: the draws were taken for the
    members, the written file naming the draws' axis CF's realization and the members'
    nothing. Each member's draws stay its own: the ensemble dim is not pooled."""
    coarse, est = world
    renamed = coarse.rename(member="ensemble")
    renamed["ensemble"].attrs = {}
    out = est.downscale(renamed, n_samples=2, seed=3)
    assert out["chl"].dims == ("realization", "ensemble", "time", "lat", "lon")
    assert find_member(out) == "ensemble"
    back = xr.open_dataset(cl.io.to_netcdf(out, tmp_path / "draws.nc"))
    assert back["ensemble"].attrs == {"standard_name": "realization"}
    assert back["realization"].attrs["standard_name"] == "realization"
    expected = est.downscale(coarse, n_samples=2, seed=3)["chl"]
    np.testing.assert_array_equal(back["chl"].values, expected.values)
    median = est.downscale(renamed)["chl"]
    histogram = rank_histogram(out["chl"], median)  # over the draws, member by member
    assert histogram.sizes["rank"] == 3


def test_a_member_selected_from_a_realization_dim_is_refused_until_renamed(world):
    """Its scalar coordinate 'realization' met the draws' dim: xarray's ValueError
    "dimension 'realization' already exists as a scalar variable". Renamed, the member
    draws what it draws in its ensemble."""
    coarse, est = world
    one = coarse.rename(member="realization").isel(realization=1)
    with pytest.raises(InputDataError, match="a coordinate 'realization', the dim of the draws"):
        est.downscale(one, n_samples=2, seed=3)
    alone = est.downscale(one.rename(realization="member"), n_samples=2, seed=3)["chl"]
    together = est.downscale(coarse, n_samples=2, seed=3)["chl"]
    np.testing.assert_array_equal(alone.values, together.isel(member=1).values)


def test_members_and_periods_run_apart_draw_what_they_draw_together(world):
    """Numbered by position, each member run on its own drew the first member's noise
    (noise correlation 1.0 between members; likewise between periods run apart)."""
    coarse, est = world
    together = est.downscale(coarse, n_samples=2, seed=3)["chl"]
    for part in (
        {"member": ["r2"]},
        {"member": ["r3"]},
        {"member": ["r1"], "time": slice(0, 5)},
        {"member": ["r1"], "time": slice(5, 10)},
    ):
        alone = est.downscale(coarse.isel(time=part.get("time", slice(None))).sel(
            member=part["member"]), n_samples=2, seed=3)["chl"]  # fmt: skip
        expected = together.sel(member=part["member"]).isel(time=part.get("time", slice(None)))
        xr.testing.assert_equal(alone, expected)
    noise = np.log(together / est.downscale(coarse)["chl"])
    first, second = (noise.sel(member=m).values.ravel() for m in ("r1", "r2"))
    valid = np.isfinite(first) & np.isfinite(second)
    assert abs(np.corrcoef(first[valid], second[valid])[0, 1]) < 0.05
