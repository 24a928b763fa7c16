"""The ``climlatent`` command line.

Every command exits with status 1 and one line ``error: <reason>`` on stderr when its
input, model, configuration, output path or scheduler is at fault; ``--quiet``
silences progress bars and messages for batch jobs.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import click

from climlatent._version import __version__
from climlatent.memory import POLICIES


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    """Report an expected error as one ``error:`` line on stderr and exit with status 1."""
    from climlatent.errors import ClimlatentError, is_netcdf_error

    try:
        yield
    except (ClimlatentError, OSError, ValueError, RuntimeError) as err:
        if isinstance(err, RuntimeError) and not is_netcdf_error(err):
            raise  # a bug's
        reason = " ".join(str(err).split()) or type(err).__name__
        click.echo(f"error: {reason}", err=True)
        sys.exit(1)


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
@click.option(
    "--years",
    type=click.IntRange(min=2),
    default=30,
    show_default=True,
    help="Years (those after the first two thirds held out).",
)
def demo(output: str, members: int, years: int) -> None:
    """Emulate precipitation from sea-level pressure and write CF netCDF + PNG."""
    from climlatent.demo import run_demo

    with _one_line_errors():
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

    with _one_line_errors():
        paths = make_gallery(output)
    for path in paths:
        click.echo(f"wrote {path}")


@main.command()
@click.argument("model", type=click.Path())  # a missing one: one error line, status 1
def info(model: str) -> None:
    """Describe a saved model: estimator, variables, options (checked as by loading)."""
    from climlatent.estimators._repr import describe
    from climlatent.persistence import load

    with _one_line_errors():
        click.echo(describe(load(model)))


@main.command()
@click.argument("config", type=click.Path())  # checked by load_fit_config: status 1
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or messages.")
def fit(config: str, quiet: bool) -> None:
    """Fit the model described by the YAML file CONFIG and save it.

    CONFIG names the estimator (EOFRegression, LLAAE, ProxyDownscaler or
    ProxyLatentDownscaler), its
    options, the data (paths, globs or catalog.yaml#entry), the target and proxy
    variables, the output model path and, optionally, a training checkpoint file:
    rerun the command after an interruption and training resumes from it. See
    climlatent.fit_config.
    """
    from climlatent import distributed
    from climlatent.fit_config import fit_from_config, load_fit_config

    with _one_line_errors():
        path = fit_from_config(load_fit_config(config), progress=not quiet)
    if not quiet and distributed.is_main_process():
        click.echo(f"wrote model: {path}")


def _labels(context: click.Context, parameter: click.Parameter, value: str | None) -> list | None:
    """The labels of a comma-separated list, none of them empty ("" selected every member)."""
    if value is None:
        return None
    labels = value.split(",")
    if not all(labels):
        raise click.BadParameter(f"{value!r} holds an empty label")
    return labels


def _batch_command(method: str, summary: str) -> click.Command:
    """The ``emulate`` or ``downscale`` command: a saved model over member files to zarr."""

    @click.argument("model", type=click.Path())
    @click.argument("inputs", nargs=-1, required=True)
    @click.option("--output", "-o", required=True, help="zarr store (an interrupted run resumes).")
    @click.option(
        "--members",
        callback=_labels,
        help="Comma-separated member labels to process [default: all].",
    )
    @click.option(
        "--scheduler",
        "address",
        default="threads",
        show_default=True,
        help="'threads', 'local' (a dask LocalCluster) or a scheduler address tcp://host:port.",
    )
    @click.option(
        "--workers", type=click.IntRange(min=1), help="Threads or local workers [default: dask's]."
    )
    @click.option(
        "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
    )
    @click.option(
        "--amp",
        is_flag=True,
        help="Run the model in float16 autocast on CUDA (mixed precision; refused elsewhere).",
    )
    @click.option(
        "--time-chunk",
        type=int,
        help=(
            "Time steps per model call [default: a region (4096 steps or 32 MiB of "
            "output) split among the workers, at most 8 MiB of output]."
        ),
    )
    @click.option(
        "--time-per-region",
        type=int,
        help=(
            "Time steps per zarr chunk [default: the whole model calls within 32 MiB of "
            "output, at most 4096 steps; at least one call]."
        ),
    )
    @click.option(
        "--connect-timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=10.0,
        show_default=True,
        help="Seconds to wait for a scheduler address.",
    )
    @click.option(
        "--overwrite", is_flag=True, help="Start the store afresh, replacing one written before."
    )
    @click.option(
        "--no-range-check",
        is_flag=True,
        help="Apply the model to inputs beyond its fitted range (refused by default).",
    )
    @click.option(
        "--memory",
        type=click.Choice(list(POLICIES)),
        default="flat",
        show_default=True,
        help=(
            "What the run frees in this process (the threaded scheduler's workers): "
            "'flat' returns it to the system at once (peak memory flat in members and "
            "years); 'reuse' keeps it for the next block (about twice as fast, a peak "
            "8-50 % higher that grows with the run)."
        ),
    )
    @click.option("--quiet", "-q", is_flag=True, help="No progress bar or messages.")
    def command(
        model: str,
        inputs: tuple[str, ...],
        output: str,
        members: list[str] | None,
        address: str,
        workers: int | None,
        device: str,
        amp: bool,
        time_chunk: int | None,
        time_per_region: int | None,
        connect_timeout: float,
        overwrite: bool,
        no_range_check: bool,
        memory: str,
        quiet: bool,
        **draws: Any,
    ) -> None:
        from climlatent import batch
        from climlatent.memory import use_memory_policy

        run = batch.emulate_to_zarr if method == "emulate" else batch.downscale_to_zarr
        use_memory_policy(memory)  # each region returns what it freed, under either
        with (
            _one_line_errors(),
            batch.scheduler(address, n_workers=workers, timeout=connect_timeout) as client,
        ):
            if client is not None and not quiet:
                n_workers = len(client.scheduler_info()["workers"])
                click.echo(f"dask scheduler {client.scheduler.address}, {n_workers} workers")
            store = run(
                model,
                list(inputs),
                output,
                members=members,
                time_chunk=time_chunk,
                time_per_region=time_per_region,
                device=device,
                amp=amp,
                check_range=not no_range_check,
                progress=not quiet,
                overwrite=overwrite,
                **draws,
            )
        if not quiet:
            click.echo(f"wrote {store}")

    command.__doc__ = summary
    if method == "downscale":
        command = click.option(
            "--n-samples",
            type=int,
            help="Stochastic realisations along 'realization' (a model fitted with noise).",
        )(command)
        command = click.option(
            "--seed", type=int, help="Seed of the realisations (with --n-samples) [default: 0]."
        )(command)
    return main.command(method)(command)


emulate = _batch_command(
    "emulate",
    """Emulate the members in INPUTS with the saved emulator MODEL into a zarr store.

    INPUTS are member files, globs ('members/*.nc') or catalog entries
    (catalog.yaml#entry); each file is one member unless it holds a member dimension.
    An EOFRegression or LLAAE fitted as a downscaler runs here, on coarse members.
    """,
)
downscale = _batch_command(
    "downscale",
    """Downscale the coarse members in INPUTS with a saved ProxyDownscaler MODEL to zarr.

    INPUTS are member files, globs ('coarse/*.nc') or catalog entries
    (catalog.yaml#entry) holding the model's driver variables. MODEL is a
    ProxyDownscaler or a ProxyLatentDownscaler (an EOFRegression or LLAAE downscaler
    runs with 'climlatent emulate').
    """,
)


#: Optional modules that xarray and dask import on first use only to probe for pint
#: arrays, a distributed client and scipy's FFT (dask.array.fft): 0.4-0.9 s of start-up
#: measured on 2 busy cores (regridding 120 daily 0.5 degree fields takes about 0.6 s),
#: and nothing the regrid command uses; and those imported at start-up for HTML and
#: terminal reprs (jinja2 by dask.widgets, rich by cf-xarray) and CPU affinity (psutil
#: by dask.system, whose fallback is os.sched_getaffinity): 0.07 s more.
_UNUSED_BY_REGRID = (
    "distributed",
    "pint",
    "scipy.fft",
    "scipy.fftpack",
    "jinja2",
    "rich",
    "psutil",
)
#: Modules that are imported but never used by the regrid command: loaded lazily there,
#: on first use. scipy.sparse touches every public submodule of numpy, and numpy.f2py
#: (with charset_normalizer) takes 0.03-0.15 s to import.
_LAZY_IN_REGRID = ("numpy.f2py",)


def _skip_unused_imports() -> bool:
    """In a process started as ``climlatent regrid``, let those probes find nothing.

    Only there (its argv names the command and nothing is imported yet): the probes
    cache their answers (dask then never looks for a distributed client again), which
    must not leak into a notebook, a test session or any other command. Returns
    whether this is such a process.
    """
    if sys.argv[1:2] != ["regrid"] or "xarray" in sys.modules:
        return False
    for name in _UNUSED_BY_REGRID:
        sys.modules.setdefault(name, None)  # None: "import name" raises ImportError
    for name in _LAZY_IN_REGRID:
        _import_lazily(name)
    return True


def _import_lazily(name: str) -> None:
    """Put module ``name`` in place unexecuted: it runs on its first attribute access."""
    import importlib.util

    spec = importlib.util.find_spec(name)  # imports the parent package
    if spec is None or spec.loader is None or name in sys.modules:
        return
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    setattr(sys.modules[parent], child, module)  # as an import would


def _end_without_collection() -> None:
    """Keep the objects alive now out of the garbage collector: the process ends.

    Python's finalisation collects garbage over every object of the imported
    libraries (xarray, pandas, dask, scipy): 0.5 s at the exit of ``climlatent
    regrid``, a quarter of its run on one step, measured on 2 busy cores; frozen,
    they are left to the operating system. Only in the command's own process, after
    the output is written and closed (see :func:`_skip_unused_imports`).
    """
    import gc

    gc.freeze()


@main.command()
@click.argument("source")
@click.argument("dst_grid")
@click.option("--output", "-o", required=True, help="netCDF file to write.")
@click.option(
    "--method",
    type=click.Choice(["conservative", "bilinear", "nearest"]),
    default="conservative",
    show_default=True,
)
@click.option(
    "--variables",
    help="Comma-separated variables to write (those on the grid regridded) [default: all].",
)
@click.option("--time-chunk", type=int, help="Time steps per block [default: about 16 MiB].")
@click.option(
    "--skipna", is_flag=True, help="Leave missing source cells out and renormalise (as CDO)."
)
@click.option("--quiet", "-q", is_flag=True, help="No message.")
def regrid(
    source: str,
    dst_grid: str,
    output: str,
    method: str,
    variables: str | None,
    time_chunk: int | None,
    skipna: bool,
    quiet: bool,
) -> None:
    """Regrid the netCDF file SOURCE onto DST_GRID, streaming it in time blocks.

    DST_GRID is a netCDF file whose grid is taken or a CDO grid spec: r<NX>x<NY>
    (r180x90: 180 longitudes from 0, 90 latitudes) or global_<INC> (global_2).
    Conservative weights equal CDO's remapcon; memory holds a few time blocks.
    """
    own_process = _skip_unused_imports()
    import dask

    from climlatent.regrid.files import regrid_file

    # two threads: one block read while another is regridded (reads are serialised)
    with _one_line_errors(), dask.config.set(scheduler="threads", num_workers=2):
        path = regrid_file(
            source,
            dst_grid,
            output,
            method=method,
            variables=variables.split(",") if variables else None,
            time_chunk=time_chunk,
            skipna=skipna,
        )
    if not quiet:
        click.echo(f"wrote {path}")
    if own_process:
        _end_without_collection()


def _runnable_names(package: str) -> list[str]:
    """Modules of ``package`` with a ``main`` (runnable), relative to it, without importing."""
    import importlib
    import pkgutil
    from pathlib import Path

    prefix = f"{package}."
    names = []
    for info in pkgutil.walk_packages(importlib.import_module(package).__path__, prefix):
        origin = Path(info.module_finder.path) / f"{info.name.rsplit('.', 1)[-1]}.py"
        if not info.ispkg and "\ndef main(" in origin.read_text():
            names.append(info.name.removeprefix(prefix))
    return sorted(names)


def _run_named_module(package: str, kind: str, name: str | None, args: tuple[str, ...]) -> None:
    """Run the ``kind`` NAME of ``package`` with its own ARGS, or list them.

    Without NAME (or with ``--help``) the command's help and the list; with ``--list``
    the names alone, one a line. An unknown NAME, or one without ``main``, exits with one
    ``error:`` line naming the choices.
    """
    import importlib

    names = _runnable_names(package)
    if name == "--list":
        click.echo("\n".join(names))
        return
    if name in (None, "--help", "-h"):
        click.echo(click.get_current_context().get_help())
        heading = package.rsplit(".", 1)[-1].capitalize()
        click.echo(f"\n{heading}:\n  " + "\n  ".join(names))
        return
    with _one_line_errors():
        if name not in names:
            raise ValueError(f"no {kind} {name!r}; choose one of: {', '.join(names)}")
        module = importlib.import_module(f"{package}.{name}")
        if not hasattr(module, "main"):
            raise ValueError(f"{kind} {name!r} has no main(); run it with python -m")
        module.main(list(args))


_PASS_THROUGH = {
    "add_help_option": False,
    "context_settings": {"ignore_unknown_options": True, "allow_extra_args": True},
}


@main.command(**_PASS_THROUGH)
@click.argument("name", required=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(name: str | None, args: tuple[str, ...]) -> None:
    """Run the benchmark NAME with its own ARGS (``climlatent bench NAME --help``).

    Without NAME, list the benchmarks (``--list``: the names alone). Each prints the
    figures it measures, ratios taken side by side in one run.
    """
    _run_named_module("climlatent.benchmarks", "benchmark", name, args)


@main.command(**_PASS_THROUGH)
@click.argument("name", required=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def study(name: str | None, args: tuple[str, ...]) -> None:
    """Run the study NAME with its own ARGS (``climlatent study NAME --help``).

    Without NAME, list the studies (``--list``: the names alone). Each reproduces a
    paper's experiment run by run, resumably, and rewrites its claims table under
    ``docs/studies/`` (``--output``).
    """
    _run_named_module("climlatent.studies", "study", name, args)
