"""The plausible-range check names the values it refuses, eager or lazy."""

import numpy as np
import pytest
import xarray as xr

from climlatent.errors import InputDataError
from climlatent.estimators.weather import weather_generator
from climlatent.fitted_range import FittedRange
from climlatent.io import open_dataset, to_netcdf


def _field_with_two_fills() -> xr.DataArray:
    values = np.full((50, 2), 280.0)
    values[30, 1] = values[40, 0] = 1e30
    return xr.DataArray(values, dims=("time", "x"), coords={"time": np.arange(50)}, name="tas")


def test_eager_refusal_counts_every_bad_value_and_names_the_first():
    with pytest.raises(InputDataError, match="has 2 value.*the first is 1e.30 at time=30, x=1"):
        FittedRange("tas", 270.0, 290.0).check(_field_with_two_fills(), "proxy", 5.0)


def test_lazy_refusal_says_its_count_is_of_one_block():
    """A block's count was given as the field's (1 of 2), its first as the first."""
    lazy = FittedRange("tas", 270.0, 290.0).check(
        _field_with_two_fills().chunk(time=7), "proxy", 5.0
    )
    with pytest.raises(InputDataError, match=r"has at least 1 value.*one in a block is 1e\+30"):
        lazy.compute(scheduler="sync")


@pytest.mark.parametrize("n_fills", [1, 2, 30])  # up to 47 % of the values
def test_training_fill_values_are_refused_however_many(n_fills):
    # One unmasked land cell of 64 is 1.6 % of the values: the 99.9 % quantile was the
    # fill value, nothing was refused, and the fitted range reached 1e20 Pa.
    rng = np.random.default_rng(0)
    values = 1.0e5 + 500.0 * rng.normal(size=(120, 64))
    values[:, :n_fills] = 1e20
    psl = xr.DataArray(values, dims=("time", "cell"), name="psl", attrs={"units": "Pa"})
    with pytest.raises(InputDataError, match=r"psl.*1e\+20.*Mask it before fitting"):
        FittedRange.fit(psl, "proxy", 5.0)


def test_fill_values_masked_as_the_refusal_says_give_the_range_of_the_other_values(tmp_path):
    """ "Mask it (set its _FillValue, or .where())": a _FillValue set on the array in
    memory masks nothing (the same refusal); the file's attribute, or .where, does."""
    rng = np.random.default_rng(0)
    values = 1.0e5 + 500.0 * rng.normal(size=(120, 64))
    values[:, :2] = 1e20
    psl = xr.DataArray(values, dims=("time", "cell"), name="psl", attrs={"units": "Pa"})
    with pytest.raises(InputDataError, match="in its file") as info:
        FittedRange.fit(psl, "proxy", 5.0)
    assert "set its _FillValue" not in str(info.value)
    expected = (values[:, 2:].min(), values[:, 2:].max())
    masked = FittedRange.fit(psl.where(psl != 1e20), "proxy", 5.0)
    assert (masked.minimum, masked.maximum) == expected
    psl.encoding["_FillValue"] = 1e20  # the file's attribute
    with open_dataset(to_netcdf(psl.to_dataset(), tmp_path / "psl.nc")) as ds:
        opened = FittedRange.fit(ds["psl"].load(), "proxy", 5.0)
    assert (opened.minimum, opened.maximum) == expected
    assert FittedRange.fit(psl, "proxy", None).maximum == 1e20  # no check asked for


@pytest.mark.parametrize(
    "values",
    [
        np.r_[np.zeros(900), np.geomspace(1e-7, 3e-3, 100)],  # dry days and a storm
        np.r_[np.zeros(800), np.linspace(0.01, 1.0, 200)],  # sea ice: mostly none
        np.random.default_rng(1).standard_t(2, 10000),  # heavy tails about 0
    ],
)
def test_heavy_tailed_training_data_is_accepted(values):
    pr = xr.DataArray(values, dims="time", name="pr", attrs={"units": "kg m-2 s-1"})
    fitted = FittedRange.fit(pr, "target", 5.0)
    assert (fitted.minimum, fitted.maximum) == (values.min(), values.max())


def _with_fill(ds: xr.Dataset, name: str, dim: str, index: int) -> xr.Dataset:
    """``ds`` with every value of ``name`` at ``dim=index`` an unmasked fill value."""
    return ds.assign({name: ds[name].where(ds[dim] != ds[dim][index], 1e20)})


def _ved():
    import climlatent as cl

    rng = np.random.default_rng(0)
    k = rng.normal(size=(32, 4, 4))
    ds = xr.Dataset(
        {
            "k": (("sample", "y", "x"), k, {"units": "1"}),
            "p": (("sample", "y", "x"), 3 * k, {"units": "m"}),
        }
    )
    return (
        cl.VED(latent_dim=2, hidden=8, epochs=1, progress=False).fit(ds, target="p", proxy="k"),
        ds,
        "k",
        "sample",
    )


def _vae_dlm():
    from climlatent.estimators.vae_dlm import VAEDLM
    from climlatent.reference.burgers import generate

    ds = generate(8, nx=16, nt=3, seed=0)
    model = VAEDLM(intrinsic_dim=2, extrinsic_dim=3, hidden=8, geometry_hidden=4, epochs=1,
                   progress=False).fit(ds, target="u")  # fmt: skip
    return model, ds, "u", "sample"


def _eof():
    import climlatent as cl

    ds = cl.datasets.synthetic_circulation(n_members=1, n_years=2, n_lat=4, n_lon=4)
    return cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=2).fit(ds, "pr", "psl"), ds, "psl", "time"


@pytest.mark.parametrize(
    ("build", "call"),
    [
        (_ved, lambda model, ds, **kw: model.encode(ds, **kw)),
        (_ved, lambda model, ds, **kw: model.posterior(ds, **kw)[1]),
        (_ved, lambda model, ds, **kw: model.sample(ds, n_samples=2, **kw)["p"]),
        (_vae_dlm, lambda model, ds, **kw: model.encode(ds, **kw)),
        (_vae_dlm, lambda model, ds, **kw: model.latent_metric(ds, **kw)["induced"]),
        (_eof, lambda model, ds, **kw: weather_generator(model, ds, 2, "bootstrap", **kw)["pr"]),
    ],
    ids=[
        "VED.encode",
        "VED.posterior",
        "VED.sample",
        "VAEDLM.encode",
        "VAEDLM.latent_metric",
        "weather_generator",
    ],  # fmt: skip
)
def test_a_refusal_telling_to_pass_check_range_false_is_answered_by_that_call(build, call):
    """Each call that checks the range takes the ``check_range=False`` its refusal names.

    These took no such argument: following the advice raised a TypeError. Samples other
    than the filled one keep the numbers of the data without it.
    """
    model, ds, name, dim = build()
    filled = _with_fill(ds, name, dim, 3)
    with pytest.raises(InputDataError, match="pass check_range=False"):
        call(model, filled)
    expected, result = call(model, ds), call(model, filled, check_range=False)
    others = {dim: [i for i in range(ds.sizes[dim]) if i != 3]}
    if dim in expected.dims and "realization" not in expected.dims:  # per sample
        np.testing.assert_array_equal(result.isel(others).values, expected.isel(others).values)
    xr.testing.assert_identical(call(model, ds, check_range=False), expected)
