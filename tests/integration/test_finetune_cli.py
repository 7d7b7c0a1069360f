"""`neurodeploy finetune` end to end: fine-tune, compile without --calib or --input-shape
(qcfs needs no calibration data), evaluate; and neurodeploy.train's loop on its own."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from neurodeploy.cli import main
from neurodeploy.data import load_dataset
from neurodeploy.frontend import load_model
from neurodeploy.train import TrainConfig, fit
from tests.models import save_torchscript, trained_digits_mlp


def test_finetune_then_compile_and_evaluate(tmp_path):
    model = save_torchscript(trained_digits_mlp(), tmp_path / "model.pt")
    out = tmp_path / "model_ecl.pt"
    result = CliRunner().invoke(main, ["finetune", str(model), "--method", "ecl", "--dataset",
                                       "digits", "--epochs", "2", "--lr", "3e-4",
                                       "--timesteps", "2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "epoch  2" in result.output and "written" in result.output
    assert "original" in result.output and "fine-tuned" in result.output
    ann = load_model(out)  # the input shape is recorded in the file
    assert ann.input_shape == (1, 8, 8)
    (clip,) = [n for n in ann.nodes if n.op == "clip"]
    assert clip.params["levels"] == 2  # the window's T, as no --levels was given
    nir_path = tmp_path / "model.nir"
    result = CliRunner().invoke(main, ["compile", str(out), "--method", "qcfs", "--timesteps",
                                       "4", "-o", str(nir_path)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["evaluate", str(nir_path), "--timesteps", "4", "--ann",
                                       str(out), "--json"])
    assert result.exit_code == 0, result.output


def test_fit_reports_held_out_accuracy_per_epoch():
    x, y = load_dataset("digits", split="train")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    lines = []
    history = fit(model, (x[:1000], y[:1000]), (x[1000:], y[1000:]),
                  TrainConfig(epochs=3, lr=0.1, batch=64, optimizer="sgd",
                              show_progress=False), log=lines.append)
    assert [e.epoch for e in history.epochs] == [1, 2, 3] and len(lines) == 3
    assert history.epochs[-1].accuracy > 0.8
    assert history.epochs[-1].loss < history.epochs[0].loss


@pytest.mark.parametrize("bad", [{"optimizer": "lbfgs"}, {"schedule": "step"}, {"lr": 0.0},
                                 {"batch": 0}])
def test_train_config_refuses_bad_settings(bad):
    from neurodeploy.errors import InputError

    with pytest.raises(InputError):
        TrainConfig(**bad)


def test_a_file_without_a_test_split_is_measured_on_its_held_out_images(tmp_path):
    """An .npz is one split: "test accuracy" was measured on the training images (100% for a
    model scoring 97.56% on the test split)."""
    import numpy as np

    from neurodeploy.train import finetune

    x, y = load_dataset("digits", split="train", limit=200)
    wrong = y.copy()
    wrong[-20:] = (wrong[-20:] + 1) % 10  # held out (a tenth), every label wrong
    np.savez(tmp_path / "data.npz", x=x, y=wrong)
    model = save_torchscript(trained_digits_mlp(), tmp_path / "model.pt")
    result = finetune(model, method="qcfs", dataset=str(tmp_path / "data.npz"),
                      config=TrainConfig(epochs=1, show_progress=False), log=lambda _: None)
    assert result.tested_on == f"the 20 held-out images of {tmp_path / 'data.npz'}"
    assert result.start_accuracy == result.start_held_out < 0.2
