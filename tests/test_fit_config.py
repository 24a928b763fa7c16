"""``climlatent fit`` YAML in each estimator's downscaler form: the saved model equals the
one the Python call fits on the same files."""

import numpy as np
import pytest
import yaml
from test_batch import write_members

import climlatent as cl
from climlatent.fit_config import ConfigError, fit_from_config, load_fit_config


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fit_config")
    world = cl.datasets.synthetic_biogeochem(n_members=2, n_years=2, n_fine_lat=16, n_fine_lon=16)
    write_members(world.coarse, folder / "coarse")
    write_members(world.fine, folder / "fine")
    return folder, world


def _config(folder, **keys):
    path = folder / "config.yaml"
    base = {"data": "coarse/*.nc", "fine": "fine/*.nc", "output": "model.clm"}
    path.write_text(yaml.safe_dump({**base, **keys}, sort_keys=False))
    return load_fit_config(path)


@pytest.mark.parametrize(
    ("estimator", "options", "keys", "python"),
    [
        ("EOFRegression", {"n_proxy_eofs": 3, "n_target_eofs": 3}, {"target": "tos"}, {}),
        ("EOFRegression", {"n_proxy_eofs": 3, "n_target_eofs": 3},
         {"target": "chl", "proxy": "tos"}, {"proxies": "tos"}),
        ("ProxyLatentDownscaler", {"epochs": 2, "channels": 2, "hidden": 4, "progress": False},
         {"target": "chl", "proxies": {"tos": "exponential"}},
         {"proxies": {"tos": "exponential"}}),
        ("ProxyLatentDownscaler", {"epochs": 2, "channels": 1, "target_input": True,
                                   "group": "time.season", "progress": False},
         {"target": "chl", "proxies": {"tos": "exponential"}},
         {"proxies": {"tos": "exponential"}}),
    ],
)  # fmt: skip
def test_downscaler_form_from_yaml_is_the_python_fit(folder, estimator, options, keys, python):
    folder, world = folder
    config = _config(folder, estimator=estimator, options=options, **keys)
    loaded = cl.load(fit_from_config(config, progress=False))
    direct = getattr(cl, estimator)(**options)
    direct.fit(world.coarse, world.fine, keys["target"], **python)
    ours, theirs = loaded.downscale(world.coarse), direct.downscale(world.coarse)
    np.testing.assert_array_equal(ours[keys["target"]].values, theirs[keys["target"]].values)


def test_downscaler_form_refuses_growth_laws(folder):
    folder, _ = folder
    with pytest.raises(ConfigError, match="EOFRegression does not take the key 'proxies'"):
        _config(folder, estimator="EOFRegression", target="chl", proxies={"tos": "exponential"})


@pytest.mark.parametrize(
    ("key", "value"), [("proxy", {"a": "b"}), ("target", ["chl"]), ("output", ["m.clm"])]
)
def test_a_name_given_as_a_list_or_mapping_is_refused_by_key(folder, key, value):
    # proxy: {a: b} escaped as "TypeError: unhashable type: 'dict'"; target: [chl]
    # looked for a variable "['chl']".
    folder, _ = folder
    keys = {"estimator": "EOFRegression", "target": "chl", "proxy": "tos", key: value}
    with pytest.raises(ConfigError, match=f"'{key}' must be one name"):
        _config(folder, **keys)


@pytest.mark.parametrize("checkpoint", ["model.clm", "./sub/../model.clm"])
def test_a_checkpoint_at_the_output_path_is_refused_before_training(folder, checkpoint):
    """Training ran to its end, writing the checkpoint file at the output path; then
    the model was refused that path (a file, not a model), and on every rerun again."""
    folder, _ = folder
    (folder / "sub").mkdir(exist_ok=True)
    with pytest.raises(ConfigError, match="'checkpoint' is the 'output' model path"):
        _config(folder, estimator="LLAAE", target="tos", checkpoint=checkpoint)
    config = _config(folder, estimator="LLAAE", target="tos", checkpoint="model.pt")
    assert config.checkpoint == folder / "model.pt" and config.output == folder / "model.clm"


def test_floats_in_exponent_notation_are_numbers(folder):
    """PyYAML reads 1e-3 (no point) as text: lr: 1e-3 was refused as not a float."""
    folder, _ = folder
    path = folder / "lr.yaml"
    path.write_text(
        "estimator: ProxyDownscaler\noptions: {lr: 1e-3, epochs: 1}\ndata: coarse/*.nc\n"
        "fine: fine/*.nc\ntarget: chl\noutput: lr.clm\n"
    )
    assert load_fit_config(path).options == {"lr": 0.001, "epochs": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("estimator: EOFRegression\nestimator: LLAAE\n", "key 'estimator' is given twice"),
        ("estimator: EOFRegression\noptions: {epochs: 1, epochs: 2}\n", "'epochs' is given twice"),
        ("estimator: &e EOFRegression\ntarget: *e\n", r"aliases \(\*name\) are not allowed"),
    ],
)
def test_repeated_keys_and_aliases_are_refused(tmp_path, text, message):
    """A key given twice was read as its last value, silently (estimator: LLAAE fitted
    in place of the EOFRegression read first); nested aliases, a 1 KB file standing
    for 5e7 values, took 3.5 GB to spell out in the error message (MemoryError)."""
    path = tmp_path / "config.yaml"
    path.write_text(text + "data: m.nc\nproxy: psl\noutput: m.clm\n")
    with pytest.raises(ConfigError, match=message):
        load_fit_config(path)
