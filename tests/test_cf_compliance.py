"""Every file climlatent writes passes the IOOS compliance checker's CF-1.8 suite, and
outputs carry the provenance of the data they were computed from, not of the training
data: the A1B/E1 sample files of iris-sample-data, a fitted model, its Python and its
CLI outputs."""

import re
import shlex
import warnings
from pathlib import Path
from types import SimpleNamespace

import netCDF4
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import climlatent as cl
from climlatent._version import __version__
from climlatent.cf_encoding import cf_encode
from climlatent.cli import main
from climlatent.datasets import a1b_north_america, e1_north_america, sample_data_path
from climlatent.demo import run_demo
from climlatent.estimators.weather import weather_generator
from climlatent.io import open_dataset, to_netcdf
from climlatent.metrics import correlation, mse, mse_skill_score, r2_map, rmse, rmse_map
from climlatent.metrics.extremes import annual_maxima
from climlatent.regrid import Regridder
from climlatent.regrid.files import regrid_file
from climlatent.studies.a1b_downscaling import coarse_grid

checker = pytest.importorskip(
    "compliance_checker.runner",
    reason="the CF checks need the IOOS compliance checker: pip install compliance-checker",
)

ERROR, WARNING = 3, 2  # the checker's high and medium priorities
# Messages that are not climlatent's doing, by output kind, with the reason.
NOT_OURS = {
    # The Regridder keeps the regridded variable's own attributes (its provenance);
    # this one, "Model scenario", is spelled so in iris-sample-data's A1B/E1 files.
    "regrid_output": ["attribute air_temperature:Model scenario should begin with a letter"],
    # OSTIA's own cell methods: "month: year: mean" names no dimension of the file.
    "regrid_file": ["cell_methods name component month", "cell_methods name component year"],
    # "time: maximum" of maxima over the times of each year: CF 7.3 allows a standard
    # name (time) where the checker asks for a dimension or coordinate.
    "annual_maxima": ["cell_methods name component time does not match"],
}
# Checks that crash instead of reporting: compliance-checker 6.1 takes np.diff of every
# coordinate variable, which fails on the string member labels ("r1i1p1f1", ...) that
# climlatent writes as the member coordinate (CF wants numeric coordinate variables:
# these labels are a known gap, not reported by the checker as an error or warning).
STRING_COORDINATE_CRASH = "check_coordinate_variables_strict_monotonicity"


def cf_failures(path: Path) -> tuple[list[tuple[int, str]], set[str]]:
    """Failed CF-1.8 messages of ``path`` as (priority, message), and crashed checks."""
    suite = checker.CheckSuite()
    suite.load_all_available_checkers()
    ds = suite.load_dataset(str(path))
    try:
        groups, crashed = suite.run_all(ds, ["cf:1.8"])["cf:1.8"]
    finally:
        ds.close()
    failed = []

    def walk(results):
        for result in results:
            scored, possible = (
                result.value if isinstance(result.value, tuple) else (result.value, True)
            )
            if scored != possible:
                failed.extend((result.weight, msg) for msg in result.msgs)
            walk(result.children or [])

    walk(groups)
    return failed, set(crashed)


def north_america(scenario, chunks=None):
    """The first years of a scenario on an 8 x 8 corner, the scenario also global."""
    ds = scenario(chunks).isel(time=slice(0, 6), latitude=slice(0, 8), longitude=slice(0, 8))
    return ds.load().assign_attrs(scenario=ds["air_temperature"].attrs["Model scenario"])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Small data, fitted models and a folder: everything the outputs come from."""
    folder = tmp_path_factory.mktemp("cf")
    circulation = cl.datasets.synthetic_circulation(n_members=2, n_years=1, n_lat=6, n_lon=8)
    for member in circulation.member.values:
        to_netcdf(circulation.sel(member=[member]), folder / f"member_{member}.nc")
    eof = cl.EOFRegression(n_proxy_eofs=3, n_target_eofs=3).fit(circulation, "pr", "psl")
    eof.save(folder / "eof.clm")
    a1b, e1 = north_america(a1b_north_america), north_america(e1_north_america)
    regridder = Regridder(a1b, coarse_grid(a1b), method="conservative", engine="climlatent")
    coarse_e1 = regridder(e1)
    to_netcdf(coarse_e1, folder / "coarse_e1.nc")
    downscaler = cl.ProxyDownscaler(epochs=2, batch_size=4)
    downscaler.fit(regridder(a1b), a1b, "air_temperature").save(folder / "downscaler.clm")
    noisy = cl.ProxyDownscaler(epochs=2, batch_size=4, noise=True, progress=False)
    noisy.fit(regridder(a1b), a1b, "air_temperature").save(folder / "noisy.clm")
    fields = xr.Dataset(
        {"p": (("sample", "y", "x"), np.random.default_rng(0).normal(size=(16, 9, 9)))},
        attrs={"source": "training fields"},
    )
    fields["p"].attrs = {"units": "1", "long_name": "pressure", "comment": "training set"}
    vae = cl.VAE(latent_dim=2, n_scales=1, epochs=1, progress=False).fit(fields, "p")
    return SimpleNamespace(
        folder=folder,
        circulation=circulation,
        eof=eof,
        e1=e1,
        regridder=regridder,
        coarse_e1=coarse_e1,
        downscaler=downscaler,
        fields=fields,
        vae=vae,
        written={},
    )


def cli_export(world, method: str, model: str, inputs: str, *options: str) -> Path:
    """``climlatent <method>`` of a saved model over input files, exported to netCDF."""
    folder = world.folder
    name = f"cli_{method}{''.join(options)}"
    store = folder / f"{name}.zarr"
    result = CliRunner().invoke(
        main,
        [method, str(folder / f"{model}.clm"), str(folder / inputs), "-o", str(store), "-q"]
        + list(options),
    )
    assert result.exit_code == 0, result.output
    return to_netcdf(open_dataset(store), folder / f"{name}.nc", call="export")


def downscaled_e1(world):
    return world.downscaler.downscale(world.coarse_e1)


def error_maps(world):
    out, truth = downscaled_e1(world)["air_temperature"], world.e1["air_temperature"]
    return xr.merge(
        [rmse_map(out, truth), r2_map(out, truth), correlation(out, truth).rename("corr")]
    )


def cordex_emulation(axes: bool) -> xr.Dataset:
    """An emulation on a CORDEX rotated-pole grid: ``rlat``/``rlon`` (with their
    ``axis``, as CORDEX files have them, or without), 2-D latitude and longitude, a
    ``rotated_pole`` grid mapping. The axes were written on the 2-D latitude and
    longitude: "'pr' has duplicate axis Y defined by [lat, rlat]", or rlat and rlon
    of unknown axes ("not in the recommended order T, Z, Y, X")."""
    rlat, rlon = np.arange(-3.0, 3.0), np.arange(-4.0, 4.0)
    lon, lat = np.meshgrid(10.0 + rlon, 50.0 + rlat)
    rng = np.random.default_rng(0)
    fields = {
        name: (("time", "rlat", "rlon"), rng.gamma(2.0, scale, (30, 6, 8)), attrs)
        for name, scale, attrs in (
            ("tas", 100.0, {"units": "K", "standard_name": "air_temperature"}),
            ("pr", 1e-5, {"units": "kg m-2 s-1", "standard_name": "precipitation_flux"}),
        )
    }
    ds = xr.Dataset(
        fields,
        coords={
            "time": xr.date_range("2000-01-01", periods=30, use_cftime=True),
            "rlat": ("rlat", rlat, {"standard_name": "grid_latitude", "units": "degrees"}),
            "rlon": ("rlon", rlon, {"standard_name": "grid_longitude", "units": "degrees"}),
            "lat": (("rlat", "rlon"), lat, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": (("rlat", "rlon"), lon, {"standard_name": "longitude", "units": "degrees_east"}),
            "rotated_pole": ((), 0, {"grid_mapping_name": "rotated_latitude_longitude",
                                     "grid_north_pole_latitude": 39.25,
                                     "grid_north_pole_longitude": -162.0}),
        },
    )  # fmt: skip
    if axes:
        ds["rlat"].attrs["axis"], ds["rlon"].attrs["axis"] = "Y", "X"
    return cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=2).fit(ds, "pr", "tas").emulate(ds)


WRITERS = {
    "demo": lambda world, path: run_demo(path.parent / "demo", n_members=2, n_years=3).netcdf,
    "eof_emulate": lambda world, path: to_netcdf(world.eof.emulate(world.circulation), path),
    "cordex_emulate": lambda world, path: to_netcdf(cordex_emulation(axes=True), path),
    "rotated_pole_emulate": lambda world, path: to_netcdf(cordex_emulation(axes=False), path),
    "llaae_emulate": lambda world, path: to_netcdf(
        cl.LLAAE(latent_dim=2, epochs=1, filters=(8,))
        .fit(world.circulation, "pr", "psl")
        .emulate(world.circulation),
        path,
    ),
    "downscale": lambda world, path: to_netcdf(downscaled_e1(world), path),
    "vae_decode": lambda world, path: to_netcdf(
        world.vae.decode(world.vae.encode(world.fields)), path
    ),
    "vae_reconstruct": lambda world, path: to_netcdf(world.vae.reconstruct(world.fields), path),
    "weather": lambda world, path: to_netcdf(
        weather_generator(world.eof, world.circulation, n_realizations=2), path
    ),
    "vae_sample": lambda world, path: to_netcdf(world.vae.sample(3), path),
    "zarr_downscale_draws": lambda world, path: cli_export(
        world, "downscale", "noisy", "coarse_e1.nc", "--n-samples", "2"
    ),
    "regrid_output": lambda world, path: to_netcdf(world.coarse_e1, path),
    "regrid_weights": lambda world, path: world.regridder.to_netcdf(path),
    # streamed: read lazily, one time block at a time (`climlatent regrid`)
    "regrid_file": lambda world, path: regrid_file(
        sample_data_path("ostia_monthly.nc"), "r36x18", path, time_chunk=20
    ),
    "zarr_emulate": lambda world, path: cli_export(world, "emulate", "eof", "member_*.nc"),
    "zarr_downscale": lambda world, path: cli_export(
        world, "downscale", "downscaler", "coarse_e1.nc"
    ),
    "error_maps": lambda world, path: to_netcdf(error_maps(world), path),
    "annual_maxima": lambda world, path: to_netcdf(annual_maxima(world.circulation["pr"]), path),
}


def written(world, kind: str) -> Path:
    """The file of ``WRITERS[kind]``, written once."""
    if kind not in world.written:
        world.written[kind] = WRITERS[kind](world, world.folder / f"{kind}.nc")
    return world.written[kind]


@pytest.mark.parametrize("kind", WRITERS)
def test_cf_checker_finds_no_error_or_warning_of_ours(world, kind):
    path = written(world, kind)
    failed, crashed = cf_failures(path)
    ours = [
        (priority, msg)
        for priority, msg in failed
        if priority >= WARNING and not any(m in msg for m in NOT_OURS.get(kind, []))
    ]
    assert ours == [], f"{kind}: {ours}"
    with netCDF4.Dataset(path) as nc:
        assert nc.Conventions == "CF-1.8"
        strings = any(v.dtype is str for v in nc.variables.values())
    assert crashed <= ({STRING_COORDINATE_CRASH} if strings else set()), crashed


def all_attributes(path: Path) -> dict[str, dict]:
    """Global ('') and per-variable attributes of a netCDF file, history aside."""
    with netCDF4.Dataset(path) as nc:
        found = {"": {k: nc.getncattr(k) for k in nc.ncattrs() if k != "history"}}
        for name, var in nc.variables.items():
            found[name] = {k: var.getncattr(k) for k in var.ncattrs()}
    return found


def test_downscaling_e1_with_a_model_fitted_on_a1b_describes_e1(world):
    path = to_netcdf(downscaled_e1(world), world.folder / "e1_fine.nc")
    attributes = all_attributes(path)
    assert "A1B" not in repr(attributes)
    assert attributes[""]["scenario"] == world.e1.attrs["scenario"] == "E1"
    assert attributes["air_temperature"] == {
        "_FillValue": np.float32(1e20),
        "standard_name": "air_temperature",
        "units": "K",
        "cell_methods": "time: mean (interval: 6 hour)",
        "coordinates": "forecast_period forecast_reference_time height",
        "grid_mapping": "latitude_longitude",
    }
    history = xr.open_dataset(path).attrs["history"].splitlines()
    assert "Regridder" in history[0] and "ProxyDownscaler" in history[-2]


def test_downscaling_keeps_the_inputs_scalar_coords_time_bounds_and_grid_mapping(world):
    out = downscaled_e1(world)
    source = world.coarse_e1
    for name in ("height", "forecast_reference_time", "forecast_period", "time_bnds"):
        xr.testing.assert_identical(out[name].variable, source[name].variable)
    assert out["time"].attrs == source["time"].attrs
    back = open_dataset(to_netcdf(out, world.folder / "e1_coords.nc"), chunks=None)
    assert back["air_temperature"].encoding["grid_mapping"] == "latitude_longitude"
    xr.testing.assert_identical(back["time_bnds"].variable, source["time_bnds"].variable)
    # the coarse input's latitude bounds do not describe the fine output grid
    assert "bounds" not in back["latitude"].attrs and "latitude_bnds" not in back.variables


def history_calls(attrs: dict) -> list[str]:
    """The history lines without their timestamps."""
    return [re.sub(r"^\S+Z ", "", line) for line in attrs["history"].splitlines()]


@pytest.mark.parametrize(
    ("method", "model", "inputs"),
    [("emulate", "eof", "member_*.nc"), ("downscale", "downscaler", "coarse_e1.nc")],
)
def test_python_and_cli_outputs_carry_the_same_attributes(world, method, model, inputs):
    folder = world.folder
    opened = open_dataset(str(folder / inputs), chunks=None)
    python = getattr(getattr(world, model), method)(opened)
    api = to_netcdf(python, folder / f"api_{method}.nc", call="export")
    cli_path = cli_export(world, method, model, inputs)
    api_attrs, cli_attrs = all_attributes(api), all_attributes(cli_path)
    if "member" not in opened.dims:  # the CLI stacks its input files along a member dim
        assert cli_attrs.pop("member") == {"standard_name": "realization"}
    assert api_attrs == cli_attrs
    api_calls, cli_calls = (history_calls(xr.open_dataset(p).attrs) for p in (api, cli_path))
    # the same calls, and the command that wrote the CLI's zarr store before the export
    store = folder / f"cli_{method}.zarr"
    words = ["climlatent", method, f"{folder / model}.clm", str(folder / inputs), "--output"]
    command = f"climlatent {__version__}: {shlex.join([*words, str(store)])}"
    store_lines = [line for line in cli_calls if line.split(": ", 1)[1].startswith("climlatent ")]
    assert store_lines == [command]
    assert cli_calls.index(store_lines[0]) == len(cli_calls) - 2
    assert [line for line in cli_calls if line not in store_lines] == api_calls


def test_vae_outputs_describe_their_input_not_the_training_fields(world):
    other = world.fields.assign_attrs(source="other fields", history="made by hand")
    out = world.vae.reconstruct(other)
    assert out.attrs["source"] == "other fields"
    assert out.attrs["history"].splitlines()[0] == "made by hand"
    assert "VAE(" in out.attrs["history"].splitlines()[-1]
    decoded = world.vae.decode(world.vae.encode(other))
    for result in (out, decoded):
        assert result["p"].attrs == {"units": "1", "long_name": "pressure"}
    assert "source" not in decoded.attrs


def test_derived_scores_have_their_own_name_and_units(world):
    out, truth = downscaled_e1(world)["air_temperature"], world.e1["air_temperature"]
    scores = {
        "rmse_map": rmse_map(out, truth),
        "r2_map": r2_map(out, truth),
        "correlation": correlation(out, truth),
        "mse": mse(out, truth),
        "rmse": rmse(out, truth),
        "mse_skill_score": mse_skill_score(out, truth, truth.mean("time")),
    }
    units = {"rmse_map": "K", "mse": "K2", "rmse": "K"}
    for name, score in scores.items():
        assert set(score.attrs) == {"long_name", "units"}, name
        assert score.attrs["units"] == units.get(name, "1"), name


def test_cf_encode_names_cf_1_8_and_drops_what_is_not_in_the_file():
    ds = xr.Dataset(
        {"tas": (("lat", "lon"), np.ones((2, 2)), {"units": "K"})},
        coords={
            "lat": ("lat", [0.0, 1.0], {"bounds": "lat_bnds"}),
            "lon": [0.0, 1.0],
            "realization": ("realization", np.arange(2, dtype=np.int64)),
        },
        attrs={"Conventions": "CF-1.5 ACDD-1.3"},
    )
    encoded = cf_encode(ds)
    assert encoded.attrs["Conventions"] == "CF-1.8 ACDD-1.3"
    assert "bounds" not in encoded["lat"].attrs and ds["lat"].attrs["bounds"] == "lat_bnds"
    assert encoded["realization"].encoding == {"dtype": "int32", "_FillValue": None}
    assert encoded["realization"].attrs == {"standard_name": "realization", "units": "1"}


# What iris says of a string member coordinate (see STRING_COORDINATE_CRASH): its
# "realization" is no numeric dimension coordinate, so iris keeps it as an auxiliary one.
STRING_MEMBER_WARNINGS = ("variable length type", "Not all file objects were parsed")


@pytest.mark.parametrize("kind", WRITERS)
def test_iris_reads_each_variable_with_its_values_units_cell_methods_and_times(world, kind):
    iris = pytest.importorskip("iris", reason="a peer reader: pip install scitools-iris")
    path = written(world, kind)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cubes = iris.load(str(path))
    with netCDF4.Dataset(path) as nc:
        strings = any(v.dtype is str for v in nc.variables.values())
    said = [str(w.message) for w in caught]
    assert [m for m in said if not (strings and any(k in m for k in STRING_MEMBER_WARNINGS))] == []
    ds = xr.open_dataset(path, decode_coords="all", decode_times=xr.coders.CFDatetimeCoder(True))
    assert sorted(cube.var_name for cube in cubes) == sorted(ds.data_vars)
    for cube in cubes:
        da = ds[cube.var_name]
        assert str(cube.units) == da.attrs.get("units", "unknown"), cube.var_name
        methods = " ".join(str(method) for method in cube.cell_methods)
        assert methods == da.attrs.get("cell_methods", ""), cube.var_name
        np.testing.assert_array_equal(np.ma.filled(cube.data.astype(float), np.nan), da.values)
        assert set(da.encoding.get("coordinates", "").split()) <= {
            c.var_name for c in cube.coords()
        }
        for coord in cube.coords():
            if coord.units.is_time_reference():
                dates = coord.units.num2date(coord.points)
                assert list(dates) == list(np.ravel(ds[coord.var_name].values)), coord.var_name


def test_a_regridded_file_keeps_auxiliary_times_with_bounds_on_its_variable(world):
    """OSTIA's monthly ``forecast_reference_time`` (with bounds) stays a coordinate of
    the regridded sea surface temperature, for xarray and iris, with its values."""
    source = open_dataset(sample_data_path("ostia_monthly.nc"), chunks=None)
    back = open_dataset(written(world, "regrid_file"), chunks=None)
    sst = back["surface_temperature"]
    for name in ("forecast_reference_time", "forecast_period"):
        assert name in sst.coords, name
        xr.testing.assert_identical(sst[name].variable, source[name].variable)
    iris = pytest.importorskip("iris", reason="a peer reader: pip install scitools-iris")
    (cube,) = iris.load(str(written(world, "regrid_file")))
    coord = cube.coord("forecast_reference_time")
    assert list(coord.units.num2date(coord.points)) == list(
        source["forecast_reference_time"].values
    )


def test_cf_encode_writes_no_variable_attribute_as_a_global_one(world):
    """xr.merge of score maps gives the Dataset the first map's units and long name."""
    maps = error_maps(world)
    assert maps.attrs == {"long_name": "root mean squared error", "units": "K"}
    with netCDF4.Dataset(to_netcdf(maps, world.folder / "maps.nc")) as nc:
        assert {"units", "long_name"} & set(nc.ncattrs()) == set()
        assert nc["rmse"].units == "K" and nc["r2"].units == "1"
