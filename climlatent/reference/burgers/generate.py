r"""Viscous Burgers trajectories: initial-state families, out-of-distribution sets, Datasets.

:func:`generate` solves :math:`u_t + u u_x = \nu u_{xx}` on the periodic unit interval
:math:`x \in [0, 1)` for :math:`t \in [0, 1]` from random initial states and returns
``u(sample, t, x)`` as an :class:`xarray.Dataset`; :func:`generate_set` generates one of
the named sets of :data:`DATASETS`, the in-distribution set and the four
out-of-distribution (OOD) sets on which the seed paper (Gracyk, "Regularization in
latent spaces with high-dimensional linear geometric flows for variational
autoencoders", VAE-DLM) reports the L1 error of its Burgers experiment at
t = 0, 0.25, 0.5, 0.75, 1. The paper gives no more than that (no initial-state
family, box, viscosity or OOD definitions), so the sets below are this module's choice:

==================  ====================================================================
``in_distribution``  ``sine_cosine3``: :math:`u_0 = a \sin 2\pi x + b \cos^3 2\pi x`,
                     :math:`(a, b)` uniform in :math:`[0.5, 1.5]^2`, :math:`\nu = 0.01`.
``ood1``             shifted amplitudes: :math:`(a, b)` uniform in :math:`[1.5, 2.5]^2`
                     (disjoint from the training box; steeper fronts, earlier shocks).
``ood2``             another family, ``fourier``: :math:`u_0 = \sum_{m=1}^{3} a_m
                     \sin 2\pi m x + b_m \cos 2\pi m x`, :math:`a_m, b_m` uniform in
                     :math:`[-1, 1] / m`.
``ood3``             another viscosity: training initial states, :math:`\nu = 0.005`.
``ood4``             noisy observations: training trajectories plus i.i.d. Gaussian
                     noise of standard deviation 0.1 on every saved value (``u``);
                     ``u_clean`` keeps the noise-free values.
==================  ====================================================================

Every initial state has mean zero, so the mass :math:`\int_0^1 u\,dx` is 0 at all
times and :func:`climlatent.reference.burgers.cole_hopf` gives the exact solution.
With the same ``seed``, ``ood3`` and ``ood4`` share the initial states of
``in_distribution``; use different seeds for training and test sets.

The solver (:func:`climlatent.reference.burgers.solve_burgers`) is Fourier
pseudo-spectral (2/3 rule) with ETDRK4 time stepping, on an internal grid of ``N``
points, a multiple of ``nx``; the saved values are every ``N / nx``-th grid value,
exact point values of the spectral solution. Against Cole-Hopf the relative L1 error
of the defaults is about 1e-8 at t >= 0.25 (see the tests).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Sequence

import numpy as np
import xarray as xr

from climlatent._version import __version__
from climlatent.checks import check_int, check_number
from climlatent.errors import InputDataError
from climlatent.reference.burgers.solver import (
    auto_resolution,
    auto_step,
    solve_burgers,
    time_grid,
)

FAMILIES = ("sine_cosine3", "fourier")
DEFAULT_BOXES = {"sine_cosine3": ((0.5, 1.5), (0.5, 1.5)), "fourier": ((-1.0, 1.0), (-1.0, 1.0))}
DATASETS: dict[str, dict] = {
    "in_distribution": {"family": "sine_cosine3", "amplitude_box": ((0.5, 1.5), (0.5, 1.5))},
    "ood1": {"family": "sine_cosine3", "amplitude_box": ((1.5, 2.5), (1.5, 2.5))},
    "ood2": {"family": "fourier", "amplitude_box": ((-1.0, 1.0), (-1.0, 1.0)), "n_modes": 3},
    "ood3": {
        "family": "sine_cosine3",
        "amplitude_box": ((0.5, 1.5), (0.5, 1.5)),
        "viscosity": 0.005,
    },
    "ood4": {"family": "sine_cosine3", "amplitude_box": ((0.5, 1.5), (0.5, 1.5)), "noise": 0.1},
}
"""Name -> :func:`generate` keyword arguments of the in-distribution and OOD sets."""

_INITIAL_STATES = {
    "sine_cosine3": "u0 = a sin(2 pi x) + b cos(2 pi x)**3",
    "fourier": "u0 = sum_m a_m sin(2 pi m x) + b_m cos(2 pi m x), m = 1..n_modes",
}
_SOLVER = (
    "Fourier pseudo-spectral, 2/3-rule dealiasing, ETDRK4 time stepping "
    "(Cox & Matthews 2002; Kassam & Trefethen 2005), saved values every "
    "resolution/nx-th internal grid value"
)


def ood_sets() -> dict[str, dict]:
    """The four out-of-distribution sets: name -> :func:`generate` keyword arguments.

    Returns
    -------
    dict
        ``ood1`` .. ``ood4`` of :data:`DATASETS` (a copy), as documented in the module
        docstring.

    Examples
    --------
    >>> sorted(ood_sets())
    ['ood1', 'ood2', 'ood3', 'ood4']
    >>> ood_sets()["ood3"]["viscosity"]
    0.005
    """
    return {
        name: copy.deepcopy(kwargs)
        for name, kwargs in DATASETS.items()
        if name != "in_distribution"
    }


def generate_set(name: str, n: int, seed: int = 0, **overrides) -> xr.Dataset:
    """Generate ``n`` trajectories of the named set of :data:`DATASETS`.

    Parameters
    ----------
    name : str
        ``in_distribution``, ``ood1``, ``ood2``, ``ood3`` or ``ood4``.
    n : int
        Number of trajectories.
    seed : int
        Seed of :func:`generate`.
    **overrides
        Other :func:`generate` arguments (``nx``, ``nt``, ...), overriding the set's.

    Returns
    -------
    xarray.Dataset
        As :func:`generate`, with the attribute ``dataset`` = ``name``.

    Raises
    ------
    InputDataError
        If ``name`` is not a set of :data:`DATASETS`, or as :func:`generate`.

    Examples
    --------
    >>> ds = generate_set("ood2", n=2, nx=32, nt=4)
    >>> ds.attrs["dataset"], ds.attrs["family"], dict(ds.a.sizes)
    ('ood2', 'fourier', {'sample': 2, 'mode': 3})
    """
    if name not in DATASETS:
        raise InputDataError(f"name must be one of {sorted(DATASETS)}, got {name!r}")
    ds = generate(n, **{**copy.deepcopy(DATASETS[name]), "seed": seed, **overrides})
    ds.attrs["dataset"] = name
    return ds


def initial_state(family: str, a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    r"""Initial states of a family at points ``x``: one row per sample.

    Parameters
    ----------
    family : str
        ``sine_cosine3`` (:math:`a \sin 2\pi x + b \cos^3 2\pi x`, ``a`` and ``b`` of
        shape ``(n,)``) or ``fourier`` (:math:`\sum_m a_m \sin 2\pi m x + b_m
        \cos 2\pi m x`, ``a`` and ``b`` of shape ``(n, n_modes)``, mode ``m = 1, 2, ...``).
    a, b : numpy.ndarray
        Coefficients.
    x : numpy.ndarray
        Points, shape ``(nx,)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, nx)``.

    Raises
    ------
    InputDataError
        If the family is unknown.

    Examples
    --------
    >>> initial_state("sine_cosine3", np.array([1.0]), np.array([2.0]), np.array([0.0, 0.25]))
    array([[2., 1.]])
    >>> initial_state("fourier", np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]), np.array([0.0]))
    array([[1.]])
    """
    phase = 2 * np.pi * np.asarray(x, dtype=float)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if family == "sine_cosine3":
        return a[:, None] * np.sin(phase) + b[:, None] * np.cos(phase) ** 3
    if family == "fourier":
        m = np.arange(1, a.shape[-1] + 1)[:, None]
        return a @ np.sin(m * phase) + b @ np.cos(m * phase)
    raise InputDataError(f"family must be one of {FAMILIES}, got {family!r}")


def generate(
    n: int,
    family: str = "sine_cosine3",
    viscosity: float = 0.01,
    nx: int = 100,
    nt: int = 100,
    t_final: float = 1.0,
    amplitude_box: Sequence[Sequence[float]] | None = None,
    noise: float = 0.0,
    seed: int = 0,
    *,
    n_modes: int = 3,
    resolution: int | None = None,
    max_step: float | None = None,
    workers: int = 1,
) -> xr.Dataset:
    r"""Generate ``n`` viscous Burgers trajectories from random initial states.

    Solves :math:`u_t + u u_x = \nu u_{xx}` on the periodic :math:`x \in [0, 1)` (all
    quantities nondimensional, units ``"1"``).

    Parameters
    ----------
    n : int
        Number of trajectories (samples).
    family : str
        Initial-state family: ``sine_cosine3``, :math:`u_0 = a \sin 2\pi x + b
        \cos^3 2\pi x`, or ``fourier``, :math:`u_0 = \sum_{m=1}^{M} a_m \sin 2\pi m x
        + b_m \cos 2\pi m x` with ``M = n_modes``.
    viscosity : float
        :math:`\nu > 0`.
    nx : int
        Saved grid points :math:`x_j = j / n_x`, ``j = 0, ..., nx - 1``; at least 4.
    nt : int
        Saved intervals: ``nt + 1`` saved times :math:`t_k = k\,t_{final} / n_t`,
        ``k = 0, ..., nt``, both ends included. The default saves every 0.01, and
        t = 0, 0.25, 0.5, 0.75, 1 exactly.
    t_final : float
        Last saved time, > 0.
    amplitude_box : sequence of two (low, high) pairs, optional
        ``((a_low, a_high), (b_low, b_high))``: ``a`` and ``b`` are independent and
        uniform in these ranges (for ``fourier`` the mode-``m`` coefficients are
        uniform in these ranges divided by ``m``). Default :data:`DEFAULT_BOXES`:
        :math:`[0.5, 1.5]^2` for ``sine_cosine3``, :math:`[-1, 1]^2` for ``fourier``.
    noise : float
        Standard deviation of i.i.d. Gaussian noise added to every saved value of
        ``u`` (``t = 0`` included), >= 0; the noise-free values are then kept as
        ``u_clean``.
    seed : int
        ``SeedSequence(seed).spawn(2)``: child 0 draws the coefficients, one row of
        uniforms per sample (the coefficients of sample ``i`` do not depend on ``n``;
        its values do, by about 1e-8, through the resolution and step chosen for the
        batch's largest :math:`|u_0|`), child 1 the noise. The coefficients do not
        depend on ``noise`` or ``viscosity``.
    n_modes : int
        Modes of the ``fourier`` family.
    resolution : int, optional
        Internal grid points ``N``, a multiple of ``nx``, even, with ``N / 3`` above
        the highest initial mode; default :func:`~.solver.auto_resolution` (at
        least :math:`2 \max|u_0| / \nu`, where the last kept mode of the sharpest
        possible front is about :math:`2 \times 10^{-6}` of its jump).
    max_step : float, optional
        Largest internal time step, default :func:`~.solver.auto_step`
        (:math:`\min(0.002, 0.5 \nu / \max|u_0|^2)`).
    workers : int
        Threads of the solver.

    Returns
    -------
    xarray.Dataset
        ``u(sample, t, x)`` (and ``u_clean`` when ``noise > 0``); the coefficients
        ``a``, ``b`` on ``sample`` (``sine_cosine3``) or on ``(sample, mode)``
        (``fourier``); ``viscosity`` and ``noise`` on ``sample``. Coordinates ``sample``,
        ``t`` and ``x`` (units ``"1"``). Attributes: ``family``, ``equation``,
        ``initial_state``, ``solver``, ``resolution``, ``time_step``, ``viscosity``,
        ``noise``, ``t_final``, ``seed``, ``amplitude_box`` and
        ``generator_parameters`` (JSON: ``generate(**json.loads(...))`` regenerates
        the Dataset).

    Raises
    ------
    InputDataError
        If an argument is out of range or of the wrong type, naming it.

    Examples
    --------
    >>> ds = generate(n=3, nx=64, nt=4, seed=1)
    >>> dict(ds.u.sizes)
    {'sample': 3, 't': 5, 'x': 64}
    >>> ds.t.values.tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    >>> ds.x.attrs["units"], ds.attrs["family"], float(ds.viscosity[0])
    ('1', 'sine_cosine3', 0.01)
    >>> bool(((ds.a >= 0.5) & (ds.a <= 1.5)).all())
    True
    >>> float(abs(ds.u.mean("x")).max()) < 1e-6  # mean zero, conserved
    True
    """
    params = _validated(locals())
    box = params["amplitude_box"]
    rng_coefficients, rng_noise = (
        np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(2)
    )
    if family == "sine_cosine3":
        uniform = rng_coefficients.random((n, 2))
        a, b = (lo + (hi - lo) * uniform[:, i] for i, (lo, hi) in enumerate(box))
        highest_mode = 3
    else:
        uniform = rng_coefficients.random((n, 2, n_modes))
        scale = 1.0 / np.arange(1, n_modes + 1)
        a, b = ((lo + (hi - lo) * uniform[:, i]) * scale for i, (lo, hi) in enumerate(box))
        highest_mode = n_modes

    probe = 3 * max(nx, 8 * highest_mode)  # fine enough to bound max|u0|
    amplitude = float(np.abs(initial_state(family, a, b, np.arange(probe) / probe)).max())
    if resolution is None:
        resolution = auto_resolution(nx, amplitude, viscosity, highest_mode)
    elif resolution % nx or resolution % 2 or resolution // 3 <= highest_mode:
        raise InputDataError(
            f"resolution={resolution} must be an even multiple of nx={nx} with "
            f"resolution // 3 above the highest initial mode {highest_mode}"
        )
    if max_step is None:
        max_step = auto_step(amplitude, viscosity)
    time_step, _ = time_grid(t_final, nt, max_step)
    fine_x = np.arange(resolution) / resolution
    u0 = initial_state(family, a, b, fine_x)
    u_clean = solve_burgers(
        u0,
        viscosity,
        t_final,
        nt,
        stride=resolution // nx,
        max_step=max_step,
        workers=workers,
    )
    t = np.arange(nt + 1) * t_final / nt
    x = np.arange(nx) / nx
    coords = {
        "sample": ("sample", np.arange(n), {"long_name": "trajectory index"}),
        "t": ("t", t, {"units": "1", "long_name": "time (nondimensional)", "axis": "T"}),
        "x": (
            "x",
            x,
            {"units": "1", "long_name": "position on the periodic unit interval", "axis": "X"},
        ),
    }
    dims = ("sample", "t", "x")
    u_attrs = {"units": "1", "long_name": "velocity u of viscous Burgers (nondimensional)"}
    data = {}
    if noise > 0:
        observed = u_clean + noise * rng_noise.standard_normal(u_clean.shape)
        data["u"] = (dims, observed, {**u_attrs, "comment": f"plus N(0, {noise}**2) noise"})
        data["u_clean"] = (dims, u_clean, {**u_attrs, "comment": "noise-free"})
    else:
        data["u"] = (dims, u_clean, u_attrs)
    if family == "sine_cosine3":
        coefficient_dims = ("sample",)
        long_names = ("amplitude a of sin(2 pi x)", "amplitude b of cos(2 pi x)**3")
    else:
        coefficient_dims = ("sample", "mode")
        coords["mode"] = ("mode", np.arange(1, n_modes + 1), {"long_name": "Fourier mode m"})
        long_names = ("amplitude a_m of sin(2 pi m x)", "amplitude b_m of cos(2 pi m x)")
    for name, values, long_name in zip(("a", "b"), (a, b), long_names, strict=True):
        data[name] = (coefficient_dims, values, {"units": "1", "long_name": long_name})
    data["viscosity"] = ("sample", np.full(n, float(viscosity)), {"units": "1", "long_name": "nu"})
    data["noise"] = (
        "sample",
        np.full(n, float(noise)),
        {"units": "1", "long_name": "standard deviation of the observation noise on u"},
    )
    attrs = {
        "title": f"Viscous Burgers trajectories, {family} initial states",
        "source": "climlatent.reference.burgers.generate",
        "history": f"climlatent {__version__}: generate(**generator_parameters)",
        "equation": "u_t + u u_x = nu u_xx, x in [0, 1) periodic",
        "family": family,
        "initial_state": _INITIAL_STATES[family],
        "solver": _SOLVER,
        "resolution": int(resolution),
        "time_step": float(time_step),
        "viscosity": float(viscosity),
        "noise": float(noise),
        "t_final": float(t_final),
        "seed": int(seed),
        "amplitude_box": json.dumps(box),
        "generator_parameters": json.dumps({**params, "resolution": int(resolution)}),
    }
    if family == "fourier":
        attrs["n_modes"] = int(n_modes)
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _validated(arguments: dict) -> dict:
    """Check :func:`generate`'s arguments, naming the culprit; return them JSON-ready."""
    params = {key: value for key, value in arguments.items() if key != "workers"}
    least = {"n": 1, "nx": 4, "nt": 1, "seed": 0, "n_modes": 1, "resolution": 4, "workers": 1}
    for name, minimum in least.items():
        value = arguments[name]
        if name == "resolution" and value is None:
            continue
        check_int(name, value, minimum)
        if name in params:
            params[name] = int(value)
    for name, positive in (("viscosity", True), ("t_final", True), ("noise", False)):
        value = arguments[name]
        check_number(name, value)
        if value < 0 or (positive and value == 0):
            kind = "positive" if positive else "non-negative"
            raise InputDataError(f"{name} must be {kind}, got {value!r}")
        params[name] = float(value)
    if arguments["max_step"] is not None:
        value = arguments["max_step"]
        check_number("max_step", value, low=0)
        params["max_step"] = float(value)
    family = arguments["family"]
    if family not in FAMILIES:
        raise InputDataError(f"family must be one of {FAMILIES}, got {family!r}")
    box = arguments["amplitude_box"]
    if box is None:
        box = DEFAULT_BOXES[family]
    try:
        box = [[float(value) for value in pair] for pair in box]
    except (TypeError, ValueError):
        box = None
    if (
        box is None
        or len(box) != 2
        or any(len(pair) != 2 for pair in box)
        or not all(math.isfinite(v) for pair in box for v in pair)
        or any(lo > hi for lo, hi in box)
    ):
        raise InputDataError(
            "amplitude_box must be ((a_low, a_high), (b_low, b_high)) with finite "
            f"low <= high, got {arguments['amplitude_box']!r}"
        )
    params["amplitude_box"] = box
    return params
