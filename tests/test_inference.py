"""Batched inference: the same numbers whatever the batch size or device."""

import numpy as np
import pytest
import torch

from climlatent.estimators import _torch
from climlatent.estimators._torch import (
    CPU_TENSOR_BYTES,
    INFERENCE_BATCH,
    PROBE_ROWS,
    inference,
    inference_batch_size,
)


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))


def test_batches_concatenate_to_one_full_pass():
    x = np.random.default_rng(0).normal(size=(1001, 6)).astype(np.float32)
    model = _model()
    expected = model(torch.from_numpy(x)).detach().numpy()
    for batch_size in (1, 7, 1000, None):
        result = inference(model, x, device=torch.device("cpu"), batch_size=batch_size)
        np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-6)
        assert result.dtype == np.float32 and result.shape == (1001, 3)


def test_two_inputs_are_sliced_together():
    a, b = np.arange(10.0).reshape(5, 2), np.ones((5, 1))
    result = inference(
        lambda x, y: x.sum(1) + y[:, 0], a, b, device=torch.device("cpu"), batch_size=2
    )
    np.testing.assert_array_equal(result, a.sum(1) + 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_pinned_path_matches_the_cpu():
    x = np.random.default_rng(1).normal(size=(50_000, 6)).astype(np.float32)
    model = _model()
    expected = inference(model, x, device=torch.device("cpu"))
    device = torch.device("cuda")
    assert 1024 <= inference_batch_size(device, row_bytes=24) <= 2**18
    result = inference(model.to(device), x, device=device, batch_size=4096)
    np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-5)


def _recording(func, sizes):
    def call(t):
        sizes.append(len(t))
        return func(t)

    return call


def test_cpu_batches_hold_the_largest_intermediate_to_its_byte_budget():
    torch.manual_seed(0)
    wide = torch.nn.Linear(6, 2**16)  # 256 KiB of activations per row
    x = np.random.default_rng(2).normal(size=(100, 6)).astype(np.float32)
    sizes = []
    result = inference(
        _recording(lambda t: wide(t).sum(1, keepdim=True), sizes), x, device=torch.device("cpu")
    )
    rows = CPU_TENSOR_BYTES // (2**16 * 4)
    assert sizes[0] == PROBE_ROWS and set(sizes[1:-1]) == {rows} and sum(sizes) == 100
    expected = wide(torch.from_numpy(x)).sum(1, keepdim=True).detach().numpy()
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-4)


def test_a_small_model_runs_in_the_largest_batches():
    sizes = []
    x = np.zeros((5000, 6), np.float32)
    inference(_recording(_model(), sizes), x, device=torch.device("cpu"))
    assert sizes == [PROBE_ROWS, INFERENCE_BATCH, 5000 - PROBE_ROWS - INFERENCE_BATCH]


def test_no_rows_give_an_empty_result_of_the_output_width():
    result = inference(_model(), np.zeros((0, 6), np.float32), device=torch.device("cpu"))
    assert result.shape == (0, 3) and result.dtype == np.float32


def test_a_function_returning_a_row_per_batch_is_refused():
    x = np.ones((40, 6), np.float32)
    with pytest.raises(ValueError, match="returned 1 rows for 16"):
        inference(lambda t: t.sum(0, keepdim=True), x, device=torch.device("cpu"))


class _Wide(torch.nn.Module):
    """128 KiB of activations per row: batches of CPU_TENSOR_BYTES // 2**17 rows (32)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.wide = torch.nn.Linear(6, 2**15)
        self.sizes = []

    def forward(self, t):
        self.sizes.append(len(t))
        return self.wide(t).sum(1, keepdim=True)

    def half(self, t):
        self.sizes.append(len(t))
        return self.wide(t)[:, :1]


@pytest.fixture
def probes(monkeypatch):
    """The calls of ``cpu_batch_size``: one per probe."""
    calls, original = [], _torch.cpu_batch_size
    monkeypatch.setattr(_torch, "cpu_batch_size", lambda *a: calls.append(a) or original(*a))
    return calls


def test_a_module_is_probed_once_per_method_and_row_shape(probes):
    model, cpu = _Wide(), torch.device("cpu")
    x = np.random.default_rng(3).normal(size=(100, 6)).astype(np.float32)
    rows = CPU_TENSOR_BYTES // (2**15 * 4)
    rest = 100 - PROBE_ROWS
    batches = [PROBE_ROWS] + [rows] * (rest // rows) + [rest % rows] * bool(rest % rows)
    first = inference(model, x, device=cpu)
    assert model.sizes == batches and len(probes) == 1
    model.sizes.clear()
    # remembered: not probed, and the same batches, so the same bits (a matrix product's
    # sums depend on the rows it is blocked by: the LLAAE's downscale and emulate of one
    # map differed in the last bit when a second call batched from row 0)
    again = inference(model, x, device=cpu)
    assert model.sizes == batches and len(probes) == 1
    np.testing.assert_array_equal(again, first)
    for call, rows_in in ((model.half, x), (model, x[:, None, :])):  # another method, shape
        inference(call, rows_in, device=cpu)
    assert len(probes) == 3


def test_a_short_call_does_not_set_the_batch_of_later_ones(probes):
    model, cpu = _Wide(), torch.device("cpu")
    inference(model, np.ones((3, 6), np.float32), device=cpu)  # probed on 3 rows only
    inference(model, np.ones((40, 6), np.float32), device=cpu)
    assert len(probes) == 2


def test_remembered_batch_sizes_do_not_keep_a_module_alive():
    import gc
    import weakref

    model = _Wide()
    inference(model, np.ones((40, 6), np.float32), device=torch.device("cpu"))
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
