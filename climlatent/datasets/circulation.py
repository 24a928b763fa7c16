"""Synthetic circulation-driven ensemble with known truth (see :func:`synthetic_circulation`)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter
from scipy.signal import lfilter

from climlatent._version import __version__
from climlatent.checks import KNOWN_CALENDARS
from climlatent.errors import InputDataError
from climlatent.grid import regular_grid

CALENDARS = tuple(sorted(KNOWN_CALENDARS))

# Fixed constants of the generative model; their roles are documented in
# ``synthetic_circulation``'s docstring, which is the reference.
_LAT_RANGE = (30.0, 70.0)
_LON_RANGE = (-20.0, 40.0)
_P0 = 101325.0  # Pa
_SLP_AMPLITUDE = 1000.0  # Pa, RMS of the leading pattern
_SLP_DECAY = 0.7  # amplitude ratio of successive patterns
_PSL_NOISE_SMOOTHING = 1.0  # grid cells, Gaussian kernel sigma
_TAS_NOISE = 1.0  # K
_TAS_CIRCULATION = 1.5  # K per unit factor
_PR_CIRCULATION = 0.3  # log-rate per unit factor
_PR_QUADRATIC = 0.1  # log-rate per unit (f_1**2 - 1)

_VARIABLE_ATTRS = {
    "sftlf": {
        "units": "%",
        "standard_name": "land_area_fraction",
        "long_name": "percentage of the grid cell occupied by land",
    },
    "circulation_factor": {"units": "1", "long_name": "circulation factor (AR(1), unit variance)"},
    "slp_mode": {"units": "Pa", "long_name": "sea-level pressure pattern of a circulation mode"},
    "forced_trend": {"units": "K", "long_name": "forced near-surface warming since the start"},
    "psl": {
        "units": "Pa",
        "standard_name": "air_pressure_at_mean_sea_level",
        "long_name": "sea-level pressure",
        "cell_methods": "time: mean",
    },
    "tas": {
        "units": "K",
        "standard_name": "air_temperature",
        "long_name": "near-surface air temperature",
        "cell_methods": "time: mean",
    },
    "tas_circulation": {
        "units": "K",
        "long_name": "circulation-induced part of near-surface air temperature",
    },
    "pr": {
        "units": "kg m-2 s-1",
        "standard_name": "precipitation_flux",
        "long_name": "precipitation",
        "cell_methods": "time: mean",
    },
    "pr_noise_free": {
        "units": "kg m-2 s-1",
        "long_name": "expected precipitation given circulation and forcing",
    },
}


def synthetic_circulation(
    n_members: int = 2,
    n_years: int = 20,
    n_lat: int = 16,
    n_lon: int = 24,
    n_modes: int = 3,
    calendar: str = "noleap",
    start: str = "1981-01-01",
    freq: str = "D",
    seed: int = 0,
    ar_coefficients: Sequence[float] | None = None,
    warming_per_decade: float = 0.3,
    cc_scaling: float = 0.07,
    pr_mean: float = 2.9e-5,
    pr_noise_shape: float = 0.7,
    psl_noise: float = 100.0,
    mask_ocean: bool = True,
) -> xr.Dataset:
    r"""Generate a circulation-driven climate ensemble with known truth.

    Sea-level pressure is a sum of ``n_modes`` fixed spatial patterns weighted by
    AR(1) circulation factors; temperature and precipitation respond to those
    factors and to a forced warming through the equations below, so emulators
    and dynamical adjustment can be scored against the exact answer.

    Parameters
    ----------
    n_members, n_years, n_lat, n_lon, n_modes : int
        Ensemble size, length in years, grid size and number of circulation
        modes (``n_lat, n_lon >= 2``, ``n_modes < n_lat * n_lon``).
    calendar : str
        CF calendar of the ``cftime`` time axis, one of :data:`CALENDARS`.
    start, freq : str
        First time step and pandas-style frequency; the axis covers
        ``n_years`` whole years from ``start``.
    seed : int
        Seed of the :class:`numpy.random.Generator`. Member ``m`` draws from
        ``SeedSequence(seed).spawn(n_members)[m]``, so it does not change when
        ``n_members`` grows.
    ar_coefficients : sequence of float, optional
        Lag-one autocorrelation :math:`\phi_k` of each factor, in (-1, 1).
        Default :math:`\phi_k = 0.8^k`.
    warming_per_decade : float
        Forced warming rate *w* in K per decade.
    cc_scaling : float
        Thermodynamic precipitation scaling *c* in 1/K (Clausius-Clapeyron ~0.07).
    pr_mean : float
        Domain-mean base precipitation rate :math:`\bar p` in kg m-2 s-1
        (2.9e-5 is about 2.5 mm/day).
    pr_noise_shape : float
        Shape :math:`\kappa` of the multiplicative Gamma noise of precipitation;
        smaller means more skewed, heavier-tailed daily rain.
    psl_noise : float
        Standard deviation :math:`\sigma_p` of the smooth sea-level pressure noise, Pa.
    mask_ocean : bool
        Set ``pr`` and ``pr_noise_free`` to NaN where ``sftlf < 50``, like gridded
        land observations; ``psl`` and ``tas`` are always complete.

    Returns
    -------
    xarray.Dataset
        Dimensions ``member`` (labels ``r1i1p1f1``...), ``time`` (cftime),
        ``lat``, ``lon`` (with ``lat_bnds``/``lon_bnds``), ``mode`` (1..K) and
        ``bnds``. Variables, with *t* time, *x* grid cell, *m* member:

        ``sftlf`` (%)
            :math:`L(x) = 100 / (1 + e^{(r - 1) / 0.1})`,
            :math:`r^2 = ((\varphi - 50) / 18)^2 + ((\lambda - 25) / 30)^2`,
            a smooth continent on the 30N-70N, 20W-40E domain (grid-cell centres
            :math:`\varphi, \lambda`; cell edges evenly spaced).
        ``circulation_factor`` (1), dims (member, time, mode)
            :math:`f_k(0) \sim N(0, 1)`,
            :math:`f_k(t) = \phi_k f_k(t-1) + \sqrt{1 - \phi_k^2}\,\epsilon_k(t)`,
            :math:`\epsilon \sim N(0, 1)` i.i.d.: stationary, unit variance.
        ``slp_mode`` (Pa), dims (mode, lat, lon)
            :math:`A_k \hat P_k(x)`, :math:`A_k = 1000 \cdot 0.7^{k-1}` Pa,
            :math:`\hat P_k = \sqrt{c_p c_q} \cos(\pi p u) \cos(\pi q v)`,
            with :math:`u = (i + 1/2) / n_{lat}`, :math:`v = (j + 1/2) / n_{lon}`
            (south to north, west to east), :math:`c_0 = 1`, :math:`c_{n>0} = 2`
            and :math:`(p, q) \ne (0, 0)` ordered by :math:`p + q`, then *q*:
            (1, 0) north-south dipole, (0, 1) east-west dipole, (2, 0) ... The
            :math:`\hat P_k` are exactly orthonormal under the grid mean
            (discrete cosine basis) and have zero domain mean.
        ``psl`` (Pa)
            :math:`101325 + \sum_k A_k \hat P_k(x) f_k(t) + \sigma_p \eta(t, x)`,
            :math:`\eta` white Gaussian noise smoothed in (lat, lon) by a Gaussian
            kernel of 1 grid cell and rescaled to unit standard deviation per member.
        ``forced_trend`` (K), dims (time)
            :math:`T_f(t) = w\,\tau(t) / 10`, :math:`\tau` the years elapsed since
            ``start`` (calendar year fraction from the day of year).
        ``tas_circulation`` (K)
            :math:`T_c = 1.5 \sum_k \hat P_k(x) f_k(t)`.
        ``tas`` (K)
            :math:`293.15 - 0.5 (\varphi - 30) - (4 + 8 L / 100) \cos(2\pi (d - 1) / D)
            + T_f(t) + T_c + 1.0\,\xi`, with *d* the day of year, *D* the days in
            that year and :math:`\xi \sim N(0, 1)` i.i.d.
        ``pr_noise_free`` (kg m-2 s-1)
            :math:`\mu = B(x) \exp(-0.3 \sum_k \hat P_k f_k
            + 0.1\,u\,(f_1^2 - 1) + c\,T_f)`,
            :math:`B = \bar p\,(1.3 - 0.6\,v)`: rain falls with low pressure, the
            north reacts to strong circulation of either sign of mode 1, and every
            kelvin of forced warming adds a fraction *c*. It is the conditional
            mean of ``pr`` and thus the best achievable emulation.
        ``pr`` (kg m-2 s-1)
            :math:`\mu\,\gamma`, :math:`\gamma \sim \mathrm{Gamma}(\kappa, 1/\kappa)`
            i.i.d. (mean 1): positive over land, NaN over sea when ``mask_ocean``.

        Global attributes hold CF ``Conventions``, ``title``, ``source``,
        ``history`` and ``synthetic_parameters``, the JSON of the resolved
        arguments (``synthetic_circulation(**json.loads(...))`` regenerates it).

    Raises
    ------
    InputDataError
        If a size is not a positive integer, the seed is not a non-negative
        integer, the calendar is unknown, the start or frequency cannot be parsed, or a
        coefficient is out of range.

    Examples
    --------
    >>> from climlatent.datasets import synthetic_circulation
    >>> ds = synthetic_circulation(n_years=2, n_lat=8, n_lon=12, seed=1)
    >>> dict(ds.psl.sizes)
    {'member': 2, 'time': 730, 'lat': 8, 'lon': 12}
    >>> ds.time.dt.calendar
    'noleap'
    >>> bool((ds.pr.isnull() == (ds.sftlf < 50)).all())  # NaN exactly over sea
    True
    """
    params = _validated_parameters(locals())
    time = _time_axis(calendar, start, freq, n_years)
    grid = _grid(n_lat, n_lon)
    land = _land_fraction(grid.lat.values[:, None], grid.lon.values[None, :])
    patterns = _orthonormal_patterns(grid.u.values, grid.v.values, n_modes)  # (mode, lat, lon)
    u, v = np.meshgrid(grid.u, grid.v, indexing="ij")
    amplitude = _SLP_AMPLITUDE * _SLP_DECAY ** np.arange(n_modes)
    phi = np.asarray(params["ar_coefficients"])

    day_of_year = time.dt.dayofyear.values
    days_in_year = time.dt.days_in_year.values
    decimal_year = time.dt.year.values + (day_of_year - 1) / days_in_year
    trend = warming_per_decade * (decimal_year - decimal_year[0]) / 10.0
    season = np.cos(2 * np.pi * (day_of_year - 1) / days_in_year)
    tas_base = (293.15 - 0.5 * (grid.lat.values[:, None] - 30.0)) - np.multiply.outer(
        season, 4.0 + 8.0 * land / 100.0
    )
    base_rate = pr_mean * (1.3 - 0.6 * v)

    rngs = [np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(n_members)]
    factor = np.stack([_ar1(rng, phi, time.size) for rng in rngs])  # (member, time, mode)
    shape = (time.size, *land.shape)

    def draw(distribution: str, *args: float) -> np.ndarray:
        return np.stack([getattr(rng, distribution)(*args, size=shape) for rng in rngs])

    circulation = np.einsum("mtk,kyx->mtyx", factor, patterns)
    noise = gaussian_filter(
        draw("standard_normal"),
        mode="nearest",
        sigma=(0, 0, _PSL_NOISE_SMOOTHING, _PSL_NOISE_SMOOTHING),
    )
    noise /= noise.std(axis=(1, 2, 3), keepdims=True)
    psl = _P0 + np.einsum("mtk,kyx->mtyx", factor * amplitude, patterns) + psl_noise * noise
    tas_circulation = _TAS_CIRCULATION * circulation
    tas = tas_base + trend[:, None, None] + tas_circulation + _TAS_NOISE * draw("standard_normal")
    log_rate = (
        -_PR_CIRCULATION * circulation
        + _PR_QUADRATIC * u * (factor[..., :1, None] ** 2 - 1.0)
        + cc_scaling * trend[:, None, None]
    )
    pr_noise_free = base_rate * np.exp(log_rate)
    pr = pr_noise_free * draw("gamma", pr_noise_shape, 1.0 / pr_noise_shape)
    fields = {
        "psl": psl,
        "tas_circulation": tas_circulation,
        "tas": tas,
        "pr_noise_free": pr_noise_free,
        "pr": pr,
    }
    fields = {name: field.astype(np.float32) for name, field in fields.items()}
    if mask_ocean:
        for name in ("pr_noise_free", "pr"):
            fields[name][..., land < 50.0] = np.nan

    space = ("member", "time", "lat", "lon")
    ds = xr.Dataset(
        {
            "sftlf": (("lat", "lon"), land),
            "circulation_factor": (("member", "time", "mode"), factor),
            "slp_mode": (("mode", "lat", "lon"), amplitude[:, None, None] * patterns),
            "forced_trend": ("time", trend),
            **{name: (space, field) for name, field in fields.items()},
        },
        coords={
            "member": (
                "member",
                [f"r{m + 1}i1p1f1" for m in range(n_members)],
                {"long_name": "ensemble member"},
            ),
            "time": time,
            "lat": grid.lat,
            "lon": grid.lon,
            "lat_bnds": grid.lat_bnds,
            "lon_bnds": grid.lon_bnds,
            "mode": ("mode", np.arange(1, n_modes + 1), {"long_name": "circulation mode"}),
        },
    )
    for name, attrs in _VARIABLE_ATTRS.items():
        ds[name].attrs.update(attrs)
    call = ", ".join(f"{key}={value!r}" for key, value in params.items())
    ds.attrs.update(
        Conventions="CF-1.8",
        title="Synthetic circulation-driven climate ensemble with known truth",
        source="climlatent synthetic_circulation",
        history=f"climlatent {__version__}: synthetic_circulation({call})",
        synthetic_parameters=json.dumps(params),
    )
    return ds


def _validated_parameters(arguments: dict) -> dict:
    """Check the generator's arguments; return them JSON-ready with defaults resolved."""
    params = dict(arguments)
    for name in ("n_members", "n_years", "n_lat", "n_lon", "n_modes", "seed"):
        value, least = params[name], 0 if name == "seed" else 1
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            kind = "non-negative" if least == 0 else "positive"
            raise InputDataError(f"{name} must be a {kind} integer, got {value!r}")
        params[name] = int(value)
    if params["n_lat"] < 2 or params["n_lon"] < 2:
        raise InputDataError(
            f"n_lat and n_lon must be >= 2, got {params['n_lat']}, {params['n_lon']}"
        )
    if params["n_modes"] >= params["n_lat"] * params["n_lon"]:
        raise InputDataError(
            f"n_modes={params['n_modes']} must be smaller than the number of "
            "grid cells n_lat * n_lon"
        )
    if params["calendar"] not in CALENDARS:
        raise InputDataError(f"unknown calendar {params['calendar']!r}; use one of {CALENDARS}")
    if params["ar_coefficients"] is None:
        params["ar_coefficients"] = (0.8 ** np.arange(1, params["n_modes"] + 1)).tolist()
    phi = [float(value) for value in np.atleast_1d(params["ar_coefficients"])]
    if len(phi) != params["n_modes"] or not all(-1.0 < value < 1.0 for value in phi):
        raise InputDataError(
            f"ar_coefficients must hold n_modes={params['n_modes']} values in "
            f"(-1, 1), got {params['ar_coefficients']!r}"
        )
    params["ar_coefficients"] = phi
    for name in ("pr_mean", "pr_noise_shape"):
        if not params[name] > 0:
            raise InputDataError(f"{name} must be positive, got {params[name]!r}")
    if not params["psl_noise"] >= 0:
        raise InputDataError(f"psl_noise must be non-negative, got {params['psl_noise']!r}")
    for name in ("warming_per_decade", "cc_scaling", "pr_mean", "pr_noise_shape", "psl_noise"):
        params[name] = float(params[name])
    params["mask_ocean"] = bool(params["mask_ocean"])
    return params


def _time_axis(calendar: str, start: str, freq: str, n_years: int) -> xr.DataArray:
    """CF time coordinate covering ``n_years`` whole years from ``start``."""
    try:
        first = xr.date_range(start, periods=1, calendar=calendar, use_cftime=True)[0]
        index = xr.date_range(
            first,
            first.replace(year=first.year + n_years),
            freq=freq,
            calendar=calendar,
            use_cftime=True,
            inclusive="left",
        )
    except (TypeError, ValueError) as error:
        raise InputDataError(
            f"cannot build a {calendar!r} time axis from start={start!r}, freq={freq!r}: {error}"
        ) from error
    time = xr.DataArray(
        index,
        dims="time",
        name="time",
        attrs={"standard_name": "time", "long_name": "time", "axis": "T"},
    )
    time.encoding.update(units=f"days since {first.isoformat(sep=' ')}", calendar=calendar)
    return time


def _grid(n_lat: int, n_lon: int) -> xr.Dataset:
    """Regular cell-centred lat/lon grid of the domain, with CF bounds and fractions u, v."""
    grid = regular_grid(np.linspace(*_LAT_RANGE, n_lat + 1), np.linspace(*_LON_RANGE, n_lon + 1))
    grid["u"] = ("lat", (np.arange(n_lat) + 0.5) / n_lat)
    grid["v"] = ("lon", (np.arange(n_lon) + 0.5) / n_lon)
    return grid


def _land_fraction(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Smooth elliptical continent, land area fraction in percent."""
    radius = np.hypot((lat - 50.0) / 18.0, (lon - 25.0) / 30.0)
    return 100.0 / (1.0 + np.exp((radius - 1.0) / 0.1))


def _orthonormal_patterns(u: np.ndarray, v: np.ndarray, n_modes: int) -> np.ndarray:
    """Discrete cosine patterns on cell-centre fractions u, v: orthonormal under the grid mean."""
    wavenumbers = sorted(
        ((p, q) for p in range(u.size) for q in range(v.size) if p + q > 0),
        key=lambda pq: (pq[0] + pq[1], pq[1]),
    )[:n_modes]
    return np.stack(
        [
            np.sqrt((2.0 if p else 1.0) * (2.0 if q else 1.0))
            * np.outer(np.cos(np.pi * p * u), np.cos(np.pi * q * v))
            for p, q in wavenumbers
        ]
    )


def _ar1(rng: np.random.Generator, phi: np.ndarray, n_time: int) -> np.ndarray:
    """Stationary unit-variance AR(1) series, one column per coefficient."""
    factor = np.empty((n_time, phi.size))
    factor[0] = rng.standard_normal(phi.size)
    innovations = rng.standard_normal((n_time - 1, phi.size))
    for k, coefficient in enumerate(phi):
        factor[1:, k], _ = lfilter(
            [np.sqrt(1.0 - coefficient**2)],
            [1.0, -coefficient],
            innovations[:, k],
            zi=[coefficient * factor[0, k]],
        )
    return factor
