"""Every bad input: exit code 2, one readable line, no traceback, no partial output file."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from neurodeploy.api import load
from neurodeploy.backends import memory
from neurodeploy.cli import main
from neurodeploy.simulation import input_shape
from neurodeploy.targets import TARGETS_DIR
from tests.errors.contract import fast_method
from tests.models import MaxPoolNet, save_torchscript, trained_digits_mlp
from tests.nir_paper import DATA


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    model = trained_digits_mlp(steps=20)
    save_torchscript(model, d / "model.pt")
    torch.save(model, d / "pickled.pt")
    save_torchscript(MaxPoolNet(), d / "maxpool.pt")
    save_torchscript(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)),
                     d / "wide.pt")
    nan_model = trained_digits_mlp(steps=1)
    with torch.no_grad():
        nan_model.net[1].weight[0, 0] = float("nan")
    save_torchscript(nan_model, d / "nan.pt")
    (d / "notes.txt").write_text("not a model")
    (d / "broken.toml").write_text((TARGETS_DIR / "loihi2.toml").read_text().replace(
        "membrane_bits = 24", "membrane_bitz = 24"))
    with open(d / "data.pkl", "wb") as f:
        pickle.dump({"a": 1}, f)
    np.save(d / "wrong.npy", np.zeros((2, 3, 3), np.float32))
    np.save(d / "one_image.npy", np.zeros((1, 8, 8), np.float32))  # no batch axis
    CliRunner().invoke(main, fast_method(["compile", str(d / "model.pt"), "--calib", "digits",
                                          "-o", str(d / "model.nir")]))
    CliRunner().invoke(main, ["import", str(DATA / "lif_norse.nir"), "--dt", "0.001",
                              "--events", "-o", str(d / "events.nir")])
    return d


CASES = {
    "missing model": (["compile", "{d}/nope.pt", "--calib", "digits"], "not found"),
    "no model": (["compile", "--calib", "digits"], "Missing argument 'MODEL'"),
    "not a model": (["compile", "{d}/notes.txt", "--calib", "digits"], "not a PyTorch model"),
    "pickle without trust": (["compile", "{d}/pickled.pt", "--calib", "digits"],
                             "--trust-pickle"),
    "unsupported op": (["compile", "{d}/maxpool.pt", "--input-shape", "1,8,8", "--calib",
                        "digits"], "pool: max_pool2d is not supported"),
    "wrong input shape": (["compile", "{d}/model.pt", "--input-shape", "1,9,9", "--method",
                           "max", "--calib", "digits"], "shape"),
    "calibration images of another shape": (["compile", "{d}/model.pt", "--calib",
                                             "fashion-mnist"],
                                            "the shape of the calibration images (calib="),
    "one unbatched calibration image": (["compile", "{d}/model.pt", "--calib",
                                         "{d}/one_image.npy"], "they hold a single sample"),
    "unknown target": (["compile", "{d}/model.pt", "--calib", "digits", "--target", "tpu"],
                       "unknown target 'tpu'"),
    "bad target file": (["compile", "{d}/model.pt", "--calib", "digits", "--target",
                         "{d}/broken.toml"], "broken.toml: unknown key neuron.membrane_bitz"),
    "NaN weights": (["compile", "{d}/nan.pt", "--calib", "digits"], "NaN"),
    "overflow risk": (["compile", "{d}/model.pt", "--calib", "digits", "--timesteps", "5000"],
                      "saturation"),
    "unknown method": (["compile", "{d}/model.pt", "--calib", "digits", "--method", "p200"],
                       "unknown method"),
    "bursts on binary spikes": (["compile", "{d}/model.pt", "--calib", "digits", "--method",
                                 "adafire", "--target", "loihi"], "'loihi' has binary spikes"),
    "bias table on loihi": (["compile", "{d}/model.pt", "--calib", "digits", "--method",
                             "ftbc", "--target", "loihi"], "bias_table"),
    "early exit without iat": (["evaluate", "{d}/model.nir", "--dataset", "digits",
                                "--adaptive-timesteps"], "+iat"),
    "bad NIR file": (["evaluate", "{d}/notes.txt", "--dataset", "digits"], "not a NIR file"),
    "unknown dataset": (["evaluate", "{d}/model.nir", "--dataset", "imagenet"], "imagenet"),
    # the hint offered --input-shape, which evaluate and report lack
    "another float model": (["evaluate", "{d}/model.nir", "--ann", "{d}/wide.pt"],
                            "error: the float model (ann=, --ann) does not take the network's "
                            "input: input shape (1, 8, 8) does not fit the model: it expects "
                            "784 input features, but gets 64. Give the model the network was "
                            "compiled from"),
    # the error was about labels or a shape, as if the user had given digits
    "default dataset, foreign network": (["evaluate", "{d}/events.nir"],
                                         "the default --dataset digits (64 values an image, "
                                         "10 classes) does not fit this network, which takes "
                                         "inputs of shape (1,) and has 1 outputs"),
    "report, default dataset, foreign network": (["report", "{d}/events.nir", "-o",
                                                  "{d}/events_report"],
                                                 "the default --dataset digits"),
    "bad timesteps": (["evaluate", "{d}/model.nir", "--timesteps", "a,b"], "--timesteps"),
    "bad memory budget": (["evaluate", "{d}/model.nir", "--memory-budget", "lots"],
                          "memory budget must look like 2GB"),
    "zero workers": (["evaluate", "{d}/model.nir", "--workers", "0"], "workers must be at least"),
    "simulate wrong shape": (["simulate", "{d}/model.nir", "--input", "{d}/wrong.npy"],
                             "shape"),
    "simulate not npy": (["simulate", "{d}/model.nir", "--input", "{d}/data.pkl"],
                         "not a .npy"),
    "unknown backend": (["simulate", "{d}/model.nir", "--input", "{d}/wrong.npy", "--backend",
                         "gpu"], "unknown backend"),
    "finetune missing model": (["finetune", "{d}/nope.pt", "--method", "ecl"], "not found"),
    "finetune no epochs": (["finetune", "{d}/model.pt", "--method", "ecl", "--epochs", "0"],
                           "'--epochs': 0 is not in the range x>=1"),
    "finetune unknown dataset": (["finetune", "{d}/model.pt", "--method", "qcfs", "--dataset",
                                  "imagenet"], "imagenet"),
    "finetune max pool": (["finetune", "{d}/maxpool.pt", "--method", "ecl"],
                          "max_pool2d is not supported"),
    "finetune images of another shape": (["finetune", "{d}/model.pt", "--method", "qcfs",
                                          "--dataset", "fashion-mnist"],
                                         "the shape of the fashion-mnist images (--dataset)"),
    "finetune zero timesteps": (["finetune", "{d}/model.pt", "--method", "ecl", "-T", "0"],
                                "'--timesteps' / '-T': 0 is not in the range x>=1"),
    "finetune zero levels": (["finetune", "{d}/model.pt", "--method", "ecl", "--timesteps",
                              "2", "--levels", "0"], "'--levels': 0 is not in the range x>=1"),
    "finetune negative activation weight": (["finetune", "{d}/model.pt", "--method", "ecl",
                                             "--distill-activations", "-1"],
                                            "activation distillation weight"),
    "import missing file": (["import", "{d}/nope.nir", "--dt", "1e-4"], "not found"),
    "import not NIR": (["import", "{d}/notes.txt", "--dt", "1e-4"], "not a NIR file"),
    "import bad dt": (["import", str(DATA / "lif_norse.nir"), "--dt", "-1"],
                      "dt must be positive"),
    "import a compiled network": (["import", "{d}/model.nir", "--dt", "1e-4"],
                                  "was compiled by neurodeploy; it runs as it is"),
    "netx per-channel": (["export", "{d}/model.nir", "--flavor", "netx"],
                         "netx LIF neurons cannot express"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_one_line(case, files):
    args, expected = CASES[case]
    out = files / "out.nir"
    argv = [a.format(d=files) for a in args]
    if argv[0] in ("compile", "finetune", "import", "export"):
        argv += ["-o", str(out)]
    result = CliRunner().invoke(main, fast_method(argv))
    assert result.exit_code == 2, (result.exit_code, result.output, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert not out.exists(), "a failed command left an output file"


def test_a_window_one_sample_cannot_hold_in_memory_is_refused_before_it_runs(files,
                                                                            monkeypatch):
    # the system would kill the run midway, without a word
    monkeypatch.setattr(memory, "available_memory", lambda: 1)
    out, sample = files / "trace.npz", files / "sample.npy"
    np.save(sample, np.zeros(input_shape(load(files / "model.nir").graph), np.float32))
    result = CliRunner().invoke(main, ["simulate", str(files / "model.nir"), "--input",
                                       str(sample), "-T", "1000", "--out", str(out)])
    assert result.exit_code == 2, (result.output, result.stderr)
    assert result.stderr.startswith("error: one sample over 1000 steps needs up to")
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()
