"""The plausible-range check names the values it refuses, eager or lazy."""

import numpy as np
import pytest
import xarray as xr

from climlatent.errors import InputDataError
from climlatent.fitted_range import FittedRange


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
    with pytest.raises(InputDataError, match=r"psl.*1e\+20.*Mask it .* before fitting"):
        FittedRange.fit(psl, "proxy", 5.0)
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
