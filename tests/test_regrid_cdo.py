"""Conservative regridding against CDO's ``remapcon``, the reference tool (needs ``cdo``).

CDO computes in double precision and writes the input's type. Tolerances: float64
data within 1e-13 relative (CDO's spherical polygon areas and our exact band areas
differ by round-off: observed <= 1.3e-14); float32 data within one float32 ulp (both
round the same double sums: observed identical). NaN patterns must match exactly.
"""

import shutil
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from climlatent.datasets import sample_data_path
from climlatent.datasets.sample_data import a1b_north_america
from climlatent.grid import regular_grid
from climlatent.grid_spec import grid_from_spec
from climlatent.io import open_dataset, to_netcdf
from climlatent.regrid import Regridder

pytestmark = pytest.mark.skipif(
    shutil.which("cdo") is None, reason="cdo is not installed (apt-get install cdo)"
)
RTOL_FLOAT64 = 1e-13


def cdo(operator: str, source, output) -> None:
    subprocess.run(
        ["cdo", "-s", operator, str(source), str(output)], check=True, capture_output=True
    )


def read(path, name: str) -> xr.DataArray:
    with xr.open_dataset(path) as ds:
        return ds[name].load()


def field(grid: xr.Dataset, n_time: int = 3, dtype=np.float64, seed: int = 0) -> xr.Dataset:
    """A smooth climate plus noise on ``grid``, with a CF time axis."""
    lat, lon = np.meshgrid(np.deg2rad(grid.lat), np.deg2rad(grid.lon), indexing="ij")
    climate = 250.0 + 40.0 * np.cos(lat) ** 2 + 5.0 * np.sin(3 * lon) * np.cos(lat)
    noise = np.random.default_rng(seed).normal(0.0, 2.0, (n_time, *climate.shape))
    return grid.assign(
        tas=(("time", "lat", "lon"), (climate + noise).astype(dtype), {"units": "K"})
    ).assign_coords(
        time=("time", np.arange(n_time, dtype=float), {"units": "days since 2000-01-01"})
    )


def grid_file(grid: xr.Dataset, path) -> str:
    """``grid`` as a netCDF file CDO takes a grid from (it needs a data variable)."""
    shape = (grid.lat.size, grid.lon.size)
    to_netcdf(grid.assign(mask=(("lat", "lon"), np.ones(shape))), path)
    return str(path)


def assert_same(ours: xr.DataArray, theirs: xr.DataArray, dims=("time", "lat", "lon")) -> None:
    ours, theirs = ours.transpose(*dims), theirs.transpose(*dims)
    for coord in dims[1:]:
        np.testing.assert_array_equal(ours[coord].values, theirs[coord].values, err_msg=coord)
    np.testing.assert_array_equal(np.isnan(ours.values), np.isnan(theirs.values))
    if ours.dtype == np.float32:
        np.testing.assert_array_max_ulp(ours.values, theirs.values, maxulp=1)
    else:
        np.testing.assert_allclose(ours.values, theirs.values, rtol=RTOL_FLOAT64)


@pytest.mark.parametrize("spec", ["r180x90", "r144x73", "r7x5", "r1x2", "global_2", "global_0.5"])
def test_grid_specs_place_the_centres_as_cdo_does(tmp_path, spec):
    subprocess.run(["cdo", "-s", "-f", "nc", f"const,1,{spec}", str(tmp_path / "g.nc")], check=True)
    theirs, ours = read(tmp_path / "g.nc", "const"), grid_from_spec(spec)
    np.testing.assert_array_equal(ours.lat.values, theirs.lat.values)
    np.testing.assert_array_equal(ours.lon.values, theirs.lon.values)


@pytest.mark.parametrize("spec", ["r180x90", "r144x73"])  # even: cell rows; odd: pole rows
def test_conservative_equals_remapcon_on_a_global_grid(tmp_path, spec):
    """1.25 x 1.875 degrees (a HadGEM-like grid) to CDO's own global grids."""
    src = field(regular_grid(np.linspace(-90, 90, 145), np.linspace(0, 360, 193)))
    to_netcdf(src, tmp_path / "src.nc")
    cdo(f"remapcon,{spec}", tmp_path / "src.nc", tmp_path / "cdo.nc")
    ours = Regridder(src, grid_from_spec(spec), "conservative", engine="climlatent")(src)
    assert_same(ours["tas"], read(tmp_path / "cdo.nc", "tas"))


@pytest.mark.parametrize("longitude_dtype", [np.float64, np.float32])
def test_polar_rows_and_float32_longitudes_without_bounds_as_remapcon(tmp_path, longitude_dtype):
    """Centres every 2 degrees up to 88 without bounds: CDO puts the outer edges at the
    poles (they were left at 89: polar rows NaN); 0.1-degree float32 longitudes still
    close the circle (their round-off had cut it at 64 E: a NaN column). CDO leaves
    the 3e-6-degree sliver that round-off opens at the seam, which we close: the
    column at 0 E differs by 4e-9 of itself there."""
    lat, lon = np.arange(-88.0, 88.1, 2.0), (np.arange(3600) * 0.1).astype(longitude_dtype)
    src = field(xr.Dataset(coords={"lat": ("lat", lat, {"units": "degrees_north"}),
                                   "lon": ("lon", lon, {"units": "degrees_east"})}))  # fmt: skip
    to_netcdf(src, tmp_path / "src.nc")
    cdo("remapcon,r180x90", tmp_path / "src.nc", tmp_path / "cdo.nc")
    ours = Regridder(src, grid_from_spec("r180x90"), "conservative", engine="climlatent")(src)
    theirs = read(tmp_path / "cdo.nc", "tas")
    assert not ours["tas"].isnull().any() and not theirs.isnull().any()
    if longitude_dtype is np.float64:
        assert_same(ours["tas"], theirs)
    else:  # the seam column within float32 coordinates' precision, the others as CDO
        assert_same(ours["tas"].isel(lon=slice(1, None)), theirs.isel(lon=slice(1, None)))
        seam = ours["tas"].isel(lon=0).transpose(*theirs.isel(lon=0).dims)
        np.testing.assert_allclose(seam, theirs.isel(lon=0), rtol=1e-7)


@pytest.mark.parametrize(
    ("lat_edges", "lon_edges", "skipna"),
    [
        (np.arange(16.25, 58.8, 2.5), np.arange(228.75, 311.3, 2.5), False),  # inside
        (np.arange(10.0, 66.0, 4.0), np.arange(220.0, 321.0, 4.0), True),  # straddling
    ],
)
def test_conservative_equals_remapcon_on_a_regional_grid(tmp_path, lat_edges, lon_edges, skipna):
    """The A1B North America sample (1.25 x 1.875 degrees, float32, no bounds) onto a
    grid inside its domain, and onto one straddling its edges: CDO renormalises partly
    covered cells (its default ``fracarea``), as ``skipna=True`` does."""
    src = a1b_north_america()
    dst = regular_grid(lat_edges, lon_edges)
    path = grid_file(dst, tmp_path / "dst.nc")
    cdo(f"remapcon,{path}", sample_data_path("A1B_north_america.nc"), tmp_path / "cdo.nc")
    ours = Regridder(src, dst, "conservative", engine="climlatent")(src, skipna=skipna)
    theirs = read(tmp_path / "cdo.nc", "air_temperature")
    assert_same(ours["air_temperature"], theirs)
    assert np.isnan(theirs).any() == skipna  # the straddling grid has cells outside


def test_skipna_equals_remapcon_with_missing_values(tmp_path):
    """NaN patches (a land mask, a missing band in one step) are left out and the rest
    renormalised, as CDO does with missing values; all-missing cells stay missing."""
    src = field(regular_grid(np.arange(20.0, 60.01, 0.5), np.arange(-30.0, 40.01, 0.5)), seed=1)
    src["tas"][:, 10:30, 40:70] = np.nan
    src["tas"][1, :, :5] = np.nan
    to_netcdf(src, tmp_path / "src.nc")
    dst = regular_grid(np.arange(24.0, 56.1, 2.0), np.arange(-25.5, 35.0, 1.5))
    cdo(f"remapcon,{grid_file(dst, tmp_path / 'dst.nc')}", tmp_path / "src.nc", tmp_path / "c.nc")
    ours = Regridder(src, dst, "conservative", engine="climlatent")(src, skipna=True)["tas"]
    theirs = read(tmp_path / "c.nc", "tas")
    assert np.isnan(theirs).any()
    assert_same(ours, theirs)


@pytest.mark.parametrize("destination", ["r180x90", "regional file"])
def test_cli_regrid_equals_cdo_remapcon(tmp_path, destination):
    """The command in its own process (as a user runs it), in time blocks of 3 steps."""
    src = field(regular_grid(np.linspace(-90, 90, 181), np.linspace(0, 360, 361)), 10, np.float32)
    to_netcdf(src, tmp_path / "src.nc")
    if destination != "r180x90":
        dst = regular_grid(np.arange(-40.0, 60.1, 2.5), np.arange(-60.0, 30.1, 3.0))
        destination = grid_file(dst, tmp_path / "dst.nc")
    command = [sys.executable, "-m", "climlatent", "regrid", str(tmp_path / "src.nc")]
    command += [destination, "--output", str(tmp_path / "ours.nc"), "--time-chunk", "3"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    cdo(f"remapcon,{destination}", tmp_path / "src.nc", tmp_path / "cdo.nc")
    ours, theirs = read(tmp_path / "ours.nc", "tas"), read(tmp_path / "cdo.nc", "tas")
    assert ours.dtype == theirs.dtype == np.float32
    assert_same(ours, theirs)


def test_a_file_opened_by_climlatent_is_regridded_on_its_own_bounds(tmp_path):
    """Centres off the middle of their cells: the file's bounds, not the midpoints
    between centres, make the cells (xarray moves ``bounds`` into the encoding when it
    decodes them as coordinates, as ``climlatent.io.open_dataset`` does)."""
    grid = regular_grid(np.linspace(-90, 90, 61), np.linspace(0, 360, 91))
    grid = grid.assign_coords(lat=grid.lat + 1.0, lon=grid.lon - 1.5)  # bounds kept
    to_netcdf(field(grid), tmp_path / "src.nc")
    cdo("remapcon,r72x36", tmp_path / "src.nc", tmp_path / "cdo.nc")
    src = open_dataset(tmp_path / "src.nc", chunks=None)
    assert "bounds" not in src.lat.attrs  # where the regridder used to look only
    ours = Regridder(src, grid_from_spec("r72x36"), "conservative", engine="climlatent")(src)
    assert_same(ours["tas"], read(tmp_path / "cdo.nc", "tas"))


def labelled_minus_180_180(grid: xr.Dataset) -> xr.Dataset:
    """``grid`` with its longitudes and their bounds stored in (-180, 180], in order (the
    cell east of the date line bounded by 180 and -177.5)."""
    names = ("lon", "lon_bnds")
    return grid.assign_coords({n: grid[n].where(grid[n] <= 180.0, grid[n] - 360.0) for n in names})


INSIDE = regular_grid(np.arange(-20.0, 20.1, 4.0), np.arange(158.0, 202.1, 4.0))  # 180 a centre
AROUND = regular_grid(np.arange(-40.0, 40.1, 4.0), np.arange(138.0, 222.1, 4.0))
PACIFIC = labelled_minus_180_180(
    regular_grid(np.arange(-30.0, 30.1, 2.0), np.arange(150.0, 210.1, 2.5))
)  # 151.25 ... 178.75, -178.75 ... -151.25


def curvilinear_file(path) -> str:
    """The file's grid described cell by cell, as CDO reads a regional grid across the
    date line right (as a 1-D ``lonlat`` grid there, CDO 2.1 leaves its cells empty)."""
    cdo("setgridtype,curvilinear", path, f"{path}.curvilinear.nc")
    return f"{path}.curvilinear.nc"


@pytest.mark.parametrize("side", ["source", "destination"])
def test_a_pacific_grid_stored_minus_180_180_is_regridded_as_remapcon(tmp_path, side):
    """A regional grid across the date line stored -180..180 (170, 180, -170: CORDEX's
    way) was refused as not monotonic. Conservative regridding onto and from it now
    equals CDO's on the same cells, labelled as given."""
    src, dst = (field(PACIFIC), INSIDE) if side == "source" else (field(AROUND), PACIFIC)
    to_netcdf(src, tmp_path / "src.nc")
    source = curvilinear_file(tmp_path / "src.nc") if side == "source" else tmp_path / "src.nc"
    target = grid_file(dst, tmp_path / "dst.nc")
    target = curvilinear_file(target) if side == "destination" else target
    cdo(f"remapcon,{target}", source, tmp_path / "cdo.nc")
    ours = Regridder(src, dst, "conservative", engine="climlatent")(src)["tas"]
    theirs = read(tmp_path / "cdo.nc", "tas")
    if side == "destination":  # CDO's output is on (y, x) with 2-D lat, lon
        np.testing.assert_array_equal(theirs.lon[0].values, dst.lon.values)
        theirs = theirs.rename(y="lat", x="lon").assign_coords(lat=dst.lat, lon=dst.lon)
    assert not theirs.isnull().any()
    assert_same(ours, theirs)


@pytest.mark.parametrize("side", ["source", "destination"])
def test_a_pacific_grid_stored_minus_180_180_is_regridded_as_remapbil(tmp_path, side):
    """Bilinear onto and from the Pacific grid, without bounds, as CDO's ``remapbil``."""
    src, dst = (field(PACIFIC), INSIDE) if side == "source" else (field(AROUND), PACIFIC)
    src = src.drop_vars(["lat_bnds", "lon_bnds"])
    to_netcdf(src, tmp_path / "src.nc")
    cdo(f"remapbil,{grid_file(dst, tmp_path / 'dst.nc')}", tmp_path / "src.nc", tmp_path / "c.nc")
    ours = Regridder(src, dst, "bilinear", engine="climlatent")(src)["tas"]
    assert_same(ours, read(tmp_path / "c.nc", "tas"))
