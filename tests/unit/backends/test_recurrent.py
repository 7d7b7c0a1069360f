"""Recurrent graphs: which edges are recurrent and how late they deliver, the float NIR
simulation against the imported network, and the parts that walk a graph (capacity, files,
plain NIR export) on cycles."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from neurodeploy import api
from neurodeploy.backends import Record
from neurodeploy.capacity import fan_in
from neurodeploy.core.graph import back_edges, cycles, recurrent_delays, topological_order
from neurodeploy.errors import InputError, MetadataError
from neurodeploy.interop.standard import to_standard
from tests import foreign, nirsim
from tests.nir_paper import NETS

T = 16


def imported(feedback: bool = False, target: str = "loihi2") -> nir.NIRGraph:
    return api.import_nir(foreign.recurrent_net(feedback=feedback), target=target,
                          dt=foreign.DT, timesteps=T, events=True).graph


@pytest.mark.parametrize("feedback", [False, True])
def test_recurrent_edges_and_their_delays(feedback):
    graph = imported(feedback)
    assert back_edges(graph) == {("rec", "lif1")}
    assert recurrent_delays(graph) == {("rec", "lif1"): 2 if feedback else 1}
    body = ["lif1", "fc2", "lif2", "rec"] if feedback else ["lif1", "rec"]
    assert cycles(graph) == [body]
    order = topological_order(graph)
    assert order.index("input") < order.index("lif1") < order.index("rec")


@pytest.mark.parametrize("feedback", [False, True])
def test_a_cycle_longer_than_nir_s_one_step_is_an_approximation(feedback):
    rows = api.import_nir(foreign.recurrent_net(feedback=feedback), target="loihi2",
                          dt=foreign.DT, timesteps=T, events=True).approximations
    late = [(r.node, r.what, r.deployed) for r in rows if r.what.startswith("recurrent")]
    assert late == ([("lif1", "recurrent edge from rec", "2 steps later")] if feedback else [])


def test_a_cycle_must_close_at_a_population_through_a_synapse():
    graph = imported()
    into_synapse = nir.NIRGraph(graph.nodes, [*graph.edges, ("rec", "rec")])
    with pytest.raises(MetadataError, match="rec: a recurrent edge from 'rec' must end at"):
        recurrent_delays(into_synapse)
    instant = nir.NIRGraph(graph.nodes, [*graph.edges, ("lif1", "lif1")])
    with pytest.raises(MetadataError, match="cycle through 'lif1' has no synapse layer"):
        recurrent_delays(instant)


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_recurrent_network_matches_float_nir(reset):
    """A recurrent edge carries the previous step's spikes in both: the float simulation of
    the file and the imported integer network agree spike for spike, nearly everywhere."""
    graph = api.import_nir(foreign.recurrent_net(), target="reference", dt=foreign.DT,
                           timesteps=T, events=True, reset=reset).graph
    x = foreign.event_streams(16, T, (6,), 0.4)
    expected = nirsim.simulate(foreign.recurrent_net(), x.astype(np.float64), T, foreign.DT,
                               subtract=reset == "subtract")
    trace = api.simulate(graph, x, T, record=Record.ALL)
    assert expected["lif1"].sum() > 200
    for name in ("lif1", "lif2"):  # measured: zero 0.98 and 0.97, subtract 0.96 and 0.94
        least = 0.95 if reset == "zero" else 0.9
        assert (trace.spikes[name] == expected[name]).mean() > least, name


def test_fan_in_counts_the_recurrent_synapses():
    graph = imported()
    counts = fan_in(graph)["lif1"]
    expected = sum((graph.nodes[s].weight != 0).sum(axis=1) for s in ("fc1", "rec"))
    assert np.array_equal(counts, expected) and counts.max() > 6


def test_recurrent_network_survives_a_file_round_trip(tmp_path):
    graph = imported(feedback=True)
    api.save(graph, tmp_path / "rec.nir")
    back = api.load(tmp_path / "rec.nir").graph
    assert back_edges(back) == back_edges(graph)
    x = foreign.event_streams(3, T, (6,), 0.4)
    ours, again = (api.simulate(g, x, T, record=Record.SPIKES) for g in (graph, back))
    for name, spikes in ours.spikes.items():
        assert np.array_equal(again.spikes[name], spikes), name


def test_plain_export_writes_the_cycle_and_imports_back_bit_for_bit():
    """The Braille network (CubaLIF, recurrent): plain NIR keeps the recurrent edge and the
    synaptic filter (dt = 1), and importing the export gives the same integer network."""
    net = NETS["braille"]
    graph = api.import_nir(net.path, target="loihi2", dt=net.dt, timesteps=T,
                           events=True).graph
    plain, warnings = to_standard(graph)
    assert warnings == [] and back_edges(plain) == {("lif1.w_rec", "lif1.lif")}
    assert isinstance(plain.nodes["lif1.lif"], nir.CubaLIF)
    back = api.import_nir(plain, target="loihi2", dt=1.0, timesteps=T, events=True).graph
    x = net.inputs(4, T)
    ours, again = (api.simulate(g, x, T, record=Record.SPIKES) for g in (graph, back))
    assert np.array_equal(again.outputs, ours.outputs)
    for name, spikes in ours.spikes.items():
        assert np.array_equal(again.spikes[name], spikes), name


def test_report_refuses_what_its_static_rate_reference_cannot_model():
    deployment = api.import_nir(foreign.recurrent_net(), target="loihi2", dt=foreign.DT,
                                timesteps=T, events=True)
    x = foreign.event_streams(2, T, (6,), 0.4)
    with pytest.raises(InputError, match="no recurrent edges and no input streams"):
        deployment.report(x, np.array([0, 1]), show_progress=False)
