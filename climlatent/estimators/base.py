"""The base of every climlatent estimator: boundary checks, metadata, history, I/O.

An estimator learns to produce a *target* field (e.g. precipitation) from a *proxy*
field (e.g. sea-level pressure). The public methods here take and return
``xr.Dataset``s; they do every check once (variables present, grids, units,
calendars, NaNs, time axes), apply the fitted transforms, stack fields into sample
matrices through :mod:`climlatent.batching`, and hand plain arrays to the model's
``_fit_arrays`` / ``_predict`` / ``_encode`` / ``_decode``. Outputs keep the input's sample
coordinates and global attributes, take the target's CF attributes from training,
and gain a ``history`` line naming the estimator and the call.

A subclass is a dataclass whose fields are its configuration (JSON-serialisable
numbers and strings), and implements:

- ``_fit_arrays(X, Y, proxy_layout, target_layout)``: ``X`` (n, n_proxy_cells) and
  ``Y`` (n, n_target_cells), float32, with the grids and masks they come from;
- ``_predict(X) -> Y``; ``_encode(Y) -> Z``; ``_decode(Z) -> Y``;
- ``_state() -> dict[str, np.ndarray]`` and ``_load_state(dict)``: the fitted numbers,
  and ``_state_spec()``: their shapes and dtypes, checked before loading.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import xarray as xr

from climlatent import transforms
from climlatent._params import ParamsMixin
from climlatent.batching import (
    FieldLayout,
    check_finite,
    from_matrix,
    in_sample_order,
    map_model,
    sample_coords,
    to_matrix,
)
from climlatent.checks import (
    check_calendar,
    check_field,
    check_no_inf,
    check_same_samples,
    check_sample_dims,
    get_variable,
)
from climlatent.errors import InputDataError, not_fitted
from climlatent.estimators._config import check_config, make_transform
from climlatent.estimators._fields import latent_array
from climlatent.estimators._fit_forms import fit_call
from climlatent.estimators._refit import all_or_nothing
from climlatent.estimators._repr import html_repr, text_repr
from climlatent.estimators._smearing import SMEARING_FILE, smearing_dataset, smearing_shift
from climlatent.fitted_range import RANGE_TOLERANCE, FittedRange
from climlatent.grid import find_grid, find_member, find_time
from climlatent.grid_order import GridOrder, conform, grid_layout, in_layout
from climlatent.io import add_history, carry_provenance, physical_attrs
from climlatent.physical_bounds import CLIPPED_ATTR, clip_to_bounds
from climlatent.units import convert_units, difference_units, parse_units

if TYPE_CHECKING:  # imports torch: only the torch estimators, which train, need it
    from climlatent.training import TrainingConfig

REGISTRY: dict[str, type[BaseEstimator]] = {}
ArraySpec = tuple[tuple[int | str | None, ...], str]
"""A saved array's expected shape and dtype name. Per axis: an ``int``, that size; a
``str``, a size shared by every array of the state naming it, optionally plus a constant
(``"modes+1"``); or ``None``, any size."""


@dataclasses.dataclass
class BaseEstimator(ParamsMixin):
    """What every climlatent estimator shares: configuration, fitted state, output, I/O.

    A subclass is a dataclass whose fields are its configuration; it is registered by
    class name so that :func:`climlatent.load` can rebuild it without running code
    from the file. Subclasses supply the persistence hooks ``_fitted_metadata``,
    ``_fitted_datasets``, ``_restore``, ``_state`` and ``_load_state``. A ``fit`` that
    fails leaves the previous fit or none, and any fit the global random states as it
    found them (`_refit.all_or_nothing`).
    """

    #: Read by the calls using a fit (the range check) or by training alone, not by the fit.
    _runtime_params = frozenset({"range_tolerance", "progress", "device", "checkpoint_path"})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        REGISTRY[cls.__name__] = cls
        cls.__repr__ = BaseEstimator.__repr__  # which the dataclass decorator keeps
        if "fit" in vars(cls):
            cls.fit = all_or_nothing(cls.fit)

    def __post_init__(self) -> None:
        check_config(self)

    def __repr__(self) -> str:
        """The class and the options that differ from their defaults (scikit-learn's)."""
        return text_repr(self)

    def _repr_html_(self) -> str:
        """Jupyter's view: options, fitted or not, variables, grids, training history."""
        return html_repr(self)

    def get_config(self) -> dict[str, Any]:
        """The estimator's configuration as a JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` has run."""
        return hasattr(self, "target_")

    def _require_fitted(self, method: str) -> None:
        """Refuse ``method`` before :meth:`fit`, or after a change of what shaped it.

        Naming the class and method; the changed parameters (`_check_fit_params`).
        """
        if not self.is_fitted:
            raise not_fitted(self, method)
        self._check_fit_params(method)

    def save(self, path: str) -> None:
        """Save the fitted estimator to the folder ``path`` (see :func:`climlatent.load`)."""
        from climlatent.persistence import save_estimator

        save_estimator(self, path)

    def _wrap(self, out: xr.DataArray, ds: xr.Dataset, call: str) -> xr.Dataset:
        """The target, inverse-transformed and within its bounds, as a Dataset.

        Values beyond the target's physical bounds are set to them, with a record
        (`clip_to_bounds`, added to the inverse transform's); then the target's
        attributes, provenance and history.
        """
        if self.target_transform_ is not None:
            out = self.target_transform_.inverse(out)
        out = in_layout(getattr(self, "target_order_", None), out)
        out = out.astype(np.float32, copy=False)  # new data already (map_model)
        note = out.attrs.get(CLIPPED_ATTR)
        out.attrs = {**physical_attrs(self.target_attrs_), **({CLIPPED_ATTR: note} if note else {})}
        out = clip_to_bounds(out)
        result = carry_provenance(out.to_dataset(name=self.target_), ds)
        return add_history(result, f"{type(self).__name__}({self._config_text()}).{call}")

    def _training_config(self, **overrides: Any) -> TrainingConfig:
        """The training-loop settings: the config fields named as in `TrainingConfig`."""
        from climlatent.training import TrainingConfig

        names = {field.name for field in dataclasses.fields(TrainingConfig)}
        values = {k: v for k, v in self.get_config().items() if k in names}
        return TrainingConfig(**{**values, **overrides})

    def _config_text(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())

    def _check_new_field(
        self, da: xr.DataArray, role: str, layout: FieldLayout, blocks_checked: bool = False
    ) -> xr.DataArray:
        """New data checked against what ``fit`` saw, in the fitted grid layout.

        Checks the calendar, the sample dims and the grid (any order of it), from the
        coordinates; ``blocks_checked``: the model checks every value of each block it
        computes (a proxy's finiteness), so a dask-backed field is not read here.
        """
        _, calendar = check_field(da, role, any_finite=not (blocks_checked and da.chunks))
        check_calendar(da, role, calendar, self.calendar_)
        spatial = find_grid(da, da.name).spatial_dims
        known = dict.fromkeys((*self.sample_dims_, find_time(da), find_member(da)))
        check_sample_dims(da, role, spatial, tuple(d for d in known if d))
        return conform(da, layout.grid, str(da.name))

    def _state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def _state_spec(self) -> dict[str, ArraySpec]:
        """Shape and dtype of each array `_state` gives that the fitted metadata implies.

        Called on loading, after `_restore` and before `_load_state`; the tensors of a
        torch module need not be listed: `load_numpy_state` checks them against the
        module built from the configuration.
        """
        raise NotImplementedError


@dataclasses.dataclass
class Estimator(BaseEstimator):
    """Base class of the field-to-field estimators: a target produced from a proxy.

    Each is an emulator and a downscaler: ``fit(ds, target, proxy)`` then
    ``emulate(ds)`` with both fields in one Dataset, or ``fit(coarse, fine, target,
    proxies)`` then ``downscale(coarse)`` with the proxy on a coarse grid and the
    target on a fine one (Datasets whose grids may share dim names).

    Examples
    --------
    >>> import climlatent as cl
    >>> ds = cl.datasets.synthetic_circulation(n_years=2)
    >>> est = cl.EOFRegression(n_proxy_eofs=3, n_target_eofs=3).fit(ds, "pr", "psl")
    >>> est.emulate(ds)["pr"].dims
    ('member', 'time', 'lat', 'lon')
    """

    target_transform: str = "none"
    proxy_transform: str = "standardize"
    range_tolerance: float = RANGE_TOLERANCE

    # -- the public xarray face ----------------------------------------------------

    @overload
    def fit(self, ds: xr.Dataset, target: str, proxy: str, **training: Any) -> Estimator: ...

    @overload
    def fit(
        self,
        coarse: xr.Dataset,
        fine: xr.Dataset,
        target: str,
        proxies: str | None = None,
        **training: Any,
    ) -> Estimator: ...

    def fit(self, *args: Any, **kwargs: Any) -> Estimator:
        """Fit the estimator to produce the target field from the proxy field.

        Two forms, one model:

        - emulator, ``fit(ds, target, proxy, **training)``: both fields in ``ds``;
        - downscaler, ``fit(coarse, fine, target, proxies=None, **training)``: the
          proxy from ``coarse`` and the target from ``fine``, two Datasets on the
          same samples whose grids may share dim names (``lat``, ``lon``).

        Parameters
        ----------
        ds : xr.Dataset
            Training data holding both fields on their grids, with the same sample
            dims (time, and member or others when present), stored in any order.
        coarse, fine : xr.Dataset
            The downscaler form's: the proxy on its (coarse) grid, the target on its
            (fine) grid.
        target : str
            Name of the field to produce (e.g. ``"pr"``).
        proxy : str
            Name of the predictor field (e.g. ``"psl"``).
        proxies : str, optional
            The downscaler form's predictor: the name of one field of ``coarse``,
            by default the target's own coarse field. (Estimators of this family map
            one field; growth laws per driver are `ProxyDownscaler`'s.)
        **training
            Options of a trained model's training loop, passed on to ``_fit_arrays``
            (`LLAAE.fit`: ``checkpoint`` and ``resume``).

        Returns
        -------
        Estimator
            ``self``, fitted.

        Raises
        ------
        InputDataError
            A variable is missing, a field lacks latitude/longitude or units, has a
            non-monotonic coordinate or an unknown calendar, is empty or all NaN, the
            proxy holds NaNs, or target and proxy are on different time axes.
        TypeError
            The arguments fit neither form.

        Examples
        --------
        >>> import climlatent as cl
        >>> world = cl.datasets.synthetic_biogeochem(n_years=2, n_fine_lat=16, n_fine_lon=16)
        >>> eof = cl.EOFRegression(n_proxy_eofs=5, n_target_eofs=5)
        >>> eof.fit(world.coarse, world.fine, "chl").downscale(world.coarse)["chl"].shape
        (1, 24, 16, 16)
        """
        proxy_data, target_data, target, proxy, training = fit_call(args, kwargs)
        y = get_variable(target_data, target, "target")
        x = get_variable(proxy_data, proxy, "proxy")
        time, calendar = check_field(y, "target")
        check_field(x, "proxy")
        parse_units(y, target)
        parse_units(x, proxy)
        check_no_inf(y, "target")
        sample_dims = check_sample_dims(y, "target", _spatial(y), None)
        check_same_samples(y, x, time)
        check_sample_dims(x, "proxy", _spatial(x), sample_dims)
        x = in_sample_order(x, sample_dims)  # rows pair: the target's sample order
        self._check_proxy_finite(x)
        y, x = GridOrder.of(y, target).canonical(y), GridOrder.of(x, proxy).canonical(x)

        x_tf = make_transform(self.proxy_transform, sample_dims)
        y_tf = make_transform(self.target_transform, sample_dims)
        x_in = x_tf.fit(x).forward(x) if x_tf else x
        y_in = y_tf.fit(y).forward(y) if y_tf else y
        proxy_layout, target_layout = FieldLayout.from_data(x_in), FieldLayout.from_data(y_in)
        x_mat = to_matrix(x_in, proxy_layout)
        y_mat = to_matrix(y_in, target_layout)

        self._fit_arrays(x_mat, y_mat, proxy_layout, target_layout, **training)
        self.target_shift_ = smearing_shift(y_tf, y_mat, self._predict(x_mat))
        self.target_, self.proxy_ = target, proxy
        self.target_attrs_ = dict(y.attrs)
        self.proxy_units_ = str(x.attrs["units"])
        self.proxy_range_ = FittedRange.fit(x, "proxy", self.range_tolerance)
        self.target_order_ = grid_layout(target_data[target], target)
        self.calendar_ = calendar
        self.sample_dims_ = sample_dims
        self.proxy_layout_, self.target_layout_ = proxy_layout, target_layout
        self.proxy_transform_, self.target_transform_ = x_tf, y_tf
        return self

    def _fit_arrays(
        self, x: np.ndarray, y: np.ndarray, proxy: FieldLayout, target: FieldLayout, **training: Any
    ) -> None:
        """Fit the model to the sample matrices of proxy and target, on their layouts."""
        raise NotImplementedError

    def emulate(self, ds: xr.Dataset, check_range: bool = True, amp: bool = False) -> xr.Dataset:
        """Emulate the target field from the proxy field of ``ds``.

        `downscale` is the same map, for a model fitted as a downscaler.

        Parameters
        ----------
        ds : xr.Dataset
            Holds the proxy variable on the grid the estimator was fitted on (in any
            latitude order, longitude convention or dim order), with its sample dims
            (time, member, those of ``fit``); units are converted to the fitted ones.
        check_range : bool
            Refuse proxy values beyond the fitted range by more than
            ``range_tolerance`` times its width (fill values, mislabelled units).
        amp : bool
            Run the model in CUDA's float16 autocast (automatic mixed precision): at
            tensor-core speed, within float16's precision of the float32 result;
            refused for a model not on CUDA, and for a block whose output float16
            overflows.

        Returns
        -------
        xr.Dataset
            The emulated target on the target grid (in the layout it had at ``fit``),
            with ``ds``'s sample coordinates and global attributes, the target's CF
            attributes, and a history line. Lazy when ``ds`` is dask-backed.
        """
        return self._map(ds, check_range, amp, "emulate(ds)")

    def downscale(
        self, coarse: xr.Dataset, check_range: bool = True, amp: bool = False
    ) -> xr.Dataset:
        """The target on the grid it was fitted on, from the proxy field of ``coarse``.

        The map of `emulate` (the same numbers), for a model fitted in the downscaler
        form ``fit(coarse, fine, target, proxies)``: the proxy's coarse field in,
        the target's fine field out.

        Parameters
        ----------
        coarse : xr.Dataset
            Holds the proxy variable on its fitted (coarse) grid, with its sample
            dims; units are converted to the fitted ones.
        check_range : bool
            Refuse proxy values beyond the fitted range by more than
            ``range_tolerance`` times its width.
        amp : bool
            Run the model in CUDA's float16 autocast (automatic mixed precision): at
            tensor-core speed, within float16's precision of the float32 result;
            refused for a model not on CUDA, and for a block whose output float16
            overflows.

        Returns
        -------
        xr.Dataset
            The target on its fitted (fine) grid, with ``coarse``'s sample
            coordinates and global attributes, the target's CF attributes, and a
            history line. Lazy when ``coarse`` is dask-backed.

        Examples
        --------
        >>> import climlatent as cl
        >>> world = cl.datasets.synthetic_biogeochem(n_years=2, n_fine_lat=16, n_fine_lon=16)
        >>> eof = cl.EOFRegression(n_proxy_eofs=5, n_target_eofs=5)
        >>> eof = eof.fit(world.coarse, world.fine, "chl", proxies="tos")
        >>> eof.downscale(world.coarse)["chl"].sizes == world.fine["chl"].sizes
        True
        """
        return self._map(coarse, check_range, amp, "downscale(coarse)")

    def _map(self, ds: xr.Dataset, check_range: bool, amp: bool, call: str) -> xr.Dataset:
        """The target mapped from the proxy of ``ds``, its history line ending ``call``."""
        self._require_fitted(call.partition("(")[0])
        precision = None
        if amp:  # torch's, imported only then: an EOFRegression's emulate needs none
            from climlatent.precision import amp_context

            precision = amp_context(getattr(self, "device_", None), f"this {type(self).__name__}")
        x = self._prepare_proxy(ds, check_range, blocks_checked=True)  # by _predict_rows
        x_in = self.proxy_transform_.forward(x) if self.proxy_transform_ else x
        out = map_model(self, [x_in], self.proxy_layout_, self.target_layout_, precision=precision)
        call = call.replace(")", ", amp=True)") if amp else call  # in the history line
        return self._wrap(out.rename(self.target_), ds, call)

    def _predict_rows(self, matrices: list[np.ndarray], groups: np.ndarray) -> np.ndarray:
        """The target matrix of one block from its proxy matrix, checked finite first."""
        (x,) = matrices
        check_finite(x, self.proxy_)
        y = self._predict(x)
        shift = getattr(self, "target_shift_", None)  # the mean of a log1p target
        return y if shift is None else y + shift.astype(y.dtype)

    def encode(self, ds: xr.Dataset) -> xr.DataArray:
        """Latent representation of the target field of ``ds``.

        Returns
        -------
        xr.DataArray
            Dims: the sample dims of the target, then ``latent``.
        """
        self._require_fitted("encode")
        y = self._prepare_target(ds, blocks_checked=True)  # by _target_matrix
        z = self._encode(self._target_matrix(y))
        sample = self.target_layout_.sample_dims(y)
        long_name = f"latent representation of {self.target_}"
        return latent_array(z, y, sample, [self.target_], long_name)

    def reconstruct(self, ds: xr.Dataset) -> xr.Dataset:
        """Encode then decode the target field of ``ds`` (its reconstruction)."""
        self._require_fitted("reconstruct")
        y = self._prepare_target(ds, blocks_checked=True)  # by _target_matrix
        rec = self._decode(self._encode(self._target_matrix(y)))
        out = from_matrix(
            rec.astype(np.float32), self.target_layout_, sample_coords(y, self.target_layout_)
        )
        return self._wrap(out.rename(self.target_), ds, "reconstruct(ds)")

    def dynamical_adjustment(self, ds: xr.Dataset) -> xr.Dataset:
        """Split the target of ``ds`` into its proxy-induced part and the residual.

        With sea-level pressure as proxy this is dynamical adjustment: the
        circulation-induced component ``emulate(ds)`` and the residual
        ``target - emulate(ds)``, which holds the thermodynamic (forced) signal and
        internal variability not explained by the circulation.

        Returns
        -------
        xr.Dataset
            ``<target>_circulation`` and ``<target>_residual``, in the target's units.

        Examples
        --------
        >>> import climlatent as cl
        >>> ds = cl.datasets.synthetic_circulation(n_members=1, n_years=2)
        >>> est = cl.EOFRegression(n_proxy_eofs=3).fit(ds, "tas", "psl")
        >>> sorted(est.dynamical_adjustment(ds).data_vars)
        ['tas_circulation', 'tas_residual']
        """
        self._require_fitted("dynamical_adjustment")
        circulation = self.emulate(ds)
        y = get_variable(ds, self.target_, "target")
        y = self._check_new_field(y, "target", self.target_layout_)
        y = convert_units(
            in_layout(self.target_order_, y), self.target_attrs_["units"], self.target_
        )
        name = self.target_
        induced = circulation[name]
        label = self.target_attrs_.get("long_name", name)
        # a difference: in the units of differences (degC -> K, as CF's "temperature:
        # difference"), and no longer the target's standard_name
        residual = (y - induced).astype(np.float32)
        residual.attrs = {
            key: value
            for key, value in physical_attrs(self.target_attrs_).items()
            if key != "standard_name"
        }
        residual = residual.assign_attrs(
            units=difference_units(self.target_attrs_["units"]),
            long_name=f"residual of {label} not explained by {self.proxy_}",
        )
        induced = induced.assign_attrs(
            units=self.target_attrs_["units"], long_name=f"{label} induced by {self.proxy_}"
        )
        out = xr.Dataset(
            {f"{name}_circulation": induced, f"{name}_residual": residual}, attrs=circulation.attrs
        )
        history = out.attrs["history"].rsplit("emulate(ds)", 1)[0]
        return out.assign_attrs(history=history + "dynamical_adjustment(ds)")

    # -- what persistence stores ----------------------------------------------------

    def _fitted_metadata(self) -> dict[str, Any]:
        """JSON-serialisable fitted metadata (see :mod:`climlatent.persistence`)."""
        return {
            "target": self.target_,
            "proxy": self.proxy_,
            "target_attrs": self.target_attrs_,
            "proxy_units": self.proxy_units_,
            "calendar": self.calendar_,
            "sample_dims": list(self.sample_dims_),
            "proxy_range": [self.proxy_range_.minimum, self.proxy_range_.maximum],
        }

    def _fitted_datasets(self) -> dict[str, xr.Dataset]:
        """Fitted grids and transforms as netCDF-writable Datasets, by file stem."""
        out = {
            "proxy_grid": self.proxy_layout_.to_dataset(),
            "target_grid": self.target_layout_.to_dataset(),
            "target_layout": self.target_order_,
        }
        if self.target_shift_ is not None:
            out[SMEARING_FILE] = smearing_dataset(self.target_shift_)
        for role, tf in (("proxy", self.proxy_transform_), ("target", self.target_transform_)):
            if tf is not None:
                out[f"{role}_transform"] = tf.to_dataset()
        return out

    def _restore(self, fitted: dict[str, Any], datasets: dict[str, xr.Dataset]) -> None:
        """Set the fitted attributes from what :meth:`_fitted_metadata`/`_datasets` gave."""
        self.target_, self.proxy_ = fitted["target"], fitted["proxy"]
        self.target_attrs_ = fitted["target_attrs"]
        if "units" not in self.target_attrs_:  # fit refuses a target without units
            raise ValueError(f"target_attrs of {self.target_!r} have no 'units'")
        self.proxy_units_ = fitted["proxy_units"]
        self.calendar_ = fitted["calendar"]
        self.sample_dims_ = tuple(fitted["sample_dims"])
        bounds = fitted.get("proxy_range")  # absent from models saved without it: no check
        self.proxy_range_ = FittedRange(self.proxy_, *bounds) if bounds else None
        self.target_order_ = datasets.get("target_layout")
        smearing = datasets.get(SMEARING_FILE)  # absent from models saved without it
        self.target_shift_ = None if smearing is None else smearing["log_smearing"].values
        for role in ("proxy", "target"):
            setattr(self, f"{role}_layout_", FieldLayout.from_dataset(datasets[f"{role}_grid"]))
            state = datasets.get(f"{role}_transform")
            tf = transforms.transform_from_dataset(state) if state is not None else None
            kind, held = getattr(self, f"{role}_transform"), type(tf).__name__
            if type(tf) is not type(configured := make_transform(kind, self.sample_dims_)):
                raise ValueError(  # a file missing, or another's
                    f"the configuration's {role}_transform={kind!r} needs a "
                    f"{type(configured).__name__} in {role}_transform.nc, not a {held}"
                )
            setattr(self, f"{role}_transform_", tf)

    def _prepare_proxy(
        self, ds: xr.Dataset, check_range: bool = True, blocks_checked: bool = False
    ) -> xr.DataArray:
        x = get_variable(ds, self.proxy_, "proxy")
        x = self._check_new_field(x, "proxy", self.proxy_layout_, blocks_checked)
        x = convert_units(x, self.proxy_units_, self.proxy_)
        if check_range and self.proxy_range_ is not None:
            x = self.proxy_range_.check(x, "proxy", self.range_tolerance)
        return x

    def _prepare_target(self, ds: xr.Dataset, blocks_checked: bool = False) -> xr.DataArray:
        y = get_variable(ds, self.target_, "target")
        y = self._check_new_field(y, "target", self.target_layout_, blocks_checked)
        y = convert_units(y, self.target_attrs_["units"], self.target_)
        return self.target_transform_.forward(y) if self.target_transform_ else y

    def _target_matrix(self, y: xr.DataArray) -> np.ndarray:
        """The target's valid cells as rows, refusing NaN/inf there (it is encoded)."""
        check_finite(matrix := to_matrix(y, self.target_layout_), self.target_)
        return matrix

    @staticmethod
    def _check_proxy_finite(x: xr.DataArray) -> None:
        n_bad = int((~np.isfinite(x)).sum())
        if n_bad:
            raise InputDataError(
                f"proxy variable {x.name!r} has {n_bad} NaN/inf value(s); a proxy must be "
                f"complete (fill or mask it before fitting)"
            )

    # -- what a model supplies -----------------------------------------------------

    def _predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _encode(self, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _decode(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _spatial(da: xr.DataArray) -> tuple[str, ...]:
    return find_grid(da, da.name).spatial_dims
