"""Deterministic Lava backend tests: hand-computed spikes, pipeline timing, the reset between
samples, a deliberately corrupted threshold, record modes and unsupported graphs."""

from __future__ import annotations

import dataclasses
import itertools
import sys

import nir
import numpy as np
import pytest

from neurodeploy.backends import Record, get_backend
from neurodeploy.core.meta import population_meta, with_record
from neurodeploy.core.population import Population
from neurodeploy.errors import (
    BackendUnavailable,
    InputError,
    MetadataError,
    NeurodeployError,
    TargetLimitExceeded,
)
from neurodeploy.verify import compare
from tests.bitexact.checks import assert_identical, run_both
from tests.bitexact.netgen import NetBuilder

READOUT = Population(kind="readout", v_init=np.array(0))


def chain(layers: list[tuple[np.ndarray, Population]], timesteps: int,
          membrane_bits: int = 24) -> nir.NIRGraph:
    """Input -> (Linear -> population) per layer; the last population must be the readout."""
    builder = NetBuilder(np.random.default_rng(0), timesteps)
    src = builder.input((layers[0][0].shape[1],))
    for i, (weight, meta) in enumerate(layers):
        fc = builder.add(f"fc{i}", nir.Linear(weight=weight), [src], weight.shape[:1])
        src = builder.population("readout" if i == len(layers) - 1 else f"if{i}", [fc], meta)
    return builder.graph(src, membrane_bits)


def if_params(**values) -> Population:
    scalars = ("max_burst", "dual", "input_shift")
    arrays = {k: np.array(v) for k, v in values.items() if k not in scalars}
    return Population(kind="if", **{**values, **arrays})


def random_chain(seed: int, sizes: tuple[int, ...], timesteps: int) -> nir.NIRGraph:
    """Dense chain with random weights and per-neuron dual-threshold parameters."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        weight = rng.integers(-40, 100, (n_out, n_in)).astype(np.float64)
        theta = rng.integers(200, 400, n_out)
        meta = READOUT if i == len(sizes) - 2 else if_params(
            theta=theta, bias=rng.integers(-50, 50, n_out), v_init=theta // 2,
            theta_neg=-(theta // 2), max_burst=2, dual=True)
        layers.append((weight, meta))
    return chain(layers, timesteps)


# (input, theta, bias, v_init, max_burst, dual, theta_neg) -> spikes, membranes (T = 4)
HAND_CASES = {
    "single": ((7, 3, 0, 0, 1, False, 0), [1, 1, 1, 1], [4, 8, 12, 16]),
    "burst": ((7, 3, 0, 0, 4, False, 0), [2, 2, 3, 2], [1, 2, 0, 1]),
    # 9-3=6 fires once (c=1); -1 sits above theta_neg; -4 retracts the spike (c=0);
    # -3 cannot retract again because c=0
    "dual": ((0, 4, -3, 9, 2, True, -2), [1, 0, -1, 0], [2, -1, 0, -3]),
}


@pytest.mark.lava
@pytest.mark.parametrize("case", HAND_CASES.values(), ids=HAND_CASES.keys())
def test_single_neuron_hand_computed(lava_backend, case) -> None:
    (x, theta, bias, v_init, burst, dual, theta_neg), spikes, membranes = case
    meta = if_params(theta=theta, bias=bias, v_init=v_init, max_burst=burst, dual=dual,
                   theta_neg=theta_neg)
    graph = chain([(np.ones((1, 1)), meta), (np.ones((1, 1)), READOUT)], timesteps=4)
    trace = lava_backend.run(graph, np.array([[x]]), 4, record=Record.ALL)
    assert trace.spikes["if0"][:, 0, 0].tolist() == spikes
    assert trace.membranes["if0"][:, 0, 0].tolist() == membranes
    # the readout integrates the spikes (weight 1) and never fires
    assert trace.output_steps[:, 0, 0].tolist() == np.cumsum(spikes).tolist()
    assert trace.outputs.tolist() == [[sum(spikes)]]


@pytest.mark.lava
def test_windows_follow_hop_offsets(reference_backend, lava_backend) -> None:
    graph = random_chain(1, (3, 4, 4, 2), timesteps=5)
    inputs = np.random.default_rng(2).integers(0, 256, (3, 3))
    expected, actual = run_both(reference_backend, lava_backend, graph, inputs, 5)
    assert actual.offsets == {"if0": 1, "if1": 2, "readout": 3}  # one step per Dense
    assert lava_backend.last_steps == 3 * 5 + 3  # batch * T + pipeline depth
    assert_identical(graph, expected, actual)


@pytest.mark.lava
def test_each_sample_starts_from_reset_state(lava_backend) -> None:
    graph = random_chain(3, (3, 5, 2), timesteps=6)
    strong, weak = np.full((1, 3), 255), np.array([[0, 9, 1]])
    pair = lava_backend.run(graph, np.concatenate([strong, weak]), 6, record=Record.ALL)
    alone = lava_backend.run(graph, weak, 6, record=Record.ALL)
    assert np.count_nonzero(pair.spikes["if0"][:, 0]) > 0  # the first sample leaves state
    for kind in ("spikes", "membranes"):
        for name, value in getattr(alone, kind).items():
            assert np.array_equal(getattr(pair, kind)[name][:, 1], value[:, 0]), (kind, name)
    assert np.array_equal(pair.outputs[1], alone.outputs[0])


@pytest.mark.lava
def test_corrupted_threshold_diverges_in_that_population_first(reference_backend,
                                                               lava_backend) -> None:
    graph = random_chain(4, (4, 5, 5, 3), timesteps=8)
    inputs = np.random.default_rng(5).integers(100, 256, (2, 4))
    expected = reference_backend.run(graph, inputs, 8, record=Record.ALL)
    assert np.count_nonzero(expected.spikes["if1"]) > 0  # theta matters only if it fires

    meta = population_meta(graph, "if1")
    corrupted = with_record(graph, "if1", meta.replace(theta=meta.theta + 1))
    actual = lava_backend.run(corrupted, inputs, 8, record=Record.ALL)

    divergence = compare(graph, expected, actual).divergence
    assert divergence is not None and divergence.population == "if1"
    assert np.array_equal(expected.spikes["if0"], actual.spikes["if0"])


@pytest.mark.lava
@pytest.mark.parametrize("record", [Record.OUTPUT, Record.SPIKES])
def test_record_modes(reference_backend, lava_backend, record: Record) -> None:
    graph = random_chain(6, (3, 4, 2), timesteps=3)
    inputs = np.random.default_rng(7).integers(0, 256, (2, 3))
    expected, actual = run_both(reference_backend, lava_backend, graph, inputs, 3, record)
    assert actual.membranes == {}
    assert actual.spikes.keys() == ({"if0"} if record is Record.SPIKES else set())
    assert_identical(graph, expected, actual)
    assert lava_backend.last_setup_seconds > 0 and lava_backend.last_run_seconds > 0


@pytest.mark.lava
def test_currents_are_recorded_by_the_reference_only(lava_backend) -> None:
    """A population's synaptic input is not observable on Lava: asking for it fails by name
    instead of returning an empty record."""
    graph = random_chain(6, (3, 4, 2), timesteps=3)
    with pytest.raises(InputError, match="synaptic currents"):
        lava_backend.run(graph, np.zeros((1, 3), np.int64), 3, record=Record.CURRENTS)


@pytest.mark.lava
def test_compiled_networks_match_reference(reference_backend, lava_backend, mlp_graph,
                                           cnn_graph) -> None:
    for graph in (mlp_graph, cnn_graph):
        shape = tuple(graph.nodes["input"].input_type["input"])
        inputs = np.random.default_rng(8).integers(0, 256, (2, *shape))
        expected, actual = run_both(reference_backend, lava_backend, graph, inputs, 6)
        assert_identical(graph, expected, actual)


@pytest.mark.lava
def test_leak_hard_reset_and_input_shift_match_reference(reference_backend,
                                                          lava_backend) -> None:
    """The rule's parameters for imported networks (per-neuron leak, hard reset, a leaky
    readout) and the input shift all reach the Lava process: each changes the reference
    trace, and Lava still matches it bit for bit."""
    rng = np.random.default_rng(11)
    leaky = if_params(theta=np.full(5, 300), bias=rng.integers(-20, 20, 5), v_init=0,
                      theta_neg=0, decay=rng.integers(0, 1500, 5), input_shift=2)
    leaky = leaky.replace(reset="zero")
    readout = dataclasses.replace(READOUT, decay=np.array(200))
    layers = [(rng.integers(-40, 100, (5, 3)).astype(np.float64), leaky),
              (rng.integers(-60, 60, (2, 5)).astype(np.float64), readout)]
    graph = chain(layers, timesteps=7)
    inputs = rng.integers(0, 256, (3, 3))
    expected, actual = run_both(reference_backend, lava_backend, graph, inputs, 7)
    assert_identical(graph, expected, actual)
    for change in ({"decay": np.array(0)}, {"reset": "subtract"}, {"input_shift": 0}):
        plain = chain([(layers[0][0], dataclasses.replace(leaky, **change)), layers[1]], 7)
        other = reference_backend.run(plain, inputs, 7, record=Record.ALL)
        assert not np.array_equal(other.membranes["if0"], expected.membranes["if0"]), change


def test_unsupported_node_is_named(lava_backend) -> None:
    graph = chain([(np.ones((2, 2)), READOUT)], timesteps=2)
    nodes = dict(graph.nodes)
    nodes["fc0"] = nir.Affine(weight=np.ones((2, 2)), bias=np.ones(2))
    graph = nir.NIRGraph(nodes, list(graph.edges), metadata=graph.metadata, type_check=False)
    with pytest.raises(NeurodeployError, match="fc0.*Affine"):
        lava_backend.run(graph, np.zeros((1, 2), np.int64), 2)


def test_weight_beyond_dense_mantissa_is_refused(lava_backend) -> None:
    graph = chain([(np.full((1, 2), 200.0), READOUT)], timesteps=2)
    with pytest.raises(NeurodeployError, match="fc0.*Dense weight"):
        lava_backend.run(graph, np.zeros((1, 2), np.int64), 2)


def test_a_synaptic_sum_past_lava_s_messages_is_refused(lava_backend) -> None:
    """A network compiled for reference (28-bit sums) ran on Lava with its 24-bit messages
    wrapped: 1536 spike events where the reference had 2304, exit 0."""
    graph = chain([(np.full((1, 300), 127.0), READOUT)], timesteps=2)
    lava_backend.run(graph, np.zeros((1, 300), np.int64), 2)
    graph.metadata["neurodeploy"]["target"] = "reference"
    graph.metadata["neurodeploy"]["notes"] = {"check_overflow": {
        "max_abs_synaptic_sum": 127 * 255 * 300}}  # as compile records it
    with pytest.raises(TargetLimitExceeded, match=r"^reference: largest synaptic sum per step "
                                                  r"is 9715500, the target allows 8388607\. "
                                                  r"Lava's messages hold 24 bits"):
        lava_backend.run(graph, np.zeros((1, 300), np.int64), 2)


def test_unquantized_graph_is_refused(lava_backend) -> None:
    graph = chain([(np.ones((1, 2)), READOUT)], timesteps=2)
    graph.metadata["neurodeploy"]["quantized"] = False
    with pytest.raises(MetadataError, match="not quantized"):
        lava_backend.run(graph, np.zeros((1, 2), np.int64), 2)


def test_missing_lava_gives_backend_unavailable(monkeypatch) -> None:
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))  # the shim re-registers
    for name in [m for m in sys.modules
                 if m == "lava" or m.startswith(("lava.", "neurodeploy.backends.lava"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "lava", None)  # makes `import lava` fail
    with pytest.raises(BackendUnavailable, match="lava"):
        get_backend("lava")


def test_short_bias_table_is_refused(lava_backend) -> None:
    """Before any Lava process starts: an exception inside one hangs lava-nc 0.10."""
    meta = if_params(theta=3, bias=0, v_init=0, theta_neg=0, max_burst=1, dual=False)
    meta = dataclasses.replace(meta, bias_table=np.zeros((2, 1), np.int64))
    graph = chain([(np.ones((1, 1)), meta), (np.ones((1, 1)), READOUT)], timesteps=3)
    with pytest.raises(InputError, match="^the network has per-step bias tables .FTBC. for 2 "
                                         "steps; it cannot run 3"):
        lava_backend.run(graph, np.zeros((1, 1), np.int64), 3)


def delayed_merge(delay: int | None) -> nir.NIRGraph:
    """Input -> fc0 -> if0 -> fc1 -> if1 -> fc2 -> merge <- fc_short <- [Delay] <- if0;
    merge -> fc_out -> readout."""
    builder = NetBuilder(np.random.default_rng(0), 4)
    src = builder.input((2,))
    fc0 = builder.add("fc0", nir.Linear(weight=np.array([[3.0, 1.0], [1.0, 2.0]])), [src], (2,))
    if0 = builder.population("if0", [fc0], if_params(theta=4, v_init=2))
    fc1 = builder.add("fc1", nir.Linear(weight=np.array([[2.0, -1.0], [1.0, 1.0]])), [if0],
                      (2,))
    if1 = builder.population("if1", [fc1], if_params(theta=2, v_init=1))
    fc2 = builder.add("fc2", nir.Linear(weight=np.array([[1.0, 2.0], [-1.0, 1.0]])), [if1],
                      (2,))
    short = builder.delay("delay", if0, delay) if delay else if0
    fc_short = builder.add("fc_short", nir.Linear(weight=np.eye(2) * 3), [short], (2,))
    merge = builder.population("merge", [fc2, fc_short], if_params(theta=5, v_init=2))
    fc_out = builder.add("fc_out", nir.Linear(weight=np.ones((1, 2))), [merge], (1,))
    readout = builder.population("readout", [fc_out], READOUT)
    return builder.graph(readout, 24)


def test_delay_aligns_a_residual_merge(reference_backend, lava_backend) -> None:
    graph = delayed_merge(1)
    inputs = np.array([[3, 5], [7, 0], [1, 9]])
    expected, actual = run_both(reference_backend, lava_backend, graph, inputs, 4)
    assert_identical(graph, expected, actual)
    assert actual.offsets == {"if0": 1, "if1": 2, "merge": 3, "readout": 4}
    assert expected.spikes["merge"].any()


def test_unaligned_merge_is_refused_with_a_hint(lava_backend) -> None:
    with pytest.raises(MetadataError, match="^merge: paths into this node arrive at different "
                                            "steps on Lava.*recompile it for a pipelined"):
        lava_backend.run(delayed_merge(None), np.array([[3, 5]]), 4)
