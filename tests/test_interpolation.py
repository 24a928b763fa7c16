"""The interpolation operator U as a sparse product, against numpy's gather and sum."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from climlatent.models.interpolation import CoarseToFine


def _kernel(seed, n_fine=40, n_coarse=12, k=5):
    """Random neighbours (some named twice in a row, unsorted) and weights."""
    rng = np.random.default_rng(seed)
    neighbours = rng.integers(0, n_coarse, (n_fine, k))
    weights = rng.uniform(-1, 2, (n_fine, k))
    return neighbours, weights


def _reference(coarse, neighbours, weights):
    """sum_j weights[i, j] * coarse[..., neighbours[i, j]] in float64."""
    return (coarse[..., neighbours] * weights).sum(-1)


@pytest.mark.parametrize("lead", [(3,), (2, 4), ()])
def test_interpolation_equals_the_gather_and_sum_with_repeated_neighbours(lead):
    neighbours, weights = _kernel(0)
    assert any(len(set(row)) < len(row) for row in neighbours.tolist())  # repeats
    coarse = np.random.default_rng(1).normal(size=(*lead, 12))
    module = CoarseToFine(torch.from_numpy(neighbours), torch.from_numpy(weights), 12, False)
    out = module.interpolate(torch.from_numpy(coarse).float())
    assert out.shape == (*lead, 40)
    np.testing.assert_allclose(out.numpy(), _reference(coarse, neighbours, weights), atol=2e-6)


def test_gradients_of_the_weights_and_the_coarse_field_are_the_gathers():
    neighbours, weights = _kernel(2)
    coarse = torch.from_numpy(np.random.default_rng(3).normal(size=(6, 12))).float()
    target = torch.from_numpy(np.random.default_rng(4).normal(size=(6, 40))).float()
    module = CoarseToFine(torch.from_numpy(neighbours), torch.from_numpy(weights), 12, True)
    x = coarse.clone().requires_grad_()
    ((module.interpolate(x) - target) ** 2).sum().backward()
    w_ref = torch.from_numpy(weights).float().requires_grad_()
    x_ref = coarse.clone().requires_grad_()
    ((_reference(x_ref, torch.from_numpy(neighbours), w_ref) - target) ** 2).sum().backward()
    torch.testing.assert_close(module.weights.grad, w_ref.grad, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-4)


def test_weights_changed_in_place_or_loaded_are_used_at_once():
    neighbours, weights = _kernel(5)
    coarse = torch.from_numpy(np.random.default_rng(6).normal(size=(3, 12))).float()
    module = CoarseToFine(torch.from_numpy(neighbours), torch.from_numpy(weights), 12, False)
    with torch.inference_mode():
        module.interpolate(coarse)  # the fixed kernel's values kept from here
    with torch.no_grad():
        module.weights.mul_(2.0)
    expected = 2 * _reference(coarse.double().numpy(), neighbours, weights)
    np.testing.assert_allclose(module.interpolate(coarse).numpy(), expected, atol=4e-6)
    # values kept under inference mode serve a differentiable call on the coarse field
    x = coarse.clone().requires_grad_()
    module.interpolate(x).sum().backward()
    assert x.grad.shape == x.shape
    other, other_weights = _kernel(7)  # other neighbours: the CSR layout follows them
    module.load_state_dict(
        {"neighbours": torch.from_numpy(other), "weights": torch.from_numpy(other_weights)}
    )
    np.testing.assert_allclose(
        module.interpolate(coarse).numpy(),
        _reference(coarse.double().numpy(), other, other_weights),
        atol=2e-6,
    )


def test_neighbours_outside_the_coarse_field_are_refused():
    with pytest.raises(ValueError, match="names coarse cell 5 of 3"):
        CoarseToFine(torch.tensor([[0, 5]]), torch.ones(1, 2), 3, False)
    with pytest.raises(ValueError, match="negative"):
        CoarseToFine(torch.tensor([[0, -1]]), torch.ones(1, 2), 3, False)
    module = CoarseToFine(torch.tensor([[0, 2]]), torch.ones(1, 2), 3, False)
    with pytest.raises(RuntimeError, match="cannot be multiplied"):  # a field of 2 cells
        module.interpolate(torch.ones(4, 2))


def test_a_pickled_module_interpolates_as_the_original():
    neighbours, weights = _kernel(8)
    module = CoarseToFine(torch.from_numpy(neighbours), torch.from_numpy(weights), 12, False)
    coarse = torch.from_numpy(np.random.default_rng(9).normal(size=(2, 12))).float()
    expected = module.interpolate(coarse)
    copy = pickle.loads(pickle.dumps(module))  # torch.save, process pools
    torch.testing.assert_close(copy.interpolate(coarse), expected, rtol=0, atol=0)
    copy.load_state_dict(module.state_dict())  # its load hook survived


def test_importing_climlatent_leaves_the_warning_filters_as_they_were():
    """A filter for torch's sparse-CSR notice was installed at import, for the whole
    process; the notice is taken at import under a filter of its own, and still never
    reaches the user."""
    script = """
import warnings
import cf_xarray, dask.array, pandas, pint, scipy.sparse, torch, xarray
before = list(warnings.filters)
import climlatent, climlatent.estimators, climlatent.models.interpolation as interpolation
assert warnings.filters == before, [f for f in warnings.filters if f not in before]
warnings.simplefilter("error")
module = interpolation.CoarseToFine(torch.tensor([[0, 1]]), torch.tensor([[0.5, 0.5]]), 2, False)
assert module.interpolate(torch.tensor([1.0, 3.0])).tolist() == [2.0]
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
