"""climlatent.plot: every figure rendered to PNG and checked for what it must show."""

import re
import shutil
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import cartopy  # noqa: E402
import cartopy.crs as ccrs  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from cartopy.mpl.feature_artist import FeatureArtist  # noqa: E402
from matplotlib.collections import QuadMesh  # noqa: E402
from scipy import stats  # noqa: E402

import climlatent as cl  # noqa: E402
import climlatent.plot  # noqa: E402
from climlatent.errors import InputDataError  # noqa: E402
from climlatent.plot import _cartopy  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No download can happen: urlopen raises and cartopy's download dir is empty."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setitem(cartopy.config, "data_dir", tmp_path / "downloads")


def field(lat, lon, values=None, **attrs) -> xr.DataArray:
    """A 2-D field on a CF lat/lon grid (named ``y``/``x``: found from CF metadata)."""
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    if values is None:
        values = np.cos(np.deg2rad(lat))[:, None] * np.sin(np.deg2rad(lon))[None, :]
    return xr.DataArray(
        values,
        dims=("y", "x"),
        coords={
            "y": ("y", lat, {"standard_name": "latitude", "units": "degrees_north"}),
            "x": ("x", lon, {"standard_name": "longitude", "units": "degrees_east"}),
        },
        name="ts",
        attrs={"long_name": "surface temperature anomaly", "units": "K", **attrs},
    )


GLOBAL_0_360 = field(np.arange(-87.5, 90, 5.0), np.arange(0, 360, 5.0))


@pytest.fixture(scope="module")
def europe():
    ds = cl.datasets.synthetic_circulation(n_members=1, n_years=3, n_lat=8, n_lon=12, seed=2)
    return ds.isel(member=0)


def render(fig, path: Path) -> np.ndarray:
    """Save ``fig`` as PNG and return its pixels."""
    fig.savefig(path, dpi=60)
    return plt.imread(path)


def coastline_paths(ax) -> int:
    artists = [a for a in [*ax.collections, *ax.artists] if isinstance(a, FeatureArtist)]
    assert artists, "no coastline artist on the axes"
    return sum(len(a.get_paths()) for a in artists)


def mesh(ax) -> QuadMesh:
    return next(c for c in ax.collections if isinstance(c, QuadMesh))


def colourbar_labels(fig) -> list[str]:
    return [ax.get_ylabel() for ax in fig.axes if ax.get_label() == "<colorbar>"]


def test_map_draws_vendored_coastlines_with_downloads_refused(offline, tmp_path):
    ax = cl.plot.map(GLOBAL_0_360)
    ax.figure.canvas.draw()
    assert coastline_paths(ax) > 50
    assert _cartopy.coastline_path().is_relative_to(_cartopy.VENDORED_DATA_DIR)
    assert render(ax.figure, tmp_path / "map.png").std() > 0


def test_cartopy_own_coastlines_work_offline_after_import(offline, monkeypatch):
    monkeypatch.setitem(cartopy.config, "pre_existing_data_dir", Path(""))
    assert cl.plot.use_vendored_data() == _cartopy.VENDORED_DATA_DIR
    ax = plt.axes(projection=ccrs.Robinson())
    ax.coastlines("110m")
    ax.figure.canvas.draw()
    assert coastline_paths(ax) > 50


OFFLINE_SCRIPT = """
import socket, tempfile
import matplotlib; matplotlib.use("Agg")
import numpy as np, xarray as xr, cartopy
try:
    socket.create_connection(("198.51.100.1", 80), timeout=2)
    raise SystemExit("the network is reachable")
except OSError:
    pass
cartopy.config["data_dir"] = tempfile.mkdtemp()
import climlatent.plot
from cartopy.mpl.feature_artist import FeatureArtist
lat, lon = np.arange(-80, 90, 10.0), np.arange(0, 360, 10.0)
da = xr.DataArray(
    np.random.default_rng(0).normal(size=(lat.size, lon.size)),
    dims=("lat", "lon"),
    coords={"lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"})},
    name="tas",
    attrs={"units": "K"},
)
ax = climlatent.plot.map(da)
ax.figure.savefig(tempfile.mktemp(suffix=".png"))
print(sum(len(a.get_paths()) for a in ax.collections if isinstance(a, FeatureArtist)))
"""


def test_map_renders_coastlines_in_a_network_namespace_without_network():
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-n", "true"]).returncode != 0:
        pytest.skip("unshare -n is unavailable here (needs util-linux and CAP_SYS_ADMIN)")
    result = subprocess.run(
        [unshare, "-n", sys.executable, "-c", textwrap.dedent(OFFLINE_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.split()[-1]) > 50


def test_use_vendored_data_keeps_a_directory_the_user_set(monkeypatch, tmp_path):
    monkeypatch.setitem(cartopy.config, "pre_existing_data_dir", tmp_path)
    assert cl.plot.use_vendored_data() == tmp_path
    # ... and maps still find the vendored coastline, which the user's folder lacks
    assert _cartopy.coastline_path().is_relative_to(_cartopy.VENDORED_DATA_DIR)


def test_coastline_falls_back_to_gshhs_then_warns(monkeypatch, tmp_path):
    gshhs = tmp_path / _cartopy.GSHHS_COASTLINE
    gshhs.parent.mkdir(parents=True)
    vendored = _cartopy.VENDORED_DATA_DIR / _cartopy.NE_COASTLINE
    for suffix in (".shp", ".shx", ".dbf"):
        shutil.copy(vendored.with_suffix(suffix), gshhs.with_suffix(suffix))
    monkeypatch.setitem(cartopy.config, "pre_existing_data_dir", Path(""))
    monkeypatch.setattr(_cartopy, "VENDORED_DATA_DIR", tmp_path / "missing")
    monkeypatch.setattr(_cartopy, "SYSTEM_DATA_DIR", tmp_path)
    assert _cartopy.coastline_path() == gshhs
    monkeypatch.setattr(_cartopy, "SYSTEM_DATA_DIR", tmp_path / "missing")
    with pytest.warns(UserWarning, match="no coastline shapefile"):
        ax = cl.plot.map(GLOBAL_0_360)
    assert not [a for a in ax.collections if isinstance(a, FeatureArtist)]


def test_diverging_map_is_centred_with_units_in_the_colourbar(offline, tmp_path):
    ax = cl.plot.map(GLOBAL_0_360, title="anomaly")
    vmin, vmax = mesh(ax).get_clim()
    assert vmin == -vmax == pytest.approx(-np.abs(GLOBAL_0_360).max())
    assert mesh(ax).get_cmap().name == "RdBu_r"
    assert colourbar_labels(ax.figure) == ["surface temperature anomaly [K]"]
    assert ax.get_title() == "anomaly"
    assert render(ax.figure, tmp_path / "diverging.png").std() > 0


def test_sequential_maps_precipitation_and_others(europe, offline):
    pr = cl.plot.map(europe["pr"].mean("time"))
    assert mesh(pr).get_cmap().name == "YlGnBu"
    assert colourbar_labels(pr.figure) == ["precipitation [kg m-2 s-1]"]
    tas = cl.plot.map(europe["tas"].mean("time"))
    assert mesh(tas).get_cmap().name == "viridis"
    assert mesh(tas).get_clim()[0] > 0


@pytest.mark.parametrize(
    ("lat", "lon", "projection"),
    [
        (np.arange(-87.5, 90, 5.0), np.arange(0, 360, 5.0), ccrs.PlateCarree),
        (np.arange(32.5, 70, 5.0), np.arange(-17.5, 40, 5.0), ccrs.LambertConformal),
        (np.arange(-60, -20, 2.0), np.arange(280, 330, 2.0), ccrs.LambertConformal),
        (np.arange(-20, 21, 2.0), np.arange(100, 290, 2.0), ccrs.PlateCarree),
    ],
    ids=["global-0-360", "europe", "south-america", "tropical-pacific"],
)
def test_projection_follows_the_grid(lat, lon, projection, offline):
    ax = cl.plot.map(field(lat, lon))
    assert type(ax.projection) is projection
    x0, x1, y0, y1 = ax.get_extent(ccrs.PlateCarree(central_longitude=float(np.mean(lon))))
    assert x1 - x0 >= np.ptp(lon) and y1 - y0 >= np.ptp(lat)
    ax.figure.canvas.draw()
    assert coastline_paths(ax) > 0


def test_0_360_longitudes_land_where_minus_180_180_ones_do(offline):
    lat, lon = np.arange(-87.5, 90, 5.0), np.arange(-177.5, 180, 5.0)
    shifted = field(lat, lon).assign_coords(x=("x", lon % 360, {"units": "degrees_east"}))
    shifted = shifted.sortby("x")
    ax = plt.axes(projection=ccrs.PlateCarree())
    cl.plot.map(shifted, ax)
    np.testing.assert_allclose(mesh(ax).get_array().reshape(lat.size, lon.size), field(lat, lon))


@pytest.mark.parametrize("labels", ["0-360", "minus-180-180", "minus-180-180 as stored"])
def test_a_regional_grid_across_the_antimeridian_is_mapped_where_it_is(labels, offline):
    """PlateCarree keeps its centre in proj4 'pm', which the map read as 0: the Pacific
    grid was drawn global with the cells east of 180 smeared into one colour; labelled
    -180..180 its span was taken as 358 degrees; stored 141 ... 179, -179 ... -141 (as
    CORDEX stores it), unsorted, it was refused as not monotonic."""
    lat, east = np.arange(-19.0, 20.0, 2.0), np.arange(141.0, 220.0, 2.0)
    values = np.zeros((lat.size, east.size))
    values[lat == 5.0, east == 199.0] = 1.0  # one hot cell at 199E 5N
    lon = east if labels == "0-360" else (east + 180) % 360 - 180
    stored = field(lat, lon, values)
    ax = cl.plot.map(stored if labels.endswith("as stored") else stored.sortby("x"))
    assert type(ax.projection) is ccrs.PlateCarree and ax.projection.proj4_params["pm"] % 360 == 180
    extent = ax.get_extent(ccrs.PlateCarree(central_longitude=180))
    np.testing.assert_allclose(extent, (-40, 40, -20, 20), atol=1.5)  # 140E..140W
    corners = mesh(ax).get_coordinates()  # in the map's frame, centred on 180
    row, column = np.unravel_index(np.argmax(mesh(ax).get_array()), values.shape)
    cell = corners[row : row + 2, column : column + 2].reshape(-1, 2)
    np.testing.assert_allclose(cell.mean(axis=0), (199 - 180, 5), atol=1e-9)


@pytest.mark.parametrize("projection", [ccrs.PlateCarree(), ccrs.Robinson()], ids=type)
def test_a_regional_grid_across_the_edge_of_axes_one_chose_is_mapped_where_it_is(projection):
    """Centred on the map's 0 degrees, the Pacific grid 141E..141W was cut in two at
    the map's edge and drawn sorted -179..-141, 141..179: the two cells beside the cut
    each spanned 141 degrees, joined across the globe (widths -38 to 322 degrees)."""
    lat, east = np.arange(-19.0, 20.0, 2.0), np.arange(141.0, 220.0, 2.0)
    values = np.zeros((lat.size, east.size))
    values[lat == 5.0, east == 199.0] = 1.0  # one hot cell at 199E 5N
    ax = plt.axes(projection=projection)
    cl.plot.map(field(lat, east, values), ax)
    corners = mesh(ax).get_coordinates()
    np.testing.assert_allclose(np.diff(corners[..., 0], axis=1), 2.0)
    row, column = np.unravel_index(np.argmax(mesh(ax).get_array()), values.shape)
    centre = corners[row : row + 2, column : column + 2].reshape(-1, 2).mean(axis=0)
    on_map = (mesh(ax).get_transform() - ax.transData).transform(centre)
    lon, lat = ccrs.PlateCarree().transform_point(*on_map, projection)
    np.testing.assert_allclose((lon, lat), (199.0 - 360, 5.0), atol=1e-6)


def test_infinite_cells_are_blank_and_leave_the_colour_scale_to_the_finite_ones(offline):
    """vmax was inf: matplotlib fell back to limits -0.1..0.1, every cell one colour."""
    lat, lon = np.arange(35.5, 70.0, 5.0), np.arange(-19.5, 40.0, 5.0)
    values = np.arange(lat.size * lon.size, dtype=float).reshape(lat.size, lon.size) + 1
    values[0, 0], values[1, 1] = np.inf, -np.inf
    shown = mesh(cl.plot.map(field(lat, lon, values)))
    finite = values[np.isfinite(values)]
    assert shown.get_clim() == (finite.min(), finite.max()) == (2.0, 84.0)
    np.testing.assert_array_equal(
        np.ma.getmaskarray(shown.get_array()).reshape(values.shape), ~np.isfinite(values)
    )


def test_a_regional_grid_across_greenwich_labelled_0_360_is_regional():
    """Its span was taken as 359 degrees: a global strip with the data at both edges."""
    lat, lon = np.arange(35.5, 70.0, 1.0), np.arange(-19.5, 40.0, 1.0)
    projection = cl.plot.choose_projection(field(lat, lon % 360).sortby("x"))
    assert type(projection) is ccrs.LambertConformal
    assert projection.proj4_params["lon_0"] == 10


def test_map_refuses_a_field_with_extra_dims(europe):
    with pytest.raises(InputDataError, match=r"also has dims \['time'\]"):
        cl.plot.map(europe["tas"])


def test_a_map_of_the_reduction_a_refusal_suggests_is_that_mean(europe, offline):
    """ "e.g. da.mean('member')" for a field with member and time: that mean, followed,
    still had time and was refused again."""
    tas = europe["tas"].expand_dims(member=["r1", "r2"]).copy()
    tas[1] += 1.0
    with pytest.raises(InputDataError, match=r"also has dims \['member', 'time'\]") as info:
        cl.plot.map(tas)
    suggested = re.search(r"e\.g\. (da\.mean\(.*\))$", str(info.value)).group(1)
    reduced = eval(suggested, {"da": tas})
    expected = europe["tas"].mean("time") + 0.5
    shown = np.ma.filled(mesh(cl.plot.map(reduced)).get_array(), np.nan).reshape(expected.shape)
    np.testing.assert_allclose(shown, expected.values, rtol=1e-6)  # float32 means


def test_compare_maps_share_scales_and_centre_differences(europe, offline, tmp_path):
    truth = europe["tas"].mean("time")
    fig = cl.plot.compare_maps(truth, truth + 0.3, baseline=truth - 1.0)
    maps = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_title() for ax in maps] == [
        "truth",
        "model",
        "baseline",
        "model - truth",
        "baseline - truth",
    ]
    fields = {mesh(ax).get_clim() for ax in maps[:3]}
    differences = {mesh(ax).get_clim() for ax in maps[3:]}
    assert len(fields) == 1 and len(differences) == 1
    assert differences.pop() == pytest.approx((-1.0, 1.0))
    assert colourbar_labels(fig) == [
        "near-surface air temperature [K]",
        "difference from truth [K]",
    ]
    assert render(fig, tmp_path / "compare.png").std() > 0


def test_skill_maps(europe, offline, tmp_path):
    noise = np.random.default_rng(0).normal(scale=0.5, size=europe["tas"].shape)
    fig = cl.plot.skill_maps(europe["tas"] + noise + 0.2, europe["tas"])
    maps = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    rmse, bias, r2 = (mesh(ax).get_clim() for ax in maps)
    assert rmse[0] == 0 and rmse[1] == pytest.approx(np.sqrt(0.25 + 0.04), rel=0.2)
    assert bias[0] == -bias[1]
    assert r2 == (-1.0, 1.0)
    assert colourbar_labels(fig) == [
        "root mean squared error [K]",
        "mean bias [K]",
        "coefficient of determination [1]",
    ]
    assert render(fig, tmp_path / "skill.png").std() > 0


def test_skill_and_comparison_of_a_model_in_other_units_are_in_the_truths(europe, offline):
    """A model in degC against a truth in K: its bias mapped -272.95 K (the RMSE beside
    it 0.2 K); compare_maps shared one scale from 1.25 (degC) to 292 (K) and mapped
    differences of -272.95. Differences of degC fields were labelled degC, not K."""
    truth = europe["tas"].astype(float)
    model = (truth - 273.15 + 0.2).assign_attrs(truth.attrs, units="degC")
    fig = cl.plot.skill_maps(model, truth)
    bias = [ax for ax in fig.axes if ax.get_title() == "bias"][0]
    np.testing.assert_allclose(mesh(bias).get_array(), 0.2, rtol=1e-9)
    assert colourbar_labels(fig)[1] == "mean bias [K]"
    fig = cl.plot.compare_maps(truth.mean("time"), model.mean("time"))
    maps = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    lo, hi = float(truth.mean("time").min()), float(truth.mean("time").max())
    assert mesh(maps[0]).get_clim() == pytest.approx((lo, hi + 0.2), rel=1e-6)
    np.testing.assert_allclose(mesh(maps[2]).get_array(), 0.2, rtol=1e-9)
    in_celsius = truth.mean("time").assign_attrs(units="degC") - 273.15
    fig = cl.plot.compare_maps(in_celsius, in_celsius + 0.2)
    assert colourbar_labels(fig)[1] == "difference from truth [K]"
    assert colourbar_labels(cl.plot.skill_maps(model, model - 0.1))[1] == "mean bias [K]"


def test_return_level_maps(europe, offline, tmp_path):
    params = cl.metrics.fit_gev(cl.metrics.annual_maxima(europe["tas"]), method="lmoments")
    levels = cl.metrics.return_level(params, [10, 100])
    fig = cl.plot.return_level_maps(levels)
    maps = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_title() for ax in maps] == ["10-year return level", "100-year return level"]
    assert mesh(maps[0]).get_clim() == mesh(maps[1]).get_clim()
    assert colourbar_labels(fig) == ["GEV return level [K]"]
    assert render(fig, tmp_path / "return_levels.png").std() > 0


def test_latent_traversal(europe, offline, tmp_path):
    values = np.linspace(-2, 2, 5)
    decoded = europe["tas"].isel(time=0) + xr.DataArray(values, dims="value") * europe["sftlf"]
    decoded = decoded.assign_attrs(europe["tas"].attrs)  # as estimator.traverse returns it
    traversal = xr.Dataset(
        {"tas": decoded.assign_coords(value=values)}, attrs={"traversed_latent": 1}
    )
    fig = cl.plot.latent_traversal(traversal, anomaly=True)
    maps = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_title() for ax in maps] == [f"z[1] = {v:+.3g}" for v in values]
    assert len({mesh(ax).get_clim() for ax in maps}) == 1
    assert mesh(maps[0]).get_clim()[0] == -mesh(maps[0]).get_clim()[1]
    assert colourbar_labels(fig) == ["near-surface air temperature anomaly [K]"]
    assert render(fig, tmp_path / "traversal.png").std() > 0
    in_celsius = traversal.assign(tas=traversal["tas"].assign_attrs(units="degC"))
    fig = cl.plot.latent_traversal(in_celsius, anomaly=True)  # a change of 1 degC is 1 K
    assert colourbar_labels(fig) == ["near-surface air temperature anomaly [K]"]
    guided = traversal.assign_attrs(traversed_auxiliary="nao")  # as AuxVAE.traverse gives
    titles = [ax.get_title() for ax in cl.plot.latent_traversal(guided).axes]
    assert titles[: len(values)] == [f"nao = {v:+.3g}" for v in values]


def test_aggregate_posterior(tmp_path):
    z = xr.DataArray(np.random.default_rng(0).normal(size=(300, 3)), dims=("time", "latent"))
    fig = cl.plot.aggregate_posterior(z, pair=(0, 2))
    scatter, marginal = fig.axes
    assert (scatter.get_xlabel(), scatter.get_ylabel()) == ("z[0]", "z[2]")
    assert len(scatter.collections) == 2
    assert [line.get_label() for line in marginal.lines] == ["z[0]", "z[1]", "z[2]", "N(0, 1)"]
    assert render(fig, tmp_path / "posterior.png").std() > 0
    laplace = cl.plot.aggregate_posterior(z, prior=stats.laplace())  # a prior of one's own
    assert laplace.axes[1].lines[-1].get_label() == "prior"
    with pytest.raises(InputDataError, match="no dimension 'code'"):
        cl.plot.aggregate_posterior(z, latent_dim="code")


@pytest.mark.parametrize(("n_latents", "pair"), [(1, (0, 1)), (3, (0, 5)), (3, (-1, 0))])
def test_aggregate_posterior_refuses_a_pair_outside_the_latents(n_latents, pair):
    """A one-latent model's codes (or pair=(0, 5) of three) failed in numpy with
    'IndexError: index 1 is out of bounds for axis 1 with size 1'; pair=(-1, 0)
    plotted the last latent labelled z[-1]."""
    z = xr.DataArray(np.zeros((50, n_latents)), dims=("time", "latent"))
    message = rf"pair=\({pair[0]}, {pair[1]}\) names latents outside 0..{n_latents - 1}"
    with pytest.raises(InputDataError, match=message):
        cl.plot.aggregate_posterior(z, pair=pair)


def test_latent_factor_heatmap(tmp_path):
    factors = xr.DataArray(np.random.default_rng(1).normal(size=(200, 2)), dims=("time", "mode"))
    latents = xr.DataArray(
        factors.values @ [[0.0, 1.0, 0.5], [1.0, 0.0, 0.5]], dims=("time", "latent")
    )
    fig = cl.plot.latent_factor_heatmap(latents, factors)
    heat = fig.axes[0]
    assert heat.images[0].get_clim() == (-1, 1)
    assert len(heat.texts) == 6 and "1.00" in {t.get_text() for t in heat.texts}
    assert colourbar_labels(fig) == ["correlation of latent with factor [1]"]
    assert render(fig, tmp_path / "heatmap.png").std() > 0


def test_latent_factor_scatter_pairs_the_samples_its_titles_correlate():
    """It paired by position: samples in another order gave a panel titled r = 0.96 over
    points correlated 0.04; factors of more samples failed in matplotlib."""
    rng = np.random.default_rng(0)
    time = np.arange(200)
    factors = xr.DataArray(rng.normal(size=(300, 2)), dims=("time", "mode"))
    factors = factors.assign_coords(time=np.arange(300))
    latents = xr.DataArray(np.tanh(factors.values[:200, ::-1]), dims=("time", "latent"))
    latents = latents.assign_coords(time=time).isel(time=rng.permutation(200))
    fig = cl.plot.latent_factor_scatter(latents, factors)
    x, y = fig.axes[1].collections[0].get_offsets().T  # latent 0 against factor 1
    assert fig.axes[1].get_title() == f"r = {np.corrcoef(x, y)[0, 1]:.2f}" == "r = 0.96"


def test_training_history(tmp_path):
    history = pd.DataFrame(
        {
            "train_loss": [3.0, 2.0, 1.5],
            "valid_loss": [3.5, 2.5, 2.4],
            "train_kl": [0.0, -0.5, 0.1],
            "lr": [1e-3] * 3,
        },
        index=pd.RangeIndex(3, name="epoch"),
    )
    fig = cl.plot.training_history(history, best_epoch=2)
    loss, kl = fig.axes
    assert (loss.get_title(), kl.get_title()) == ("loss", "kl")
    assert [line.get_label() for line in loss.lines] == ["train", "valid", "best epoch"]
    assert loss.get_yscale() == "log" and kl.get_yscale() == "linear"
    assert render(fig, tmp_path / "history.png").std() > 0
    with pytest.raises(InputDataError, match="no train_<loss> columns"):
        cl.plot.training_history(history[["lr"]])


def test_latent_factor_scatter(tmp_path):
    rng = np.random.default_rng(2)
    factors = xr.DataArray(rng.normal(size=(300, 2)), dims=("sample", "kle_term"))
    latents = xr.DataArray(-factors.values[:, ::-1], dims=("sample", "latent"))
    fig = cl.plot.latent_factor_scatter(latents, factors, factor_dim="kle_term")
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 4 and titles[1] == titles[2] == "r = -1.00"
    x, y = fig.axes[1].collections[0].get_offsets().T  # latent 0 against factor 1
    np.testing.assert_array_equal(y, -x)
    assert fig.axes[2].get_xlabel() == "kle_term 0" and fig.axes[2].get_ylabel() == "latent 1"
    assert render(fig, tmp_path / "scatter.png").std() > 0


def test_without_cartopy_the_charts_draw_and_a_map_names_the_extra():
    """climlatent.plot imported cartopy whole, so a base install (no ``maps`` extra)
    could not draw a training curve: ImportError at ``import climlatent.plot``."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["cartopy"] = None  # as if not installed
        import matplotlib
        matplotlib.use("Agg")
        import pandas as pd
        import climlatent.plot as plot
        from climlatent.errors import MissingDependencyError
        history = pd.DataFrame({"train_loss": [3.0, 2.0, 1.5], "valid_loss": [3.2, 2.4, 2.0]})
        fig = plot.training_history(history, best_epoch=2)
        lines = fig.axes[0].get_lines()
        print([line.get_ydata().tolist() for line in lines[:2]])
        try:
            plot.map
        except MissingDependencyError as err:
            print(err)
        try:
            from climlatent.plot import compare_maps
        except ImportError as err:
            print(type(err).__name__, err)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    curves, attribute, imported = result.stdout.strip().splitlines()
    assert curves == "[[3.0, 2.0, 1.5], [3.2, 2.4, 2.0]]"
    message = "a map of climlatent.plot needs cartopy, which is not installed"
    assert attribute == f"{message}: pip install 'climlatent[maps]'"
    assert imported == f"MissingDependencyError {attribute}"
