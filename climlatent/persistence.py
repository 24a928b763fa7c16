"""Save and load fitted estimators without pickle: JSON, safetensors and netCDF.

A saved model is a folder::

    model.clm/
        manifest.json          format, climlatent version, estimator, config, fitted
                               metadata, and the SHA-256 of every other file
        weights.safetensors    the fitted numbers (safetensors: no code runs on load)
        *.nc                   the estimator's fitted grids (with NaN masks) and
                               transforms, one Dataset per file

Loading checks every checksum before reading anything else, so a truncated or
modified file is refused with a :class:`~climlatent.errors.CheckpointError` naming it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from climlatent._version import __version__
from climlatent.errors import CheckpointError
from climlatent.estimators.base import REGISTRY, BaseEstimator

FORMAT = "climlatent-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_estimator(estimator: BaseEstimator, path: str | Path) -> Path:
    """Write a fitted estimator to the folder ``path``, atomically.

    The folder is assembled under a temporary name beside ``path`` and renamed into
    place when complete; an existing model at ``path`` is replaced.

    Examples
    --------
    >>> import climlatent as cl, tempfile, os
    >>> ds = cl.datasets.synthetic_circulation(n_years=2)
    >>> est = cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=2).fit(ds, "pr", "psl")
    >>> out = save_estimator(est, os.path.join(tempfile.mkdtemp(), "m.clm"))
    >>> sorted(p.name for p in out.iterdir())[:2]
    ['manifest.json', 'proxy_grid.nc']
    """
    estimator._require_fitted()
    target = Path(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        state = {k: np.ascontiguousarray(v) for k, v in estimator._state().items()}
        save_file(state, str(tmp / WEIGHTS))
        for name, dataset in estimator._fitted_datasets().items():
            dataset.to_netcdf(tmp / f"{name}.nc")
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "climlatent_version": __version__,
            "estimator": type(estimator).__name__,
            "config": estimator.get_config(),
            "fitted": _jsonable(estimator._fitted_metadata()),
            "files": {p.name: _sha256(p) for p in sorted(tmp.iterdir())},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _jsonable(attrs: dict) -> dict:
    return {
        k: (v.tolist() if isinstance(v, np.ndarray | np.generic) else v) for k, v in attrs.items()
    }


def _read_manifest(folder: Path) -> dict:
    file = folder / MANIFEST
    if not folder.is_dir() or not file.is_file():
        raise CheckpointError(f"{str(folder)!r} is not a climlatent model (no {MANIFEST})")
    try:
        manifest = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{str(file)!r} is corrupt: {err}") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{str(file)!r} is not a climlatent model manifest")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{str(folder)!r} was written by climlatent {manifest.get('climlatent_version')} "
            f"in a newer format ({manifest['format_version']}); upgrade climlatent"
        )
    for name, expected in manifest.get("files", {}).items():
        member = folder / name
        if not member.is_file():
            raise CheckpointError(f"model file {str(member)!r} is missing")
        if _sha256(member) != expected:
            raise CheckpointError(
                f"model file {str(member)!r} is truncated or modified (checksum mismatch)"
            )
    return manifest


def load(path: str | Path) -> BaseEstimator:
    """Load an estimator saved with ``save``; no code from the file is executed.

    Parameters
    ----------
    path : str or path-like
        Folder written by :meth:`Estimator.save`.

    Returns
    -------
    Estimator
        The fitted estimator, giving bit-identical output to the one saved.

    Raises
    ------
    CheckpointError
        The folder is not a model, a file is missing, truncated or modified, or it was
        written in a newer format.

    Examples
    --------
    >>> import climlatent as cl, tempfile, os
    >>> ds = cl.datasets.synthetic_circulation(n_years=2)
    >>> est = cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=2).fit(ds, "pr", "psl")
    >>> path = os.path.join(tempfile.mkdtemp(), "m.clm")
    >>> est.save(path)
    >>> cl.load(path).emulate(ds)["pr"].equals(est.emulate(ds)["pr"])
    True
    """
    folder = Path(path)
    manifest = _read_manifest(folder)
    name = manifest["estimator"]
    if name not in REGISTRY:
        raise CheckpointError(f"{str(folder)!r} holds an unknown estimator {name!r}")
    try:
        estimator = REGISTRY[name](**manifest["config"])
        datasets = {}
        for name in manifest["files"]:
            if name.endswith(".nc"):
                with xr.open_dataset(folder / name) as dataset:
                    datasets[name[:-3]] = dataset.load()
        estimator._restore(manifest["fitted"], datasets)
        estimator._load_state(load_file(str(folder / WEIGHTS)))
    except (KeyError, TypeError, ValueError, OSError, SafetensorError) as err:
        raise CheckpointError(f"model {str(folder)!r} cannot be restored: {err}") from err
    return estimator
