"""``import climlatent`` and ``climlatent --help`` load no heavy dependency."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "pyro", "matplotlib", "cartopy")


def _heavy_modules_after(code: str) -> str:
    probe = f"{code}; import sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return result.stdout.strip().splitlines()[-1]


def test_import_climlatent_loads_no_heavy_dependency():
    assert _heavy_modules_after("import climlatent") == "[]"


def test_cli_help_loads_no_heavy_dependency():
    code = (
        "import sys; sys.argv = ['climlatent', '--help']\n"
        "from climlatent.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert _heavy_modules_after(code) == "[]"


@pytest.mark.parametrize("name", ["datasets", "io", "metrics", "transforms", "Regridder"])
def test_data_side_names_load_no_torch(name):
    assert "torch" not in _heavy_modules_after(f"import climlatent as cl; cl.{name}")


def test_lazy_names_resolve_and_are_listed():
    import climlatent as cl

    assert set(cl.__all__) <= set(dir(cl))
    assert "plot" in dir(cl)
    for name in cl.__all__:
        assert getattr(cl, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cl.nope  # noqa: B018


def test_load_registers_every_estimator(tmp_path):
    code = (
        "import climlatent as cl\n"
        "ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=6, n_lon=8)\n"
        f"cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=2).fit(ds, 'pr', 'psl').save("
        f"{str(tmp_path / 'm.clm')!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    model = str(tmp_path / "m.clm")
    load = f"from climlatent.persistence import load; print(type(load({model!r})).__name__)"
    result = subprocess.run(
        [sys.executable, "-c", load], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "EOFRegression"
