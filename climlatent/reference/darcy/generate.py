"""The Darcy-flow KLE datasets of Jacobsen & Duraisamy (2022, Section 3) as xarray Datasets."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr

from climlatent._version import __version__
from climlatent.checks import check_int, check_number
from climlatent.errors import InputDataError
from climlatent.reference.darcy.kle import LENGTH_SCALE, N_GRID, grid_coordinates, kle_basis
from climlatent.reference.darcy.solver import face_velocities, node_velocities, solve_pressures

SOURCE_STRENGTH = 10.0  # r of the seed's Eq. 17
SOURCE_WIDTH = 0.125  # w of Eq. 17
THETA_DISTRIBUTIONS = {
    "standard": "N(0, I): independent standard normal coefficients",
    "shifted": "N(1, 0.5 I): independent normal coefficients, mean 1, variance 0.5",
    "mixture": (
        "equal-weight Gaussian mixture with means at the corners {-1, 1}**s and covariance "
        "0.25 I (for s = 2 the four components (+-1, +-1)); coefficients independent, "
        "each +-1 with probability 1/2 plus N(0, 0.25)"
    ),
}
ThetaSampler = Callable[[np.random.Generator, int, int], np.ndarray]

_FIELD_ATTRS = {  # units, long_name
    "pressure": ("1", "pressure (zero trapezoidal mean)"),
    "u_x": ("1", "Darcy velocity, x component, at the nodes"),
    "u_y": ("1", "Darcy velocity, y component, at the nodes"),
    "u_x_face": ("1", "Darcy velocity, x component, normal to the dual-cell faces"),
    "u_y_face": ("1", "Darcy velocity, y component, normal to the dual-cell faces"),
    "permeability": ("1", "permeability K = exp(G)"),
    "log_permeability": ("1", "log-permeability G"),
    "source": ("1", "source term f (injection > 0, production < 0)"),
    "theta": ("1", "KLE coefficients (generative parameters)"),
    "kle_eigenvalue": ("1", "eigenvalue of the node covariance matrix"),
    "kle_mode": ("1", "KLE mode (eigenvector, unit Euclidean norm over the nodes)"),
}


def sample_theta(
    theta: str | ThetaSampler = "standard", n: int = 1, terms: int = 2, seed: int = 0
) -> np.ndarray:
    r"""Draw KLE coefficients from a generative parameter distribution :math:`p(\theta)`.

    The distributions of the seed paper (Section 5) for KLE2, extended to *s* terms:

    ``"standard"``
        :math:`N(0, I)` (Section 5.1).
    ``"shifted"``
        :math:`N([1, 1], 0.5 I)`, variance 0.5 (Section 5.2).
    ``"mixture"``
        :math:`\frac14 \sum N(m, 0.25 I)` over the four means :math:`m = (\pm 1, \pm 1)`,
        variance 0.25 (Section 5.3); for *s* terms, the equal-weight mixture over the
        :math:`2^s` corners of :math:`\{-1, 1\}^s`.

    Parameters
    ----------
    theta : {"standard", "shifted", "mixture"} or callable
        A name above, or ``theta(rng, n, terms)`` returning an ``(n, terms)`` array.
    n : int
        Number of draws.
    terms : int
        Number of KLE coefficients *s*.
    seed : int
        Seed of :func:`numpy.random.default_rng`; :func:`generate` draws the same values.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, terms)``.

    Raises
    ------
    InputDataError
        If ``theta`` is unknown or returns a bad array, or a count is invalid.

    Examples
    --------
    >>> theta = sample_theta("shifted", n=20000, terms=2, seed=0)
    >>> np.round(theta.mean(axis=0), 1), np.round(theta.var(axis=0), 1)
    (array([1., 1.]), array([0.5, 0.5]))
    """
    check_int("n", n, 1)
    check_int("terms", terms, 1)
    check_int("seed", seed, 0)
    _check_theta(theta)
    return _draw_theta(theta, np.random.default_rng(seed), int(n), int(terms))


def source_term(
    n_grid: int = N_GRID, strength: float = SOURCE_STRENGTH, width: float = SOURCE_WIDTH
) -> np.ndarray:
    r"""The well source *f* of Eq. 17 at the grid nodes.

    :math:`f = r` on the injection square :math:`[0, w]^2` (the corner at the origin),
    :math:`-r` on the production square :math:`[1 - w, 1]^2` (the opposite corner), 0
    elsewhere; nodes on a square's edge belong to it (the seed's :math:`\le`). The
    production square is the exact mirror image of the injection square, so *f*
    integrates to zero with any quadrature symmetric under :math:`x \to 1 - x, y \to 1 - y`.

    Parameters
    ----------
    n_grid : int
        Nodes per side of the unit square.
    strength : float
        *r* (seed: 10).
    width : float
        *w*, in (0, 0.5) (seed: 1/8).

    Returns
    -------
    numpy.ndarray
        Shape ``(n_grid, n_grid)`` in (y, x) order.

    Raises
    ------
    InputDataError
        If an argument is out of range; the message names it.

    Examples
    --------
    >>> f = source_term(n_grid=65)
    >>> int((f == 10).sum()), int((f == -10).sum())  # 9 x 9 nodes each on the 1/64 grid
    (81, 81)
    >>> float(f[0, 0]), float(f[-1, -1])
    (10.0, -10.0)
    """
    check_int("n_grid", n_grid, 2)
    check_number("strength", strength)
    check_number("width", width, low=0.0, high=0.5)
    x = grid_coordinates(n_grid)
    inside = x <= width * (1 + 1e-12)
    square = (inside[:, None] & inside[None, :]).astype(float)
    return strength * (square - square[::-1, ::-1])


def generate(
    n: int,
    kle_terms: int = 2,
    theta: str | ThetaSampler = "standard",
    seed: int = 0,
    *,
    length_scale: float = LENGTH_SCALE,
    n_grid: int = N_GRID,
    mean_log_permeability: float = 0.0,
    source_strength: float = SOURCE_STRENGTH,
    source_width: float = SOURCE_WIDTH,
    workers: int | None = None,
) -> xr.Dataset:
    r"""Generate a Darcy-flow KLE dataset: pressure and velocity for random permeabilities.

    Seed paper, Section 3: on the unit square, :math:`u = -K \nabla p`,
    :math:`\nabla \cdot u = f`, no flux through the walls, zero mean pressure; *f* the
    two wells of :func:`source_term` (:math:`r = 10`, :math:`w = 1/8`); :math:`K = e^G`
    with *G* the *s*-term Karhunen-Loeve expansion (:func:`kle_basis`) of a unit-variance
    Gaussian field of covariance :math:`\exp(-\lVert x - x' \rVert_2 / l)`,
    :math:`l = 0.1`, whose coefficients :math:`\theta` are drawn from
    :func:`sample_theta`. Each sample is solved on the 65 x 65 node grid by the
    second-order finite differences of :mod:`climlatent.reference.darcy.solver`.

    Parameters
    ----------
    n : int
        Number of samples.
    kle_terms : int
        *s*, the retained KLE terms (``"KLE2"``: 2), from 1 to ``n_grid**2``.
    theta : {"standard", "shifted", "mixture"} or callable
        :math:`p(\theta)`, see :func:`sample_theta`; a callable is called as
        ``theta(rng, n, kle_terms)`` and must return an ``(n, kle_terms)`` array.
    seed : int
        Seed of the coefficient draws; the output depends only on the arguments other
        than ``workers``.
    length_scale : float
        Correlation length *l* of the log-permeability.
    n_grid : int
        Nodes per side (seed: 65).
    mean_log_permeability : float
        :math:`\bar\mu`, the mean of *G* (not stated in the seed; 0 as in its code).
    source_strength, source_width : float
        *r* and *w* of the source term.
    workers : int, optional
        Processes solving the samples; default the CPUs available.

    Returns
    -------
    xarray.Dataset
        On dims ``(sample, y, x)`` (float64, dimensionless units ``"1"``):
        ``pressure``, the nodal velocities ``u_x``, ``u_y`` (zero normal component on
        the walls), ``permeability``, ``log_permeability``; ``u_x_face`` on
        ``(sample, y, x_face)`` and ``u_y_face`` on ``(sample, y_face, x)``, the
        face-normal velocities whose discrete divergence is exactly ``source``
        (walls included, where they are zero); ``source`` on ``(y, x)``; ``theta`` on
        ``(sample, kle_term)``; ``kle_eigenvalue`` and ``kle_mode`` (the basis) on
        ``kle_term``. Global attributes record the setup (``kle_terms``,
        ``length_scale``, ``theta_distribution``, ``source_strength``, ``source_width``,
        ``discretisation``, ``solver``, ...) and a ``history`` line with the call.

    Raises
    ------
    InputDataError
        If an argument is out of range or of the wrong type; the message names it.

    Examples
    --------
    >>> ds = generate(4, kle_terms=2, theta="mixture", seed=1, n_grid=17, workers=1)
    >>> dict(ds.pressure.sizes)
    {'sample': 4, 'y': 17, 'x': 17}
    >>> ds.theta.shape, ds.attrs["source_strength"], ds.x.attrs["axis"]
    ((4, 2), 10.0, 'X')
    >>> bool(np.allclose(ds.theta, sample_theta("mixture", 4, 2, seed=1)))
    True
    """
    check_int("n", n, 1)
    check_int("n_grid", n_grid, 2)
    check_int("kle_terms", kle_terms, 1, high=n_grid * n_grid)
    check_int("seed", seed, 0)
    if workers is not None:
        check_int("workers", workers, 1)
    check_number("mean_log_permeability", mean_log_permeability)
    check_number("source_strength", source_strength)
    check_number("source_width", source_width, low=0.0, high=0.5)
    _check_theta(theta)
    source = source_term(n_grid, source_strength, source_width)
    basis = kle_basis(n_grid, length_scale, kle_terms)
    coefficients = _draw_theta(theta, np.random.default_rng(seed), n, kle_terms)

    log_permeability = basis.log_permeability(coefficients, mean_log_permeability)
    permeability = np.exp(log_permeability)
    pressure = solve_pressures(permeability, source, workers)
    u_x_face, u_y_face = face_velocities(permeability, pressure)
    u_x, u_y = node_velocities(u_x_face, u_y_face)

    field = ("sample", "y", "x")
    ds = xr.Dataset(
        {
            "pressure": (field, pressure),
            "u_x": (field, u_x),
            "u_y": (field, u_y),
            "u_x_face": (("sample", "y", "x_face"), u_x_face),
            "u_y_face": (("sample", "y_face", "x"), u_y_face),
            "permeability": (field, permeability),
            "log_permeability": (field, log_permeability),
            "source": (("y", "x"), source),
            "theta": (("sample", "kle_term"), coefficients),
            "kle_eigenvalue": ("kle_term", np.array(basis.eigenvalues)),
            "kle_mode": (("kle_term", "y", "x"), np.array(basis.modes)),
        },
        coords=_coords(n, kle_terms, n_grid),
    )
    for name, (units, long_name) in _FIELD_ATTRS.items():
        ds[name].attrs.update(units=units, long_name=long_name)
    call = ", ".join(
        f"{key}={value!r}"
        for key, value in {
            "n": n,
            "kle_terms": kle_terms,
            "theta": theta,
            "seed": seed,
            "length_scale": length_scale,
            "n_grid": n_grid,
            "mean_log_permeability": mean_log_permeability,
            "source_strength": source_strength,
            "source_width": source_width,
        }.items()
    )
    ds.attrs.update(
        Conventions="CF-1.8",
        title=f"Darcy flow, KLE{kle_terms} log-permeability",
        source="climlatent.reference.darcy.generate",
        references=(
            "Jacobsen C, Duraisamy K (2022): Disentangling generative factors of physical "
            "fields using variational autoencoders. Front. Phys. 10:890910, Section 3"
        ),
        history=f"climlatent {__version__}: climlatent.reference.darcy.generate({call})",
        kle_terms=int(kle_terms),
        length_scale=float(length_scale),
        covariance="exp(-||x - x'||_2 / length_scale), unit variance",
        mean_log_permeability=float(mean_log_permeability),
        kle_eigensolver=basis.method,
        theta_distribution=_describe(theta),
        source_strength=float(source_strength),
        source_width=float(source_width),
        source_term="f = +source_strength on [0, w]^2, -source_strength on [1 - w, 1]^2, 0 else",
        grid=f"{n_grid} x {n_grid} nodes on the unit square (vertex-centred)",
        discretisation=(
            "second-order conservative finite differences on the dual cells of the nodes, "
            "harmonic mean of K on the faces, zero normal velocity on the walls; nodal "
            "velocities interpolated linearly from the face velocities"
        ),
        solver=(
            "scipy.sparse.linalg.splu (SuperLU, MMD_AT_PLUS_A ordering) with the last "
            "node's pressure pinned, then shifted to zero trapezoidal mean"
        ),
        seed=int(seed),
    )
    return ds


def _coords(n: int, terms: int, n_grid: int) -> dict[str, tuple]:
    """Sample, KLE term, node and face coordinates with their attributes."""
    nodes = grid_coordinates(n_grid)
    faces = np.concatenate([[0.0], 0.5 * (nodes[:-1] + nodes[1:]), [1.0]])
    coords = {
        "sample": ("sample", np.arange(n), {"long_name": "sample"}),
        "kle_term": (
            "kle_term",
            np.arange(1, terms + 1),
            {"long_name": "KLE term, by decreasing eigenvalue"},
        ),
    }
    for axis in ("x", "y"):
        coords[axis] = (
            axis,
            nodes,
            {"units": "1", "axis": axis.upper(), "long_name": f"{axis} (unit square, nodes)"},
        )
        coords[f"{axis}_face"] = (
            f"{axis}_face",
            faces,
            {"units": "1", "long_name": f"{axis} of the dual-cell faces (walls and midpoints)"},
        )
    return coords


def _draw_theta(
    theta: str | ThetaSampler, rng: np.random.Generator, n: int, terms: int
) -> np.ndarray:
    """``(n, terms)`` coefficients from a named distribution or a callable sampler."""
    sampler = theta if callable(theta) else _SAMPLERS[theta]
    values = np.asarray(sampler(rng, n, terms), dtype=float)
    if values.shape != (n, terms) or not np.isfinite(values).all():
        raise InputDataError(
            f"theta callable must return finite values of shape ({n}, {terms}), "
            f"got shape {values.shape}"
        )
    return values


def _mixture(rng: np.random.Generator, n: int, terms: int) -> np.ndarray:
    """Equal-weight mixture of N(m, 0.25 I) over the corners m of {-1, 1}**terms."""
    corners = 2.0 * rng.integers(0, 2, size=(n, terms)) - 1.0
    return corners + 0.5 * rng.standard_normal((n, terms))


_SAMPLERS: dict[str, ThetaSampler] = {
    "standard": lambda rng, n, terms: rng.standard_normal((n, terms)),
    "shifted": lambda rng, n, terms: 1.0 + np.sqrt(0.5) * rng.standard_normal((n, terms)),
    "mixture": _mixture,
}


def _check_theta(theta: str | ThetaSampler) -> None:
    """Raise unless ``theta`` is a callable or a name of THETA_DISTRIBUTIONS."""
    if not (callable(theta) or (isinstance(theta, str) and theta in THETA_DISTRIBUTIONS)):
        raise InputDataError(
            f"theta must be one of {sorted(THETA_DISTRIBUTIONS)} or a callable "
            f"theta(rng, n, s), got {theta!r}"
        )


def _describe(distribution: str | ThetaSampler) -> str:
    """Text of a theta distribution for the Dataset attributes."""
    if callable(distribution):
        return f"callable {getattr(distribution, '__qualname__', repr(distribution))}"
    return f"{distribution}: {THETA_DISTRIBUTIONS[distribution]}"
