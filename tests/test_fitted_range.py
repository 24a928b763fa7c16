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
