"""neurodeploy.nn: the learnable threshold clip, prepare(), from_ann(), and the frontend
reading the learned thresholds whichever way the model was saved."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neurodeploy.nn as ndnn
from neurodeploy.errors import InputError, UnsupportedLayer
from neurodeploy.frontend import load_model
from neurodeploy.train import save_torchscript
from tests.unit.frontend.test_frontend import FORMATS, assert_matches, save


def qcfs_reference(x: torch.Tensor, threshold: torch.Tensor, levels: int) -> torch.Tensor:
    """QCFS's own code (algorithms.md §1.1): clamp, floor with a straight-through gradient."""
    u = torch.clamp(x / threshold, 0, 1) * levels + 0.5
    floored = u + (torch.floor(u) - u).detach()
    return floored / levels * threshold


def test_forward_is_the_clip_floor_shift_quantizer():
    x = torch.linspace(-1, 3, 401)
    got = ndnn.threshold_clip(x, torch.tensor(2.0), 4, 0.5, 0.0)
    assert torch.allclose(got, qcfs_reference(x, torch.tensor(2.0), 4))
    assert set(torch.unique(got).tolist()) == {0.0, 0.5, 1.0, 1.5, 2.0}


@pytest.mark.parametrize("levels", [1, 2, 4, 8])
def test_gradients_are_the_straight_through_ones(levels):
    torch.manual_seed(levels)
    x = (torch.randn(300) * 2).requires_grad_()
    theta = torch.tensor(1.7, requires_grad=True)
    grad = torch.randn(300)
    ndnn.threshold_clip(x, theta, levels, 0.5, 0.0).backward(grad)
    x_ref = x.detach().clone().requires_grad_()
    theta_ref = theta.detach().clone().requires_grad_()
    qcfs_reference(x_ref, theta_ref, levels).backward(grad)
    assert torch.allclose(x.grad, x_ref.grad)
    assert torch.allclose(theta.grad, theta_ref.grad, atol=1e-5)
    inside = (x.detach() > 0) & (x.detach() < 1.7)
    assert torch.equal(x.grad, grad * inside)


def test_noise_leaves_elements_unquantized_only_while_training():
    torch.manual_seed(0)
    clip = ndnn.ThresholdClip(threshold=1.0, levels=2, noise=0.5)
    x = torch.rand(1000) * 0.9 + 0.05
    levels = {0.0, 0.5, 1.0}
    clip.train()
    kept = sum(v not in levels for v in clip(x).tolist())
    assert 400 < kept < 600
    clip.eval()
    assert set(clip(x).tolist()) <= levels


def test_threshold_learns_to_clip_less_when_activations_are_cut():
    clip = ndnn.ThresholdClip(threshold=0.5, levels=4)
    optimizer = torch.optim.SGD(clip.parameters(), lr=0.1)
    x = torch.rand(256) * 2
    for _ in range(50):
        optimizer.zero_grad()
        F.mse_loss(clip(x), x.clamp(0, 2)).backward()
        optimizer.step()
    assert float(clip.threshold.detach()) > 1.5


@pytest.mark.parametrize("bad", [{"threshold": 0.0}, {"levels": 0}, {"noise": 1.0}])
def test_clip_rejects_bad_settings(bad):
    with pytest.raises(InputError):
        ndnn.ThresholdClip(**bad)


class Mixed(nn.Module):
    """ReLU as a module, F.relu, torch.relu, Tensor.relu, MaxPool2d and F.max_pool2d."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc1 = nn.Linear(16, 8)
        self.fc2 = nn.Linear(8, 8)
        self.fc3 = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.act(self.conv1(x)))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc3(self.fc2(x).relu())


def test_prepare_swaps_every_relu_and_max_pool():
    model = Mixed()
    with pytest.warns(UserWarning, match="MaxPool2d replaced by AvgPool2d"):
        prepared = ndnn.prepare(model, "qcfs", levels=4)
    modules = list(prepared.modules())
    assert sum(isinstance(m, ndnn.ThresholdClip) for m in modules) == 4
    assert not any(isinstance(m, nn.ReLU | nn.MaxPool2d) for m in modules)
    assert sum(isinstance(m, nn.AvgPool2d) for m in modules) == 2
    assert any(isinstance(m, nn.ReLU) for m in model.modules())  # the original is untouched
    x = torch.rand(2, 1, 8, 8)
    prepared(x).sum().backward()
    assert all(clip.threshold.grad is not None for clip in ndnn.clips(prepared))


def test_prepare_sets_method_style_and_initial_thresholds():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 3))
    batch = torch.rand(64, 1, 4, 4)
    prepared = ndnn.prepare(model, "dual_phase", levels=2, calib=batch)
    (clip,) = ndnn.clips(prepared)
    assert (clip.levels, clip.noise) == (2, 0.1)
    with torch.no_grad():
        expected = torch.quantile(model[1](model[0](batch)).flatten(), 0.999)
    assert float(clip.threshold.detach()) == pytest.approx(float(expected), rel=1e-4)
    assert prepared.training == model.training


def test_prepare_refuses_unknown_methods_and_torchscript():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(InputError, match="unknown training method"):
        ndnn.prepare(model, "magic")
    with pytest.raises(InputError, match="TorchScript"):
        ndnn.prepare(torch.jit.script(model), "ecl")


class ClipNet(nn.Module):
    """A prepared CNN as users save it (the class is importable for --arch)."""

    input_shape = (1, 8, 8)

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), ndnn.ThresholdClip(1.5, levels=4),
            nn.AvgPool2d(2), nn.Conv2d(4, 6, 3, stride=2, padding=1),
            ndnn.ThresholdClip(0.8, levels=2))
        self.fc = nn.Linear(24, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(x), 1))


@pytest.mark.parametrize("fmt", FORMATS)
def test_frontend_takes_thresholds_from_the_clips(fmt, tmp_path):
    torch.manual_seed(0)
    model = ClipNet().eval()
    path, kwargs = save(model, fmt, tmp_path)
    if "arch" in kwargs:
        kwargs["arch"] = f"{__name__}:ClipNet"
    graph = load_model(path, **kwargs)
    clips = [n for n in graph.nodes if n.op == "clip"]
    assert [n.name for n in clips] == ["features.2", "features.5"]
    assert [(n.params["threshold"], n.params["levels"], n.params["shift"]) for n in clips] == [
        (1.5, 4, 0.5), (pytest.approx(0.8), 2, 0.5)]
    assert_matches(graph, model)


def test_frontend_refuses_a_clip_exported_in_training_mode(tmp_path):
    model = nn.Sequential(nn.Linear(4, 4), ndnn.ThresholdClip(1.0, noise=0.1), nn.Linear(4, 2))
    path = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(model.train(), (torch.rand(2, 4),)), path)
    with pytest.raises(UnsupportedLayer, match="training mode"):
        load_model(path)


def test_frontend_refuses_a_non_positive_threshold(tmp_path):
    model = nn.Sequential(nn.Linear(4, 4), ndnn.ThresholdClip(1.0), nn.Linear(4, 2)).eval()
    with torch.no_grad():
        model[1].threshold.fill_(-0.5)
    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.script(model), path)
    with pytest.raises(UnsupportedLayer, match="positive threshold"):
        load_model(path, input_shape=(4,))


def test_from_ann_rebuilds_a_trainable_module(tmp_path):
    torch.manual_seed(1)
    model = ClipNet().eval()
    path, kwargs = save(model, "script", tmp_path)
    graph = load_model(path, **kwargs)
    rebuilt = ndnn.from_ann(graph).eval()
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), model(x), atol=1e-5)
    assert [float(c.threshold.detach()) for c in ndnn.clips(rebuilt)] == pytest.approx([1.5, 0.8])
    again = tmp_path / "again.pt"
    torch.jit.save(torch.jit.script(rebuilt), again)
    assert_matches(load_model(again, input_shape=(1, 8, 8)), model)


class MergeNet(nn.Module):
    """A residual add and a channel concatenation, the two merges the graph has."""

    input_shape = (1, 8, 8)

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 3, 3, padding=1)
        self.b = nn.Conv2d(3, 3, 3, padding=1)
        self.c = nn.Conv2d(1, 2, 1)
        self.fc = nn.Linear(5 * 8 * 8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        h = torch.relu(self.b(h) + h)
        h = torch.cat([h, torch.relu(self.c(x))], 1)
        return self.fc(h.flatten(1))


def test_a_rebuilt_network_with_merges_saves_as_torchscript(tmp_path):
    torch.manual_seed(2)
    model = MergeNet().eval()
    path, kwargs = save(model, "script", tmp_path)
    rebuilt = ndnn.from_ann(load_model(path, **kwargs)).eval()
    again = tmp_path / "again.pt"
    save_torchscript(rebuilt, again, (1, 8, 8))
    assert_matches(load_model(again), model)
