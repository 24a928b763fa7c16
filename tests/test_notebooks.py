"""Every notebook in notebooks/ runs top to bottom (outputs are stripped in git), and
shows no warning: none from climlatent, none from its dependencies' setup (tqdm's
``IProgress not found`` without ipywidgets, for one)."""

import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
RUNTIMES: dict[str, float] = {}
WARNING = re.compile(r"\b\w*Warning\b")
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        f"{path.name} is committed with outputs; strip them"
    )
    started = time.perf_counter()
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    RUNTIMES[path.stem] = time.perf_counter() - started
    warnings = [
        (index, output.text)
        for index, cell in enumerate(notebook.cells)
        for output in cell.get("outputs", [])
        if output.output_type == "stream" and WARNING.search(output.text)
    ]
    assert not warnings, f"{path.name} shows warnings (cell index, text): {warnings}"
    print(f"{path.name}: {RUNTIMES[path.stem]:.1f} s (all so far: {sum(RUNTIMES.values()):.1f} s)")
