"""Mixed precision at inference: float16 autocast on CUDA, refused elsewhere.

On CUDA the float32 path matches the CPU's, and ``amp=True`` differs from float32 (it
ran in float16: a test that cannot tell would pass with autocast off) by no more than
float16's precision allows, eagerly and on dask's threads alike.
"""

import contextlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from test_batch import circulation_members, write_members

import climlatent as cl
from climlatent import batch
from climlatent.batching import FieldLayout, map_model
from climlatent.errors import ClimlatentError

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
#: float16 keeps 11 significant bits; a few layers of them, relative to the field's spread
FLOAT16_TOLERANCE = 2e-2


@pytest.fixture(scope="module")
def emulator():
    ds = circulation_members(2)
    est = cl.LLAAE(latent_dim=4, epochs=2, filters=(8, 16), device="cpu", progress=False)
    return est.fit(ds, "pr", "psl"), ds


@pytest.fixture(scope="module")
def downscaler():
    world = cl.datasets.synthetic_biogeochem(n_members=2, n_years=2, n_fine_lat=16, n_fine_lon=16)
    est = cl.ProxyDownscaler(epochs=2, device="cpu", progress=False)
    proxies = {"tos": "exponential", "rsds": "quadratic"}
    return est.fit(world.coarse, world.fine, "chl", proxies=proxies), world.coarse


def test_amp_is_refused_for_a_model_on_the_cpu(emulator, downscaler):
    est, ds = emulator
    with pytest.raises(ClimlatentError, match="runs on CUDA only; this LLAAE runs on cpu"):
        est.emulate(ds, amp=True)
    with pytest.raises(ClimlatentError, match="this LLAAE runs on cpu"):
        batch.emulate(est, ds.chunk(time=365), amp=True)
    est, coarse = downscaler
    with pytest.raises(ClimlatentError, match="this ProxyDownscaler runs on cpu"):
        est.downscale(coarse, amp=True)


def test_amp_is_refused_for_a_model_without_torch():
    ds = circulation_members(1)
    est = cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=2).fit(ds, "pr", "psl")
    with pytest.raises(ClimlatentError, match="this EOFRegression has no torch model"):
        est.emulate(ds, amp=True)


class _Overflowing:
    def _predict_rows(self, matrices, groups):
        out = matrices[0].copy()
        out[0, 0] = np.inf
        return out


def test_a_block_not_finite_under_amp_is_refused():
    da = xr.DataArray(np.ones((4, 2, 2)), dims=("time", "lat", "lon"), name="psl")
    da = da.assign_coords(lat=[0.0, 1.0], lon=[0.0, 1.0])
    layout = FieldLayout.from_data(da)
    assert np.isinf(map_model(_Overflowing(), [da], layout, layout).values).sum() == 1
    with pytest.raises(ClimlatentError, match="not finite at 1 of 16 values"):
        map_model(_Overflowing(), [da], layout, layout, precision=contextlib.nullcontext)


def _assert_float16_close(amp, full):
    """``amp`` ran in float16 (it differs) and is within float16's precision of ``full``
    at the cells that hold values (both NaN elsewhere)."""
    valid = np.isfinite(full)
    np.testing.assert_array_equal(np.isfinite(amp), valid)
    assert not np.array_equal(amp[valid], full[valid])
    assert np.abs(amp[valid] - full[valid]).max() <= FLOAT16_TOLERANCE * full[valid].std()


@contextlib.contextmanager
def _on_cuda(est, predict):
    """``est`` on CUDA for the block, which gets ``predict()`` there, checked against
    the CPU's to float32's rounding; back on the CPU after (the fixtures are shared)."""
    cpu = predict()
    batch.place(est, "cuda")
    try:
        full = predict()
        np.testing.assert_allclose(full, cpu, rtol=1e-4, atol=1e-4 * np.nanstd(cpu))
        yield full
    finally:
        batch.place(est, "cpu")


@CUDA
def test_cuda_emulation_matches_the_cpu_and_amp_stays_within_float16(emulator):
    est, ds = emulator
    with _on_cuda(est, lambda: est.emulate(ds)["pr"].values) as full:
        amp = est.emulate(ds, amp=True)
        assert amp.attrs["history"].endswith("emulate(ds, amp=True)")
        _assert_float16_close(amp["pr"].values, full)
        with batch.scheduler("threads", n_workers=2):  # autocast entered on each thread
            lazy = batch.emulate(est, ds.chunk(time=100), amp=True)["pr"].values
        _assert_float16_close(lazy, full)


@CUDA
def test_cuda_downscaling_matches_the_cpu_and_amp_leaves_it_in_float32(downscaler):
    """The proxy downscaler gathers and combines cells elementwise, without a matrix
    product or convolution: autocast has nothing to run in float16 (torch's lists)."""
    est, coarse = downscaler
    with _on_cuda(est, lambda: est.downscale(coarse)["chl"].values) as full:
        amp = est.downscale(coarse, amp=True)
        assert amp.attrs["history"].endswith("downscale(coarse, amp=True)")
        np.testing.assert_array_equal(amp["chl"].values, full)


@CUDA
def test_a_store_written_with_amp_resumes_only_with_amp(emulator, tmp_path):
    est, ds = emulator
    files = write_members(ds, tmp_path / "members")
    est.device = "cuda"  # where the saved model loads
    try:
        est.save(tmp_path / "m.clm")
    finally:
        est.device = "cpu"
    store = tmp_path / "pr.zarr"
    batch.emulate_to_zarr(tmp_path / "m.clm", files, store, amp=True, progress=False)
    full = batch.emulate_to_zarr(tmp_path / "m.clm", files, tmp_path / "f.zarr", progress=False)
    _assert_float16_close(xr.open_zarr(store)["pr"].values, xr.open_zarr(full)["pr"].values)
    with pytest.raises(cl.zarr_store.StoreMismatchError, match="fingerprint"):
        batch.emulate_to_zarr(tmp_path / "m.clm", files, store, progress=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_the_gpu_checks_script_refuses_a_machine_without_cuda(tmp_path):
    root = Path(__file__).resolve().parents[1]
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}  # this python first
    result = subprocess.run(
        ["bash", "scripts/gpu_checks", str(tmp_path / "logs")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "no CUDA device here" in result.stderr
    assert list((tmp_path / "logs").iterdir()) == []  # no step ran
