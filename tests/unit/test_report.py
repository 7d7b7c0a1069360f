"""The deployment report: schema, numbers checked against independent runs, hints, files."""

from __future__ import annotations

import dataclasses
import io
import json

import jsonschema
import numpy as np
import pytest
import torch
from PIL import Image

from neurodeploy import api
from neurodeploy.backends import Record, get_backend
from neurodeploy.capacity import fan_in
from neurodeploy.core.graph import populations
from neurodeploy.core.meta import get_graph_meta, population_meta, set_graph_meta
from neurodeploy.core.population import param_for_shape
from neurodeploy.errors import InputError, MetadataError
from neurodeploy.passes import PassContext, run_pipeline
from neurodeploy.report.build import PLOTS, SCHEMA, build_report
from neurodeploy.report.diagnose import hints
from neurodeploy.report.reference import EquivalentReference, ModelReference
from neurodeploy.report.static import layer_facts
from neurodeploy.targets import load_target
from tests.conftest import compile_ann, images, random_cnn, random_mlp
from tests.unit.test_capacity import residual_graph

LOIHI2 = load_target("loihi2")


def dataset(shape, n: int = 40):
    return images(shape, n, seed=5), np.random.default_rng(5).integers(0, 5, n)


def validate(data: dict) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads(json.dumps(data)), schema)


@pytest.fixture(scope="module")
def cnn_report(cnn_graph):
    x, y = dataset(random_cnn().input_shape)
    return build_report(cnn_graph, x, y, target=LOIHI2, reference=EquivalentReference(
        cnn_graph), timesteps=[1, 2, 8], show_progress=False)


def test_report_follows_the_schema(cnn_report):
    validate(cnn_report.data)
    assert cnn_report.data["accuracy"]["timesteps"] == [1, 2, 4, 8]  # compiled T=4 added


@pytest.mark.parametrize("damage", ["missing key", "unknown key", "wrong type"])
def test_schema_rejects_a_damaged_report(cnn_report, damage):
    data = json.loads(json.dumps(cnn_report.data))
    layer = data["layers"][0]
    if damage == "missing key":
        del layer["ann_vs_snn"]["correlation"]
    elif damage == "unknown key":
        layer["activity"]["spikes"] = 1
    else:
        layer["neurons"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        validate(data)


def test_measured_numbers_match_an_independent_run(cnn_graph, cnn_report):
    x, _ = dataset(random_cnn().input_shape)
    trace = get_backend("reference").run(cnn_graph, api.quantize_inputs(cnn_graph, x), 4,
                                         record=Record.SPIKES)
    layers = {layer["population"]: layer for layer in cnn_report.data["layers"]}
    for name, spikes in trace.spikes.items():
        activity = layers[name]["activity"]
        assert activity["firing_rate"] == pytest.approx(spikes.sum() / spikes.size)
        assert activity["event_rate"] == pytest.approx(np.count_nonzero(spikes) / spikes.size)
        silent = ~(spikes != 0).any(axis=(0, 1))
        assert activity["dead_fraction"] == pytest.approx(silent.mean())
    ops = cnn_report.data["operations"]
    assert ops["synops"] == pytest.approx(sum(trace.synops.values()) / len(x))
    assert sum(layer["operations"]["synops"] for layer in layers.values()) == \
        pytest.approx(ops["synops"])
    assert sum(layer["operations"]["energy_pj"] for layer in layers.values()) == \
        pytest.approx(ops["energy_pj"])
    readout = layers["readout"]["ann_vs_snn"]
    equivalent = EquivalentReference(cnn_graph).activations(x, api.quantize_inputs(cnn_graph, x))
    assert readout["mae"] == pytest.approx(np.abs(trace.logits - equivalent["readout"]).mean())


def test_direct_encoded_layer_tracks_the_equivalent_within_one_spike(cnn_graph):
    """With a constant input current the first layer's count is floor((T*I + v_init)/theta)
    clipped to [0, T]: within one spike (plus the input shift's rounding) of T * a / theta."""
    x = images(random_cnn().input_shape, 16)
    inputs = api.quantize_inputs(cnn_graph, x)
    steps = 64
    name = populations(cnn_graph)[0]
    trace = get_backend("reference").run(cnn_graph, inputs, steps, record=Record.SPIKES)
    meta = population_meta(cnn_graph, name)
    theta = param_for_shape(meta.theta.astype(np.float64), trace.spikes[name].shape[2:])
    activation = EquivalentReference(cnn_graph).activations(x, inputs)[name]
    ideal = np.minimum(steps * activation / (theta * 2.0**meta.exponent), steps)
    slack = 1 + steps * (0.5 if meta.input_shift else 0) / theta
    assert np.all(np.abs(trace.spikes[name].sum(axis=0) - ideal) <= slack + 1e-9)


def test_a_model_reference_compares_with_the_float_ann():
    ann = random_mlp()
    graph = compile_ann(ann)
    x, y = dataset(ann.input_shape)
    report = build_report(graph, x, y, target=LOIHI2, reference=ModelReference(
        ann, graph, "the float model"), show_progress=False)
    validate(report.data)
    assert report.data["ann_reference"]["kind"] == "model"
    expected = np.mean(ann.run(torch.as_tensor(x))["output"].numpy().argmax(axis=1) == y)
    assert report.data["accuracy"]["ann"] == pytest.approx(expected)


def test_a_model_that_was_not_compiled_is_refused(cnn_graph):
    with pytest.raises(InputError, match="input shape"):
        ModelReference(random_mlp(), cnn_graph, "")
    other = random_cnn()
    other.nodes[2].name = "renamed"
    with pytest.raises(InputError, match="no node 'relu1'"):
        ModelReference(other, cnn_graph, "")


def test_low_thresholds_get_the_clipping_hint():
    """Thresholds at the median: half the activations exceed the largest rate."""
    ann = random_mlp()
    graph = api.compile(ann, method="p50", calib=images(ann.input_shape)).graph
    x, y = dataset(ann.input_shape)
    report = build_report(graph, x, y, target=LOIHI2, reference=EquivalentReference(graph),
                          show_progress=False)
    first = report.data["layers"][0]
    assert first["ann_vs_snn"]["clipped_fraction"] > 0.2
    assert any("exceed the largest rate" in hint for hint in first["hints"])


def facts(**changes):
    return dataclasses.replace(layer_facts(compile_ann(random_mlp()))[0], **changes)


CALM = {"firing_rate": 0.3, "event_rate": 0.3, "saturated_fraction": 0.0, "dead_fraction": 0.0,
        "silent_but_ann_active_fraction": 0.0}
CLOSE = {"correlation": 0.99, "mae": 0.01, "mean_error": 0.0, "ann_mean_abs": 1.0,
         "relative_mae": 0.01, "clipped_fraction": 0.0}


@pytest.mark.parametrize(("facts_change", "activity", "comparison", "expected", "absent"), [
    ({}, {}, {}, None, None),
    ({"safe_timesteps": 3}, {}, {}, "may saturate after 3 steps", None),
    ({}, {}, {"clipped_fraction": 0.05}, "5.0% of the ANN's activations exceed", None),
    ({}, {"silent_but_ann_active_fraction": 0.3}, {}, "30.0% of the neurons never fire", None),
    ({}, {}, {"mean_error": -0.2}, "sends 20% less than the ANN", None),
    ({}, {}, {"mean_error": 0.5}, "(over-firing): use the dual threshold", None),
    ({"dual": True}, {}, {"mean_error": 0.5}, "(over-firing): use calibration", "dual"),
    ({}, {}, {"correlation": 0.5}, "only 4 rate levels; raise T or allow bursts", None),
    ({"max_burst": 3}, {}, {"correlation": 0.5}, "only 12 rate levels; raise T", "bursts"),
])
def test_each_hint_rule(facts_change, activity, comparison, expected, absent):
    found = hints(facts(**facts_change), CALM | activity, CLOSE | comparison, timesteps=4)
    if expected is None:
        assert found == []
        return
    assert len(found) == 1 and expected in found[0]
    assert absent is None or absent not in found[0]


def test_readout_hint_points_to_earlier_layers():
    readout = facts(kind="readout")
    assert hints(readout, None, CLOSE | {"correlation": 0.5, "clipped_fraction": None}, 4) == [
        "the logits follow the ANN loosely (correlation 0.50); the error comes from the "
        "layers before: start with the first layer that has a hint"]


def test_residual_merges_are_reported():
    """The shortcut takes one hop fewer than the main path; with no pipeline delay (the
    reference target) it needs no nir.Delay to run."""
    graph = residual_graph()
    reference = load_target("reference")
    set_graph_meta(graph, dataclasses.replace(get_graph_meta(graph), target="reference",
                                              hop_delay=0, timesteps=6))
    graph = run_pipeline(graph, ("check_capacity", "check_overflow"), PassContext(reference))
    x, y = dataset((1, 8, 8), 12)
    report = build_report(graph, x, y % 4, target=reference,
                          reference=EquivalentReference(graph), show_progress=False)
    validate(report.data)
    merge = next(layer for layer in report.data["layers"] if layer["population"] == "if2")
    assert sorted(merge["synapse_layers"]) == ["conv2", "short"]
    assert merge["synapses"] == int(fan_in(graph)["if2"].sum())
    assert merge["membrane_bound"] > 0 and merge["cores"] == 0
    assert report.data["capacity"]["checked"] and report.data["capacity"]["cores_used"] == 0


def test_files_are_written_together(cnn_report, tmp_path):
    written = cnn_report.write(tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(["report.json", "report.md",
                                                      *PLOTS.values()])
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == json.loads(
        json.dumps(cnn_report.data))
    for name in PLOTS.values():
        with Image.open(io.BytesIO((tmp_path / "out" / name).read_bytes())) as image:
            assert image.format == "PNG" and min(image.size) > 200
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert all(f"]({name})" in markdown for name in PLOTS.values())
    tables = [line.replace("\\|", "") for line in markdown.splitlines() if line.startswith("|")]
    assert len(tables) == 3 * (2 + len(cnn_report.data["layers"]))  # header, rule, rows
    for block in ("| population | neurons", "| population | shape", "| population | cores"):
        rows = [line for line in tables if line.startswith(block)]
        assert len(rows) == 1, "each table has one header"
    widths = {line.count("|") for line in tables}
    assert widths == {11, 17, 6}, "every row of a table has the header's columns"


def test_a_file_in_the_way_is_refused(cnn_report, tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        cnn_report.write(tmp_path / "out")


def test_wrong_target_and_partial_graphs_are_refused(cnn_graph):
    x, y = dataset(random_cnn().input_shape, 4)
    with pytest.raises(InputError, match="compiled for target 'loihi2', not 'loihi'"):
        build_report(cnn_graph, x, y, target=load_target("loihi"),
                     reference=EquivalentReference(cnn_graph), show_progress=False)
    partial = api.compile(random_mlp(), calib=images((1, 4, 4)),
                          stop_after="quantize_weights", method="p99.99").graph
    with pytest.raises(MetadataError, match="not fully quantized"):
        build_report(partial, x, y, target=LOIHI2, reference=EquivalentReference(partial),
                     show_progress=False)


def test_bias_table_size_is_a_resource_column():
    from tests.unit.test_passes import float_graph, with_bias_table

    graph = run_pipeline(with_bias_table(float_graph(), rows=4), ("quantize_input",
                         "quantize_weights", "quantize_bias"), PassContext(LOIHI2))
    facts = layer_facts(graph)
    channels = [int(np.asarray(graph.nodes[f.population].input_type["input"])[0])
                for f in facts[:-1]]
    assert [f.bias_table_entries for f in facts] == [4 * c for c in channels] + [0]
    assert all(f.bias_table_entries == 0 for f in layer_facts(compile_ann(random_mlp())))
