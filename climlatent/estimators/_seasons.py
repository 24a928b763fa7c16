"""The annual cycle of a series: each step's place in its year, and a smooth climatology.

The weather generator resamples and simulates series whose seasons must stay where
their dates say: a block drawn for January comes from a January of the data, and a
vector autoregression runs on anomalies about the annual cycle, which is added back
at the dates of the output. The cycle is the mean plus ``HARMONICS`` harmonics of the
year, fitted by least squares to every step of every member.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

#: Harmonics of the year in a fitted annual cycle (a daily climatology's usual 3).
HARMONICS = 3
#: Widest distance, as a fraction of the year, between the dates an output block is
#: for and those of the data it is drawn from (15 days).
SEASON_WINDOW = 15 / 365


def year_phase(time: xr.DataArray) -> np.ndarray | None:
    """Each time step's place in its year, in [0, 1); None for a time axis without dates.

    Counted in days of the step's own calendar (a 360-day year has 360).

    Examples
    --------
    >>> time = xr.DataArray(xr.date_range("2001-01-01", periods=3, freq="QS-JAN",
    ...                     calendar="360_day", use_cftime=True), dims="time")
    >>> year_phase(time).tolist()
    [0.0, 0.25, 0.5]
    >>> year_phase(xr.DataArray([0, 1, 2], dims="time")) is None
    True
    """
    try:
        dates = time.dt
        day = dates.dayofyear.values - 1 + (dates.hour.values + dates.minute.values / 60) / 24
        return np.asarray(day / dates.days_in_year.values, float)
    except (AttributeError, TypeError):  # integer or float steps: no season
        return None


def season_window(phases: np.ndarray, block_length: int) -> float:
    """How far (a fraction of the year) a block's source dates may be from its own.

    Half a block, at most ``SEASON_WINDOW``, at least half a step (monthly data: the
    same month).

    Examples
    --------
    >>> daily = np.arange(730) / 365 % 1
    >>> round(season_window(daily, 10) * 365, 6), round(season_window(daily, 90) * 365, 6)
    (5.0, 15.0)
    """
    step = year_step(phases) or 1.0
    return max(0.5 * step, min(0.5 * block_length * step, SEASON_WINDOW))


def year_step(phases: np.ndarray) -> float:
    """The typical step between ``phases``, as a fraction of the year; 0 with none.

    Examples
    --------
    >>> round(year_step(np.arange(10) / 365 % 1) * 365, 6), year_step(np.zeros(3))
    (1.0, 0.0)
    """
    steps = np.diff(phases) % 1.0
    return float(np.median(steps[steps > 0])) if np.any(steps > 0) else 0.0


def _harmonics(phases: np.ndarray) -> np.ndarray:
    """Design matrix ``(n, 1 + 2 * HARMONICS)``: 1, cos and sin of each harmonic."""
    angle = 2 * np.pi * np.outer(phases, np.arange(1, HARMONICS + 1))
    return np.column_stack([np.ones(len(phases)), np.cos(angle), np.sin(angle)])


def fit_annual_cycle(series: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """Coefficients ``(1 + 2 * HARMONICS, k)`` of the annual cycle of ``series``.

    ``series``: ``(n_members, n_time, k)``, the members sharing the time steps of
    ``phases``; every step of every member counts once.

    Examples
    --------
    >>> phases = np.arange(365) / 365
    >>> series = (3.0 + 2.0 * np.cos(2 * np.pi * phases))[None, :, None]
    >>> np.round(fit_annual_cycle(series, phases)[:2, 0], 12).tolist()
    [3.0, 2.0]
    """
    n_members, n_time, k = series.shape
    design = np.tile(_harmonics(phases), (n_members, 1))
    coef, *_ = np.linalg.lstsq(design, series.reshape(n_members * n_time, k), rcond=None)
    return coef


def annual_cycle(coef: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """The fitted cycle ``(len(phases), k)`` at ``phases``.

    Examples
    --------
    >>> coef = np.zeros((1 + 2 * HARMONICS, 1)); coef[0] = 3.0; coef[1] = 2.0
    >>> annual_cycle(coef, np.array([0.0, 0.5]))[:, 0].tolist()
    [5.0, 1.0]
    """
    return _harmonics(phases) @ coef
