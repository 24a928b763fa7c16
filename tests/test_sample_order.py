"""Fields paired row by row stack their samples in one order, whatever each stores.

A proxy stored (time, member) beside a target stored (member, time) has the same
sample dims, so every check passed; but each field's matrix followed its own order,
and row k of one was another member's day in the other: EOFRegression learnt a map
6 K off where the truth is exact, a seasonal ProxyDownscaler 4.9 K instead of 0.5 K.
"""

import numpy as np
import pytest
import xarray as xr

import climlatent as cl


def time_first(da: xr.DataArray) -> xr.DataArray:
    return da.transpose("time", "member", ...)


@pytest.fixture(scope="module")
def circulation() -> xr.Dataset:
    ds = cl.datasets.synthetic_circulation(n_members=2, n_years=2, n_lat=6, n_lon=8, seed=0)
    return ds.assign(tas=(2.0 * ds["psl"]).assign_attrs(ds["psl"].attrs))  # known answer


def test_eof_regression_learns_the_exact_map_from_a_proxy_stored_time_first(circulation):
    swapped = circulation.assign(psl=time_first(circulation["psl"]))
    est = cl.EOFRegression(n_proxy_eofs=48, n_target_eofs=48).fit(swapped, "tas", "psl")
    out = est.emulate(circulation)["tas"]
    np.testing.assert_allclose(out, circulation["tas"], rtol=1e-6)


@pytest.mark.parametrize(("estimator", "stored_time_first"), [("LLAAE", "psl"), ("VED", "tas")])
def test_a_field_stored_time_first_trains_the_same_model(circulation, estimator, stored_time_first):
    # The rows follow the target's order (LLAAE) or the proxy's (VED): the other field,
    # stored otherwise, must follow it, and the training is then the same, bit for bit.
    swapped = circulation.assign({stored_time_first: time_first(circulation[stored_time_first])})
    options = {"epochs": 2, "progress": False, "seed": 0}
    if estimator == "LLAAE":
        make = lambda: cl.LLAAE(latent_dim=3, **options)  # noqa: E731
        fits = [make().fit(ds, "tas", "psl") for ds in (circulation, swapped)]
    else:
        make = lambda: cl.VED(**options)  # noqa: E731
        fits = [make().fit(ds, target="tas", proxy="psl") for ds in (circulation, swapped)]
    first, second = (est.emulate(circulation)["tas"] for est in fits)
    np.testing.assert_array_equal(first, second.transpose(*first.dims))


@pytest.fixture(scope="module")
def biogeochem():
    return cl.datasets.synthetic_biogeochem(
        n_members=2, n_years=1, n_fine_lat=12, n_fine_lon=12, factor=3
    )


@pytest.mark.parametrize("stored_time_first", ["rsds", "chl"])
def test_downscaler_drivers_and_coarse_target_pair_whatever_their_order(
    biogeochem, stored_time_first
):
    coarse = biogeochem.coarse
    swapped = coarse.assign({stored_time_first: time_first(coarse[stored_time_first])})
    laws = {"tos": "exponential", "rsds": "quadratic"}
    options = {"channels": 1, "epochs": 2, "progress": False, "seed": 0, "target_input": True}
    fits = [
        cl.ProxyLatentDownscaler(**options).fit(ds, biogeochem.fine, "chl", proxies=laws)
        for ds in (coarse, swapped)
    ]
    first, second = (est.downscale(swapped)["chl"] for est in fits)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, fits[0].downscale(coarse)["chl"].transpose(*first.dims))
