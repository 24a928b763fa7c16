"""The layering of DESIGN.md, checked on the source: data flows one way."""

import ast
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
