"""CI runs the README's second command verbatim."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BASH_BLOCKS = re.findall(r"^```bash\n(.*?)^```", README, flags=re.M | re.S)


def test_ci_runs_the_readmes_second_command_verbatim():
    command = BASH_BLOCKS[1].strip()
    assert command.startswith(". scripts/venv && pip install")
    assert command in (ROOT / ".ci" / "run").read_text().splitlines()
