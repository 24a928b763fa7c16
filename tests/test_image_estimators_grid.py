"""Image estimators (VAE, AuxVAE, VED, VAEDLM) put new fields on the fitted grid and units.

Another layout of the same latitude x longitude cells (latitude north to south,
longitudes 0..360, lon before lat) gives the same numbers; another grid, a benchmark
coordinate that differs, or inconvertible units are refused with the variable named;
convertible units (degC for a fit in K, hPa for Pa) are converted.
"""

import json

import numpy as np
import pytest
import xarray as xr

import climlatent as cl
from climlatent.errors import InputDataError
from climlatent.estimators.vae_dlm import VAEDLM
from climlatent.estimators.ved import VED
from climlatent.reference.burgers import generate as burgers
from climlatent.reference.darcy import generate as darcy

TINY = dict(n_scales=2, base_channels=4, layers=1, growth=4, epochs=1, progress=False)


@pytest.fixture(scope="module")
def circulation():
    return cl.datasets.synthetic_circulation(n_members=1, n_years=1).isel(time=slice(0, 120))


@pytest.fixture(scope="module")
def aux(circulation):
    model = cl.AuxVAE(latent_dim=4, device="cpu", **TINY)
    return model.fit(circulation, "tas", auxiliary=["circulation_factor"])


def _lon_360(ds):
    """The same cells with longitudes 0..360 (sorted), as from a 0..360 file."""
    return ds.drop_vars("lon_bnds").assign_coords(lon=ds["lon"] % 360).sortby("lon")


def _canonical(da):
    if "lat" not in da.dims:  # latents
        return da
    return da.sortby("lat").assign_coords(lon=da["lon"] % 360).sortby("lon")


def _same(a, b, rtol=1e-6, atol=0.0):
    """``a`` equals ``b`` once both are sorted by latitude and longitude (0..360)."""
    a, b = xr.align(_canonical(a), _canonical(b), join="exact")
    np.testing.assert_allclose(a.transpose(*b.dims).values, b.values, rtol=rtol, atol=atol)


@pytest.mark.parametrize(
    "layout",
    [
        lambda ds: ds.isel(lat=slice(None, None, -1)),
        _lon_360,
        lambda ds: ds.transpose(..., "lon", "lat"),
    ],
    ids=["lat_north_to_south", "lon_0_360", "lon_before_lat"],
)
def test_auxvae_gives_the_same_numbers_in_any_layout(aux, circulation, layout):
    other = layout(circulation)
    _same(aux.guided(other), aux.guided(circulation))
    _same(aux.reconstruct(other)["tas"], aux.reconstruct(circulation)["tas"])


def test_vae_reconstruction_of_reversed_latitude_is_on_the_fitted_grid(circulation):
    vae = cl.VAE(latent_dim=2, device="cpu", **TINY).fit(circulation, "tas")
    out = vae.reconstruct(circulation.isel(lat=slice(None, None, -1)))["tas"]
    expected = vae.reconstruct(circulation)["tas"]
    np.testing.assert_array_equal(out["lat"], expected["lat"])
    np.testing.assert_allclose(out.values, expected.values, rtol=1e-6)


def test_another_grid_is_refused_naming_the_coordinate(aux, circulation):
    with pytest.raises(InputDataError, match="'tas'.*'lat'"):
        aux.guided(circulation.assign_coords(lat=circulation["lat"] + 20))
    with pytest.raises(InputDataError, match="'tas'.*'lon'"):
        aux.encode(circulation.assign_coords(lon=circulation["lon"] + 1.0))


def test_convertible_units_are_converted(aux, circulation):
    tas = circulation["tas"]
    degc = circulation.assign(tas=(tas - 273.15).assign_attrs(tas.attrs, units="degC"))
    _same(aux.guided(degc), aux.guided(circulation), rtol=1e-5, atol=1e-5)
    out = aux.reconstruct(degc)["tas"]
    assert out.attrs["units"] == "K"
    _same(out, aux.reconstruct(circulation)["tas"], rtol=1e-5)


def test_inconvertible_or_missing_units_are_refused_naming_the_variable(aux, circulation):
    tas = circulation["tas"]
    with pytest.raises(InputDataError, match="'tas'.*'m'"):
        aux.guided(circulation.assign(tas=tas.assign_attrs(units="m")))
    unnamed = tas.copy()  # no standard_name: refused by the conversion itself
    unnamed.attrs = {k: v for k, v in tas.attrs.items() if k != "standard_name"} | {"units": "m"}
    with pytest.raises(InputDataError, match="'tas'.*'m'.*cannot be converted"):
        aux.guided(circulation.assign(tas=unnamed))
    with pytest.raises(InputDataError, match="'tas' has no 'units'"):
        aux.guided(circulation.assign(tas=tas.copy().assign_attrs(units=None)))


@pytest.fixture(scope="module")
def ved(circulation):
    model = VED(latent_dim=2, hidden=8, hidden_layers=1, epochs=1, progress=False, device="cpu")
    return model.fit(circulation, target="tas", proxy="psl")


def test_ved_inputs_in_another_layout_or_units_give_the_same_output(ved, circulation):
    expected = ved.emulate(circulation)["tas"]
    _same(ved.emulate(circulation.isel(lat=slice(None, None, -1)))["tas"], expected)
    _same(ved.emulate(_lon_360(circulation))["tas"], expected)
    psl = circulation["psl"]
    hpa = circulation.assign(psl=(psl / 100).assign_attrs(psl.attrs, units="hPa"))
    _same(ved.emulate(hpa)["tas"], expected, rtol=1e-5)
    with pytest.raises(InputDataError, match="'psl'"):
        ved.emulate(circulation.assign(psl=psl.assign_attrs(units="K")))


def test_ved_saved_without_input_attrs_still_emulates(ved, circulation, tmp_path):
    ved.save(str(tmp_path / "ved"))
    manifest = tmp_path / "ved" / "manifest.json"
    content = json.loads(manifest.read_text())
    del content["fitted"]["input_attrs"]  # as saved before the inputs' attrs were kept
    manifest.write_text(json.dumps(content))
    loaded = cl.load(str(tmp_path / "ved"))
    assert loaded.input_attrs_ is None
    xr.testing.assert_allclose(loaded.emulate(circulation), ved.emulate(circulation))


def test_ved_on_a_benchmark_grid_refuses_another_coordinate():
    ds = darcy(16, kle_terms=2, seed=0, n_grid=9, workers=1)
    model = VED(latent_dim=2, hidden=8, hidden_layers=1, epochs=1, progress=False, device="cpu")
    model = model.fit(ds, target="pressure", proxy="log_permeability")
    with pytest.raises(InputDataError, match="'log_permeability'.*'y'"):
        model.emulate(ds.isel(y=slice(None, None, -1)))
    with pytest.raises(InputDataError, match="'log_permeability'.*'x'"):
        model.emulate(ds.assign_coords(x=ds["x"] + 5))
    with pytest.raises(InputDataError, match="'log_permeability'.*'x'"):
        model.emulate(ds.drop_vars("x"))
    transposed = ds.transpose("sample", "x", "y", ...)  # dims read by name
    xr.testing.assert_equal(model.emulate(transposed), model.emulate(ds))


def test_vaedlm_refuses_a_relabelled_or_reversed_space_coordinate():
    ds = burgers(8, nx=16, nt=3, seed=0)
    options = dict(intrinsic_dim=2, extrinsic_dim=3, hidden=8, geometry_hidden=4)
    model = VAEDLM(**options, epochs=1, progress=False, device="cpu").fit(ds, target="u")
    expected = model.emulate(ds)
    xr.testing.assert_equal(model.emulate(ds.assign_coords(x=ds["x"].astype(np.float32))), expected)
    with pytest.raises(InputDataError, match="'u'.*'x'"):
        model.emulate(ds.assign_coords(x=ds["x"] + 0.5))
    with pytest.raises(InputDataError, match="'u'.*'x'"):
        model.encode(ds.isel(x=slice(None, None, -1)))


def test_a_benchmark_coordinate_is_compared_in_the_fitted_units():
    """The same numbers in km for a grid fitted in m were taken for the fitted grid."""
    ds = darcy(16, kle_terms=2, seed=0, n_grid=9, workers=1)
    metres = ds.assign_coords(x=ds["x"].assign_attrs(units="m"), y=ds["y"].assign_attrs(units="m"))
    model = VED(latent_dim=2, hidden=8, hidden_layers=1, epochs=1, progress=False, device="cpu")
    model = model.fit(metres, target="pressure", proxy="log_permeability")
    expected = model.emulate(metres)
    with pytest.raises(InputDataError, match="'x' differs .* in 'm', converted from 'km'"):
        model.emulate(metres.assign_coords(x=metres["x"].assign_attrs(units="km")))
    with pytest.raises(InputDataError, match="grid coordinate 'y' is in 's', which cannot"):
        model.emulate(metres.assign_coords(y=metres["y"].assign_attrs(units="s")))
    centimetres = metres.assign_coords(x=(metres["x"] * 100).assign_attrs(units="cm"))
    out = model.emulate(centimetres)  # the fitted grid, in other units
    np.testing.assert_array_equal(out["pressure"].values, expected["pressure"].values)
    assert out["x"].attrs["units"] == "m"
