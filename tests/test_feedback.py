"""Feedback for a newcomer: progress bars on by default (off with progress=False), an
estimator's plain-text and HTML reprs, and the training history of every torch estimator
as a DataFrame that ``cl.plot.training_history(est)`` draws."""

import dataclasses
import inspect

import matplotlib
import pandas as pd
import pytest
from click.testing import CliRunner
from test_fit_resume import CASES

import climlatent as cl
from climlatent.batch.store import _to_zarr
from climlatent.cli import main
from climlatent.estimators import registry
from climlatent.fit_config import fit_from_config
from climlatent.zarr_store import write_zarr

matplotlib.use("Agg")

ESTIMATORS = pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())


def test_progress_is_on_by_default_everywhere_it_can_be_turned_off():
    with_progress = {
        name: field.default
        for name, cls in registry().items()
        for field in dataclasses.fields(cls)
        if field.name == "progress"
    }
    assert set(CASES) <= set(with_progress)  # every torch estimator
    assert all(with_progress.values()), with_progress
    for function in (write_zarr, _to_zarr, fit_from_config):
        assert inspect.signature(function).parameters["progress"].default is True


def test_training_shows_epochs_with_loss_by_default_and_nothing_with_progress_false(capsys):
    case = CASES["ProxyDownscaler"]
    data = case.data()
    case.fit(case.make(progress=True, epochs=2), data)
    shown = capsys.readouterr().err
    assert "2/2" in shown and "loss" in shown
    case.fit(case.make(epochs=2), data)  # QUIET: progress=False
    assert capsys.readouterr() == ("", "")


@ESTIMATORS
def test_every_torch_estimator_records_its_history_and_plots_it(case):
    est = case.make(epochs=2)
    case.fit(est, case.data())
    assert isinstance(est.history_, pd.DataFrame) and len(est.history_) == 2
    keys = [c.removeprefix("train_") for c in est.history_ if c.startswith("train_")]
    assert est.history_.index.name == "epoch" and keys
    assert est.best_epoch_ is None or est.best_epoch_ in est.history_.index
    fig = cl.plot.training_history(est)
    assert [ax.get_title() for ax in fig.axes] == keys
    assert "2 epochs; last train_" in est._repr_html_()


def test_repr_is_the_changed_options_and_html_shows_what_was_fitted():
    est = cl.EOFRegression(n_proxy_eofs=3, n_target_eofs=3)
    assert repr(est) == "EOFRegression(n_proxy_eofs=3, n_target_eofs=3)"
    assert repr(cl.VAE()) == "VAE()"
    assert "(not fitted)" in est._repr_html_()
    ds = cl.datasets.synthetic_circulation(n_years=1, n_lat=4, n_lon=5)
    page = est.fit(ds, "pr", "psl")._repr_html_()
    assert "(fitted)" in page and "<b>n_proxy_eofs</b>=3" in page
    assert "psl, pr" in page and "pr: lat 4 x lon 5" in page


def test_an_estimator_without_history_is_refused_by_the_plot():
    with pytest.raises(cl.errors.InputDataError, match="EOFRegression has no training history"):
        cl.plot.training_history(cl.EOFRegression())


@pytest.mark.parametrize(
    ("name", "described"),
    [
        ("LLAAE", "LLAAE: psl -> pr"),
        ("ProxyDownscaler", "ProxyDownscaler: tos -> chl"),
        ("VAE", "VAE: psl"),
        ("AuxVAE", "AuxVAE: psl, circulation_factor[1]"),
        ("VED", "VED: psl -> tas"),
        ("VAEDLM", "VAEDLM: u"),
    ],
)
def test_info_describes_every_saved_torch_estimator(name, described, tmp_path):
    case = CASES[name]
    est = case.make(epochs=1)
    case.fit(est, case.data())
    est.save(tmp_path / "model.clm")
    result = CliRunner().invoke(main, ["info", str(tmp_path / "model.clm")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(described)
    assert "  epochs = 1" in lines and "  progress = False" in lines
