"""Frontend: every model, saved in every format, loads to an AnnGraph computing the same outputs."""

from __future__ import annotations

import os
import sys
import weakref
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neurodeploy.errors import InputError, UnsupportedLayer
from neurodeploy.frontend import load_model
from neurodeploy.frontend.ann import ACTIVATIONS, OPS
from tests.conftest import images, random_cnn, random_resnet

FORMATS = ("script", "trace", "export", "state_dict", "pickle")


class SmallMLP(nn.Module):
    input_shape = (16,)

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 24)
        self.bn = nn.BatchNorm1d(24)
        self.relu = nn.ReLU()
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(24, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.relu(self.bn(self.fc1(x)))))


class SmallCNN(nn.Module):
    input_shape = (1, 8, 8)

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(inplace=True),
            nn.AvgPool2d(2), nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU(),
            nn.Dropout2d(0.2))  # refused from a state dict or pickle before: not in MODULES
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(24, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.features(x)))


class FunctionalNet(nn.Module):
    """Functional spellings: F.relu, F.avg_pool2d, torch.flatten, Tensor.relu, reshape."""

    input_shape = (2, 6, 6)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding="same", groups=2)
        self.bn = nn.BatchNorm2d(4)
        self.fc1 = nn.Linear(36, 10)
        self.fc2 = nn.Linear(10, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d(F.relu(self.bn(self.conv(x))), 2)
        x = self.fc1(torch.flatten(x, 1)).relu()
        return self.fc2(x.reshape(x.shape[0], -1))


class ResidualNet(nn.Module):
    """x.view(x.size(0), -1), `+` and torch.add of two layer outputs."""

    input_shape = (1, 4, 4)

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 12)
        self.fc2 = nn.Linear(12, 12)
        self.out = nn.Linear(12, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(x.size(0), -1)
        h = torch.relu(self.fc1(x))
        y = torch.add(self.fc2(h) + h, h)
        return self.out(F.relu(y))


class Block(nn.Module):
    """A ResNet basic block: identity shortcut, or a strided 1x1 projection with BatchNorm."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """Residual blocks, then AdaptiveAvgPool2d(1) and a Linear readout without bias."""

    input_shape = (1, 8, 8)

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.block1 = Block(4, 4, 1)
        self.block2 = Block(4, 6, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.block2(self.block1(self.stem(x)))), 1))


class GeometryNet(nn.Module):
    """Stride, dilation, padding, a non-square kernel, a depthwise conv without bias, and a
    flatten in front of an activation (the frontend moves it behind)."""

    input_shape = (2, 9, 9)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2))
        self.depthwise = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)
        self.fc1 = nn.Linear(4 * 5 * 7, 5)
        self.fc2 = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.depthwise(F.relu(self.conv1(x))), 1)
        return self.fc2(F.relu(self.fc1(F.relu(x))))


class MeanNet(nn.Module):
    """Global average pooling written as a mean over H and W."""

    input_shape = (2, 6, 6)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.conv(x)).mean((2, 3)))


class CatNet(nn.Module):
    """torch.cat of branches of different depth along channels, read by a conv and, after a
    flatten, by the Linear readout."""

    input_shape = (1, 6, 6)

    def __init__(self) -> None:
        super().__init__()
        self.branch_a = nn.Conv2d(1, 3, 3, padding=1)
        self.branch_b1 = nn.Conv2d(1, 2, 1)
        self.branch_b2 = nn.Conv2d(2, 2, 3, padding=1)
        self.mix = nn.Conv2d(5, 4, 3, padding=1)
        self.fc = nn.Linear(7 * 36, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.branch_a(x))
        b = F.relu(self.branch_b2(F.relu(self.branch_b1(x))))
        y = F.relu(self.mix(torch.cat([a, b], dim=1)))
        return self.fc(torch.flatten(torch.cat((y, a), 1), 1))


MODELS = (SmallMLP, SmallCNN, FunctionalNet, ResidualNet, ResNet, GeometryNet, MeanNet, CatNet)


def make(cls: type[nn.Module], seed: int = 0) -> nn.Module:
    """An eval-mode model whose BatchNorms have non-trivial statistics, so folding matters."""
    torch.manual_seed(seed)
    model = cls()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.5, 0.5)
    return model.eval()


def save(model: nn.Module, fmt: str, folder: Path) -> tuple[Path, dict]:
    """Write ``model`` in format ``fmt``; return the path and the load_model keywords it needs."""
    shape = type(model).input_shape
    example = (torch.rand(1, *shape),)
    path = folder / f"model_{fmt}.pt"
    needs_shape = {"input_shape": shape}
    if fmt == "script":
        torch.jit.save(torch.jit.script(model), path)
    elif fmt == "trace":
        torch.jit.save(torch.jit.trace(model, example), path)
    elif fmt == "export":
        path = path.with_suffix(".pt2")
        torch.export.save(torch.export.export(model, example), path)
        needs_shape = {}
    elif fmt == "state_dict":
        torch.save(model.state_dict(), path)
        needs_shape["arch"] = f"{__name__}:{type(model).__name__}"
    else:
        torch.save(model, path)
        needs_shape["trust_pickle"] = True
    return path, needs_shape


def assert_matches(graph, model: nn.Module) -> None:
    x = torch.rand(5, *type(model).input_shape)
    with torch.no_grad():
        expected = model(x)
    got = graph.run(x)["output"]
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-4), float((got - expected).abs().max())


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_every_format_reproduces_the_model(cls, fmt, tmp_path):
    model = make(cls)
    path, kwargs = save(model, fmt, tmp_path)
    graph = load_model(path, **kwargs)
    assert graph.input_shape == cls.input_shape
    assert graph.nodes[0].name == "input"
    assert {n.op for n in graph.nodes} <= set(OPS) - {"clip"}
    assert_matches(graph, model)


@pytest.mark.parametrize("fmt", FORMATS)
def test_cnn_layers_keep_their_module_names(fmt, tmp_path):
    path, kwargs = save(make(SmallCNN), fmt, tmp_path)
    graph = load_model(path, **kwargs)
    assert [(n.name, n.op) for n in graph.nodes] == [
        ("input", "input"), ("features.0", "conv2d"), ("features.2", "relu"),
        ("features.3", "avgpool2d"), ("features.4", "conv2d"), ("features.5", "relu"),
        ("flatten", "flatten"), ("fc", "linear")]
    assert graph.output == "fc"
    pool = graph.node("features.3").params
    assert (pool["kernel_size"], pool["stride"], pool["padding"]) == ((2, 2), (2, 2), (0, 0))


def test_run_alters_a_node_for_everything_downstream(tmp_path):
    model = make(SmallCNN)
    path, kwargs = save(model, "state_dict", tmp_path)
    graph = load_model(path, **kwargs)
    x = torch.rand(3, *SmallCNN.input_shape)
    plain = graph.run(x, keep={"features.5"})
    altered = graph.run(x, keep={"features.5"}, alter={"features.5": torch.zeros_like})
    assert plain["features.5"].abs().sum() > 0 and not altered["features.5"].any()
    silent = F.linear(torch.zeros(3, model.fc.in_features), model.fc.weight, model.fc.bias)
    assert torch.allclose(altered["output"], silent, atol=1e-5)
    assert not torch.allclose(plain["output"], silent, atol=1e-3)


def test_batchnorm_folds_into_the_conv_weights(tmp_path):
    model = make(SmallCNN)
    path, kwargs = save(model, "state_dict", tmp_path)
    conv = load_model(path, **kwargs).node("features.0")
    bn = model.features[1]
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().numpy()
    expected_w = model.features[0].weight.detach().numpy() * scale[:, None, None, None]
    expected_b = (-bn.running_mean * bn.weight / torch.sqrt(bn.running_var + bn.eps)
                  + bn.bias).detach().numpy()
    assert conv.params["weight"].dtype == np.float32
    np.testing.assert_allclose(conv.params["weight"], expected_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(conv.params["bias"], expected_b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fmt", ("script", "state_dict"))
def test_conv_options_are_kept(fmt, tmp_path):
    path, kwargs = save(make(FunctionalNet), fmt, tmp_path)
    conv = load_model(path, **kwargs).node("conv")
    assert conv.params["padding"] == (1, 1)  # 'same' with a 3x3 kernel
    assert conv.params["groups"] == 2
    assert conv.params["weight"].shape == (4, 1, 3, 3)


def test_arch_may_name_a_python_file(tmp_path):
    model = make(SmallCNN)
    path = tmp_path / "weights.pt"
    torch.save({"epoch": 3, "state_dict": model.state_dict()}, path)
    graph = load_model(path, arch=f"{Path(__file__)}:SmallCNN", input_shape=(1, 8, 8))
    assert_matches(graph, model)


@pytest.mark.parametrize("fmt", ["script", "pickle"])  # (torch traces no batch of 1)
def test_batchnorm_without_running_statistics_is_named_so(fmt, tmp_path):
    """TorchScript (and torch.export) said 'training mode' of a model saved in eval mode."""
    model = make(SmallMLP)
    model.bn = nn.BatchNorm1d(24, track_running_stats=False).eval()
    path, kwargs = save(model, fmt, tmp_path)
    with pytest.raises(UnsupportedLayer, match="^bn: BatchNorm without running statistics"):
        load_model(path, **kwargs)


@pytest.mark.parametrize(("dropped", "reason"), [
    ("/.data/version", r'Expected hasRecord\("version"\)'), ("/models/model.json",
                                                               "torch gave no reason")])
def test_a_damaged_export_is_one_line_naming_the_cause(tmp_path, capfd, dropped, reason):
    """torch.export logged the cause as a 13-line traceback on stderr, then raised 'check the
    warnings above' (also where it had logged none)."""
    path, _ = save(make(SmallMLP), "export", tmp_path)
    damaged = tmp_path / "damaged.pt2"
    with zipfile.ZipFile(path) as good, zipfile.ZipFile(damaged, "w") as bad:
        for entry in good.infolist():
            if not entry.filename.endswith(dropped):
                bad.writestr(entry, good.read(entry))
    with pytest.raises(InputError, match=f"cannot read this torch.export program: {reason}"):
        load_model(damaged)
    assert capfd.readouterr().err == ""


def test_arch_may_name_a_module_in_the_working_directory(tmp_path, monkeypatch):
    """As under python -m; the console script has no '' on sys.path, and --arch models:Net
    next to the weights said it could not import 'models'."""
    (tmp_path / "wd_models.py").write_text("from torch import nn\n\nclass Net(nn.Sequential):\n"
                                           "    def __init__(self):\n"
                                           "        super().__init__(nn.Flatten(), "
                                           "nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    monkeypatch.delitem(sys.modules, "wd_models", raising=False)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    torch.save(model.state_dict(), "weights.pt")
    graph = load_model("weights.pt", arch="wd_models:Net", input_shape=(4,))
    assert [n.op for n in graph.nodes] == ["input", "linear", "relu", "linear"]
    assert os.getcwd() not in sys.path


@pytest.mark.parametrize("cls, linears", [(FunctionalNet, 2), (ResNet, 1), (MeanNet, 1)])
def test_decomposed_export_program_loads(tmp_path, cls, linears):
    model = make(cls)
    program = torch.export.export(model, (torch.rand(3, *cls.input_shape),))
    path = tmp_path / "decomposed.pt2"
    torch.export.save(program.run_decompositions(), path)
    graph = load_model(path)
    assert [n.op for n in graph.nodes].count("linear") == linears
    assert_matches(graph, model)


def test_export_program_rejects_a_different_input_shape(tmp_path):
    path, _ = save(make(SmallCNN), "export", tmp_path)
    with pytest.raises(InputError, match=r"expects input shape \(1, 8, 8\)"):
        load_model(path, input_shape=(1, 9, 9))


@pytest.mark.parametrize("fmt", FORMATS)
def test_global_pooling_and_residual_adds_are_captured(fmt, tmp_path):
    path, kwargs = save(make(ResNet), fmt, tmp_path)
    graph = load_model(path, **kwargs)
    ops = [n.op for n in graph.nodes]
    assert ops.count("add") == 2 and ops.count("adaptive_avgpool2d") == 1
    assert graph.node(graph.output).params["bias"] is None


def test_flatten_before_an_activation_moves_behind_it(tmp_path):
    path, kwargs = save(make(GeometryNet), "script", tmp_path)
    graph = load_model(path, **kwargs)
    relu = next(n for n in graph.nodes if n.op == "relu" and n.inputs == ("depthwise",))
    assert [n.op for n in graph.consumers(relu.name)] == ["flatten"]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_a_model_in_another_float_dtype_loads_and_stays_as_it_was(dtype):
    model = make(SmallCNN).to(dtype)
    graph = load_model(model, input_shape=SmallCNN.input_shape)
    assert all(p.dtype == dtype for p in model.parameters())
    x = torch.rand(5, *SmallCNN.input_shape)
    with torch.no_grad():
        expected = model(x.to(dtype)).to(torch.float32)
    assert torch.allclose(graph.run(x)["output"], expected, atol=2e-2 if dtype == torch.float16
                          else 1e-4)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_one_stray_parameter_of_another_dtype_does_not_set_the_models(dtype):
    """A float32 model holding one float64 scalar first was checked on float64 inputs and
    refused as "the model fails on input shape (1, 8, 8): mat1 and mat2 must have the same
    dtype"."""

    class WithStray(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.temperature = nn.Parameter(torch.ones(1, dtype=dtype))
            self.net = make(SmallCNN)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

    model = WithStray()
    graph = load_model(model, input_shape=SmallCNN.input_shape)
    x = torch.rand(5, *SmallCNN.input_shape)
    with torch.no_grad():
        assert torch.allclose(graph.run(x)["output"], model(x), atol=1e-5)


def test_a_hook_that_changes_the_model_is_named_not_reported_as_a_bug():
    """It was refused with "please report this model", as if the frontend were wrong."""
    model = make(SmallCNN)
    model.register_forward_pre_hook(lambda module, inputs: (inputs[0] * 2 - 1,))
    with pytest.raises(UnsupportedLayer, match=r"^forward hooks on the model change what the "
                                               r"model computes.*Remove the hooks, or do what "
                                               r"they do in forward\(\)$"):
        load_model(model, input_shape=SmallCNN.input_shape)


@pytest.mark.parametrize("ann", [random_cnn(), random_resnet()], ids=["cnn", "resnet"])
def test_the_streamed_graph_gives_each_chunks_run_and_holds_only_what_is_still_read(ann):
    """``AnnGraph.stream`` runs node by node over chunks (23 images, chunks of 5): each
    wanted node's values are ``run``'s on each chunk, bit for bit, and between yields it holds
    only outputs a later node reads (a residual add's shortcut until the add)."""
    x = images(ann.input_shape, n=23, seed=7)
    wanted = {n.name for n in ann.nodes if n.op in ACTIVATIONS} | {ann.output}
    order = [n.name for n in ann.nodes]
    stream = ann.stream(x, 5, wanted)
    streamed = {}
    for name, value in stream:
        streamed[name] = value
        later = {i for n in ann.nodes[order.index(name) + 1:] for i in n.inputs}
        assert set(stream.gi_frame.f_locals["held"]) <= later
    assert set(streamed) == wanted
    for first in range(0, len(x), 5):
        run = ann.run(torch.as_tensor(x[first:first + 5], dtype=torch.float32), keep=wanted)
        for name in wanted:
            expected = run["output"] if name == ann.output else run[name]
            assert np.array_equal(streamed[name][first:first + 5], expected.numpy())


def test_a_run_lets_go_of_the_values_no_later_node_reads():
    """When the last node runs, only its inputs and the kept values are still alive (and a
    value a view of them, such as a flatten, holds: the same memory)."""
    ann = random_resnet()
    names = [n.name for n in ann.nodes if n.op != "input"]
    refs, alive = {}, {}  # alive: name -> its memory, when the last node runs

    def remember(name):
        def alter(value):
            refs[name] = weakref.ref(value)
            return value
        return alter

    def look(value):
        alive.update({name: ref().untyped_storage().data_ptr() for name, ref in refs.items()
                      if ref() is not None})
        return value

    alter = {name: remember(name) for name in names[:-1]} | {names[-1]: look}
    ann.run(torch.as_tensor(images(ann.input_shape, n=3)), keep={names[1]}, alter=alter)
    expected = {names[1], *ann.node(names[-1]).inputs}
    assert expected <= set(alive) and len(alive) < len(names) // 2
    assert set(alive.values()) == {alive[name] for name in expected}
