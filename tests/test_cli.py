import json

import netCDF4
import pytest
from click.testing import CliRunner

from climlatent.cli import main
from climlatent.demo import run_demo


def test_demo_writes_netcdf_png_and_model(tmp_path):
    result = CliRunner().invoke(
        main, ["demo", "--output", str(tmp_path), "--members", "1", "--years", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "MSE skill vs climatology" in result.output
    with netCDF4.Dataset(tmp_path / "pr_emulated.nc") as nc:
        assert nc.Conventions == "CF-1.8" and "climlatent demo" in nc.history
    assert (tmp_path / "pr_emulated.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    info = CliRunner().invoke(main, ["info", str(tmp_path / "eof_regression.clm")])
    assert info.exit_code == 0 and "EOFRegression: psl -> pr" in info.output


def test_the_demo_leaves_the_callers_matplotlib_backend_and_figures_alone(tmp_path):
    """run_demo switched pyplot to Agg, which closed every open figure of the caller (a
    notebook's plots) and left later ones on a backend that shows nothing."""
    import matplotlib
    import matplotlib.pyplot as plt

    previous = matplotlib.get_backend()
    plt.switch_backend("svg")
    try:
        figure = plt.figure()
        run_demo(tmp_path, n_members=1, n_years=3)
        assert matplotlib.get_backend() == "svg" and plt.get_fignums() == [figure.number]
    finally:
        plt.close("all")
        plt.switch_backend(previous)
    assert (tmp_path / "pr_emulated.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_refuses_an_empty_ensemble_before_making_its_folder(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--output", str(tmp_path / "d"), "--members", "0"])
    assert result.exit_code == 1 and "n_members must be a positive integer" in result.output
    assert not (tmp_path / "d").exists()
    # One year held none out: "proxy variable 'psl' is empty", and an empty folder.
    result = CliRunner().invoke(main, ["demo", "--output", str(tmp_path / "d"), "--years", "1"])
    assert result.exit_code == 2 and "'--years': 1 is not in the range x>=2" in result.output
    with pytest.raises(ValueError, match="n_years must be at least 2"):
        run_demo(tmp_path / "d", n_years=1)
    assert not (tmp_path / "d").exists()


def test_batch_options_out_of_range_are_refused(tmp_path):
    """--workers 0 ran on dask's default count; --connect-timeout -1 was taken; an empty
    --members (or an empty label in it) ran every member."""
    for option, value in (("--workers", "0"), ("--connect-timeout", "-1"), ("--members", ""),
                          ("--members", "r1i1p1f1,")):  # fmt: skip
        args = ["emulate", "m.clm", "in.nc", "-o", str(tmp_path / "o.zarr"), option, value]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output


def test_a_seed_without_n_samples_is_refused():
    """It was ignored: the deterministic field written, as if no seed were given."""
    result = CliRunner().invoke(
        main, ["downscale", "m.clm", "in.nc", "-o", "o.zarr", "--seed", "5"]
    )
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: seed=5 seeds realisations: give n_samples too"


def test_info_on_corrupt_model_fails_with_one_line(tmp_path):
    CliRunner().invoke(main, ["demo", "--output", str(tmp_path), "--members", "1", "--years", "2"])
    manifest = tmp_path / "eof_regression.clm" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["files"]["weights.safetensors"] = "0" * 64
    manifest.write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["info", str(tmp_path / "eof_regression.clm")])
    assert result.exit_code == 1
    assert "weights.safetensors" in result.output and "truncated or modified" in result.output


def test_bench_lists_and_runs_a_benchmark_with_its_own_options():
    runner = CliRunner()
    listing = runner.invoke(main, ["bench"])
    assert listing.exit_code == 0
    assert {"ensemble_pipeline", "training_throughput"} <= set(listing.output.split())
    args = "--samples 256 --features 8 --latent-dim 2 --hidden 4 --batch-size 64 --repeats 1"
    result = runner.invoke(main, ["bench", "training_throughput", *args.split()])
    assert result.exit_code == 0, result.output
    assert "ratio fit/bare" in result.output and "256 samples x 8 features" in result.output


def test_bench_unknown_name_fails_with_one_line():
    result = CliRunner().invoke(main, ["bench", "warp_drive"])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: no benchmark 'warp_drive'; choose one of")


def test_study_lists_the_studies_and_only_them():
    runner = CliRunner()
    listing = runner.invoke(main, ["study", "--list"])
    assert listing.exit_code == 0, listing.output
    names = listing.output.split()
    assert {"darcy_study", "llaae_study", "burgers_study", "dl_cfm"} <= set(names)
    assert "training_throughput" not in names and "run_ledger" not in names
    bare = runner.invoke(main, ["study"])
    assert bare.exit_code == 0 and "Studies:" in bare.output and "darcy_study" in bare.output
    benchmarks = runner.invoke(main, ["bench", "--list"]).output.split()
    assert "training_throughput" in benchmarks and "darcy_study" not in benchmarks


def test_study_passes_its_own_options_to_the_study():
    result = CliRunner().invoke(main, ["study", "darcy_study", "--help"])
    assert result.exit_code == 0, result.output
    assert "--mixture-seeds" in result.output and "--status" in result.output


def test_study_unknown_name_fails_naming_the_choices():
    result = CliRunner().invoke(main, ["study", "warp_drive"])
    assert result.exit_code == 1
    message = result.stderr.strip()
    assert message.startswith("error: no study 'warp_drive'; choose one of")
    assert "darcy_study" in message and "llaae_study" in message


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["info", "missing.clm"], "'missing.clm' is not a climlatent model (no manifest.json)"),
        (["fit", "."], "Is a directory: '.'"),
    ],
)
def test_a_missing_model_or_a_folder_for_a_config_fails_with_one_line(args, reason):
    """Click's own checks of these paths exited with status 2 and a usage text of four
    lines, where the module promises status 1 and one error line for a bad model or
    configuration (as emulate does for a missing model)."""
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("error: ") and reason in result.stderr
