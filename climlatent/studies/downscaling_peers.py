"""The downscaling peer table: every downscaler of the package against xsdba, held out.

Two worlds, each coarsened 4x and 10x (when the coarse grid keeps at least
``MIN_COARSE_CELLS`` cells along each axis):

- **A1B tas**: the iris-sample-data SRES A1B North America annual temperatures
  (:func:`climlatent.studies.a1b_downscaling.coarsened_a1b`), the first 180 years
  to train, the last 60 to test; every method downscales ``tas`` from its own coarse
  field;
- **biogeochem chl**: :func:`climlatent.datasets.synthetic_biogeochem` (monthly, 20
  years, 40 x 60 fine cells, seed 0), the last 5 years held out; chlorophyll in
  mg m-3. :class:`climlatent.ProxyDownscaler` sees only the coarse drivers ``tos``
  (exponential law) and ``rsds`` (quadratic law); the other peers interpolate the
  coarse chlorophyll itself, which the generator also provides. The latent model
  takes both, as a downscaling of a climate model's own chlorophyll would
  (``target_input=True``: the coarse chlorophyll sets its growth latent, the drivers
  its laws and free channels); a second latent row, ``ProxyLatentDownscaler, drivers
  only``, shows it from the drivers alone.

Rows: bilinear interpolation, bilinear plus a climatological correction (per month
on monthly data), xsdba's ``EmpiricalQuantileMapping`` and ``QuantileDeltaMapping``
applied per fine cell after bilinear interpolation (``train(ref=fine training
truth, hist=bilinear of the training coarse field)``, ``adjust(sim=bilinear of the
test coarse field)``; additive for temperature, multiplicative for chlorophyll;
skipped with a message when xsdba, the ``bench`` extra, is not installed), the
ProxyDownscaler, the latent model ProxyLatentDownscaler, and the LLAAE as a
downscaler (the target's coarse field as its proxy).

Columns, on the held-out time steps, over the fine cells where the truth and every
method are defined: area-weighted RMSE and mean bias, the error of the per-cell 90th
percentile along time (:func:`climlatent.metrics.quantile_error`), the error of the
per-cell linear trend per decade (:func:`climlatent.metrics.trend_error`), and the
spatial-spectrum error: the mean absolute log10 ratio of the radially averaged power
spectra of the test fields (:func:`climlatent.metrics.spectra.log_spectral_distance`,
on the longitudes where every cell is defined). Each column's best peer is the best
row other than the latent model's (both of its rows); the ``*_ratio`` columns hold
each row's value (for the bias its absolute value) over the best peer's: a
latent-model ratio below 1 leads that column.

Run ``python -m climlatent.studies.downscaling_peers --output
docs/studies/downscaling_peers`` (or ``climlatent study downscaling_peers``); it
writes ``downscaling_peers.csv`` and ``downscaling_peers.png`` there.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import pandas as pd
import xarray as xr

from climlatent.baselines import BilinearBaseline, ClimatologyCorrectedBilinear
from climlatent.datasets import synthetic_biogeochem
from climlatent.estimators import LLAAE, ProxyDownscaler, ProxyLatentDownscaler
from climlatent.grid import find_grid
from climlatent.metrics import area_mean, quantile_error, rmse, trend_error
from climlatent.metrics.spectra import log_spectral_distance
from climlatent.studies.a1b_downscaling import N_TRAIN_YEARS, coarsened_a1b
from climlatent.studies.peer_downscalers import CoarseProxyLLAAE, QuantileMappedBilinear

FACTORS = (4, 10)
MIN_COARSE_CELLS = 3
LATENT_MODEL = "ProxyLatentDownscaler"
LATENT_DRIVERS_ONLY = "ProxyLatentDownscaler, drivers only"
LATENT_ROWS = (LATENT_MODEL, LATENT_DRIVERS_ONLY)
TAIL_QUANTILE = 0.9
BIOGEOCHEM_LAWS = {"tos": "exponential", "rsds": "quadratic"}
METRICS = {  # column -> (printed header, units: a format of the field's units)
    "rmse": ("RMSE", "{}"),
    "bias": ("bias", "{}"),
    "q90_error": ("q90 error", "{}"),
    "trend_error": ("trend error", "{} decade-1"),
    "spectrum_error": ("spectrum error", "log10"),
}
NAME_WIDTH, WIDTH = 37, 16  # printed columns
XSDBA_METHODS = ("EmpiricalQuantileMapping", "QuantileDeltaMapping")


class World(NamedTuple):
    """A downscaling problem: coarse inputs and fine truth, split in time.

    Attributes
    ----------
    name : str
        Printed name (``"A1B tas"``).
    factor : int
        Fine cells per coarse cell along each axis.
    coarse, fine : xr.Dataset
        Coarse inputs (the target's coarse field, and drivers) and the fine truth,
        on ``(time, lat, lon)``.
    target : str
        The fine field to downscale.
    proxies : dict or None
        Driver -> growth law for the proxy models; None: the target's own coarse field.
    kind : {"additive", "multiplicative"}
        How the correction peers correct (multiplicative for positive fields).
    group : str
        The groups of the correction peers: ``"time"`` or ``"time.month"``.
    n_train : int
        The first ``n_train`` time steps train, the rest test.
    """

    name: str
    factor: int
    coarse: xr.Dataset
    fine: xr.Dataset
    target: str
    proxies: dict[str, str] | None
    kind: str
    group: str
    n_train: int

    def split(self, ds: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset]:
        """``ds``'s training and test time steps."""
        return ds.isel(time=slice(0, self.n_train)), ds.isel(time=slice(self.n_train, None))


class Downscaler(Protocol):
    """What a row of the table answers: ``fit(coarse, fine, target, ...)``, ``downscale``."""

    def fit(self, coarse: xr.Dataset, fine: xr.Dataset, target: str, **options: Any) -> Any:
        """Fit on the coarse inputs and fine target of the training time steps."""

    def downscale(self, coarse: xr.Dataset) -> xr.Dataset:
        """The target on the fine grid."""


class Method(NamedTuple):
    """A row of the table: its estimator for a world, and what it downscales from.

    Attributes
    ----------
    build : callable
        The row's estimator for a world.
    inputs : {"target", "drivers", "target and drivers"}
        The target's coarse field, the world's drivers (the target's coarse field in a
        world without drivers), or both.
    needs_drivers : bool
        Left out of worlds without drivers, where it would repeat another row.
    """

    build: Callable[[World], Downscaler]
    inputs: str = "target"
    needs_drivers: bool = False

    def input_names(self, world: World) -> list[str]:
        """The coarse variables the row reads in ``world``.

        Examples
        --------
        >>> world = biogeochem_world(4, n_years=2, n_test_years=1, n_fine_lat=16,
        ...                          n_fine_lon=16)
        >>> Method(BilinearBaseline, "target and drivers").input_names(world)
        ['chl', 'tos', 'rsds']
        """
        target = [world.target] if self.inputs != "drivers" else []
        drivers = list(world.proxies or [world.target]) if self.inputs != "target" else []
        return list(dict.fromkeys(target + drivers))


@dataclasses.dataclass(frozen=True)
class PeerSettings:
    """Training configurations of the learned rows (seeded; fixed for every world).

    The defaults are the table's: ProxyDownscaler as in the A1B experiment (600
    epochs, batch 32); the latent model with the growth latent alone (``channels=1``,
    ``lr=1e-3``, 300 epochs: on A1B 4x, channels=2 did worse); the LLAAE with a
    64-dim beta-VAE latent (``beta=0.1``), the coarse cells as its proxy features,
    100 epochs.
    """

    proxy_epochs: int = 600
    proxy_batch_size: int = 32
    latent_channels: int = 1
    latent_lr: float = 1e-3
    latent_epochs: int = 300
    llaae_latent_dim: int = 64
    llaae_beta: float = 0.1
    llaae_filters: tuple[int, ...] = (16, 32, 64)
    llaae_epochs: int = 100
    seed: int = 0


QUICK_SETTINGS = PeerSettings(
    proxy_epochs=2, latent_epochs=2, llaae_latent_dim=4, llaae_filters=(4,), llaae_epochs=1
)
QUICK_BIOGEOCHEM = {"n_years": 4, "n_test_years": 2, "n_fine_lat": 16, "n_fine_lon": 24}


def a1b_world(factor: int) -> World:
    """The A1B temperatures coarsened ``factor`` x: 180 years train, 60 test.

    Examples
    --------
    >>> world = a1b_world(10)
    >>> dict(world.coarse.tas.sizes), world.n_train
    ({'time': 240, 'latitude': 3, 'longitude': 4}, 180)
    """
    coarse, fine = coarsened_a1b(factor)
    return World("A1B tas", factor, coarse, fine, "tas", None, "additive", "time", N_TRAIN_YEARS)


def biogeochem_world(
    factor: int,
    n_years: int = 20,
    n_test_years: int = 5,
    n_fine_lat: int = 40,
    n_fine_lon: int = 60,
    seed: int = 0,
) -> World:
    """Monthly synthetic chlorophyll (mg m-3) and its drivers; the last years test.

    Examples
    --------
    >>> world = biogeochem_world(4, n_years=2, n_test_years=1, n_fine_lat=16, n_fine_lon=16)
    >>> dict(world.fine.chl.sizes), world.fine.chl.attrs["units"], world.n_train
    ({'time': 24, 'lat': 16, 'lon': 16}, 'mg m-3', 12)
    """
    coarse, fine, _ = synthetic_biogeochem(
        n_years=n_years, n_fine_lat=n_fine_lat, n_fine_lon=n_fine_lon, factor=factor, seed=seed
    )

    def member_in_mg(ds: xr.Dataset) -> xr.Dataset:
        chl = (1e6 * ds["chl"]).assign_attrs({**ds["chl"].attrs, "units": "mg m-3"})
        return ds[["tos", "rsds"]].assign(chl=chl).isel(member=0, drop=True)

    n_train = 12 * (n_years - n_test_years)
    return World(
        "biogeochem chl",
        factor,
        member_in_mg(coarse),
        member_in_mg(fine),
        "chl",
        BIOGEOCHEM_LAWS,
        "multiplicative",
        "time.month",
        n_train,
    )


def too_coarse(world: World) -> str | None:
    """Why ``world``'s coarse grid is too small to downscale from, or None.

    Examples
    --------
    >>> too_coarse(a1b_world(10)) is None
    True
    """
    field = world.coarse[world.target]
    sizes = {d: field.sizes[d] for d in find_grid(field, world.target).spatial_dims}
    if min(sizes.values()) >= MIN_COARSE_CELLS:
        return None
    return (
        f"{world.factor}x leaves {sizes} coarse cells, fewer than {MIN_COARSE_CELLS} along an axis"
    )


def peer_methods(settings: PeerSettings | None = None) -> dict[str, Method]:
    """The table's rows, by name; the xsdba rows only when xsdba is installed.

    Examples
    --------
    >>> list(peer_methods())[:2]
    ['bilinear', 'bilinear + climatology']
    """
    settings = settings or PeerSettings()
    methods = {
        "bilinear": Method(lambda world: BilinearBaseline()),
        "bilinear + climatology": Method(
            lambda world: ClimatologyCorrectedBilinear(world.kind, world.group)
        ),
    }
    if importlib.util.find_spec("xsdba") is None:
        print(
            "xsdba is not installed (pip install 'climlatent[bench]'): "
            "its quantile-mapping rows are left out",
            file=sys.stderr,
        )
    else:
        for adjustment in XSDBA_METHODS:
            methods[f"xsdba {adjustment}"] = Method(
                lambda world, a=adjustment: QuantileMappedBilinear(a, world.kind, world.group)
            )
    quiet = {"seed": settings.seed, "random_streams": 1, "progress": False}
    methods["ProxyDownscaler"] = Method(
        lambda world: ProxyDownscaler(
            epochs=settings.proxy_epochs, batch_size=settings.proxy_batch_size, **quiet
        ),
        "drivers",
    )

    def latent(target_input: bool) -> ProxyLatentDownscaler:
        return ProxyLatentDownscaler(
            channels=settings.latent_channels,
            lr=settings.latent_lr,
            epochs=settings.latent_epochs,
            target_input=target_input,
            **quiet,
        )

    # where the target is its own driver, the drivers already hold it
    methods[LATENT_MODEL] = Method(
        lambda world: latent(world.proxies is not None), "target and drivers"
    )
    methods[LATENT_DRIVERS_ONLY] = Method(lambda world: latent(False), "drivers", True)
    methods["LLAAE"] = Method(
        lambda world: CoarseProxyLLAAE(
            LLAAE(
                latent_dim=settings.llaae_latent_dim,
                beta=settings.llaae_beta,
                filters=settings.llaae_filters,
                proxy_input="field",
                epochs=settings.llaae_epochs,
                **quiet,
            )
        )
    )
    return methods


def scores(prediction: xr.DataArray, truth: xr.DataArray) -> dict[str, float]:
    """The table's columns for one prediction of the held-out truth (both masked alike).

    The spectrum error is taken on the longitudes where the truth is defined in every
    cell and time step.

    Examples
    --------
    >>> world = a1b_world(4)
    >>> truth = world.split(world.fine)[1]["tas"]
    >>> {name: round(value, 3) for name, value in scores(truth, truth).items()}
    {'rmse': 0.0, 'bias': 0.0, 'q90_error': 0.0, 'trend_error': 0.0, 'spectrum_error': 0.0}
    """
    lat, lon = find_grid(truth, truth.name).spatial_dims
    complete = truth.notnull().all(("time", lat))
    fields = [
        da.isel({lon: complete.values}).transpose("time", lat, lon) for da in (prediction, truth)
    ]
    return {
        "rmse": float(rmse(prediction, truth, ("time",))),
        "bias": float(area_mean(prediction - truth, ("time",))),
        "q90_error": float(quantile_error(prediction, truth, TAIL_QUANTILE)),
        "trend_error": float(trend_error(prediction, truth)),
        "spectrum_error": log_spectral_distance(fields[0].values, fields[1].values),
    }


def world_rows(world: World, methods: dict[str, Method]) -> list[dict[str, Any]]:
    """Fit every method on ``world``'s training years and score it on the test years."""
    coarse_train, coarse_test = world.split(world.coarse)
    fine_train, fine_test = world.split(world.fine)
    truth = fine_test[world.target]
    predictions, seconds = {}, {}
    methods = {
        name: method
        for name, method in methods.items()
        if world.proxies is not None or not method.needs_drivers
    }
    for name, method in methods.items():
        start = time.perf_counter()
        options = {"proxies": world.proxies} if method.inputs != "target" else {}
        estimator = method.build(world)
        estimator.fit(coarse_train, fine_train, world.target, **options)
        predictions[name] = estimator.downscale(coarse_test)[world.target]
        seconds[name] = time.perf_counter() - start
        print(f"  {world.name} {world.factor}x: {name} in {seconds[name]:.1f} s", flush=True)
    defined = truth.notnull().all("time")
    for prediction in predictions.values():
        defined &= prediction.notnull().all("time")
    truth = truth.where(defined)
    units = truth.attrs["units"]
    return [
        {
            "world": world.name,
            "factor": world.factor,
            "method": name,
            "inputs": ", ".join(methods[name].input_names(world)),
            "units": units,
            **scores(prediction.where(defined), truth),
            "seconds": seconds[name],
        }
        for name, prediction in predictions.items()
    ]


def add_ratios(table: pd.DataFrame) -> pd.DataFrame:
    """Each metric's ``<metric>_ratio``: ``|value|`` over the best peer's, per world and factor.

    The best peer is the row, other than the latent model's (`LATENT_ROWS`), with
    the smallest ``|value|``.

    Examples
    --------
    >>> table = pd.DataFrame({"world": "w", "factor": 4, "method": ["a", "b", LATENT_MODEL],
    ...     "rmse": [2.0, 1.0, 0.5], "bias": [-0.1, 0.2, 0.05], "q90_error": 1.0,
    ...     "trend_error": 1.0, "spectrum_error": 1.0})
    >>> add_ratios(table)[["rmse_ratio", "bias_ratio"]].values.tolist()
    [[2.0, 1.0], [1.0, 2.0], [0.5, 0.5]]
    """
    out = table.copy()
    peers = ~out["method"].isin(LATENT_ROWS)
    for metric in METRICS:
        size = out[metric].abs()
        best = size.where(peers).groupby([out["world"], out["factor"]]).transform("min")
        out[f"{metric}_ratio"] = size / best
    return out


def peer_table(worlds: Sequence[World], methods: dict[str, Method]) -> pd.DataFrame:
    """One row per (world, factor, method): the metrics and the ratios to the best peer.

    Examples
    --------
    >>> world = biogeochem_world(4, n_years=2, n_test_years=1, n_fine_lat=16, n_fine_lon=16)
    >>> rows = {"bilinear": peer_methods()["bilinear"]}
    >>> table = peer_table([world], rows)  # doctest: +ELLIPSIS
      biogeochem chl 4x: bilinear in ... s
    >>> float(table.loc[0, "rmse_ratio"])
    1.0
    """
    rows = [row for world in worlds for row in world_rows(world, methods)]
    return add_ratios(pd.DataFrame(rows))


def format_table(table: pd.DataFrame) -> str:
    """The table as text: per world and factor, the rows, the best peers, the ratios.

    Examples
    --------
    >>> table = add_ratios(pd.DataFrame({"world": "w", "factor": 4, "units": "K",
    ...     "method": ["bilinear", LATENT_MODEL], "rmse": [2.0, 0.5], "bias": [0.1, 0.1],
    ...     "q90_error": 1.0, "trend_error": 1.0, "spectrum_error": 1.0}))
    >>> format_table(table).splitlines()[-1].split()
    ['latent', '/', 'best', 'peer', '0.25', '1', '1', '1', '1']
    """
    lines = []
    for (world, factor), block in table.groupby(["world", "factor"], sort=False):
        units = block["units"].iloc[0]
        legend = ", ".join(f"{name}: {unit.format(units)}" for name, unit in METRICS.values())
        lines += [
            "",
            f"{world}, {factor}x coarsening ({legend})",
            f"{'method':<{NAME_WIDTH}s}"
            + "".join(f"{name:>{WIDTH}s}" for name, _ in METRICS.values()),
        ]
        for _, row in block.iterrows():
            values = "".join(f"{row[m]:{WIDTH}.4g}" for m in METRICS)
            lines.append(f"{row['method']:<{NAME_WIDTH}s}{values}")
        peers = block[~block["method"].isin(LATENT_ROWS)]
        best = [peers.loc[peers[m].abs().idxmin(), "method"] for m in METRICS]
        names = "".join(f"{_short(name):>{WIDTH}s}" for name in best)
        lines.append(f"{'best peer':<{NAME_WIDTH}s}{names}")
        for name, label in zip(LATENT_ROWS, ("latent", "latent, drivers only"), strict=True):
            latent = block[block["method"] == name]
            if len(latent):
                ratios = latent.iloc[0][[f"{m}_ratio" for m in METRICS]]
                values = "".join(f"{r:{WIDTH}.3g}" for r in ratios)
                lines.append(f"{label + ' / best peer':<{NAME_WIDTH}s}{values}")
    return "\n".join(lines)


def _short(method: str) -> str:
    """A method's name within a column, for the best-peer line."""
    names = {
        "bilinear + climatology": "bil+clim",
        "xsdba EmpiricalQuantileMapping": "xsdba EQM",
        "xsdba QuantileDeltaMapping": "xsdba QDM",
    }
    return names.get(method, method)[: WIDTH - 1]


def table_figure(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Each method's ratio to the best peer: a panel per metric and world/factor, log scale.

    Left of the line at 1 leads the peers; the latent model is drawn in red.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    blocks = list(table.groupby(["world", "factor"], sort=False))
    fig, axes = plt.subplots(
        len(blocks),
        len(METRICS),
        figsize=(2.6 * len(METRICS) + 1.5, 0.3 * len(table) + 1.0),
        squeeze=False,
        sharey=True,
    )
    for row, ((world, factor), block) in zip(axes, blocks, strict=True):
        colours = ["tab:red" if m in LATENT_ROWS else "tab:grey" for m in block["method"]]
        for ax, (metric, (name, _)) in zip(row, METRICS.items(), strict=True):
            ax.scatter(block[f"{metric}_ratio"], block["method"], c=colours, zorder=2)
            ax.axvline(1.0, color="black", linewidth=0.8)
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.grid(axis="y", linewidth=0.3)
            label = f"|{name}|" if metric == "bias" else name
            ax.set_title(f"{world} {factor}x\n{label} / best peer's", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0, 0].invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    """Build every world, run every method, print the table, write the CSV and figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="docs/studies/downscaling_peers")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="check the command in about a minute: A1B 10x and a small synthetic world, "
        "a few epochs (the numbers mean nothing)",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    settings = QUICK_SETTINGS if args.quick else PeerSettings()
    print(f"configuration: {settings}")
    methods = peer_methods(settings)
    if args.quick:
        candidates = [a1b_world(10), biogeochem_world(4, **QUICK_BIOGEOCHEM)]
    else:
        candidates = [a1b_world(f) for f in FACTORS] + [biogeochem_world(f) for f in FACTORS]
    worlds = []
    for world in candidates:
        reason = too_coarse(world)
        if reason:
            print(f"{world.name}: {reason}; left out")
        else:
            worlds.append(world)
    table = peer_table(worlds, methods)
    print(format_table(table))
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "downscaling_peers.csv", index=False, float_format="%.6g")
    table_figure(table, out / "downscaling_peers.png")
    print(f"\nwrote {out / 'downscaling_peers.csv'} and {out / 'downscaling_peers.png'}")
    print(
        f"wall time {time.perf_counter() - start:.0f} s; "
        f"load average at end: {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
