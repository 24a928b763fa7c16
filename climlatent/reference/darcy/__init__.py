"""Darcy flow through a random porous medium: the KLE datasets of Jacobsen & Duraisamy (2022).

:func:`generate` returns pressure and velocity fields for log-permeabilities drawn from a
truncated Karhunen-Loeve expansion (:func:`kle_basis`), solved by sparse second-order
finite differences (:mod:`~climlatent.reference.darcy.solver`; :func:`solve_dense` is the
dense reference of the benchmark ``python -m climlatent.benchmarks.darcy_generation``).

Examples
--------
>>> from climlatent.reference import darcy
>>> ds = darcy.generate(2, n_grid=17, workers=1)
>>> sorted(ds.data_vars)[:4]
['kle_eigenvalue', 'kle_mode', 'log_permeability', 'permeability']
"""

from climlatent.reference.darcy.generate import (
    SOURCE_STRENGTH,
    SOURCE_WIDTH,
    THETA_DISTRIBUTIONS,
    generate,
    sample_theta,
    source_term,
)
from climlatent.reference.darcy.kle import (
    LENGTH_SCALE,
    N_GRID,
    KLEBasis,
    covariance_matrix,
    grid_coordinates,
    kle_basis,
)
from climlatent.reference.darcy.solver import (
    available_cpus,
    face_velocities,
    node_velocities,
    solve_dense,
    solve_pressure,
    solve_pressures,
    stiffness_matrix,
)

__all__ = [
    "LENGTH_SCALE",
    "N_GRID",
    "SOURCE_STRENGTH",
    "SOURCE_WIDTH",
    "THETA_DISTRIBUTIONS",
    "KLEBasis",
    "available_cpus",
    "covariance_matrix",
    "face_velocities",
    "generate",
    "grid_coordinates",
    "kle_basis",
    "node_velocities",
    "sample_theta",
    "solve_dense",
    "solve_pressure",
    "solve_pressures",
    "source_term",
    "stiffness_matrix",
]
