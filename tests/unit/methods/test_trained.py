"""The methods that train: qcfs, ecl and dual_phase build from the learned clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurodeploy.nn as ndnn
from neurodeploy import api
from neurodeploy.convert import ConvertOptions
from neurodeploy.core.graph import populations
from neurodeploy.core.meta import get_graph_meta, population_meta
from neurodeploy.errors import UnsupportedLayer
from neurodeploy.frontend import load_model
from neurodeploy.methods import MethodContext, get_method, learned
from neurodeploy.methods.deployed import DeployedNetwork
from neurodeploy.methods.dual_phase import DualPhase
from neurodeploy.methods.learned import LearnedClip
from neurodeploy.methods.potential import calibrate_potential
from neurodeploy.methods.probe import ann_activations, simulate
from neurodeploy.methods.weights import WeightFit, input_merge
from neurodeploy.targets import load_target
from tests.models import digits_batch, save_torchscript, trained_digits_mlp
from tests.unit.test_nn import ClipNet


def clip_model(tmp_path, method: str = "ecl", levels: int = 4):
    """The digits MLP with learned-clip activations, saved as TorchScript and loaded."""
    model = ndnn.prepare(trained_digits_mlp(), method, levels=levels,
                         calib=digits_batch(256)).eval()
    return load_model(save_torchscript(model, tmp_path / f"{method}.pt"), input_shape=(1, 8, 8))


def context(ann, timesteps: int = 4) -> MethodContext:
    return MethodContext(ann=ann, calib=digits_batch(128), options=ConvertOptions(
        timesteps=timesteps), target=load_target("loihi2"), show_progress=False)


@pytest.mark.parametrize("method, dual", [("qcfs", False), ("ecl", True)])
def test_learned_thresholds_become_the_neurons(method, dual, tmp_path):
    ann = clip_model(tmp_path, method)
    (clip,) = [n for n in ann.nodes if n.op == "clip"]
    graph = get_method(method).convert(context(ann))
    (pop,) = [p for p in populations(graph) if population_meta(graph, p).fires]
    meta = population_meta(graph, pop)
    theta = clip.params["threshold"]
    assert float(meta.theta) == pytest.approx(theta)
    assert meta.dual is dual
    if dual:  # ecl: negative threshold 0, v_init calibrated per neuron from theta/2
        assert float(meta.theta_neg) == 0.0
        assert meta.v_init.shape == (48,) and np.ptp(meta.v_init) > 0
    else:
        assert float(meta.v_init) == pytest.approx(theta / 2)
    note = get_graph_meta(graph).notes[method]
    assert note["levels"] == {clip.name: 4}
    assert get_graph_meta(graph).method == method


@pytest.mark.parametrize("method", ["qcfs", "ecl", "dual_phase"])
def test_trained_methods_refuse_a_plain_relu_model(method):
    from tests.conftest import random_mlp

    with pytest.raises(UnsupportedLayer, match=f"method '{method}' needs thresholds learned"):
        get_method(method).convert(context(random_mlp()))


@pytest.mark.parametrize("method", ["qcfs", "ecl", "dual_phase"])
def test_each_method_compiles_for_loihi2_and_keeps_the_ann_accuracy(method, tmp_path):
    ann = clip_model(tmp_path, method)
    x, y = api.dataset("digits", limit=300)
    result = api.compile(ann, target="loihi2", method=method, calib="digits", timesteps=4,
                         show_progress=False)
    ann_acc = api.ann_accuracy(ann, x, y)
    assert api.evaluate(result.graph, x, y, [4], show_progress=False)[4] > ann_acc - 0.03


def test_potential_calibration_removes_the_mean_rate_error(tmp_path):
    ann = load_model(save_torchscript(_clip_cnn(), tmp_path / "cnn.pt"), input_shape=(1, 8, 8))
    ctx = context(ann, timesteps=2)
    graph = get_method("qcfs").convert(ctx)
    images = ctx.calib
    pop = populations(graph)[1]  # the second layer: its input spikes are uneven in time
    target = ann_activations(ctx, images, graph)[pop]

    def error(g):
        return float(np.abs(simulate(g, images, ctx).rates(pop).mean(0) - target.mean(0)).mean())

    calibrated = calibrate_potential(graph, pop, DeployedNetwork(graph, images, ctx), target)
    assert population_meta(calibrated, pop).v_init.shape == target.shape[1:]
    assert error(calibrated) < 0.5 * error(graph)


def test_ecl_can_calibrate_v_init_for_its_window(tmp_path):
    ann = load_model(save_torchscript(_clip_cnn(), tmp_path / "cnn.pt"), input_shape=(1, 8, 8))
    ctx = context(ann, timesteps=2)
    plain = LearnedClip("ecl", dual=True)(None, ctx)
    calibrated = LearnedClip("ecl", dual=True, calibrate_v_init=True)(None, ctx)
    for pop in populations(plain):
        if population_meta(plain, pop).fires:
            assert np.ndim(population_meta(plain, pop).v_init) == 0
            assert population_meta(calibrated, pop).v_init.ndim == 3
    assert get_graph_meta(calibrated).notes["ecl"]["v_init_calibrated"] is True


def test_weight_calibration_lowers_the_held_out_divergence(tmp_path):
    ann = load_model(save_torchscript(_clip_cnn(), tmp_path / "cnn.pt"), input_shape=(1, 8, 8))
    graph = DualPhase(weights=WeightFit("kl", epochs=5))(None, context(ann, timesteps=2))
    report = get_graph_meta(graph).notes["dual_phase"]["weight_calibration"]
    assert set(report) == {p for p in populations(graph) if population_meta(graph, p).fires}
    for layer in report.values():
        assert layer["loss"] == "kl" and layer["held_out_after"] <= layer["held_out_before"]


def test_input_chain_walks_pooling_back_to_the_previous_activation(tmp_path):
    ann = load_model(save_torchscript(_clip_cnn(), tmp_path / "cnn.pt"), input_shape=(1, 8, 8))
    (chain,) = input_merge(ann, "features.5").chains
    assert chain.source == "features.2"
    assert [n.op for n in chain.nodes] == ["avgpool2d", "conv2d"]
    assert input_merge(ann, "features.2").chains[0].source == "input"


def _clip_cnn():
    torch.manual_seed(0)
    model = ClipNet()
    return ndnn.prepare(model, "dual_phase", levels=2, calib=digits_batch(64)).eval()


def test_graded_spikes_send_the_clip_levels_in_fewer_steps(tmp_path):
    """levels 4 at T=1 with up to 8 spikes a step: bursts of 4 at theta/4, so one step sends
    every level of the clip and the network keeps the ANN's accuracy; single spikes cannot."""
    ann = clip_model(tmp_path, "ecl", levels=4)
    (clip,) = [n for n in ann.nodes if n.op == "clip"]
    x, y = api.dataset("digits", limit=300)
    accuracy = {}
    for burst in (1, 8):
        result = api.compile(ann, target="loihi2", method="ecl", calib="digits", timesteps=1,
                             options=ConvertOptions(max_burst=burst), show_progress=False)
        (pop,) = [p for p in populations(result.graph)
                  if population_meta(result.graph, p).fires]
        assert population_meta(result.graph, pop).max_burst == min(burst, 4)
        assert get_graph_meta(result.graph).notes["ecl"]["max_burst"] == {clip.name: min(burst,
                                                                                          4)}
        accuracy[burst] = api.evaluate(result.graph, x, y, [1], show_progress=False)[1]
    assert accuracy[8] > api.ann_accuracy(ann, x, y) - 0.02
    assert accuracy[8] > accuracy[1] + 0.05


def test_correct_refines_a_learned_clip_network(tmp_path):
    """ecl+correct: the trained network with bursts, then calibrate's corrections, measured
    on the deployed network (the note records each population's error before)."""
    ann = clip_model(tmp_path, "ecl", levels=4)
    ctx = MethodContext(ann=ann, calib=digits_batch(128), target=load_target("loihi2"),
                        options=ConvertOptions(timesteps=2, max_burst=8), show_progress=False)
    graph = get_method("ecl+correct").convert(ctx)
    meta = get_graph_meta(graph)
    assert meta.method == "ecl+correct"
    fired = [p for p in populations(graph) if population_meta(graph, p).fires]
    assert set(meta.notes["correct"]["mean_abs_rate_error_before"]) == set(fired)
    assert all(population_meta(graph, p).max_burst == 2 for p in fired)


def test_v_init_calibration_measures_a_seeded_subset_of_a_larger_calibration_set(
        tmp_path, monkeypatch):
    """Its spikes and activations are kept per image: at most POTENTIAL_SAMPLES of them."""
    monkeypatch.setattr(learned, "POTENTIAL_SAMPLES", 16)
    measured = []
    real = learned.calibrate_potentials
    monkeypatch.setattr(learned, "calibrate_potentials",
                        lambda snn, images, ctx: measured.append(images) or
                        real(snn, images, ctx))
    ctx = context(clip_model(tmp_path, "ecl"))
    get_method("ecl").convert(ctx)
    (images,) = measured
    assert len(images) == 16 and len(ctx.calib) == 128
    assert all(any(np.array_equal(image, c) for c in ctx.calib) for image in images)
