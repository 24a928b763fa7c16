import dask
import dask.array
import numpy as np
import pytest
import xarray as xr

from climlatent.batching import FieldLayout, from_matrix, map_model, sample_coords, to_matrix
from conftest import rectilinear


@pytest.fixture
def masked_ensemble():
    """member x time x lat x lon with a fixed NaN mask and an extra attribute."""
    base = rectilinear(n_time=4)
    da = xr.concat([base, base * 2], dim=xr.DataArray(["a", "b"], dims="member", name="member"))
    da = da.where(da.lat > -30)  # southern rows masked
    da.attrs = {"units": "K", "long_name": "x"}
    return da.transpose("lat", "member", "time", "lon")  # unusual dimension order


def test_layout_counts_valid_cells(masked_ensemble):
    layout = FieldLayout.from_data(masked_ensemble)
    n_valid_rows = int((masked_ensemble.lat > -30).sum())
    assert layout.n_features == n_valid_rows * masked_ensemble.sizes["lon"]
    assert layout.sample_dims(masked_ensemble) == ("member", "time")


def test_matrix_round_trip_keeps_coords_mask_and_values(masked_ensemble):
    layout = FieldLayout.from_data(masked_ensemble)
    matrix = to_matrix(masked_ensemble, layout, dtype=np.float64)
    assert matrix.shape == (2 * 4, layout.n_features)
    assert np.isfinite(matrix).all()
    back = from_matrix(matrix, layout, sample_coords(masked_ensemble, layout))
    expected = masked_ensemble.transpose("member", "time", "lat", "lon")
    xr.testing.assert_identical(back.assign_attrs(expected.attrs).rename(expected.name), expected)


def test_rows_follow_c_order_of_sample_dims(masked_ensemble):
    layout = FieldLayout.from_data(masked_ensemble)
    matrix = to_matrix(masked_ensemble, layout, dtype=np.float64)
    cell = masked_ensemble.isel(lat=-1, lon=0)
    column = int(
        layout.mask[: (masked_ensemble.sizes["lat"] - 1) * masked_ensemble.sizes["lon"]].sum()
    )
    np.testing.assert_array_equal(
        matrix[:, column], cell.transpose("member", "time").values.ravel()
    )


def test_layout_survives_netcdf(tmp_path, masked_ensemble):
    layout = FieldLayout.from_data(masked_ensemble)
    layout.to_dataset().to_netcdf(tmp_path / "g.nc")
    again = FieldLayout.from_dataset(xr.open_dataset(tmp_path / "g.nc").load())
    np.testing.assert_array_equal(again.mask, layout.mask)
    assert again.spatial_dims == layout.spatial_dims and again.name == layout.name


class Affine:
    """A row model: ``3 x + 1`` of the first field, plus the second and the row's group."""

    def __init__(self, n_out=None):
        self.calls, self.n_out = [], n_out

    def _predict_rows(self, matrices, groups):
        self.calls.append(matrices[0].shape[0])
        if self.n_out is not None:
            return np.ones((matrices[0].shape[0], self.n_out))
        return 3 * matrices[0] + 1 + sum(matrices[1:]) + groups[:, None]


def test_map_model_is_lazy_and_matches_eager(masked_ensemble):
    layout = FieldLayout.from_data(masked_ensemble)
    model = Affine()
    eager = map_model(model, [masked_ensemble], layout, layout)
    assert model.calls == [8]  # one call for the whole field
    lazy = map_model(model, [masked_ensemble.chunk(member=1, time=2)], layout, layout)
    assert isinstance(lazy.data, dask.array.Array)
    assert model.calls == [8]  # nothing computed yet
    with dask.config.set(scheduler="synchronous"):
        result = lazy.compute()
    assert sorted(model.calls[1:]) == [2, 2, 2, 2]  # one call per chunk of 1 x 2 samples
    xr.testing.assert_identical(result, eager)
    expected = 3 * masked_ensemble.transpose("member", "time", "lat", "lon") + 1
    np.testing.assert_allclose(eager.values, expected.values, rtol=1e-6)
    np.testing.assert_array_equal(eager.member.values, ["a", "b"])


def test_map_model_gives_each_row_its_group_and_every_field(masked_ensemble):
    layout = FieldLayout.from_data(masked_ensemble)
    months = xr.DataArray([10.0, 20.0, 30.0, 40.0], dims="time")
    second = -masked_ensemble  # cancels 1 x of the first
    fields = [masked_ensemble, second]
    expected = (2 * masked_ensemble + 1 + months).transpose("member", "time", "lat", "lon")
    eager = map_model(Affine(), fields, layout, layout, months)
    np.testing.assert_allclose(eager.values, expected.values, rtol=1e-6)
    chunked = [masked_ensemble.chunk(member=1, time=2), second.chunk(member=2, time=(1, 3))]
    lazy = map_model(Affine(), chunked, layout, layout, months)
    assert lazy.chunks[:2] == ((1, 1), (1, 1, 2))  # the chunks unified across the fields
    xr.testing.assert_identical(lazy.compute(scheduler="sync"), eager)


def test_map_model_to_another_grid(masked_ensemble):
    source = FieldLayout.from_data(masked_ensemble)
    fine = rectilinear(n_lat=12, n_lon=16)
    target = FieldLayout.from_data(fine)
    out = map_model(Affine(n_out=target.n_features), [masked_ensemble], source, target)
    assert out.sizes == {"member": 2, "time": 4, "lat": 12, "lon": 16}
    np.testing.assert_array_equal(out.lat.values, fine.lat.values)
    assert out.lat.attrs["standard_name"] == "latitude"


def test_map_model_refuses_output_of_the_wrong_width(masked_ensemble):
    layout = FieldLayout.from_data(masked_ensemble)
    with pytest.raises(ValueError, match="model output has shape"):
        map_model(Affine(n_out=3), [masked_ensemble], layout, layout)


@pytest.mark.parametrize("pattern", ["random", "all valid", "ends invalid", "one cell"])
def test_matrix_lands_on_the_valid_cells_whatever_their_runs(pattern):
    rng = np.random.default_rng(3)
    valid = {
        "random": rng.random((6, 7)) < 0.6,  # runs of one to a few cells
        "all valid": np.ones((6, 7), bool),
        "ends invalid": np.pad(np.ones((4, 7), bool), ((1, 1), (0, 0))),
        "one cell": np.eye(1, 42, 20, dtype=bool).reshape(6, 7),
    }[pattern]
    da = rectilinear(n_time=5).isel(lat=slice(0, 6), lon=slice(0, 7))
    da = da.transpose("time", "lat", "lon").where(valid)
    layout = FieldLayout.from_data(da)
    matrix = rng.normal(size=(5, int(valid.sum())))
    back = from_matrix(matrix, layout, sample_coords(da, layout)).values
    expected = np.full((5, 6, 7), np.nan)
    expected[:, valid] = matrix  # numpy's boolean assignment: the independent truth
    np.testing.assert_array_equal(back, expected)
