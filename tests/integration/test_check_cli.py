"""`neurodeploy check`: every node with its mapping; unsupported nodes named with hints, exit 2;
nothing is compiled or written."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from neurodeploy.cli import main
from tests.errors.test_frontend_errors import save_format
from tests.unit.frontend.test_frontend import ResNet, make


class TwoProblems(nn.Module):
    """A MaxPool2d and a Sigmoid: both must be reported by one check."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.act = nn.Sigmoid()
        self.fc = nn.Linear(64, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.act(self.pool(self.conv(x))), 1))


class SumWithoutReLU(nn.Module):
    """Maps op by op, but a residual sum read directly by a layer has no spiking form."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3, padding=1)
        self.conv2 = nn.Conv2d(2, 2, 3, padding=1)
        self.fc = nn.Linear(128, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv1(x))
        return self.fc(torch.flatten(self.conv2(h) + h, 1))


def run(*args):
    return CliRunner().invoke(main, ["check", *map(str, args)])


def test_a_resnet_maps_node_by_node(tmp_path):
    path = tmp_path / "resnet.pt"
    torch.jit.save(torch.jit.script(make(ResNet)), path)
    result = run(path, "--input-shape", "1,8,8")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert "IF population summing 2 synapse layers" in lines["block2.relu_1"]
    assert "into 'block2.relu_1'" in lines["block2.shortcut.0"]
    assert "sum pool 4x4" in lines["pool"]
    assert "readout" in lines["fc"]
    assert "all 17 nodes map" in result.output
    data = json.loads(run(path, "--input-shape", "1,8,8", "--json").output)
    assert data["supported"] and len(data["nodes"]) == 17
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resnet.pt"]  # nothing compiled


@pytest.mark.parametrize("fmt", ["state_dict", "script", "export"])
def test_every_unsupported_node_is_named_with_a_hint(tmp_path, fmt):
    kwargs = save_format(TwoProblems(), fmt, tmp_path)
    args = [kwargs["model"], "--input-shape", "1,8,8"]
    if fmt == "state_dict":
        args += ["--arch", f"{__name__}:TwoProblems"]
    result = run(*args)
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2
    assert errors[0].startswith("error: pool: ") and "nn.AvgPool2d" in errors[0]
    assert errors[1].startswith("error: act: ") and "only ReLU" in errors[1]
    data = json.loads(run(*args, "--json").output)
    assert not data["supported"]
    assert [n["name"] for n in data["nodes"]] == ["conv", "pool", "act", "flatten", "fc"]


def test_a_structural_refusal_names_the_node(tmp_path):
    path = tmp_path / "sum.pt"
    torch.jit.save(torch.jit.script(SumWithoutReLU().eval()), path)
    result = run(path, "--input-shape", "1,8,8")
    assert result.exit_code == 2
    assert "error: add: a residual add must be followed by a ReLU" in result.stderr


def test_a_missing_file_is_one_line(tmp_path):
    result = run(tmp_path / "nope.pt")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: ") and len(result.stderr.splitlines()) == 1
