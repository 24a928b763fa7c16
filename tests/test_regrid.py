import dask
import dask.array as dsa
import netCDF4
import numpy as np
import pytest
import shapely
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.interpolate import RegularGridInterpolator

from climlatent.errors import InputDataError
from climlatent.grid import EARTH_RADIUS, cell_area
from climlatent.regrid import Regridder
from climlatent.regrid.backend import xesmf_available

LAT_ATTRS = {"standard_name": "latitude", "units": "degrees_north"}
LON_ATTRS = {"standard_name": "longitude", "units": "degrees_east"}

# (lat edges, lon edges) of the grids used below, in degrees
GLOBAL_125 = (np.linspace(-90, 90, 145), np.linspace(0, 360, 193))  # 1.25 x 1.875
GLOBAL_25_OFFSET = (np.r_[-90, np.arange(-88.0, 89, 2.5), 90], np.arange(0.5, 361, 3.75))
GLOBAL_3 = (np.linspace(-90, 90, 61), np.linspace(0, 360, 121))
GLOBAL_2_WEST = (np.linspace(-90, 90, 91), np.linspace(-180, 180, 181))  # -180..180
REGION_FINE = (np.linspace(-60, 60, 97), np.linspace(10, 70, 33))
REGION_COARSE = (np.linspace(-60, 60, 41), np.linspace(10, 70, 25))


def grid(lat_edges, lon_edges, bounds=True) -> xr.Dataset:
    """A CF grid Dataset with cell centres at the middle of the edges (and bounds)."""
    lat_edges, lon_edges = np.asarray(lat_edges, float), np.asarray(lon_edges, float)
    ds = xr.Dataset(
        coords={
            "lat": ("lat", 0.5 * (lat_edges[1:] + lat_edges[:-1]), dict(LAT_ATTRS)),
            "lon": ("lon", 0.5 * (lon_edges[1:] + lon_edges[:-1]), dict(LON_ATTRS)),
        }
    )
    if bounds:
        for name, edges in (("lat", lat_edges), ("lon", lon_edges)):
            ds[f"{name}_bnds"] = ((name, "bnds"), np.column_stack([edges[:-1], edges[1:]]))
            ds[name].attrs["bounds"] = f"{name}_bnds"
    return ds


def with_field(ds: xr.Dataset, values, name="tas") -> xr.Dataset:
    return ds.assign({name: (("lat", "lon"), values, {"units": "K"})})


def random_field(ds: xr.Dataset, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(280.0, 10.0, (ds.lat.size, ds.lon.size))


def smooth_field(ds: xr.Dataset) -> np.ndarray:
    lat, lon = np.meshgrid(np.deg2rad(ds.lat), np.deg2rad(ds.lon), indexing="ij")
    return 2.0 + np.cos(lat) ** 2 * np.cos(2 * lon) + np.sin(lat)


def area_mean(values, lat_edges, lon_edges):
    """Area-weighted mean over whole cells, independent of climlatent."""
    area = np.diff(np.sin(np.deg2rad(lat_edges)))[:, None] * np.diff(lon_edges)[None, :]
    return np.sum(values * area) / np.sum(area)


@pytest.mark.parametrize(
    ("src_edges", "dst_edges"),
    [
        (GLOBAL_125, GLOBAL_25_OFFSET),
        (GLOBAL_25_OFFSET, GLOBAL_125),
        (GLOBAL_3, GLOBAL_2_WEST),
        (GLOBAL_2_WEST, GLOBAL_3),
        (REGION_FINE, REGION_COARSE),
        (REGION_COARSE, REGION_FINE),
    ],
    ids=["1.25->2.5off", "2.5off->1.25", "3->2", "2->3", "region-coarsen", "region-refine"],
)
def test_conservative_regridding_conserves_the_area_integral(src_edges, dst_edges):
    src = with_field(grid(*src_edges), random_field(grid(*src_edges)))
    out = Regridder(src, grid(*dst_edges), engine="climlatent")(src)
    before = float((src["tas"] * cell_area(src)).sum())
    after = float((out["tas"] * cell_area(out)).sum())
    assert out["tas"].notnull().all()
    assert after == pytest.approx(before, rel=1e-10)


@st.composite
def global_grids(draw):
    """A global grid of unequal cells (lon cells under 180 degrees) running either way,
    starting anywhere, its longitudes labelled 0..360, -180..180 or as they run."""
    cells = st.lists(st.floats(0.05, 1.0), min_size=1, max_size=7)
    lat_edges = np.append(0.0, np.cumsum(draw(cells)))
    lat_edges = -90.0 + 180.0 * lat_edges / lat_edges[-1]
    lon_edges = np.append(
        0.0, np.cumsum(draw(st.lists(st.floats(0.55, 1.0), min_size=3, max_size=7)))
    )
    lon_edges = draw(st.floats(-180.0, 360.0)) + 360.0 * lon_edges / lon_edges[-1]
    lat_edges = lat_edges[::-1] if draw(st.booleans()) else lat_edges
    lon_edges = lon_edges[::-1] if draw(st.booleans()) else lon_edges
    ds = grid(lat_edges, lon_edges)
    start = draw(st.sampled_from([None, 0.0, -180.0]))
    if start is not None:  # each cell's centre and bounds moved by the same whole turns
        turns = 360.0 * np.floor((ds["lon"].values - start) / 360.0)
        ds["lon_bnds"].values -= turns[:, None]
        ds = ds.assign_coords(lon=ds["lon"] - turns)
    area = np.abs(np.diff(np.sin(np.deg2rad(lat_edges))))[:, None] * np.abs(np.diff(lon_edges))
    return ds, area


@settings(max_examples=25, deadline=None, derandomize=True)
@given(global_grids(), global_grids())
def test_conservative_regridding_between_any_two_global_grids_conserves(source, destination):
    """The area integral of a random field (cell areas from the edges, not climlatent)
    and a constant field are kept, whatever the grids' spacing, direction and labels."""
    (src, src_area), (dst, dst_area) = source, destination
    values = random_field(src)
    regridder = Regridder(src, dst, engine="climlatent")
    out = regridder(with_field(src, values))["tas"].values
    np.testing.assert_allclose((out * dst_area).sum(), (values * src_area).sum(), rtol=1e-12)
    constant = regridder(with_field(src, np.full(values.shape, 273.15)))["tas"].values
    np.testing.assert_allclose(constant, 273.15, rtol=1e-12)
    np.testing.assert_allclose(cell_area(dst).sum(), 4 * np.pi * EARTH_RADIUS**2, rtol=1e-12)


@pytest.mark.parametrize("method", ["conservative", "bilinear", "nearest"])
def test_constant_field_stays_constant(method):
    src = with_field(grid(*GLOBAL_3), np.full((60, 120), 273.15))
    dst = grid(np.linspace(-60, 60, 41), np.linspace(-180, 180, 97))
    out = Regridder(src, dst, method, engine="climlatent")(src)["tas"]
    np.testing.assert_allclose(out, 273.15, rtol=1e-12)


@pytest.mark.parametrize("flip_source_lat", [False, True])
def test_block_coarsening_is_the_area_weighted_block_mean(flip_source_lat):
    lat_edges, lon_edges = np.linspace(-40, 40, 41), np.linspace(0, 80, 41)
    values = random_field(grid(lat_edges, lon_edges))
    src = with_field(grid(lat_edges, lon_edges, bounds=False), values)["tas"]
    if flip_source_lat:  # north to south, as many reanalyses store it
        src = src.isel(lat=slice(None, None, -1))
    dst = grid(lat_edges[::4], lon_edges[::4], bounds=False)
    out = Regridder(src, dst, engine="climlatent")(src)
    expected = [
        [
            area_mean(
                values[4 * i : 4 * i + 4, 4 * j : 4 * j + 4],
                lat_edges[4 * i : 4 * i + 5],
                lon_edges[4 * j : 4 * j + 5],
            )
            for j in range(10)
        ]
        for i in range(10)
    ]
    np.testing.assert_allclose(out.values, expected, rtol=1e-12)


def _equal_area_boxes(lat_edges, lon_edges, shift=0.0):
    """Cells as rectangles in the Lambert cylindrical equal-area projection."""
    y = np.sin(np.deg2rad(lat_edges))
    x = np.deg2rad(np.asarray(lon_edges) + shift)
    y0, x0 = np.meshgrid(y[:-1], x[:-1], indexing="ij")
    y1, x1 = np.meshgrid(y[1:], x[1:], indexing="ij")
    return shapely.box(x0, y0, x1, y1).ravel()


@pytest.mark.parametrize(
    ("src_edges", "dst_edges", "cells"),
    [
        (GLOBAL_125, GLOBAL_25_OFFSET, [(0, 0), (35, 40), (70, 95), (71, 95), (12, 50)]),
        (GLOBAL_3, GLOBAL_2_WEST, [(0, 90), (44, 89), (45, 0), (89, 179), (60, 120)]),
    ],
)
def test_conservative_weights_equal_shapely_overlaps_on_an_equal_area_projection(
    src_edges, dst_edges, cells
):
    weights = Regridder(grid(*src_edges), grid(*dst_edges), engine="climlatent").weights
    src_boxes = [_equal_area_boxes(*src_edges, shift) for shift in (-360.0, 0.0, 360.0)]
    dst_boxes = _equal_area_boxes(*dst_edges).reshape(len(dst_edges[0]) - 1, -1)
    n_lon = len(dst_edges[1]) - 1
    for i, j in cells:
        box = dst_boxes[i, j]
        overlap = sum(shapely.area(shapely.intersection(boxes, box)) for boxes in src_boxes)
        expected = overlap / box.area
        np.testing.assert_allclose(weights[[i * n_lon + j], :].toarray()[0], expected, atol=1e-12)
        assert expected.sum() == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("descending_lat", [False, True])
def test_bilinear_equals_regular_grid_interpolator(descending_lat):
    lat = np.array([-30.0, -25.0, -18.0, -10.0, -4.0, 0.0, 7.0, 15.0, 22.0, 30.0])
    lon = np.arange(10.0, 81.0, 2.5)
    values = random_field(grid(np.r_[lat, 31], np.r_[lon, 81]))
    src = with_field(xr.Dataset(coords={"lat": ("lat", lat, LAT_ATTRS), "lon": lon}), values)
    if descending_lat:
        src = src.isel(lat=slice(None, None, -1))
    dst = xr.Dataset(coords={"lat": np.linspace(-29, 29.5, 17), "lon": np.linspace(10, 79, 23)})
    out = Regridder(src, dst, "bilinear", engine="climlatent")(src)["tas"]
    points = np.stack(np.meshgrid(dst.lat, dst.lon, indexing="ij"), axis=-1)
    expected = RegularGridInterpolator((lat, lon), values, method="linear")(points)
    np.testing.assert_allclose(out.values, expected, rtol=1e-12)


def test_bilinear_is_periodic_across_the_seam_of_a_global_grid():
    src = with_field(grid(*GLOBAL_3), random_field(grid(*GLOBAL_3)))
    dst = xr.Dataset(coords={"lat": [-40.3, 0.0, 12.9], "lon": [-1.2, -0.4, 0.2, 359.1]})
    out = Regridder(src, dst, "bilinear", engine="climlatent")(src)["tas"]
    lon = np.r_[src.lon.values, src.lon.values[0] + 360]
    values = np.concatenate([src["tas"].values, src["tas"].values[:, :1]], axis=1)
    wrapped = np.mod(dst.lon.values - lon[0], 360) + lon[0]
    points = np.stack(np.meshgrid(dst.lat, wrapped, indexing="ij"), axis=-1)
    expected = RegularGridInterpolator((src.lat.values, lon), values)(points)
    np.testing.assert_allclose(out.values, expected, rtol=1e-12)


def _great_circle(lat1, lon1, lat2, lon2):
    p1, p2, dl = np.deg2rad(lat1), np.deg2rad(lat2), np.deg2rad(lon2 - lon1)
    return np.arccos(np.clip(np.sin(p1) * np.sin(p2) + np.cos(p1) * np.cos(p2) * np.cos(dl), -1, 1))


def test_nearest_picks_the_great_circle_nearest_centre_on_a_curvilinear_destination():
    src = grid(np.linspace(-90, 90, 37), np.linspace(0, 360, 73))
    src = with_field(src, np.arange(36 * 72, dtype=float).reshape(36, 72))
    rng = np.random.default_rng(3)
    lat2d, lon2d = rng.uniform(-89, 89, (6, 7)), rng.uniform(-180, 360, (6, 7))
    dst = xr.Dataset(
        coords={
            "nav_lat": (("y", "x"), lat2d, LAT_ATTRS),
            "nav_lon": (("y", "x"), lon2d, LON_ATTRS),
        }
    )
    out = Regridder(src, dst, "nearest", engine="climlatent")(src)["tas"]
    assert out.dims == ("y", "x")
    src_lat, src_lon = (a.ravel() for a in np.meshgrid(src.lat, src.lon, indexing="ij"))
    chosen = out.values.astype(int).ravel()
    for k, (la, lo) in enumerate(zip(lat2d.ravel(), lon2d.ravel(), strict=True)):
        distance = _great_circle(la, lo, src_lat, src_lon)
        assert distance[chosen[k]] == pytest.approx(distance.min(), abs=1e-12)


def _block_setup():
    lat_edges, lon_edges = np.linspace(-40, 40, 41), np.linspace(0, 80, 41)
    values = random_field(grid(lat_edges, lon_edges))
    values[1, 2] = np.nan  # one cell of block (0, 0)
    values[4:8, 4:8] = np.nan  # all of block (1, 1)
    src = with_field(grid(lat_edges, lon_edges), values)
    regridder = Regridder(src, grid(lat_edges[::4], lon_edges[::4]), engine="climlatent")
    return src, regridder, values, lat_edges, lon_edges


def test_nan_propagates_without_skipna():
    src, regridder, _, _, _ = _block_setup()
    out = regridder(src)["tas"].values
    assert np.isnan(out[0, 0]) and np.isnan(out[1, 1])
    assert np.isfinite(out).sum() == out.size - 2


def test_skipna_renormalises_by_the_valid_fraction():
    src, regridder, values, lat_edges, lon_edges = _block_setup()
    out = regridder(src, skipna=True)["tas"].values
    block = values[:4, :4]
    area = np.diff(np.sin(np.deg2rad(lat_edges[:5])))[:, None] * np.diff(lon_edges[:5])[None, :]
    valid = np.isfinite(block)
    expected = np.sum(block[valid] * area[valid]) / np.sum(area[valid])
    assert out[0, 0] == pytest.approx(expected, rel=1e-12)
    assert np.isnan(out[1, 1])  # nothing valid
    assert out[0, 1] == pytest.approx(regridder(src)["tas"].values[0, 1], rel=1e-12)
    # about 1/16 of block (0, 0) is missing
    assert np.isnan(regridder(src, skipna=True, na_thres=0.05)["tas"].values[0, 0])
    assert np.isfinite(regridder(src, skipna=True, na_thres=0.1)["tas"].values[0, 0])


def test_destination_cells_outside_the_source_domain():
    lat_edges, lon_edges = np.linspace(-30, 30, 31), np.linspace(0, 60, 31)
    values = random_field(grid(lat_edges, lon_edges))
    src = with_field(grid(lat_edges, lon_edges), values)
    dst = grid(np.linspace(-36, 36, 19), np.linspace(0, 60, 16))  # rows 0, 17 outside
    regridder = Regridder(src, dst, engine="climlatent")
    strict, renormalised = regridder(src)["tas"].values, regridder(src, skipna=True)["tas"].values
    assert np.isnan(strict[[0, 1, 16, 17]]).all()  # outside, and half outside
    assert np.isnan(renormalised[[0, 17]]).all()
    assert np.isfinite(strict[2:16]).all()
    # cell (1, 0) spans -32..-28 x 0..4: only source cells -30..-28 x 0..4 cover it
    assert renormalised[1, 0] == pytest.approx(values[0, :2].mean(), rel=1e-12)
    bilinear = Regridder(src, dst, "bilinear", engine="climlatent")(src)["tas"].values
    assert np.isnan(bilinear[[0, 17]]).all() and np.isfinite(bilinear[2:16, 1:-1]).all()


def _ensemble(chunked: bool) -> xr.DataArray:
    src = grid(*GLOBAL_3)
    shape = (3, 4, src.lat.size, src.lon.size)
    data = dsa.random.default_rng(0).normal(size=shape, chunks=(1, 2, -1, 60))
    return xr.DataArray(
        data if chunked else data.compute(),
        dims=("member", "time", "lat", "lon"),
        coords={"member": [1, 2, 3], "time": np.arange(4), "lat": src.lat, "lon": src.lon},
        name="pr",
        attrs={"units": "kg m-2 s-1", "standard_name": "precipitation_flux"},
    ).transpose("lat", "member", "time", "lon")


def _forbid_compute(*args, **kwargs):
    raise AssertionError("the regridding computed a dask graph")


def _nearest_source_values(src: xr.Dataset, dst: xr.Dataset) -> np.ndarray:
    """Brute force: the source value at the great-circle nearest centre of each cell."""
    lat, lon = np.meshgrid(src.lat, src.lon, indexing="ij")
    dst_lat, dst_lon = np.meshgrid(dst.lat, dst.lon, indexing="ij")
    distance = _great_circle(
        dst_lat.ravel()[:, None], dst_lon.ravel()[:, None], lat.ravel(), lon.ravel()
    )
    return src["tas"].values.ravel()[distance.argmin(axis=1)].reshape(dst_lat.shape)


def test_extrapolate_fills_empty_cells_with_their_nearest_source_cell():
    """A same-domain fine grid: bilinear leaves its edge cells (beyond the coarse
    centres) empty; extrapolate gives them their nearest coarse value, nothing else."""
    src = with_field(grid(*REGION_COARSE), random_field(grid(*REGION_COARSE)))
    dst = grid(*REGION_FINE)
    plain = Regridder(src, dst, "bilinear", engine="climlatent")(src)["tas"].values
    regridder = Regridder(src, dst, "bilinear", engine="climlatent", extrapolate=True)
    filled = regridder(src)["tas"]
    empty = np.isnan(plain)
    assert 0.05 < empty.mean() < 0.1  # the edges: 8 % of this fine grid
    assert np.isfinite(filled.values).all()
    np.testing.assert_array_equal(filled.values[~empty], plain[~empty])
    np.testing.assert_array_equal(filled.values[empty], _nearest_source_values(src, dst)[empty])
    assert "extrapolate: nearest_s2d" in filled.attrs["regrid_method"]
    assert "extrapolate=True" in repr(regridder)


def test_extrapolate_fills_only_cells_the_method_leaves_empty():
    """Conservative: cells wholly outside the source are filled, partly covered cells
    keep the method's answer (NaN without skipna), covered cells are unchanged."""
    lat_edges, lon_edges = np.linspace(-30, 30, 31), np.linspace(0, 60, 31)
    src = with_field(grid(lat_edges, lon_edges), random_field(grid(lat_edges, lon_edges)))
    dst = grid(np.linspace(-36, 36, 19), np.linspace(0, 60, 21))  # rows 0, 17 outside
    plain = Regridder(src, dst, engine="climlatent")(src)["tas"].values
    filled = Regridder(src, dst, engine="climlatent", extrapolate=True)(src)["tas"].values
    np.testing.assert_array_equal(filled[[0, 17]], _nearest_source_values(src, dst)[[0, 17]])
    np.testing.assert_array_equal(filled[1:17], plain[1:17])  # rows 1, 16 stay NaN
    assert np.isnan(filled[[1, 16]]).all()


def test_extrapolated_answers_never_depend_on_coordinate_order():
    """Destination points outside the source, midway between two source longitudes:
    the nearest-source ties are broken in the canonical layout, whatever the input's."""
    src = with_field(grid(*REGION_COARSE), random_field(grid(*REGION_COARSE)))
    src["tas"][0, 0] = np.nan
    dst = grid(np.linspace(-66, 66, 12), np.arange(11.25, 69.0, 2.5))  # on the midpoints
    dst = dst.isel(lat=slice(None, None, -1))
    reference = Regridder(src, dst, "bilinear", engine="climlatent", extrapolate=True)(src)
    for name, layout in _layouts(src):
        built = Regridder(layout, dst, "bilinear", engine="climlatent", extrapolate=True)
        for out in (built(layout)["tas"], built(src)["tas"]):
            out = out.transpose("lat", "lon")
            np.testing.assert_array_equal(out.values, reference["tas"].values, err_msg=name)
    assert np.isfinite(reference["tas"][0]).all()  # the outside row, filled


@pytest.mark.parametrize("method", ["conservative", "bilinear"])
def test_dask_input_stays_lazy_and_equals_the_numpy_result(method):
    lazy = _ensemble(chunked=True)
    regridder = Regridder(lazy, grid(*GLOBAL_2_WEST), method, engine="climlatent")
    with dask.config.set(scheduler=_forbid_compute):
        out = regridder(lazy)
    assert isinstance(out.data, dsa.Array)
    assert out.dims == ("lat", "member", "time", "lon")
    assert out.chunks[1] == (1, 1, 1)
    assert out.attrs["units"] == "kg m-2 s-1" and out.name == "pr"
    assert out.attrs["regrid_method"].startswith(method)
    assert out.lat.attrs == LAT_ATTRS and out.member.values.tolist() == [1, 2, 3]
    eager = regridder(_ensemble(chunked=False))
    assert isinstance(eager.data, np.ndarray)
    np.testing.assert_allclose(out.values, eager.values, rtol=1e-14)


def test_dataset_variables_without_horizontal_dims_pass_through():
    src = with_field(grid(*GLOBAL_3), random_field(grid(*GLOBAL_3))).assign(
        co2=("time", [400.0, 401.0]), zonal=("lat", np.zeros(60))
    )
    src = src.assign_attrs(history="created")
    with pytest.warns(UserWarning, match=r"\['zonal'\]"):
        out = Regridder(src, grid(*GLOBAL_2_WEST), engine="climlatent")(src)
    assert list(out.data_vars) == ["tas", "co2", "lat_bnds", "lon_bnds"]
    xr.testing.assert_identical(out["co2"], src["co2"])
    assert out["lon_bnds"].values[0].tolist() == [-180.0, -178.0]
    assert out.attrs["history"].startswith("created\n") and "Regridder" in out.attrs["history"]


@pytest.mark.parametrize(
    ("method", "extrapolate"),
    [("conservative", False), ("bilinear", False), ("nearest", False), ("bilinear", True)],
)
def test_weights_round_trip_through_netcdf(tmp_path, method, extrapolate):
    src = _ensemble(chunked=False)
    regridder = Regridder(
        src, grid(*GLOBAL_2_WEST), method, engine="climlatent", extrapolate=extrapolate
    )
    path = regridder.to_netcdf(tmp_path / "weights.nc")
    loaded = Regridder.from_netcdf(path)
    assert (loaded.method, loaded.engine) == (method, "climlatent")
    assert loaded.extrapolate is extrapolate and repr(loaded) == repr(regridder)
    assert (loaded.weights != regridder.weights).nnz == 0
    xr.testing.assert_identical(loaded(src), regridder(src))
    ds = src.to_dataset()
    xr.testing.assert_identical(
        loaded(ds).drop_attrs(deep=False), regridder(ds).drop_attrs(deep=False)
    )


def test_weights_of_grids_read_from_netcdf_files_are_saved(tmp_path):
    """Coordinates read from a netCDF file keep ``contiguous=True`` in their encoding,
    which HDF5 cannot checksum: saving their weights raised "NetCDF: Invalid argument"."""
    grid(*GLOBAL_3).to_netcdf(tmp_path / "grid.nc")
    with xr.open_dataset(tmp_path / "grid.nc") as src:
        regridder = Regridder(src, grid(*GLOBAL_2_WEST), engine="climlatent")
        loaded = Regridder.from_netcdf(regridder.to_netcdf(tmp_path / "weights.nc"))
    assert (loaded.weights != regridder.weights).nnz == 0


@pytest.mark.parametrize("method", ["conservative", "bilinear", "nearest"])
@pytest.mark.parametrize("converted", ["source", "destination"])
def test_longitude_conventions_do_not_matter(method, converted):
    lat_edges, lon_edges = np.linspace(-90, 90, 73), np.linspace(0, 360, 145)  # 2.5 deg
    src = grid(lat_edges, lon_edges)
    values = smooth_field(src) + random_field(src)
    src = with_field(src, values)
    dst_lat, dst_lon = np.linspace(-86.6, 87.4, 59), np.arange(0.7, 361, 3.0)  # 0.7..360.7
    reference = Regridder(src, grid(dst_lat, dst_lon), method, engine="climlatent")(src)
    if converted == "source":  # the same cells listed from -180 on
        west = with_field(grid(lat_edges, lon_edges - 180), np.roll(values, 72, axis=1))
        out = Regridder(west, grid(dst_lat, dst_lon), method, engine="climlatent")(west)
    else:
        dst_west = grid(dst_lat, dst_lon - 180)  # -179.3..180.7
        out = Regridder(src, dst_west, method, engine="climlatent")(src)
        out = out.roll(lon=60, roll_coords=True)
    np.testing.assert_allclose(out["tas"].values, reference["tas"].values, rtol=1e-12)


@pytest.mark.parametrize("method", ["conservative", "bilinear", "nearest"])
def test_greenwich_stored_a_round_off_below_zero_is_the_same_cell_as_zero(method):
    """np.arange(-180, 180, 3.6) puts Greenwich at -2.8e-13: it was sorted after 356.4."""
    lat = np.linspace(-87.5, 87.5, 36)
    east = xr.Dataset(coords={"lat": ("lat", lat, LAT_ATTRS), "lon": ("lon", np.arange(100) * 3.6)})
    east["lon"].attrs = dict(LON_ATTRS)
    values = smooth_field(east) + random_field(east)
    west_lon = np.arange(-180.0, 180.0, 3.6)
    assert -1e-12 < west_lon[50] < 0.0
    west = xr.DataArray(
        np.roll(values, 50, axis=1),
        dims=("lat", "lon"),
        coords={"lat": ("lat", lat, LAT_ATTRS), "lon": ("lon", west_lon, LON_ATTRS)},
        name="tas",
    )
    dst = grid(np.linspace(-80, 80, 17), np.linspace(-30, 30, 13))
    regridder = Regridder(with_field(east, values), dst, method, engine="climlatent")
    expected = regridder(with_field(east, values))["tas"]
    np.testing.assert_array_equal(regridder(west).values, expected.values)
    own = Regridder(west, dst, method, engine="climlatent")(west)
    np.testing.assert_allclose(own.values, expected.values, rtol=1e-12)


@pytest.mark.parametrize("method", ["conservative", "bilinear", "nearest"])
@pytest.mark.parametrize(
    ("dst_lat", "dst_lon"),
    [([45.0, 55.0], [100.0, 110.0]), ([-5.0, 5.0], [105.0, 115.0]), ([40.0, 50.0], [2.0, 8.0])],
    ids=["elsewhere", "lon-only", "lat-only"],
)
def test_non_overlapping_domains_are_refused_naming_both_ranges(method, dst_lat, dst_lon):
    src = xr.DataArray(
        np.zeros((3, 4)), dims=("lat", "lon"), coords={"lat": [-8.0, 0, 8], "lon": [0.0, 4, 8, 12]}
    )
    dst = xr.Dataset(coords={"latitude": dst_lat, "longitude": dst_lon})
    message = r"source grid \(latitude 'lat' .*\) and the destination grid \(latitude 'latitude' "
    with pytest.raises(InputDataError, match=message):
        Regridder(src, dst, method, engine="climlatent")


def test_grids_touching_across_the_date_line_do_not_overlap():
    src = grid([0.0, 10.0], [340.0, 350.0, 360.0])
    dst = grid([0.0, 10.0], [0.0, 5.0, 10.0])
    with pytest.raises(InputDataError, match="do not overlap"):
        Regridder(src, dst, engine="climlatent")


def test_single_point_grid_without_bounds_is_refused():
    src = grid(*GLOBAL_3)
    dst = xr.Dataset(coords={"lat": ("lat", [10.0], LAT_ATTRS), "lon": [0.0, 5.0, 10.0]})
    with pytest.raises(InputDataError, match="destination grid: coordinate 'lat' has one point"):
        Regridder(src, dst, engine="climlatent")
    single = with_field(grid([5.0, 15.0], [0.0, 5.0]), [[1.0]])  # one cell, with bounds
    out = Regridder(src, single, engine="climlatent")(with_field(src, np.ones((60, 120))))
    assert out["tas"].values.tolist() == [[pytest.approx(1.0, rel=1e-12)]]
    with pytest.raises(InputDataError, match="bilinear' needs at least two source"):
        Regridder(single, src, "bilinear", engine="climlatent")


def _curvilinear() -> xr.Dataset:
    y, x = np.meshgrid(np.linspace(40, 50, 5), np.linspace(-10, 10, 6), indexing="ij")
    coords = {"nav_lat": (("y", "x"), y, LAT_ATTRS), "nav_lon": (("y", "x"), x, LON_ATTRS)}
    return xr.Dataset({"tos": (("y", "x"), np.ones((5, 6)))}, coords=coords)


@pytest.mark.parametrize(
    ("method", "role", "message"),
    [
        ("conservative", "source", "rectilinear source grid, but the source grid is curvilinear"),
        ("conservative", "destination", "rectilinear destination grid"),
        ("bilinear", "source", "latitude 'nav_lat' on dims \\('y', 'x'\\)"),
    ],
)
def test_curvilinear_grids_are_refused_where_unsupported(method, role, message):
    curvilinear, rectilinear = _curvilinear(), with_field(grid(*GLOBAL_3), np.ones((60, 120)))
    src, dst = (curvilinear, rectilinear) if role == "source" else (rectilinear, curvilinear)
    with pytest.raises(InputDataError, match=message):
        Regridder(src, dst, method, engine="climlatent")
    out = Regridder(src, dst, "nearest", engine="climlatent")(src)
    assert out["tos" if role == "source" else "tas"].notnull().all()


@pytest.mark.parametrize("fault", ["weight bit flipped", "truncated"])
def test_a_corrupted_weights_file_is_refused_naming_it(tmp_path, fault):
    """A bit flipped in the weights loaded silently as other weights (no checksum); a
    truncated file raised scipy's ValueError or a grid error not naming the file."""
    regridder = Regridder(grid(*GLOBAL_3), grid(*GLOBAL_2_WEST), engine="climlatent")
    path = regridder.to_netcdf(tmp_path / "weights.nc")
    data = bytearray(path.read_bytes())
    if fault == "truncated":
        del data[len(data) // 2 :]
    else:
        start = data.find(regridder.weights.tocoo().data[100:104].tobytes())
        assert start > 0
        data[start + 8] ^= 1  # the last bit of the 101st weight's mantissa
    path.write_bytes(bytes(data))
    with pytest.raises(
        InputDataError, match=r"weights file '.*weights\.nc' is truncated or corrupted"
    ):
        Regridder.from_netcdf(path)


def _fractional_rows(ds):
    return ds.assign(row=ds["row"] - 0.1)  # cell 2 read as cell 1 (truncated): 8.7 off


def _one_nan_weight(ds):
    return ds.assign(S=ds["S"].where(ds["n_s"] != 0))  # a NaN in one output cell


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_fractional_rows, "row and col must hold integer"),
        (_one_nan_weight, "S must hold finite floating-point weights"),
    ],
    ids=["fractional-row", "nan-weight"],
)
def test_a_weights_file_of_wrong_values_is_refused_naming_it(tmp_path, edit, message):
    # it loaded, and regridded into other cells or NaN, without a word
    regridder = Regridder(grid(*GLOBAL_3), grid(*GLOBAL_2_WEST), engine="climlatent")
    ds = xr.open_dataset(regridder.to_netcdf(tmp_path / "weights.nc")).load()
    for variable in ds.variables.values():
        variable.encoding = {}
    edit(ds).to_netcdf(tmp_path / "edited.nc")
    with pytest.raises(InputDataError, match=rf"weights file '.*edited\.nc' is invalid: {message}"):
        Regridder.from_netcdf(tmp_path / "edited.nc")


def test_a_weights_file_declaring_terabytes_is_refused_before_allocating(tmp_path):
    # a chunk never written reads as fill values: 8 TB allocated (a MemoryError) from 1 kB
    path = tmp_path / "weights.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("n_s", 10**12)
        for name in ("row", "col", "S"):
            nc.createVariable(name, "f8", ("n_s",))
    assert path.stat().st_size < 10_000
    with pytest.raises(InputDataError, match=r"declare 24000000000000 bytes, more than its"):
        Regridder.from_netcdf(path)


def test_other_bad_inputs(tmp_path):
    src = grid(*GLOBAL_3)
    with pytest.raises(ValueError, match="method must be one of"):
        Regridder(src, src, "patch")
    with pytest.raises(InputDataError, match="holds one meridian twice .1.5 and 361.5 degrees"):
        Regridder(grid(GLOBAL_3[0], np.r_[GLOBAL_3[1], 363.0]), src, engine="climlatent")
    regridder = Regridder(src, grid(*GLOBAL_2_WEST), engine="climlatent")
    with pytest.raises(InputDataError, match="'tas' is on a different grid"):
        regridder(with_field(grid(*GLOBAL_2_WEST), np.zeros((90, 180))))
    with pytest.raises(InputDataError, match="weights have shape"):
        Regridder(src, grid(*GLOBAL_2_WEST), weights=regridder.weights.T)
    src.to_netcdf(tmp_path / "grid.nc")
    with pytest.raises(InputDataError, match="not a climlatent weights file: it lacks S, col"):
        Regridder.from_netcdf(tmp_path / "grid.nc")


@pytest.mark.skipif(xesmf_available(), reason="xESMF is installed")
def test_xesmf_engine_without_xesmf_says_how_to_install_it():
    with pytest.raises(ImportError, match="conda install -c conda-forge xesmf"):
        Regridder(grid(*GLOBAL_3), grid(*GLOBAL_2_WEST), engine="xesmf")
    assert Regridder(grid(*GLOBAL_3), grid(*GLOBAL_3), "nearest").engine == "climlatent"


@pytest.mark.parametrize("method", ["conservative", "bilinear"])
def test_engines_agree(method):
    """ESMF draws cell edges as great circles and interpolates in 3-D; the climlatent
    engine uses latitude circles and interpolates in degrees. On a smooth field at 2-3
    degrees the two differ by O(cell size**2), far above round-off, so agreement is
    asked to about 1e-3 of the field's range (4), not to 1e-10."""
    pytest.importorskip("xesmf")
    src = with_field(grid(*GLOBAL_3), smooth_field(grid(*GLOBAL_3)))
    dst = grid(np.linspace(-80, 80, 81), np.linspace(-180, 180, 181))
    ours = Regridder(src, dst, method, engine="climlatent")(src)["tas"]
    theirs = Regridder(src, dst, method, engine="xesmf")(src)["tas"]
    assert theirs.notnull().all()
    np.testing.assert_allclose(theirs.values, ours.values, atol=5e-3)


def _layouts(ds: xr.Dataset):
    """The same data as ERA5 (north to south), on -180..180, and with lon before lat."""
    yield "as given", ds
    yield "descending latitude", ds.isel(lat=slice(None, None, -1))
    turned = ds.assign_coords(lon=np.round((ds.lon + 180.0) % 360.0 - 180.0, 9)).sortby("lon")
    turned["lon"].attrs = ds["lon"].attrs
    turned["lon_bnds"] = turned["lon_bnds"] - 360.0 * (turned["lon_bnds"] > 180.0).all("bnds")
    yield "-180..180", turned
    yield "transposed", ds.transpose("lon", "lat", "bnds")


@pytest.mark.parametrize("method", ["conservative", "bilinear", "nearest"])
@pytest.mark.parametrize(
    ("src_edges", "dst_edges"),
    [(GLOBAL_25_OFFSET, GLOBAL_3), (REGION_FINE, REGION_COARSE)],
    ids=["global", "region"],
)
def test_coordinate_order_never_changes_an_answer(method, src_edges, dst_edges):
    src = with_field(grid(*src_edges), random_field(grid(*src_edges)))
    src["tas"][3, 4] = np.nan
    dst = grid(*dst_edges)
    dst = dst.isel(lat=slice(None, None, -1))  # the destination order is the caller's
    reference = Regridder(src, dst, method, engine="climlatent")(src)["tas"]
    assert reference.dims == ("lat", "lon")
    np.testing.assert_array_equal(reference["lat"], dst["lat"])
    for name, layout in _layouts(src):
        built = Regridder(layout, dst, method, engine="climlatent")
        for out in (built(layout)["tas"], built(src)["tas"]):
            out = out.transpose("lat", "lon")
            np.testing.assert_array_equal(out["lon"], dst["lon"], err_msg=name)
            np.testing.assert_array_equal(out.values, reference.values, err_msg=name)
    assert int(reference.isnull().sum()) > 0  # the NaN cell spreads (and the region's edges)


def test_a_source_flipped_north_to_south_with_its_bounds_regrids_as_before():
    """Flipping a grid keeps each cell's (lower, upper) bounds: on the descending
    latitude they run against it, and the edges taken from them were the next row's."""
    src = with_field(grid(*GLOBAL_3), random_field(grid(*GLOBAL_3)))
    dst = grid(*GLOBAL_25_OFFSET)
    flipped = src.isel(lat=slice(None, None, -1))
    assert (flipped.lat_bnds[:, 1] > flipped.lat_bnds[:, 0]).all()
    expected = Regridder(src, dst, engine="climlatent")(src["tas"])
    out = Regridder(flipped, dst, engine="climlatent")(flipped["tas"])
    np.testing.assert_allclose(out.values, expected.values, rtol=1e-12)


@pytest.mark.parametrize("method", ["conservative", "bilinear"])
def test_a_global_grid_with_float32_longitudes_is_global(method):
    # A 0.1-degree grid stored in float32 (ERA5-Land's layout): its spacings vary by
    # float32 round-off. It was taken as regional and cut at 64.3 E: NaN there.
    src = grid(np.linspace(0.0, 2.0, 3), np.arange(-0.05, 360.0, 0.1))
    src = with_field(src, smooth_field(src))
    single = src.assign_coords(lon=src.lon.astype(np.float32)).drop_vars("lon_bnds")
    single["lon"].attrs = dict(LON_ATTRS)
    dst = grid(np.array([0.5, 1.5]), np.arange(0.0, 361.0, 1.0) + 0.25)
    out = Regridder(single, dst, method)(single)["tas"]
    reference = Regridder(src.drop_vars("lon_bnds"), dst, method)(src.drop_vars("lon_bnds"))
    assert not out.isnull().any()
    np.testing.assert_allclose(out, reference["tas"], rtol=0, atol=1e-5)


def test_polar_rows_without_bounds_reach_the_pole_as_cdo_puts_them():
    # Centres every 2 degrees up to 88: the outer edges by midpoints are at 89, which
    # CDO moves to the pole (an edge beyond 88); the polar target cell was NaN.
    lat = np.arange(-88.0, 88.1, 2.0)
    src = xr.Dataset(
        coords={"lat": ("lat", lat, LAT_ATTRS), "lon": ("lon", [90.0, 270.0], LON_ATTRS)}
    )
    values = np.repeat(np.sin(np.deg2rad(lat))[:, None], 2, axis=1)
    src = with_field(src, values)
    dst = grid(np.array([-90.0, -86.0, 86.0, 90.0]), np.array([0.0, 360.0]))
    out = Regridder(src, dst, "conservative")(src)["tas"].values[:, 0]
    band = np.diff(np.sin(np.deg2rad([86.0, 87.0, 90.0])))  # source cells 86 and 88 within
    expected = (
        band[0] * np.sin(np.deg2rad(86.0)) + band[1] * np.sin(np.deg2rad(88.0))
    ) / band.sum()
    np.testing.assert_allclose(out[[0, 2]], [-expected, expected], rtol=1e-12)


@pytest.mark.parametrize("first", [-0.5, -180.5])
def test_longitude_bounds_wrapping_the_seam_are_cells_one_degree_wide(first):
    # Bounds [359.5, 0.5] for the cell at 0 (first=-0.5 written mod 360), or -180..180
    # bounds of 0..359 centres: each cell was taken as 359 degrees wide, weights summed
    # to 2 and a field of 280 K came out at 560 K.
    src = grid(np.linspace(-90, 90, 19), np.linspace(-0.5, 359.5, 361))
    wrapped = src.copy()
    wrapped["lon_bnds"] = (src["lon_bnds"] - first) % 360.0 + first
    field = random_field(src)
    dst = grid(*GLOBAL_3)
    expected = Regridder(src, dst, "conservative")(with_field(src, field))["tas"]
    out = Regridder(wrapped, dst, "conservative")(with_field(wrapped, field))["tas"]
    assert float(wrapped["lon_bnds"].max() - wrapped["lon_bnds"].min()) > 300  # it wraps
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_a_dataset_on_two_grids_regrids_its_main_grid_and_names_the_other():
    # Coordinates of a second grid named so as to come first (alat, zlon) were paired
    # with the main grid's: every variable was dropped and an empty file written.
    src = with_field(grid(*GLOBAL_3), random_field(grid(*GLOBAL_3)))
    src = src.assign_coords(
        alat=("alat", [10.0, 20.0], LAT_ATTRS), zlon=("zlon", [0.0, 10.0, 20.0], LON_ATTRS)
    )
    src["orog"] = (("alat", "zlon"), np.ones((2, 3)), {"units": "m"})
    dst = grid(*GLOBAL_2_WEST)
    with pytest.warns(UserWarning, match=r"\['orog'\] lie on another horizontal grid"):
        out = Regridder(src, dst, "conservative")(src)
    assert out["tas"].dims == ("lat", "lon") and out["tas"].shape == (90, 180)
    assert out["orog"].dims == ("alat", "zlon")  # passed through, as said
    with pytest.raises(InputDataError, match="no variable of the dataset lies on its grid"):
        Regridder(src, dst, "conservative")(src.drop_vars(["tas", "orog"]))  # an empty file
