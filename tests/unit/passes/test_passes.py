"""Every registered pass is pure, and the integer passes do what their docstrings say."""

from __future__ import annotations

import dataclasses

import nir
import numpy as np
import pytest

from neurodeploy.convert import ConvertOptions
from neurodeploy.core.conformance import check_population, representable
from neurodeploy.core.graph import populations
from neurodeploy.core.meta import (
    copy_graph,
    get_graph_meta,
    population_meta,
    set_graph_meta,
    with_record,
)
from neurodeploy.core.population import Population
from neurodeploy.errors import InputError, MetadataError, SaturationRisk, TargetLimitExceeded
from neurodeploy.methods import MethodContext, get_method
from neurodeploy.nir_io import read, write
from neurodeploy.passes import DEFAULT_PIPELINE, PASSES, PassContext, run_pipeline
from neurodeploy.targets import load_target
from tests.conftest import compile_ann, images, random_cnn, random_mlp, random_resnet


def float_graph(ann=None, **options):
    ann = ann or random_cnn()
    graph = get_method("p99.99").convert(MethodContext(
        ann=ann, calib=images(ann.input_shape), options=ConvertOptions(**options),
        target=load_target("loihi2")))
    meta = get_graph_meta(graph)
    set_graph_meta(graph, dataclasses.replace(meta, target="loihi2"))
    return graph


def with_window(graph: nir.NIRGraph, timesteps: int) -> nir.NIRGraph:
    """A copy of ``graph`` compiled for ``timesteps`` (the window the passes check)."""
    out = copy_graph(graph, {})
    set_graph_meta(out, dataclasses.replace(get_graph_meta(out), timesteps=timesteps))
    return out


def snapshot(graph: nir.NIRGraph):
    """Every node's fields and metadata, and the graph's metadata, copied."""
    nodes = {name: {k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v
                    for k, v in vars(node).items() if k != "metadata"} |
             {"meta": repr(node.metadata)} for name, node in graph.nodes.items()}
    return nodes | {"graph": {"meta": repr(graph.metadata)}}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for name in a:
        for key in a[name]:
            left, right = a[name][key], b[name][key]
            if isinstance(left, np.ndarray):
                np.testing.assert_array_equal(left, right, err_msg=f"{name}.{key}")
            else:
                assert left == right, f"{name}.{key}"


@pytest.mark.parametrize("ann", [random_cnn, random_resnet])
def test_every_registered_pass_leaves_its_input_untouched(ann):
    ctx = PassContext(load_target("loihi2"))
    graph = float_graph(ann())
    assert set(DEFAULT_PIPELINE) == set(PASSES), "a registered pass is missing from the tests"
    for name in DEFAULT_PIPELINE:
        before = snapshot(graph)
        out = PASSES[name](graph, ctx)
        assert_same(before, snapshot(graph))
        assert out is not graph
        graph = out


def test_weights_are_integer_mantissas_of_the_target_width():
    graph = compile_ann(random_cnn())
    for node in graph.nodes.values():
        if isinstance(node, nir.Linear | nir.Conv2d):
            assert np.issubdtype(node.weight.dtype, np.integer)
            assert node.weight.min() >= -128 and node.weight.max() <= 127
            assert np.abs(node.weight).max() >= 64, "exponent should use the full range"


def test_folding_keeps_the_layer_function():
    """W_int * 2**e equals W * theta_prev up to half a unit per weight."""
    ann = random_mlp()
    fg = float_graph(ann)
    graph = compile_ann(ann)
    theta0 = population_meta(fg, "relu0").theta  # per channel: one per input column
    meta = population_meta(graph, "relu1")
    exponent = meta.exponent - meta.input_shift
    expected = fg.nodes["fc1"].weight * theta0[None, :]
    np.testing.assert_allclose(graph.nodes["fc1"].weight * 2.0**exponent, expected,
                               atol=2.0**exponent / 2 + 1e-12)


def test_thresholds_and_v_init_are_rounded_in_the_membrane_unit():
    ann = random_mlp()
    fg, graph = float_graph(ann), compile_ann(ann)
    for name in populations(graph)[:-1]:
        exact, quant = population_meta(fg, name), population_meta(graph, name)
        unit = 2.0 ** quant.exponent
        assert np.abs(quant.theta - exact.theta / unit).max() <= 0.5
        assert np.abs(quant.v_init - exact.v_init / unit).max() <= 0.5


def test_bias_representable_uses_the_smallest_shift():
    out = representable(np.array([5.0, 4095.0, 5002.2, -9000.0, 40001.0]), 13, 3, "n")
    assert out.tolist() == [5.0, 4095.0, 5002.0, -9000.0, 40000.0]
    with pytest.raises(TargetLimitExceeded, match="bias"):
        representable(np.array([1e9]), 13, 3, "n")


def with_bias_table(graph, rows: int):
    """Every population gets a per-channel bias table of ``rows`` steps (in ANN units)."""
    for name in populations(graph)[:-1]:
        meta = population_meta(graph, name)
        channels = np.asarray(graph.nodes[name].input_type["input"])[0]
        table = np.linspace(-0.3, 0.3, rows * channels).reshape(rows, channels)
        graph = with_record(graph, name, meta.replace(bias_table=table))
    return graph


def test_bias_table_is_rounded_like_the_bias_and_caps_the_safe_window():
    fg = with_window(with_bias_table(float_graph(), rows=3), 3)
    ctx = PassContext(target=load_target("loihi2"))
    graph = run_pipeline(fg, DEFAULT_PIPELINE, ctx)
    for name in populations(graph)[:-1]:
        exact, quant = population_meta(fg, name), population_meta(graph, name)
        assert quant.bias_table.dtype == np.int32 and quant.bias_table.shape == (3, len(
            exact.bias))
        error = np.abs(quant.bias_table - exact.bias_table / 2.0**quant.exponent).max()
        assert error <= ctx.notes["quantize_bias"]["max_abs_error_units"][name] + 1e-9
        assert get_graph_meta(graph).safe_windows[name] <= 3
    with pytest.raises(MetadataError, match="bias table has 3 rows"):
        run_pipeline(with_window(fg, 4), DEFAULT_PIPELINE, ctx)


def test_bias_table_is_refused_on_targets_without_one():
    ctx = PassContext(target=load_target("loihi"))
    with pytest.raises(TargetLimitExceeded, match="bias_table is needed, the target allows none. "
                       "FTBC adds a bias per step, which target .loihi. cannot load") as refused:
        run_pipeline(with_bias_table(float_graph(), rows=2), DEFAULT_PIPELINE, ctx)
    assert not isinstance(refused.value, SaturationRisk)  # allow_saturation cannot lift it


def test_reset_by_subtraction_is_refused_on_targets_that_only_reset_to_zero():
    loihi2 = load_target("loihi2")
    no_soft_reset = dataclasses.replace(
        loihi2, neuron=dataclasses.replace(loihi2.neuron, soft_reset=False))
    with pytest.raises(TargetLimitExceeded, match="soft_reset is reset by subtraction"):
        run_pipeline(float_graph(), DEFAULT_PIPELINE, PassContext(target=no_soft_reset))
    run_pipeline(float_graph(), DEFAULT_PIPELINE, PassContext(target=loihi2))


def test_dual_threshold_is_refused_on_binary_spike_targets():
    with pytest.raises(TargetLimitExceeded, match="^options: dual_threshold is on"):
        compile_ann(random_mlp(), target="loihi", options=ConvertOptions(dual=True))
    for record, limit in ((Population(dual=True), "dual_threshold is on"),  # a file's
                          (Population(max_burst=2), "max_burst is 2, the target allows 1")):
        with pytest.raises(TargetLimitExceeded, match=f"^relu0: {limit}"):
            check_population(record, "relu0", load_target("loihi"))


def test_burst_is_refused_on_binary_spike_targets():
    with pytest.raises(TargetLimitExceeded, match="max_burst"):
        compile_ann(random_mlp(), target="loihi", options=ConvertOptions(max_burst=3))


def test_overflow_risk_is_refused_and_can_be_allowed():
    with pytest.raises(SaturationRisk, match=r"the \d+-bit membrane may saturate after \d+ steps, "
                                             r"within the window of T=1000"):
        compile_ann(random_mlp(), timesteps=1000)
    graph = compile_ann(random_mlp(), timesteps=1000, allow_saturation=True)
    assert 0 < get_graph_meta(graph).safe_timesteps < 1000


def test_pipeline_is_recorded_with_times():
    meta = get_graph_meta(compile_ann(random_mlp()))
    assert meta.pipeline == list(DEFAULT_PIPELINE)
    assert set(meta.pass_seconds) == set(DEFAULT_PIPELINE) and meta.quantized


def test_pass_notes_are_stored_in_the_artifact(tmp_path):
    graph = compile_ann(random_mlp())
    notes = get_graph_meta(graph).notes
    assert notes["quantize_weights"]["relative_rms_error"]
    assert "max_abs_synaptic_sum" in notes["check_overflow"]
    write(graph, tmp_path / "model.nir")
    assert get_graph_meta(read(tmp_path / "model.nir")).notes == notes


def test_stop_after_and_dump_dir(tmp_path):
    ctx = PassContext(load_target("loihi2"))
    graph = run_pipeline(float_graph(), DEFAULT_PIPELINE, ctx, stop_after="quantize_bias",
                         dump_dir=tmp_path)
    assert get_graph_meta(graph).pipeline[-1] == "quantize_bias"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "01_quantize_input.nir", "02_quantize_weights.nir", "03_quantize_bias.nir"]


@pytest.mark.parametrize("name", ["", "quantise_bias"])
def test_stop_after_an_unknown_pass_is_refused(name):
    """An empty name ran the whole pipeline and wrote a graph marked not quantized."""
    with pytest.raises(InputError, match=f"^unknown pass '{name}'. Passes: quantize_input"):
        run_pipeline(float_graph(), DEFAULT_PIPELINE, PassContext(load_target("loihi2")),
                     stop_after=name)


def test_quantize_population_makes_the_nodes_quantize_makes():
    """A calibration stage re-rounds one changed layer alone: it must get what the whole
    pipeline gives that layer (a per-channel CNN with a per-neuron v_init)."""
    from neurodeploy.convert import activation_thresholds, to_snn
    from neurodeploy.core.meta import get_node_meta
    from neurodeploy.core.population import Population
    from neurodeploy.passes import quantize, quantize_population
    from neurodeploy.passes.quantize_input import quantize_input
    from tests.conftest import images, random_cnn

    ann = random_cnn()
    x = images(ann.input_shape, n=32, seed=1)
    graph = to_snn(ann, activation_thresholds(ann, x, "p99.9", True), ConvertOptions())
    first = populations(graph)[0]
    shape = (*population_meta(graph, first).theta.shape, 1, 1)
    graph = with_record(graph, first, population_meta(graph, first).replace(
        v_init=np.random.default_rng(0).random(graph.nodes[first].input_type["input"])
        * np.asarray(population_meta(graph, first).theta).reshape(shape)))
    target = load_target("loihi2")
    whole = quantize(graph, target, allow_saturation=True, capacity_check=False)
    local = quantize_input(graph, PassContext(target=target))
    for name in populations(graph):
        for node_name, node in quantize_population(local, name, target).items():
            expected = whole.nodes[node_name]
            if node_name == name:
                got, want = (get_node_meta(n, Population) for n in (node, expected))
                for field in dataclasses.fields(Population):
                    assert np.array_equal(getattr(got, field.name), getattr(want, field.name))
            else:
                assert np.array_equal(node.weight, expected.weight)
