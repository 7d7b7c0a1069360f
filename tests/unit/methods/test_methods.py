"""Method composition (``+``-joined stages) and the probe calibration stages measure with."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest

from neurodeploy import api
from neurodeploy.convert import ConvertOptions
from neurodeploy.core.graph import populations, readout_name
from neurodeploy.core.meta import copy_graph, get_graph_meta, population_meta, set_graph_meta
from neurodeploy.core.population import population_shape
from neurodeploy.errors import InputError
from neurodeploy.methods import MethodContext, get_method
from neurodeploy.methods.base import compose
from neurodeploy.methods.normalization import Normalization
from neurodeploy.methods.probe import ann_activations, simulate
from neurodeploy.targets import load_target
from tests.conftest import images, random_cnn, random_mlp


@dataclass(frozen=True)
class Refiner:
    """A stand-in refining stage that records that it ran."""

    name: str = "refine"
    builds: bool = False
    needs_calibration: bool = False
    window_specific: bool = False

    def __call__(self, graph, ctx):
        out = copy_graph(graph, {})
        meta = get_graph_meta(out)
        set_graph_meta(out, replace(meta, notes={**meta.notes, self.name: True}))
        return out


def context(timesteps: int = 4) -> MethodContext:
    ann = random_mlp()
    return MethodContext(ann=ann, calib=images(ann.input_shape, n=128),
                         options=ConvertOptions(timesteps=timesteps),
                         target=load_target("reference"))


def test_a_percentile_is_a_method_and_its_name_is_recorded():
    graph = get_method("p99.9").convert(context())
    assert get_graph_meta(graph).method == "p99.9"


def test_refiners_alone_start_from_the_default_builder():
    method = compose([Refiner()], Normalization("p99.99"), "refine")
    assert method.name == "p99.99+refine"
    assert get_graph_meta(method.convert(context())).notes["refine"] is True


@pytest.mark.parametrize("spec, specific", [
    ("p99.99", False), ("max", False), ("qcfs", False), ("ecl", True), ("dual_phase", True),
    ("calibrate", True), ("calibrate_light", True), ("adafire", True), ("p99.99+ftbc", True),
    ("ftbc", True), ("adafire+iat", True),
])
def test_a_method_calibrated_for_its_window_says_so(spec, specific):
    assert get_method(spec).window_specific is specific


@pytest.mark.parametrize("method, specific", [("ftbc", True), ("p99.9", False),
                                              ("nir-import", False)])
def test_a_network_knows_whether_its_method_was_window_specific(method, specific):
    graph = get_method("p99.9").convert(context())
    set_graph_meta(graph, replace(get_graph_meta(graph), method=method))
    assert api.window_specific(graph) is specific


@pytest.mark.parametrize("stages, message", [
    ([Normalization("max"), Normalization("p99")], "chooses thresholds twice"),
    ([Refiner(), Normalization("max")], "must come first"),
    ([Normalization("max"), Refiner(), Refiner()], "twice"),
])
def test_invalid_compositions_are_refused(stages, message):
    with pytest.raises(InputError, match=message):
        compose(stages, Normalization("p99.99"), "spec")


def test_early_exit_comes_last():
    """Its exits are calibrated on the network the stages before it left: a stage after it
    would change the network under them."""
    with pytest.raises(InputError, match="'iat' measures the finished network, so it must "
                                         "come last"):
        get_method("p99.99+iat+correct")
    assert get_method("p99.99+correct+iat").name == "p99.99+correct+iat"


def test_unknown_stage_is_named_with_the_choices():
    with pytest.raises(InputError, match=r"unknown method 'bogus' in 'max\+bogus'.*p99\.99"):
        get_method("max+bogus")


def test_percentile_zero_is_refused_not_taken_as_max():
    # the 0th percentile of a ReLU's outputs is 0, so thresholds fell back to max silently
    with pytest.raises(InputError, match=r"unknown method 'p0'.*a percentile above 0"):
        get_method("p0")


def test_missing_calibration_names_the_stage():
    ctx = context()
    ctx = MethodContext(ann=ctx.ann, calib=None, options=ctx.options, target=ctx.target)
    with pytest.raises(InputError, match="'max' needs calibration data"):
        get_method("max").convert(ctx)


def test_probe_rates_track_the_ann_with_a_long_window():
    ctx = context(timesteps=64)
    graph = get_method("p99.99").convert(ctx)
    x = images(ctx.ann.input_shape, n=64, seed=3)
    probe = simulate(graph, x, ctx)
    acts = ann_activations(ctx, x, graph)
    assert set(acts) == set(populations(graph))
    for name in populations(graph):
        if name == readout_name(graph):
            continue
        assert probe.spike_values(name).shape == (64, 64, *acts[name].shape[1:])
        error = np.abs(probe.rates(name) - np.minimum(acts[name], probe.rates(name).max()))
        assert error.mean() < 0.05 * acts[name].max()
    correlation = np.corrcoef(probe.logits.ravel(), acts[readout_name(graph)].ravel())[0, 1]
    assert correlation > 0.95


@pytest.mark.parametrize("count", [1, 2])
@pytest.mark.parametrize("spec", ["auto", "calibrate+ftbc"])
def test_the_calibrating_methods_take_as_few_as_one_image(spec, count):
    # auto fits with the dual threshold on loihi2; ftbc splits the images into batches
    ann = random_mlp()
    ctx = MethodContext(ann=ann, calib=images(ann.input_shape, n=count),
                        options=ConvertOptions(timesteps=2, dual=True),
                        target=load_target("loihi2"))
    notes = get_graph_meta(get_method(spec).convert(ctx)).notes
    if spec == "calibrate+ftbc":
        fits = notes["calibrate"]["weight_calibration"].values()
        assert all(("skipped" in fit) == (count == 1) for fit in fits)  # none left to score
        assert notes["ftbc"]["batches"] == count


def test_correct_refines_a_conv_network_whose_builder_set_v_init_per_channel():
    ann = random_cnn()
    ctx = MethodContext(ann=ann, calib=images(ann.input_shape, n=32),
                        options=ConvertOptions(timesteps=2), target=load_target("loihi2"))
    built = get_method("p99.99").convert(ctx)
    graph = get_method("p99.99+correct").convert(ctx)
    conv = next(p for p in populations(graph) if len(population_shape(graph.nodes[p])) == 3)
    shape = population_shape(graph.nodes[conv])
    assert np.shape(population_meta(built, conv).v_init) == shape[:1]
    assert np.shape(population_meta(graph, conv).v_init) == shape  # one per neuron now
