"""Synthetic ocean chlorophyll with known growth laws (see :func:`synthetic_biogeochem`)."""

from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter

from climlatent._version import __version__
from climlatent.datasets.circulation import CALENDARS, _ar1, _time_axis
from climlatent.errors import InputDataError
from climlatent.grid import cell_area, regular_grid

# Fixed constants of the generative model; their roles are documented in
# ``synthetic_biogeochem``'s docstring, which is the reference.
_LAT_RANGE = (20.0, 60.0)  # degrees_north, the subtropical to subpolar North Atlantic
_LON_RANGE = (-60.0, 0.0)  # degrees_east
_LAND_CENTRE = (45.0, -3.0)  # degrees north, east
_LAND_RADII = (9.0, 8.0)  # degrees of latitude, longitude
_SOLAR_CONSTANT = 1361.0  # W m-2
_OBLIQUITY = 23.44  # degrees
_TRANSMISSIVITY = 0.6
_SST_PEAK = 0.65  # year fraction of the warmest SST (late August)
_SST_PERSISTENCE = 0.7  # lag-one autocorrelation of SST anomalies
_FRONT_LAT = 40.0  # degrees_north
_FRONT_MEANDER = 3.0  # degrees of latitude
_FRONT_WAVELENGTH = 20.0  # degrees of longitude
_FRONT_WIDTH = 2.0  # degrees of latitude
_FRONT_AMPLITUDE = 0.8  # log-chlorophyll across the front
_EDDY_AMPLITUDE = 0.5  # log-chlorophyll, standard deviation
_EDDY_SMOOTHING = 1.0  # fine grid cells, Gaussian kernel sigma

_FIELD_ATTRS = {
    "tos": {
        "units": "K",
        "standard_name": "sea_surface_temperature",
        "long_name": "sea surface temperature",
    },
    "rsds": {
        "units": "W m-2",
        "standard_name": "surface_downwelling_shortwave_flux_in_air",
        "long_name": "surface downwelling shortwave radiation",
    },
    "chl": {
        "units": "kg m-3",
        "standard_name": "mass_concentration_of_chlorophyll_a_in_sea_water",
        "long_name": "surface chlorophyll-a concentration",
    },
}
_TRUTH_ATTRS = {  # units, long_name
    "a": ("d-1", "growth rate at 0 degC of the temperature law a exp(b T)"),
    "b": ("degC-1", "temperature sensitivity of growth"),
    "c": ("m2 W-1", "linear coefficient of the light law c R + d R2"),
    "d": ("m4 W-2", "quadratic coefficient of the light law c R + d R2"),
    "chl_scale": ("kg m-3 d", "chlorophyll per unit growth rate"),
    "chl_noise": ("1", "standard deviation of log-chlorophyll noise"),
    "chl_pattern": ("1", "fixed fine-scale chlorophyll pattern"),
    "chl_noise_free": ("kg m-3", "chlorophyll-a given the fine drivers, before noise"),
    "light_half_saturation": ("W m-2", "half-saturation of the light law c k R / (k + R)"),
    "temperature_optimum": ("degC", "optimum of the thermal envelope exp(-((T - T_opt) / w)2)"),
    "temperature_width": ("degC", "width of the thermal envelope"),
    "nutrient_half_saturation": ("1", "half-saturation of the nutrient limitation N / (K + N)"),
    "nutrient": ("1", "relative nutrient concentration (not among the proxies)"),
}
_MISSPECIFICATION = ("light_half_saturation", "temperature_optimum", "nutrient_half_saturation")
_NUTRIENT_COOLING = 0.1  # degC-1: nutrients fall off exponentially with warmer, stratified water
_NUTRIENT_REFERENCE = 15.0  # degC
_NUTRIENT_AMPLITUDE = 0.5  # standard deviation of log-nutrient upwelling anomalies
_PARAMETER_RULES = {  # rule -> (test, parameters it applies to)
    "positive": (
        lambda value: value > 0,
        ("a", "c", "chl_scale", "temperature_width", *_MISSPECIFICATION[::2]),
    ),
    "non-negative": (lambda value: value >= 0, ("chl_noise", "tos_anomaly")),
    "in [0, 1)": (lambda value: 0 <= value < 1, ("cloud_amplitude",)),
    "a finite number": (
        lambda value: True,
        ("b", "d", "warming_per_decade", "brightening_per_decade", "temperature_optimum"),
    ),
}


class BiogeochemWorld(NamedTuple):
    """The three Datasets of :func:`synthetic_biogeochem`.

    Attributes
    ----------
    coarse : xarray.Dataset
        Physics proxies ``tos``, ``rsds`` (and ``chl`` for reference) on the coarse grid.
    fine : xarray.Dataset
        ``tos``, ``rsds`` and the target ``chl`` on the fine grid.
    truth : xarray.Dataset
        The true law parameters and the noise-free chlorophyll on the fine grid.

    Examples
    --------
    >>> coarse, fine, truth = synthetic_biogeochem(n_years=1, n_fine_lat=8, n_fine_lon=12)
    >>> float(truth.b)
    0.0633
    """

    coarse: xr.Dataset
    fine: xr.Dataset
    truth: xr.Dataset


def synthetic_biogeochem(
    n_members: int = 1,
    n_years: int = 10,
    n_fine_lat: int = 32,
    n_fine_lon: int = 48,
    factor: int = 4,
    freq: str = "MS",
    calendar: str = "noleap",
    start: str = "1998-01-01",
    seed: int = 0,
    a: float = 0.59,
    b: float = 0.0633,
    c: float = 6e-3,
    d: float = -4e-6,
    chl_scale: float = 3e-7,
    chl_noise: float = 0.3,
    warming_per_decade: float = 0.2,
    brightening_per_decade: float = 0.01,
    tos_anomaly: float = 0.6,
    cloud_amplitude: float = 0.25,
    light_half_saturation: float | None = None,
    temperature_optimum: float | None = None,
    temperature_width: float = 10.0,
    nutrient_half_saturation: float | None = None,
) -> BiogeochemWorld:
    r"""Generate fine-scale ocean chlorophyll driven by temperature and light, with known laws.

    Chlorophyll on a fine grid is a fixed fine-scale pattern times a temperature
    growth law times a light law times lognormal noise; sea surface temperature and
    shortwave radiation are also given on a coarse grid whose cells are exact
    ``factor`` x ``factor`` blocks of fine cells, as the proxies of a downscaler
    (seed paper, Section 4.4: coarse ~500 km proxies, fine ~50 km chlorophyll).

    Parameters
    ----------
    n_members, n_years : int
        Ensemble size and length in whole years.
    n_fine_lat, n_fine_lon : int
        Fine grid size on the fixed 20N-60N, 60W-0E domain; multiples of ``factor``
        and at least ``2 * factor``.
    factor : int
        Coarsening factor: each coarse cell is ``factor`` x ``factor`` fine cells.
    freq, calendar, start : str
        Pandas-style frequency, CF calendar (one of :data:`CALENDARS`) and first
        time step of the ``cftime`` time axis.
    seed : int
        Seed. ``SeedSequence(seed).spawn(n_members + 1)``: child 0 draws the fixed
        pattern, child ``m + 1`` member ``m``, which does not change with ``n_members``.
    a, b : float
        Temperature law :math:`g_T = a e^{b T}`, *a* > 0 in d-1, *b* in degC-1
        (default: Eppley 1972).
    c, d : float
        Light law :math:`g_R = c R + d R^2`, *c* > 0 in m2 W-1, *d* in m4 W-2; it
        must increase over the generated radiation (:math:`R < -c / 2d` when d < 0).
    chl_scale : float
        :math:`\chi`, chlorophyll per unit growth rate, kg m-3 d, positive.
    chl_noise : float
        :math:`\sigma_c`, standard deviation of log-chlorophyll noise, >= 0.
    warming_per_decade : float
        SST trend *w*, K per decade.
    brightening_per_decade : float
        Relative radiation trend :math:`\rho` per decade (log rate).
    tos_anomaly : float
        :math:`\sigma_T`, standard deviation of SST anomalies, K, >= 0.
    cloud_amplitude : float
        :math:`\kappa` in [0, 1), relative amplitude of cloud anomalies.
    light_half_saturation : float, optional
        Laws outside the growth-law family of the downscalers, to test them on truth
        they do not contain. *k* in W m-2: the light law becomes the saturating
        :math:`g_R = c k R / (k + R)` (slope *c* at R = 0), not a quadratic.
    temperature_optimum, temperature_width : float, optional
        :math:`T_o`, *w* in degC: the temperature law gains a thermal envelope,
        :math:`g_T = a e^{b T} e^{-((T - T_o) / w)^2}` (growth falls above an
        optimum), not an exponential.
    nutrient_half_saturation : float, optional
        *K*: chlorophyll is further limited by :math:`N / (K + N)`, with a nutrient
        the proxies omit, :math:`N = e^{-0.1 (T - 15) + 0.5 \nu}`: poorer in warm
        water, with upwelling anomalies :math:`\nu` (Gaussian, smoothed over one
        coarse cell, independent in time) that no proxy sees.

    Returns
    -------
    BiogeochemWorld
        ``(coarse, fine, truth)``. ``fine`` and ``coarse`` hold ``tos`` (K), ``rsds``
        (W m-2) and ``chl`` (kg m-3) on (member, time, lat, lon) and ``sftof`` (%) on
        (lat, lon); both name their dims ``lat``/``lon`` (with CF bounds). With
        :math:`\varphi, \lambda` the fine cell centres in degrees, *s* = (day of year
        - 1) / (days in year) at each time stamp and :math:`\tau` the years elapsed
        since ``start``:

        ``sftof``
            0 on the land ellipse :math:`((\varphi - 45) / 9)^2 + ((\lambda + 3) / 8)^2
            < 1`, 100 elsewhere. Every fine field is NaN over land.
        ``tos``
            :math:`273.15 + T`, :math:`T = 27 - 0.45 (\varphi - 20) + (1 + 0.1
            (\varphi - 20)) \cos(2\pi (s - 0.65)) + w \tau / 10 + \sigma_T \zeta`
            (degC), :math:`\zeta` AR(1) in time (lag-one correlation 0.7 per step).
        ``rsds``
            :math:`R = 0.6\,Q(\varphi, s)\,(1 + \kappa \tanh\eta)\,e^{\rho\tau/10}`, with
            :math:`Q = (1361 / \pi) (1 + 0.033 \cos 2\pi s) (h_0 \sin\varphi \sin\delta
            + \cos\varphi \cos\delta \sin h_0)` the daily-mean top-of-atmosphere
            insolation, :math:`\cos h_0 = -\tan\varphi \tan\delta` (clipped to
            [-1, 1]), :math:`\delta = -23.44^\circ \cos(2\pi (s + 10 / 365))`;
            :math:`\eta` independent in time.
        ``chl``
            :math:`\chi\,P(x)\,g_T(T)\,g_R(R)\,e^{\sigma_c \epsilon}`, with *T* and *R*
            the returned fine ``tos - 273.15`` and ``rsds``, :math:`\epsilon \sim
            N(0, 1)` i.i.d. (so log-chlorophyll residuals have mean 0 and standard
            deviation :math:`\sigma_c`), and the pattern :math:`P = \exp(0.8
            \tanh((\varphi - \varphi_f(\lambda)) / 2) + 0.5 e(x))`, a meandering
            front :math:`\varphi_f = 40 + 3 \sin(2\pi (\lambda + 60) / 20)` and
            eddies *e*: smoothed white noise standardised to zero mean and unit
            variance over the grid (ocean and land).

        :math:`\zeta` and :math:`\eta` are Gaussian noise smoothed in (lat, lon) by a
        periodic Gaussian kernel of sigma ``factor`` fine cells (one coarse cell),
        rescaled to unit standard deviation per member; eddies use the same kernel
        with sigma one fine cell. ``chl`` is typically 0.05-3 mg m-3 (5e-8 to 3e-6
        kg m-3). The coarse ``tos``, ``rsds``,
        ``chl`` are conservative: the area-weighted mean (weights
        :func:`climlatent.grid.cell_area`) of the finite fine cells of each block,
        NaN only where every fine cell is land; the coarse ``sftof`` is the block's
        sea percentage. ``truth`` holds *a*, *b*, *c*, *d*, ``chl_scale``,
        ``chl_noise`` (scalars with units), ``chl_pattern`` *P* and
        ``chl_noise_free`` (``chl`` without the noise) on the fine grid, and the
        misspecification parameters that were set (with ``nutrient`` *N* when the
        nutrient limitation is on). From ``chl`` only *b*, *d / c* and the product
        :math:`\chi a c` are identifiable.

        Global attributes hold CF ``Conventions``, ``title``, ``source``,
        ``history`` and ``synthetic_parameters``, the JSON of the arguments
        (``synthetic_biogeochem(**json.loads(...))`` regenerates the world).

    Raises
    ------
    InputDataError
        If a size is not a positive integer or not a multiple of ``factor``, the
        seed is not a non-negative integer, the calendar, start or frequency is
        unusable, a parameter is out of range, or the light law does not increase
        over the generated radiation.

    Examples
    --------
    >>> coarse, fine, truth = synthetic_biogeochem(n_years=2, seed=1)
    >>> dict(fine.chl.sizes)
    {'member': 1, 'time': 24, 'lat': 32, 'lon': 48}
    >>> dict(coarse.tos.sizes)
    {'member': 1, 'time': 24, 'lat': 8, 'lon': 12}
    >>> fine.tos.attrs["standard_name"], str(truth.a.attrs["units"])
    ('sea_surface_temperature', 'd-1')
    >>> 1e-8 < float(fine.chl.median()) < 3e-6  # kg m-3: 0.01-3 mg m-3
    True
    """
    params = _validated_parameters(locals())
    time = _time_axis(calendar, start, freq, n_years)
    lat_edges = np.linspace(*_LAT_RANGE, n_fine_lat + 1)
    lon_edges = np.linspace(*_LON_RANGE, n_fine_lon + 1)
    fine_grid = regular_grid(lat_edges, lon_edges)
    lat, lon = fine_grid.lat.values, fine_grid.lon.values
    land = _land(lat, lon)
    season = (time.dt.dayofyear.values - 1) / time.dt.days_in_year.values
    decimal_year = time.dt.year.values + season
    decades = (decimal_year - decimal_year[0])[:, None, None] / 10.0

    children = np.random.SeedSequence(seed).spawn(n_members + 1)
    pattern = np.where(land, np.nan, _chl_pattern(np.random.default_rng(children[0]), lat, lon))
    members = [np.random.default_rng(child) for child in children[1:]]
    shape = (time.size, lat.size, lon.size)
    persistence = np.full(lat.size * lon.size, _SST_PERSISTENCE)
    sst_noise = np.stack(
        [_smooth(_ar1(rng, persistence, time.size).reshape(shape), factor) for rng in members]
    )
    cloud_noise = np.stack([_smooth(rng.standard_normal(shape), factor) for rng in members])
    log_noise = chl_noise * np.stack([rng.standard_normal(shape) for rng in members])
    upwelling = (
        np.stack([_smooth(rng.standard_normal(shape), factor) for rng in members])
        if nutrient_half_saturation is not None
        else None
    )

    warmest = np.cos(2 * np.pi * (season - _SST_PEAK))[:, None, None]
    tos = (
        273.15
        + 27.0
        - 0.45 * (lat[:, None] - 20.0)
        + (1.0 + 0.1 * (lat[:, None] - 20.0)) * warmest
        + warming_per_decade * decades
        + tos_anomaly * sst_noise
    )
    rsds = (
        _TRANSMISSIVITY
        * _insolation(lat, season)[:, :, None]
        * (1.0 + cloud_amplitude * np.tanh(cloud_noise))
        * np.exp(brightening_per_decade * decades)
    )
    fields = {"tos": tos.astype(np.float32), "rsds": rsds.astype(np.float32)}
    for field in fields.values():
        field[..., land] = np.nan
    radiation = fields["rsds"].astype(np.float64)
    temperature = fields["tos"].astype(np.float64) - 273.15
    if light_half_saturation is None:
        _check_light_law_increases(c, d, np.nanmax(radiation))
        light = (c + d * radiation) * radiation
    else:
        light = c * light_half_saturation * radiation / (light_half_saturation + radiation)
    growth = a * np.exp(b * temperature)
    if temperature_optimum is not None:
        growth *= np.exp(-(((temperature - temperature_optimum) / temperature_width) ** 2))
    noise_free = chl_scale * pattern * growth * light
    extra = {}
    if upwelling is not None:
        nutrient = np.exp(
            -_NUTRIENT_COOLING * (temperature - _NUTRIENT_REFERENCE)
            + _NUTRIENT_AMPLITUDE * upwelling
        )
        noise_free *= nutrient / (nutrient_half_saturation + nutrient)
        extra["nutrient"] = (("member", "time", "lat", "lon"), nutrient.astype(np.float32))
    fields["chl"] = (noise_free * np.exp(log_noise)).astype(np.float32)

    area = cell_area(fine_grid).values
    sftof = np.where(land, 0.0, 100.0)
    member = xr.DataArray(
        [f"r{m + 1}i1p1f1" for m in range(n_members)],
        dims="member",
        attrs={"long_name": "ensemble member"},
    )
    coarse = _dataset(
        {name: _block_mean(field, area, factor) for name, field in fields.items()},
        _block_mean(sftof, area, factor),
        regular_grid(lat_edges[::factor], lon_edges[::factor]),
        member,
        time,
    )
    fine = _dataset(fields, sftof, fine_grid, member, time)
    attrs = _global_attrs(params)
    coarse.attrs.update(attrs, title="Synthetic ocean biogeochemistry: coarse physics proxies")
    fine.attrs.update(attrs, title="Synthetic ocean biogeochemistry: fine-scale chlorophyll")
    truth = xr.Dataset(
        {
            **{name: params[name] for name in ("a", "b", "c", "d", "chl_scale", "chl_noise")},
            "chl_pattern": (("lat", "lon"), pattern),
            "chl_noise_free": (("member", "time", "lat", "lon"), noise_free.astype(np.float32)),
            **{name: params[name] for name in _MISSPECIFICATION if params[name] is not None},
            **(
                {"temperature_width": params["temperature_width"]}
                if temperature_optimum is not None
                else {}
            ),
            **extra,
        },
        coords={"member": member, "time": time, **fine_grid.coords},
        attrs={**attrs, "title": "Synthetic ocean biogeochemistry: true growth laws"},
    )
    for name, (units, long_name) in _TRUTH_ATTRS.items():
        if name in truth:
            truth[name].attrs.update(units=units, long_name=long_name)
    return BiogeochemWorld(coarse, fine, truth)


def _validated_parameters(arguments: dict) -> dict:
    """Check the generator's arguments; return them JSON-ready."""
    params = dict(arguments)
    for name in ("n_members", "n_years", "n_fine_lat", "n_fine_lon", "factor", "seed"):
        value, least = params[name], 0 if name == "seed" else 1
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            kind = "non-negative" if least == 0 else "positive"
            raise InputDataError(f"{name} must be a {kind} integer, got {value!r}")
        params[name] = int(value)
    for name in ("n_fine_lat", "n_fine_lon"):
        if params[name] % params["factor"] or params[name] < 2 * params["factor"]:
            raise InputDataError(
                f"{name}={params[name]} must be a multiple of factor={params['factor']} "
                "and at least 2 * factor (a coarse grid of at least 2 x 2 nested cells)"
            )
    if params["calendar"] not in CALENDARS:
        raise InputDataError(f"unknown calendar {params['calendar']!r}; use one of {CALENDARS}")
    for rule, (test, names) in _PARAMETER_RULES.items():
        for name in names:
            value = params[name]
            if value is None and name in _MISSPECIFICATION:
                continue
            number = isinstance(value, int | float | np.integer | np.floating)
            if isinstance(value, bool) or not (number and np.isfinite(value) and test(value)):
                raise InputDataError(f"{name} must be {rule}, got {value!r}")
            params[name] = float(value)
    return params


def _land(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Boolean land ellipse on the (lat, lon) cell centres."""
    radius = np.hypot(
        (lat[:, None] - _LAND_CENTRE[0]) / _LAND_RADII[0],
        (lon[None, :] - _LAND_CENTRE[1]) / _LAND_RADII[1],
    )
    return radius < 1.0


def _check_light_law_increases(c: float, d: float, max_radiation: float) -> None:
    """Raise unless ``c R + d R**2`` increases up to the largest radiation."""
    if d < 0 and max_radiation >= -c / (2 * d):
        raise InputDataError(
            f"the light law c R + d R**2 (c={c}, d={d}) peaks at R = {-c / (2 * d):.1f} W m-2, "
            f"below the largest generated rsds {max_radiation:.1f} W m-2: raise d towards 0 "
            "so that chlorophyll increases with light"
        )


def _insolation(lat: np.ndarray, season: np.ndarray) -> np.ndarray:
    """Daily-mean top-of-atmosphere insolation, W m-2, on (time, lat)."""
    phi = np.deg2rad(lat)[None, :]
    angle = 2 * np.pi * season[:, None]
    declination = -np.deg2rad(_OBLIQUITY) * np.cos(angle + 2 * np.pi * 10 / 365)
    hour_angle = np.arccos(np.clip(-np.tan(phi) * np.tan(declination), -1.0, 1.0))
    geometry = hour_angle * np.sin(phi) * np.sin(declination) + np.cos(phi) * np.cos(
        declination
    ) * np.sin(hour_angle)
    return _SOLAR_CONSTANT / np.pi * (1.0 + 0.033 * np.cos(angle)) * geometry


def _chl_pattern(rng: np.random.Generator, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Positive fixed pattern: a meandering front plus one-cell eddies, on (lat, lon)."""
    front = _FRONT_LAT + _FRONT_MEANDER * np.sin(
        2 * np.pi * (lon - _LON_RANGE[0]) / _FRONT_WAVELENGTH
    )
    eddies = gaussian_filter(
        rng.standard_normal((lat.size, lon.size)), _EDDY_SMOOTHING, mode="wrap"
    )
    eddies = (eddies - eddies.mean()) / eddies.std()
    return np.exp(
        _FRONT_AMPLITUDE * np.tanh((lat[:, None] - front[None, :]) / _FRONT_WIDTH)
        + _EDDY_AMPLITUDE * eddies
    )


def _smooth(noise: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-smooth (time, lat, lon) noise in space; rescale to unit standard deviation."""
    smooth = gaussian_filter(noise, sigma=(0, sigma, sigma), mode="wrap")
    return smooth / smooth.std()


def _block_mean(values: np.ndarray, area: np.ndarray, factor: int) -> np.ndarray:
    """Area-weighted mean over ``factor`` x ``factor`` blocks of the last two axes.

    NaN cells carry no weight; a block without finite cells is NaN.
    """
    *lead, n_lat, n_lon = values.shape
    blocks = (*lead, n_lat // factor, factor, n_lon // factor, factor)
    valid = np.isfinite(values)
    weights = np.where(valid, area, 0.0)
    total = (np.where(valid, values, 0.0) * weights).reshape(blocks).sum(axis=(-3, -1))
    weight = weights.reshape(blocks).sum(axis=(-3, -1))
    return np.divide(total, weight, out=np.full(weight.shape, np.nan), where=weight > 0)


def _dataset(
    fields: dict[str, np.ndarray],
    sftof: np.ndarray,
    grid: xr.Dataset,
    member: xr.DataArray,
    time: xr.DataArray,
) -> xr.Dataset:
    """Float32 fields on (member, time, lat, lon) and the sea area fraction, with CF attributes."""
    ds = xr.Dataset(
        {
            name: (("member", "time", "lat", "lon"), field.astype(np.float32))
            for name, field in fields.items()
        },
        coords={"member": member, "time": time, **grid.coords},
    )
    for name in fields:
        ds[name].attrs.update(_FIELD_ATTRS[name], cell_methods="time: mean area: mean where sea")
    ds["sftof"] = (
        ("lat", "lon"),
        sftof,
        {"units": "%", "standard_name": "sea_area_fraction", "long_name": "sea area fraction"},
    )
    return ds


def _global_attrs(params: dict) -> dict[str, str]:
    """CF global attributes shared by the three Datasets."""
    call = ", ".join(f"{key}={value!r}" for key, value in params.items())
    return {
        "Conventions": "CF-1.8",
        "source": "climlatent synthetic_biogeochem",
        "history": f"climlatent {__version__}: synthetic_biogeochem({call})",
        "synthetic_parameters": json.dumps(params),
    }
