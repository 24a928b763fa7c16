"""Batched inference: the same numbers whatever the batch size or device."""

import numpy as np
import pytest
import torch

from climlatent.estimators._torch import inference, inference_batch_size


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
