"""Grids whose latitude/longitude are not dim coordinates, and member files whose second
variable lies on its own grid, are checked by label, never paired by position."""

import numpy as np
import pytest
import xarray as xr

import climlatent as cl
from climlatent.errors import InputDataError
from climlatent.grid import check_same_grid


@pytest.fixture(scope="module")
def circulation():
    ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=8, n_lon=8)
    return ds[["psl", "tas"]].isel(time=slice(0, 48))


def _on_yx(ds, two_d):
    """The same fields on dims (y, x) without values, latitude/longitude as coordinates."""
    out = ds.rename(lat="y", lon="x").drop_vars(["y", "x", "lat_bnds", "lon_bnds"], errors="ignore")
    if two_d:  # an ocean model's curvilinear grid
        lat, lon = np.meshgrid(ds.lat.values, ds.lon.values, indexing="ij")
        return out.assign_coords(
            lat=(("y", "x"), lat, ds.lat.attrs), lon=(("y", "x"), lon, ds.lon.attrs)
        )
    return out.assign_coords(
        lat=("y", ds.lat.values, ds.lat.attrs), lon=("x", ds.lon.values, ds.lon.attrs)
    )


def _ved(ds):
    return cl.VED(latent_dim=2, hidden=8, epochs=1, progress=False, device="cpu").fit(
        ds, target="tas", proxy="psl"
    )


def test_ved_on_a_curvilinear_grid_refuses_another_grid_or_order(circulation):
    cv = _on_yx(circulation, two_d=True)
    ved = _ved(cv)
    with pytest.raises(InputDataError, match="'psl'.*'lat'"):
        ved.emulate(cv.isel(y=slice(None, None, -1)))  # was emulated upside down
    with pytest.raises(InputDataError, match="'psl'.*'lat'"):
        ved.emulate(cv.assign_coords(lat=cv.lat + 20.0))  # was accepted as the same grid
    expected = ved.emulate(cv)["tas"]
    out = ved.emulate(cv.transpose(..., "x", "y"))["tas"]  # coordinates (x, y) too
    np.testing.assert_array_equal(out.transpose(*expected.dims).values, expected.values)


def test_vae_on_1d_latitude_of_y_reorders_by_label(circulation):
    yx = _on_yx(circulation, two_d=False)
    vae = cl.VAE(latent_dim=2, n_scales=2, base_channels=4, layers=1, growth=4, epochs=1,
                 progress=False, device="cpu").fit(yx, "psl")  # fmt: skip
    expected = vae.reconstruct(yx)["psl"]
    out = vae.reconstruct(yx.isel(y=slice(None, None, -1)))["psl"]
    np.testing.assert_array_equal(out["lat"].values, expected["lat"].values)
    np.testing.assert_allclose(out.values, expected.values, rtol=1e-6)
    with pytest.raises(InputDataError, match="'psl'.*'lat'"):
        vae.reconstruct(yx.assign_coords(lat=yx.lat + 20.0))


def test_same_curvilinear_grid_with_transposed_coordinates_passes():
    lat, lon = np.meshgrid([0.0, 10.0, 20.0], [0.0, 5.0, 10.0], indexing="ij")
    a = xr.Dataset(coords={"lat": (("y", "x"), lat), "lon": (("y", "x"), lon + lat / 10)})
    check_same_grid(a, a.transpose("x", "y"), "psl")
    with pytest.raises(InputDataError):
        check_same_grid(a, a.isel(y=slice(None, None, -1)), "psl")


def test_open_members_checks_the_grid_of_every_variable(tmp_path, circulation):
    ds = cl.datasets.synthetic_circulation(n_members=2, n_years=1, n_lat=8, n_lon=8)
    coarse = ds.psl.coarsen(lat=2, lon=2).mean().rename(lat="clat", lon="clon")
    coarse = coarse.assign_coords(
        clat=coarse.clat.assign_attrs(ds.lat.attrs), clon=coarse.clon.assign_attrs(ds.lon.attrs)
    )
    both = xr.Dataset({"tas": ds.tas, "psl": coarse.assign_attrs(ds.psl.attrs)})
    for i, member in enumerate(both.member.values):
        part = both.sel(member=[member])
        if i:  # the proxy of the second file stored north to south: the same cells
            part = part.isel(clat=slice(None, None, -1))
        cl.io.to_netcdf(part, tmp_path / f"{member}.nc")
    with pytest.raises(InputDataError, match="'psl'.*r2i1p1f1"):
        cl.batch.open_members(str(tmp_path / "*.nc"), ["tas", "psl"]).close()
    with cl.batch.open_members(str(tmp_path / "r1*.nc"), ["tas", "psl"]) as one:
        assert one.sizes["member"] == 1


def test_open_dataset_of_files_on_curvilinear_grids_in_another_order_is_refused(
    tmp_path, circulation
):
    cv = _on_yx(circulation, two_d=True)
    first, second = cv.isel(time=slice(0, 24)), cv.isel(time=slice(24, None))
    cl.io.to_netcdf(first, tmp_path / "a_1.nc")
    cl.io.to_netcdf(second.isel(y=slice(None, None, -1)), tmp_path / "a_2.nc")  # north to south
    with pytest.raises(InputDataError, match="'lat'"):  # was read with the first file's lat
        cl.io.open_dataset(str(tmp_path / "a_*.nc")).load()
    cl.io.to_netcdf(second, tmp_path / "a_2.nc")
    same = cl.io.open_dataset(str(tmp_path / "a_*.nc")).load()
    np.testing.assert_array_equal(same["tas"].values, cv["tas"].values)
