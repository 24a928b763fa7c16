"""The main job of the README: a small emulation experiment end to end.

Sea-level pressure -> daily precipitation on the synthetic circulation ensemble:
fit :class:`~climlatent.EOFRegression` on the first years, emulate the held-out
years, score it against the training climatology, and write a CF netCDF file, the
saved model and a PNG figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from climlatent.datasets import synthetic_circulation
from climlatent.estimators import EOFRegression
from climlatent.io import to_netcdf
from climlatent.metrics import correlation, mse_skill_score


@dataclass(frozen=True)
class DemoResult:
    """Where the demo wrote its files, and the skill it measured."""

    netcdf: Path
    figure: Path
    model: Path
    skill: float
    skill_noise_free: float


def run_demo(
    output: str | Path, n_members: int = 3, n_years: int = 30, seed: int = 0
) -> DemoResult:
    """Fit, emulate, score and write the demo's files into the folder ``output``.

    Parameters
    ----------
    output : str or path-like
        Folder for the files (created if missing).
    n_members, n_years : int
        Size of the synthetic ensemble; the years after the first two thirds (rounded
        down, at least one) are held out, so at least 2 years.
    seed : int
        Seed of the synthetic data.

    Returns
    -------
    DemoResult
        Paths of the netCDF file, the PNG figure and the saved model, and the MSE skill
        score of the emulation (and of the noise-free truth) against climatology.

    Examples
    --------
    >>> import tempfile
    >>> result = run_demo(tempfile.mkdtemp(), n_members=1, n_years=3)
    >>> result.netcdf.name, result.skill > 0
    ('pr_emulated.nc', True)
    """
    folder = Path(output)
    if n_years < 2:  # before the folder is made
        raise ValueError(f"n_years must be at least 2 (one to fit, one held out), not {n_years}")
    ds = synthetic_circulation(n_members=n_members, n_years=n_years, seed=seed)  # checks them
    folder.mkdir(parents=True, exist_ok=True)
    years = ds.time.dt.year
    cut = int(years[0]) + max(1, (2 * n_years) // 3)
    train, test = ds.sel(time=years < cut), ds.sel(time=years >= cut)

    model = EOFRegression(n_proxy_eofs=10, n_target_eofs=20).fit(train, "pr", "psl")
    emulated = model.emulate(test)
    climatology = train["pr"].mean(("member", "time"))
    dims = ("member", "time")
    skill = float(mse_skill_score(emulated["pr"], test["pr"], climatology, dims))
    best = float(mse_skill_score(test["pr_noise_free"], test["pr"], climatology, dims))

    netcdf = to_netcdf(emulated, folder / "pr_emulated.nc", call="climlatent demo")
    model_path = folder / "eof_regression.clm"
    model.save(model_path)
    figure = _figure(emulated["pr"], test["pr"], folder / "pr_emulated.png")
    return DemoResult(netcdf, figure, model_path, skill, best)


def _figure(emulated: xr.DataArray, truth: xr.DataArray, path: Path) -> Path:
    # Not pyplot's: choosing its backend closed the caller's figures (a notebook's) and
    # left its plots on Agg, drawn nowhere.
    from matplotlib.figure import Figure

    per_day = 86400.0  # kg m-2 s-1 -> mm/day
    fig = Figure(figsize=(15, 4), layout="constrained")
    axes = fig.subplots(1, 3)
    (truth.mean(("member", "time")) * per_day).plot(
        ax=axes[0], cmap="YlGnBu", cbar_kwargs={"label": "mm/day"}
    )
    axes[0].set_title("mean precipitation, held-out years")
    corr = correlation(emulated.isel(member=0), truth.isel(member=0))
    corr.plot(ax=axes[1], cmap="RdBu_r", vmin=-1, vmax=1, cbar_kwargs={"label": "correlation"})
    axes[1].set_title("daily correlation, emulated vs true (member 1)")
    series = slice(0, 120)
    for da, label in ((truth, "true"), (emulated, "emulated from psl")):
        values = da.isel(member=0, time=series).mean(("lat", "lon")) * per_day
        axes[2].plot(values.values, label=label)
    axes[2].set_xlabel("day of the held-out period")
    axes[2].set_ylabel("domain-mean precipitation (mm/day)")
    axes[2].set_title("first 120 held-out days")
    axes[2].legend()
    fig.savefig(path, dpi=100)
    return path
