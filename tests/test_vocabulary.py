"""One vocabulary for every estimator: each answers its kind's calls with the shared
keywords, the README's table lists them all, and the old spellings still give the new
spellings' results while warning with the call to write."""

import dataclasses
import inspect
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

import climlatent as cl
from climlatent import baselines, cca
from climlatent.errors import ClimlatentDeprecationWarning
from climlatent.estimators import registry
from climlatent.estimators.weather import weather_generator
from climlatent.reference.burgers import generate

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
QUIET = {"progress": False, "device": "cpu", "epochs": 1}
IMAGE = {"n_scales": 2, "base_channels": 4, "layers": 1, "growth": 2}


def circulation() -> xr.Dataset:
    ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=8, n_lon=12)
    return ds.isel(time=slice(0, 48))


def biogeochem() -> tuple[xr.Dataset, xr.Dataset]:
    world = cl.datasets.synthetic_biogeochem(n_years=2, n_fine_lat=16, n_fine_lon=16)
    return world.coarse, world.fine


def fields(n: int = 48, seed: int = 0) -> xr.Dataset:
    """A permeability ``k`` and a pressure ``p = 2k + 1`` in other units."""
    a = np.random.default_rng(seed).normal(size=(n, 4, 5))
    return xr.Dataset(
        {
            "k": (("sample", "y", "x"), a, {"units": "1"}),
            "p": (("sample", "y", "x"), 2 * a + 1, {"units": "m"}),
        }
    )


def burgers() -> xr.Dataset:
    return generate(8, nx=16, nt=3, seed=0)


def emulated(est, ds, *args) -> xr.Dataset:
    return est.emulate(ds, *args)


def downscaled(est, data) -> xr.Dataset:
    return est.downscale(data[0])


def generated(est, ds) -> xr.Dataset:
    sampled = est.sample(2)
    assert sampled.sizes["realization"] == 2
    return est.reconstruct(ds)


@dataclasses.dataclass(frozen=True)
class Case:
    """An estimator, its kind, data, fit and apply calls spelled with the shared keywords."""

    kind: str
    make: Callable
    data: Callable
    fit: Callable  # fit(estimator, data) -> estimator
    apply: Callable  # apply(fitted, data) -> xr.Dataset holding the target
    target: str
    proxy: str | None = None  # an emulator's input


CASES = {
    "EOFRegression": Case(
        "emulator",
        lambda: cl.EOFRegression(n_proxy_eofs=3, n_target_eofs=3),
        circulation,
        lambda est, ds: est.fit(ds, target="pr", proxy="psl"),
        emulated,
        "pr",
        "psl",
    ),
    "LLAAE": Case(
        "emulator",
        lambda: cl.LLAAE(latent_dim=2, filters=(4,), n_proxy_eofs=3, **QUIET),
        circulation,
        lambda est, ds: est.fit(ds, target="pr", proxy="psl"),
        emulated,
        "pr",
        "psl",
    ),
    "ProxyDownscaler": Case(
        "downscaler",
        lambda: cl.ProxyDownscaler(**QUIET),
        biogeochem,
        lambda est, data: est.fit(*data, target="chl", proxies={"tos": "exponential"}),
        downscaled,
        "chl",
    ),
    "ProxyLatentDownscaler": Case(
        "downscaler",
        lambda: cl.ProxyLatentDownscaler(channels=2, hidden=4, **QUIET),
        biogeochem,
        lambda est, data: est.fit(*data, target="chl", proxies={"tos": "exponential"}),
        downscaled,
        "chl",
    ),
    "BilinearBaseline": Case(
        "downscaler",
        baselines.BilinearBaseline,
        biogeochem,
        lambda est, data: est.fit(coarse=data[0], fine=data[1], target="chl"),
        downscaled,
        "chl",
    ),
    "ClimatologyCorrectedBilinear": Case(
        "downscaler",
        baselines.ClimatologyCorrectedBilinear,
        biogeochem,
        lambda est, data: est.fit(coarse=data[0], fine=data[1], target="chl"),
        downscaled,
        "chl",
    ),
    "VED": Case(
        "emulator",
        lambda: cl.VED(latent_dim=2, hidden=8, **QUIET),
        fields,
        lambda est, ds: est.fit(ds, target="p", proxy="k"),
        emulated,
        "p",
        "k",
    ),
    "VAEDLM": Case(
        "emulator",
        lambda: cl.VAEDLM(intrinsic_dim=2, extrinsic_dim=3, hidden=8, geometry_hidden=4, **QUIET),
        burgers,
        lambda est, ds: est.fit(ds, target="u"),
        lambda est, ds: est.emulate(ds, times=ds["t"].values),
        "u",
        "u",
    ),
    "VAE": Case(
        "generative",
        lambda: cl.VAE(latent_dim=2, **IMAGE, **QUIET),
        circulation,
        lambda est, ds: est.fit(ds, target="psl"),
        generated,
        "psl",
    ),
    "AuxVAE": Case(
        "generative",
        lambda: cl.AuxVAE(latent_dim=4, **IMAGE, **QUIET),
        circulation,
        lambda est, ds: est.fit(ds, target="psl", auxiliary=["circulation_factor"]),
        generated,
        "psl",
    ),
}
CALLS = {"emulator": "emulate", "downscaler": "downscale", "generative": "sample"}


def public_estimators() -> set[str]:
    """The package's estimator classes: the registry's public ones, the baselines', CCA."""
    built_in = {
        name
        for name, cls in registry().items()
        if cls.__module__.startswith("climlatent.estimators.")
        and cls.__module__ != "climlatent.estimators.base"
    }  # fmt: skip
    others = {
        name
        for module in (baselines, cca)
        for name, cls in vars(module).items()
        if inspect.isclass(cls) and cls.__module__ == module.__name__ and hasattr(cls, "fit")
    }
    return built_in | others


def readme_table() -> dict[str, tuple[str, str, str]]:
    """Estimator -> (kind, fit, then), from the README's vocabulary table."""
    row = r"^\| `cl\.(?:baselines\.)?(\w+)` \| (.*?) \| (.*?) \| (.*?) \|$"
    rows = re.findall(row, README, re.M)
    return {name: (kind, fit, then) for name, kind, fit, then in rows}


def test_every_estimator_has_a_case_and_a_readme_row():
    assert set(CASES) | {"CCARegression"} == public_estimators()
    assert set(readme_table()) == public_estimators()


def documented_parameters(cls: type) -> set[str]:
    """The names of the numpydoc Parameters sections of ``cls`` and its climlatent bases."""
    names = set()
    for klass in cls.__mro__:
        doc = inspect.cleandoc(vars(klass).get("__doc__") or "")
        section = re.search(r"^Parameters\n-+\n(.*?)(?:\n\n\w[\w ]*\n-+\n|\Z)", doc, re.S | re.M)
        if klass.__module__.startswith("climlatent") and section:
            for line in section.group(1).splitlines():  # a name line: not indented
                if line and not line[0].isspace() and not line.startswith("**"):
                    names |= {name.strip() for name in line.split(" :")[0].split(",")} - {""}
    return names


@pytest.mark.parametrize("name", sorted(public_estimators()))
def test_every_configuration_keyword_is_documented(name):
    """The class docstring's Parameters are the constructor's: no option undocumented
    (``range_tolerance`` of EOFRegression, LLAAE and ProxyDownscaler was) or stale."""
    cls = getattr(cl, name, None) or getattr(baselines, name)
    keywords = {
        p.name for p in inspect.signature(cls).parameters.values() if p.kind != p.VAR_KEYWORD
    }
    assert documented_parameters(cls) == keywords


@pytest.mark.parametrize("name", list(CASES) + ["CCARegression"])
def test_the_readme_row_names_the_kind_and_calls(name):
    kind, fit, then = readme_table()[name]
    expected = CASES[name].kind if name in CASES else "emulator"
    assert kind.startswith(expected) or f"and {expected}" in kind
    assert fit.startswith("`fit(") and f"`{CALLS[expected]}(" in then


@pytest.mark.parametrize("name", list(CASES))
def test_each_estimator_answers_its_kinds_calls_with_the_shared_keywords(name):
    case = CASES[name]
    data = case.data()
    est = case.fit(case.make(), data)
    assert hasattr(est, CALLS[case.kind])
    out = case.apply(est, data)
    assert isinstance(out, xr.Dataset) and case.target in out.data_vars
    fine = data[1] if case.kind == "downscaler" else data
    sample_dims = [d for d in fine[case.target].dims if d not in ("lat", "lon", "y", "x")]
    for dim in sample_dims:
        assert out.sizes[dim] == fine.sizes[dim], dim
    if case.kind == "downscaler":
        assert out[case.target].sizes == fine[case.target].sizes
    if case.kind == "emulator":  # the shared check_range of the proxy
        far = data.assign({case.proxy: data[case.proxy] * 1e6})
        with pytest.raises(cl.errors.InputDataError, match="outside"):
            est.emulate(far)
        assert case.target in est.emulate(far, check_range=False).data_vars


def test_cca_is_an_emulator_on_sample_matrices():
    x = np.random.default_rng(2).normal(size=(60, 4))
    y = x[:, :2] @ np.array([[1.0, 2.0], [0.5, -1.0]])
    model = cl.CCARegression(n_components=2, regularisation=0.0).fit(x, y)
    np.testing.assert_allclose(model.emulate(x), y, atol=1e-10)


PRIOR, CONDITIONAL = "prior draw", "draw of the conditional distribution"
DRAWN = {  # every call whose output holds random draws -> its case, options, call, draws
    "ProxyDownscaler.downscale": (
        "ProxyDownscaler", {"noise": True},
        lambda est, data: est.downscale(data[0], n_samples=3), CONDITIONAL,
    ),
    "ProxyLatentDownscaler.downscale": (
        "ProxyLatentDownscaler", {}, lambda est, data: est.downscale(data[0], n_samples=3),
        CONDITIONAL,
    ),
    "VED.sample": ("VED", {}, lambda est, ds: est.sample(ds, n_samples=3), CONDITIONAL),
    "VAEDLM.sample": ("VAEDLM", {}, lambda est, ds: est.sample(3), PRIOR),
    "VAE.sample": ("VAE", {}, lambda est, ds: est.sample(3), PRIOR),
    "AuxVAE.sample": ("AuxVAE", {}, lambda est, ds: est.sample(3), PRIOR),
    "AuxVAE.residual_tail_samples": (
        "AuxVAE", {}, lambda est, ds: est.residual_tail_samples(ds.isel(time=[0]), 3),
        "draw of the prior's residual tail",
    ),
    "LLAAE.sample": ("LLAAE", {}, lambda est, ds: est.sample(3), PRIOR),
    "weather_generator": (
        "EOFRegression", {}, lambda est, ds: weather_generator(est, ds, n_realizations=3),
        "realisation of the weather generator",
    ),
}  # fmt: skip


@pytest.mark.parametrize("call", DRAWN)
def test_every_output_of_draws_holds_them_along_cf_realization(call):
    """One draw dim for all: VAE, AuxVAE and LLAAE drew along 'sample' (no coordinate,
    or long_name 'prior draw' alone), the others along 'realization' without CF's
    standard_name (the weather generator's with no attributes at all)."""
    name, options, draw, long_name = DRAWN[call]
    case = CASES[name]
    data = case.data()
    out = draw(case.fit(case.make().set_params(**options), data), data)
    assert out[case.target].dims[0] == "realization" and out.sizes["realization"] == 3
    inputs = data[0] if isinstance(data, tuple) else data
    assert "sample" not in out.dims or "sample" in inputs.dims  # only the inputs' own
    coord = out["realization"]
    assert coord.dtype.kind == "i" and coord.values.tolist() == [0, 1, 2]
    assert coord.attrs == {"standard_name": "realization", "long_name": long_name, "units": "1"}


# -- scikit-learn's parameter protocol: get_params, set_params, clone -------------------


def estimator_class(name: str) -> type:
    return getattr(cl, name, None) or getattr(baselines, name)


def sample_matrices() -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(2).normal(size=(60, 4))
    return x, x[:, :2] @ np.array([[1.0, 2.0], [0.5, -1.0]])


def fitted_and_output(name: str, est=None):
    """The estimator of ``CASES[name]`` (or ``est``) fitted, and its kind's output."""
    if name == "CCARegression":
        x, y = sample_matrices()
        est = (est or cl.CCARegression(n_components=2)).fit(x, y)
        return est, est.emulate(x)
    case = CASES[name]
    data = case.data()
    est = case.fit(est or case.make(), data)
    return est, case.apply(est, data)


def is_unfitted(est) -> bool:
    """No fitted attribute (a public name ending in ``_``), scikit-learn's test."""
    return not [k for k in vars(est) if k.endswith("_") and not k.startswith("_")]


@pytest.mark.parametrize("name", sorted(public_estimators()))
def test_the_parameters_are_the_constructors_arguments_stored_under_their_names(name):
    cls = estimator_class(name)
    est = cls()
    keywords = list(inspect.signature(cls).parameters)
    assert list(est.get_params()) == keywords
    assert all(est.get_params()[k] is getattr(est, k) for k in keywords)
    rebuilt = cls(**est.get_params(deep=False))
    assert rebuilt.get_params() == est.get_params() and is_unfitted(rebuilt)


@pytest.mark.parametrize("name", sorted(public_estimators()))
def test_set_params_refuses_what_the_constructor_refuses_naming_the_parameter(name):
    """Each parameter set to NaN (every constructor refuses it, naming the parameter):
    set_params raises the constructor's error and changes nothing."""
    cls = estimator_class(name)
    est = cls()
    before = est.get_params()
    for key in before:
        with pytest.raises(Exception) as constructor:
            cls(**{key: float("nan")})
        assert key in str(constructor.value)
        with pytest.raises(type(constructor.value), match=re.escape(str(constructor.value))):
            est.set_params(**{key: float("nan")})
        assert est.get_params() == before
    with pytest.raises(ValueError, match=f"invalid parameter 'nope' for {name}") as unknown:
        est.set_params(nope=1)
    assert str(unknown.value).endswith("valid parameters are " + ", ".join(before))


CHANGED = {  # -> the repr of the constructor's estimator: filters a tuple, group a str
    "LLAAE": ({"filters": [8, 16], "latent_dim": 3}, "LLAAE(latent_dim=3, filters=(8, 16))"),
    "ProxyDownscaler": (
        {"group": "time.dayofyear:31"},
        "ProxyDownscaler(group='time.dayofyear:31')",
    ),
    "EOFRegression": ({"ridge": 0.5}, "EOFRegression(ridge=0.5)"),
    "CCARegression": (
        {"regularisation": (0.1, 0.2)},
        "CCARegression(n_components=2, regularisation=(0.1, 0.2))",
    ),
}


@pytest.mark.parametrize("name", CHANGED)
def test_set_params_gives_the_constructors_estimator(name):
    params, expected = CHANGED[name]
    est = estimator_class(name)().set_params(**params)
    assert repr(est) == expected
    assert est.get_params() == estimator_class(name)(**params).get_params()


@pytest.mark.parametrize("name", sorted(public_estimators()))
def test_a_clone_is_unfitted_with_equal_params_and_refits_bit_for_bit(name):
    """``sklearn.base.clone`` of a fitted estimator: unfitted, the same parameters, and
    fitted on the same data (the same seed) it gives the same numbers to the bit."""
    clone = pytest.importorskip("sklearn.base").clone
    est, out = fitted_and_output(name)
    copy = clone(est)
    assert type(copy) is type(est) and copy is not est
    assert copy.get_params() == est.get_params() and is_unfitted(copy)
    assert not is_unfitted(est)  # the original keeps its fit
    _, copy_out = fitted_and_output(name, copy)
    assert_same_output(out, copy_out)


@pytest.mark.parametrize("name", sorted(public_estimators()))
def test_every_estimator_used_before_fit_names_its_class_and_the_call(name):
    """The baselines raised InputDataError (still caught as one), CCA a RuntimeError,
    the others a NotFittedError saying "call fit() first" without the call."""
    if name == "CCARegression":
        call, apply = "emulate", lambda: cl.CCARegression().emulate(sample_matrices()[0])
    else:
        case = CASES[name]
        call = CALLS[case.kind]
        apply = lambda: case.apply(case.make(), case.data())  # noqa: E731
    expected = re.escape(f"{name} is not fitted: call fit() before {call}()")
    with pytest.raises(cl.errors.NotFittedError, match=f"^{expected}$") as refused:
        apply()
    if name in ("BilinearBaseline", "ClimatologyCorrectedBilinear"):
        assert isinstance(refused.value, cl.errors.InputDataError)


# -- a fit is of the parameters it was made with --------------------------------------


SHAPING = {  # a parameter that shapes the fit -> another valid value
    "EOFRegression": ("n_target_eofs", 2),
    "LLAAE": ("latent_dim", 3),
    "ProxyDownscaler": ("group", "time.season"),
    "ProxyLatentDownscaler": ("hidden", 8),
    "ClimatologyCorrectedBilinear": ("kind", "multiplicative"),
    "VED": ("latent_dim", 3),
    "VAEDLM": ("intrinsic_dim", 3),
    "VAE": ("latent_dim", 3),
    "AuxVAE": ("tau", 0.2),
    "CCARegression": ("regularisation", (0.1, 0.2)),
}


def applied(name: str, est):
    """``est``'s output of the kind's call on its case's data (the same data each time)."""
    if name == "CCARegression":
        return est.emulate(sample_matrices()[0])
    return CASES[name].apply(est, CASES[name].data())


def assert_same_output(out, again) -> None:
    if isinstance(out, np.ndarray):
        np.testing.assert_array_equal(again, out)
        return
    assert list(again.data_vars) == list(out.data_vars)
    for variable in out.data_vars:
        np.testing.assert_array_equal(again[variable].values, out[variable].values)


def test_every_estimator_but_the_parameterless_has_a_shaping_parameter():
    assert set(SHAPING) == public_estimators() - {"BilinearBaseline"}
    assert not cl.baselines.BilinearBaseline().get_params()


@pytest.mark.parametrize("name", sorted(SHAPING))
def test_a_parameter_shaping_the_fit_changed_after_it_is_refused_until_set_back(name, tmp_path):
    """A 3-EOF fit saved, or used, as a 2-EOF model: refused naming the parameter, its
    fitted and current values; set back (or refitted), the same numbers to the bit."""
    est, out = fitted_and_output(name)
    key, value = SHAPING[name]
    fitted = est.get_params()[key]
    call = "emulate" if name == "CCARegression" else CALLS[CASES[name].kind]
    message = (
        f"{name} was fitted with {key}={fitted!r}, now {key}={value!r}: refit it, or set it "
        f"back with set_params({key}={fitted!r}), before "
    )
    for change in (lambda: est.set_params(**{key: value}), lambda: setattr(est, key, value)):
        change()
        with pytest.raises(cl.errors.StaleFitError, match=re.escape(message + call)) as refused:
            applied(name, est)
        assert isinstance(refused.value, cl.errors.NotFittedError)  # caught as one
        if hasattr(est, "save"):
            with pytest.raises(cl.errors.StaleFitError, match=re.escape(message + "save")):
                est.save(tmp_path / "m.clm")
            assert not (tmp_path / "m.clm").exists()
        est.set_params(**{key: fitted})
        assert_same_output(out, applied(name, est))
    refitted = fitted_and_output(name, est.set_params(**{key: value}))[0]
    applied(name, refitted)  # a refit is of the new value


@pytest.mark.parametrize("name", sorted(set(CASES) - set(vars(baselines))))
def test_a_parameter_read_only_where_the_fit_is_used_changes_freely(name):
    """``progress`` and ``range_tolerance`` (read by the range check) do not shape a
    fit: changed, the fit is used with the same numbers, the new tolerance applied."""
    est, out = fitted_and_output(name)
    runtime = est._runtime_params & set(est.get_params())
    changes = {"range_tolerance": 1e12, "progress": True, "device": "cpu", "checkpoint_path": None}
    assert runtime and est.set_params(**{k: changes[k] for k in runtime}) is est
    assert_same_output(out, applied(name, est))
    case = CASES[name]
    if case.kind == "emulator":  # refused at the default tolerance (the test above)
        far = case.data().assign({case.proxy: case.data()[case.proxy] * 1e6})
        assert case.target in est.emulate(far).data_vars


@pytest.mark.parametrize("name", sorted(set(CASES) - set(vars(baselines))))
def test_a_loaded_model_is_of_its_saved_parameters(name, tmp_path):
    """Loading records the saved configuration as the fit's: not refused, the same
    numbers; a change of a shaping parameter is refused on the loaded model too."""
    est, out = fitted_and_output(name)
    est.set_params(progress=True) if "progress" in est.get_params() else None
    est.save(tmp_path / "m.clm")
    loaded = cl.load(tmp_path / "m.clm")
    assert loaded.get_params() == est.get_params()
    assert_same_output(out, applied(name, loaded))
    key, value = SHAPING[name]
    with pytest.raises(cl.errors.StaleFitError, match=f"with {key}="):
        applied(name, loaded.set_params(**{key: value}))


# -- the old spellings: same results, a warning with the new spelling -------------------


def deprecated(call: Callable, new_spelling: str):
    """Call ``call``; return its result after checking its one deprecation warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    assert [w.category for w in caught] == [ClimlatentDeprecationWarning]
    assert issubclass(ClimlatentDeprecationWarning, DeprecationWarning)
    message = str(caught[0].message)
    assert "deprecated" in message and message.endswith(f"write {new_spelling}"), message
    assert caught[0].filename == __file__  # pointed at the user's line
    return result


def same_weights(a, b) -> bool:
    state_a, state_b = a.module_.state_dict(), b.module_.state_dict()
    same = all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    return list(state_a) == list(state_b) and same


@pytest.fixture(scope="module")
def ved_new():
    return CASES["VED"].make().fit(fields(), target="p", proxy="k")


def test_ved_positional_old_order_is_read_as_inputs_then_outputs(ved_new):
    ds = fields()
    old = deprecated(
        lambda: CASES["VED"].make().fit(ds, "k", "p"), "VED.fit(ds, target='p', proxy='k')"
    )
    assert (old.inputs_, old.outputs_) == (["k"], ["p"])  # not swapped
    assert same_weights(old, ved_new)
    out = old.emulate(ds)
    assert list(out.data_vars) == ["p"] and out["p"].attrs["units"] == "m"
    assert out.equals(ved_new.emulate(ds))
    mixed = deprecated(
        lambda: CASES["VED"].make().fit(ds, "k", target="p"), "VED.fit(ds, target='p', proxy='k')"
    )
    assert same_weights(mixed, ved_new)


def test_ved_old_keywords_and_predict(ved_new):
    ds = fields()
    old = deprecated(
        lambda: CASES["VED"].make().fit(ds, inputs="k", outputs=["p"]),
        "VED.fit(ds, target=['p'], proxy='k')",
    )
    assert same_weights(old, ved_new)
    test = fields(8, seed=1)
    predicted = deprecated(lambda: ved_new.predict(test), "VED.emulate()")
    assert predicted.equals(ved_new.emulate(test))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda est, ds: est.fit(ds, "k", proxy="k"), "got 'proxy' twice"),
        (lambda est, ds: est.fit(ds, "k", inputs="k"), "got 'proxy' twice"),
        (lambda est, ds: est.fit(ds, "k"), "missing the argument.*'target'"),
        (lambda est, ds: est.fit(ds, target="p"), "missing the argument.*'proxy'"),
        (lambda est, ds: est.fit(ds, "k", "p", "q"), "at most 2 positional"),
        (lambda est, ds: est.fit(ds, target="p", proxy="k", input="k"), "unexpected keyword"),
    ],
)
def test_ved_refuses_ambiguous_calls(call, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimlatentDeprecationWarning)
        with pytest.raises(TypeError, match=message):
            call(CASES["VED"].make(), fields())


def test_vaedlm_old_spellings():
    ds = burgers()
    case = CASES["VAEDLM"]
    new = case.fit(case.make(), ds)
    old = deprecated(lambda: case.make().fit(ds, variable="u"), "VAEDLM.fit(ds, target='u')")
    assert same_weights(old, new) and same_weights(case.make().fit(ds), new)
    predicted = deprecated(lambda: new.predict(ds, [0.0, 0.5]), "VAEDLM.emulate()")
    assert predicted.equals(new.emulate(ds, [0.0, 0.5]))
    drawn = deprecated(lambda: new.sample(n_samples=3, seed=1), "VAEDLM.sample(n=3)")
    assert drawn.equals(new.sample(3, seed=1))  # sample(n) as VAE, AuxVAE and LLAAE
    with pytest.raises(TypeError, match="got 'n' twice"):
        new.sample(3, n_samples=3)


@pytest.mark.parametrize("name", ["VAE", "AuxVAE"])
def test_generative_variables_keyword(name):
    ds = circulation()
    case = CASES[name]
    extra = {"auxiliary": ["circulation_factor"]} if name == "AuxVAE" else {}
    old = deprecated(
        lambda: case.make().fit(ds, variables="psl", **extra),
        f"{name}.fit(ds, target='psl')",
    )
    new = case.fit(case.make(), ds)
    assert same_weights(old, new)
    assert old.sample(3, seed=1).equals(new.sample(3, seed=1))
    with pytest.raises(TypeError, match="missing the argument.*'target'"):
        case.make().fit(ds, **extra)


def test_cca_predict():
    x = np.random.default_rng(3).normal(size=(40, 3))
    model = cl.CCARegression(n_components=2).fit(x, x[:, :2] + 1)
    old = deprecated(lambda: model.predict(x, 1), "CCARegression.emulate()")
    np.testing.assert_array_equal(old, model.emulate(x, 1))


# -- a field-to-field estimator as a downscaler -------------------------------------------


def one_dataset(coarse: xr.Dataset, fine: xr.Dataset) -> xr.Dataset:
    """The coarse ``chl`` as ``chl_coarse`` on renamed dims, beside the fine ``chl``."""
    renamed = coarse[["chl"]].rename(chl="chl_coarse", lat="clat", lon="clon")
    return xr.merge([fine[["chl"]], renamed])


def without_bounds(ds: xr.Dataset) -> xr.Dataset:
    ds = ds.drop_vars(["lat_bnds", "lon_bnds"])
    for name in ("lat", "lon"):
        ds[name].attrs.pop("bounds", None)
    return ds


@pytest.mark.parametrize(
    "make",
    [
        lambda: cl.EOFRegression(n_proxy_eofs=4, n_target_eofs=6),
        lambda: cl.LLAAE(latent_dim=3, filters=(4,), n_proxy_eofs=4, **{**QUIET, "epochs": 2}),
    ],
    ids=["EOFRegression", "LLAAE"],
)
def test_downscale_is_the_fine_grid_emulation_of_the_same_model(make, tmp_path):
    """``fit(coarse, fine, target)`` + ``downscale(coarse)`` equals the emulator form
    fitted on one Dataset holding both grids (coarse dims renamed), bit for bit, and
    a saved downscaler loads to the same numbers."""
    coarse, fine = (without_bounds(ds) for ds in biogeochem())
    down = make().fit(coarse, fine, "chl")
    out = down.downscale(coarse)
    emulator = make().fit(one_dataset(coarse, fine), target="chl", proxy="chl_coarse")
    reference = emulator.emulate(one_dataset(coarse, fine))
    np.testing.assert_array_equal(out["chl"].values, reference["chl"].values)
    assert out["chl"].dims == fine["chl"].dims
    xr.testing.assert_equal(out["lat"], fine["lat"])
    attrs = {k: v for k, v in out["chl"].attrs.items() if k != "climlatent_clipped"}
    assert attrs == {k: fine["chl"].attrs[k] for k in attrs}  # and a record of chl < 0
    assert out.attrs["history"].endswith("downscale(coarse)")
    assert out["chl"].equals(down.emulate(coarse)["chl"])  # the same map
    down.save(tmp_path / "down.clm")
    assert cl.load(tmp_path / "down.clm").downscale(coarse).equals(out)


def test_downscaler_form_takes_a_named_proxy_and_refuses_laws():
    coarse, fine = biogeochem()
    est = cl.EOFRegression(n_proxy_eofs=4, n_target_eofs=4).fit(coarse, fine, "chl", proxies="tos")
    assert (est.proxy_, est.target_) == ("tos", "chl")
    assert est.downscale(coarse[["tos"]])["chl"].sizes == fine["chl"].sizes
    with pytest.raises(TypeError, match="ProxyDownscaler"):
        cl.EOFRegression().fit(coarse, fine, "chl", proxies={"tos": "exponential"})
    with pytest.raises(TypeError, match=r"fit\(ds, target, proxy\).*'proxy'"):
        cl.EOFRegression().fit(coarse, target="chl")
