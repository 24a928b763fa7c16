"""The downscaling peer table: its numbers against numpy, its ratios, its files."""

import contextlib
import importlib.util
import io

import numpy as np
import pandas as pd
import pytest
from numpy_reference import area_weights, decimal_years, polyfit_trends, radial_power, weighted_rms

from climlatent.baselines import BilinearBaseline
from climlatent.studies import downscaling_peers as peers

METRICS = ["rmse", "bias", "q90_error", "trend_error", "spectrum_error"]


def numpy_scores(prediction, truth, lat, years):
    """The table's columns computed with numpy alone, over the cells the truth defines."""
    prediction, truth = prediction.astype(np.float64), truth.astype(np.float64)
    valid = np.isfinite(truth).all(axis=0)
    weights = area_weights(lat, truth.shape[-1]) * valid
    error = np.where(valid, prediction - truth, 0.0)
    total = weights.sum() * len(truth)
    tail = np.quantile(prediction, 0.9, axis=0) - np.quantile(truth, 0.9, axis=0)
    filled = [np.where(valid, field, 0.0) for field in (prediction, truth)]
    trend = polyfit_trends(filled[0], years) - polyfit_trends(filled[1], years)
    columns = valid.all(axis=0)
    spectra = [radial_power(field[:, :, columns]) for field in (prediction, truth)]
    return {
        "rmse": np.sqrt((weights * error**2).sum() / total),
        "bias": (weights * error).sum() / total,
        "q90_error": weighted_rms(np.where(valid, tail, np.nan), lat),
        "trend_error": weighted_rms(np.where(valid, trend, np.nan), lat),
        "spectrum_error": np.mean(np.abs(np.log10(spectra[0] / spectra[1]))),
    }


def bilinear_reference(world):
    """numpy_scores of BilinearBaseline's downscaling of ``world``'s test years."""
    coarse_train, coarse_test = world.split(world.coarse)
    fine_train, fine_test = world.split(world.fine)
    base = BilinearBaseline().fit(coarse_train, fine_train, world.target)
    out = base.downscale(coarse_test)[world.target]
    truth = fine_test[world.target]
    lat = truth[truth.dims[1]].values
    assert np.isfinite(out.values[:, np.isfinite(truth.values).all(axis=0)]).all()
    return numpy_scores(out.values, truth.values, lat, decimal_years(truth.time.values))


@pytest.fixture(scope="module")
def tiny_world():
    return peers.biogeochem_world(4, **peers.QUICK_BIOGEOCHEM)


def test_bilinear_row_equals_numpy_metrics_and_ratios_divide_by_the_best_peer(tiny_world):
    rows = ("bilinear", "bilinear + climatology")
    methods = {name: method for name, method in peers.peer_methods().items() if name in rows}
    table = peers.peer_table([tiny_world], methods).set_index("method")
    expected = bilinear_reference(tiny_world)
    for metric in METRICS:
        assert table.loc["bilinear", metric] == pytest.approx(expected[metric], rel=1e-5)
        best = table[metric].abs().min()
        np.testing.assert_allclose(table[f"{metric}_ratio"], table[metric].abs() / best)
    assert table.loc["bilinear", "units"] == "mg m-3"


def test_xsdba_missing_leaves_its_rows_out_with_a_message(monkeypatch, capsys):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "xsdba" else find_spec(name)
    )
    methods = peers.peer_methods()
    assert not [name for name in methods if "xsdba" in name]
    assert "xsdba is not installed" in capsys.readouterr().err


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("peers")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        peers.main(["--output", str(folder), "--quick"])
    return folder, printed.getvalue()


@pytest.mark.slow
def test_quick_command_writes_csv_and_png_with_every_row(quick_run):
    folder, printed = quick_run
    table = pd.read_csv(folder / "downscaling_peers.csv")
    png = (folder / "downscaling_peers.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert set(table["world"]) == {"A1B tas", "biogeochem chl"}
    for name in ("bilinear", "ProxyDownscaler", peers.LATENT_MODEL, "LLAAE"):
        assert (table["method"] == name).sum() == 2
    drivers_only = table[table["method"] == peers.LATENT_DRIVERS_ONLY]
    assert drivers_only["world"].tolist() == ["biogeochem chl"]  # A1B has no drivers
    inputs = table.set_index(["world", "method"])["inputs"]
    assert inputs["biogeochem chl", peers.LATENT_MODEL] == "chl, tos, rsds"
    assert inputs["biogeochem chl", peers.LATENT_DRIVERS_ONLY] == "tos, rsds"
    assert inputs["A1B tas", peers.LATENT_MODEL] == "tas"
    assert np.isfinite(table[METRICS].values).all()
    assert printed.count("latent / best peer") == 2
    assert "wall time" in printed


@pytest.mark.slow
def test_quick_command_bilinear_rows_equal_numpy(quick_run, tiny_world):
    table = pd.read_csv(quick_run[0] / "downscaling_peers.csv")
    for world in (peers.a1b_world(10), tiny_world):
        row = table[(table["world"] == world.name) & (table["method"] == "bilinear")].iloc[0]
        expected = bilinear_reference(world)
        for metric in METRICS:
            assert row[metric] == pytest.approx(expected[metric], rel=1e-5)


@pytest.mark.slow
def test_quick_command_ratios_exclude_the_latent_model(quick_run):
    table = pd.read_csv(quick_run[0] / "downscaling_peers.csv")
    for _, block in table.groupby("world"):
        peers_only = block[~block["method"].isin(peers.LATENT_ROWS)]
        for metric in METRICS:
            best = peers_only[metric].abs().min()
            np.testing.assert_allclose(
                block[f"{metric}_ratio"], block[metric].abs() / best, rtol=1e-5
            )


@pytest.mark.slow
def test_quick_command_has_xsdba_rows_when_installed(quick_run):
    pytest.importorskip("xsdba")
    table = pd.read_csv(quick_run[0] / "downscaling_peers.csv")
    for name in peers.XSDBA_METHODS:
        rows = table[table["method"] == f"xsdba {name}"]
        assert len(rows) == 2
        assert np.isfinite(rows[METRICS].values).all()
