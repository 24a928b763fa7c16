import json

import netCDF4
from click.testing import CliRunner

from climlatent.cli import main


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
