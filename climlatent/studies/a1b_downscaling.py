"""A real-data downscaling experiment: A1B North America annual temperature, 4x.

The SRES A1B run shipped by ``iris-sample-data`` (240 annual means of near-surface air
temperature, 1.25 x 1.875 degrees) is coarsened 4x conservatively; the first 180
years train :class:`climlatent.ProxyDownscaler` (temperature downscaled from itself)
and the two baselines (bilinear, bilinear plus climatological correction); the last
60 years are downscaled and scored against the true fine field: area-weighted RMSE
and mean bias, and cartopy maps of the RMSE of each method written to a PNG (the
coastlines come from the Natural Earth files shipped with climlatent: no download).

Run ``python -m climlatent.studies.a1b_downscaling --output a1b.png``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
import xarray as xr

from climlatent.baselines import BilinearBaseline, ClimatologyCorrectedBilinear
from climlatent.datasets import a1b_north_america
from climlatent.estimators import ProxyDownscaler
from climlatent.metrics import area_mean, rmse, rmse_map
from climlatent.regrid import Regridder

FACTOR = 4
N_TRAIN_YEARS = 180


def coarse_grid(fine: xr.Dataset, factor: int = FACTOR) -> xr.Dataset:
    """Grid of ``factor`` x ``factor`` blocks of ``fine`` (trimmed to whole blocks)."""
    out = {}
    for name in ("latitude", "longitude"):
        centres = fine[name].values.astype(float)
        step = np.diff(centres).mean()
        edges = np.concatenate([centres - step / 2, [centres[-1] + step / 2]])
        n = (len(centres) // factor) * factor
        block_edges = edges[: n + 1 : factor]
        out[name] = xr.DataArray(
            0.5 * (block_edges[1:] + block_edges[:-1]),
            dims=name,
            attrs={**fine[name].attrs, "bounds": f"{name}_bnds"},
        )
        out[f"{name}_bnds"] = xr.DataArray(
            np.stack([block_edges[:-1], block_edges[1:]], axis=1), dims=(name, "bnds")
        )
    return xr.Dataset(coords={k: v for k, v in out.items() if not k.endswith("bnds")}).assign(
        {k: v for k, v in out.items() if k.endswith("bnds")}
    )


def coarsened_a1b(factor: int = FACTOR) -> tuple[xr.Dataset, xr.Dataset]:
    """The A1B temperatures ``tas`` (K) and their conservative ``factor`` x coarsening.

    The fine grid is trimmed to whole ``factor`` x ``factor`` blocks (from the south
    and west edges); the coarse grid is :func:`coarse_grid` of it.

    Parameters
    ----------
    factor : int
        Fine cells per coarse cell along each axis.

    Returns
    -------
    coarse, fine : xr.Dataset
        ``tas`` on the coarse and on the trimmed fine grid, the 240 years of the run.

    Examples
    --------
    >>> coarse, fine = coarsened_a1b(10)
    >>> dict(coarse.tas.sizes), dict(fine.tas.sizes)
    ({'time': 240, 'latitude': 3, 'longitude': 4}, {'time': 240, 'latitude': 30, 'longitude': 40})
    """
    fine = a1b_north_america().rename(air_temperature="tas").load()
    fine = fine[["tas"]].isel(
        latitude=slice(0, (fine.sizes["latitude"] // factor) * factor),
        longitude=slice(0, (fine.sizes["longitude"] // factor) * factor),
    )
    grid = coarse_grid(fine, factor)
    return Regridder(fine, grid, method="conservative", engine="climlatent")(fine), fine


def experiment(epochs: int = 600) -> tuple[dict[str, float], dict[str, xr.DataArray]]:
    """Run the experiment; RMSE/bias figures and per-cell RMSE maps of every method."""
    coarse, fine = coarsened_a1b(FACTOR)
    train = slice(0, N_TRAIN_YEARS)
    test = slice(N_TRAIN_YEARS, None)
    methods = {
        "ProxyDownscaler": ProxyDownscaler(epochs=epochs, batch_size=32, random_streams=1),
        "bilinear": BilinearBaseline(),
        "bilinear + climatology": ClimatologyCorrectedBilinear("additive"),
    }
    truth = fine["tas"].isel(time=test)
    figures, maps = {}, {}
    common = None
    outputs = {}
    for name, method in methods.items():
        method.fit(coarse.isel(time=train), fine.isel(time=train), "tas")
        outputs[name] = method.downscale(coarse.isel(time=test))["tas"]
        valid = outputs[name].notnull()
        common = valid if common is None else common & valid
    for name, out in outputs.items():
        out = out.where(common)
        figures[f"{name} RMSE (K)"] = float(rmse(out, truth, ("time",)))
        figures[f"{name} bias (K)"] = float(area_mean(out - truth, ("time",)))
        maps[name] = rmse_map(out, truth)
    figures["ratio model / corrected"] = (
        figures["ProxyDownscaler RMSE (K)"] / figures["bilinear + climatology RMSE (K)"]
    )
    figures["ratio model / bilinear"] = (
        figures["ProxyDownscaler RMSE (K)"] / figures["bilinear RMSE (K)"]
    )
    return figures, maps


def rmse_maps_figure(maps: dict[str, xr.DataArray], path: str) -> None:
    """Cartopy maps (coastlines drawn offline) of each method's RMSE, on one scale."""
    import matplotlib.pyplot as plt

    from climlatent.plot import map_panels, panel_figure

    fields = [m.assign_attrs(long_name="RMSE", units="K") for m in maps.values()]
    fig, axes = panel_figure(fields[0], 1, len(fields))
    map_panels(fields, [f"{name}: held-out 60 years" for name in maps], axes.ravel())
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the experiment, print the figures and write the RMSE maps."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="a1b_downscaling.png")
    parser.add_argument("--epochs", type=int, default=600)
    args = parser.parse_args(argv)
    figures, maps = experiment(args.epochs)
    print(
        f"A1B North America tas, {FACTOR}x conservative coarsening, "
        f"train {N_TRAIN_YEARS} years, test the last 60 (area-weighted, common cells)"
    )
    for key, value in figures.items():
        print(f"{key:>36s}: {value:.4f}")
    rmse_maps_figure(maps, args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
