"""The README's commands: CI runs the second verbatim, and every python block runs on its own."""

import configparser
import importlib
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import climlatent as cl
from climlatent.fit_config import ESTIMATORS, load_fit_config

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


def requirements(lines: list[str]) -> dict[str, str]:
    """Package name (lower case, ``-`` for ``_``) -> its version specifier, pip's or conda's.

    The extra ``distributed`` of dask installs the package ``distributed`` too.
    """
    out = {}
    for line in lines:
        name, extras, spec = re.fullmatch(r"([\w.-]+)(\[[\w,]+\])?\s*(.*)", line).groups()
        out[name.lower().replace("_", "-")] = re.sub(r"^=(?!=)", "==", spec)  # conda's =1.2
        if "distributed" in (extras or ""):
            out.setdefault("distributed", "")
    return out


def test_the_conda_environment_installs_what_pip_would_at_the_same_pins():
    """environment.yml holds setup.cfg's requirements, its ``all`` and ``test`` extras at
    the same pins: pyyaml (imported by the catalog and ``climlatent fit``), ipywidgets,
    xsdba and five test requirements (nbclient, compliance-checker, ...) were missing."""
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    extras = setup["options.extras_require"]
    pip = requirements(
        "\n".join([setup["options"]["install_requires"], extras["all"], extras["test"]]).split()
    )
    pip["pytorch-cpu"] = pip.pop("torch")
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    conda = [d for d in environment if isinstance(d, str)]
    conda += [d for d in environment if isinstance(d, dict)][0]["pip"]
    conda = requirements([d for d in conda if not d.startswith("-e ")])
    assert {name: conda.get(name) for name in pip} == pip


def test_the_readme_fit_config_is_valid_and_names_every_estimator(tmp_path):
    """The README's config.yaml loads, and its comment lists the estimators the command
    takes (ProxyLatentDownscaler was left out)."""
    config = re.search(r"cat > config.yaml <<'EOF'\n(.*?)^EOF$", README, re.S | re.M).group(1)
    (tmp_path / "config.yaml").write_text(config)
    assert load_fit_config(tmp_path / "config.yaml").estimator == "LLAAE"
    listed = re.search(r"^estimator: \w+ +# (.*)$", config, re.M).group(1)
    assert listed.split(" | ") == list(ESTIMATORS)


def test_the_readme_names_every_estimator_that_resumes_from_a_checkpoint():
    """Every public estimator whose fit takes ``checkpoint`` is in the README's list of
    trained estimators (ProxyLatentDownscaler was not)."""
    listed = re.search(r"Every trained estimator \(([^)]*)\)\s+takes", README).group(1)
    classes = [getattr(cl, name) for name in cl.__all__]
    trained = {
        cls.__name__
        for cls in classes
        if hasattr(cls, "fit") and "checkpoint" in inspect.signature(cls.fit).parameters
    }
    assert set(re.findall(r"`(\w+)`", listed)) == trained


@pytest.mark.slow
def test_the_readme_regrid_commands_run_as_written(tmp_path):
    """The README's block of regrid commands, verbatim in an empty directory."""
    (block,) = [block for block in BASH_BLOCKS if "climlatent regrid tas_day.nc" in block]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    result = subprocess.run(
        ["bash", "-e", "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert {"tas_day.nc", "tas_2deg.nc", "tas_bilinear.nc"} <= set(os.listdir(tmp_path))


def resolve(dotted: str) -> object:
    """The object a dotted ``climlatent...`` name names: its longest module, then attributes."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:end]))
        except ModuleNotFoundError:
            continue
        for part in parts[end:]:
            obj = getattr(obj, part)
        return obj
    raise ModuleNotFoundError(dotted)


def test_every_climlatent_name_in_the_readme_resolves():
    """``cl.x.y``, ``climlatent.x.y`` and ``from climlatent.x import y`` as written."""
    names = re.findall(r"(?<![\w./])(?:cl|climlatent)((?:\.[A-Za-z_]\w*)+)", README)
    names = {f"climlatent{name}" for name in names if not name.endswith(".NAME")}
    for module, imported in re.findall(r"from (climlatent[\w.]*) import ([\w, ]+)", README):
        names |= {f"{module}.{name.strip()}" for name in imported.split(",")}
    assert len(names) > 50
    for name in sorted(names):
        resolve(name)  # raises naming it


def test_every_command_and_option_the_readme_shows_exists():
    """``climlatent CMD ... --option`` in the README's code: CMD is a command taking each
    option written after it; a benchmark or study it runs is one the command lists."""
    from climlatent.cli import _runnable_names, main

    code = "\n".join(re.findall(r"^```\w*\n(.*?)^```", README, re.M | re.S))
    code += "\n" + "\n".join(re.findall(r"`([^`\n]+)`", README))
    runnable = {
        "bench": _runnable_names("climlatent.benchmarks"),
        "study": _runnable_names("climlatent.studies"),
    }
    shown = re.findall(r"(?<![\w.-])climlatent (?!as\b)(\w+)([^#\n]*)", code)
    assert len(shown) > 20
    for command, rest in shown:
        assert command in main.commands, command
        words = rest.split()
        if command in runnable and words and re.fullmatch(r"[a-z_]+", words[0]):
            assert words[0] in runnable[command], (command, words[0])
            continue  # the named module's own options
        options = {o for p in main.commands[command].params for o in p.opts + p.secondary_opts}
        options |= {"--help", "--list"} if command in runnable else {"--help"}
        for word in words:
            option = re.match(r"--[\w-]+", word)
            assert option is None or option.group(0) in options, (command, word)
    for package, name in re.findall(
        r"python -m climlatent\.(benchmarks|studies)\.([a-z_]+)\b", code
    ):
        assert name in runnable["bench" if package == "benchmarks" else "study"], name
