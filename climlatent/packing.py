"""CF packing and valid ranges of fields read from netCDF.

A field stored packed (integers with ``scale_factor``, ``add_offset``, ``_Unsigned``)
is read as floats and written back unpacked; its ``valid_range`` (``valid_min``,
``valid_max``), in the packed integers' units, must then be given in the unpacked
values' units, or CF readers would mask its good values. Values beyond those limits
are missing (CF), as netCDF4 and CDO read them; xarray keeps them.
"""

from __future__ import annotations

import functools

import numpy as np
import xarray as xr
from xarray.coding.common import lazy_elemwise_func

VALID_LIMITS = ("valid_range", "valid_min", "valid_max")  # CF: values beyond are missing
PACKING = ("scale_factor", "add_offset", "missing_value", "_Unsigned")  # encoding of packing


def mask_invalid(ds: xr.Dataset) -> xr.Dataset:
    """Values outside a data variable's ``valid_range`` (``valid_min``, ``valid_max``) as NaN.

    CF counts them as missing, as netCDF4 and CDO read them; xarray does not. The
    limits of a variable read packed are given back unpacked (`unpack_valid_range`).
    An integer variable with limits becomes floating point, to hold NaN (as xarray
    makes one with a ``_FillValue``): float32 from 8 and 16 bits, float64 from more.

    Examples
    --------
    >>> ds = xr.Dataset({"chl": ("x", [0.1, 5.0, 250.0], {"valid_max": 100.0})})
    >>> mask_invalid(ds)["chl"].values.tolist()
    [0.1, 5.0, nan]
    >>> flags = xr.Dataset({"qc": ("x", np.int16([1, 5, 9]), {"valid_range": np.int16([0, 5])})})
    >>> out = mask_invalid(flags)["qc"]
    >>> out.values.tolist(), out.dtype.name
    ([1.0, 5.0, nan], 'float32')
    """
    for name, var in ds.data_vars.items():
        limits = {key: var.attrs[key] for key in VALID_LIMITS if key in var.attrs}
        if not limits or var.dtype.kind not in "fiu":
            continue
        # an integer one is not read packed (xarray unpacks those to float)
        dtype = var.dtype if var.dtype.kind == "f" else np.promote_types(var.dtype, np.float32)
        variable = var.variable.copy(deep=False)
        unpack_valid_range(variable)
        low, high = np.asarray(variable.attrs.get("valid_range", [-np.inf, np.inf]), float)
        low = float(variable.attrs.get("valid_min", low))
        high = float(variable.attrs.get("valid_max", high))
        encoding = {k: v for k, v in var.encoding.items() if k not in (*PACKING, "dtype")}
        within = functools.partial(_within, low=low, high=high, dtype=dtype)
        # Still lazy: the values of a file (of a header declaring billions) are read,
        # and masked, a slice or a dask chunk at a time, when they are asked for.
        data = variable._data  # xarray's lazily indexed file array, dask or numpy
        data = (
            within(data)
            if isinstance(data, np.ndarray)
            else lazy_elemwise_func(data, within, dtype)
        )
        ds[name] = xr.Variable(var.dims, data, variable.attrs, encoding)
    return ds


def _within(values: np.ndarray, low: float, high: float, dtype: np.dtype) -> np.ndarray:
    """``values`` as ``dtype``, NaN where they are not within ``[low, high]``."""
    values = np.asarray(values).astype(dtype, copy=False)
    return np.where((values >= low) & (values <= high), values, dtype.type(np.nan))


def unpack_valid_range(var: xr.Variable) -> None:
    """``valid_range``/``valid_min``/``valid_max`` of a field read packed, as unpacked values.

    They are in the packed integers' units (CF); the field is written unpacked, where
    CF readers would mask its good values by them. Each limit is unpacked by the very
    operations that unpack the data (xarray's, in ``var.dtype``), so that a value on a
    limit is equal to it: unpacked once in float64, a float32 field's good values on
    the limit fell outside it by one float32 step and were masked. A negative
    ``scale_factor`` turns them round: the packed ``valid_max`` unpacks to the lowest
    value (``valid_min``).

    Examples
    --------
    >>> var = xr.Variable("x", [0.0], {"valid_range": np.int16([0, 20000])})
    >>> var.encoding = {"dtype": np.dtype("int16"), "scale_factor": 0.01, "add_offset": -100.0}
    >>> unpack_valid_range(var)
    >>> var.attrs["valid_range"].tolist()
    [-100.0, 100.0]
    """
    packed = np.dtype(var.encoding.get("dtype", var.dtype))
    if packed.kind not in "iu":
        return
    if str(var.encoding.get("_Unsigned", "false")).lower() == "true":
        packed = np.dtype(f"u{packed.itemsize}")
    scale, offset = (var.encoding.get(key) for key in ("scale_factor", "add_offset"))
    scale, offset = (np.asarray(x).item() if np.ndim(x) > 0 else x for x in (scale, offset))
    for key in VALID_LIMITS:
        if key in var.attrs:
            raw = np.asarray(var.attrs[key]).astype(np.dtype(var.encoding.get("dtype", packed)))
            value = raw.view(packed).astype(var.dtype)  # as xarray unpacks the data:
            if scale is not None:  # in place, in var.dtype, scale then offset
                value *= scale
            if offset is not None:
                value += offset
            var.attrs[key] = value
    if scale is not None and scale < 0:  # a negative scale turns the limits round
        turned = {"valid_range": "valid_range", "valid_min": "valid_max", "valid_max": "valid_min"}
        limits = {turned[key]: var.attrs.pop(key) for key in VALID_LIMITS if key in var.attrs}
        var.attrs.update({key: np.flip(value) for key, value in limits.items()})
