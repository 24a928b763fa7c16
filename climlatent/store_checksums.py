"""Checksums of a zarr store's regions and of the inputs they were computed from.

Used by :mod:`climlatent.zarr_store`: a region is marked complete with the SHA-256 of
its stored bytes, read back raw, and of the input values read to compute it; a resume
checks both (a region rewritten when its bytes changed, a store refused when its
inputs did).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np
import xarray as xr
import zarr


def digest(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of named arrays; object arrays (cftime dates, strings) by their repr.

    Examples
    --------
    >>> a = digest({"pr": np.zeros(3, np.float32)})
    >>> a.startswith("sha256:"), a == digest({"pr": np.zeros(3, np.float64)})
    (True, False)
    """
    sha = hashlib.sha256()
    for name, values in arrays.items():
        values = np.asarray(values)
        if values.dtype.kind == "O":
            values = np.array([repr(value) for value in values.ravel()])
        sha.update(f"{name}:{values.dtype}:{values.shape}".encode())
        sha.update(np.ascontiguousarray(values).tobytes())
    return f"sha256:{sha.hexdigest()}"


def input_block(inputs: xr.Dataset, region: dict) -> xr.Dataset:
    """The data variables of ``inputs`` a region (``{dim: [start, stop]}``) is computed from.

    Examples
    --------
    >>> ds = xr.Dataset({"psl": (("member", "time"), np.arange(6.0).reshape(2, 3))},
    ...                 coords={"member": ["r1", "r2"]})
    >>> input_block(ds, {"member": [1, 2], "time": [0, 2]})["psl"].values.tolist()
    [[3.0, 4.0]]
    """
    within = {dim: slice(*bounds) for dim, bounds in region.items() if dim in inputs.dims}
    return inputs.drop_vars(list(inputs.coords)).isel(within)


def input_checksum(block: xr.Dataset) -> str:
    """The `digest` of the data variables of an (in-memory) input block.

    Examples
    --------
    >>> block = xr.Dataset({"psl": ("time", np.ones(2))})
    >>> input_checksum(block) == digest({"psl": np.ones(2)})
    True
    """
    return digest({str(name): var.values for name, var in block.data_vars.items()})


def region_label(
    inputs: xr.Dataset, region: dict, sources: Mapping[str, str], ranges: bool = True
) -> str:
    """Each dim's labels in a region: ``"member r1 (r1.nc), time 10 to 12"``.

    A label with a source (a member's file) is named with it; the others by range,
    or, with ``ranges=False``, only where no label has a source.

    Examples
    --------
    >>> ds = xr.Dataset(coords={"member": ["r1", "r2"], "time": [10, 11, 12]})
    >>> region_label(ds, {"member": [0, 1], "time": [0, 3]}, {"r1": "r1.nc"})
    'member r1 (r1.nc), time 10 to 12'
    >>> region_label(ds, {"member": [1, 2], "time": [1, 3]}, {})
    'member r2, time 11 to 12'
    >>> region_label(ds, {"member": [0, 1], "time": [0, 3]}, {"r1": "r1.nc"}, ranges=False)
    'member r1 (r1.nc)'
    """
    labels = {
        dim: inputs[dim].values[slice(*bounds)].tolist()
        for dim, bounds in region.items()
        if dim in inputs.coords
    }
    named, spans = [], []
    for dim, values in labels.items():
        if values and all(str(label) in sources for label in values):
            named += [f"{dim} {label} ({sources[str(label)]})" for label in values]
        elif values:
            spans.append(f"{dim} {values[0]}" + (f" to {values[-1]}" if len(values) > 1 else ""))
    return ", ".join(named + spans if ranges or not named else named) or f"region {region}"


def changed_inputs(manifest: dict, inputs: xr.Dataset, sources: Mapping[str, str]) -> list[str]:
    """Labels of the completed regions whose input reads differently now, each once.

    Every completed region's input is read and hashed again (`input_checksum`) and
    compared with the checksum its manifest entry recorded; a region is named by
    `region_label`.

    Examples
    --------
    >>> ds = xr.Dataset({"psl": ("member", [1.0, 2.0])}, coords={"member": ["r1", "r2"]})
    >>> done = {"status": "complete", "region": {"member": [0, 1]},
    ...         "input_checksum": input_checksum(input_block(ds, {"member": [0, 1]}))}
    >>> changed_inputs({"regions": [done]}, ds, {}), changed_inputs({"regions": [done]}, 2 * ds, {})
    ([], ['member r1'])
    """
    changed: list[str] = []
    for entry in manifest["regions"]:
        if entry["status"] != "complete":
            continue
        block = input_block(inputs, entry["region"]).compute()
        if input_checksum(block) != entry["input_checksum"]:
            label = region_label(inputs, entry["region"], sources, ranges=False)
            if label not in changed:
                changed.append(label)
    return changed


def stored_checksum(group: zarr.Group, var_dims: dict[str, list[str]], region: dict) -> str:
    """Checksum of the values stored for ``region``, read back raw (not decoded).

    Examples
    --------
    >>> import tempfile
    >>> group = zarr.open_group(tempfile.mkdtemp(), mode="w", zarr_format=2)
    >>> group.create_array("pr", shape=(2, 3), dtype="f4", fill_value=0)[:] = 1.0
    >>> stored_checksum(group, {"pr": ["time", "x"]}, {"time": [1, 2]}) == digest(
    ...     {"pr": np.ones((1, 3), np.float32)})
    True
    """
    return digest(
        {
            name: group[name][
                tuple(slice(*region[dim]) if dim in region else slice(None) for dim in dims)
            ]
            for name, dims in var_dims.items()
        }
    )


def is_intact(group: zarr.Group, var_dims: dict[str, list[str]], entry: dict) -> bool:
    """Whether a region's stored values still have the checksum its entry recorded.

    A chunk that cannot be read or decoded counts as corrupt, as one that differs.

    Examples
    --------
    >>> import tempfile
    >>> group = zarr.open_group(tempfile.mkdtemp(), mode="w", zarr_format=2)
    >>> group.create_array("pr", shape=(2,), dtype="f4", fill_value=0)[:] = 1.0
    >>> entry = {"region": {"time": [0, 2]},
    ...          "checksum": stored_checksum(group, {"pr": ["time"]}, {"time": [0, 2]})}
    >>> is_intact(group, {"pr": ["time"]}, entry), is_intact(group, {"pr": ["time"]},
    ...     {**entry, "checksum": "sha256:0"})
    (True, False)
    """
    try:
        return stored_checksum(group, var_dims, entry["region"]) == entry["checksum"]
    except Exception:
        return False
