"""The README's commands: CI runs the second verbatim, and every python block runs on its own."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BASH_BLOCKS = re.findall(r"^```bash\n(.*?)^```", README, flags=re.M | re.S)
PYTHON_BLOCKS = [
    (README.count("\n", 0, match.start()) + 2, match.group(1))
    for match in re.finditer(r"^```python\n(.*?)^```", README, flags=re.M | re.S)
]
WARNING = re.compile(r"\b\w*Warning: ")


def test_ci_runs_the_readmes_second_command_verbatim():
    command = BASH_BLOCKS[1].strip()
    assert command.startswith(". scripts/venv && pip install")
    assert command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_readme_python_blocks_are_found():
    assert len(PYTHON_BLOCKS) >= 5
    assert PYTHON_BLOCKS[0][1].startswith("import climlatent as cl\n")
    assert README.splitlines()[PYTHON_BLOCKS[0][0] - 1] == "import climlatent as cl"


@pytest.mark.slow
@pytest.mark.parametrize(
    "code", [code for _, code in PYTHON_BLOCKS], ids=[f"line{line}" for line, _ in PYTHON_BLOCKS]
)
def test_readme_python_block_runs_on_its_own(code, tmp_path):
    """Each block as written, alone in a fresh interpreter and an empty directory, one thread.

    Python's default warning filters apply, as for a user: any warning shown fails the test.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONWARNINGS", None)
    command = [sys.executable, "-c", code]
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert not WARNING.search(result.stderr), result.stderr[-3000:]
