"""``import climlatent`` and ``climlatent --help`` load no heavy dependency."""

import subprocess
import sys

import pytest

#: Heavy, or of an extra that a base install lacks (zarr, distributed: ``[dask]``).
HEAVY = ("torch", "pyro", "matplotlib", "cartopy", "zarr", "distributed", "xsdba", "ipywidgets")


def _output_and_heavy_modules(code: str) -> list[str]:
    """``code``'s output lines in a fresh interpreter, then the heavy modules it loaded."""
    probe = f"{code}\nimport sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return result.stdout.strip().splitlines()


def _heavy_modules_after(code: str) -> str:
    return _output_and_heavy_modules(code)[-1]


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


def test_info_loads_a_model_importing_only_its_estimator(tmp_path):
    import climlatent as cl

    model = str(tmp_path / "m.clm")
    ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=6, n_lon=8)
    cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=2).fit(ds, "pr", "psl").save(model)
    info = (
        f"import sys; sys.argv = ['climlatent', 'info', {model!r}]\n"
        "from climlatent.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    lines = _output_and_heavy_modules(info)
    assert lines[:2] == ["EOFRegression: psl -> pr", "  target_transform = 'none'"]
    assert "torch" not in lines[-1]


def test_estimator_names_resolve_lazily_and_registry_lists_them_all():
    code = "import climlatent.estimators as e; e.EOFRegression; print(sorted(e.REGISTRY))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "['EOFRegression', 'Estimator']"
    import climlatent.estimators as estimators

    assert set(estimators.MODULES) <= set(estimators.registry())
    assert set(estimators.__all__) <= set(dir(estimators))
    with pytest.raises(AttributeError, match="no attribute 'GAN'"):
        estimators.GAN  # noqa: B018


def test_probing_the_batch_size_does_not_import_torch_dynamo():
    # torch imports torch._dynamo (about 1 s) at the first call of a dispatch mode's
    # __torch_dispatch__ unless the mode opts out, as the batch-size probe does.
    code = (
        "import sys\nimport numpy as np, torch\n"
        "from climlatent.estimators._torch import inference\n"
        "rows = inference(torch.nn.Linear(3, 2), np.ones((40, 3), np.float32),"
        " device=torch.device('cpu'))\n"
        "print(rows.shape, 'torch._dynamo' in sys.modules)"
    )
    assert _output_and_heavy_modules(code)[0] == "(40, 2) False"
