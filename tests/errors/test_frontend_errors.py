"""Frontend errors: each names the file or layer at fault and says what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neurodeploy.errors import InputError, TrustError, UnsupportedLayer
from neurodeploy.frontend import load_model

SHAPE = (1, 8, 8)


class PoolNet(nn.Module):
    """MaxPool2d is not in the closed op set."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.MaxPool2d(2))
        self.fc = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(x), 1))


class SigmoidNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 3)
        self.act = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(torch.flatten(x, 1)))


class FunctionalSigmoidNet(SigmoidNet):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc(torch.flatten(x, 1)))


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 10)
        self.fc2 = nn.Linear(10, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


class BatchNormAfterReLU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.relu = nn.ReLU()
        self.bn = nn.BatchNorm2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.relu(self.conv(x)))


class BatchNormOnBranch(nn.Module):
    """The conv output is used both before and after the BatchNorm, so it cannot be folded."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.bn = nn.BatchNorm2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.bn(y) + y


class BatchNormAfterBranch(BatchNormOnBranch):
    """Here the other reader of the conv output comes first."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        z = torch.relu(y)
        return self.bn(y) + z


class CeilPool(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(3, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


def save_state_dict(model: nn.Module, folder: Path) -> tuple[Path, str]:
    path = folder / "weights.pt"
    torch.save(model.state_dict(), path)
    return path, f"{__name__}:{type(model).__name__}"


def save_format(model: nn.Module, fmt: str, folder: Path) -> dict:
    """Save ``model.eval()`` as ``fmt``; return load_model keywords (path included)."""
    model.eval()
    if fmt == "state_dict":
        path, arch = save_state_dict(model, folder)
        return {"model": path, "arch": arch, "input_shape": SHAPE}
    if fmt == "script":
        path = folder / "model.pt"
        torch.jit.save(torch.jit.script(model), path)
        return {"model": path, "input_shape": SHAPE}
    path = folder / "model.pt2"
    torch.export.save(torch.export.export(model, (torch.zeros(1, *SHAPE),)), path)
    return {"model": path}


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_model(tmp_path / "nope.pt", input_shape=SHAPE)


@pytest.mark.parametrize("content", [b"hello, this is not a model\n", bytes(range(256)) * 8, b""])
def test_not_a_model(tmp_path, content):
    path = tmp_path / "junk.pt"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        load_model(path, input_shape=SHAPE)
    message = str(info.value)
    assert "not a PyTorch model" in message
    assert "TorchScript" in message and "state dict" in message and "torch.export" in message


def test_pickle_needs_trust(tmp_path):
    path = tmp_path / "full.pt"
    torch.save(MLP(), path)
    with pytest.raises(TrustError) as info:
        load_model(path, input_shape=SHAPE)
    assert "arbitrary code" in str(info.value)
    assert "--trust-pickle" in str(info.value)
    assert load_model(path, input_shape=SHAPE, trust_pickle=True).output == "fc2"


def test_state_dict_needs_arch(tmp_path):
    path, _ = save_state_dict(MLP(), tmp_path)
    with pytest.raises(InputError, match="--arch module:ClassName"):
        load_model(path, input_shape=SHAPE)


def test_state_dict_of_another_class_names_the_key(tmp_path):
    path, _ = save_state_dict(MLP(), tmp_path)
    with pytest.raises(InputError, match="missing key 'features.0.weight'"):
        load_model(path, arch=f"{__name__}:PoolNet", input_shape=SHAPE)


@pytest.mark.parametrize("arch, message", [
    ("no_colon", "must look like module.path:ClassName"),
    ("no.such.module:Net", "cannot import 'no.such.module'"),
    (f"{__name__}:Nope", "has no 'Nope'"),
])
def test_bad_arch(tmp_path, arch, message):
    path, _ = save_state_dict(MLP(), tmp_path)
    with pytest.raises(InputError, match=message):
        load_model(path, arch=arch, input_shape=SHAPE)


@pytest.mark.parametrize("fmt, op", [("state_dict", "MaxPool2d"), ("script", "max_pool2d"),
                                     ("export", "max_pool2d")])
def test_unsupported_layer_names_node_and_op(tmp_path, fmt, op):
    with pytest.raises(UnsupportedLayer) as info:
        load_model(**save_format(PoolNet(), fmt, tmp_path))
    message = str(info.value)
    assert message.startswith("features.1: ")
    assert f"{op} is not supported: a maximum of spike counts" in message
    assert "Replace it with nn.AvgPool2d" in message
    assert "Supported: Linear (bias optional), Conv2d" in message


class ActivationNet(nn.Module):
    """``ACT`` between two Linear layers; subclasses name the activation (--arch needs a class)."""

    ACT: type[nn.Module] = nn.ReLU

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 8)
        self.act = self.ACT()
        self.out = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.fc(torch.flatten(x, 1))))


class SigmoidAct(ActivationNet):
    ACT = nn.Sigmoid


class TanhAct(ActivationNet):
    ACT = nn.Tanh


class GELUAct(ActivationNet):
    ACT = nn.GELU


class LeakyAct(ActivationNet):
    ACT = nn.LeakyReLU


class SiLUAct(ActivationNet):
    ACT = nn.SiLU


@pytest.mark.parametrize("fmt", ["state_dict", "script", "export"])
@pytest.mark.parametrize("cls, module_op, aten_op", [
    (SigmoidAct, "Sigmoid", "sigmoid"), (TanhAct, "Tanh", "tanh"), (GELUAct, "GELU", "gelu"),
    (LeakyAct, "LeakyReLU", "leaky_relu"), (SiLUAct, "SiLU", "silu")])
def test_non_relu_activations_are_refused_by_name(tmp_path, fmt, cls, module_op, aten_op):
    with pytest.raises(UnsupportedLayer) as info:
        load_model(**save_format(cls(), fmt, tmp_path))
    message = str(info.value)
    op = module_op if fmt == "state_dict" else aten_op
    assert message.startswith(f"act: {op} is not supported: only ReLU activations map")
    assert "Supported: Linear (bias optional), Conv2d" in message


@pytest.mark.parametrize("cls, node, op", [(SigmoidNet, "act", "Sigmoid"),
                                           (FunctionalSigmoidNet, "sigmoid", "sigmoid")])
def test_unsupported_activation(tmp_path, cls, node, op):
    with pytest.raises(UnsupportedLayer, match=f"^{node}: {op} is not supported"):
        load_model(**save_format(cls(), "state_dict", tmp_path))


@pytest.mark.parametrize("fmt", ["state_dict", "script"])
def test_wrong_input_shape_names_layer_and_sizes(tmp_path, fmt):
    kwargs = save_format(MLP(), fmt, tmp_path) | {"input_shape": (1, 4, 4)}
    with pytest.raises(InputError) as info:
        load_model(**kwargs)
    message = str(info.value)
    assert message.startswith("fc1: input shape (1, 4, 4) does not fit the model")
    assert "expects 64 input features, but gets 16" in message


def test_images_for_a_model_that_takes_flat_samples_are_named_as_such(tmp_path):
    """(1, 8, 8) images into a first Linear of 64 inputs: "expects 64 input features, but
    gets 64" read as a contradiction."""
    flat = nn.Sequential(nn.Linear(64, 10), nn.ReLU(), nn.Linear(10, 3))
    kwargs = save_format(flat, "script", tmp_path) | {"input_shape": (1, 8, 8)}
    with pytest.raises(InputError, match=r"^0: input shape \(1, 8, 8\) does not fit the "
                                         r"model: it expects flat samples of 64 features, but "
                                         r"gets samples of shape \(1, 8, 8\)\."):
        load_model(**kwargs)


def test_wrong_channel_count(tmp_path):
    kwargs = save_format(PoolNet().features[0:1], "script", tmp_path) | {"input_shape": (3, 8, 8)}
    with pytest.raises(InputError, match=r"0: .*C = 1, but gets shape \(3, 8, 8\)"):
        load_model(**kwargs)


def test_a_shape_of_the_wrong_rank_says_so(tmp_path):
    """(1, 8) has the right channel count but no width: the error must not read as if the
    channels were wrong."""
    kwargs = save_format(PoolNet().features[0:1], "script", tmp_path) | {"input_shape": (1, 8)}
    with pytest.raises(InputError, match=r"0: .*C = 1, but gets shape \(1, 8\) \(2 dimensions\)"):
        load_model(**kwargs)


def test_script_model_needs_an_input_shape(tmp_path):
    kwargs = save_format(MLP(), "script", tmp_path)
    del kwargs["input_shape"]
    with pytest.raises(InputError, match="input shape is unknown.*--input-shape"):
        load_model(**kwargs)


def test_nan_weights_name_the_layer(tmp_path):
    model = MLP()
    with torch.no_grad():
        model.fc2.weight[0, 0] = float("nan")
    with pytest.raises(InputError, match="^fc2: weight contains NaN or Inf"):
        load_model(**save_format(model, "script", tmp_path))


@pytest.mark.parametrize("cls, message", [
    (BatchNormAfterReLU, r"^bn: BatchNorm after 'relu' \(relu\) cannot be folded"),
    (BatchNormOnBranch, "^add: uses the output of 'conv' from before the BatchNorm"),
    (BatchNormAfterBranch, "^bn: the output of 'conv' is used both before and after"),
    (CeilPool, "^pool: AvgPool2d with ceil_mode=True"),
])
@pytest.mark.parametrize("fmt", ["state_dict", "script"])
def test_unfoldable_or_unsupported_options(tmp_path, cls, message, fmt):
    with pytest.raises(UnsupportedLayer, match=message):
        load_model(**save_format(cls(), fmt, tmp_path))


class SoftmaxOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.out = nn.Linear(64, 3)
        self.norm = nn.LogSoftmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.out(torch.flatten(x, 1)))


@pytest.mark.parametrize("fmt, op", [("state_dict", "LogSoftmax"), ("script", "log_softmax")])
def test_a_final_softmax_is_refused_saying_to_return_the_logits(tmp_path, fmt, op):
    with pytest.raises(UnsupportedLayer, match="is not supported: the readout reports the last "
                                               "layer's values .logits.. Return the logits: "
                                               "drop the final softmax") as info:
        load_model(**save_format(SoftmaxOut(), fmt, tmp_path))
    assert op in str(info.value)


class FunctionalSoftmaxOut(SoftmaxOut):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.out(torch.flatten(x, 1)), dim=1)


def test_a_scripted_functional_softmax_is_named_not_its_branch(tmp_path):
    """TorchScript's F.softmax branches on its dim argument; the op is what to name."""
    with pytest.raises(UnsupportedLayer, match="^softmax: softmax is not supported: the readout"):
        load_model(**save_format(FunctionalSoftmaxOut(), "script", tmp_path))



class ChannelMeanNet(nn.Module):
    """``mean(1)`` with an int dimension (over channels): not global average pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.out = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.conv(x)).mean(1).mean(1))


def test_a_mean_over_one_int_dimension_is_refused_by_name():
    """It was a TypeError (the frontend iterated the int)."""
    with pytest.raises(UnsupportedLayer, match=r"mean over dimensions \[1\]"):
        load_model(ChannelMeanNet(), input_shape=SHAPE)


def test_a_module_in_memory_on_the_meta_device_is_refused():
    with pytest.raises(InputError, match="weights are on the meta device"):
        load_model(MLP().to("meta"), input_shape=SHAPE)


def test_a_torch_compiled_module_is_read_as_the_module_it_wraps():
    model = MLP().eval()
    compiled = load_model(torch.compile(model), input_shape=SHAPE)
    x = torch.rand(3, *SHAPE)
    assert torch.allclose(compiled.run(x)["output"], load_model(model, input_shape=SHAPE)
                          .run(x)["output"])
