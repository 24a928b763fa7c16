"""The ``climlatent`` command line."""

from __future__ import annotations

import sys

import click

from climlatent._version import __version__


@click.group()
@click.version_option(__version__, prog_name="climlatent")
def main() -> None:
    """Climate downscaling and emulation with physics-guided latent models."""


@main.command()
@click.option(
    "--output",
    "-o",
    default="demo-output",
    show_default=True,
    help="Folder for the netCDF file, the figure and the saved model.",
)
@click.option("--members", default=3, show_default=True, help="Ensemble members.")
@click.option("--years", default=30, show_default=True, help="Years (the last third held out).")
def demo(output: str, members: int, years: int) -> None:
    """Emulate precipitation from sea-level pressure and write CF netCDF + PNG."""
    from climlatent.demo import run_demo

    result = run_demo(output, n_members=members, n_years=years)
    click.echo(
        f"EOFRegression MSE skill vs climatology (held-out years): {result.skill:.3f} "
        f"(noise-free truth: {result.skill_noise_free:.3f})"
    )
    click.echo(f"wrote CF netCDF: {result.netcdf}")
    click.echo(f"wrote figure:    {result.figure}")
    click.echo(f"wrote model:     {result.model}")


@main.command()
@click.option("--output", "-o", default="docs/gallery", show_default=True)
def gallery(output: str) -> None:
    """Regenerate the README's figures."""
    from climlatent.gallery import make_gallery

    for path in make_gallery(output):
        click.echo(f"wrote {path}")


@main.command()
@click.argument("model", type=click.Path(exists=True))
def info(model: str) -> None:
    """Describe a saved model."""
    from climlatent.errors import ClimlatentError
    from climlatent.persistence import load

    try:
        est = load(model)
    except ClimlatentError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    click.echo(f"{type(est).__name__}: {est.proxy_} -> {est.target_}")
    for key, value in est.get_config().items():
        click.echo(f"  {key} = {value!r}")
