"""Gridded variables as channel images: checks, stacking and standardisation.

The xarray side of the image estimators (`~climlatent.VAE`, `~climlatent.VED`):
variables sharing their dims, the last two being the grid, become the channels of
``(sample, channel, y, x)`` arrays, each channel standardised with its own mean and
standard deviation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from climlatent.checks import get_variable
from climlatent.errors import InputDataError
from climlatent.fitted_range import FittedRange
from climlatent.grid import find_grid
from climlatent.grid_order import conform
from climlatent.units import convert_units, in_other_units

LATENT_DIM = "latent"


def variable_names(names: str | Sequence[str]) -> list[str]:
    """One name or several, as a list.

    Examples
    --------
    >>> variable_names("p"), variable_names(("p", "u"))
    (['p'], ['p', 'u'])
    """
    return [names] if isinstance(names, str) else list(names)


def gridded_fields(ds: xr.Dataset, names: list[str], role: str) -> list[xr.DataArray]:
    """The variables ``names`` of ``ds``, checked to share dims with a 2-D grid last.

    Examples
    --------
    >>> ds = xr.Dataset({"p": (("sample", "y", "x"), np.zeros((2, 3, 3)))})
    >>> [da.name for da in gridded_fields(ds, ["p"], "field")]
    ['p']
    """
    if not names:
        raise InputDataError(f"no {role} variables given")
    fields = [get_variable(ds, name, role) for name in names]
    dims = fields[0].dims
    for da in fields:
        if da.ndim < 3:
            raise InputDataError(
                f"{role} variable {da.name!r} has dims {da.dims}; it needs sample dims and "
                f"2 grid dims"
            )
        if da.dims != dims:
            raise InputDataError(
                f"{role} variable {da.name!r} has dims {da.dims}, but {names[0]!r} has {dims}"
            )
    return fields


def stack_fields(fields: list[xr.DataArray]) -> np.ndarray:
    """``(n, channels, ny, nx)`` float32, refusing NaN/inf with the variable named.

    Examples
    --------
    >>> da = xr.DataArray(np.zeros((2, 3, 3)), dims=("sample", "y", "x"), name="p")
    >>> stack_fields([da, da]).shape
    (2, 2, 3, 3)
    """
    ny, nx = fields[0].shape[-2:]
    arrays = []
    for da in fields:
        values = np.asarray(da.values, dtype=np.float32).reshape(-1, ny, nx)
        n_bad = int((~np.isfinite(values)).sum())
        if n_bad:
            raise InputDataError(f"variable {da.name!r} has {n_bad} NaN/inf value(s)")
        if not len(values):
            raise InputDataError(f"variable {da.name!r} has no samples")
        arrays.append(values)
    return np.stack(arrays, axis=1)


def field_ranges(fields: list[xr.DataArray], role: str, tolerance: float) -> dict[str, list[float]]:
    """Each training field's finite range (outliers refused, see `FittedRange.fit`).

    Examples
    --------
    >>> da = xr.DataArray(np.arange(8.0).reshape(2, 2, 2), dims=("sample", "y", "x"), name="p")
    >>> field_ranges([da], "field", 5.0)
    {'p': [0.0, 7.0]}
    """
    ranges = (FittedRange.fit(da, role, tolerance) for da in fields)
    return {r.name: [r.minimum, r.maximum] for r in ranges}


def check_field_ranges(
    fields: list[xr.DataArray], ranges: dict[str, list[float]], role: str, tolerance: float
) -> None:
    """Refuse new fields with values far outside their training range (see `FittedRange`).

    Examples
    --------
    >>> da = xr.DataArray(np.full((1, 2, 2), 1e30), dims=("sample", "y", "x"), name="p")
    >>> check_field_ranges([da], {"p": [0.0, 7.0]}, "field", 5.0)
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: field variable 'p' has 4 value(s) outside ...
    """
    for da in fields:
        if da.name in ranges:
            FittedRange(str(da.name), *ranges[da.name]).check(da, role, tolerance)


def field_moments(raw: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each channel of ``raw``, refusing constant ones.

    Examples
    --------
    >>> mean, std = field_moments(np.arange(8.0).reshape(2, 1, 2, 2), ["p"])
    >>> float(mean[0]), round(float(std[0]), 3)
    (3.5, 2.291)
    """
    mean = raw.mean(axis=(0, 2, 3), dtype=np.float64)
    std = raw.std(axis=(0, 2, 3), dtype=np.float64)
    constant = [name for name, s in zip(names, std, strict=True) if not s > 0]
    if constant:
        raise InputDataError(f"variable(s) {constant} are constant: nothing to learn")
    return mean, std


def standardise(raw: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(raw - mean) / std`` per channel (axis 1), as float32.

    Examples
    --------
    >>> standardise(np.full((1, 1, 2, 2), 3.0), np.array([1.0]), np.array([2.0]))[0, 0, 0, 0]
    np.float32(1.0)
    """
    shape = (1, -1, 1, 1)
    return ((raw - mean.reshape(shape)) / std.reshape(shape)).astype(np.float32)


def grid_coords(ds: xr.Dataset, dims: tuple) -> xr.Dataset:
    """The coordinates of ``ds`` that lie on the grid ``dims`` only, as a Dataset.

    The dims' own coordinates and any other coordinate on them: the latitude and
    longitude of a grid whose dims have no values of their own (2-D ``lat(y, x)`` of
    an ocean model, or 1-D ``lat(y)``), which `on_fitted_grid` checks new data
    against; without them any grid of the same size would pass, by position.

    Examples
    --------
    >>> list(grid_coords(xr.Dataset(coords={"x": [0, 1], "t": [5]}), ("y", "x")).coords)
    ['x']
    >>> ds = xr.Dataset(coords={"lat": (("y", "x"), np.zeros((2, 3))), "t": [5]})
    >>> list(grid_coords(ds, ("y", "x")).coords)
    ['lat']
    """
    names = [n for n, c in ds.coords.items() if c.dims and set(c.dims) <= set(dims)]
    return xr.Dataset(coords={n: ds[n] for n in names})


def on_fitted_grid(
    da: xr.DataArray,
    grid: xr.Dataset,
    dims: Sequence[str],
    attrs: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> xr.DataArray:
    """New field ``da`` on the fitted ``grid``, grid ``dims`` last, in the fitted units.

    A ``grid`` that `~climlatent.grid.find_grid` reads as latitude x longitude takes
    the same cells in any order (latitude reversed, the other longitude convention,
    transposed dims: `~climlatent.grid_order.conform`). On any other grid (``y, x`` of
    a benchmark), each of ``dims`` with a fitted coordinate needs the same coordinate
    values in ``da``. With a ``units`` entry in the fitted ``attrs``, ``da`` is
    converted to those units (`~climlatent.units.convert_units`); without one (or
    ``attrs=None``: not recorded) its values are taken as they are.

    Parameters
    ----------
    da : xr.DataArray
        New data, with the grid dims and any sample dims.
    grid : xr.Dataset
        The coordinates of the grid the model was fitted on (`grid_coords`).
    dims : sequence of str
        The fitted grid dims, in the fitted order.
    attrs : mapping, optional
        The attributes of the variable at fitting.
    name : str, optional
        Variable named in messages (``da.name`` by default).

    Returns
    -------
    xr.DataArray
        ``da`` with its grid dims last in the order ``dims``, labelled with the fitted
        coordinates, in the fitted units.

    Raises
    ------
    InputDataError
        ``da`` lacks a grid dim or coordinate, is on another grid, or has units that
        are missing or cannot be converted to the fitted ones.

    Examples
    --------
    >>> grid = xr.Dataset(coords={"lat": [-10.0, 10.0], "lon": [0.0, 90.0, 180.0]})
    >>> da = xr.DataArray(np.arange(6.0).reshape(1, 2, 3), dims=("time", "lat", "lon"),
    ...     coords={"lat": [10.0, -10.0], "lon": [0.0, 90.0, 180.0]},
    ...     attrs={"units": "degC"}, name="tas")
    >>> out = on_fitted_grid(da, grid, ("lat", "lon"), {"units": "K"})
    >>> out["lat"].values.tolist(), out.values[0, 0].tolist(), out.attrs["units"]
    ([-10.0, 10.0], [276.15, 277.15, 278.15], 'K')
    >>> on_fitted_grid(da, grid.assign_coords(lat=[0.0, 20.0]), ("lat", "lon"))
    Traceback (most recent call last):
    ...
    climlatent.errors.InputDataError: variable 'tas' is on a different grid ...
    """
    label = str(da.name) if name is None else name
    dims = tuple(dims)
    missing = [d for d in dims if d not in da.dims]
    if missing:
        raise InputDataError(
            f"variable {label!r} has dims {da.dims}, without the grid dim(s) {missing} the "
            f"model was fitted on"
        )
    if _latitude_longitude(grid, dims):
        da = conform(da, grid, label)
    else:
        for dim in dims:
            if dim in grid.coords:
                da = _check_coordinate(da, grid[dim], label)
    da = da.transpose(..., *dims)
    units = (attrs or {}).get("units")
    return da if units is None else convert_units(da, str(units), label)


def _latitude_longitude(grid: xr.Dataset, dims: tuple[str, ...]) -> bool:
    """Whether ``grid`` is a latitude x longitude grid on ``dims``."""
    try:
        found = find_grid(grid)
    except InputDataError:
        return False
    return set(found.spatial_dims) == set(dims)


def _check_coordinate(da: xr.DataArray, fitted: xr.DataArray, name: str) -> xr.DataArray:
    """``da`` labelled with ``fitted``, refused unless its coordinate holds the fitted values.

    A coordinate in other ``units`` than the fitted one is compared in the fitted units:
    the same positions in ``cm`` for ``m`` pass, the same numbers in ``km`` do not (they
    did, a grid 1000 times as large taken for the fitted one).
    """
    dim = str(fitted.name)
    if dim not in da.coords:
        raise InputDataError(
            f"variable {name!r} has no coordinate on its grid dim {dim!r}; the model was "
            f"fitted on one: give it the fitted values"
        )
    units, fitted_units = da[dim].attrs.get("units"), fitted.attrs.get("units")
    label = f"variable {name!r}: its grid coordinate {dim!r}"
    new, old = np.asarray(da[dim].values), np.asarray(fitted.values)
    converted = ""
    if new.dtype.kind in "iuf" and in_other_units(units, fitted_units):
        new = in_fitted_units(new, units, fitted_units, label)
        converted = f" in {fitted_units!r}, converted from {units!r}"
    same = new.shape == old.shape
    kinds = new.dtype.kind + old.dtype.kind
    if same and set(kinds) <= set("iufc") and set(kinds) & set("fc"):
        scale = float(np.max(np.abs(old))) if old.size else 0.0
        same = bool(np.allclose(new, old, rtol=1e-6, atol=1e-6 * max(scale, 1e-300)))
    elif same:
        same = bool(np.array_equal(new, old))
    if not same:
        raise InputDataError(
            f"variable {name!r} is on another grid than the model was fitted on: its "
            f"coordinate {dim!r} differs from the fitted one{converted} (select or "
            f"interpolate it onto the fitted values)"
        )
    return da.assign_coords({dim: fitted}) if converted else da  # labelled as fitted


def in_fitted_units(
    values: np.ndarray, units: object, fitted_units: object, label: str
) -> np.ndarray:
    """Coordinate ``values`` in ``units``, converted to the ``fitted_units`` of a model.

    Raises
    ------
    InputDataError
        The units cannot be converted (another dimension), naming ``label``.

    Examples
    --------
    >>> in_fitted_units(np.array([0.0, 500.0]), "ms", "s", "time 't'").tolist()
    [0.0, 0.5]
    """
    try:
        moved = convert_units(xr.DataArray(values, attrs={"units": str(units)}), str(fitted_units))
    except InputDataError as err:
        raise InputDataError(
            f"{label} is in {units!r}, which cannot be converted to the {fitted_units!r} "
            "the model was fitted on"
        ) from err
    return np.asarray(moved.values)


def latent_name(encoded: Sequence[str]) -> str:
    """The name of the latents of the variables ``encoded``: joined by ``_``, ``_latent``.

    Examples
    --------
    >>> latent_name(["psl", "tas"])
    'psl_tas_latent'
    """
    return "_".join(encoded) + "_latent"


def latent_array(
    z: np.ndarray, like: xr.DataArray, sample: tuple, encoded: Sequence[str], long_name: str
) -> xr.DataArray:
    """Latent codes ``z`` (one row per sample of ``like``) as what ``encode`` returns.

    Dims: ``sample`` (with ``like``'s coordinates), then ``latent``, labelled ``0 ..``;
    named by `latent_name`, not after its dim, so that it writes to netCDF as it is.

    Examples
    --------
    >>> like = xr.DataArray(np.zeros((3, 2, 2)), dims=("time", "y", "x"))
    >>> z = latent_array(np.zeros((3, 4)), like, ("time",), ["psl", "tas"], "code")
    >>> z.name, z.dims, z["latent"].attrs["long_name"]
    ('psl_tas_latent', ('time', 'latent'), 'latent dimension')
    """
    shape = tuple(like.sizes[d] for d in sample) + (z.shape[-1],)
    coords = {d: like[d] for d in sample if d in like.coords}
    coords[LATENT_DIM] = (LATENT_DIM, np.arange(z.shape[-1]), {"long_name": "latent dimension"})
    return xr.DataArray(
        z.reshape(shape),
        dims=(*sample, LATENT_DIM),
        coords=coords,
        name=latent_name(encoded),
        attrs={"long_name": long_name, "units": "1"},
    )


def latent_rows(z: xr.DataArray, latent_dim: int) -> tuple[np.ndarray, tuple, tuple, dict]:
    """Latent vectors ``z`` (last dim ``latent``) as float32 rows, with their sample layout.

    Returns
    -------
    rows, sample_dims, sample_shape, sample_coords
        ``(n, latent_dim)`` rows, and what rebuilds the sample dims of an output.

    Examples
    --------
    >>> z = xr.DataArray(np.zeros((2, 3, 4)), dims=("member", "time", "latent"))
    >>> rows, dims, shape, _ = latent_rows(z, 4)
    >>> rows.shape, dims, shape
    ((6, 4), ('member', 'time'), (2, 3))
    """
    if z.dims[-1] != LATENT_DIM or z.sizes[LATENT_DIM] != latent_dim:
        raise InputDataError(
            f"latents need a last dim {LATENT_DIM!r} of length {latent_dim}, got {dict(z.sizes)}"
        )
    z = latent_order(z, latent_dim)
    sample = z.dims[:-1]
    rows = np.asarray(z.values, np.float32).reshape(-1, latent_dim)
    coords = {d: z[d] for d in sample if d in z.coords}
    return rows, sample, tuple(z.sizes[d] for d in sample), coords


def latent_order(z: xr.DataArray, latent_dim: int) -> xr.DataArray:
    """``z`` with its latents in the model's order, by their ``latent`` coordinate.

    The encoders label the latents ``0 .. latent_dim - 1``; latents reordered with their
    labels (``z.isel(latent=[2, 0, 1])``) were read by position, each latent fed to
    another one's input. Without a coordinate, by position.

    Examples
    --------
    >>> z = xr.DataArray([[5.0, 7.0]], dims=("sample", "latent"), coords={"latent": [1, 0]})
    >>> latent_order(z, 2).values.tolist()
    [[7.0, 5.0]]
    """
    if LATENT_DIM not in z.coords:
        return z
    labels = np.asarray(z[LATENT_DIM].values)
    if labels.dtype.kind not in "iuf" or not np.array_equal(np.sort(labels), np.arange(latent_dim)):
        raise InputDataError(
            f"latents are labelled {labels.tolist()} along {LATENT_DIM!r}; the model's are "
            f"0 .. {latent_dim - 1}"
        )
    return z.isel({LATENT_DIM: np.argsort(labels, kind="stable")})
