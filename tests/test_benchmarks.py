"""The benchmarks' own checks: same work on both sides, memory of the right process."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from climlatent.benchmarks import ensemble_pipeline, regrid_cdo, training_throughput
from climlatent.grid import regular_grid
from climlatent.io import to_netcdf


def test_weights_difference_tells_two_trainings_apart():
    torch.manual_seed(0)
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    assert training_throughput.weights_difference(a, a) == 0.0
    difference = training_throughput.weights_difference(a, b)
    assert difference > 1e-3
    with pytest.raises(RuntimeError, match="different weights"):
        training_throughput.check_same_weights(difference, torch.device("cpu"))
    training_throughput.check_same_weights(difference, torch.device("cuda"))  # printed only


def test_measure_reports_that_both_loops_trained_the_same_weights():
    rates = training_throughput.measure(
        n_samples=64, n_features=8, latent_dim=2, hidden=(4,), batch_size=16, epochs=1,
        repeats=2, device="cpu",
    )  # fmt: skip
    assert rates["difference"] == [0.0, 0.0]


def test_worker_peak_rss_is_its_own_not_that_of_the_process_that_started_it():
    big = np.ones(300 * 2**20 // 8)  # this process's peak: at least 300 MiB
    code = (
        "import resource; from climlatent.benchmarks.regrid_memory import peak_rss_mib; "
        "print(peak_rss_mib(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    own, inherited = map(float, done.stdout.split())
    assert big.sum() > 0
    if sys.platform == "linux":
        assert inherited >= 300 > own + 50


def _outputs(folder, ours, cdo, lat_shift=0.0):
    grid = regular_grid(np.linspace(-90.0, 90.0, 3), np.linspace(0.0, 360.0, 3))
    for tool, values, shift in (("climlatent", ours, lat_shift), ("cdo", cdo, 0.0)):
        ds = grid.assign(tas=(("lat", "lon"), np.asarray(values)))
        to_netcdf(ds.assign_coords(lat=ds.lat + shift), folder / f"{tool}_a.nc")


def test_max_difference_refuses_nan_in_one_output_only(tmp_path):
    _outputs(tmp_path, [[1.0, 2.0], [3.0, np.nan]], [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(AssertionError, match="1 cells NaN in one output only"):
        regrid_cdo.max_difference(tmp_path, "a")


def test_max_difference_takes_coordinates_a_rounding_apart_and_refuses_others(tmp_path):
    values = [[1.0, 2.0], [3.0, 4.0]]
    _outputs(tmp_path, values, values, lat_shift=1e-13)  # as r45x22 against CDO's
    assert regrid_cdo.max_difference(tmp_path, "a") == 0.0
    _outputs(tmp_path, values, values, lat_shift=1e-3)
    with pytest.raises(AssertionError, match="lat"):
        regrid_cdo.max_difference(tmp_path, "a")


def test_pipeline_check_refuses_a_wrong_block_and_a_missing_one():
    expected = np.arange(12.0, dtype=np.float32).reshape(2, 6)
    check = ensemble_pipeline._Compare(expected)
    with pytest.raises(AssertionError, match="differs from the eager"):
        check[0:1, :] = expected[1:2]
    check[1:2, :] = expected[1:2]
    with pytest.raises(RuntimeError, match="wrote 6 of 12"):
        check.verify()
