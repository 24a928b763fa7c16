"""The Darcy-flow KLE generator, checked against truths computed here independently.

Discretisation under test (vertex-centred): nodes on linspace(0, 1, n); the scheme is the
five-point conservative stencil with harmonic-mean face permeabilities and mirror ghost
nodes on the walls (zero normal gradient). The velocities normal to the dual-cell faces
(``u_x_face``, ``u_y_face``) are zero on the walls, and so are the nodal normal velocities.
"""

import io

import numpy as np
import pytest
import xarray as xr

from climlatent.errors import InputDataError
from climlatent.reference.darcy import (
    generate,
    kle_basis,
    sample_theta,
    solve_dense,
    solve_pressure,
    source_term,
)

L = 0.1  # correlation length of the seed's KLE datasets


@pytest.fixture(scope="module")
def kle2():
    """Four KLE2 samples on the seed's 65 x 65 grid, solved by two processes."""
    return generate(4, kle_terms=2, theta="standard", seed=7, workers=2)


@pytest.fixture(scope="module")
def small():
    return generate(6, kle_terms=3, theta="mixture", seed=11, n_grid=33, workers=1)


def _harmonic(a, b):
    return 2 * a * b / (a + b)


def _minus_div_k_grad(permeability, pressure):
    """-div(K grad p) by the five-point stencil on mirror-padded arrays (ghost nodes)."""
    n = pressure.shape[-1]
    h = 1.0 / (n - 1)
    pad = [(0, 0)] * (pressure.ndim - 2) + [(1, 1), (1, 1)]
    k = np.pad(permeability, pad, mode="reflect")
    p = np.pad(pressure, pad, mode="reflect")
    centre = (slice(None),) * (pressure.ndim - 2)
    c = p[(*centre, slice(1, -1), slice(1, -1))]
    kc = k[(*centre, slice(1, -1), slice(1, -1))]
    total = 0.0
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        rows = slice(1 + dy, p.shape[-2] - 1 + dy)
        cols = slice(1 + dx, p.shape[-1] - 1 + dx)
        neighbour = p[(*centre, rows, cols)]
        total = total + _harmonic(kc, k[(*centre, rows, cols)]) * (neighbour - c)
    return -total / h**2


def _trapezoid_2d(values, x):
    return np.trapezoid(np.trapezoid(values, x, axis=-1), x, axis=-1)


# ----------------------------------------------------------------- the discrete physics


def test_finite_difference_residual_is_round_off(kle2):
    residual = _minus_div_k_grad(kle2.permeability.values, kle2.pressure.values)
    residual -= kle2.source.values
    relative = np.abs(residual).max() / np.abs(kle2.source.values).max()
    assert relative < 1e-9, relative  # measured ~1e-11 on the 65 x 65 grid
    # not trivially small: the stencil terms themselves are O(r) near the wells
    assert np.abs(_minus_div_k_grad(kle2.permeability.values, kle2.pressure.values)).max() > 5


def test_source_is_the_seed_wells_and_integrates_to_zero(kle2):
    f, x, y = kle2.source.values, kle2.x.values, kle2.y.values
    injection = (x[None, :] <= 1 / 8) & (y[:, None] <= 1 / 8)
    production = (x[None, :] >= 7 / 8) & (y[:, None] >= 7 / 8)
    assert np.all(f[injection] == 10.0) and np.all(f[production] == -10.0)
    assert np.all(f[~injection & ~production] == 0.0)
    assert injection.sum() == production.sum() == 81
    assert abs(_trapezoid_2d(f, x)) < 1e-13
    np.testing.assert_array_equal(source_term(), f)


def test_pressure_has_zero_mean(kle2):
    means = _trapezoid_2d(kle2.pressure.values, kle2.x.values)
    assert np.abs(means).max() < 1e-12 * np.abs(kle2.pressure.values).max()
    assert np.abs(kle2.pressure.values).max() > 0.1  # a real flow, not zeros


def test_velocities_have_zero_normal_flux_on_the_walls(kle2):
    for name, axis in (("u_x", "x"), ("u_y", "y")):
        field = kle2[name]
        assert np.all(field.isel({axis: 0}) == 0) and np.all(field.isel({axis: -1}) == 0)
        face = kle2[f"{name}_face"]
        assert np.all(face.isel({f"{axis}_face": [0, -1]}) == 0)
        # the tangential component on the same walls is not zero
        other = "y" if axis == "x" else "x"
        assert np.abs(kle2[f"u_{other}"].isel({axis: 0})).max() > 1e-3


def test_face_velocities_are_darcy_law_with_harmonic_means(kle2):
    k, p = kle2.permeability.values, kle2.pressure.values
    h = 1.0 / 64
    u_x = -_harmonic(k[..., :, 1:], k[..., :, :-1]) * (p[..., :, 1:] - p[..., :, :-1]) / h
    u_y = -_harmonic(k[..., 1:, :], k[..., :-1, :]) * (p[..., 1:, :] - p[..., :-1, :]) / h
    np.testing.assert_allclose(kle2.u_x_face.values[..., 1:-1], u_x, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(kle2.u_y_face.values[..., 1:-1, :], u_y, rtol=1e-12, atol=1e-14)
    # nodal velocities: mean of the two faces around an interior node
    faces = kle2.u_x_face.values
    np.testing.assert_allclose(
        kle2.u_x.values[..., 1:-1], 0.5 * (faces[..., 1:-2] + faces[..., 2:-1]), rtol=1e-14
    )
    np.testing.assert_allclose(
        kle2.x_face.values[1:-1], 0.5 * (kle2.x.values[1:] + kle2.x.values[:-1])
    )


def test_discrete_divergence_of_velocity_equals_source(kle2):
    width_x = np.diff(kle2.x_face.values)  # dual-cell widths: h/2 on the walls, h inside
    width_y = np.diff(kle2.y_face.values)
    divergence = (
        np.diff(kle2.u_x_face.values, axis=-1) / width_x
        + np.diff(kle2.u_y_face.values, axis=-2) / width_y[:, None]
    )
    error = np.abs(divergence - kle2.source.values).max() / 10.0
    assert error < 1e-9, error
    # flux balance: what leaves the injection square arrives at the production square
    net = _trapezoid_2d(divergence, kle2.x.values)
    assert np.abs(net).max() < 1e-9


def test_scheme_is_second_order_on_a_manufactured_solution():
    errors = []
    for n in (17, 33, 65):
        x = np.linspace(0, 1, n)
        gx, gy = np.meshgrid(x, x)
        exact = np.cos(np.pi * gx) * np.cos(np.pi * gy)  # zero normal gradient, zero mean
        k = 1 + gx**2 + gy
        f = (
            2 * np.pi**2 * k * exact
            + 2 * np.pi * gx * np.sin(np.pi * gx) * np.cos(np.pi * gy)
            + np.pi * np.cos(np.pi * gx) * np.sin(np.pi * gy)
        )
        f -= _trapezoid_2d(f, x)  # the discrete compatibility condition
        p = solve_pressure(k, f)
        errors.append(np.abs(p - (exact - _trapezoid_2d(exact, x))).max())
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((orders > 1.8) & (orders < 2.3)), orders


# ---------------------------------------------------------------------------- the KLE


def _covariance(n_grid, length_scale):
    x = np.linspace(0, 1, n_grid)
    gx, gy = np.meshgrid(x, x)
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    distance = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=-1))
    return np.exp(-distance / length_scale)


@pytest.mark.parametrize(("n_grid", "terms"), [(33, 6), (17, 60)])  # ARPACK, then LAPACK
def test_kle_eigenpairs_match_dense_eigendecomposition(n_grid, terms):
    cov = _covariance(n_grid, L)
    values = np.linalg.eigh(cov)[0][::-1][:terms]
    basis = kle_basis(n_grid=n_grid, length_scale=L, terms=terms)
    assert ("eigsh" in basis.method) == (terms + 1 <= n_grid**2 // 32)
    np.testing.assert_allclose(basis.eigenvalues, values, rtol=1e-10)
    modes = basis.modes.reshape(terms, -1)
    np.testing.assert_allclose(modes @ modes.T, np.eye(terms), atol=1e-10)
    residual = cov @ modes.T - modes.T * basis.eigenvalues
    assert np.abs(residual).max() < 1e-9 * values[0]


def test_degenerate_kle_pair_is_resolved_by_symmetry():
    basis = kle_basis(n_grid=33, length_scale=L, terms=6)
    first, second, third = basis.modes[:3]
    assert basis.eigenvalues[1] == pytest.approx(basis.eigenvalues[2], rel=1e-10)
    assert np.all(first > 0)
    np.testing.assert_allclose(second, -second[:, ::-1], atol=1e-12)  # odd in x
    np.testing.assert_allclose(second, second[::-1, :], atol=1e-12)  # even in y
    np.testing.assert_allclose(third, second.T, atol=1e-12)  # the same mode along y
    assert second[16, -1] > 0  # increases with x


def test_kle_covariance_is_the_exponential_kernel():
    n_grid, draws = 17, 20000
    basis = kle_basis(n_grid=n_grid, length_scale=L, terms=n_grid**2)  # every term
    field = basis.log_permeability(sample_theta("standard", draws, n_grid**2, seed=2))
    x = np.linspace(0, 1, n_grid)
    pairs = [  # (j, i) node pairs: same node, along x, along y, diagonal, far apart
        ((0, 0), (0, 0)),
        ((0, 0), (0, 1)),
        ((8, 8), (9, 8)),
        ((4, 4), (5, 5)),
        ((3, 2), (5, 5)),
        ((8, 8), (12, 4)),
    ]
    for a, b in pairs:
        rho = np.exp(-np.hypot(x[a[1]] - x[b[1]], x[a[0]] - x[b[0]]) / L)
        empirical = np.mean(field[:, a[0], a[1]] * field[:, b[0], b[1]])  # zero mean
        # standard error of the product mean of two unit-variance normals: sqrt((1+rho^2)/n)
        tolerance = 5 * np.sqrt((1 + rho**2) / draws)
        assert abs(empirical - rho) < tolerance, (a, b, empirical, rho)
    # the diagonal pair separates the L2 norm of the seed from an L1 norm
    assert abs(np.exp(-np.sqrt(2) / 16 / L) - np.exp(-2 / 16 / L)) > 0.1


def test_generated_permeability_is_the_kle_of_theta(small):
    basis = kle_basis(n_grid=33, length_scale=L, terms=3)
    np.testing.assert_allclose(
        small.log_permeability, basis.log_permeability(small.theta.values), rtol=1e-13
    )
    np.testing.assert_allclose(small.permeability, np.exp(small.log_permeability), rtol=1e-14)
    np.testing.assert_allclose(small.kle_eigenvalue, basis.eigenvalues)


# -------------------------------------------------------------------- p(theta) variants

DRAWS = 40000


@pytest.mark.parametrize(("name", "mean", "variance"), [("standard", 0, 1), ("shifted", 1, 0.5)])
def test_gaussian_theta_moments(name, mean, variance):
    theta = sample_theta(name, DRAWS, 2, seed=5)
    # five standard errors: mean sd/sqrt(n), variance sd^2 sqrt(2/n), correlation 1/sqrt(n)
    np.testing.assert_allclose(theta.mean(axis=0), mean, atol=5 * np.sqrt(variance / DRAWS))
    np.testing.assert_allclose(theta.var(axis=0), variance, atol=5 * variance * np.sqrt(2 / DRAWS))
    assert abs(np.corrcoef(theta.T)[0, 1]) < 5 / np.sqrt(DRAWS)


def test_mixture_theta_has_four_modes_of_variance_quarter():
    theta = sample_theta("mixture", DRAWS, 2, seed=6)
    # X = s + 0.5 Z with s = +-1: E X^2 = 1 + 0.25, E X^4 = 1 + 6 (0.25) + 3 (0.25)^2
    second, fourth = (theta**2).mean(axis=0), (theta**4).mean(axis=0)
    np.testing.assert_allclose(second, 1.25, atol=5 * np.sqrt(np.var(theta**2) / DRAWS))
    np.testing.assert_allclose(fourth, 2.6875, atol=5 * np.sqrt(np.var(theta**4) / DRAWS))
    np.testing.assert_allclose(theta.mean(axis=0), 0, atol=5 * np.sqrt(1.25 / DRAWS))
    # equal weights: a quarter of the draws per quadrant (binomial standard error)
    quadrant = 2 * (theta[:, 0] > 0) + (theta[:, 1] > 0)
    fractions = np.bincount(quadrant, minlength=4) / DRAWS
    np.testing.assert_allclose(fractions, 0.25, atol=5 * np.sqrt(0.25 * 0.75 / DRAWS))

    def near(point):
        return np.mean(np.hypot(*(theta - point).T) < 0.25)

    corners = [near((sx, sy)) for sx in (-1, 1) for sy in (-1, 1)]
    between = [near(point) for point in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))]
    # density ratio corner / edge midpoint is about 3.7 (origin: 13): four separate modes
    assert min(corners) > 3 * max(between)


def test_callable_theta_is_used_as_given():
    ds = generate(2, theta=lambda rng, n, s: np.full((n, s), 0.5), n_grid=9, workers=1)
    np.testing.assert_array_equal(ds.theta, 0.5)
    assert ds.attrs["theta_distribution"].startswith("callable")


def test_generate_draws_theta_like_sample_theta(small):
    np.testing.assert_array_equal(small.theta, sample_theta("mixture", 6, 3, seed=11))


# -------------------------------------------------------------- solver and determinism


def test_sparse_solve_equals_dense_solve(small):
    for k in small.permeability.values[:3]:
        dense = solve_dense(k, small.source.values)
        sparse = solve_pressure(k, small.source.values)
        assert np.abs(sparse - dense).max() < 1e-11 * np.abs(dense).max()
    np.testing.assert_allclose(sparse, small.pressure.values[2], rtol=0, atol=1e-15)


def test_output_does_not_depend_on_workers(small):
    parallel = generate(6, kle_terms=3, theta="mixture", seed=11, n_grid=33, workers=2)
    xr.testing.assert_identical(parallel, small)


def test_same_seed_same_output_and_other_seed_differs(small):
    again = generate(6, kle_terms=3, theta="mixture", seed=11, n_grid=33, workers=1)
    xr.testing.assert_identical(again, small)
    other = generate(6, kle_terms=3, theta="mixture", seed=12, n_grid=33, workers=1)
    assert not np.allclose(other.pressure, small.pressure)


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"n": 0}, "n"),
        ({"n": 2.0}, "n"),
        ({"kle_terms": 0}, "kle_terms"),
        ({"kle_terms": 82}, "kle_terms"),  # more than the 9 x 9 nodes
        ({"theta": "gaussian"}, "theta"),
        ({"theta": lambda rng, n, s: np.zeros((n, s + 1))}, "theta"),
        ({"seed": -1}, "seed"),
        ({"length_scale": 0.0}, "length_scale"),
        ({"length_scale": float("nan")}, "length_scale"),
        ({"n_grid": 1}, "n_grid"),
        ({"source_width": 0.5}, "source_width"),
        ({"source_strength": float("inf")}, "source_strength"),
        ({"mean_log_permeability": None}, "mean_log_permeability"),
        ({"workers": 0}, "workers"),
    ],
)
def test_bad_arguments_raise_naming_the_parameter(options, name):
    arguments = {"n": 2, "n_grid": 9, "workers": 1, **options}
    with pytest.raises(InputDataError, match=rf"\b{name}\b"):
        generate(**arguments)


def test_incompatible_source_is_refused():
    source = np.zeros((9, 9))
    source[0, 0] = 1.0
    with pytest.raises(InputDataError, match="source must integrate to zero"):
        solve_pressure(np.ones((9, 9)), source)


# ----------------------------------------------------------------------------- metadata


def test_dataset_coordinates_variables_and_attributes(kle2):
    assert kle2.pressure.dims == ("sample", "y", "x")
    for axis in ("x", "y"):
        coord = kle2[axis]
        assert coord.attrs["units"] == "1" and coord.attrs["axis"] == axis.upper()
        np.testing.assert_array_equal(coord, np.linspace(0, 1, 65))
    for name in ("pressure", "u_x", "u_y", "permeability", "log_permeability", "source", "theta"):
        assert kle2[name].attrs["units"] == "1" and kle2[name].attrs["long_name"], name
    assert kle2.theta.dims == ("sample", "kle_term")
    attrs = kle2.attrs
    assert attrs["kle_terms"] == 2 and attrs["length_scale"] == L
    assert attrs["source_strength"] == 10.0 and attrs["source_width"] == 0.125
    assert attrs["theta_distribution"].startswith("standard")
    assert "splu" in attrs["solver"] and "harmonic" in attrs["discretisation"]
    assert "generate(n=4" in attrs["history"]
    buffer = io.BytesIO()
    kle2.to_netcdf(buffer, engine="scipy")  # the attributes are netCDF-serialisable
    assert buffer.getbuffer().nbytes > 0
