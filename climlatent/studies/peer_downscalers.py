"""Downscalers from outside the package's estimators, in its fit/downscale vocabulary.

Rows of :mod:`climlatent.studies.downscaling_peers`:

- :class:`QuantileMappedBilinear`: xsdba's quantile mappings (the ``bench`` extra)
  applied per fine cell after bilinear interpolation, the habit of bias-correction
  users;
- :class:`CoarseProxyLLAAE`: the LLAAE emulator used as a downscaler, its proxy the
  target's coarse field (until the LLAAE answers ``downscale`` itself: this class is
  the one place to switch).
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Iterator

import xarray as xr

from climlatent.baselines import BilinearBaseline
from climlatent.estimators import LLAAE
from climlatent.grid import find_grid


@dataclasses.dataclass
class QuantileMappedBilinear:
    """Bilinear interpolation, then an xsdba adjustment trained per fine cell.

    Parameters
    ----------
    adjustment : {"EmpiricalQuantileMapping", "QuantileDeltaMapping"}
        The xsdba class.
    kind : {"additive", "multiplicative"}
        xsdba's ``kind`` ``"+"`` or ``"*"``.
    group : str
        xsdba's ``group`` (``"time"``, ``"time.month"``).

    Examples
    --------
    >>> qdm = QuantileMappedBilinear("QuantileDeltaMapping", "multiplicative", "time.month")
    >>> qdm.fit(coarse_train, fine_train, "chl")  # doctest: +SKIP
    >>> qdm.downscale(coarse_test)  # doctest: +SKIP
    """

    adjustment: str
    kind: str = "additive"
    group: str = "time"

    def fit(self, coarse: xr.Dataset, fine: xr.Dataset, target: str) -> QuantileMappedBilinear:
        """Train the adjustment of the bilinear training field to the fine truth."""
        import xsdba

        self.target_ = target
        self.bilinear_ = BilinearBaseline().fit(coarse, fine, target)
        hist = self.bilinear_.downscale(coarse)[target]
        with _quiet_xsdba():
            self.adjustment_ = getattr(xsdba, self.adjustment).train(
                fine[target],
                hist,
                kind={"additive": "+", "multiplicative": "*"}[self.kind],
                group=self.group,
            )
        return self

    def downscale(self, coarse: xr.Dataset) -> xr.Dataset:
        """Adjust the bilinear interpolation of ``coarse``."""
        sim = self.bilinear_.downscale(coarse)[self.target_]
        with _quiet_xsdba():
            adjusted = self.adjustment_.adjust(sim).transpose(*sim.dims)
        return adjusted.to_dataset(name=self.target_)


@contextlib.contextmanager
def _quiet_xsdba() -> Iterator[None]:
    """Silence xsdba's expected warnings: all-NaN (land) cells, a jsonpickle default."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-nan slice", RuntimeWarning)
        warnings.filterwarnings("ignore", "keys will default to True", DeprecationWarning)
        yield


@dataclasses.dataclass
class CoarseProxyLLAAE:
    """An LLAAE downscaling a target from its coarse field (the proxy).

    The LLAAE is fitted on one Dataset holding the fine target and, as the proxy
    ``"<target>_coarse"``, the coarse target on dims renamed ``coarse_<dim>``; coarse
    cells with no data (all-land blocks) are set to zero at fitting and downscaling.
    ``downscale`` is the LLAAE's ``emulate``, ``d(h(X))``.

    Parameters
    ----------
    model : LLAAE
        The unfitted LLAAE.

    Examples
    --------
    >>> import climlatent as cl
    >>> world = cl.datasets.synthetic_biogeochem(n_years=2, n_fine_lat=16, n_fine_lon=16)
    >>> llaae = cl.LLAAE(latent_dim=2, filters=(4,), epochs=1, proxy_input="field", progress=False)
    >>> down = CoarseProxyLLAAE(llaae).fit(world.coarse, world.fine, "chl")
    >>> down.downscale(world.coarse)["chl"].shape == world.fine["chl"].shape
    True
    """

    model: LLAAE

    def fit(self, coarse: xr.Dataset, fine: xr.Dataset, target: str) -> CoarseProxyLLAAE:
        """Fit the LLAAE to produce ``fine[target]`` from ``coarse[target]``."""
        self.target_ = target
        training = xr.merge(
            [fine[[target]], self._proxy(coarse)],
            compat="override",
            join="exact",
            combine_attrs="override",
        )
        self.model.fit(training, target, f"{target}_coarse")
        return self

    def downscale(self, coarse: xr.Dataset) -> xr.Dataset:
        """The target on the fine grid from its coarse field in ``coarse``."""
        return self.model.emulate(self._proxy(coarse))

    def _proxy(self, coarse: xr.Dataset) -> xr.Dataset:
        field = coarse[self.target_]
        dims = find_grid(field, self.target_).spatial_dims
        renamed = field.fillna(0.0).rename({d: f"coarse_{d}" for d in dims})
        return renamed.to_dataset(name=f"{self.target_}_coarse")
