"""The random streams of a training run, each derived from its one ``seed``.

A torch estimator's fit draws for four purposes: the initial ``"weights"``, the
``"validation"`` split, each epoch's batch ``"order"`` and the training ``"noise"``
(a VAE's reparameterisation draws, dropout; one stream per rank). `stream_seed` gives
the seed of each, by the version of the derivation (`TrainingConfig.random_streams`):

* ``1``, the derivation before version 2: the weights, the split and the noise all
  start from ``seed`` itself (the noise replays the draws behind the initial weights;
  epoch 0's order is the split's permutation), and epoch ``e``'s order from ``seed + e``
  (so seed ``s + 1`` trains on seed ``s``'s orders one epoch ahead: replicate runs of
  seeds 0, 1, 2 are not independent). Models and checkpoints written before version 2
  are of version 1, and give the same numbers with it.
* ``2``: numpy's ``SeedSequence(seed, spawn_key=(purpose, *keys))``, a hash of the
  seed, the purpose and its keys (the epoch, the rank): independent streams for every
  purpose, epoch and seed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PURPOSES", "VERSIONS", "stream_seed"]

#: Each purpose of a training run's draws, and its key in version 2's ``spawn_key``.
PURPOSES = {"weights": 0, "validation": 1, "order": 2, "noise": 3}
#: The versions of the derivation (see the module's docstring); the last is the default.
VERSIONS = (1, 2)


def stream_seed(seed: int, version: int, purpose: str, *keys: int) -> int:
    """The seed of the stream of one purpose (and epoch or rank) of a training run.

    Parameters
    ----------
    seed : int
        The run's seed, in ``[0, 2**32)``.
    version : {1, 2}
        The derivation: 1, ``seed + sum(keys)`` (the one before version 2, whose
        streams overlap); 2, independent streams (a `numpy.random.SeedSequence` hash).
    purpose : {"weights", "validation", "order", "noise"}
        What the stream draws; see `PURPOSES`.
    *keys : int
        Further non-negative keys of the stream: the epoch of an ``"order"``, the rank
        of a ``"noise"``.

    Returns
    -------
    int
        A seed in ``[0, 2**32)`` for version 2 (for ``torch.Generator.manual_seed``,
        ``torch.manual_seed``, ``numpy.random.seed`` and ``random.seed``).

    Examples
    --------
    >>> stream_seed(7, 1, "order", 3), stream_seed(8, 1, "order", 2)  # version 1 collides
    (10, 10)
    >>> stream_seed(7, 2, "order", 3) == stream_seed(8, 2, "order", 2)
    False
    >>> stream_seed(7, 2, "weights") == stream_seed(7, 2, "noise", 0)
    False
    """
    if purpose not in PURPOSES:
        raise ValueError(f"unknown random stream {purpose!r}: use one of {list(PURPOSES)}")
    if version == 1:
        return seed + sum(keys)
    if version != 2:
        raise ValueError(f"random_streams must be one of {VERSIONS}, got {version!r}")
    sequence = np.random.SeedSequence(seed, spawn_key=(PURPOSES[purpose], *keys))
    return int(sequence.generate_state(1, np.uint32)[0])
