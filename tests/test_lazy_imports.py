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


def test_load_and_info_import_only_the_models_estimator(tmp_path):
    model = str(tmp_path / "m.clm")
    code = (
        "import climlatent as cl\n"
        "ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=6, n_lon=8)\n"
        f"cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=2).fit(ds, 'pr', 'psl').save({model!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    load = f"from climlatent.persistence import load; print(type(load({model!r})).__name__)"
    assert "torch" not in _heavy_modules_after(load)
    result = subprocess.run(
        [sys.executable, "-c", load], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "EOFRegression"
    info = (
        f"import sys; sys.argv = ['climlatent', 'info', {model!r}]\n"
        "from climlatent.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert "torch" not in _heavy_modules_after(info)
    result = subprocess.run(
        [sys.executable, "-m", "climlatent", "info", model], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("EOFRegression: psl -> pr\n")


def test_estimator_names_resolve_lazily_and_registry_lists_them_all():
    code = "import climlatent.estimators as e; e.EOFRegression; print(sorted(e.REGISTRY))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "['EOFRegression', 'Estimator']"
    import climlatent.estimators as estimators

    assert set(estimators.MODULES) <= set(estimators.registry())
    assert set(estimators.__all__) <= set(dir(estimators))
    with pytest.raises(AttributeError, match="no attribute 'GAN'"):
        estimators.GAN  # noqa: B018
