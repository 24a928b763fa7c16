"""Radially averaged power spectra of 2-D fields, and a log-spectral distance.

The sample-quality measure for generated fields: a generator that smooths away the
small scales (a VAE decoder's conditional mean) loses power at high wavenumbers,
which the log-spectral distance to the truth's spectrum counts.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from climlatent.errors import InputDataError
from climlatent.grid import check_same_grid, find_grid

__all__ = ["log_spectral_distance", "radial_power_spectrum"]


def radial_power_spectrum(fields: object) -> np.ndarray:
    """Mean power of the fields' 2-D Fourier modes in integer radial wavenumber bins.

    Parameters
    ----------
    fields : array-like, shape (..., ny, nx)
        Fields on a regular grid (leading dims are samples); each field's mean is
        removed first. Wavenumbers are counted in cycles per domain. A DataArray with
        latitude and longitude has its grid dims taken wherever they are.

    Returns
    -------
    numpy.ndarray
        Power per bin ``k = 1 .. min(ny, nx) // 2``, averaged over samples and over the
        modes in each bin (index 0 is wavenumber 1).

    Examples
    --------
    >>> y, x = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
    >>> spectrum = radial_power_spectrum(np.cos(2 * np.pi * 3 * x / 16))
    >>> int(spectrum.argmax()) + 1
    3
    """
    values = np.asarray(_grid_last(fields), dtype=float)
    if values.ndim < 2 or min(values.shape[-2:]) < 4:
        raise InputDataError(f"fields need two grid dims of at least 4 points, got {values.shape}")
    if not np.isfinite(values).all():
        raise InputDataError("fields hold NaN/inf values")
    ny, nx = values.shape[-2:]
    values = values.reshape(-1, ny, nx)
    values = values - values.mean(axis=(1, 2), keepdims=True)
    power = (np.abs(np.fft.fft2(values)) ** 2).mean(0) / (ny * nx)
    ky, kx = np.meshgrid(np.fft.fftfreq(ny) * ny, np.fft.fftfreq(nx) * nx, indexing="ij")
    radius = np.rint(np.hypot(ky, kx)).astype(int)
    n_bins = min(ny, nx) // 2
    sums = np.bincount(radius.ravel(), power.ravel(), minlength=n_bins + 1)
    counts = np.bincount(radius.ravel(), minlength=n_bins + 1)
    return sums[1 : n_bins + 1] / counts[1 : n_bins + 1]


def log_spectral_distance(fields: object, reference: object) -> float:
    """Mean absolute difference of ``log10`` radial power spectra (0 for equal spectra).

    ``fields`` and ``reference``: arrays whose last two dims are the grid, or
    DataArrays with latitude and longitude, whose grid dims are taken wherever they
    are and whose coordinates must be the same (a grid of the same shape over another
    domain counts its wavenumbers per that domain).

    Raises
    ------
    InputDataError
        The grids differ, or a spectrum has no power in a wavenumber bin (constant
        fields), where its logarithm is undefined.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> noise = rng.normal(size=(50, 16, 16))
    >>> round(log_spectral_distance(noise, noise), 3), log_spectral_distance(0.1 * noise, noise)
    (0.0, 2.0)
    """
    _check_one_grid(fields, reference)
    fields, reference = _grid_last(fields), _grid_last(reference)
    model, truth = radial_power_spectrum(fields), radial_power_spectrum(reference)
    if np.shape(fields)[-2:] != np.shape(reference)[-2:]:  # as many bins is not enough
        raise InputDataError(
            f"the fields' grid {np.shape(fields)[-2:]} is not the reference's "
            f"{np.shape(reference)[-2:]}: their wavenumbers differ"
        )
    for spectrum, role in ((model, "fields"), (truth, "reference")):
        if not (spectrum > 0).all():
            raise InputDataError(
                f"the {role} have no power at wavenumber(s) "
                f"{(np.flatnonzero(spectrum <= 0) + 1).tolist()} (constant fields?): "
                "their log spectrum is undefined"
            )
    return float(np.mean(np.abs(np.log10(model) - np.log10(truth))))


def _grid_last(fields: object) -> object:
    """A DataArray with latitude and longitude with its grid dims last; else ``fields``."""
    if not isinstance(fields, xr.DataArray):
        return fields
    try:
        return fields.transpose(..., *find_grid(fields, fields.name).spatial_dims)
    except InputDataError:  # no latitude and longitude: the last two dims are the grid
        return fields


def _check_one_grid(fields: object, reference: object) -> None:
    """Refuse DataArrays with latitude and longitude on two grids."""
    if not all(isinstance(f, xr.DataArray) for f in (fields, reference)):
        return
    try:
        grids = find_grid(reference, reference.name), find_grid(fields, fields.name)
    except InputDataError:  # no latitude and longitude: compared by shape
        return
    refusal = "the fields are not on the reference's grid"
    check_same_grid(reference, fields, str(fields.name), grids=grids, refusal=refusal)
