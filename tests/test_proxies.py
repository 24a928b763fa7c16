import math

import pytest
import torch
from torch import nn

from climlatent.models.proxies import (
    PROXY_KINDS,
    ExponentialGrowth,
    Identity,
    Linear,
    Proxy,
    QuadraticGrowth,
    SaturatingLight,
    make_proxy,
)

TEMPERATURE = torch.tensor([[-1.8, 0.0, 10.0], [20.0, 25.0, 30.0]])  # degC
RADIATION = torch.tensor([[0.0, 12.0, 50.0], [150.0, 250.0, 350.0]])  # W m-2

CASES = [
    (ExponentialGrowth, {}, TEMPERATURE, lambda x: 0.59 * torch.exp(0.0633 * x)),
    (ExponentialGrowth, {"a": 0.8, "b": 0.05}, TEMPERATURE, lambda x: 0.8 * torch.exp(0.05 * x)),
    (QuadraticGrowth, {}, RADIATION, lambda x: 5e-3 * x - 2.5e-6 * x**2),
    (QuadraticGrowth, {"c": 6e-3, "d": -4e-6}, RADIATION, lambda x: 6e-3 * x - 4e-6 * x**2),
    (SaturatingLight, {}, RADIATION, lambda x: 1.5 * x / (150.0 + x)),
    (SaturatingLight, {"mu_max": 2.0, "k": 80.0}, RADIATION, lambda x: 2.0 * x / (80.0 + x)),
    (Linear, {}, TEMPERATURE, lambda x: x),
    (Linear, {"scale": -2.0, "offset": 0.5}, TEMPERATURE, lambda x: -2.0 * x + 0.5),
    (Identity, {}, RADIATION, lambda x: x),
]
IDS = [f"{cls.__name__}-{i}" for i, (cls, *_) in enumerate(CASES)]


@pytest.mark.parametrize(("cls", "options", "driver", "law"), CASES, ids=IDS)
def test_known_values_and_shape(cls, options, driver, law):
    out = cls(**options)(driver)
    assert out.shape == driver.shape
    torch.testing.assert_close(out, law(driver), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("cls", "options", "driver", "law"), CASES, ids=IDS)
def test_parameters_table_reports_initial_values_with_units(cls, options, driver, law):
    proxy = cls(**options)
    table = proxy.parameters_table()
    assert list(table) == list(cls.parameter_units)
    for name, (value, units) in table.items():
        assert isinstance(value, float) and units == cls.parameter_units[name]
        if name in options:
            assert value == pytest.approx(options[name], rel=1e-6)


def test_eppley_defaults_and_units():
    table = ExponentialGrowth().parameters_table()
    assert table["a"] == (pytest.approx(0.59), "d-1")
    assert table["b"] == (pytest.approx(0.0633), "degC-1")
    assert QuadraticGrowth().parameters_table()["c"][1] == "m2 W-1"
    assert QuadraticGrowth().parameters_table()["d"][1] == "m4 W-2"
    assert SaturatingLight().parameters_table()["k"][1] == "W m-2"


@pytest.mark.parametrize(
    ("cls", "units"),
    [
        (ExponentialGrowth, "degC"),
        (QuadraticGrowth, "W m-2"),
        (SaturatingLight, "W m-2"),
        (Linear, None),
        (Identity, None),
    ],
)
def test_expected_units(cls, units):
    assert cls.expected_units == units
    assert cls().expected_units == units
    assert issubclass(cls, Proxy)


@pytest.mark.parametrize(("cls", "options", "driver", "law"), CASES[:-1], ids=IDS[:-1])
def test_gradients_reach_every_parameter_and_the_driver(cls, options, driver, law):
    proxy = cls(**options)
    driver = driver.clone().requires_grad_(True)
    proxy(driver).square().sum().backward()
    assert driver.grad is not None and torch.isfinite(driver.grad).all()
    for name, parameter in proxy.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad) and parameter.grad != 0, name


def test_identity_has_no_parameters_and_keeps_the_graph():
    driver = torch.ones(2, 3, requires_grad=True)
    Identity()(driver).sum().backward()
    assert list(Identity().parameters()) == [] and Identity().parameters_table() == {}
    torch.testing.assert_close(driver.grad, torch.ones(2, 3))


def test_nan_cells_stay_nan_and_others_unaffected():
    driver = torch.tensor([[float("nan"), 10.0]])
    out = ExponentialGrowth()(driver)
    assert torch.isnan(out[0, 0]) and torch.isfinite(out[0, 1])


@pytest.mark.parametrize(
    ("cls", "name", "stored"),
    [
        (ExponentialGrowth, "a", "log_a"),
        (SaturatingLight, "mu_max", "log_mu_max"),
        (SaturatingLight, "k", "log_k"),
    ],
)
def test_positive_parameters_stay_positive(cls, name, stored):
    proxy = cls()
    optimizer = torch.optim.Adam(proxy.parameters(), lr=0.5)
    initial = getattr(proxy, name).item()
    for _ in range(100):  # pull the parameter towards -1, out of its domain
        optimizer.zero_grad()
        (getattr(proxy, name) + 1.0).square().backward()
        optimizer.step()
    assert getattr(proxy, stored).item() < math.log(initial) - 2
    assert 0 < getattr(proxy, name).item() < initial
    assert proxy.parameters_table()[name][0] > 0


@pytest.mark.parametrize(
    ("cls", "options"),
    [
        (ExponentialGrowth, {"a": 0.0}),
        (ExponentialGrowth, {"a": -0.5}),
        (SaturatingLight, {"mu_max": 0.0}),
        (SaturatingLight, {"k": -1.0}),
        (SaturatingLight, {"k": math.nan}),
    ],
)
def test_non_positive_initial_values_rejected(cls, options):
    with pytest.raises(ValueError, match=f"{next(iter(options))} must be positive"):
        cls(**options)


@pytest.mark.parametrize(
    ("cls", "truth", "driver"),
    [
        (ExponentialGrowth, {"a": 0.8, "b": 0.045}, torch.linspace(-2.0, 30.0, 200)),
        (QuadraticGrowth, {"c": 6e-3, "d": -4e-6}, torch.linspace(5.0, 350.0, 200)),
        (SaturatingLight, {"mu_max": 2.5, "k": 60.0}, torch.linspace(5.0, 350.0, 200)),
    ],
)
def test_parameters_recovered_by_gradient_descent(cls, truth, driver):
    target = cls(**truth)(driver).detach()
    proxy = cls()
    optimizer = torch.optim.Adam(proxy.parameters(), lr=0.05)
    for _ in range(600):
        optimizer.zero_grad()
        loss = (proxy(driver) - target).square().mean()
        loss.backward()
        optimizer.step()
    for name, (value, _) in proxy.parameters_table().items():
        assert value == pytest.approx(truth[name], rel=0.02), name


def test_state_dict_round_trip():
    fitted = QuadraticGrowth(c=7e-3, d=-3e-6)
    fresh = QuadraticGrowth()
    fresh.load_state_dict(fitted.state_dict())
    assert fresh.parameters_table() == fitted.parameters_table()


def test_registry_builds_each_kind():
    assert set(PROXY_KINDS) == {"exponential", "quadratic", "saturating", "linear", "identity"}
    for name, cls in PROXY_KINDS.items():
        assert type(make_proxy(name)) is cls
    proxy = make_proxy("saturating", mu_max=3.0, k=40.0)
    assert proxy.parameters_table()["k"][0] == pytest.approx(40.0)


def test_registry_passes_modules_through():
    module = nn.Sequential(nn.Linear(3, 3))
    assert make_proxy(module) is module
    law = ExponentialGrowth()
    assert make_proxy(law) is law


@pytest.mark.parametrize(
    ("args", "options", "error", "match"),
    [
        (("cubic",), {}, ValueError, "proxy must be one of"),
        ((3,), {}, TypeError, "a name or a torch.nn.Module, not int"),
        ((Identity(),), {"a": 1.0}, TypeError, "cannot be applied to a ready module"),
        (("exponential",), {"q": 1.0}, TypeError, "q"),
    ],
)
def test_registry_errors(args, options, error, match):
    with pytest.raises(error, match=match):
        make_proxy(*args, **options)
