"""Standard normal draws addressed by seed, realisation, sample row and cell.

A stochastic downscaling of a lazy ensemble draws its noise block by block. For the
result not to depend on how the blocks are cut (by ``time_chunk``, by the scheduler,
eagerly or lazily), the draws of a sample row must come from its address (its
member's label and its date: :mod:`climlatent.draw_addresses`), not from the order
the blocks run in. Philox is a counter-based generator: the draws of the row at
address ``r`` start at counter ``r * stride``, reached in constant time
(``Philox.advance``), whatever was drawn before; the Box-Muller transform turns each
pair of uniforms into a pair of normals, so that every row uses a fixed number of
them. A model that draws two kinds of noise (a latent map, then fine cells) takes them
from two streams of the same key, 2**128 counter steps apart.

Every output holding random draws (a stochastic downscaling, ``VED.sample``, the
generative models' ``sample``, the weather generator, a deep prior's posterior) holds
them along one dim, ``realization``, numbered ``0 .. n - 1`` by :func:`realizations`:
CF's ``standard_name: realization``, an ensemble member index, as CMIP numbers its
members. (Earlier releases named a prior's draws ``sample``, without a coordinate:
``out.rename(realization="sample")`` gives code written for them their layout.) An input
with a dim or a scalar coordinate ``realization`` is refused where draws are added to its
dims (:func:`climlatent.draw_addresses.check_draw_dim_free`): draws and members never
share a dim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

RAW_PER_COUNTER = 4  # 64-bit outputs of one Philox counter step
STREAM_STEPS = 2**128  # counter steps between streams: more than any ensemble's draws
REALIZATION_DIM = "realization"  # CF: the axis of an ensemble of realisations
#: What the draws along ``realization`` are, as their coordinate's ``long_name``.
PRIOR_DRAW = "prior draw"
CONDITIONAL_DRAW = "draw of the conditional distribution"


def decoded_draws_comment(kind: str, noise: bool) -> str:
    """What fields decoded from latent draws are, as their variables' ``comment``.

    ``kind``: the latent draws, `PRIOR_DRAW` or `CONDITIONAL_DRAW`; ``noise``: whether
    the decoder's output noise ``N(0, sigma^2)`` was added to its mean.

    Examples
    --------
    >>> decoded_draws_comment(PRIOR_DRAW, noise=False)
    "decoder mean of each prior draw, without the decoder's output noise"
    """
    if noise:
        return f"decoder mean of each {kind} plus the decoder's output noise N(0, sigma^2)"
    return f"decoder mean of each {kind}, without the decoder's output noise"


def realizations(n: int, long_name: str) -> xr.DataArray:
    """The coordinate of ``n`` draws: ``0 .. n - 1`` along ``realization``, CF's.

    Examples
    --------
    >>> coord = realizations(3, PRIOR_DRAW)
    >>> coord.dims, coord.values.tolist(), coord.attrs["standard_name"]
    (('realization',), [0, 1, 2], 'realization')
    """
    attrs = {"standard_name": "realization", "long_name": long_name, "units": "1"}
    return xr.DataArray(np.arange(n), dims=REALIZATION_DIM, attrs=attrs)


@dataclass(frozen=True)
class Draws:
    """Stochastic realisations of a mapped model: how many, and their seed.

    Examples
    --------
    >>> Draws(n=3, seed=1)
    Draws(n=3, seed=1)
    """

    n: int
    seed: int = 0

    def __post_init__(self) -> None:
        if not _whole(self.n) or self.n < 1:
            raise ValueError(f"the number of draws must be a positive integer, got {self.n!r}")
        if not _whole(self.seed) or not 0 <= self.seed < 2**64:
            raise ValueError(f"seed must be an integer in [0, 2**64), got {self.seed!r}")


def _whole(value: object) -> bool:
    """An integer (numpy's too), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def standard_normal_rows(
    seed: int, realization: int, first_row: int, n_rows: int, n_cells: int, stream: int = 0
) -> np.ndarray:
    """Standard normal draws of rows ``first_row ... first_row + n_rows - 1``.

    Parameters
    ----------
    seed : int
        Seed of the whole computation (non-negative).
    realization : int
        Which realisation: each has its own stream (the Philox key is ``(seed,
        realization)``).
    first_row : int
        Address of the first row (`climlatent.draw_addresses`); the others follow it.
    n_rows, n_cells : int
        Rows and draws per row.
    stream : int
        Which of a model's kinds of noise (0, 1, ...).

    Returns
    -------
    np.ndarray
        float32 ``(n_rows, n_cells)``; a row's draws depend on ``seed``,
        ``realization``, ``stream``, its global index and ``n_cells`` only.

    Examples
    --------
    >>> whole = standard_normal_rows(seed=0, realization=0, first_row=0, n_rows=5, n_cells=3)
    >>> tail = standard_normal_rows(seed=0, realization=0, first_row=2, n_rows=3, n_cells=3)
    >>> bool((whole[2:] == tail).all())
    True
    """
    return standard_normal_runs(seed, realization, ((first_row, n_rows),), n_cells, stream)


def standard_normal_runs(
    seed: int,
    realization: int,
    runs: Sequence[tuple[int, int]],
    n_cells: int,
    stream: int = 0,
) -> np.ndarray:
    """`standard_normal_rows` of several runs of rows ``(first row, count)``, stacked.

    One Philox generator serves every run, its counter set to the run's first row
    (as ``advance`` from 0 would put it): a block of rows addressed one by one (one
    date each) cost a generator each, 44 us a row, where this costs a few.

    Examples
    --------
    >>> runs = standard_normal_runs(seed=3, realization=1, runs=((9, 1), (2, 2)), n_cells=5)
    >>> each = [standard_normal_rows(3, 1, first, count, 5) for first, count in ((9, 1), (2, 2))]
    >>> bool((runs == np.concatenate(each)).all())
    True
    """
    if min(seed, realization, stream, *(first for first, _ in runs)) < 0:
        raise ValueError(
            f"seed, realization, rows and stream must be non-negative, got {seed}, "
            f"{realization}, {min(first for first, _ in runs)}, {stream}"
        )
    stride = RAW_PER_COUNTER * -(-n_cells // RAW_PER_COUNTER)  # even: whole pairs
    if seed >= 2**64:
        raise ValueError(f"seed must be below 2**64, got {seed}")
    # uint64: a list of Python ints holding one >= 2**63 became float64, and nearby
    # seeds gave the same key
    bits = np.random.Philox(key=np.array([seed, realization], dtype=np.uint64))
    generator, start = np.random.Generator(bits), bits.state
    uniform = np.empty((sum(count for _, count in runs), stride))
    row = 0
    for first, count in runs:
        step = stream * STREAM_STEPS + first * stride // RAW_PER_COUNTER
        words = [(step >> (64 * word)) & (2**64 - 1) for word in range(4)]
        counter = np.array(words, dtype=np.uint64)  # the counter of advance(step) from 0
        bits.state = {**start, "state": {**start["state"], "counter": counter}}
        uniform[row : row + count] = generator.random((count, stride))
        row += count
    radius = np.sqrt(-2.0 * np.log1p(-uniform[:, 0::2]))  # 1 - u in (0, 1]
    angle = 2.0 * np.pi * uniform[:, 1::2]
    normal = np.empty(uniform.shape, np.float32)
    normal[:, 0::2] = radius * np.cos(angle)
    normal[:, 1::2] = radius * np.sin(angle)
    return normal[:, :n_cells]


@dataclass(frozen=True)
class BlockNormals:
    """The standard normal draws of one block of rows, for a model that draws.

    ``rows``: the block's rows as runs ``(first global row, count)``. Calling it with a
    realisation, a stream and a width gives that noise for the block's rows, in order.

    Examples
    --------
    >>> normals = BlockNormals(Draws(n=2, seed=5), rows=((0, 2), (10, 2)))
    >>> normals(realization=1, stream=0, n_cells=3).shape
    (4, 3)
    """

    draws: Draws
    rows: tuple[tuple[int, int], ...]

    @property
    def n(self) -> int:
        """The realisations to draw."""
        return self.draws.n

    def __call__(self, realization: int, stream: int, n_cells: int) -> np.ndarray:
        """float32 ``(rows, n_cells)`` standard normal draws."""
        return standard_normal_runs(self.draws.seed, realization, self.rows, n_cells, stream)
