"""The Regridder streams: file-backed data is read block by block, dask data stays lazy.

A recording backend array stands for a netCDF variable opened without dask: every
read it serves is logged, so the tests see exactly which parts of the source were
loaded and when.
"""

import itertools

import dask
import numpy as np
import pytest
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from climlatent.grid import regular_grid
from climlatent.grid_order import GridOrder
from climlatent.regrid import Regridder, smm
from climlatent.regrid.smm import leading_blocks

SRC = regular_grid(np.linspace(-90, 90, 31), np.linspace(-180, 180, 61))  # 6 degrees, -180..180
DST = regular_grid(np.linspace(-90, 90, 19), np.linspace(0, 360, 37))  # 10 degrees, 0..360


class RecordingArray(BackendArray):
    """A numpy array behind xarray's lazy indexing, logging each read (as a file would)."""

    def __init__(self, array: np.ndarray):
        self.array, self.shape, self.dtype = array, array.shape, array.dtype
        self.reads: list[tuple] = []

    def __getitem__(self, key):
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._read
        )

    def _read(self, key):
        self.reads.append(key)
        return self.array[key]


def field(layout: str = "caller") -> xr.DataArray:
    """member x time x lat x lon, in memory; ``layout="file"``: the same values, lazily
    read through a RecordingArray, latitude north to south (ERA5's order)."""
    values = np.random.default_rng(0).normal(280.0, 10.0, (2, 7, SRC.lat.size, SRC.lon.size))
    lat = SRC.lat
    if layout == "file":
        values, lat = values[:, :, ::-1].copy(), lat[::-1]
        data = indexing.LazilyIndexedArray(RecordingArray(values))
    else:
        data = values
    variable = xr.Variable(("member", "time", "lat", "lon"), data, {"units": "K"})
    coords = {"member": [1, 2], "time": np.arange(7), "lat": lat, "lon": SRC.lon}
    return xr.DataArray(variable, coords=coords, name="tas")


def recorder(da: xr.DataArray) -> RecordingArray:
    return da.variable._data.array


def fields_read(key: tuple, shape: tuple) -> int:
    """Number of (lat, lon) fields a read of ``key`` on the leading axes covers."""
    return int(
        np.prod([len(range(*k.indices(n))) for k, n in zip(key[:2], shape[:2], strict=True)])
    )


@pytest.mark.parametrize(("block_fields", "n_reads"), [(1, 14), (3, 6), (7, 2), (14, 1)])
def test_file_backed_input_is_read_one_block_at_a_time(monkeypatch, block_fields, n_reads):
    """Blocks of at most ``block_fields`` fields, each read once, the whole source
    covered once, and the same bits as regridding the array held in memory."""
    expected = Regridder(SRC, DST, "conservative", engine="climlatent")(field())
    lazy = field("file")
    monkeypatch.setattr(smm, "BLOCK_BYTES", block_fields * SRC.lat.size * SRC.lon.size * 8)
    out = Regridder(lazy, DST, "conservative", engine="climlatent")(lazy)
    reads = recorder(lazy).reads
    shape = lazy.shape
    assert max(fields_read(key, shape) for key in reads) <= block_fields
    assert sum(fields_read(key, shape) for key in reads) == 14  # each field read once
    assert len(reads) == n_reads  # 2 members x 7 steps: (3, 3, 1) steps per member for 3
    assert isinstance(out.data, np.ndarray) and out.dims == expected.dims
    np.testing.assert_array_equal(out.values, expected.values)


def test_nothing_is_read_before_the_regridding():
    lazy = field("file")
    regridder = Regridder(lazy, DST, "conservative", engine="climlatent")
    assert recorder(lazy).reads == []  # building the weights reads coordinates only
    regridder(lazy.chunk({"time": 2}))  # dask from a file: a lazy result, nothing read
    assert recorder(lazy).reads == []


def test_dask_input_stays_lazy_and_equals_the_in_memory_bits():
    on_file = field("file")
    lazy = on_file.chunk({"member": 1, "time": 3})
    with dask.config.set(scheduler=lambda *a, **k: pytest.fail("computed")):
        out = Regridder(SRC, DST, "bilinear", engine="climlatent")(lazy, skipna=True)
    assert out.chunks[:2] == ((1, 1), (3, 3, 1))
    expected = Regridder(SRC, DST, "bilinear", engine="climlatent")(field(), skipna=True)
    np.testing.assert_array_equal(out.compute().values, expected.values)
    assert max(fields_read(key, lazy.shape) for key in recorder(on_file).reads) <= 3


def test_each_block_is_reordered_once(monkeypatch):
    """The source's latitudes run north to south: each block of data is put in the
    canonical layout once (not into the source grid's order and then again)."""
    calls = []
    canonical = GridOrder.canonical
    monkeypatch.setattr(
        GridOrder,
        "canonical",
        lambda self, obj: calls.append(isinstance(obj, xr.DataArray)) or canonical(self, obj),
    )
    monkeypatch.setattr(smm, "BLOCK_BYTES", 4 * SRC.lat.size * SRC.lon.size * 8)
    lazy = field("file")
    regridder = Regridder(lazy, DST, "conservative", engine="climlatent")
    calls.clear()
    regridder(lazy)
    assert sum(calls) == len(recorder(lazy).reads) == 4  # blocks of 4, 3, 4, 3 fields


@pytest.mark.parametrize(
    ("shape", "n_fields"),
    [((), 1), ((5,), 2), ((2, 3), 2), ((2, 3), 4), ((3, 2, 4), 5), ((2, 0), 3)],
)
def test_leading_blocks_cover_every_field_once_in_c_order(shape, n_fields):
    covered = []
    for block in leading_blocks(shape, n_fields):
        indices = list(
            itertools.product(*(range(*s.indices(n)) for s, n in zip(block, shape, strict=True)))
        )
        assert len(indices) <= max(n_fields, 1)
        covered += indices
    assert covered == list(np.ndindex(*shape))
