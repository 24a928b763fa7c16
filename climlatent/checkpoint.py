"""Training checkpoints: random states, run fingerprints and atomic, weights-only files.

A checkpoint holds tensors and plain Python types only, so that it loads with
``torch.load(..., weights_only=True)`` and never executes code. Its fingerprint
records what determines the run (settings, the data's shapes and a digest of its
values, model configuration), so that a resumed run can refuse a checkpoint of
another one.
"""

from __future__ import annotations

import hashlib
import os
import random
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from climlatent.atomic import written_atomically
from climlatent.errors import CheckpointError

__all__ = [
    "fingerprint_changes",
    "load_checkpoint",
    "rng_state",
    "run_fingerprint",
    "save_checkpoint",
    "seed_everything",
    "set_rng_state",
]


def seed_everything(seed: int) -> None:
    """Seed the global torch, numpy and python generators.

    Parameters
    ----------
    seed : int
        Seed in ``[0, 2**32)``.

    Examples
    --------
    >>> seed_everything(3)
    >>> first = torch.rand(2)
    >>> seed_everything(3)
    >>> bool(torch.equal(first, torch.rand(2)))
    True
    """
    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (the global state that user code draws from)
    random.seed(seed)


def rng_state() -> dict[str, Any]:
    """All global random states as tensors and plain types, loadable with ``weights_only``.

    Returns
    -------
    dict
        Torch CPU and CUDA, numpy and python states; `set_rng_state` restores them.

    Examples
    --------
    >>> state = rng_state()
    >>> first = torch.rand(2)
    >>> set_rng_state(state)
    >>> bool(torch.equal(first, torch.rand(2)))
    True
    """
    name, key, position, has_gauss, gauss = np.random.get_state()  # noqa: NPY002 (global)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (name, torch.from_numpy(key.astype(np.int64)), position, has_gauss, gauss),
        "python": random.getstate(),
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore the global random states saved by `rng_state`.

    Parameters
    ----------
    state : mapping
        A `rng_state` result, possibly after a save/load round trip.

    Examples
    --------
    >>> state = rng_state()
    >>> set_rng_state(state)
    """
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        # one state per GPU of the machine that wrote it: a resume on fewer GPUs (the
        # device may change) restores those it has, not an IndexError
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])
    name, key, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), position, has_gauss, gauss))  # noqa: NPY002
    random.setstate(state["python"])


def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write ``state`` atomically (`climlatent.atomic.written_atomically`).

    A failed write (a full disk) leaves the checkpoint written before as it was, and
    no temporary file.

    Parameters
    ----------
    state : mapping
        Tensors and plain Python types only.
    path : str or os.PathLike
        Destination file; its folder is created.

    Raises
    ------
    CheckpointError
        The file cannot be written (a full disk, a folder in its place); the message
        names it.

    Examples
    --------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "run.pt")
    >>> save_checkpoint({"epoch": 3, "weights": torch.ones(2)}, path)
    >>> load_checkpoint(path)["epoch"]
    3
    """
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        with written_atomically(path, private_folder=False) as temporary:
            torch.save(state, temporary)
    except Exception as error:  # torch reports a full disk as a RuntimeError of its C++
        raise CheckpointError(f"cannot write checkpoint {path!r}: {error}") from error


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint on the CPU with ``weights_only=True``.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by `save_checkpoint`.

    Returns
    -------
    dict
        The saved state.

    Raises
    ------
    CheckpointError
        If the file is missing, truncated, corrupted (a record failing its CRC-32) or
        holds anything but weights-only types; the message names the file.

    Examples
    --------
    >>> load_checkpoint("missing.pt")
    Traceback (most recent call last):
    ...
    climlatent.errors.CheckpointError: cannot read checkpoint 'missing.pt': ...
    """
    try:
        # torch.load does not check the archive's CRC-32s: a flipped bit in a tensor's
        # record would load as a finite wrong weight and the resume would go on silently
        with zipfile.ZipFile(path) as archive:
            corrupted = archive.testzip()
        if corrupted is not None:
            raise ValueError(f"record {corrupted!r} fails its CRC-32 check (the file is corrupted)")
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"cannot read checkpoint {os.fspath(path)!r}: {error}") from error


def run_fingerprint(settings: Mapping[str, Any], tensors: Sequence[torch.Tensor]) -> dict[str, Any]:
    """What determines a training run, as plain types for a weights-only checkpoint.

    Parameters
    ----------
    settings : mapping
        Settings that change the result (training settings, model configuration);
        tuples become lists and path-like values strings, so that a configuration
        read from YAML compares equal to the same one written in Python.
    tensors : sequence of torch.Tensor
        The sample-major training data: their number of samples is kept as
        ``"samples"``, each tensor's dtype and per-sample shape in ``"tensors"`` and
        the SHA-256 of their values in ``"data_sha256"`` (other data of the same shape,
        another variable, another file, is another run).

    Returns
    -------
    dict
        ``settings`` plus ``"samples"``, ``"tensors"`` and ``"data_sha256"``; compare
        two with `fingerprint_changes`.

    Examples
    --------
    >>> run = run_fingerprint({"batch_size": 64, "filters": (8, 16)}, [torch.zeros(512, 3)])
    >>> {key: run[key] for key in ("batch_size", "filters", "samples", "tensors")}
    {'batch_size': 64, 'filters': [8, 16], 'samples': 512, 'tensors': ['float32[3]']}
    >>> run["data_sha256"] == run_fingerprint({}, [torch.ones(512, 3)])["data_sha256"]
    False
    """
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    data = {
        "samples": len(tensors[0]),
        "tensors": [f"{str(t.dtype).removeprefix('torch.')}{list(t.shape[1:])}" for t in tensors],
        "data_sha256": digest.hexdigest(),
    }
    return {key: _plain(value) for key, value in {**settings, **data}.items()}


def fingerprint_changes(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The entries in which two `run_fingerprint` results differ.

    Parameters
    ----------
    saved, current : mapping
        The fingerprint of the checkpoint and that of the run resuming from it.

    Returns
    -------
    list of str
        ``"key: saved -> current"`` for every differing key, in the order of
        ``current`` (then keys only ``saved`` has); empty when they agree. A checkpoint
        written before fingerprints held ``"data_sha256"`` is not compared on it.

    Examples
    --------
    >>> fingerprint_changes({"batch_size": 64, "samples": 512},
    ...                     {"batch_size": 32, "samples": 480, "latent": "gev"})
    ['batch_size: 64 -> 32', 'samples: 512 -> 480', "latent: (absent) -> 'gev'"]
    """
    keys = [*current, *(key for key in saved if key not in current)]

    def shown(fingerprint: Mapping[str, Any], key: str) -> str:
        return repr(fingerprint[key]) if key in fingerprint else "(absent)"

    return [
        f"{key}: {shown(saved, key)} -> {shown(current, key)}"
        for key in keys
        if (key not in saved or key not in current or saved[key] != current[key])
        and not (key == "data_sha256" and key not in saved)
    ]


def _plain(value: Any) -> Any:
    """``value`` with tuples as lists, mappings as dicts and paths as strings."""
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value
