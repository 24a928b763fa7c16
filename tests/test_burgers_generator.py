"""The viscous Burgers generator: accuracy against Cole-Hopf, residual, mass, sets, metadata."""

import json

import numpy as np
import pytest
import xarray as xr

from climlatent.errors import InputDataError
from climlatent.reference.burgers import (
    DATASETS,
    cole_hopf,
    generate,
    generate_set,
    initial_state,
    ood_sets,
    solve_burgers,
)

NU = 0.01


def relative_l1(u, exact):
    return np.abs(u - exact).sum(axis=-1) / np.abs(exact).sum(axis=-1)


@pytest.fixture(scope="module")
def in_distribution():
    return generate(6, seed=11)


# --- accuracy ------------------------------------------------------------------------


def test_matches_cole_hopf_in_distribution(in_distribution):
    """Acceptance criterion: relative L1 error < 1e-4 at t = 0.25, 0.5, 1 (measured ~1e-7)."""
    ds = in_distribution
    times = [0.25, 0.5, 1.0]
    exact = np.stack(
        [
            cole_hopf(
                lambda y, a=float(ds.a[i]), b=float(ds.b[i]): initial_state(
                    "sine_cosine3", np.array([a]), np.array([b]), y
                )[0],
                ds.x.values,
                times,
                NU,
            )
            for i in range(ds.sample.size)
        ]
    )
    errors = relative_l1(ds.u.sel(t=times).values, exact)
    assert errors.shape == (6, 3)
    assert errors.max() < 1e-4
    assert errors.max() < 1e-6  # what the solver actually achieves, with a margin


def test_box_corners_match_cole_hopf():
    """The steepest in-distribution states (a = b = 1.5 and the other corners)."""
    corners = ((0.5, 1.5), (1.5, 1.5)), ((1.5, 1.5), (0.5, 1.5)), ((1.5, 1.5), (1.5, 1.5))
    for box in corners:
        ds = generate(1, amplitude_box=box, nt=4)
        exact = cole_hopf(ds.u.isel(t=0).values, ds.x.values, [0.25, 0.5, 1.0], NU)
        assert relative_l1(ds.u.isel(t=[1, 2, 4]).values, exact).max() < 1e-6


@pytest.mark.parametrize("name", ["ood1", "ood2", "ood3"])
def test_ood_sets_match_cole_hopf(name):
    ds = generate_set(name, n=2, seed=5, nt=4)
    exact = cole_hopf(ds.u.isel(t=0).values, ds.x.values, ds.t.values[1:], float(ds.viscosity[0]))
    assert relative_l1(ds.u.isel(t=slice(1, None)).values, exact).max() < 1e-6


def test_cole_hopf_from_samples_equals_from_function():
    x = np.arange(100) / 100
    u0 = initial_state("sine_cosine3", np.array([1.2]), np.array([0.7]), x)
    from_samples = cole_hopf(u0, x, [0.3], NU)
    from_function = cole_hopf(
        lambda y: 1.2 * np.sin(2 * np.pi * y) + 0.7 * np.cos(2 * np.pi * y) ** 3, x, [0.3], NU
    )
    np.testing.assert_allclose(from_samples[0], from_function, atol=1e-11)


def test_cole_hopf_small_viscosity_matches_solver():
    """nu = 0.002: phi0 spans exp(+-160), handled in log space; measured agreement 6e-13."""
    x = np.arange(200) / 200
    exact = cole_hopf(lambda y: 2 * np.sin(2 * np.pi * y), x, 1.0, 0.002)
    assert np.isfinite(exact).all()
    assert 0.2 < np.abs(np.diff(exact)).max() < 0.3  # the front at x = 0.5, ~0.01 wide
    fine = np.arange(2000) / 2000
    u = solve_burgers(2 * np.sin(2 * np.pi * fine), 0.002, t_final=1.0, nt=1, stride=10)
    assert relative_l1(u[-1], exact) < 1e-9


def test_cole_hopf_rejects_nonzero_mean():
    with pytest.raises(InputDataError, match="mean zero"):
        cole_hopf(lambda y: 1 + np.sin(2 * np.pi * y), np.arange(8) / 8, 0.5, NU)
    with pytest.raises(InputDataError, match="viscosity"):
        cole_hopf(lambda y: np.sin(2 * np.pi * y), np.arange(8) / 8, 0.5, 0.0)
    with pytest.raises(InputDataError, match="t must"):
        cole_hopf(lambda y: np.sin(2 * np.pi * y), np.arange(8) / 8, -0.5, NU)


def _residual(ds):
    """Central differences (2nd order in t and x) of u_t + u u_x - nu u_xx on saved data."""
    u, dx, dt = ds.u.values, 1 / ds.x.size, float(ds.t[1] - ds.t[0])
    u_t = (u[:, 2:] - u[:, :-2]) / (2 * dt)
    u = u[:, 1:-1]
    right, left = np.roll(u, -1, axis=-1), np.roll(u, 1, axis=-1)
    advection = u * (right - left) / (2 * dx)
    diffusion = float(ds.viscosity[0]) * (right - 2 * u + left) / dx**2
    residual = u_t + advection - diffusion
    scale = np.abs(u_t).mean() + np.abs(advection).mean() + np.abs(diffusion).mean()
    return np.abs(residual).mean() / scale


def test_finite_difference_residual_is_small_and_second_order():
    """Independent check: mean |residual| / (mean|u_t| + mean|u u_x| + mean|nu u_xx|).

    Limited by the saved resolution (fronts ~0.01 wide): measured 1.2e-3 at
    dx = dt = 1/400 and 2.9e-4 at 1/800, falling 4x per halving (second order), so
    the residual is truncation error of the differences, not solver error.
    """
    coarse = _residual(generate(2, nx=400, nt=400, seed=0))
    fine = _residual(generate(2, nx=800, nt=800, seed=0))
    assert coarse < 2e-3
    assert fine < 5e-4
    assert 3.5 < coarse / fine < 4.5


# --- conservation ----------------------------------------------------------------------


def test_mass_conserved_to_round_off_on_the_internal_grid():
    """The k = 0 mode is never changed: mean over the full internal grid stays 0."""
    ds = generate(4, nx=400, resolution=400, nt=10, amplitude_box=((1.5, 2.5), (1.5, 2.5)))
    mass = ds.u.mean("x")
    assert float(abs(mass).max()) < 1e-14 * float(abs(ds.u).max())


def test_mass_conserved_for_a_nonzero_mean_state():
    x = np.arange(256) / 256
    u0 = 0.3 + np.sin(2 * np.pi * x) + 0.5 * np.cos(6 * np.pi * x)
    u = solve_burgers(u0, viscosity=NU, t_final=1.0, nt=4)
    np.testing.assert_allclose(u.mean(axis=-1), 0.3, rtol=0, atol=1e-14)


def test_mass_on_the_saved_grid_is_zero_up_to_aliasing(in_distribution):
    """The saved points sample the spectral solution: their mean is the sum of the modes
    that are multiples of nx (aliasing), ~1e-7 for the training set at nx = 100."""
    mass = in_distribution.u.mean("x")
    assert float(abs(mass.isel(t=0)).max()) < 1e-15
    assert float(abs(mass).max()) < 1e-5


# --- sets, parameters, noise, seeds ----------------------------------------------------


def test_sets_are_documented_and_distinct():
    assert sorted(DATASETS) == ["in_distribution", "ood1", "ood2", "ood3", "ood4"]
    ood = ood_sets()
    assert sorted(ood) == ["ood1", "ood2", "ood3", "ood4"]
    ood["ood1"]["amplitude_box"] = None  # a copy
    assert DATASETS["ood1"]["amplitude_box"] == ((1.5, 2.5), (1.5, 2.5))
    assert DATASETS["ood2"]["family"] == "fourier"
    assert DATASETS["ood3"]["viscosity"] == 0.005
    assert DATASETS["ood4"]["noise"] == 0.1


@pytest.mark.parametrize(
    ("name", "a_range", "b_range"),
    [("in_distribution", (0.5, 1.5), (0.5, 1.5)), ("ood1", (1.5, 2.5), (1.5, 2.5))],
)
def test_amplitude_boxes(name, a_range, b_range):
    ds = generate_set(name, n=200, nx=8, nt=1, t_final=1e-3, seed=3)
    for variable, (low, high) in (("a", a_range), ("b", b_range)):
        values = ds[variable].values
        assert low <= values.min() and values.max() <= high
        assert values.min() < low + 0.05 and values.max() > high - 0.05  # fills the box
    np.testing.assert_allclose(
        ds.u.isel(t=0).values, initial_state("sine_cosine3", ds.a.values, ds.b.values, ds.x)
    )


def test_fourier_family_parameters():
    ds = generate_set("ood2", n=200, nx=16, nt=1, t_final=1e-3, seed=3)
    assert ds.a.dims == ("sample", "mode") and ds.mode.values.tolist() == [1, 2, 3]
    bound = 1.0 / ds.mode
    for variable in ("a", "b"):
        assert bool((abs(ds[variable]) <= bound).all())
        assert bool((abs(ds[variable]).max("sample") > 0.9 * bound).all())
    u0 = initial_state("fourier", ds.a.values, ds.b.values, ds.x.values)
    np.testing.assert_allclose(ds.u.isel(t=0).values, u0, atol=1e-13)


def test_viscosity_set():
    ds = generate_set("ood3", n=2, nx=16, nt=1)
    assert ds.attrs["viscosity"] == 0.005
    assert (ds.viscosity == 0.005).all()


def test_noise_set_differs_from_clean_by_its_std():
    clean = generate_set("in_distribution", n=20, nt=10, seed=4)
    noisy = generate_set("ood4", n=20, nt=10, seed=4)
    np.testing.assert_array_equal(noisy.a, clean.a)
    np.testing.assert_array_equal(noisy.u_clean, clean.u)
    difference = (noisy.u - clean.u).values
    assert abs(difference.std() - 0.1) < 0.002  # 22000 draws: std error 0.0005
    assert abs(difference.mean()) < 0.003
    assert (noisy.noise == 0.1).all() and "u_clean" not in clean


def test_same_seed_same_data_and_prefix_stable():
    first, second = generate(3, nt=5, seed=7), generate(3, nt=5, seed=7)
    xr.testing.assert_identical(first, second)
    other = generate(3, nt=5, seed=8)
    assert not np.array_equal(first.a, other.a)
    longer = generate(5, nt=5, seed=7)
    np.testing.assert_array_equal(longer.a[:3], first.a)


def test_regenerates_from_its_attributes():
    ds = generate_set("ood2", n=2, nx=16, nt=2, seed=1)
    again = generate(**json.loads(ds.attrs["generator_parameters"]))
    np.testing.assert_array_equal(again.u, ds.u)


def test_threads_give_the_same_result():
    one = generate(130, nx=20, nt=2, t_final=0.05, seed=2, workers=1)
    two = generate(130, nx=20, nt=2, t_final=0.05, seed=2, workers=2)
    np.testing.assert_allclose(one.u, two.u, rtol=0, atol=1e-12)  # chunks differ: 128 + 2, 65 + 65


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n": 0}, "n"),
        ({"n": 2.5}, "n"),
        ({"nx": 2}, "nx"),
        ({"nt": 0}, "nt"),
        ({"seed": -1}, "seed"),
        ({"viscosity": 0.0}, "viscosity"),
        ({"viscosity": float("nan")}, "viscosity"),
        ({"t_final": -1.0}, "t_final"),
        ({"noise": -0.1}, "noise"),
        ({"family": "gaussian"}, "family"),
        ({"amplitude_box": ((1.5, 0.5), (0.5, 1.5))}, "amplitude_box"),
        ({"amplitude_box": (0.5, 1.5)}, "amplitude_box"),
        ({"resolution": 150}, "resolution"),
        ({"max_step": 0.0}, "max_step"),
        ({"workers": 0}, "workers"),
        ({"n_modes": 0}, "n_modes"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, name):
    with pytest.raises(InputDataError, match=name):
        generate(**{"n": 1, "nx": 16, "nt": 1, **kwargs})


def test_unknown_set_name():
    with pytest.raises(InputDataError, match="name must be one of"):
        generate_set("ood5", n=1)


# --- metadata --------------------------------------------------------------------------


def test_coords_units_and_attrs(in_distribution):
    ds = in_distribution
    assert dict(ds.u.sizes) == {"sample": 6, "t": 101, "x": 100}
    np.testing.assert_array_equal(ds.x, np.arange(100) / 100)
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        assert t in ds.t.values  # exactly
    assert ds.t[0] == 0.0 and ds.t[-1] == 1.0
    for name in ("x", "t", "u", "a", "b", "viscosity", "noise"):
        assert ds[name].attrs["units"] == "1"
        assert ds[name].attrs.get("long_name") or name in ("x", "t")
    assert ds.a.dims == ("sample",) and ds.viscosity.dims == ("sample",)
    for key in ("family", "solver", "equation", "initial_state", "resolution", "time_step"):
        assert key in ds.attrs
    assert ds.attrs["family"] == "sine_cosine3" and ds.attrs["viscosity"] == NU
    assert ds.attrs["resolution"] % 100 == 0
    assert "ETDRK4" in ds.attrs["solver"]
    assert json.loads(ds.attrs["amplitude_box"]) == [[0.5, 1.5], [0.5, 1.5]]


def test_netcdf_round_trip(tmp_path):
    ds = generate_set("ood2", n=2, nx=16, nt=2)
    path = tmp_path / "burgers.nc"
    ds.to_netcdf(path)
    with xr.open_dataset(path) as back:
        xr.testing.assert_identical(back.load(), ds)
