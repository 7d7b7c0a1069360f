"""Issue 19 ("Files you can trust"): each bad input it found, as a named regression case.

Every case runs through ``run_case`` (tests/errors/contract.py): exit 2 and one ``error:``
line, no traceback, every input file unchanged, nothing left behind.
"""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from neurodeploy import api, simulation
from neurodeploy.backends import Trace
from neurodeploy.backends.memory import sample_bytes
from neurodeploy.cli import main
from neurodeploy.core.meta import get_graph_meta
from tests.errors.contract import run_case
from tests.models import save_torchscript
from tests.nir_paper import DATA

INPUT_FILES = {
    "empty.npy": np.zeros((0, 1, 8, 8), np.float32),
    "strings.npy": np.array(["a", "b"]),
    "huge_ints.npy": np.full((1, 1, 8, 8), 2**40, np.int64),
}


@pytest.fixture(scope="module")
def bad(workspace):
    """The workspace plus the issue's bad files."""
    d = workspace.directory
    for name, array in INPUT_FILES.items():
        np.save(d / name, array)
    x = np.load(d / "x.npy")
    np.savez(d / "labels99.npz", x=x, y=np.array([0, 99, 1]))
    np.savez(d / "labels-1.npz", x=x, y=np.array([0, -1, 1]))
    np.savez(d / "labels12.npz", x=x, y=np.array([0, 12, 1]))
    np.savez(d / "one.npz", x=x[:1], y=np.array([3]))
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="zero-element"):  # torch itself notices
        empty = nn.Sequential(nn.Flatten(), nn.Linear(64, 0))
    save_torchscript(empty, d / "empty_layer.pt")
    chip = (d / "chip.toml").read_text()
    for key, values in TARGET_EDITS.items():
        for value in values:
            (d / _toml_name(key, value)).write_text(_edit(chip, key, value))
    return workspace


TARGET_EDITS = {
    "mantissa_bits": ["0", "-1", "200"], "membrane_bits": ["0", "-1", "200"],
    "bits": ["0", "-1", "200"], "threshold_bits": ["0", "-1", "200"], "hop_delay": ["-1"],
    "synop_pj": ["nan", "inf", "-1.0"], "bias_exponent_bits": ["70"],
    "name": ['"loihi2\\nx"', '"../x"'],
}


def _toml_name(key: str, value: str) -> str:
    clean = value.strip('"').replace("\\", "").replace("/", "_")
    return f"{key}_{clean}.toml"


def _edit(chip: str, key: str, value: str) -> str:
    lines = chip.splitlines()
    (index,) = [i for i, line in enumerate(lines) if line.split("=")[0].strip() == key]
    lines[index] = f"{key} = {value}"
    return "\n".join(lines)


CASES = {
    # 1. the trace writer wrote NAME.npz beside an emptied NAME
    "simulate --out a .nir": (["simulate", "net.nir", "--input", "x.npy", "--out",
                               "net.nir"], "the file name must end in .npz"),
    # 2. whatever was at the output path was replaced
    "compile -o /dev/null": (["compile", "model.pt", "--calib", "digits", "-o", "/dev/null"],
                             "/dev/null: is not a regular file"),
    "compile -o a directory": (["compile", "model.pt", "--calib", "digits", "-o", "adir"],
                               "adir: is a directory"),
    "--dump-dir a file": (["compile", "model.pt", "--calib", "digits", "--dump-dir", "x.npy",
                           "-o", "out.nir"], "x.npy: exists and is not a directory"),
    # 3. the input was overwritten
    "compile -o the model": (["compile", "model.pt", "--calib", "digits", "-o", "model.pt"],
                             "is also an input"),
    "export -o the network": (["export", "net.nir", "--flavor", "standard", "-o",
                               "net.nir"], "is also an input"),
    "finetune -o the model": (["finetune", "model.pt", "--method", "ecl", "-o", "model.pt"],
                              "is also an input"),
    "import -o the network": (["import", "net.nir", "--dt", "1e-4", "-o", "net.nir"],
                              "is also an input"),
    "report -o the network": (["report", "net.nir", "-o", "net.nir"],
                              "is also an input"),
    "verify --trace-dir a file": (["verify", "net.nir", "--trace-dir", "x.npy"],
                                  "exists and is not a directory"),
    # 5. tracebacks: a directory nobody can create files in (/proc: refused early where
    # access() says so, else when the file is written)
    "compile into /proc": (["compile", "model.pt", "--calib", "digits", "-o", "/proc/x.nir"],
                           "cannot write"),
    "export into /proc": (["export", "net.nir", "--flavor", "standard", "-o",
                           "/proc/x.nir"], "cannot write"),
    "simulate --out into /proc": (["simulate", "net.nir", "--input", "x.npy", "--out",
                                   "/proc/x.npz"], "cannot write"),
    "finetune into /proc": (["finetune", "model.pt", "--method", "ecl", "--dataset",
                             "data.npz", "--epochs", "1", "-o", "/proc/x.pt"], "cannot write"),
    "simulate -T -1": (["simulate", "net.nir", "--input", "x.npy", "-T", "-1"],
                       "-1 is not in the range x>=1"),
    "verify -T -1": (["verify", "net.nir", "-T", "-1"], "-1 is not in the range x>=1"),
    "simulate 0 samples": (["simulate", "net.nir", "--input", "empty.npy"],
                           "holds no samples"),
    "simulate strings": (["simulate", "net.nir", "--input", "strings.npy"],
                         "holds <U1 values"),
    "simulate an .npz": (["simulate", "net.nir", "--input", "data.npz"],
                         "is an .npz archive"),
    "finetune label 99": (["finetune", "model.pt", "--method", "ecl", "--dataset",
                           "labels99.npz", "-o", "out.pt"], "label 99 is not a class"),
    "finetune label -1": (["finetune", "model.pt", "--method", "ecl", "--dataset",
                           "labels-1.npz", "-o", "out.pt"], "label -1 is not a class"),
    "finetune --lr inf": (["finetune", "model.pt", "--method", "ecl", "--dataset", "data.npz",
                           "--lr", "inf", "-o", "out.pt"], "lr must be positive and finite"),
    "finetune diverging": (["finetune", "model.pt", "--method", "ecl", "--dataset", "data.npz",
                            "--epochs", "2", "--lr", "1e30", "-o", "out.pt"],
                           "training diverged in epoch 2"),
    # Adam's first step, lr / (1 - 0.9), passed float32 and torch raised a RuntimeError
    "finetune --lr 1e38": (["finetune", "model.pt", "--method", "ecl", "--dataset", "data.npz",
                            "--lr", "1e38", "-o", "out.pt"], "training diverged in epoch 1"),
    "finetune --distill-activations nan": (["finetune", "model.pt", "--method", "ecl",
                                            "--dataset", "data.npz", "--distill-activations",
                                            "nan", "-o", "out.pt"], ">= 0 and finite, got nan"),
    "finetune one sample": (["finetune", "model.pt", "--method", "ecl", "--dataset",
                             "one.npz", "-o", "out.pt"], "at least 2 samples"),
    "import --dt inf": (["import", str(DATA / "lif_norse.nir"), "--dt", "inf"],
                        "dt must be positive and finite"),
    "compile --seed -1": (["compile", "model.pt", "--calib", "digits", "--seed", "-1"],
                          "-1 is not in the range x>=0"),
    "finetune --seed -1": (["finetune", "model.pt", "--method", "ecl", "-o", "out.pt",
                            "--seed", "-1"], "x>=0"),
    "verify --seed -1": (["verify", "net.nir", "--seed", "-1"], "x>=0"),
    "check Linear(64, 0)": (["check", "empty_layer.pt", "--input-shape", "1,8,8"],
                            "produces an empty output"),
    "compile Linear(64, 0)": (["compile", "empty_layer.pt", "--input-shape", "1,8,8",
                               "--calib", "digits"], "produces an empty output"),
    "huge --input-shape": (["compile", "model.pt", "--input-shape", "99999,99999,99999",
                            "--calib", "digits"], "values per sample"),
    # 6. silently accepted
    "integers beyond the input width": (["simulate", "net.nir", "--input", "huge_ints.npy"],
                                        "integer inputs must be in 0..255"),
    "evaluate labels outside the classes": (["evaluate", "net.nir", "--dataset",
                                             "labels12.npz"], "label 12 is not a class"),
    "simulate -T 0": (["simulate", "net.nir", "--input", "x.npy", "-T", "0"],
                      "0 is not in the range x>=1"),
    "verify -T 0": (["verify", "net.nir", "-T", "0"], "0 is not in the range x>=1"),
    # found by the fuzz suite: torch reports a failed allocation as a RuntimeError
    "verify -T 2**31": (["verify", "net.nir", "--backend", "reference", "-T", "2147483648"],
                        "5 samples over 2147483648 steps need up to"),
    # 7. usage errors printed three lines
    "unknown option": (["simulate", "net.nir", "--input", "x.npy", "--frobnicate"],
                       "No such option '--frobnicate'"),
}
for _key, _values in TARGET_EDITS.items():
    for _value in _values:
        CASES[f"target {_key} = {_value}"] = (
            ["compile", "model.pt", "--calib", "digits", "--target", _toml_name(_key, _value)],
            f"{_key} must" if _key not in ("name",) else "name must be one word")


@pytest.mark.parametrize("case", sorted(CASES))
def test_issue_case_exits_2_with_one_line(case, bad, monkeypatch):
    argv, expected = CASES[case]
    monkeypatch.chdir(bad.directory)
    result = run_case(argv, bad)
    assert result.exit_code == 2 and expected in result.stderr, result.stderr


def test_dev_null_is_still_a_device(bad, monkeypatch):
    monkeypatch.chdir(bad.directory)
    run_case(["compile", "model.pt", "--calib", "digits", "-o", "/dev/null"], bad)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_the_trace_is_written_exactly_where_asked(bad, monkeypatch):
    monkeypatch.chdir(bad.directory)
    run_case(["simulate", "net.nir", "--input", "x.npy", "--out", "t.npz"], bad,
             keep_outputs=True)
    try:
        assert Trace.load("t.npz").outputs.shape == (3, 10)
        assert not [p for p in os.listdir() if p.startswith(".") or p == "t.npz.npz"]
    finally:
        os.unlink("t.npz")


def test_a_symlinked_output_stays_a_link_and_modes_follow_the_umask(bad, monkeypatch):
    monkeypatch.chdir(bad.directory)
    os.symlink("real.nir", "link.nir")
    old = os.umask(0o022)
    export = ["export", "net.nir", "--flavor", "standard", "-o", "link.nir"]
    try:
        assert CliRunner().invoke(main, export).exit_code == 0
        assert os.path.islink("link.nir") and stat.S_IMODE(os.stat("real.nir").st_mode) == 0o644
        os.chmod("real.nir", 0o600)
        assert CliRunner().invoke(main, export).exit_code == 0
        assert stat.S_IMODE(os.stat("real.nir").st_mode) == 0o600
    finally:
        os.umask(old)
        os.unlink("link.nir")
        os.unlink("real.nir")


def test_simulate_runs_many_samples_in_bounded_batches(bad, monkeypatch):
    """Without --out only the readout and the spike counts are kept, a batch at a time."""
    graph = api.load(bad.directory / "net.nir").graph
    x = np.load(bad.directory / "data.npz")["x"]
    budget = 6 * sample_bytes(graph, get_graph_meta(graph).timesteps)  # six samples
    batches = []
    real = simulation.get_backend

    def spy(name):
        engine = real(name)
        run = engine.run

        def counted(graph, inputs, *args, **kwargs):
            batches.append(len(inputs))
            return run(graph, inputs, *args, **kwargs)

        engine.run = counted
        return engine

    monkeypatch.setattr(simulation, "get_backend", spy)
    outputs, events = simulation.predict(graph, x, show_progress=False, memory_budget=budget)
    assert batches == [6] * 6 + [4]
    whole = simulation.simulate(graph, x)
    assert np.array_equal(outputs, whole.outputs)
    assert events.keys() == whole.events.keys()
    assert all(np.array_equal(events[k], whole.events[k]) for k in events)
