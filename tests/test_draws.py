"""Counter-based standard normal draws: the same numbers whatever the blocks."""

import numpy as np
import pytest
from scipy import stats

from climlatent.draws import BlockNormals, Draws, standard_normal_rows, standard_normal_runs


def test_rows_drawn_in_any_blocks_are_the_rows_drawn_at_once():
    whole = standard_normal_rows(3, 1, first_row=0, n_rows=40, n_cells=7)  # odd: padded rows
    parts = [standard_normal_rows(3, 1, a, b - a, 7) for a, b in [(0, 1), (1, 18), (18, 40)]]
    assert np.array_equal(np.concatenate(parts), whole)
    runs = BlockNormals(Draws(n=2, seed=3), rows=((5, 3), (30, 2)))(1, stream=0, n_cells=7)
    assert np.array_equal(runs, whole[[5, 6, 7, 30, 31]])
    assert whole.dtype == np.float32


def test_draws_are_standard_normal_and_apart_across_seeds_realisations_streams_rows():
    draws = standard_normal_rows(0, 0, 0, 400, 51).ravel()
    assert stats.kstest(draws, "norm").pvalue > 0.01
    assert abs(draws.mean()) < 4 / np.sqrt(draws.size)
    assert draws.std() == pytest.approx(1.0, abs=0.02)
    others = [
        standard_normal_rows(1, 0, 0, 400, 51),  # another seed
        standard_normal_rows(0, 1, 0, 400, 51),  # another realisation
        standard_normal_rows(0, 0, 0, 400, 51, stream=1),  # another stream
        standard_normal_rows(0, 0, 1, 400, 51),  # one row on
    ]
    for other in others:
        assert abs(np.corrcoef(draws, other.ravel())[0, 1]) < 4 / np.sqrt(draws.size)
    pairs = standard_normal_rows(0, 0, 0, 10_000, 2)  # the two normals of one Box-Muller pair
    assert abs(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1]) < 4 / np.sqrt(10_000)


def _advanced_normals(seed, realization, first, count, n_cells, stream):
    """The reference: a Philox advanced from 0 to the row (numpy's advance), Box-Muller."""
    stride = 4 * -(-n_cells // 4)
    bits = np.random.Philox(key=np.array([seed, realization], dtype=np.uint64))
    bits.advance(stream * 2**128 + first * stride // 4)
    u = np.random.Generator(bits).random((count, stride))
    r, angle = np.sqrt(-2.0 * np.log1p(-u[:, 0::2])), 2.0 * np.pi * u[:, 1::2]
    normal = np.empty(u.shape, np.float32)
    normal[:, 0::2], normal[:, 1::2] = r * np.cos(angle), r * np.sin(angle)
    return normal[:, :n_cells]


def test_runs_drawn_with_one_generator_are_numpys_advanced_draws():
    """standard_normal_runs sets one generator's counter per run (a generator per row cost
    44 us; VED.sample drew 2.3-3.2 times slower): bit for bit numpy's advance from 0, for
    addresses beyond 2**64 (a member label's hash sits at bit 60), streams, seeds to 2**64."""
    rng = np.random.default_rng(0)
    for seed in (0, 5, 2**63 + 1, 2**64 - 1):
        runs = tuple(
            (int(rng.integers(2**40)) << int(rng.integers(61)), 1 + k % 3) for k in range(6)
        )
        for stream in (0, 1):
            drawn = standard_normal_runs(seed, 3, runs, 7, stream)
            expected = [
                _advanced_normals(seed, 3, first, count, 7, stream) for first, count in runs
            ]
            assert np.array_equal(drawn, np.concatenate(expected))


def test_negative_addresses_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        standard_normal_rows(-1, 0, 0, 2, 2)


@pytest.mark.parametrize(
    ("n", "seed", "message"),
    [
        (0, 0, "number of draws must be a positive integer"),
        (2.5, 0, "number of draws must be a positive integer"),
        (2, -1, "seed"),
        (2, 1.5, "seed"),
        (2, 2**64, r"seed must be an integer in \[0, 2\*\*64\)"),  # was an OverflowError later
    ],
)
def test_bad_draw_counts_and_seeds_are_refused_at_once(n, seed, message):
    with pytest.raises(ValueError, match=message):
        Draws(n=n, seed=seed)


def test_seeds_beyond_2_to_the_63_are_distinct():
    """Their Philox key became float64: 2**63, 2**63 + 1 and 2**63 + 1000 drew alike."""
    drawn = [standard_normal_rows(seed, 0, 0, 3, 4) for seed in (2**63, 2**63 + 1, 2**64 - 1)]
    assert not np.array_equal(drawn[0], drawn[1]) and not np.array_equal(drawn[1], drawn[2])
    assert np.array_equal(drawn[0], standard_normal_rows(2**63, 0, 0, 3, 4))
