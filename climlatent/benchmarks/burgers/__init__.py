r"""Viscous Burgers' equation: data generator, exact solution and generation benchmark.

Trajectories of :math:`u_t + u u_x = \nu u_{xx}` on the periodic unit interval for the
in-distribution and four out-of-distribution sets of the VAE-DLM experiment (see
:mod:`climlatent.benchmarks.burgers.generate`), solved pseudo-spectrally with ETDRK4
(:mod:`~climlatent.benchmarks.burgers.solver`) and checked against the Cole-Hopf
solution (:mod:`~climlatent.benchmarks.burgers.exact`). Numpy, scipy and xarray only.
"""

from climlatent.benchmarks.burgers.exact import cole_hopf
from climlatent.benchmarks.burgers.generate import (
    DATASETS,
    DEFAULT_BOXES,
    FAMILIES,
    generate,
    generate_set,
    initial_state,
    ood_sets,
)
from climlatent.benchmarks.burgers.solver import (
    auto_resolution,
    auto_step,
    etdrk4_coefficients,
    solve_burgers,
    time_grid,
)

__all__ = [
    "DATASETS",
    "DEFAULT_BOXES",
    "FAMILIES",
    "auto_resolution",
    "auto_step",
    "cole_hopf",
    "etdrk4_coefficients",
    "generate",
    "generate_set",
    "initial_state",
    "ood_sets",
    "solve_burgers",
    "time_grid",
]
