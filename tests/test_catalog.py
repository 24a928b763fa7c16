import inspect
import json

import intake
import pytest
import xarray as xr

from climlatent import datasets
from climlatent.catalog import (
    SampleDataSource,
    SyntheticCirculationSource,
    default_catalog_path,
    open_catalog,
    open_entry,
)
from climlatent.errors import InputDataError

SHORT = {"n_years": 2, "n_members": 1}
SAMPLE_LOADERS = {
    "a1b_north_america": datasets.a1b_north_america,
    "e1_north_america": datasets.e1_north_america,
    "ostia_sst": datasets.ostia_sst,
}


def generator_defaults():
    signature = inspect.signature(datasets.synthetic_circulation)
    return {name: parameter.default for name, parameter in signature.parameters.items()}


def test_default_catalog_lists_every_dataset():
    catalog = open_catalog()
    assert default_catalog_path().is_file()
    assert sorted(catalog) == sorted(["synthetic_circulation", *SAMPLE_LOADERS])
    for name in catalog:
        assert catalog[name].describe()["description"], name
        assert catalog[name].container == "xarray"


def test_synthetic_entry_holds_the_generator_defaults():
    args = open_catalog()["synthetic_circulation"].describe()["args"]
    assert args == generator_defaults()


@pytest.mark.parametrize("name", SAMPLE_LOADERS)
def test_sample_entry_matches_loader(name):
    expected = SAMPLE_LOADERS[name]()
    xr.testing.assert_identical(open_entry(name), expected)
    source = intake.open_catalog(str(default_catalog_path()))[name]
    assert isinstance(source, SampleDataSource)
    xr.testing.assert_identical(source.read(), expected)
    lazy = source.to_dask()
    assert all(var.chunks is not None for var in lazy.data_vars.values())
    xr.testing.assert_identical(lazy.load(), expected.load())


def test_synthetic_entry_matches_generator():
    expected = datasets.synthetic_circulation(**SHORT, seed=4)
    xr.testing.assert_identical(open_entry("synthetic_circulation", **SHORT, seed=4), expected)
    source = intake.open_catalog(str(default_catalog_path()))["synthetic_circulation"]
    assert isinstance(source, SyntheticCirculationSource)
    xr.testing.assert_identical(source(**SHORT, seed=4).read(), expected)
    xr.testing.assert_identical(source(**SHORT, seed=4).to_dask().load(), expected)


def test_synthetic_entry_default_is_the_default_dataset():
    ds = open_entry("synthetic_circulation")
    assert dict(ds.psl.sizes) == {"member": 2, "time": 7300, "lat": 16, "lon": 24}
    expected = dict(generator_defaults(), ar_coefficients=pytest.approx([0.8, 0.64, 0.512]))
    assert json.loads(ds.attrs["synthetic_parameters"]) == expected


def test_open_entry_with_explicit_catalog(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "sources:\n"
        "  tiny:\n"
        "    driver: climlatent.catalog.SyntheticCirculationSource\n"
        "    args: {n_years: 1, n_members: 1, n_lat: 4, n_lon: 5, calendar: 360_day}\n"
    )
    ds = open_entry("tiny", path=path)
    assert dict(ds.pr.sizes) == {"member": 1, "time": 360, "lat": 4, "lon": 5}
    assert list(open_catalog(path)) == ["tiny"]


def test_unknown_entry_names_it():
    with pytest.raises(InputDataError, match="no entry 'precipitation_obs'.*ostia_sst"):
        open_entry("precipitation_obs")


def test_missing_catalog_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        open_catalog(tmp_path / "nowhere.yaml")


@pytest.mark.parametrize(
    ("driver", "args"),
    [
        # intake read this entry by calling subprocess.check_output on the text of the
        # file it names: the program in it ran
        (
            "intake.source.derived.GenericTransform",
            {"targets": ["ran"], "transform": "subprocess.check_output", "transform_kwargs": {}},
        ),
        ("subprocess.Popen", {"args": ["touch", "ran"]}),
        ("textfiles", {"urlpath": "../../etc/passwd"}),
    ],
)
def test_a_catalog_entry_of_another_driver_is_refused_before_intake_imports_it(
    tmp_path, driver, args
):
    script = tmp_path / "ran.sh"
    script.write_text(f"#!/bin/sh\ntouch {tmp_path / 'RAN'}\n")
    script.chmod(0o755)
    (tmp_path / "command.txt").write_text(str(script))
    path = tmp_path / "evil.yaml"
    entries = {
        "ran": {"driver": "textfiles", "args": {"urlpath": str(tmp_path / "command.txt")}},
        "evil": {"driver": driver, "args": args},
    }
    path.write_text(json.dumps({"sources": entries}))
    with pytest.raises(InputDataError, match=f"entry '(ran|evil)': driver '{driver}|textfiles"):
        open_entry("evil", path=path)
    assert not (tmp_path / "RAN").exists()


@pytest.mark.parametrize("filename", ["/etc/hostname", "../../../../../../../../../etc/passwd"])
def test_a_sample_file_outside_the_sample_folder_is_refused(tmp_path, filename):
    """SampleDataSource(filename="/etc/hostname") opened /etc/hostname."""
    path = tmp_path / "out.yaml"
    entry = {"driver": "climlatent.catalog.SampleDataSource", "args": {"filename": filename}}
    path.write_text(json.dumps({"sources": {"out": entry}}))
    with pytest.raises(FileNotFoundError, match="is not a file of iris-sample-data"):
        open_entry("out", path=path)


def test_environment_variables_are_not_expanded_into_arguments(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIMLATENT_SECRET", "noleap")
    path = tmp_path / "env.yaml"
    args = {**SHORT, "n_lat": 4, "n_lon": 5, "calendar": "{{ env('CLIMLATENT_SECRET') }}"}
    entry = {"driver": "climlatent.catalog.SyntheticCirculationSource", "args": args}
    path.write_text(json.dumps({"sources": {"env": entry}}))
    with pytest.raises(InputDataError, match="unknown calendar '{{env"):
        open_entry("env", path=path)
