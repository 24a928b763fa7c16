"""Loading a hostile model folder: every defect is a CheckpointError, nothing outside is read.

Each case edits a genuine saved model; the folder sits in ``tmp_path`` beside a file
``outside.nc`` (a copy of one of the model's own grids, so that a loader following a
path out of the folder would find a matching checksum) and ``outside.json`` (a valid
manifest). Every open of a file while loading is recorded, and none may lie outside
the folder.
"""

import builtins
import hashlib
import io
import json
import shutil
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner
from safetensors.numpy import load_file, save_file

import climlatent as cl
import climlatent.persistence as persistence
from climlatent.cli import main
from climlatent.errors import CheckpointError

WEIGHTS = "weights.safetensors"


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_manifest(folder):
    return json.loads((folder / "manifest.json").read_text())


def write_manifest(folder, manifest):
    (folder / "manifest.json").write_text(json.dumps(manifest))


def edit_manifest(edit):
    def apply(folder):
        manifest = read_manifest(folder)
        edit(manifest, folder)
        write_manifest(folder, manifest)

    return apply


def set_field(field, value):
    return edit_manifest(lambda m, _: m.__setitem__(field, value))


def deep_fitted(depth):
    """The manifest with ``fitted`` replaced by ``depth`` nested lists (written as text)."""

    def apply(folder):
        manifest = read_manifest(folder)
        manifest["fitted"] = "DEEP"
        text = json.dumps(manifest).replace('"DEEP"', "[" * depth + "]" * depth)
        (folder / "manifest.json").write_text(text)

    return apply


def edit_weights(edit):
    """Rewrite weights.safetensors with ``edit`` applied, and its checksum to match."""

    def apply(folder):
        tensors = load_file(str(folder / WEIGHTS))
        edit(tensors)
        save_file(tensors, str(folder / WEIGHTS))
        manifest = read_manifest(folder)
        manifest["files"][WEIGHTS] = sha256(folder / WEIGHTS)
        write_manifest(folder, manifest)

    return apply


def list_file(name):
    """List ``name`` (a path leading out of the folder) with the checksum of outside.nc."""
    return edit_manifest(
        lambda m, folder: m["files"].__setitem__(name, sha256(folder.parent / "outside.nc"))
    )


def symlink_member(member, target):
    def apply(folder):
        (folder / member).unlink()
        (folder / member).symlink_to(target(folder))

    return apply


def symlinked_manifest(folder):
    shutil.copy(folder / "manifest.json", folder.parent / "outside.json")
    (folder / "manifest.json").unlink()
    (folder / "manifest.json").symlink_to(folder.parent / "outside.json")


def slash_in_name(folder):
    (folder / "sub").mkdir()
    shutil.copy(folder.parent / "outside.nc", folder / "sub" / "x.nc")
    list_file("sub/x.nc")(folder)


def garbage_grid(folder):
    (folder / "target_grid.nc").write_bytes(b"not a netCDF file")
    edit_manifest(
        lambda m, f: m["files"].__setitem__("target_grid.nc", sha256(f / "target_grid.nc"))
    )(folder)


def terabyte_grid(folder):
    """target_grid.nc as 1 kB declaring an 8 TB latitude, its chunks never written."""
    path = folder / "target_grid.nc"
    path.unlink()
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("lat", 10**12)
        nc.createVariable("lat", "f8", ("lat",))
    edit_manifest(lambda m, f: m["files"].__setitem__("target_grid.nc", sha256(path)))(folder)


def add_file(name, write):
    """Write ``name`` with ``write(folder, path)`` and list it with its own checksum."""

    def apply(folder):
        write(folder, folder / name)
        edit_manifest(lambda m, f: m["files"].__setitem__(name, sha256(f / name)))(folder)

    return apply


def copy_grid(folder, path):
    shutil.copy(folder / "proxy_grid.nc", path)


def training_history(folder, path):
    history = pd.DataFrame({"train_loss": [2.0, 1.0]}, index=pd.RangeIndex(2, name="epoch"))
    persistence._history_dataset(history, 1).to_netcdf(path)


def truncate_weights(update_checksum):
    def apply(folder):
        weights = folder / WEIGHTS
        weights.write_bytes(weights.read_bytes()[:-100])
        if update_checksum:
            edit_manifest(lambda m, f: m["files"].__setitem__(WEIGHTS, sha256(weights)))(folder)

    return apply


def set_tensor(name, make):
    return edit_weights(lambda t: t.__setitem__(name, make(t)))


def drop_tensor(name):
    return edit_weights(lambda t: t.pop(name))


# (case id, edit of the model folder, regex the error message must match)
EOF_CASES = [
    ("traversal-etc-passwd", list_file("../../etc/passwd"), r"'files'.*'\.\./\.\./etc/passwd'"),
    ("traversal-to-sibling", list_file("../outside.nc"), r"'files'.*not a plain file name"),
    ("absolute-path", list_file("/etc/passwd"), r"'files'.*'/etc/passwd'"),
    ("backslash-path", list_file("..\\outside.nc"), r"'files'.*not a plain file name"),
    ("dot-dot", list_file(".."), r"'files'.*not a plain file name"),
    ("slash-in-name", slash_in_name, r"'files'.*'sub/x\.nc'"),
    (
        "symlink-leaving-folder",
        symlink_member("target_grid.nc", lambda f: f.parent / "outside.nc"),
        r"target_grid\.nc' is a symbolic link",
    ),
    (
        "symlink-inside-folder",
        symlink_member("proxy_grid.nc", lambda f: f / "target_grid.nc"),
        r"proxy_grid\.nc' is a symbolic link",
    ),
    ("symlinked-manifest", symlinked_manifest, r"manifest\.json' is a symbolic link"),
    ("manifest-a-list", lambda f: (f / "manifest.json").write_text("[]"), "not a climlatent"),
    ("format-wrong", set_field("format", 1), "not a climlatent model manifest"),
    ("format_version-str", set_field("format_version", "2"), r"'format_version'.*'2'"),
    ("format_version-float", set_field("format_version", 1.0), r"'format_version'.*1\.0"),
    ("format_version-bool", set_field("format_version", True), r"'format_version'.*True"),
    ("format_version-0", set_field("format_version", 0), r"'format_version'.*integer 1"),
    ("format_version-newer", set_field("format_version", 2), "newer format"),
    ("climlatent_version-int", set_field("climlatent_version", 1), "'climlatent_version'"),
    ("estimator-list", set_field("estimator", ["EOFRegression"]), r"'estimator'.*\['EOFR"),
    ("estimator-unknown", set_field("estimator", "os.system"), "unknown estimator 'os.system'"),
    ("estimator-abstract", set_field("estimator", "Estimator"), "not a loadable estimator"),
    ("config-list", set_field("config", []), r"'config' must be a dict"),
    (
        "config-unknown-key",
        edit_manifest(lambda m, _: m["config"].__setitem__("__class__", "os.system")),
        r"'config\.__class__' is not an option of EOFRegression",
    ),
    (
        "config-wrong-type",
        edit_manifest(lambda m, _: m["config"].__setitem__("n_proxy_eofs", "6")),
        r"'config\.n_proxy_eofs' must be of type int, got '6'",
    ),
    (
        "config-bool-for-number",
        edit_manifest(lambda m, _: m["config"].__setitem__("ridge", True)),
        r"'config\.ridge' must be of type float",
    ),
    (
        "config-invalid-value",
        edit_manifest(lambda m, _: m["config"].__setitem__("n_proxy_eofs", 0)),
        r"field 'config' is invalid: .* n_proxy_eofs=0 must be at least 1",
    ),
    ("fitted-str", set_field("fitted", "x"), r"'fitted' must be a dict"),
    (
        "fitted-incomplete",
        edit_manifest(lambda m, _: m["fitted"].pop("target")),
        r"field 'fitted'.*invalid: 'target'",
    ),
    (
        "fitted-wrong-type",
        edit_manifest(lambda m, _: m["fitted"].__setitem__("sample_dims", 5)),
        r"field 'fitted'.*invalid",
    ),
    ("files-list", edit_manifest(lambda m, _: m.__setitem__("files", list(m["files"]))), "'files'"),
    ("files-str", set_field("files", "weights.safetensors"), r"'files' must be a dict"),
    (
        "files-without-weights",
        edit_manifest(lambda m, _: m["files"].pop(WEIGHTS)),
        r"'files' does not list weights\.safetensors",
    ),
    (
        "digest-not-hex",
        edit_manifest(lambda m, _: m["files"].__setitem__(WEIGHTS, "x" * 64)),
        r"'files\.weights\.safetensors' must be a SHA-256",
    ),
    (
        "digest-int",
        edit_manifest(lambda m, _: m["files"].__setitem__(WEIGHTS, 0)),
        r"'files\.weights\.safetensors' must be a SHA-256",
    ),
    ("field-missing", edit_manifest(lambda m, _: m.pop("config")), r"'config' is missing"),
    ("field-unknown", set_field("code", "import os"), r"'code' is not a manifest field"),
    ("nested-100000", deep_fitted(100_000), "deeper than"),
    ("nested-100", deep_fitted(100), "deeper than"),
    ("garbage-netcdf", garbage_grid, r"model file '.*target_grid\.nc' is invalid"),
    (
        "netcdf-declaring-terabytes",  # read into xarray's index: a MemoryError
        terabyte_grid,
        r"target_grid\.nc' is invalid: its arrays declare 8000000000000 bytes, more than its",
    ),
    (
        "unused-netcdf",
        add_file("extra.nc", copy_grid),
        r"model file '.*extra\.nc' is not part of a EOFRegression",
    ),
    (
        "unused-file",
        add_file("notes.txt", lambda _, path: path.write_text("x")),
        r"model file '.*notes\.txt' is not part of a EOFRegression",
    ),
    (
        "history-of-an-untrained-model",
        add_file("history.nc", training_history),
        r"model file '.*history\.nc' is not part of a EOFRegression",
    ),
    (
        "tensor-wrong-shape",
        set_tensor("coef", lambda t: t["coef"][:-1]),
        r"weights\.safetensors' is invalid: tensor 'coef' is float64 \(6, 12\), expected float64 "
        r"\(7, 12\)",
    ),
    (
        "tensor-wrong-dtype",
        set_tensor("coef", lambda t: t["coef"].astype(np.float32)),
        r"weights\.safetensors' is invalid: tensor 'coef' is float32",
    ),
    (
        "tensor-wrong-ndim",
        set_tensor("proxy.mean", lambda t: t["proxy.mean"][None]),
        r"tensor 'proxy\.mean' is float64 \(1, 96\)",
    ),
    (
        "tensor-inconsistent-modes",
        set_tensor("proxy.explained_variance_ratio", lambda t: np.zeros(2)),
        r"tensor 'proxy\.explained_variance_ratio' is float64 \(2,\), expected float64 \(6,\)",
    ),
    (
        "tensor-missing",
        drop_tensor("coef"),
        r"weights\.safetensors' is invalid: tensor 'coef' is missing",
    ),
    (
        "tensor-extra",
        set_tensor("bogus", lambda t: np.zeros(3)),
        r"tensor 'bogus' is not part of a EOFRegression",
    ),
    (
        "tensor-extra-module",
        set_tensor("module.weight", lambda t: np.zeros(3, np.float32)),
        r"tensor 'module\.weight' is not part",
    ),
    ("truncated-weights", truncate_weights(True), r"weights\.safetensors' is invalid"),
    ("modified-weights", truncate_weights(False), r"weights\.safetensors.*checksum mismatch"),
]

LLAAE_CASES = [
    (
        "unused-netcdf",
        add_file("extra.nc", copy_grid),
        r"model file '.*extra\.nc' is not part of a LLAAE",
    ),
    (
        "module-wrong-shape",
        set_tensor("module.latent.loc.weight", lambda t: np.zeros((3, 96), np.float32)),
        r"tensor 'module\.latent\.loc\.weight' is float32 \(3, 96\), the model expects "
        r"float32 \(2, 96\)",
    ),
    (
        "module-wrong-dtype",
        set_tensor("module.latent.loc.bias", lambda t: t["module.latent.loc.bias"].astype(float)),
        r"tensor 'module\.latent\.loc\.bias' is float64 \(2,\)",
    ),
    (
        "module-missing",
        drop_tensor("module.decoder.net.1.bias"),
        r"weights\.safetensors' is invalid: tensor 'module\.decoder\.net\.1\.bias' is missing",
    ),
    (
        "module-extra",
        set_tensor("module.backdoor", lambda t: np.zeros(1, np.float32)),
        r"unexpected tensor 'module\.backdoor'",
    ),
    (
        "features-inconsistent",
        set_tensor("module.proxy_map.weight", lambda t: np.zeros((2, 4), np.float32)),
        r"tensor 'module\.proxy_map\.weight' is float32 \(2, 4\), expected float32 \(\?, 3\)",
    ),
]


@pytest.fixture(scope="module")
def saved_eof(fitted_eof, tmp_path_factory):
    path = tmp_path_factory.mktemp("eof") / "model.clm"
    fitted_eof.save(path)
    return path


@pytest.fixture(scope="module")
def saved_llaae(tmp_path_factory):
    ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=8, n_lon=12, seed=1)
    est = cl.LLAAE(epochs=1, latent_dim=2, filters=(4,), n_proxy_eofs=3).fit(ds, "pr", "psl")
    path = tmp_path_factory.mktemp("llaae") / "model.clm"
    est.save(path)
    return path


def sandbox(saved, tmp_path):
    """A copy of the model ``saved`` in ``tmp_path``, beside ``outside.nc``."""
    folder = shutil.copytree(saved, tmp_path / "model.clm")
    shutil.copy(folder / "target_grid.nc", tmp_path / "outside.nc")
    return folder


@pytest.fixture
def opened(monkeypatch):
    """Every path opened through Python, xarray or safetensors while the test runs."""
    paths = []

    def recording(func, argument=0):
        def wrapper(*args, **kwargs):
            file = args[argument]
            if not isinstance(file, int):
                paths.append(Path(file).resolve())
            return func(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(builtins, "open", recording(builtins.open))
    monkeypatch.setattr(io, "open", recording(io.open))
    monkeypatch.setattr(xr, "open_dataset", recording(xr.open_dataset))
    monkeypatch.setattr(persistence, "load_file", recording(persistence.load_file))
    return paths


def load_refused(folder, pattern, opened):
    """Load ``folder``: a CheckpointError matching ``pattern``, nothing outside it opened."""
    del opened[:]
    with pytest.raises(CheckpointError, match=pattern):
        cl.load(folder)
    sandbox_root, inside = folder.parent.resolve(), folder.resolve()
    strays = [
        p
        for p in opened
        if not p.is_relative_to(inside)
        and (p.is_relative_to(sandbox_root) or p == Path("/etc/passwd"))
    ]
    assert strays == []


@pytest.mark.parametrize(
    ("edit", "pattern"), [c[1:] for c in EOF_CASES], ids=[c[0] for c in EOF_CASES]
)
def test_malicious_eof_model_refused(saved_eof, tmp_path, opened, edit, pattern):
    folder = sandbox(saved_eof, tmp_path)
    edit(folder)
    load_refused(folder, pattern, opened)


@pytest.mark.parametrize(
    ("edit", "pattern"), [c[1:] for c in LLAAE_CASES], ids=[c[0] for c in LLAAE_CASES]
)
def test_malicious_torch_model_refused(saved_llaae, tmp_path, opened, edit, pattern):
    folder = sandbox(saved_llaae, tmp_path)
    edit(folder)
    load_refused(folder, pattern, opened)


def test_recorder_sees_what_loading_opens(saved_eof, saved_llaae, tmp_path, opened):
    for saved in (saved_eof, saved_llaae):
        folder = sandbox(saved, tmp_path / saved.parent.name)
        cl.load(folder)
        names = {p.name for p in opened if p.is_relative_to(folder.resolve())}
        assert {"manifest.json", WEIGHTS, "target_grid.nc"} <= names


def test_old_manifest_without_optional_config_keys_loads(saved_eof, tmp_path):
    folder = sandbox(saved_eof, tmp_path)
    edit_manifest(lambda m, _: m["config"].pop("ridge"))(folder)
    assert cl.load(folder).ridge == 0.0


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (set_field("format_version", "2"), "'format_version'"),
        (list_file("../../etc/passwd"), "'files'"),
        (deep_fitted(100_000), "deeper than"),
        (set_tensor("coef", lambda t: t["coef"][:-1]), "tensor 'coef'"),
    ],
    ids=["format_version", "traversal", "nested", "tensor-shape"],
)
@pytest.mark.parametrize("command", ["info", "emulate", "downscale"])
def test_cli_reports_a_bad_model_in_one_line(saved_eof, tmp_path, edit, pattern, command):
    folder = sandbox(saved_eof, tmp_path)
    edit(folder)
    args = [str(folder)]
    if command != "info":
        args += [str(tmp_path / "members.nc"), "--output", str(tmp_path / "out.zarr"), "-q"]
    result = CliRunner().invoke(main, [command, *args])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # reported, not raised
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert pattern in lines[0]


@pytest.fixture(scope="module")
def saved_downscaler(tmp_path_factory):
    world = cl.datasets.synthetic_biogeochem(n_years=1, n_fine_lat=8, n_fine_lon=8, seed=1)
    est = cl.ProxyDownscaler(epochs=1, progress=False).fit(
        world.coarse, world.fine, "chl", proxies={"tos": "exponential"}
    )
    path = tmp_path_factory.mktemp("downscaler") / "model.clm"
    est.save(path)
    return path


@pytest.mark.parametrize(
    ("index", "pattern"),
    [(-1, "negative coarse-cell indices"), (10**6, "names coarse cell 1000000 of 4")],
)
def test_interpolation_neighbours_outside_the_coarse_grid_refused(
    saved_downscaler, tmp_path, index, pattern
):
    # the sparse product would read outside the coarse field (a gather wrapped -1 round)
    folder = shutil.copytree(saved_downscaler, tmp_path / "model.clm")
    set_tensor("module.neighbours", lambda t: np.full_like(t["module.neighbours"], index))(folder)
    with pytest.raises(CheckpointError, match=pattern):
        cl.load(folder)
