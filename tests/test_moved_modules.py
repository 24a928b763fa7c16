"""The reference cases under their old ``climlatent.benchmarks`` names, for one release."""

import importlib

import pytest

from climlatent.errors import ClimlatentDeprecationWarning


@pytest.mark.parametrize("name", ["darcy", "burgers"])
def test_old_benchmarks_name_warns_and_gives_the_reference_module(name):
    new = importlib.import_module(f"climlatent.reference.{name}")
    with pytest.warns(ClimlatentDeprecationWarning, match=f"climlatent.reference.{name}"):
        old = getattr(importlib.import_module("climlatent.benchmarks"), name)
    assert old is new and old.generate is new.generate
    with pytest.warns(ClimlatentDeprecationWarning, match=f"climlatent.benchmarks.{name}"):
        exec(f"from climlatent.benchmarks import {name} as imported", namespace := {})
    assert namespace["imported"] is new


def test_other_names_are_still_missing():
    import climlatent.benchmarks as benchmarks

    with pytest.raises(AttributeError, match="no attribute 'darcy_study'"):
        benchmarks.darcy_study  # noqa: B018
