"""``climlatent regrid SRC DST_GRID --output X.nc``: answers, options, one-line errors."""

import gc
import subprocess
import sys

import netCDF4
import numpy as np
import psutil
import pytest
import xarray as xr
from click.testing import CliRunner

from climlatent.cli import main
from climlatent.errors import InputDataError
from climlatent.grid_spec import grid_from_spec
from climlatent.io import to_netcdf
from climlatent.regrid import Regridder, regrid_file


@pytest.fixture
def source(tmp_path):
    """Two variables on a 10 degree global grid, 7 daily steps, and one without lat/lon."""
    grid = grid_from_spec("r36x18")
    rng = np.random.default_rng(0)
    shape = (7, grid.lat.size, grid.lon.size)
    ds = grid.assign(
        tas=(("time", "lat", "lon"), rng.normal(280.0, 10.0, shape), {"units": "K"}),
        pr=(
            ("time", "lat", "lon"),
            rng.gamma(1.0, 3e-5, shape).astype(np.float32),
            {"units": "kg m-2 s-1"},
        ),
        station=("time", np.arange(7.0), {"units": "1"}),
    ).assign_coords(
        time=("time", np.arange(7.0), {"units": "days since 2000-01-01", "calendar": "noleap"})
    )
    path = tmp_path / "src.nc"
    to_netcdf(ds, path)
    return path, ds


def run(*args):
    return CliRunner().invoke(main, ["regrid", *map(str, args)])


@pytest.mark.parametrize("method", ["conservative", "bilinear", "nearest"])
def test_writes_the_regridders_answer_in_time_blocks(tmp_path, source, method):
    path, ds = source
    result = run(
        path, "r18x9", "--output", tmp_path / "out.nc", "--method", method, "--time-chunk", 2
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"wrote {tmp_path / 'out.nc'}"
    expected = Regridder(ds, grid_from_spec("r18x9"), method, engine="climlatent")(ds)
    with xr.open_dataset(tmp_path / "out.nc", decode_times=False) as out:
        for name in ("tas", "pr"):
            assert out[name].dtype == ds[name].dtype
            np.testing.assert_array_equal(out[name].values, expected[name].values)
        np.testing.assert_array_equal(out["station"].values, ds["station"].values)
        assert out.time.attrs["calendar"] == "noleap" and out.time.values.tolist() == list(range(7))
        assert out.attrs["Conventions"] == "CF-1.8"
        assert f"climlatent regrid {path} r18x9 --method {method}" in out.attrs["history"]
        assert out.lat.attrs["bounds"] == "lat_bnds" and out.lat_bnds.shape == (9, 2)


def test_destination_grid_taken_from_a_file_and_variables_selected(tmp_path, source):
    path, ds = source
    grid = grid_from_spec("r12x6").isel(lat=slice(1, 5))  # a band: 60S..60N
    to_netcdf(grid.assign(anything=(("lat", "lon"), np.zeros((4, 12)))), tmp_path / "grid.nc")
    result = run(path, tmp_path / "grid.nc", "-o", tmp_path / "out.nc", "--variables", "pr", "-q")
    assert result.exit_code == 0 and result.output == ""
    expected = Regridder(ds, grid, "conservative", engine="climlatent")(ds)["pr"]
    with netCDF4.Dataset(tmp_path / "out.nc") as nc:
        assert "tas" not in nc.variables and "anything" not in nc.variables
        np.testing.assert_array_equal(nc["pr"][:].filled(np.nan), expected.values)
        np.testing.assert_array_equal(nc["lat"][:], grid.lat.values)


def test_variables_selected_keep_their_time_bounds(tmp_path, source):
    """A CMIP file's ``time_bnds(time, bnds)``: selecting ``pr`` dropped it (its
    ``bnds`` dim is not ``pr``'s), and the time axis lost its cells (a monthly mean's
    month); they are written as the source has them."""
    path, ds = source
    edges = np.arange(8.0)
    cmip = ds.assign_coords(time_bnds=(("time", "bnds"), np.stack([edges[:-1], edges[1:]], 1)))
    cmip.time.attrs["bounds"] = "time_bnds"
    to_netcdf(cmip, tmp_path / "cmip.nc")
    result = run(tmp_path / "cmip.nc", "r18x9", "-o", tmp_path / "out.nc", "--variables", "pr")
    assert result.exit_code == 0, result.output
    with netCDF4.Dataset(tmp_path / "out.nc") as nc:
        assert nc["time"].bounds == "time_bnds"
        np.testing.assert_array_equal(nc["time_bnds"][:], cmip.time_bnds.values)
        assert nc["lat_bnds"].shape == (9, 2) and "tas" not in nc.variables


def test_a_glob_of_files_is_one_record(tmp_path, source):
    """The record split over three files (as CMIP decades are) gives the same output."""
    path, ds = source
    (tmp_path / "parts").mkdir()
    for i, steps in enumerate([slice(0, 3), slice(3, 5), slice(5, 7)]):
        to_netcdf(ds.isel(time=steps), tmp_path / "parts" / f"part{i}.nc")
    glob = tmp_path / "parts" / "part*.nc"
    assert run(glob, "r18x9", "-o", tmp_path / "whole.nc", "--time-chunk", 2).exit_code == 0
    assert run(path, "r18x9", "-o", tmp_path / "single.nc").exit_code == 0
    with (
        xr.open_dataset(tmp_path / "whole.nc") as whole,
        xr.open_dataset(tmp_path / "single.nc") as single,
    ):
        xr.testing.assert_identical(
            whole[["tas", "pr"]].drop_attrs(deep=False),
            single[["tas", "pr"]].drop_attrs(deep=False),
        )


def test_skipna_renormalises_around_missing_cells(tmp_path, source):
    path, ds = source
    holed = ds.copy(deep=True)
    holed["tas"][:, 4, 7] = np.nan
    to_netcdf(holed, tmp_path / "holed.nc")
    for flag, expected_nan in (([], True), (["--skipna"], False)):
        result = run(tmp_path / "holed.nc", "r18x9", "-o", tmp_path / "out.nc", *flag)
        assert result.exit_code == 0, result.output
        with xr.open_dataset(tmp_path / "out.nc") as out:
            assert bool(out["tas"].isnull().any()) == expected_nan
    expected = Regridder(ds, grid_from_spec("r18x9"), engine="climlatent")(holed, skipna=True)
    with xr.open_dataset(tmp_path / "out.nc") as out:
        np.testing.assert_array_equal(out["tas"].values, expected["tas"].values)


def test_errors_are_one_line_naming_what_is_wrong(tmp_path, source):
    path, ds = source
    out = tmp_path / "out.nc"
    no_grid = tmp_path / "no_grid.nc"
    to_netcdf(xr.Dataset({"x": ("time", np.arange(3.0))}), no_grid)
    empty = tmp_path / "empty.nc"
    to_netcdf(ds.isel(time=slice(0, 0)), empty)  # used to end in a ZeroDivisionError
    cyclic = tmp_path / "cyclic.nc"  # the file was not named
    lon = np.append(ds.lon.values, ds.lon.values[0] + 360.0)
    lon_attrs = {key: value for key, value in ds.lon.attrs.items() if key != "bounds"}
    repeated = ds.drop_vars("lon_bnds").isel(lon=[*range(ds.lon.size), 0])
    to_netcdf(repeated.assign_coords(lon=("lon", lon, lon_attrs)), cyclic)
    corrupt = tmp_path / "corrupt.nc"  # netCDF-C's RuntimeError was a traceback
    compressed = {"tas": {"zlib": True, "chunksizes": (1, 18, 36)}}
    ds[["tas", "lat_bnds", "lon_bnds"]].to_netcdf(corrupt, encoding=compressed)
    with open(corrupt, "r+b") as file:  # bytes smashed amid the compressed steps
        file.seek(int(corrupt.stat().st_size * 0.6))
        file.write(b"\xff" * 1024)
    cases = [
        ((empty, "r18x9", "-o", out), f"source '{empty}': time dim 'time' has no steps"),
        (
            (cyclic, "r18x9", "-o", out),
            f"regridding '{cyclic}' to 'r18x9': the dataset: longitude 'lon' holds one meridian",
        ),
        (
            (corrupt, "r18x9", "-o", out, "--time-chunk", 2),
            f"regridding '{corrupt}' to 'r18x9': NetCDF: HDF error",
        ),
        (
            (path, "n32", "-o", out),
            "destination grid 'n32' is neither a netCDF file nor a grid spec",
        ),
        ((path, "r0x9", "-o", out), "grid spec 'r0x9': needs at least 1 longitude and 2 latitudes"),
        (
            (tmp_path / "nope.nc", "r18x9", "-o", out),
            f"netCDF file '{tmp_path / 'nope.nc'}' does not exist",
        ),
        (
            (no_grid, "r18x9", "-o", out),
            f"source '{no_grid}': the dataset has no latitude coordinate",
        ),
        (
            (path, no_grid, "-o", out),
            f"destination grid file '{no_grid}': the dataset has no latitude",
        ),
        (
            (path, "r18x9", "-o", out, "--variables", "tas,uas"),
            f"source '{path}' has no variable 'uas'; it has 'tas', 'pr', 'station'",
        ),
        (
            (path, "r18x9", "-o", out, "--variables", "station"),
            f"source '{path}': none of the variables 'station' lies on its grid (dims lat, lon)",
        ),
        ((path, "r18x9", "-o", out, "--time-chunk", 0), "time_chunk must be at least 1, not 0"),
        ((path, "r18x9", "-o", tmp_path / "missing" / "out.nc"), "output folder"),
        ((path, "r18x9", "-o", path), f"the output '{path}' is the source file"),  # was replaced
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"error: {message}"), (
            result.stderr
        )
    assert not out.exists()


def open_files(folder) -> list[str]:
    """The names of the files under ``folder`` that this process holds open."""
    return sorted(f.path for f in psutil.Process().open_files() if f.path.startswith(str(folder)))


def test_regrid_file_closes_its_inputs_on_return_and_on_every_refusal(tmp_path, source):
    """The source and grid files stayed open while the refusal's traceback lived (a
    notebook keeps the last one), and a successful call's until a garbage collection:
    held open and opened again, a netCDF file can crash netCDF-C (pydata/xarray#8289)."""
    path, ds = source
    no_grid = tmp_path / "no_grid.nc"
    to_netcdf(xr.Dataset({"x": ("time", np.arange(3.0))}), no_grid)
    grid = tmp_path / "grid.nc"
    to_netcdf(grid_from_spec("r18x9"), grid)
    refused = [
        ((path, grid, tmp_path / "o.nc"), {"variables": ["uas"]}),
        ((no_grid, grid, tmp_path / "o.nc"), {}),
        ((path, no_grid, tmp_path / "o.nc"), {}),
        ((path, grid, tmp_path / "o.nc"), {"variables": ["station"]}),
        ((path, grid, tmp_path), {"time_chunk": 2}),  # the output is a folder
    ]
    for args, options in refused:
        with pytest.raises((InputDataError, IsADirectoryError)) as refusal:
            regrid_file(*args, **options)
        assert refusal.traceback and open_files(tmp_path) == [], (args, options)
    gc.disable()  # what a garbage collection would close is still open
    try:
        for options in ({}, {"time_chunk": 2}):
            regrid_file(path, grid, tmp_path / "out.nc", **options)
            assert open_files(tmp_path) == [], options
    finally:
        gc.enable()


def test_bilinear_from_a_curvilinear_file_is_told_options_that_exist(tmp_path):
    """The refusal said "use method='nearest' or engine='xesmf'": the command (and
    regrid_file) has no engine; Regridder's is named. Its --method nearest, followed,
    gives each destination cell the value of its great-circle nearest source centre."""
    y, x = np.meshgrid(np.linspace(-40, 40, 9), np.linspace(0, 350, 36), indexing="ij")
    lat, lon = y + 0.2 * np.sin(np.deg2rad(x)), x + 0.1 * y
    ds = xr.Dataset(
        {"tos": (("y", "x"), np.arange(lat.size, dtype=float).reshape(lat.shape), {"units": "K"})},
        coords={
            "lat": (("y", "x"), lat, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": (("y", "x"), lon, {"standard_name": "longitude", "units": "degrees_east"}),
        },
    )
    path = to_netcdf(ds, tmp_path / "curvilinear.nc")
    result = run(path, "r18x9", "--output", tmp_path / "out.nc", "--method", "bilinear")
    assert result.exit_code == 1
    assert "use method='nearest', or Regridder(..., engine='xesmf')" in result.output
    result = run(path, "r18x9", "--output", tmp_path / "out.nc", "--method", "nearest")
    assert result.exit_code == 0, result.output
    dst = grid_from_spec("r18x9")
    dst_lat, dst_lon = (np.deg2rad(v) for v in np.meshgrid(dst.lat, dst.lon, indexing="ij"))
    src_lat, src_lon = np.deg2rad(lat.ravel()), np.deg2rad(lon.ravel())
    cosine = np.sin(dst_lat[..., None]) * np.sin(src_lat) + np.cos(dst_lat[..., None]) * np.cos(
        src_lat
    ) * np.cos(dst_lon[..., None] - src_lon)
    with xr.open_dataset(tmp_path / "out.nc") as out:
        np.testing.assert_array_equal(
            out["tos"].values, ds["tos"].values.ravel()[cosine.argmax(-1)]
        )


def test_regrid_process_loads_neither_torch_nor_the_unused_probes(tmp_path, source):
    """In its own process the command imports what regridding needs: no torch; xarray's
    probes of pint, dask.distributed and scipy's FFT and the repr and CPU-affinity
    helpers find nothing; numpy.f2py (which scipy.sparse touches) is not executed; the
    garbage collector leaves the objects to the exit."""
    path, _ = source
    argv = ["climlatent", "regrid", str(path), "r18x9", "-o", str(tmp_path / "o.nc"), "-q"]
    code = (
        f"import gc, sys\nsys.argv = {argv!r}\n"
        "from climlatent.cli import main\n"
        "try:\n    main()\nexcept SystemExit as done:\n    assert not done.code, done.code\n"
        "names = ('torch', 'distributed', 'pint', 'scipy.fft', 'scipy.spatial', 'jinja2',"
        " 'rich', 'psutil')\n"
        "print(sorted(n for n in names if sys.modules.get(n) is not None))\n"
        "print(type(sys.modules['numpy.f2py']).__name__, gc.get_freeze_count() > 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-2:] == ["[]", "_LazyModule True"]
    assert (tmp_path / "o.nc").exists()


def test_in_another_process_the_probes_are_left_alone(tmp_path, source):
    """Run through CliRunner (a test session, a notebook), nothing is hidden: dask still
    finds a distributed client afterwards."""
    path, _ = source
    assert run(path, "r18x9", "-o", tmp_path / "out.nc").exit_code == 0
    assert all(sys.modules.get(name, True) is not None for name in ("distributed", "pint"))
    assert gc.get_freeze_count() == 0  # the host's garbage is still collected
    import distributed  # noqa: F401  (importable, not hidden)
