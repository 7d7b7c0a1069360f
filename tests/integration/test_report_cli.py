"""`neurodeploy report` end to end on the digits MLP, and its errors."""

from __future__ import annotations

import json

import jsonschema
import pytest
from click.testing import CliRunner

from neurodeploy.cli import main
from neurodeploy.report.build import PLOTS, SCHEMA
from tests.models import save_torchscript, trained_digits_mlp


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("report")
    save_torchscript(trained_digits_mlp(), path / "model.pt")
    for name, extra in (("model.nir", ()), ("partial.nir", ("--stop-after", "quantize_bias"))):
        result = run("compile", path / "model.pt", "--target", "loihi", "--method", "p99.99",
                     "--calib", "digits", "--timesteps", "8", "-o", path / name, *extra)
        assert result.exit_code == 0, result.output
    return path


def test_report_writes_files_and_prints_a_summary(workdir):
    result = run("report", workdir / "model.nir", "--dataset", "digits", "--samples", "100",
                 "--ann", workdir / "model.pt", "-o", workdir / "out")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"report of {workdir / 'model.nir'} on digits (100 test "
                               "samples): target loihi, method p99.99, T=8")
    assert lines[1] == f"ANN reference: the float model {workdir / 'model.pt'}"
    assert any(line.startswith("capacity on loihi: 2 cores of 128") for line in lines)
    assert any(line.split()[:2] == ["readout", "10"] for line in lines)
    names = {p.name for p in (workdir / "out").iterdir()}
    assert names == {"report.json", "report.md", *PLOTS.values()}
    data = json.loads((workdir / "out" / "report.json").read_text())
    jsonschema.validate(data, json.loads(SCHEMA.read_text()))
    assert data["accuracy"]["timesteps"] == [1, 2, 4, 8, 16]
    assert data["accuracy"]["ann"] > 0.9 and data["accuracy"]["snn"]["8"] > 0.85


def test_json_output_is_the_report(workdir):
    result = run("report", workdir / "model.nir", "--dataset", "digits", "--samples", "20",
                 "-T", "2,8", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ann_reference"]["kind"] == "equivalent"
    assert data["dataset"]["samples"] == 20 and data["accuracy"]["timesteps"] == [2, 8]
    default_dir = workdir / "model_report"
    assert json.loads((default_dir / "report.json").read_text()) == data


@pytest.mark.parametrize(("args", "message"), [
    (("--samples", "0"), "'--samples': 0 is not in the range x>=1"),
    (("--target", "reference"), "compiled for target 'loihi', not 'reference'"),
    (("--dataset", "imagenet"), "unknown dataset 'imagenet'"),
    (("-T", "0"), "--timesteps must be positive"),
])
def test_bad_input_fails_cleanly_without_output(workdir, args, message):
    out = workdir / "never"
    result = run("report", workdir / "model.nir", "--dataset", "digits", "-o", out, *args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert not out.exists()


def test_a_custom_target_needs_its_file(workdir):
    from neurodeploy.targets import TARGETS_DIR

    custom = workdir / "mychip.toml"
    custom.write_text((TARGETS_DIR / "loihi.toml").read_text().replace(
        'name = "loihi"', 'name = "mychip"'))
    assert run("compile", workdir / "model.pt", "--target", custom, "--method", "p99.99",
               "--calib", "digits", "-o", workdir / "mychip.nir").exit_code == 0
    result = run("report", workdir / "mychip.nir", "--samples", "8", "-o", workdir / "never")
    assert result.exit_code == 2 and "not a shipped target" in result.stderr
    assert "Pass the .toml file it was compiled for (target=, --target)" in result.stderr
    result = run("report", workdir / "mychip.nir", "--samples", "8", "--target", custom,
                 "-o", workdir / "mychip_out", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["capacity"]["target"] == "mychip"


def test_a_partial_network_is_refused(workdir):
    result = run("report", workdir / "partial.nir", "-o", workdir / "never")
    assert result.exit_code == 2 and "not fully quantized" in result.stderr
    assert not (workdir / "never").exists()
