r"""Viscous Burgers' equation: data generator and exact solution.

Trajectories of :math:`u_t + u u_x = \nu u_{xx}` on the periodic unit interval for the
in-distribution and four out-of-distribution sets of the VAE-DLM experiment (see
:mod:`climlatent.reference.burgers.generate`), solved pseudo-spectrally with ETDRK4
(:mod:`~climlatent.reference.burgers.solver`) and checked against the Cole-Hopf
solution (:mod:`~climlatent.reference.burgers.exact`). Numpy, scipy and xarray only. The
generator's benchmark is ``python -m climlatent.benchmarks.burgers_generation``.
"""

from climlatent.reference.burgers.exact import cole_hopf
from climlatent.reference.burgers.generate import (
    DATASETS,
    DEFAULT_BOXES,
    FAMILIES,
    generate,
    generate_set,
    initial_state,
    ood_sets,
)
from climlatent.reference.burgers.solver import (
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
