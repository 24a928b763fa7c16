"""Save and load fitted estimators without pickle: JSON, safetensors and netCDF.

A saved model is a folder::

    model.clm/
        manifest.json          format, climlatent version, estimator, config, fitted
                               metadata, and the SHA-256 of every other file
        weights.safetensors    the fitted numbers (safetensors: no code runs on load)
        *.nc                   the estimator's fitted grids (with NaN masks) and
                               transforms, one Dataset per file
        history.nc             a torch estimator's training history (``history_``: one
                               variable per column along ``epoch``, 0, 1, ...) and
                               its ``best_epoch_`` as an attribute, if not None; absent
                               from a model saved before it was kept

A model folder may come from anyone, so loading trusts nothing in it and reads nothing
outside it. The manifest is validated against the schema below (types of every field,
the estimator's configuration fields, bounded nesting) before any other file is read;
file names must be plain names of regular files in the folder (no path, no ``..``, no
symbolic link); every checksum is checked before a file is read; and every tensor's
shape and dtype are checked against what the configuration and fitted metadata imply
before it is loaded. A file the estimator does not read (another ``.nc``, a history
beside a model that does not train) is refused too. Anything else is refused with a
:class:`~climlatent.errors.CheckpointError` naming the file and the field or tensor.

The manifest's schema (version 1), every field required and no other allowed:

- ``format``: ``"climlatent-model"``; ``format_version``: the integer 1;
- ``climlatent_version``: str; ``estimator``: the name of a registered estimator;
- ``config``: the estimator's configuration fields, each of its declared type (one
  left out takes its default, or its value in `BEFORE_FIELD` for a field added since);
- ``fitted``: the estimator's fitted metadata, a dict;
- ``files``: plain file name -> SHA-256 hex digest, ``weights.safetensors`` included
  (and ``history.nc`` for an estimator with a training history);

and no JSON value nests deeper than ``MAX_DEPTH``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
import reprlib
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from climlatent._version import __version__
from climlatent.atomic import written_atomically
from climlatent.errors import CheckpointError, file_errors_as
from climlatent.estimators import estimator_class
from climlatent.estimators._refit import global_random_states
from climlatent.estimators.base import ArraySpec, BaseEstimator
from climlatent.io import check_declared_size

FORMAT = "climlatent-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
HISTORY = "history"  # the stem of the training history's file
MAX_DEPTH = 32  # nesting of JSON lists and dicts in a manifest
#: Configuration fields added since format 1, and the value a model saved without one had
#: (`climlatent.random_streams`: a model trained before version 2 refits with version 1).
BEFORE_FIELD = {"random_streams": 1}
_FIELDS = (
    "format",
    "format_version",
    "climlatent_version",
    "estimator",
    "config",
    "fitted",
    "files",
)
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# What building an estimator from a (checked) manifest and files can raise when their
# values are inconsistent: refused as a CheckpointError naming the file.
_RESTORE_ERRORS = (
    ArithmeticError,
    AttributeError,
    LookupError,
    OSError,
    RuntimeError,
    SafetensorError,
    TypeError,
    ValueError,
)


def _sha256(path: Path) -> str:
    """SHA-256 hex digest of the file ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_estimator(estimator: BaseEstimator, path: str | Path) -> Path:
    """Write a fitted estimator to the folder ``path``, atomically.

    The folder is assembled under a temporary name beside ``path`` and renamed into
    place when complete. A model saved before at ``path``, or an empty folder, is
    replaced (moved aside first, deleted once the new one is in place); anything else
    there is refused.

    Raises
    ------
    CheckpointError
        ``path`` holds something other than a climlatent model (a data folder, a
        file), or its parent folder does not exist; nothing is written. Or a file
        cannot be written (a full disk): the model saved before is left as it was.

    Examples
    --------
    >>> import climlatent as cl, tempfile, os
    >>> ds = cl.datasets.synthetic_circulation(n_years=2)
    >>> est = cl.EOFRegression(n_proxy_eofs=2, n_target_eofs=2).fit(ds, "pr", "psl")
    >>> out = save_estimator(est, os.path.join(tempfile.mkdtemp(), "m.clm"))
    >>> sorted(p.name for p in out.iterdir())[:2]
    ['manifest.json', 'proxy_grid.nc']
    >>> save_estimator(est, out.parent)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    climlatent.errors.CheckpointError: ... is not a climlatent model; refusing to replace it ...
    """
    estimator._require_fitted("save")
    target = check_model_path(path)
    state = {k: np.ascontiguousarray(v) for k, v in estimator._state().items()}
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "climlatent_version": __version__,
        "estimator": type(estimator).__name__,
        "config": estimator.get_config(),
        "fitted": _jsonable(estimator._fitted_metadata()),
    }
    refusal = f"cannot save a model to {str(target)!r}"
    with file_errors_as(CheckpointError, refusal, also=(SafetensorError,)):
        with written_atomically(target) as tmp:
            tmp.mkdir()
            save_file(state, str(tmp / WEIGHTS))
            datasets = estimator._fitted_datasets()
            history = getattr(estimator, "history_", None)
            if isinstance(history, pd.DataFrame):
                best = getattr(estimator, "best_epoch_", None)
                datasets[HISTORY] = _history_dataset(history, best)
            for name, dataset in datasets.items():
                dataset.to_netcdf(tmp / f"{name}.nc")
            manifest["files"] = {p.name: _sha256(p) for p in sorted(tmp.iterdir())}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return target


def _history_dataset(history: pd.DataFrame, best_epoch: int | None) -> xr.Dataset:
    """The training ``history`` and ``best_epoch`` as the Dataset of ``history.nc``."""
    attrs = {} if best_epoch is None else {"best_epoch": best_epoch}
    return xr.Dataset.from_dataframe(history).assign_attrs(attrs)


def _training_history(dataset: xr.Dataset) -> tuple[pd.DataFrame, int | None]:
    """The ``history_`` and ``best_epoch_`` that `_history_dataset` wrote.

    Raises
    ------
    ValueError
        ``dataset`` is not one: other dims or attributes, a variable not a number per
        epoch, epochs not numbered 0, 1, ..., or a best epoch not one of them.

    Examples
    --------
    >>> history = pd.DataFrame({"train_loss": [2.0, 1.0]}, index=pd.RangeIndex(2, name="epoch"))
    >>> _training_history(_history_dataset(history, 1))[0].equals(history)
    True
    """
    epochs = dataset.sizes.get("epoch", 0)
    if (
        set(dataset.dims) != {"epoch"}
        or set(dataset.coords) != {"epoch"}
        or not np.array_equal(dataset["epoch"].values, np.arange(epochs))
        or any(v.dims != ("epoch",) or v.dtype.kind not in "iuf" for v in dataset.values())
        or set(dataset.attrs) - {"best_epoch"}
    ):
        raise ValueError("not a training history (one number per epoch 0, 1, ...)")
    best = dataset.attrs.get("best_epoch")
    if best is not None and not (isinstance(best, int | np.integer) and 0 <= best < epochs):
        raise ValueError(f"best_epoch {best!r} is not one of its {epochs} epochs")
    history = dataset.to_dataframe()
    history.index = pd.RangeIndex(epochs, name="epoch")
    return history, None if best is None else int(best)


def check_model_path(path: str | Path) -> Path:
    """``path`` as a place to save a model to: in a folder that exists, no other data there.

    What `save_estimator` checks first; a command that trains a model checks it before.

    Raises
    ------
    CheckpointError
        ``path`` holds something other than a climlatent model, or its folder does
        not exist.

    Examples
    --------
    >>> check_model_path("/no/such/folder/m.clm")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    climlatent.errors.CheckpointError: cannot save a model to ...: folder '/no/such/folder' ...
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise CheckpointError(
            f"cannot save a model to {str(target)!r}: folder {str(target.parent)!r} does not exist"
        )
    if (target.exists() or target.is_symlink()) and not _replaceable(target):
        raise CheckpointError(
            f"{str(target)!r} is not a climlatent model; refusing to replace it "
            "(choose another path, or remove it first)"
        )
    return target


def _replaceable(path: Path) -> bool:
    """Whether ``path`` is a folder (not a link), empty or a climlatent model's."""
    manifest = path / MANIFEST
    if path.is_symlink() or not path.is_dir() or manifest.is_symlink():
        return False
    if not any(path.iterdir()):
        return True
    try:
        return json.loads(manifest.read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _jsonable(value: Any) -> Any:
    """``value`` with numpy arrays and scalars as lists and numbers, at every depth.

    A target's netCDF attributes (``valid_min``, ``valid_range``) are numpy values.
    """
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value.tolist() if isinstance(value, np.ndarray | np.generic) else value


def _read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of the model ``folder``, validated, with every file's checksum checked."""
    file = folder / MANIFEST
    if file.is_symlink():
        raise CheckpointError(
            f"{str(file)!r} is a symbolic link; a model's files lie in its folder"
        )
    if not folder.is_dir() or not file.is_file():
        raise CheckpointError(f"{str(folder)!r} is not a climlatent model (no {MANIFEST})")
    try:
        manifest = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{str(file)!r} is corrupt: {err}") from err
    except RecursionError as err:  # the decoder's own limit, beyond MAX_DEPTH
        raise _too_deep(file) from err
    _check_manifest(manifest, file)
    for name, expected in manifest["files"].items():
        member = folder / name
        if member.is_symlink():
            raise CheckpointError(
                f"model file {str(member)!r} is a symbolic link; a model's files lie in its folder"
            )
        if not member.is_file():
            raise CheckpointError(f"model file {str(member)!r} is missing")
        if _sha256(member) != expected:
            raise CheckpointError(
                f"model file {str(member)!r} is truncated or modified (checksum mismatch)"
            )
    return manifest


def _check_manifest(manifest: Any, file: Path) -> None:
    """Refuse a parsed manifest that does not follow the schema (module docstring)."""

    def refuse(field: str, problem: str) -> typing.NoReturn:
        raise CheckpointError(f"{str(file)!r}: field {field!r} {problem}")

    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{str(file)!r} is not a climlatent model manifest")
    if _nests_deeper(manifest, MAX_DEPTH):
        raise _too_deep(file)
    missing = [field for field in _FIELDS if field not in manifest]
    if missing:
        refuse(missing[0], "is missing")
    unknown = sorted(set(manifest) - set(_FIELDS))
    if unknown:
        refuse(unknown[0], "is not a manifest field")
    if not isinstance(manifest["climlatent_version"], str):
        refuse(
            "climlatent_version", f"must be a string, got {_show(manifest['climlatent_version'])}"
        )
    version = manifest["format_version"]
    if type(version) is int and version > FORMAT_VERSION:
        raise CheckpointError(
            f"{str(file.parent)!r} was written by climlatent {manifest['climlatent_version']} "
            f"in a newer format ({version}); upgrade climlatent"
        )
    if type(version) is not int or version != FORMAT_VERSION:
        refuse("format_version", f"must be the integer {FORMAT_VERSION}, got {_show(version)}")
    name = manifest["estimator"]
    cls = estimator_class(name) if isinstance(name, str) else None
    if cls is None:
        refuse("estimator", f"names an unknown estimator {_show(name)}")
    if cls._load_state is BaseEstimator._load_state:
        refuse("estimator", f"names {name!r}, which is not a loadable estimator")
    if not isinstance(manifest["config"], dict):
        refuse("config", f"must be a dict, got {_show(manifest['config'])}")
    for key, problem in _config_problems(cls, manifest["config"]):
        refuse(f"config.{key}", problem)
    if not isinstance(manifest["fitted"], dict):
        refuse("fitted", f"must be a dict, got {_show(manifest['fitted'])}")
    files = manifest["files"]
    if not isinstance(files, dict):
        refuse("files", f"must be a dict of file name -> SHA-256, got {_show(files)}")
    for member, digest in files.items():
        if not _FILE_NAME.fullmatch(member):
            refuse("files", f"names {member!r}, which is not a plain file name in the folder")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            refuse(f"files.{member}", f"must be a SHA-256 hex digest, got {_show(digest)}")
    if WEIGHTS not in files:
        refuse("files", f"does not list {WEIGHTS}")


def _too_deep(file: Path) -> CheckpointError:
    """The error for a manifest nesting lists or dicts deeper than ``MAX_DEPTH``."""
    return CheckpointError(f"{str(file)!r} nests lists or dicts deeper than {MAX_DEPTH}")


def _nests_deeper(value: Any, limit: int) -> bool:
    """Whether the JSON ``value`` nests lists and dicts deeper than ``limit``."""
    if not isinstance(value, dict | list):
        return False
    if limit == 0:
        return True
    children = value.values() if isinstance(value, dict) else value
    return any(_nests_deeper(child, limit - 1) for child in children)


def _config_problems(cls: type[BaseEstimator], config: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(key, problem)`` for each key of ``config`` unknown to ``cls`` or of another type."""
    hints = typing.get_type_hints(cls)
    fields = {field.name for field in dataclasses.fields(cls) if field.init}
    for key, value in config.items():
        if key not in fields:
            yield key, f"is not an option of {cls.__name__}"
        elif not _conforms(value, hints[key]):
            yield key, f"must be of type {_type_name(hints[key])}, got {_show(value)}"


def _conforms(value: Any, hint: Any) -> bool:
    """Whether the JSON ``value`` is of the configuration field type ``hint``.

    A tuple or list field is a JSON list; an int is no float; a bool is no number.

    Examples
    --------
    >>> _conforms([16, 32], tuple[int, ...]), _conforms(None, float | None), _conforms(True, int)
    (True, True, False)
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, arg) for arg in args)
    if origin in (tuple, list):
        return isinstance(value, list) and all(_conforms(item, args[0]) for item in value)
    if isinstance(value, bool):
        return hint is bool
    if hint is float:
        return isinstance(value, int | float)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    """``int`` for a class, the annotation as written otherwise."""
    return hint.__name__ if isinstance(hint, type) else str(hint)


def _show(value: Any) -> str:
    """A short repr of a manifest value for an error message."""
    return reprlib.repr(value)


class _Read(dict):
    """What a model folder holds, by name, recording the names asked for (``[]``, ``get``).

    Examples
    --------
    >>> held = _Read({"grid": 1, "extra": 2})
    >>> held["grid"], held.get("transform"), sorted(held.read)
    (1, None, ['grid', 'transform'])
    """

    def __init__(self, items: Mapping[str, Any] = types.MappingProxyType({})) -> None:
        super().__init__(items)
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> Any:
        value = super().__getitem__(name)
        self.read.add(name)
        return value

    def get(self, name: str, default: Any = None) -> Any:
        """The entry ``name``, or ``default`` (the name is recorded either way)."""
        self.read.add(name)
        return super().get(name, default)


class _Tensors(_Read):
    """The tensors of a weights file, recording which ones were read.

    Reading one that is not there raises :class:`CheckpointError` naming it.
    """

    def __missing__(self, name: str) -> np.ndarray:
        raise CheckpointError(f"tensor {name!r} is missing")


def _check_arrays(tensors: Mapping[str, np.ndarray], spec: dict[str, ArraySpec]) -> None:
    """Refuse a tensor of another shape or dtype than ``spec`` says (see `ArraySpec`).

    Examples
    --------
    >>> spec = {"a": (("n", 2), "float64"), "b": (("n+1",), "float64")}
    >>> _check_arrays({"a": np.zeros((3, 2)), "b": np.zeros(4)}, spec)
    >>> _check_arrays({"a": np.zeros((3, 2)), "b": np.zeros(3)}, spec)
    Traceback (most recent call last):
    ...
    climlatent.errors.CheckpointError: tensor 'b' is float64 (3,), expected float64 (4,)
    """
    sizes: dict[str, int] = {}  # each named size, from the first array naming it

    def expected_size(wanted: int | str | None, actual: int) -> int | str | None:
        if not isinstance(wanted, str):
            return wanted
        name, _, offset = wanted.partition("+")
        extra = int(offset or 0)
        return sizes.setdefault(name, actual - extra) + extra

    for name, (shape, dtype) in spec.items():
        array = tensors[name]
        if not shape and array.shape == (1,):
            array = array.reshape(())  # a scalar is saved as a one-element vector
        expected = shape
        if array.ndim == len(shape):
            expected = tuple(map(expected_size, shape, array.shape))
        fits = (
            array.dtype == np.dtype(dtype)
            and array.ndim == len(expected)
            and all(
                size in (None, actual) for size, actual in zip(expected, array.shape, strict=True)
            )
        )
        if not fits:
            text = ", ".join("?" if size is None else str(size) for size in expected)
            text = f"({text},)" if len(expected) == 1 else f"({text})"
            raise CheckpointError(
                f"tensor {name!r} is {array.dtype} {array.shape}, expected {dtype} {text}"
            )


@contextlib.contextmanager
def _refusing(what: str) -> Iterator[None]:
    """Refuse what restoring from ``what`` (a file and field) raises, naming it."""
    try:
        yield
    except _RESTORE_ERRORS as err:
        raise CheckpointError(f"{what} is invalid: {err}") from err


def load(path: str | Path) -> BaseEstimator:
    """Load an estimator saved with ``save``; no code from the file is executed.

    Nothing outside the folder is read, and nothing in it before the manifest has
    been validated and the file's checksum checked (see the module docstring).

    Parameters
    ----------
    path : str or path-like
        Folder written by :meth:`Estimator.save`.

    Returns
    -------
    BaseEstimator
        The fitted estimator, of its saved class (an `Estimator`, `VAE`, `VED`...),
        giving bit-identical output to the one saved.

    Raises
    ------
    CheckpointError
        The folder is not a model; its manifest breaks the schema; a file is missing,
        a symbolic link, outside the folder, truncated, modified or not one the
        estimator reads; a tensor is
        missing, unexpected, or of another shape or dtype than the model's; or it was
        written in a newer format. The message names the file and the field or tensor.

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
    manifest = _read_manifest(folder)  # imports the estimator's module, and only that
    with _refusing(f"{str(folder / MANIFEST)!r} field 'config'"):
        cls = estimator_class(manifest["estimator"])
        fields = {field.name for field in dataclasses.fields(cls)}
        before = {name: value for name, value in BEFORE_FIELD.items() if name in fields}
        estimator = cls(**{**before, **manifest["config"]})
    datasets = _Read()
    for name in manifest["files"]:
        if name.endswith(".nc"):
            with _refusing(f"model file {str(folder / name)!r}"):
                check_declared_size(folder / name)  # before xarray allocates its indexes
                with xr.open_dataset(folder / name) as dataset:
                    datasets[name[:-3]] = dataset.load()
    history = datasets.pop(HISTORY, None)  # absent from a model saved before it was kept
    # Building a torch model draws its initial weights (overwritten by the saved ones)
    # from the global generator: the caller's next torch draw was another after a load.
    with global_random_states():
        with _refusing(f"{str(folder / MANIFEST)!r} field 'fitted' (with the model's grids)"):
            estimator._restore(manifest["fitted"], datasets)
        weights = folder / WEIGHTS
        with _refusing(f"model file {str(weights)!r}"):
            tensors = _Tensors(load_file(str(weights)))
            _check_arrays(tensors, estimator._state_spec())
            estimator._load_state(tensors)
            unread = sorted(set(tensors) - tensors.read)
            if unread:
                raise CheckpointError(
                    f"tensor {unread[0]!r} is not part of a {type(estimator).__name__}"
                )
    # Only a torch estimator (one with a module_) trains, recording a history.
    trained = hasattr(estimator, "module_")
    used = {WEIGHTS, *(f"{name}.nc" for name in datasets.read | ({HISTORY} if trained else set()))}
    unused = sorted(set(manifest["files"]) - used)
    if unused:
        raise CheckpointError(
            f"model file {str(folder / unused[0])!r} is not part of a {type(estimator).__name__}"
        )
    if history is not None:
        with _refusing(f"model file {str(folder / f'{HISTORY}.nc')!r}"):
            estimator.history_, estimator.best_epoch_ = _training_history(history)
    estimator._record_fit_params()  # the saved configuration is the fit's
    return estimator
