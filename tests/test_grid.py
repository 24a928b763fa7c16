import netCDF4
import numpy as np
import pytest
import xarray as xr
from hypothesis import example, given, settings
from hypothesis import strategies as st

from climlatent.cell_edges import longitude_edges, longitude_widths
from climlatent.errors import InputDataError
from climlatent.grid import (
    EARTH_RADIUS,
    area_weights,
    cell_area,
    check_same_grid,
    find_grid,
    find_member,
    find_time,
    find_vertical,
    land_mask,
    regular_grid,
)
from climlatent.io import open_dataset, to_netcdf
from conftest import rectilinear


@pytest.mark.parametrize(
    ("lat", "lon", "attrs"),
    [
        ("lat", "lon", True),
        ("latitude", "longitude", True),
        ("y_centres", "x_centres", True),  # unusual names, found by CF attributes
        ("lat", "lon", False),  # no attributes: cf-xarray's name heuristics
        ("latitude", "longitude", False),
    ],
)
def test_rectilinear_axes_found_from_cf_metadata(lat, lon, attrs):
    lat_attrs = {"standard_name": "latitude", "units": "degrees_north"} if attrs else {}
    lon_attrs = {"units": "degrees_east"} if attrs else {}
    da = xr.DataArray(
        np.zeros((3, 4)),
        dims=(lat, lon),
        coords={lat: (lat, [10.0, 20.0, 30.0], lat_attrs), lon: (lon, [0.0, 1, 2, 3], lon_attrs)},
    )
    grid = find_grid(da)
    assert (grid.lat, grid.lon, grid.kind) == (lat, lon, "rectilinear")


def _two_d(lat_name="nav_lat", lon_name="nav_lon", rotated=False):
    y, x = np.meshgrid(np.linspace(40, 50, 5), np.linspace(-10, 10, 6), indexing="ij")
    coords = {
        lat_name: (("y", "x"), y, {"units": "degrees_north"}),
        lon_name: (("y", "x"), x, {"units": "degrees_east"}),
    }
    dims = ("y", "x")
    if rotated:
        dims = ("rlat", "rlon")
        coords = {k: (dims, v[1], v[2]) for k, v in coords.items()}
        coords["rlat"] = ("rlat", np.arange(5.0), {"standard_name": "grid_latitude"})
        coords["rlon"] = ("rlon", np.arange(6.0), {"standard_name": "grid_longitude"})
    return xr.DataArray(np.zeros((5, 6)), dims=dims, coords=coords)


def test_curvilinear_nemo_grid_recognised():
    grid = find_grid(_two_d())
    assert (grid.lat, grid.lon, grid.spatial_dims, grid.kind) == (
        "nav_lat",
        "nav_lon",
        ("y", "x"),
        "curvilinear",
    )


def test_rotated_pole_recognised():
    grid = find_grid(_two_d("lat", "lon", rotated=True))
    assert grid.kind == "rotated_pole"
    assert grid.spatial_dims == ("rlat", "rlon")


def test_rotated_pole_axes_without_geographic_coordinates_are_refused_as_rotated():
    # iris-sample-data's rotated_pole.nc: grid_latitude/grid_longitude in "degrees" and a
    # rotated_latitude_longitude mapping; labelled latitude they would pass as geographic
    axes = _two_d("lat", "lon", rotated=True).drop_vars(["lat", "lon"]).rename("psl")
    for coord in ("rlat", "rlon"):
        axes[coord].attrs["units"] = "degrees"
    with pytest.raises(InputDataError, match="rotated-pole grid \\('rlat', 'rlon'\\)") as error:
        find_grid(axes, "psl")
    assert "standard_name 'latitude'" not in str(error.value)


def test_missing_latitude_is_refused_by_name():
    da = xr.DataArray(np.zeros((2, 3)), dims=("a", "b"), name="psl")
    with pytest.raises(InputDataError, match="'psl' has no latitude"):
        find_grid(da, "psl")


def test_non_monotonic_coordinate_is_refused():
    da = rectilinear().isel(lat=[0, 2, 1, 3])
    with pytest.raises(InputDataError, match="'lat' of variable 'tas' is not strictly monotonic"):
        find_grid(da, "tas")


@pytest.mark.parametrize("lon", [[10.0, 30.0, 20.0], [170.0, -170.0, 175.0], [0.0, 180.0, 0.0]])
def test_longitudes_not_monotonic_even_on_the_circle_are_refused(lon):
    da = xr.DataArray(np.zeros((2, 3)), dims=("lat", "lon"), coords={"lat": [0.0, 1.0], "lon": lon})
    with pytest.raises(InputDataError, match="'lon' of variable 'tas' is not strictly monotonic"):
        find_grid(da, "tas")


@pytest.mark.parametrize("bounds", [None, "the seam at 180", "the seam at -180"])
@pytest.mark.parametrize("direction", [1, -1])
def test_a_grid_across_the_date_line_stored_minus_180_180_has_the_cells_of_its_0_360_form(
    bounds, direction
):
    """160, 170, 180, -170, -160 (east, or the reverse) was refused as not monotonic;
    its cells are those of 160 ... 200: the same edges (shifted by a turn past the
    seam) and areas, labelled as given."""
    east = regular_grid(np.arange(-30.0, 30.1, 15.0), np.arange(155.0, 205.1, 10.0))
    east = east.isel(lon=slice(None, None, direction))
    if bounds is None:
        east = east.drop_vars(["lat_bnds", "lon_bnds"])
    seam = 180.0 if bounds == "the seam at 180" else -180.0
    wrapped = east.assign_coords(
        {name: east[name].where(east[name] <= 180.0, east[name] - 360.0) for name in east.coords}
    )
    if bounds:
        wrapped["lon_bnds"] = wrapped.lon_bnds.where(wrapped.lon_bnds != 180.0, seam)
    assert wrapped.lon.values.tolist() == [160.0, 170.0, 180.0, -170.0, -160.0][::direction]
    assert find_grid(wrapped).kind == "rectilinear"
    turn = float(wrapped.lon[0] - east.lon[0])  # the edges lie about the first centre
    np.testing.assert_array_equal(
        longitude_edges(wrapped.lon, wrapped), longitude_edges(east.lon, east) + turn
    )
    area = cell_area(wrapped)
    np.testing.assert_allclose(area.values, cell_area(east).values, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(area.lon.values, wrapped.lon.values)


def test_descending_latitude_is_fine():
    assert find_grid(rectilinear().isel(lat=slice(None, None, -1))).kind == "rectilinear"


@pytest.mark.parametrize(("role", "units"), [("lat", "radians"), ("lon", "rad"), ("lat", "km")])
def test_latitude_or_longitude_in_other_units_than_degrees_is_refused(role, units):
    """A latitude in radians passed as an equatorial band: areas 4.8e-4 of the sphere.

    A 5-degree global grid given in radians weighted every cell alike (an area mean of
    |lat| of 45.0 degrees against 32.7).
    """
    da = xr.DataArray(
        np.zeros((36, 72)),
        dims=("lat", "lon"),
        coords={
            "lat": ("lat", np.arange(-87.5, 90, 5.0), {"standard_name": "latitude"}),
            "lon": ("lon", np.arange(2.5, 360, 5.0), {"standard_name": "longitude"}),
        },
        name="tas",
    )
    in_degrees = float(cell_area(da).sum())
    assert in_degrees == pytest.approx(4 * np.pi * EARTH_RADIUS**2, rel=1e-12)
    spellings = ("degrees_north", "degree", "degreesN", "1") if role == "lat" else (
        "degrees_east", "degree", "degreesE", "1")  # fmt: skip
    for spelled in spellings:  # degrees, or no angle
        assert float(cell_area(da.assign_coords({role: da[role].assign_attrs(units=spelled)})
                               ).sum()) == in_degrees  # fmt: skip
    other = da.assign_coords({role: (da[role] * (np.pi / 180)).assign_attrs(units=units)})
    name = "latitude" if role == "lat" else "longitude"
    with pytest.raises(InputDataError, match=f"{name} coordinate '{role}' is in '{units}'"):
        cell_area(other)


def test_global_cell_areas_sum_to_sphere():
    da = xr.DataArray(
        np.zeros((90, 144)),
        dims=("lat", "lon"),
        coords={"lat": np.linspace(-89, 89, 90), "lon": np.arange(0, 360, 2.5)},
    )
    total = float(cell_area(da).sum())
    assert total == pytest.approx(4 * np.pi * EARTH_RADIUS**2, rel=1e-12)


@st.composite
def regional_longitudes(draw):
    """Centres of a regional grid (under 290 degrees, unequal cells), running either way
    from anywhere, and their labels in 0..360 or -180..180, float64 or float32."""
    steps = np.array(draw(st.lists(st.floats(0.5, 1.0), min_size=2, max_size=9)))
    span = draw(st.floats(0.1, 290.0 * steps.sum() / (steps.sum() + 2 * steps.max())))
    centres = draw(st.floats(-360.0, 360.0)) + np.append(0.0, np.cumsum(steps)) * span / steps.sum()
    centres = centres[::-1] if draw(st.booleans()) else centres
    labels = np.mod(centres + draw(st.sampled_from([0.0, 180.0])), 360.0)
    labels -= 180.0 if abs(labels[0] - np.mod(centres[0], 360.0)) > 1e-9 else 0.0
    return centres, labels.astype(draw(st.sampled_from([np.float64, np.float32])))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(regional_longitudes())
@example((10.7 + 0.5 * np.arange(9), np.float32(10.7 + 0.5 * np.arange(9))))
def test_cell_widths_of_a_regional_grid_are_its_own_however_it_is_labelled(grid):
    # Relabelled to run without a break, the westernmost centre moved by the rounding
    # of its label to 6 decimals went round the circle: float32 longitudes 10.7, 11.2,
    # ... 14.7 had widths 356, 0.5, ..., 0.5, 178.25 (area weights 712 and 356 times
    # the others').
    centres, labels = grid
    lon = xr.DataArray(labels, dims="lon", name="lon")
    da = xr.DataArray(
        np.ones((1, lon.size)), dims=("lat", "lon"), coords={"lat": [10.0], "lon": lon}
    )
    order = np.argsort(centres)
    east = centres[order]
    mid = 0.5 * (east[1:] + east[:-1])
    widths = np.empty_like(centres)
    widths[order] = np.diff(np.concatenate([[2 * east[0] - mid[0]], mid, [2 * east[-1] - mid[-1]]]))
    tolerance = 1e-4 if labels.dtype == np.float32 else 1e-9
    np.testing.assert_allclose(longitude_widths(lon, lon), widths, rtol=0, atol=tolerance)
    # one latitude: its band counts as 1, the weights are the widths in radians
    np.testing.assert_allclose(area_weights(da).values[0], np.deg2rad(widths), atol=tolerance / 50)


def test_band_area_matches_analytic_from_bounds():
    lat = xr.DataArray([15.0], dims="lat", attrs={"bounds": "lat_bnds"})
    ds = xr.Dataset(
        {"f": (("lat", "lon"), np.zeros((1, 2)))},
        coords={"lat": lat, "lon": ("lon", [5.0, 15.0], {"bounds": "lon_bnds"})},
    ).assign(
        lat_bnds=(("lat", "bnds"), [[10.0, 20.0]]),
        lon_bnds=(("lon", "bnds"), [[0, 10], [10, 20.0]]),
    )
    expected = EARTH_RADIUS**2 * (np.sin(np.deg2rad(20)) - np.sin(np.deg2rad(10))) * np.deg2rad(10)
    np.testing.assert_allclose(cell_area(ds).values, expected, rtol=1e-12)


def test_curvilinear_area_agrees_with_exact_rectilinear_area():
    lat1, lon1 = np.linspace(30, 60, 31), np.linspace(-20, 20, 41)
    rect = xr.DataArray(np.zeros((31, 41)), dims=("lat", "lon"), coords={"lat": lat1, "lon": lon1})
    y, x = np.meshgrid(lat1, lon1, indexing="ij")
    curv = xr.DataArray(
        np.zeros((31, 41)),
        dims=("j", "i"),
        coords={
            "nav_lat": (("j", "i"), y, {"units": "degrees_north"}),
            "nav_lon": (("j", "i"), x, {"units": "degrees_east"}),
        },
    )
    interior = (slice(1, -1), slice(1, -1))
    np.testing.assert_allclose(
        cell_area(curv).values[interior], cell_area(rect).values[interior], rtol=2e-3
    )


def test_sample_axes_found():
    time = xr.date_range("2000", periods=2, calendar="360_day", use_cftime=True)
    da = xr.DataArray(
        np.zeros((2, 2, 3)),
        dims=("ens", "t", "plev"),
        coords={
            "t": ("t", time, {"axis": "T"}),
            "plev": ("plev", [1e5, 8e4, 5e4], {"axis": "Z"}),
            "ens": ("ens", [0, 1], {"standard_name": "realization"}),
        },
    )
    assert (find_time(da), find_member(da), find_vertical(da)) == ("t", "ens", "plev")


def test_land_mask_percent_and_fraction():
    for units, scale in (("%", 1.0), ("1", 0.01), ("percent", 1.0), ("0.01", 1.0)):
        ds = xr.Dataset(
            {
                "sftlf": (
                    "x",
                    np.array([10.0, 60.0, 90.0]) * scale,
                    {"standard_name": "land_area_fraction", "units": units},
                )
            }
        )
        assert land_mask(ds).values.tolist() == [False, True, True]
    with pytest.raises(InputDataError, match="'sftlf' has no 'units'"):
        land_mask(
            ds.assign(
                sftlf=ds.sftlf.drop_attrs().assign_attrs(standard_name=ds.sftlf.standard_name)
            )
        )


@pytest.mark.parametrize("lat_bounds", ["in its direction", "lower, upper"])
def test_cell_area_of_a_descending_latitude_whatever_the_order_of_its_bounds(lat_bounds):
    """Bounds (lower, upper) on a latitude running N->S gave each row the next row's
    area (89.5N: 3.0 times its own); the global total hid it."""
    lat, lon = np.arange(89.5, -90, -1.0), np.arange(0.5, 360, 1.0)
    upper, lower = lat + 0.5, lat - 0.5
    bounds = np.stack([upper, lower] if lat_bounds == "in its direction" else [lower, upper], 1)
    ds = xr.Dataset(
        coords={
            "lat": ("lat", lat, {"units": "degrees_north", "bounds": "lat_bnds"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
            "lat_bnds": (("lat", "bnds"), bounds),
        }
    )
    exact = (
        EARTH_RADIUS**2 * np.deg2rad(1.0) * (np.sin(np.deg2rad(upper)) - np.sin(np.deg2rad(lower)))
    )
    np.testing.assert_allclose(cell_area(ds).values[:, 0], exact, rtol=1e-10)


def test_check_same_grid_names_variable_and_coordinate():
    a = rectilinear()
    check_same_grid(a, a + 1, "tas")
    with pytest.raises(InputDataError, match="'tas'.*'lon' differs"):
        check_same_grid(a, a.assign_coords(lon=a.lon + 1), "tas")
    with pytest.raises(InputDataError, match="'lat' has shape"):
        check_same_grid(a, a.isel(lat=slice(1, None)), "tas")


def test_cell_area_of_a_file_takes_its_bounds_from_the_encoding(tmp_path):
    lat_edges, lon_edges = np.linspace(-60, 60, 7), np.linspace(0, 360, 9)
    grid = regular_grid(lat_edges, lon_edges)
    grid = grid.assign_coords(lat=grid.lat + 7.0, lon=grid.lon - 11.0)  # off-centre
    to_netcdf(grid.assign(x=(("lat", "lon"), np.zeros((6, 8)))), tmp_path / "g.nc")
    opened = open_dataset(tmp_path / "g.nc", chunks=None)
    band = np.diff(np.sin(np.deg2rad(lat_edges)))
    expected = EARTH_RADIUS**2 * band[:, None] * np.deg2rad(np.diff(lon_edges))[None, :]
    np.testing.assert_allclose(cell_area(opened).values, expected, rtol=1e-12)


def test_bounds_with_the_units_and_standard_name_of_their_coordinate_are_not_the_grid(tmp_path):
    """CF allows bounds to carry attributes of their coordinate (CMIP files do)."""
    lat_edges, lon_edges = np.linspace(-60, 60, 7), np.linspace(0, 360, 9)
    grid = regular_grid(lat_edges, lon_edges)
    to_netcdf(grid.assign(x=(("lat", "lon"), np.zeros((6, 8)))), tmp_path / "g.nc")
    with netCDF4.Dataset(tmp_path / "g.nc", "a") as nc:  # climlatent writes bounds without
        for name in ("lat", "lon"):
            bounds = nc[nc[name].bounds]
            bounds.units, bounds.standard_name = nc[name].units, nc[name].standard_name
    opened = open_dataset(tmp_path / "g.nc", chunks=None)
    found = find_grid(opened)
    assert (found.lat, found.lon, found.kind) == ("lat", "lon", "rectilinear")
    assert float(cell_area(opened).sum()) == pytest.approx(
        EARTH_RADIUS**2 * 2 * np.pi * 2 * np.sin(np.deg2rad(60)), rel=1e-12
    )


def test_bounds_are_not_the_grid_even_when_no_coordinate_names_them():
    """lat_bnds(lat, bnds) with units degrees_north beside a lat that lost its bounds
    attribute (attrs dropped on a coordinate replaced by hand) was taken as the latitude."""
    grid = regular_grid(np.linspace(-60, 60, 7), np.linspace(0, 360, 9))
    for name in ("lat", "lon"):
        grid[f"{name}_bnds"].attrs["units"] = grid[name].attrs["units"]
    ds = grid.assign(x=(("lat", "lon"), np.zeros((6, 8)))).assign_coords(
        lat=("lat", grid.lat.values, {"units": "degrees_north"}),
        lon=("lon", grid.lon.values, {"units": "degrees_east"}),
    )
    found = find_grid(ds)
    assert (found.lat, found.lon, found.kind) == ("lat", "lon", "rectilinear")


def test_the_same_grid_stored_in_float32_is_the_same_grid():
    """Many CMIP files store float32 coordinates: 2.5e-6 degrees off at 60 was refused."""
    lat, lon = np.arange(-89.5, 90, 1.0) / 3 * 3.0001, np.arange(0.0, 360, 1.1)
    a = xr.DataArray(
        np.zeros((lat.size, lon.size)), dims=("lat", "lon"), coords={"lat": lat, "lon": lon}
    )
    single = a.assign_coords(lat=lat.astype(np.float32), lon=lon.astype(np.float32))
    assert np.abs(single.lon.values - lon).max() > 1e-6
    check_same_grid(a, single, "tas")
    with pytest.raises(InputDataError, match="'lon' differs by up to 0.001 degrees"):
        check_same_grid(a, a.assign_coords(lon=lon + 1e-3), "tas")
