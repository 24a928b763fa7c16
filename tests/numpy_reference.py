"""Numpy references of the metrics, computed cell by cell, for the tests to compare with."""

import cftime
import numpy as np


def area_weights(lat: np.ndarray, n_lon: int) -> np.ndarray:
    """Spherical band areas of a regular latitude axis (edges half a step beyond)."""
    step = lat[1] - lat[0]
    edges = np.deg2rad(np.linspace(lat[0] - step / 2, lat[-1] + step / 2, lat.size + 1))
    return np.broadcast_to(np.diff(np.sin(edges))[:, None], (lat.size, n_lon))


def weighted_rms(difference: np.ndarray, lat: np.ndarray) -> float:
    """Area-weighted root mean square of a (lat, lon) map over its finite cells."""
    weights = area_weights(lat, difference.shape[-1])
    finite = np.isfinite(difference)
    return float(np.sqrt((weights * difference**2)[finite].sum() / weights[finite].sum()))


def decimal_years(times: np.ndarray) -> np.ndarray:
    """Year plus elapsed fraction of it: cftime's time since 1 January over the year's."""
    out = []
    for t in times:
        start = cftime.datetime(t.year, 1, 1, calendar=t.calendar)
        length = cftime.datetime(t.year + 1, 1, 1, calendar=t.calendar) - start
        out.append(t.year + (t - start) / length)
    return np.array(out)


def polyfit_trends(values: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Per-cell least-squares slope of (time, lat, lon) values, per decade."""
    flat = values.reshape(len(years), -1)
    return 10 * np.polyfit(years, flat, 1)[0].reshape(values.shape[1:])


def radial_power(fields: np.ndarray) -> np.ndarray:
    """Power of (time, ny, nx) anomaly fields in integer wavenumber rings k = 1..min/2."""
    ny, nx = fields.shape[1:]
    anomalies = fields - fields.mean(axis=(1, 2), keepdims=True)
    power = (np.abs(np.fft.fft2(anomalies)) ** 2).mean(axis=0)
    ky, kx = np.meshgrid(np.fft.fftfreq(ny, 1 / ny), np.fft.fftfreq(nx, 1 / nx), indexing="ij")
    ring = np.rint(np.hypot(ky, kx))
    return np.array([power[ring == k].mean() for k in range(1, min(ny, nx) // 2 + 1)])
