"""The YAML file of ``climlatent fit CONFIG``: schema, validation, and the fit it describes.

An emulator (sea-level pressure -> precipitation)::

    estimator: LLAAE    # EOFRegression | LLAAE | ProxyDownscaler | ProxyLatentDownscaler
    options: {latent_dim: 16, epochs: 30}   # the estimator's parameters
    data: members/r[12]i1p1f1.nc      # path, glob, list of them, or catalog.yaml#entry
    target: pr
    proxy: psl
    output: model.clm

A ``ProxyDownscaler`` reads its drivers from ``data`` (the coarse grid) and its target
from ``fine``, and takes ``proxies`` (driver -> growth law) instead of ``proxy``::

    estimator: ProxyDownscaler
    data: coarse/*.nc
    fine: fine/*.nc
    target: chl
    proxies: {tos: exponential, rsds: quadratic}
    output: downscaler.clm

``ProxyLatentDownscaler`` takes the same keys. ``EOFRegression`` and ``LLAAE`` are
downscalers too when given ``fine``: the target from ``fine``, the predictor from
``data`` (``proxy``, by default the target's own coarse field), as their
``fit(coarse, fine, target, proxies=proxy)``::

    estimator: LLAAE
    data: coarse/*.nc
    fine: fine/*.nc
    target: tas
    output: llaae-downscaler.clm

A trained model (``LLAAE``, ``ProxyDownscaler``, ``ProxyLatentDownscaler``) takes an
optional ``checkpoint`` file, rewritten after every epoch: rerun the same command after
an interruption and training continues where it stopped, to the result of an
uninterrupted run (a larger ``epochs`` trains a finished run further); a checkpoint of
other data or options is refused, naming what differs (delete it to start afresh), and
so is a checkpoint at the ``output`` path::

    checkpoint: llaae.pt

Relative paths are taken from the folder of the YAML file. Every mistake (an unknown
key or option, a missing key, a key that the estimator does not take, an invalid
option value) is reported by :class:`ConfigError` with what is allowed.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from climlatent import distributed
from climlatent.atomic import same_path
from climlatent.batch import open_members
from climlatent.errors import CheckpointError, ClimlatentError
from climlatent.estimators import (
    LLAAE,
    BaseEstimator,
    EOFRegression,
    ProxyDownscaler,
    ProxyLatentDownscaler,
)
from climlatent.persistence import check_model_path

ESTIMATORS = {
    cls.__name__: cls for cls in (EOFRegression, LLAAE, ProxyDownscaler, ProxyLatentDownscaler)
}


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader reading floats as YAML 1.2 does: ``1e-3`` is 0.001, not text.

    A key given twice is refused (PyYAML keeps the last silently), and so is an alias
    (``*name``): nested, a few lines of them stand for billions of values, which a
    message showing the value would spell out.
    """

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        """The next node; an alias refused, naming its line."""
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.constructor.ConstructorError(
                None, None, "aliases (*name) are not allowed in a fit configuration", mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        """The mapping of ``node``; a key given twice refused, naming it and its line."""
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # refused by PyYAML, naming it
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)
REQUIRED = ("estimator", "data", "target", "output")
KEYS = (*REQUIRED, "options", "proxy", "proxies", "fine", "checkpoint")


class ConfigError(ClimlatentError, ValueError):
    """A ``climlatent fit`` configuration file is invalid; the message says how."""


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """A validated ``climlatent fit`` configuration (see the module docstring).

    Examples
    --------
    >>> config = FitConfig("EOFRegression", {"n_proxy_eofs": 5}, ["m.nc"], "pr", Path("e.clm"),
    ...                    proxy="psl")
    >>> config.build()
    EOFRegression(n_proxy_eofs=5)
    """

    estimator: str
    options: dict[str, Any]
    data: list[str]
    target: str
    output: Path
    proxy: str | None = None
    proxies: dict[str, str] | None = None
    fine: list[str] | None = None
    checkpoint: Path | None = None

    def build(self, progress: bool | None = None) -> BaseEstimator:
        """The unfitted estimator; ``progress`` is used unless the options set it."""
        cls = ESTIMATORS[self.estimator]
        options = dict(self.options)
        if progress is not None and "progress" in _option_names(cls):
            options.setdefault("progress", progress)
        return cls(**options)


def load_fit_config(path: str | Path) -> FitConfig:
    """Read and validate a ``climlatent fit`` YAML file.

    Parameters
    ----------
    path : str or path-like
        The YAML file.

    Returns
    -------
    FitConfig
        The configuration, with paths made absolute from the file's folder.

    Raises
    ------
    ConfigError
        The file is not YAML or not a mapping; a key, an estimator or an option is
        unknown (the message lists the allowed ones); a required key is missing; or
        an option value is invalid.
    FileNotFoundError
        The file does not exist.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "fit.yaml")
    >>> keys = {"estimator": "EOFRegression", "data": "m.nc", "target": "pr", "proxy": "psl",
    ...         "output": "m.clm", "epochs": 3}
    >>> _ = open(path, "w").write(yaml.safe_dump(keys))
    >>> load_fit_config(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    climlatent.fit_config.ConfigError: ...: unknown key 'epochs'; allowed keys: estimator, ...
    """
    file = Path(path)
    try:
        raw = yaml.load(file.read_text(encoding="utf-8"), Loader=_Loader)
    except yaml.YAMLError as err:
        raise ConfigError(f"{str(file)!r} is not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{str(file)!r} must hold a mapping of the keys {', '.join(KEYS)}")
    where = f"{str(file)!r}"
    _check_names(where, "key", raw, KEYS)
    missing = [key for key in REQUIRED if key not in raw]
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(missing)}")
    name = raw["estimator"]
    if name not in ESTIMATORS:
        raise ConfigError(f"{where}: unknown estimator {name!r}; one of {', '.join(ESTIMATORS)}")
    options = raw.get("options") or {}
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: 'options' must be a mapping of {name} parameters")
    _check_names(where, f"{name} option", options, _option_names(ESTIMATORS[name]))
    if issubclass(ESTIMATORS[name], ProxyDownscaler):
        needed, refused = ("fine",), ("proxy",)
    elif "fine" in raw:  # an emulator family in its downscaler form
        needed, refused = ("fine",), ("proxies",)
    else:
        needed, refused = ("proxy",), ("proxies",)
    for key in needed:
        if key not in raw:
            raise ConfigError(f"{where}: {name} needs the key {key!r}")
    if ESTIMATORS[name] is EOFRegression:  # fitted in closed form, nothing to resume
        refused += ("checkpoint",)
    for key in refused:
        if key in raw:
            raise ConfigError(f"{where}: {name} does not take the key {key!r}")
    if not isinstance(raw.get("checkpoint", ""), str):
        raise ConfigError(f"{where}: 'checkpoint' must be a file path")
    for key in ("target", "proxy", "output"):  # a list or mapping is no variable name
        if key in raw and not isinstance(raw[key], str):
            raise ConfigError(f"{where}: {key!r} must be one name, not {raw[key]!r}")
    if not isinstance(raw.get("proxies") or {}, dict):
        raise ConfigError(f"{where}: 'proxies' must map driver variables to proxy laws")
    base = file.parent
    if "checkpoint" in raw and same_path(base / raw["checkpoint"], base / raw["output"]):
        # the model's save refused the checkpoint file found there, after the training
        raise ConfigError(f"{where}: 'checkpoint' is the 'output' model path: name another file")
    config = FitConfig(
        estimator=name,
        options=options,
        data=_sources(where, base, raw["data"]),
        target=str(raw["target"]),
        output=base / str(raw["output"]),
        proxy=raw.get("proxy"),
        proxies=raw.get("proxies"),
        fine=_sources(where, base, raw["fine"]) if "fine" in raw else None,
        checkpoint=base / str(raw["checkpoint"]) if "checkpoint" in raw else None,
    )
    try:
        config.build()
        check_model_path(config.output)  # before the training, not after
    except (TypeError, ValueError) as err:
        said = str(err).removeprefix(f"invalid {name} configuration: ")
        raise ConfigError(f"{where}: invalid {name} options: {said}") from err
    except CheckpointError as err:
        raise ConfigError(f"{where}: 'output': {err}") from err
    return config


def fit_from_config(config: FitConfig, progress: bool = True) -> Path:
    """Open the data a configuration names, fit its estimator and save it.

    Parameters
    ----------
    config : FitConfig
        From :func:`load_fit_config`.
    progress : bool
        Show training progress bars (unless the options set ``progress``).

    Notes
    -----
    Under ``torchrun`` (``torchrun --nproc_per_node 4 -m climlatent fit CONFIG``) every
    rank trains on its shard of each epoch (see `climlatent.distributed`) and rank 0
    writes the model and the checkpoints.

    With ``config.checkpoint`` set, training resumes from that file when it exists
    (``fit(..., checkpoint=config.checkpoint, resume=True)``).

    Returns
    -------
    pathlib.Path
        The saved model (``config.output``).

    Examples
    --------
    >>> import climlatent as cl, tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> data = cl.io.to_netcdf(cl.datasets.synthetic_circulation(n_years=2, n_lat=4, n_lon=6),
    ...                        os.path.join(folder, "train.nc"))
    >>> config = FitConfig("EOFRegression", {"n_proxy_eofs": 3, "n_target_eofs": 3},
    ...                    [str(data)], "pr", Path(folder) / "eof.clm", proxy="psl")
    >>> fit_from_config(config).name
    'eof.clm'
    """
    estimator = config.build(progress)
    training = (
        {} if config.checkpoint is None else {"checkpoint": config.checkpoint, "resume": True}
    )
    if isinstance(estimator, ProxyDownscaler):
        drivers = list(config.proxies or [config.target])
        if getattr(estimator, "target_input", False):  # the coarse target as well
            drivers = list(dict.fromkeys([*drivers, config.target]))
        with (
            open_members(config.data, drivers) as coarse,
            open_members(config.fine, [config.target]) as fine,
        ):
            estimator.fit(
                coarse.load(), fine.load(), config.target, proxies=config.proxies, **training
            )
    elif config.fine is not None:
        with (
            open_members(config.data, [config.proxy or config.target]) as coarse,
            open_members(config.fine, [config.target]) as fine,
        ):
            estimator.fit(
                coarse.load(), fine.load(), config.target, proxies=config.proxy, **training
            )
    else:
        with open_members(config.data, [config.target, config.proxy]) as ds:
            estimator.fit(ds.load(), config.target, config.proxy, **training)
    if distributed.is_main_process():  # under torchrun, rank 0 alone writes the model
        estimator.save(config.output)
    distributed.barrier()
    return config.output


def _option_names(cls: type) -> list[str]:
    return [field.name for field in dataclasses.fields(cls)]


def _check_names(where: str, kind: str, given: dict, allowed: Any) -> None:
    unknown = [str(key) for key in given if key not in allowed]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise ConfigError(
            f"{where}: unknown {kind}{plural} {', '.join(map(repr, unknown))}; "
            f"allowed {kind}s: {', '.join(allowed)}"
        )


def _sources(where: str, base: Path, value: Any) -> list[str]:
    """Data sources (paths, globs, catalog entries) relative to ``base``, as strings."""
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) for item in items):
        raise ConfigError(f"{where}: data must be a path, glob or list of them, got {value!r}")
    return [str(base / item) for item in items]
