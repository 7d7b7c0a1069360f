"""Shared fixtures: small ANN graphs built directly (no files) and their compiled SNNs."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pytest

from neurodeploy.frontend.ann import AnnGraph, AnnNode

if TYPE_CHECKING:
    from neurodeploy.api import Deployment

DEEP_SYSTEM = "loihi2-kapoho-point"  #: where the VGG-11 and ResNet-18 shapes are compiled


def random_mlp(seed: int = 0, sizes=(16, 24, 12, 5)) -> AnnGraph:
    rng = np.random.default_rng(seed)
    nodes = [AnnNode("input", "input", (), {"shape": (1, 4, 4)}),
             AnnNode("flat", "flatten", ("input",))]
    prev = "flat"
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        w = rng.normal(0, 1 / np.sqrt(n_in), (n_out, n_in)).astype(np.float32)
        b = rng.normal(0, 0.1, n_out).astype(np.float32)
        nodes.append(AnnNode(f"fc{i}", "linear", (prev,), {"weight": w, "bias": b}))
        prev = f"fc{i}"
        if i < len(sizes) - 2:
            nodes.append(AnnNode(f"relu{i}", "relu", (prev,)))
            prev = f"relu{i}"
    return AnnGraph(nodes, prev)


def conv_node(name: str, src: str, cin: int, cout: int, rng: np.random.Generator, *,
              kernel: int = 3, stride: int = 1, std: float | None = None,
              bias: bool = True) -> AnnNode:
    """A conv2d node padded to keep the size at stride 1: weights N(0, std) (default
    1/sqrt(fan-in)), then, with ``bias``, a bias N(0, 0.05), both drawn from ``rng``."""
    std = 1 / np.sqrt(kernel * kernel * cin) if std is None else std
    weight = rng.normal(0, std, (cout, cin, kernel, kernel)).astype(np.float32)
    return AnnNode(name, "conv2d", (src,), {
        "weight": weight, "bias": rng.normal(0, 0.05, cout).astype(np.float32) if bias else None,
        "stride": (stride, stride), "padding": (kernel // 2, kernel // 2), "dilation": (1, 1),
        "groups": 1})


def random_cnn(seed: int = 0) -> AnnGraph:
    rng = np.random.default_rng(seed)

    def conv(name, src, cin, cout, stride=1):
        return conv_node(name, src, cin, cout, rng, stride=stride)

    pool = {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0)}
    nodes = [AnnNode("input", "input", (), {"shape": (1, 8, 8)}),
             conv("conv1", "input", 1, 4), AnnNode("relu1", "relu", ("conv1",)),
             AnnNode("pool1", "avgpool2d", ("relu1",), pool),
             conv("conv2", "pool1", 4, 6, stride=2), AnnNode("relu2", "relu", ("conv2",)),
             AnnNode("flat", "flatten", ("relu2",)),
             AnnNode("fc", "linear", ("flat",), {
                 "weight": rng.normal(0, 0.2, (5, 24)).astype(np.float32),
                 "bias": np.zeros(5, np.float32)})]
    return AnnGraph(nodes, "fc")


def random_resnet(seed: int = 0) -> AnnGraph:
    """Two residual blocks (identity, then a strided 1x1 projection), global average pooling,
    a Linear readout without bias."""
    rng = np.random.default_rng(seed)

    def conv(name, src, cin, cout, kernel=3, stride=1):
        return conv_node(name, src, cin, cout, rng, kernel=kernel, stride=stride)

    nodes = [AnnNode("input", "input", (), {"shape": (1, 8, 8)}),
             conv("conv1", "input", 1, 4), AnnNode("relu1", "relu", ("conv1",)),
             conv("conv2", "relu1", 4, 4), AnnNode("relu2", "relu", ("conv2",)),
             conv("conv3", "relu2", 4, 4), AnnNode("add1", "add", ("conv3", "relu1")),
             AnnNode("relu3", "relu", ("add1",)),
             conv("conv4", "relu3", 4, 6, stride=2), AnnNode("relu4", "relu", ("conv4",)),
             conv("conv5", "relu4", 6, 6), conv("proj", "relu3", 4, 6, kernel=1, stride=2),
             AnnNode("add2", "add", ("conv5", "proj")), AnnNode("relu5", "relu", ("add2",)),
             AnnNode("gap", "adaptive_avgpool2d", ("relu5",), {"output_size": (1, 1)}),
             AnnNode("flat", "flatten", ("gap",)),
             AnnNode("fc", "linear", ("flat",), {
                 "weight": rng.normal(0, 0.5, (5, 6)).astype(np.float32), "bias": None})]
    return AnnGraph(nodes, "fc")


def images(shape, n: int = 64, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *shape)).astype(np.float32)


def compile_ann(ann: AnnGraph, target: str = "loihi2", method: str = "p99.99", **kwargs):
    """The quick method unless a test names one (the default, auto, calibrates at length)."""
    from neurodeploy import api

    return api.compile(ann, target=target, method=method, calib=images(ann.input_shape),
                       **kwargs).graph


@pytest.fixture(scope="session")
def mlp_graph():
    return compile_ann(random_mlp())


@pytest.fixture(scope="session")
def cnn_graph():
    return compile_ann(random_cnn())


@dataclass(frozen=True)
class DeepShape:
    name: str
    deployment: Deployment
    images: np.ndarray  #: the random images its BatchNorm statistics and thresholds came from


@pytest.fixture(scope="session", params=["vgg11", "resnet18"])
def deep_shape(request) -> DeepShape:
    """VGG-11 / ResNet-18 shape on 3x32x32 (tests/models.py) compiled with p99.99 for T=2 on
    an 8-chip Loihi 2 system: VGG-11 needs more cores than one chip has."""
    from neurodeploy import api
    from tests.models import shape_network

    model, x = shape_network(request.param, 16)
    deployment = api.compile(model, target=DEEP_SYSTEM, method="p99.99", calib=x, timesteps=2,
                             show_progress=False)
    return DeepShape(request.param, deployment, x)
