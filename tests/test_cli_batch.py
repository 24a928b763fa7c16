"""The batch commands: ``fit`` from YAML, ``emulate``/``downscale`` to zarr, resumption,
schedulers, and every failure reported as one line with a non-zero exit status."""

import sys

import numpy as np
import pytest
import torch
import xarray as xr
import yaml
from click.testing import CliRunner
from test_batch import circulation_members, patch_predict, save_eof, write_members

import climlatent as cl
from climlatent.cli import main
from climlatent.zarr_store import read_manifest, write_zarr


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Member files of an emulation ensemble and of a downscaling world, and a model."""
    folder = tmp_path_factory.mktemp("cli")
    ensemble = circulation_members()
    write_members(ensemble, folder / "members")
    save_eof(ensemble, folder / "eof.clm")
    world = cl.datasets.synthetic_biogeochem(n_members=2, n_years=2, n_fine_lat=16, n_fine_lon=16)
    write_members(world.coarse, folder / "coarse")
    write_members(world.fine, folder / "fine")
    return folder


def invoke(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def write_config(folder, **keys):
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(keys, sort_keys=False))
    return path


EOF_CONFIG = {
    "estimator": "EOFRegression",
    "options": {"n_proxy_eofs": 3, "n_target_eofs": 4},
    "data": "members/r[12]i1p1f1.nc",
    "target": "pr",
    "proxy": "psl",
    "output": "fitted.clm",
}
DOWNSCALER_CONFIG = {
    "estimator": "ProxyDownscaler",
    "options": {"epochs": 2},
    "data": "coarse/*.nc",
    "fine": "fine/*.nc",
    "target": "chl",
    "proxies": {"tos": "exponential", "rsds": "quadratic"},
    "output": "downscaler.clm",
}


@pytest.mark.parametrize(
    ("config", "described"),
    [
        (EOF_CONFIG, "EOFRegression: psl -> pr"),
        (DOWNSCALER_CONFIG, "ProxyDownscaler: tos, rsds -> chl"),
    ],
)
def test_fit_writes_a_model_that_info_describes(workspace, config, described):
    result = invoke("fit", write_config(workspace, **config))
    assert result.exit_code == 0, result.output
    assert f"wrote model: {workspace / config['output']}" in result.stdout
    info = invoke("info", workspace / config["output"])
    assert info.exit_code == 0 and info.stdout.startswith(described)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 3}, "unknown key 'epochs'; allowed keys: estimator, data, target, output"),
        (
            {"options": {"latent_dim": 4}},
            "unknown EOFRegression option 'latent_dim'; allowed EOFRegression options: "
            "target_transform, proxy_transform, range_tolerance, n_proxy_eofs, n_target_eofs, "
            "ridge",
        ),
        ({"estimator": "GAN"}, "unknown estimator 'GAN'; one of EOFRegression, LLAAE"),
        ({"proxies": {"psl": "linear"}}, "EOFRegression does not take the key 'proxies'"),
        ({"options": {"ridge": -1}}, "invalid EOFRegression options: ridge=-1 must be at least 0"),
        ({"data": "members/none*.nc"}, "no file matches"),
    ],
)
def test_fit_config_errors_say_what_is_allowed(workspace, change, message):
    assert_one_line_error(
        invoke("fit", write_config(workspace, **{**EOF_CONFIG, **change})), message
    )


def test_fit_refuses_an_output_it_cannot_write_before_training(workspace, monkeypatch):
    """Training ran first, then the model was refused its output and lost."""
    monkeypatch.setattr(cl.EOFRegression, "fit", lambda *a, **k: pytest.fail("trained"))
    for output, message in (
        ("members/r1i1p1f1.nc", "is not a climlatent model; refusing to replace it"),
        ("no/such/folder/m.clm", "does not exist"),
    ):
        config = write_config(workspace, **{**EOF_CONFIG, "output": output})
        assert_one_line_error(invoke("fit", config), "'output':", message)


def test_missing_config_key_is_named(workspace):
    config = {key: value for key, value in EOF_CONFIG.items() if key != "target"}
    assert_one_line_error(invoke("fit", write_config(workspace, **config)), "missing key(s) target")


def test_emulate_resumes_after_a_failing_chunk(workspace, tmp_path, monkeypatch):
    args = ["emulate", workspace / "eof.clm", workspace / "members" / "*.nc", "--quiet"]
    args += ["--time-chunk", 365, "--time-per-region", 365]  # one block per region
    reference = invoke(*args, "--output", tmp_path / "reference.zarr")
    assert reference.exit_code == 0 and reference.output == ""

    patch_predict(monkeypatch, fail_at=4)
    failed = invoke(*args, "--output", tmp_path / "resumed.zarr")
    assert_one_line_error(failed, "simulated read error in block 4")
    manifest = read_manifest(tmp_path / "resumed.zarr")
    assert [entry["status"] for entry in manifest["regions"]] == 3 * ["complete"] + 3 * ["pending"]

    monkeypatch.undo()
    calls = patch_predict(monkeypatch)
    resumed = invoke(*args, "--output", tmp_path / "resumed.zarr")
    assert resumed.exit_code == 0, resumed.output
    assert len(calls) == 3  # only the regions left pending
    assert_same_store(tmp_path / "resumed.zarr", tmp_path / "reference.zarr")


def assert_same_store(store, reference):
    np.testing.assert_array_equal(
        xr.open_zarr(store)["pr"].values, xr.open_zarr(reference)["pr"].values
    )
    checksums = [
        [entry["checksum"] for entry in read_manifest(path)["regions"]]
        for path in (store, reference)
    ]
    assert checksums[0] == checksums[1]


@pytest.mark.slow
def test_local_cluster_writes_the_same_store_as_threads(workspace, tmp_path, monkeypatch):
    to_zarr, region_writes = xr.Dataset.to_zarr, []

    def region_write_here(self, *args, **kwargs):  # in this process only
        if kwargs.get("region") is not None:
            region_writes.append(kwargs["region"])
        return to_zarr(self, *args, **kwargs)

    monkeypatch.setattr(xr.Dataset, "to_zarr", region_write_here)
    args = ["emulate", workspace / "eof.clm", workspace / "members" / "*.nc", "--time-chunk", 200]
    threads = invoke(*args, "--output", tmp_path / "threads.zarr", "--quiet")
    n_regions = len(read_manifest(tmp_path / "threads.zarr")["regions"])
    assert len(region_writes) == n_regions > 1  # threads: each region written here
    local = invoke(
        *args, "--output", tmp_path / "local.zarr", "--scheduler", "local", "--workers", 2
    )
    assert threads.exit_code == 0 and local.exit_code == 0, local.output
    assert "2 workers" in local.stdout and f"wrote {tmp_path / 'local.zarr'}" in local.stdout
    assert len(region_writes) == n_regions  # the cluster's regions: written by its workers
    assert_same_store(tmp_path / "local.zarr", tmp_path / "threads.zarr")


def test_scheduler_address_writes_the_same_store_as_threads(workspace, tmp_path):
    from distributed import LocalCluster

    args = ["emulate", workspace / "eof.clm", workspace / "members" / "*.nc", "--time-chunk", 200]
    threads = invoke(*args, "--output", tmp_path / "threads.zarr", "--quiet")
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        address = cluster.scheduler_address
        remote = invoke(*args, "--output", tmp_path / "remote.zarr", "--scheduler", address)
    assert threads.exit_code == 0 and remote.exit_code == 0, remote.output
    assert f"dask scheduler {address}, 2 workers" in remote.stdout
    assert_same_store(tmp_path / "remote.zarr", tmp_path / "threads.zarr")


@pytest.mark.parametrize("policy", ["flat", "reuse"])
def test_the_memory_policy_leaves_the_store_as_it_is(workspace, tmp_path, monkeypatch, policy):
    import climlatent.memory

    calls = []
    monkeypatch.setattr(climlatent.memory, "use_memory_policy", calls.append)
    args = ["emulate", workspace / "eof.clm", workspace / "members" / "*.nc", "--time-chunk", 200]
    reference = invoke(*args, "--output", tmp_path / "reference.zarr", "-q")
    chosen = invoke(*args, "--output", tmp_path / "chosen.zarr", "--memory", policy, "-q")
    assert reference.exit_code == 0 and chosen.exit_code == 0, chosen.output
    assert calls == ["flat", policy]  # the default is flat
    assert_same_store(tmp_path / "chosen.zarr", tmp_path / "reference.zarr")


@pytest.mark.parametrize("target_input", [False, True], ids=["drivers", "drivers+chl"])
def test_proxy_latent_downscaler_downscales_members_lazily_to_zarr(tmp_path, target_input):
    world = cl.datasets.synthetic_biogeochem(
        n_members=3, n_years=2, n_fine_lat=20, n_fine_lon=20, factor=10
    )
    est = cl.ProxyLatentDownscaler(
        channels=2, hidden=4, epochs=3, progress=False, target_input=target_input
    )
    est.fit(world.coarse, world.fine, "chl", proxies={"tos": "exponential", "rsds": "quadratic"})
    est.save(tmp_path / "latent.clm")
    write_members(world.coarse, tmp_path / "coarse")
    store = tmp_path / "chl.zarr"
    args = ["downscale", tmp_path / "latent.clm", tmp_path / "coarse" / "*.nc", "-o", store]
    # Blocks of 5 months, regions of 10: each member is several model calls and regions.
    result = invoke(*args, "--time-chunk", 5, "--time-per-region", 10, "-q")
    assert result.exit_code == 0, result.output
    written = xr.open_zarr(store)
    assert written["chl"].encoding["chunks"] == (1, 10, 20, 20)
    assert len(read_manifest(store)["regions"]) == 3 * 3  # 24 months: 10, 10 and 4
    expected = cl.load(tmp_path / "latent.clm").downscale(world.coarse)["chl"]
    # float32 rounding of other batch sizes (2e-6 measured): the same numbers otherwise
    xr.testing.assert_allclose(written["chl"].load(), expected, rtol=1e-5, atol=0)
    attrs = dict(written["chl"].attrs)
    assert attrs.pop("climlatent_clipped").endswith("uncounted")  # lazy: 0 here, eagerly
    assert attrs == expected.attrs


def test_downscale_draws_the_estimators_realisations_into_zarr(tmp_path):
    """``--n-samples``: the realisations of ``est.downscale(n_samples=, seed=)`` in
    memory, written in blocks of 5 months and regions of 10; another seed is refused."""
    world = cl.datasets.synthetic_biogeochem(
        n_members=2, n_years=2, n_fine_lat=20, n_fine_lon=20, factor=10
    )
    est = cl.ProxyLatentDownscaler(channels=1, hidden=4, epochs=3, progress=False)
    est.fit(world.coarse, world.fine, "chl", proxies={"tos": "exponential", "rsds": "quadratic"})
    est.save(tmp_path / "latent.clm")
    write_members(world.coarse, tmp_path / "coarse")
    store = tmp_path / "draws.zarr"
    args = ["downscale", tmp_path / "latent.clm", tmp_path / "coarse" / "*.nc", "-o", store]
    args += ["--time-chunk", 5, "--time-per-region", 10, "--n-samples", 3, "-q"]
    result = invoke(*args, "--seed", 7)
    assert result.exit_code == 0, result.output
    written = xr.open_zarr(store)["chl"].load()
    expected = cl.load(tmp_path / "latent.clm").downscale(world.coarse, n_samples=3, seed=7)
    assert written.dims[0] == "realization" and written.sizes["realization"] == 3
    xr.testing.assert_allclose(written, expected["chl"], rtol=1e-5, atol=0)
    assert_one_line_error(invoke(*args, "--seed", 8), "seed")


def test_downscale_writes_the_selected_members(workspace, tmp_path):
    model = workspace / "downscaler.clm"
    if not model.exists():
        assert invoke("fit", write_config(workspace, **DOWNSCALER_CONFIG)).exit_code == 0
    store = tmp_path / "chl.zarr"
    coarse = workspace / "coarse" / "*.nc"
    result = invoke("downscale", model, coarse, "-o", store, "--members", "r2i1p1f1", "-q")
    assert result.exit_code == 0 and result.output == ""
    with cl.batch.open_members(coarse, ["tos", "rsds"], members=["r2i1p1f1"]) as drivers:
        expected = cl.load(model).downscale(drivers.load())
    xr.testing.assert_allclose(xr.open_zarr(store)["chl"].load(), expected["chl"], rtol=1e-5)


def test_store_of_another_model_is_refused(workspace, tmp_path):
    inputs = workspace / "members" / "*.nc"
    store = tmp_path / "pr.zarr"
    assert invoke("emulate", workspace / "eof.clm", inputs, "-o", store, "-q").exit_code == 0
    other = save_eof(circulation_members(), tmp_path / "other.clm", n_eofs=2)
    assert_one_line_error(invoke("emulate", other, inputs, "-o", store, "-q"), "fingerprint")


@pytest.mark.parametrize("spelling", ["same", "./", "link"])
def test_an_input_store_is_refused_as_its_own_output(workspace, tmp_path, spelling, monkeypatch):
    """With --overwrite the input store was deleted before its regions were read: its
    psl lost, a store of NaN pr left, and the error blamed psl's non-finite values."""
    monkeypatch.chdir(tmp_path)
    members = circulation_members()
    write_zarr(
        members[["psl"]], "psl.zarr", chunks={"member": 1}, fingerprint="psl", progress=False
    )
    (tmp_path / "link.zarr").symlink_to(tmp_path / "psl.zarr")
    output = {"same": "psl.zarr", "./": "./psl.zarr/", "link": "link.zarr"}[spelling]
    for overwrite in ([], ["--overwrite"]):
        result = invoke(
            "emulate", workspace / "eof.clm", "psl.zarr", "-o", output, "-q", *overwrite
        )
        assert_one_line_error(result, f"the output store '{output}' is the input 'psl.zarr'")
    stored = xr.open_zarr(tmp_path / "psl.zarr")
    assert list(stored.data_vars) == ["psl"]
    np.testing.assert_array_equal(stored["psl"].values, members["psl"].values)


def test_a_downscaler_cannot_emulate(workspace, tmp_path):
    model = workspace / "downscaler.clm"
    if not model.exists():
        assert invoke("fit", write_config(workspace, **DOWNSCALER_CONFIG)).exit_code == 0
    result = invoke("emulate", model, workspace / "coarse" / "*.nc", "-o", tmp_path / "x.zarr")
    assert_one_line_error(result, "cannot emulate (use 'climlatent downscale')")


def test_inputs_beyond_the_fitted_range_are_applied_on_request(workspace, tmp_path):
    """The refusal said to pass check_range=False, which the command did not take."""
    ensemble = circulation_members()
    hot = ensemble.assign(psl=ensemble["psl"] * 10)  # far beyond the fitted range
    write_members(hot, tmp_path / "hot")
    inputs = tmp_path / "hot" / "*.nc"
    refused = invoke("emulate", workspace / "eof.clm", inputs, "-o", tmp_path / "a.zarr", "-q")
    assert_one_line_error(refused, "outside the plausible range", "--no-range-check")
    args = ("emulate", workspace / "eof.clm", inputs, "-o", tmp_path / "b.zarr", "-q")
    assert invoke(*args, "--no-range-check").exit_code == 0
    expected = cl.load(workspace / "eof.clm").emulate(hot, check_range=False)["pr"]
    np.testing.assert_allclose(xr.open_zarr(tmp_path / "b.zarr")["pr"], expected, rtol=1e-6)


def test_a_model_no_batch_run_takes_is_pointed_to_python(workspace, tmp_path):
    """A VED was sent from emulate to downscale and back ('use climlatent emulate')."""
    ds = circulation_members(n_members=1)
    cl.VED(epochs=1, progress=False).fit(ds, target="tas", proxy="psl").save(tmp_path / "v.clm")
    for method in ("emulate", "downscale"):
        result = invoke(method, tmp_path / "v.clm", workspace / "members" / "*.nc", "-o",
                        tmp_path / "x.zarr")  # fmt: skip
        assert_one_line_error(result, f"VED, which a batch run cannot {method}", "in Python")


@pytest.mark.parametrize("where", ["missing folder", "under a file"])
def test_unwritable_output_fails_with_nothing_left(workspace, tmp_path, where):
    parent = tmp_path / "missing"
    if where == "under a file":
        parent = tmp_path / "file.txt"
        parent.write_text("not a folder")
    store = parent / "pr.zarr"
    result = invoke("emulate", workspace / "eof.clm", workspace / "members" / "*.nc", "-o", store)
    assert_one_line_error(result, "cannot write zarr store", str(store))
    assert sorted(path.name for path in tmp_path.rglob("*")) == (
        ["file.txt"] if where == "under a file" else []
    )


@pytest.mark.parametrize("problem", ["missing", "other grid"])
def test_bad_member_file_is_named(workspace, tmp_path, problem):
    bad = tmp_path / "r9i1p1f1.nc"
    if problem == "other grid":
        member = circulation_members(1).assign_coords(member=["r9i1p1f1"])
        cl.io.to_netcdf(member.assign_coords(lat=member.lat + 1.0), bad)
    first = workspace / "members" / "r1i1p1f1.nc"
    result = invoke("emulate", workspace / "eof.clm", first, bad, "-o", tmp_path / "pr.zarr")
    assert_one_line_error(result, str(bad))
    assert not (tmp_path / "pr.zarr").exists()


@pytest.mark.parametrize(("option", "value"), [("--time-chunk", 0), ("--time-per-region", -5)])
def test_block_sizes_below_one_are_refused(workspace, tmp_path, option, value):
    """0 fell back to the default silently; -5 was a cryptic dask error."""
    args = ["emulate", workspace / "eof.clm", workspace / "members" / "*.nc"]
    result = invoke(*args, "-o", tmp_path / "pr.zarr", option, value)
    assert_one_line_error(result, f"{option[2:].replace('-', '_')} must be at least 1, not {value}")
    assert not (tmp_path / "pr.zarr").exists()


def test_an_unreadable_member_file_is_named_in_one_line(workspace, tmp_path):
    """netCDF-C's RuntimeError ('NetCDF: HDF error') was a traceback naming no file."""
    bad = tmp_path / "r9i1p1f1.nc"
    member = circulation_members(1).assign_coords(member=["r9i1p1f1"])
    member = member[["psl"]].assign_coords(lat_bnds=member.lat_bnds, lon_bnds=member.lon_bnds)
    member.to_netcdf(bad, encoding={"psl": {"zlib": True, "chunksizes": (1, 5, 6, 8)}})
    data = bytearray(bad.read_bytes())
    for i in range(int(len(data) * 0.6), int(len(data) * 0.8)):  # amid the compressed steps
        data[i] ^= 0x5A
    bad.write_bytes(bytes(data))
    first = workspace / "members" / "r1i1p1f1.nc"
    store = tmp_path / "pr.zarr"
    result = invoke("emulate", workspace / "eof.clm", first, bad, "-o", store, "--quiet")
    assert_one_line_error(result, f"member r9i1p1f1 ({bad})", "NetCDF: HDF error")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_fails_with_one_line(workspace, tmp_path):
    args = ["emulate", workspace / "eof.clm", workspace / "members" / "*.nc"]
    result = invoke(*args, "-o", tmp_path / "pr.zarr", "--device", "cuda")
    assert_one_line_error(result, "CUDA is not available")
    assert not (tmp_path / "pr.zarr").exists()


def test_amp_of_a_model_without_torch_fails_with_one_line(workspace, tmp_path):
    args = ["emulate", workspace / "eof.clm", workspace / "members" / "*.nc"]
    result = invoke(*args, "-o", tmp_path / "pr.zarr", "--amp")
    assert_one_line_error(result, "amp: float16 autocast runs on CUDA only", "EOFRegression")
    assert not (tmp_path / "pr.zarr").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_amp_on_the_cpu_fails_with_one_line(workspace, tmp_path):
    world = cl.datasets.synthetic_biogeochem(n_members=2, n_years=2, n_fine_lat=16, n_fine_lon=16)
    est = cl.ProxyDownscaler(epochs=1, device="cpu", progress=False)
    est.fit(world.coarse, world.fine, "chl", proxies={"tos": "exponential"}).save(
        tmp_path / "m.clm"
    )
    args = ["downscale", tmp_path / "m.clm", workspace / "coarse" / "*.nc"]
    result = invoke(*args, "-o", tmp_path / "chl.zarr", "--amp")
    assert_one_line_error(result, "runs on CUDA only; this ProxyDownscaler runs on cpu")
    assert not (tmp_path / "chl.zarr").exists()


def test_unreachable_scheduler_fails_with_one_line(workspace, tmp_path):
    args = ["emulate", workspace / "eof.clm", workspace / "members" / "*.nc"]
    args += ["-o", tmp_path / "pr.zarr", "--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", 2]
    assert_one_line_error(invoke(*args), "cannot reach the dask scheduler at 'tcp://127.0.0.1:1'")
    assert not (tmp_path / "pr.zarr").exists()


@pytest.mark.parametrize(
    "absent, scheduler, message",
    [
        ("zarr", "threads", "writing a zarr store (climlatent emulate) needs zarr"),
        ("distributed", "local", "the dask scheduler 'local' needs distributed"),
    ],
)
def test_an_absent_optional_dependency_is_named_with_its_extra_in_one_line(
    workspace, tmp_path, monkeypatch, absent, scheduler, message
):
    """A base install (no ``dask`` extra) ended a batch run in a traceback from deep
    inside: ModuleNotFoundError: No module named 'zarr' (or 'distributed')."""
    monkeypatch.setitem(sys.modules, absent, None)  # imports of it fail, as if not installed
    args = ["emulate", workspace / "eof.clm", workspace / "members" / "*.nc"]
    result = invoke(*args, "-o", tmp_path / "pr.zarr", "--scheduler", scheduler)
    assert_one_line_error(result, message, "pip install 'climlatent[dask]'")
    assert not (tmp_path / "pr.zarr").exists()


def test_members_numbered_by_realization_are_selected_by_number(workspace, tmp_path):
    """CMIP files labelled by their scalar realization (3, 1, 2): ``--members 2,3`` gave
    the strings '2', '3', refused as not found among the inputs' [3, 1, 2], and
    ``members=[2, 3]`` in Python failed writing its command line (a TypeError)."""
    ensemble = circulation_members()
    for number, label in zip((3, 1, 2), ensemble.member.values, strict=True):
        member = ensemble.sel(member=label).drop_vars("member")
        member = member.assign_coords(realization=np.int32(number))
        cl.io.to_netcdf(member, tmp_path / f"{label}.nc")
    args = ["emulate", workspace / "eof.clm", tmp_path / "*.nc", "-q", "--time-chunk", 365]
    numbered = invoke(*args, "-o", tmp_path / "numbered.zarr", "--members", "2,3")
    assert numbered.exit_code == 0, numbered.output
    cl.batch.emulate_to_zarr(
        workspace / "eof.clm", tmp_path / "*.nc", tmp_path / "python.zarr",
        members=[2, 3], time_chunk=365, progress=False,
    )  # fmt: skip
    named = workspace / "members" / "*.nc"
    reference = invoke(*args[:2], named, *args[3:], "-o", tmp_path / "named.zarr",
                       "--members", "r3i1p1f1,r1i1p1f1")  # fmt: skip
    assert reference.exit_code == 0, reference.output
    stores = [xr.open_zarr(tmp_path / f"{name}.zarr") for name in ("numbered", "python", "named")]
    assert stores[0].member.values.tolist() == stores[1].member.values.tolist() == [2, 3]
    for store in stores[:2]:
        np.testing.assert_array_equal(store["pr"].values, stores[2]["pr"].values)
    assert_one_line_error(
        invoke(*args, "-o", tmp_path / "none.zarr", "--members", "r2"),
        "member(s) ['r2'] not found; the inputs hold [3, 1, 2]",
    )
