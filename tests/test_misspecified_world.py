"""The misspecified-world study's pseudo-truth: exact on a world its family contains."""

import numpy as np
import pytest

from climlatent.datasets.biogeochem import synthetic_biogeochem
from climlatent.studies.misspecified_world import pseudo_truth

FACTOR = 4


def _blockwise(world, b=0.05, ratio=-8e-4):
    """The world with fine drivers constant over each coarse block and an in-family law.

    Aggregating the log chlorophyll to the coarse grid is then exact, so the
    least-squares projection on the family must return the law's own parameters.
    """

    def repeat(da):
        return np.repeat(np.repeat(da, FACTOR, axis=-2), FACTOR, axis=-1)

    coarse = world.coarse
    tos = repeat(coarse.tos.values.astype(np.float64)) - 273.15
    rsds = repeat(coarse.rsds.values.astype(np.float64))
    pattern = repeat(np.random.default_rng(0).lognormal(size=coarse.tos.shape[-2:]))
    chl = 1e-7 * pattern * np.exp(b * tos) * (rsds + ratio * rsds**2)
    truth = world.truth.assign(chl_noise_free=world.fine.chl.copy(data=chl))
    return world._replace(truth=truth)


def test_pseudo_truth_is_the_law_itself_when_the_family_holds_it():
    world = _blockwise(synthetic_biogeochem(n_years=2, n_fine_lat=16, n_fine_lon=24, factor=FACTOR))
    fitted = pseudo_truth(world, FACTOR)
    assert fitted.b == pytest.approx(0.05, rel=1e-6)
    assert fitted.ratio == pytest.approx(-8e-4, rel=1e-4)


def test_omitted_nutrient_lowers_the_pseudo_true_temperature_sensitivity():
    """Nutrient is poorer in warm water: the best exponential grows more slowly."""
    shared = {"n_years": 2, "n_fine_lat": 16, "n_fine_lon": 24, "factor": FACTOR, "seed": 1}
    plain = pseudo_truth(synthetic_biogeochem(**shared), FACTOR)
    limited = pseudo_truth(synthetic_biogeochem(**shared, nutrient_half_saturation=0.8), FACTOR)
    assert limited.b < plain.b - 0.02
