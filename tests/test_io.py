import itertools
import re
import shutil
import subprocess
import sys
import tracemalloc

import dask.array
import netCDF4
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import climlatent as cl
from climlatent.errors import InputDataError, MissingDependencyError
from climlatent.io import SharedTimeAxis, natural_key, open_dataset, to_netcdf
from conftest import rectilinear


def test_written_file_is_cf_in_netcdf4(tmp_path):
    da = rectilinear().where(rectilinear().lat > 0)
    path = to_netcdf(da.to_dataset(), tmp_path / "tas.nc", call="test_written_file")
    with netCDF4.Dataset(path) as nc:
        assert nc.Conventions == "CF-1.8"
        assert "climlatent" in nc.history and "test_written_file" in nc.history
        assert nc["tas"]._FillValue == 1e20
        assert nc["tas"].units == "K"
        assert nc["lat"].standard_name == "latitude" and nc["lat"].axis == "Y"
        assert nc["lon"].units == "degrees_east"
        assert nc["time"].calendar == "noleap"
        assert "_FillValue" not in nc["lat"].ncattrs()
    back = open_dataset(path, chunks=None)
    xr.testing.assert_allclose(back["tas"], da)  # NaN mask survives
    if shutil.which("ncdump"):
        header = subprocess.run(["ncdump", "-h", str(path)], capture_output=True, text=True).stdout
        assert 'tas:units = "K"' in header


def test_history_lines_accumulate(tmp_path):
    ds = xr.Dataset({"a": ("x", [1.0])}, attrs={"history": "made by hand"})
    path = to_netcdf(ds, tmp_path / "a.nc", call="step two")
    lines = xr.open_dataset(path).attrs["history"].splitlines()
    assert lines[0] == "made by hand" and lines[1].endswith("climlatent 0.1.0: step two")


def test_failure_during_write_leaves_no_file(tmp_path):
    def explode(block):
        raise RuntimeError("disk on fire")

    lazy = dask.array.ones((4, 3), chunks=(2, 3)).map_blocks(explode, dtype=float)
    ds = xr.Dataset({"a": (("x", "y"), lazy)})
    with pytest.raises(RuntimeError, match="disk on fire"):
        to_netcdf(ds, tmp_path / "a.nc")
    assert list(tmp_path.iterdir()) == []


def test_a_netcdf_write_failure_names_the_file(tmp_path):
    """A file over the size limit (as on a full disk) failed as 'NetCDF: HDF error' alone."""
    resource = pytest.importorskip("resource")
    signal = pytest.importorskip("signal")
    ds = xr.Dataset({"a": ("x", np.arange(100_000.0))})
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, limits[1]))
    try:
        with pytest.raises(RuntimeError) as raised:
            to_netcdf(ds, tmp_path / "a.nc")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)
    assert str(raised.value) == f"NetCDF: HDF error (while writing '{tmp_path / 'a.nc'}')"
    assert list(tmp_path.iterdir()) == []


def test_existing_file_survives_failed_overwrite(tmp_path):
    path = to_netcdf(xr.Dataset({"a": ("x", [1.0])}), tmp_path / "a.nc")
    bad = xr.Dataset(
        {"a": ("x", dask.array.from_array(np.ones(2)).map_blocks(lambda b: 1 / 0, dtype=float))}
    )
    with pytest.raises(ZeroDivisionError):
        to_netcdf(bad, path)
    assert xr.open_dataset(path)["a"].values.tolist() == [1.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nc"]


def test_a_folder_at_the_output_path_is_refused_before_computing(tmp_path):
    """The data was computed in full, then os.replace failed naming the temporary file."""
    computed = []

    def count(block):
        computed.extend([block.shape] if block.size else [])  # not dask's empty probe
        return block

    lazy = dask.array.ones((4, 3), chunks=(2, 3)).map_blocks(count, dtype=float)
    (tmp_path / "a.nc").mkdir()
    with pytest.raises(IsADirectoryError, match=r"output '.*a\.nc' is a folder"):
        to_netcdf(xr.Dataset({"a": (("x", "y"), lazy)}), tmp_path / "a.nc")
    assert computed == []
    assert [p.name for p in tmp_path.iterdir()] == ["a.nc"] and (tmp_path / "a.nc").is_dir()


@pytest.mark.parametrize("as_list", [False, True])
@pytest.mark.parametrize("name", ["model.clm", "model.clm/", "*.clm"])
def test_a_folder_given_as_a_netcdf_file_is_named_as_a_folder(tmp_path, name, as_list):
    """A folder (a saved model, a data folder) was reported as not existing."""
    (tmp_path / "model.clm").mkdir()
    source = str(tmp_path / name)
    with pytest.raises(IsADirectoryError, match=r"'.*model\.clm/?' is a folder, not a netCDF file"):
        open_dataset([source] if as_list and "*" not in name else source)


def test_a_file_named_with_glob_characters_is_that_file(tmp_path):
    """``tas[1].nc`` was only a glob: "no file matches" though it exists, in
    ``open_dataset`` and in ``climlatent emulate``; a glob matching other files is
    taken as the glob (``tas1.nc``), as CDO takes it."""
    for name, value in (("tas[1].nc", 280.0), ("tas1.nc", 300.0)):
        ds = xr.Dataset({"tas": ("time", np.full(2, value), {"units": "K"})})
        to_netcdf(ds.assign_coords(time=[0.0, 1.0]), tmp_path / name)
    assert open_dataset(tmp_path / "tas[1].nc")["tas"].values.tolist() == [300.0, 300.0]
    (tmp_path / "tas1.nc").unlink()
    assert open_dataset(tmp_path / "tas[1].nc")["tas"].values.tolist() == [280.0, 280.0]
    assert cl.batch.members._expand(str(tmp_path / "tas[1].nc")) == [str(tmp_path / "tas[1].nc")]
    with pytest.raises(FileNotFoundError, match=r"no file matches '.*tas\[2\]\.nc'"):
        open_dataset(tmp_path / "tas[2].nc")


def test_open_netcdf_glob_and_zarr(tmp_path):
    ds = cl.datasets.synthetic_circulation(n_members=1, n_years=2, n_lat=4, n_lon=5)
    first, second = ds.isel(time=slice(0, 365)), ds.isel(time=slice(365, None))
    to_netcdf(first, tmp_path / "part1.nc")
    to_netcdf(second, tmp_path / "part2.nc")
    single = open_dataset(tmp_path / "part1.nc")
    assert isinstance(single["pr"].data, dask.array.Array)  # lazy
    assert single.time.values[0].calendar == "noleap"
    both = open_dataset(str(tmp_path / "part*.nc"))
    xr.testing.assert_allclose(both["psl"].load(), ds["psl"])
    ds.to_zarr(tmp_path / "store.zarr")
    xr.testing.assert_allclose(open_dataset(tmp_path / "store.zarr")["psl"].load(), ds["psl"])


def test_a_zarr_store_without_zarr_installed_names_the_extra(tmp_path, monkeypatch):
    """zarr is in the ``dask`` extra: a base install failed inside xarray's backend."""
    ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=4, n_lon=5)
    ds.to_zarr(tmp_path / "store.zarr")
    monkeypatch.setitem(sys.modules, "zarr", None)  # imports of it fail, as if not installed
    with pytest.raises(MissingDependencyError, match=r"needs zarr.*'climlatent\[dask\]'"):
        open_dataset(tmp_path / "store.zarr")


def test_members_of_several_files_keep_their_whole_labels(tmp_path):
    """Opened in natural order, r1 first: its 8-character width must not cut r10."""
    ds = cl.datasets.synthetic_circulation(n_members=10, n_years=1, n_lat=4, n_lon=5)
    for label in ds.member.values:
        to_netcdf(ds.sel(member=[label]), tmp_path / f"{label}.nc")
    both = open_dataset(str(tmp_path / "r*.nc"))
    assert list(both.member.values) == [f"r{i}i1p1f1" for i in range(1, 11)]
    written = to_netcdf(both, tmp_path / "ensemble.nc")
    with xr.open_dataset(written) as again:
        assert list(again.member.values) == list(both.member.values)


def test_a_shared_time_axis_is_decoded_once_each_file_as_xarray_decodes_it(tmp_path):
    """Two members on one time axis (with bounds) share its dates; a third member a
    year later gets its own; a field of dates stays lazy. Each file's dates equal
    xarray's own decoding of it."""
    ds = cl.datasets.synthetic_circulation(n_members=3, n_years=1, n_lat=4, n_lon=5)[["psl"]]
    days = np.arange(ds.sizes["time"], dtype=float)
    paths = []
    for i, start in enumerate(["1981-01-01", "1981-01-01", "1982-01-01"]):
        units = {"units": f"days since {start}", "calendar": "noleap"}
        member = ds.isel(member=[i]).assign_coords(
            time=xr.Variable("time", days, {**units, "bounds": "time_bnds"}),
            time_bnds=xr.Variable(("time", "bnds"), np.stack([days, days + 1], axis=1), units),
        )
        member["onset"] = xr.Variable(member["psl"].dims, np.zeros(member["psl"].shape), units)
        paths.append(tmp_path / f"r{i}.nc")
        member.to_netcdf(paths[-1])
    coder = SharedTimeAxis()
    opened = [open_dataset(path, chunks=None, time_coder=coder) for path in paths]
    for path, got in zip(paths, opened, strict=True):
        reference = xr.open_dataset(
            path, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True), decode_coords="all"
        )
        assert not got["onset"].variable._in_memory  # a field of dates: decoded lazily
        for name in ("time", "time_bnds", "onset"):
            assert got[name].values.tolist() == reference[name].values.tolist(), (path, name)
    bounds = [got["time_bnds"].values for got in opened]
    assert np.shares_memory(bounds[0], bounds[1])
    assert not np.shares_memory(bounds[0], bounds[2])
    assert str(bounds[2][0, 0]) == "1982-01-01 00:00:00"


def test_missing_paths_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.nc"):
        open_dataset(tmp_path / "nothere.nc")
    with pytest.raises(FileNotFoundError, match=r"no file matches .*\*\.nc"):
        open_dataset(str(tmp_path / "*.nc"))
    with pytest.raises(FileNotFoundError, match="output folder"):
        to_netcdf(xr.Dataset(), tmp_path / "missing" / "out.nc")


def test_unknown_calendar_file_named(tmp_path):
    time = xr.Variable(
        "time", np.arange(3.0), {"units": "days since 2000-01-01", "calendar": "bogus"}
    )
    xr.Dataset({"a": ("time", np.ones(3))}, coords={"time": time}).to_netcdf(tmp_path / "b.nc")
    with pytest.raises(InputDataError, match="b.nc.*bogus"):
        open_dataset(tmp_path / "b.nc")


@pytest.mark.parametrize(
    "encoding",
    [
        {"dtype": "int16", "scale_factor": 0.01, "add_offset": 280.0, "_FillValue": -32767},
        {"missing_value": -999.0},
    ],
    ids=["packed", "missing_value"],
)
def test_a_file_read_packed_or_with_missing_value_is_written_back(tmp_path, encoding):
    """The file's packing (or missing_value) met climlatent's _FillValue 1e20: an
    OverflowError, or 'conflicting _FillValue and missing_value'."""
    tas = rectilinear(n_time=4).astype(np.float32)
    tas[0, 0, 0] = np.nan
    tas.to_dataset().to_netcdf(tmp_path / "in.nc", encoding={"tas": encoding})
    opened = open_dataset(tmp_path / "in.nc", chunks=None)
    to_netcdf(opened, tmp_path / "out.nc")
    back = xr.open_dataset(tmp_path / "out.nc")["tas"]
    np.testing.assert_array_equal(back.values, opened["tas"].values)  # NaN where it was
    assert np.isnan(back.values[0, 0, 0]) and back.encoding["_FillValue"] == 1e20


def test_a_360_day_file_counting_months_is_written_back(tmp_path):
    """xarray reads 'months since' on a 360_day calendar but cannot encode it: KeyError."""
    ds = xr.Dataset({"tas": ("time", np.arange(3.0), {"units": "K"})})
    ds = ds.assign_coords(
        time=("time", np.arange(3.0), {"units": "months since 2000-01-01", "calendar": "360_day"})
    )
    ds.to_netcdf(tmp_path / "in.nc")
    opened = open_dataset(tmp_path / "in.nc", chunks=None)
    to_netcdf(opened, tmp_path / "out.nc")
    back = open_dataset(tmp_path / "out.nc", chunks=None)
    assert [t.month for t in back.time.values] == [1, 2, 3]
    assert back.time.encoding["units"] == "days since 2000-01-01"


def test_hourly_times_with_a_float32_encoding_are_written_to_the_second(tmp_path):
    """A file's float32 "days since 1850" holds whole days but not the hours of 2015:
    hourly times written so came back up to 112 s off (32 of 48)."""
    time = xr.date_range("2014-12-31", periods=48, freq="h")
    ds = xr.Dataset({"tas": ("time", np.zeros(48, "f4"), {"units": "K"})}, coords={"time": time})
    ds.time.encoding = {"units": "days since 1850-01-01", "dtype": np.dtype("float32")}
    back = xr.open_dataset(to_netcdf(ds, tmp_path / "hourly.nc"))
    np.testing.assert_array_equal(back.time.values, time.values)
    assert back.time.encoding["dtype"] == np.float64


def test_bounds_are_not_given_the_scalar_coordinates_of_the_fields(tmp_path):
    """One member of an ensemble: xarray listed its scalar 'member' as a coordinate of
    lat_bnds, lon_bnds and time_bnds, and CDO called them inconsistent."""
    ds = cl.datasets.synthetic_circulation(n_members=2, n_years=1, n_lat=4, n_lon=6).isel(member=0)
    path = to_netcdf(ds[["pr", "lat_bnds", "lon_bnds"]], tmp_path / "one.nc")
    with netCDF4.Dataset(path) as nc:
        assert "coordinates" not in nc["lat_bnds"].ncattrs()
        assert "coordinates" not in nc["lon_bnds"].ncattrs()
        assert "member" in nc["pr"].coordinates


def _packed_file(path, unsigned: bool) -> None:
    """int16 packed with scale 0.01 and offset -100, valid_range in packed units (CF)."""
    raw = np.array([0, 5000, 10000, 15000, 20000, 30000, -2], "i2")  # -2: 65534 unsigned
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("x", raw.size)
        var = nc.createVariable("tas", "i2", ("x",), fill_value=np.int16(-1))
        var.set_auto_maskandscale(False)
        var.setncatts({"scale_factor": 0.01, "add_offset": -100.0, "units": "K"})
        var.valid_range = np.array([0, 20000] if not unsigned else [0, -3], "i2")
        if unsigned:
            var._Unsigned = "true"
        var[:] = raw


@pytest.mark.parametrize("unsigned", [False, True])
def test_packed_data_reads_and_writes_as_netcdf4_reads_it(tmp_path, unsigned):
    # Written back, _Unsigned data was cast to integers (327.69 -> 328, NaN -> -9e18)
    # and valid_range stayed in packed units over float data (good values masked);
    # read, values beyond valid_range were numbers where CF and netCDF4 say missing.
    _packed_file(tmp_path / "in.nc", unsigned)
    with netCDF4.Dataset(tmp_path / "in.nc") as nc:
        expected = np.ma.filled(nc["tas"][:].astype(float), np.nan)
    assert np.isnan(expected).sum() == (1 if unsigned else 2)  # beyond valid_range
    ds = open_dataset(tmp_path / "in.nc", chunks=None)
    np.testing.assert_allclose(ds["tas"].values, expected, rtol=1e-6)
    to_netcdf(ds, tmp_path / "out.nc")
    with netCDF4.Dataset(tmp_path / "out.nc") as nc:
        assert nc["tas"].dtype.kind == "f" and "_Unsigned" not in nc["tas"].ncattrs()
        np.testing.assert_allclose(np.ma.filled(nc["tas"][:], np.nan), expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("scale", "offset", "limits"),
    [
        (0.024630671, 161.1102, (-3346, 6351)),
        (0.06916457, -192.85687, (-13188, 11888)),
        (-0.5, 10.0, (-20, 30)),
    ],
)
def test_packed_values_on_the_valid_range_are_kept_as_netcdf4_keeps_them(
    tmp_path, scale, offset, limits
):
    # float32 scale_factor/add_offset: xarray unpacks in float32, the limits were
    # unpacked in float64, and a good value on a limit fell one float32 step beyond it.
    # A negative scale_factor unpacked valid_range (-20, 30) to (20, -5): every value
    # was masked (netCDF4 masks the two beyond it), and written so.
    low, high = limits
    raw = np.array([low - 1, low, low + 1, 0, high - 1, high, high + 1], "i2")
    with netCDF4.Dataset(tmp_path / "in.nc", "w") as nc:
        nc.createDimension("x", raw.size)
        var = nc.createVariable("tas", "i2", ("x",))
        var.set_auto_maskandscale(False)
        var.setncatts({"scale_factor": np.float32(scale), "add_offset": np.float32(offset)})
        var.valid_range = np.array(limits, "i2")
        var[:] = raw
    with netCDF4.Dataset(tmp_path / "in.nc") as nc:
        expected = np.ma.filled(nc["tas"][:].astype(float), np.nan)
    assert np.isnan(expected).tolist() == [True] + [False] * 5 + [True]
    for chunks in (None, "auto"):
        ds = open_dataset(tmp_path / "in.nc", chunks=chunks)
        np.testing.assert_array_equal(np.isnan(ds["tas"].values), np.isnan(expected))
        np.testing.assert_allclose(ds["tas"].values, expected, rtol=1e-6)
    with netCDF4.Dataset(to_netcdf(ds, tmp_path / "out.nc")) as nc:  # limits kept on write
        np.testing.assert_array_equal(np.ma.getmaskarray(nc["tas"][:]), np.isnan(expected))


@pytest.mark.parametrize(("dtype", "floats"), [("i2", "float32"), ("i4", "float64")])
def test_integer_values_beyond_their_valid_limits_are_missing_as_netcdf4_reads_them(
    tmp_path, dtype, floats
):
    """An unpacked integer variable was never masked: 9 beyond valid_max 5 read as 9."""
    with netCDF4.Dataset(tmp_path / "qc.nc", "w") as nc:
        nc.createDimension("x", 4)
        var = nc.createVariable("qc", dtype, ("x",))
        var.valid_min, var.valid_max = np.array([0, 5], dtype)
        var[:] = np.array([-1, 1, 5, 9], dtype)
    with netCDF4.Dataset(tmp_path / "qc.nc") as nc:
        expected = np.ma.filled(nc["qc"][:].astype(float), np.nan)
    assert np.isnan(expected).tolist() == [True, False, False, True]
    for chunks in (None, "auto"):
        qc = open_dataset(tmp_path / "qc.nc", chunks=chunks)["qc"]
        assert qc.dtype == floats
        np.testing.assert_array_equal(qc.values, expected)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.sampled_from(["i1", "i2", "u1", "u2", "i4"]), st.data())
def test_packed_fields_read_as_netcdf4_reads_them(tmp_path, dtype, data):
    """Random packed integers (values on the limits, a _FillValue or none, scale and
    offset of either sign or none, valid_range or valid_min/max) read as netCDF4 reads
    them: the same values (to float32 round-off), missing where it masks."""
    whole = st.integers(int(np.iinfo(dtype).min), int(np.iinfo(dtype).max))
    raw = np.array(data.draw(st.lists(whole, min_size=2, max_size=8)), dtype)
    low = data.draw(whole)
    high = data.draw(st.integers(low, int(np.iinfo(dtype).max)))
    raw[:2] = low, high
    fill = data.draw(st.one_of(st.none(), whole))
    if fill is None:  # netCDF4 masks its default fill value, xarray does not
        raw[raw == netCDF4.default_fillvals[dtype]] = low
        assume(netCDF4.default_fillvals[dtype] not in raw)
    scale = data.draw(st.sampled_from([None, 0.01, 2.5, 1 / 3, -0.5]))
    offset = data.draw(st.sampled_from([None, 0.0, -100.0, 273.15]))
    limits = data.draw(st.sampled_from(["valid_range", "valid_min", "valid_max", "both"]))
    path = tmp_path / f"packed{len(list(tmp_path.iterdir()))}.nc"  # a file read before is cached
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("x", raw.size)
        var = nc.createVariable("v", dtype, ("x",), fill_value=False if fill is None else fill)
        var.set_auto_maskandscale(False)
        var.setncatts(
            {k: v for k, v in (("scale_factor", scale), ("add_offset", offset)) if v is not None}
        )
        if limits == "valid_range":
            var.valid_range = np.array([low, high], dtype)
        if limits in ("valid_min", "both"):
            var.valid_min = np.array(low, dtype)
        if limits in ("valid_max", "both"):
            var.valid_max = np.array(high, dtype)
        var[:] = raw
    with netCDF4.Dataset(path) as nc:
        expected = np.ma.filled(nc["v"][:].astype(float), np.nan)
    with open_dataset(path, chunks=None) as ds:
        got = ds["v"].values.astype(float)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(
        got, expected, rtol=1e-6, atol=1e-6 * np.nanmax(np.abs(expected), initial=1)
    )


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    st.lists(
        st.lists(
            st.one_of(
                st.sampled_from(["r", "i", "_", ".nc", "0", "01", "007"]),
                st.integers(0, 10**20).map(str),
            ),
            min_size=1,
            max_size=5,
        ).map("".join),
        min_size=1,
        max_size=8,
    ),
    st.randoms(use_true_random=False),
)
def test_natural_order_is_a_total_order_by_the_numbers_in_the_labels(labels, rng):
    """Any labels sort to one order whatever order they come in; labels share a key only
    when equal; labels differing in one number sort by its value."""
    ordered = sorted(labels, key=natural_key)
    shuffled = list(labels)
    rng.shuffle(shuffled)
    assert sorted(shuffled, key=natural_key) == ordered
    for first, second in itertools.pairwise(ordered):
        assert natural_key(first) <= natural_key(second)
        assert (natural_key(first) == natural_key(second)) == (first == second)
    numbers = [int(n) for n in re.findall(r"[0-9]+", "".join(labels))]
    members = sorted((f"r{n}i1p1f1" for n in numbers), key=natural_key)
    assert [int(re.match(r"r([0-9]+)", m).group(1)) for m in members] == sorted(numbers)


def test_a_field_with_valid_limits_opens_without_reading_it(tmp_path):
    """A 6 KB file declaring 10 million unwritten values with a valid_min: open_dataset
    (chunks=None, as open_members and regrid open every file) read and masked all of
    them at once (40 MB here; 1.6 GB for a header of 4e8)."""
    with netCDF4.Dataset(tmp_path / "huge.nc", "w") as nc:
        nc.createDimension("x", 10**7)
        var = nc.createVariable("tas", "f4", ("x",), chunksizes=(10**6,))
        var.valid_min = np.float32(200.0)
        var[:5] = np.float32([100, 250, 300, 150, 280])
    tracemalloc.start()
    try:
        tas = open_dataset(tmp_path / "huge.nc", chunks=None)["tas"]
        peak = tracemalloc.get_traced_memory()[1]
        head = tas[:5].values
    finally:
        tracemalloc.stop()
    assert peak < 4e6, peak
    np.testing.assert_array_equal(head, np.float32([np.nan, 250, 300, np.nan, 280]))
    assert head.dtype == np.float32 and tas.attrs["valid_min"] == 200.0


@pytest.mark.parametrize("fault", ["north_to_south", "overlapping_times", "other_calendar"])
def test_files_that_do_not_combine_by_their_coordinates_are_refused_naming_them(tmp_path, fault):
    field = rectilinear(n_time=6).to_dataset()
    first, second = field.isel(time=slice(0, 3)), field.isel(time=slice(3, None))
    if fault == "north_to_south":
        second = second.isel(lat=slice(None, None, -1))
    elif fault == "overlapping_times":
        second = field.isel(time=slice(2, None))
    else:
        second = second.convert_calendar("360_day", align_on="year")
    paths = [to_netcdf(part, tmp_path / f"tas_{i}.nc") for i, part in enumerate((first, second))]
    with pytest.raises(InputDataError, match="cannot combine the files .*tas_0.nc, .*tas_1.nc"):
        open_dataset(str(tmp_path / "tas_*.nc"))
    assert open_dataset([str(p) for p in paths[:1]])["tas"].sizes["time"] == 3  # one file: fine


def test_a_named_dataarray_is_written_and_unwritable_attributes_are_named(tmp_path):
    field = rectilinear(n_time=2)
    back = open_dataset(to_netcdf(field, tmp_path / "tas.nc"))
    np.testing.assert_array_equal(back["tas"].values, field.values)
    with pytest.raises(InputDataError, match="without a name"):
        to_netcdf(field.rename(None), tmp_path / "x.nc")
    with pytest.raises(InputDataError, match="named as its coordinate 'time'"):
        to_netcdf(field.rename("time"), tmp_path / "x.nc")
    for value in (None, True, {"a": 1}):
        with pytest.raises(InputDataError, match=r"attribute of 'tas' 'flag' is"):
            to_netcdf(field.assign_attrs(flag=value), tmp_path / "x.nc")
    assert not (tmp_path / "x.nc").exists()


@pytest.mark.parametrize("name", ["EOFRegression", "LLAAE", "VAE", "AuxVAE", "VED", "VAEDLM"])
def test_every_encode_output_writes_to_netcdf_and_reads_back_as_it_was(name, tmp_path):
    """VAE.encode and VAEDLM.encode named their output 'latent', as its dim: to_netcdf
    refused it (and it could not become a Dataset); each encoder's latents are now named
    after the variables encoded, ``<variables>_latent``."""
    from test_fit_resume import CASES, circulation

    if name == "EOFRegression":
        data = circulation()
        est = cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=3).fit(data, "pr", "psl")
    else:
        case, data = CASES[name], CASES[name].data()
        est = case.make(epochs=1)
        case.fit(est, data)
    z = est.encode(data)
    encoded = {"EOFRegression": "pr", "LLAAE": "pr", "VED": "psl", "VAEDLM": "u"}
    assert z.name == f"{encoded.get(name, 'psl')}_latent"
    assert z["latent"].values.tolist() == list(range(z.sizes["latent"]))
    assert z["latent"].attrs == {"long_name": "latent dimension"}
    assert z.attrs["units"] == "1" and z.attrs["long_name"].startswith(("latent", "posterior"))
    back = open_dataset(to_netcdf(z, tmp_path / "z.nc"))[z.name].load()
    xr.testing.assert_equal(back, z)  # the writer adds CF attributes to a member coordinate
    assert back.dtype == z.dtype and back.attrs == z.attrs
    assert back["latent"].attrs == z["latent"].attrs
