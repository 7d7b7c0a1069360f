"""The CLI end to end on the digits MLP, as a user runs it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import neurodeploy
from neurodeploy import api
from neurodeploy.backends import Trace
from neurodeploy.cli import main
from neurodeploy.core.meta import population_meta
from neurodeploy.methods.corrections import firing
from tests.models import digits_batch, save_torchscript, trained_digits_mlp


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli")
    save_torchscript(trained_digits_mlp(), path / "model.pt")
    return path


def invoke(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.stderr or result.output
    return result


def test_version_is_the_package_version():
    assert invoke("--version").output == f"neurodeploy, version {neurodeploy.__version__}\n"


def test_targets_lists_the_shipped_chips():
    out = invoke("targets").output
    assert "loihi2" in out and "loihi " in out and "reference" in out
    assert "128x1024" in out
    chips = {t["name"]: t for t in json.loads(invoke("targets", "--json").output)}
    assert chips["loihi"]["limits"]["synapses_per_core"] == 116480
    assert chips["loihi2"]["energy"]["synop_pj"] == 23.6


@pytest.fixture(scope="module")
def compiled(workdir):
    out = workdir / "model.nir"
    summary = json.loads(invoke("compile", workdir / "model.pt", "--target", "loihi", "--method",
                                "p99.99", "--calib", "digits", "--timesteps", "8", "-o", out,
                                "--json").output)
    assert summary["quantized"] and summary["target"] == "loihi"
    assert [layer["kind"] for layer in summary["layers"]] == ["if", "readout"]
    return out


def test_compile_prints_resources_and_capacity(workdir):
    out = workdir / "resources.nir"
    summary = json.loads(invoke("compile", workdir / "model.pt", "--target", "loihi", "--method",
                                "p99.99", "--calib", "digits", "-o", out, "--json").output)
    graph = api.load(out).graph
    hidden, readout = summary["layers"]
    weights = [node.weight for node in graph.nodes.values() if hasattr(node, "weight")]
    assert [hidden["synapses"], readout["synapses"]] == [int(np.count_nonzero(w))
                                                         for w in weights]
    assert hidden["neurons"] == 48 and hidden["cores"] == readout["cores"] == 1
    assert 0 < hidden["membrane_bound"] < hidden["membrane_limit"] == 2**23 - 1
    assert summary["capacity"]["cores_used"] == 2 and summary["capacity"]["fits"]
    assert summary["text"].splitlines()[-1] == (
        "capacity on loihi: 2 cores of 128 (2%), neuron slots 3% full, synaptic memory "
        f"{100 * (hidden['synapses'] + readout['synapses']) / (2 * 116480):.0f}% full")


def test_evaluate_tracks_the_ann(compiled, workdir):
    result = json.loads(invoke("evaluate", compiled, "--dataset", "digits", "--timesteps",
                               "1,4,8", "--ann", workdir / "model.pt", "--json").output)
    ann, snn = result["ann_accuracy"], result["snn_accuracy"]
    assert ann > 0.9
    assert snn["8"] > ann - 0.05, "the integer SNN should track its ANN at T=8"
    assert snn["1"] < snn["8"], "one timestep should be visibly worse than eight"


def test_a_state_dict_is_the_float_model_with_its_arch(compiled, workdir):
    """evaluate's and report's hint for a state dict said --arch, which they did not take."""
    import torch

    torch.save(trained_digits_mlp().state_dict(), workdir / "weights.pt")
    common = ("--dataset", "digits", "--json")

    def ann(command, *args):
        return json.loads(invoke(command, compiled, *common, *args).output)

    scripted = ann("evaluate", "--ann", workdir / "model.pt")["ann_accuracy"]
    weights = ("--ann", workdir / "weights.pt", "--arch", "tests.models:DigitsMLP")
    assert ann("evaluate", *weights)["ann_accuracy"] == scripted
    report = ann("report", "--samples", "50", "-o", workdir / "sd_report", *weights)
    assert report["ann_reference"]["kind"] == "model"


def test_a_window_past_the_safe_one_runs_with_a_warning(compiled):
    """It ran silently while membranes clipped; -T with the early exit was ignored."""
    safe = api.load(compiled).meta.safe_timesteps
    result = CliRunner().invoke(main, [str(a) for a in ("evaluate", compiled, "--limit", "5",
                                                        "-T", f"2,{safe + 1}")])
    assert result.exit_code == 0
    assert result.stderr.startswith(f"warning: T={safe + 1} is past T={safe}, the longest "
                                    "window in which no membrane can saturate")
    assert not CliRunner().invoke(main, ["evaluate", str(compiled), "-T", "2"]).stderr
    refused = CliRunner().invoke(main, ["evaluate", str(compiled), "--adaptive-timesteps",
                                        "-T", "2"])
    assert refused.exit_code == 2 and "drop --timesteps" in refused.stderr


def test_evaluate_defaults_to_the_windows_the_network_can_run(compiled, workdir):
    def windows(network):
        out = invoke("evaluate", network, "--dataset", "digits", "--limit", "20", "--json")
        return sorted(int(t) for t in json.loads(out.output)["snn_accuracy"])

    assert windows(compiled) == [1, 2, 4, 8, 16]
    ftbc = workdir / "ftbc.nir"
    invoke("compile", workdir / "model.pt", "--calib", "digits", "--method", "ftbc",
           "--timesteps", "4", "-o", ftbc)
    assert windows(ftbc) == [1, 2, 4], "an FTBC bias table ends at the compiled window"
    text = invoke("evaluate", ftbc, "--dataset", "digits", "--limit", "20").output
    assert "   4 " in text and text.count("(compiled)") == 1
    assert "calibrated this network for T=4" in text, "ftbc's table belongs to T=4"


def test_evaluate_notes_only_a_window_specific_network(compiled):
    out = invoke("evaluate", compiled, "--dataset", "digits", "--limit", "20").output
    assert "calibrated this network" not in out, "p99.99 thresholds do not depend on T"
    assert [line.split()[2] for line in out.splitlines() if "(compiled)" in line] == ["8"]


def test_evaluate_prints_a_table(compiled):
    out = invoke("evaluate", compiled, "--dataset", "digits", "--timesteps", "2,4",
                 "--limit", "50").output
    assert "SNN (int)" in out and "50 samples" in out


def test_adafire_with_early_exit_end_to_end(workdir):
    out = workdir / "adafire.nir"
    invoke("compile", workdir / "model.pt", "--method", "adafire+iat", "--calib", "digits",
           "--timesteps", "4", "-o", out)
    result = json.loads(invoke("evaluate", out, "--dataset", "digits", "--adaptive-timesteps",
                               "--json").output)["adaptive"]
    assert result["timesteps"] == 4 and 1 <= result["mean_timesteps"] <= 4
    assert sum(result["exits"].values()) == 450
    assert abs(result["accuracy"] - result["full_accuracy"]) < 0.02
    text = invoke("evaluate", out, "--dataset", "digits", "--adaptive-timesteps").output
    assert "SNN early exit" in text and "mean timesteps" in text


def test_simulate_writes_a_full_trace(compiled, workdir):
    np.save(workdir / "x.npy", digits_batch(3))
    out = invoke("simulate", compiled, "--input", workdir / "x.npy", "--out",
                 workdir / "trace.npz").output
    assert "predictions" in out
    trace = Trace.load(str(workdir / "trace.npz"))
    assert trace.timesteps == 8 and trace.outputs.shape == (3, 10)
    assert len(trace.spikes) == 1
    (spikes,) = trace.spikes.values()
    assert spikes.shape[:2] == (8, 3) and spikes.any()
    assert trace.offsets[next(iter(trace.spikes))] == 1


def test_simulate_json(compiled, workdir):
    np.save(workdir / "x2.npy", digits_batch(2))
    data = json.loads(invoke("simulate", compiled, "--input", workdir / "x2.npy",
                             "--json").output)
    assert data["samples"] == 2 and data["timesteps"] == 8 and len(data["predictions"]) == 2
    assert sum(data["spike_events"].values()) > 0 and data["trace"] is None


def test_single_sample_input_is_accepted(compiled, workdir):
    np.save(workdir / "one.npy", digits_batch(1)[0])
    assert "1 sample(s)" in invoke("simulate", compiled, "--input", workdir / "one.npy").output


def test_dump_dir_and_stop_after(workdir):
    dump = workdir / "dump"
    out = invoke("compile", workdir / "model.pt", "--method", "p99.99", "--calib", "digits",
                 "--dump-dir", dump, "--stop-after", "quantize_weights", "-o",
                 workdir / "partial.nir").output
    assert "not fully quantized" in out
    assert sorted(p.name for p in dump.iterdir()) == ["01_quantize_input.nir",
                                                      "02_quantize_weights.nir"]


def test_list_passes_needs_no_model():
    out = invoke("compile", "--list-passes").output.split()
    assert out[0] == "quantize_input" and out[-1] == "check_overflow"


def test_the_seed_draws_the_calibration_images(workdir):
    def thresholds(seed: int, name: str) -> list[np.ndarray]:
        out = workdir / f"{name}.nir"
        invoke("compile", workdir / "model.pt", "--method", "p99.99", "--calib", "digits",
               "--calib-samples", "64", "--seed", seed, "-o", out)
        graph = api.load(out).graph
        return [np.asarray(population_meta(graph, p).theta) for p in firing(graph)]

    first, again, other = thresholds(0, "a"), thresholds(0, "b"), thresholds(1, "c")
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, c) for a, c in zip(first, other, strict=True))
