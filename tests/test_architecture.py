"""The layering of DESIGN.md, checked on the source: data flows one way."""

import ast
import configparser
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "climlatent"
TORCH_SIDE = [
    "models",
    "training.py",
    "_epoch.py",
    "checkpoint.py",
    "distributed.py",
    "precision.py",
]
XARRAY_SIDE = [
    "io.py",
    "grid.py",
    "monotonic.py",
    "units.py",
    "checks.py",
    "transforms.py",
    "_transforms.py",
    "batching.py",
    "catalog.py",
    "datasets",
    "metrics",
    "regrid",
    "baselines.py",
    "reference",
    "benchmarks/darcy_generation.py",
    "benchmarks/burgers_generation.py",
]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def _files(entries):
    for entry in entries:
        target = PACKAGE / entry
        yield from sorted(target.rglob("*.py")) if target.is_dir() else [target]


@pytest.mark.parametrize("path", list(_files(TORCH_SIDE)), ids=lambda p: p.name)
def test_torch_modules_never_import_xarray(path):
    assert not _imports(path) & {"xarray", "cf_xarray", "dask"}


@pytest.mark.parametrize("path", list(_files(XARRAY_SIDE)), ids=lambda p: p.name)
def test_data_layers_never_import_torch(path):
    assert "torch" not in _imports(path)


def test_no_module_over_600_lines():
    long = {
        p.name: n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 600
    }
    assert long == {}


def _package_data() -> set[Path]:
    """The files setup.cfg's ``package_data`` puts in the wheel beside the modules."""
    config = configparser.ConfigParser()
    config.read(PACKAGE.parent / "setup.cfg")
    patterns = config["options.package_data"]["climlatent"].split()
    return {path for pattern in patterns for path in PACKAGE.glob(pattern) if path.is_file()}


def _paths_from_module_file():
    """Each path a module builds from its own ``__file__``, evaluated as the module does."""
    for module in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(module.read_text())
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Name) and node.id == "__file__"):
                continue
            while isinstance(parents[node], (ast.Call, ast.Attribute, ast.Subscript, ast.BinOp)):
                node = parents[node]
            code = compile(ast.Expression(node), str(module), "eval")
            yield module, eval(code, {"Path": Path, "__file__": str(module)})


@pytest.mark.parametrize("module, path", list(_paths_from_module_file()), ids=lambda p: p.name)
def test_files_the_package_reads_beside_its_modules_ship_in_the_wheel(module, path):
    assert path.is_relative_to(PACKAGE), f"{module.name} reads {path}, outside the package"
    files = {p for p in path.rglob("*") if p.is_file()} if path.is_dir() else {path}
    assert files and files <= _package_data()


def test_every_data_file_of_the_package_ships_and_its_type_hints_are_marked():
    data = {
        p
        for p in PACKAGE.rglob("*")
        if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts
    }
    assert PACKAGE / "py.typed" in data  # PEP 561: mypy reads the hints of an installed wheel
    assert data == _package_data()
