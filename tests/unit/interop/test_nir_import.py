"""NIR import: hand-built graphs of every supported node kind against a float NIR simulator
(tests/nirsim.py), the approximations reported, and clear refusals."""

from __future__ import annotations

import h5py
import nir
import numpy as np
import pytest

from neurodeploy import api
from neurodeploy.backends import Record
from neurodeploy.core.graph import topological_order
from neurodeploy.core.meta import population_meta
from neurodeploy.core.neuron import DECAY_ONE
from neurodeploy.errors import (
    InputError,
    MetadataError,
    NeurodeployError,
    UnsupportedLayer,
    WeightsLost,
)
from neurodeploy.interop.nir_import import import_graph
from tests import nirsim
from tests.nir_paper import NETS

T = 12
DT = 1e-3


def lif(n: int, tau: float = 5e-3, threshold: float = 1.0, **extra) -> nir.LIF:
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, 1.0 + extra.pop("r_extra", 0.0)),
                   v_leak=np.full(n, extra.pop("v_leak", 0.0)),
                   v_threshold=np.full(n, threshold), v_reset=np.zeros(n))


def mlp(hidden: nir.NIRNode, out: nir.NIRNode, seed: int = 0) -> nir.NIRGraph:
    """input (1, 4, 4) -> flatten -> affine -> hidden -> linear -> out -> output."""
    rng = np.random.default_rng(seed)
    n = hidden.v_threshold.shape[0] if hasattr(hidden, "v_threshold") else 12
    return nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([1, 4, 4])), nir.Flatten(
            input_type={"input": np.array([1, 4, 4])}, start_dim=0),
        nir.Affine(weight=rng.normal(0, 2.5, (n, 16)), bias=rng.normal(0.5, 0.5, n)),
        hidden, nir.Linear(weight=rng.normal(0.3, 1.5, (5, n))), out,
        nir.Output(output_type=np.array([5])))


def images(n: int = 40, shape=(1, 4, 4), seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *shape)).astype(np.float32)


def compare(foreign: nir.NIRGraph, x: np.ndarray, *, subtract: bool = False, target="reference"):
    """Run the oracle and the imported network: (fraction of equal spikes over all spiking
    populations, fraction of equal predictions, number of oracle spikes)."""
    expected = nirsim.simulate(foreign, x.astype(np.float64), T, DT, subtract=subtract)
    result = api.import_nir(foreign, target=target, dt=DT, timesteps=T,
                            reset="subtract" if subtract else "zero", allow_saturation=True)
    trace = api.simulate(result.graph, x, T, record=Record.ALL)
    equal, total, spikes = 0, 0, 0
    for name, ours in trace.spikes.items():
        theirs = expected[name].reshape(ours.shape)
        equal += int((ours == theirs).sum())
        total += ours.size
        spikes += int(theirs.sum())
    last = [n for n in topological_order(foreign) if n in expected][-2]  # before the output
    scores = expected[last].sum(0) if last in trace.spikes else expected[last][-1]
    same = float((trace.outputs.argmax(1) == scores.argmax(1)).mean())
    return equal / total, same, spikes


@pytest.mark.parametrize("subtract", [False, True])
def test_lif_network_matches_float_nir(subtract):
    foreign = mlp(lif(12, v_leak=0.2), lif(5, tau=8e-3, threshold=0.8))
    spikes, predictions, active = compare(foreign, images(), subtract=subtract)
    assert active > 200
    assert spikes > 0.97 and predictions > 0.9


def test_if_threshold_and_leaky_readout_match_float_nir():
    n = 12
    hidden = nir.IF(r=np.full(n, 50.0), v_threshold=np.full(n, 0.6), v_reset=np.zeros(n))
    foreign = mlp(hidden, nir.LI(tau=np.full(5, 4e-3), r=np.ones(5), v_leak=np.zeros(5)))
    spikes, predictions, active = compare(foreign, images())
    assert active > 100 and spikes > 0.97 and predictions > 0.9
    threshold = mlp(nir.Threshold(threshold=np.full(n, 0.9)), nir.I(r=np.ones(5)))
    spikes, predictions, active = compare(threshold, images())
    assert active > 100 and spikes > 0.97 and predictions > 0.9


def test_conv_pool_scale_network_matches_float_nir():
    rng = np.random.default_rng(3)
    conv = nir.Conv2d(input_shape=(6, 6), weight=rng.normal(0.2, 1.5, (3, 1, 3, 3)),
                      stride=1, padding=1, dilation=1, groups=1, bias=np.full(3, 0.3))
    foreign = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([1, 6, 6])), conv,
        nir.Scale(scale=np.full((3, 6, 6), 1.5)), nir.LIF(
            tau=np.full((3, 6, 6), 6e-3), r=np.ones((3, 6, 6)), v_leak=np.zeros((3, 6, 6)),
            v_threshold=np.ones((3, 6, 6)), v_reset=np.zeros((3, 6, 6))),
        nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                      padding=np.array([0, 0])),
        nir.Conv2d(input_shape=(3, 3), weight=rng.normal(0.3, 1.0, (4, 3, 3, 3)), stride=1,
                   padding=1, dilation=1, groups=1, bias=np.zeros(4)),
        nir.IF(r=np.full((4, 3, 3), 20.0), v_threshold=np.full((4, 3, 3), 0.5)),
        nir.SumPool2d(kernel_size=np.array([3, 3]), stride=np.array([3, 3]),
                      padding=np.array([0, 0])),
        nir.Flatten(input_type={"input": np.array([4, 1, 1])}, start_dim=0),
        nir.Linear(weight=rng.normal(0.2, 1.0, (5, 4))),
        nir.LI(tau=np.full(5, 4e-3), r=np.ones(5), v_leak=np.zeros(5)),
        nir.Output(output_type=np.array([5])))
    spikes, predictions, active = compare(foreign, images(shape=(1, 6, 6)))
    assert active > 100 and spikes > 0.97 and predictions > 0.85


@pytest.mark.parametrize("tau_syn", [2e-3, 3e-3])
def test_cuba_lif_filter_matches_float_nir(tau_syn):
    """The synaptic filter is the rule's current filter: exact at dt/tau_syn = 1/2, rounded
    to 1/4096 (and listed) at 1/3."""
    n = 12
    cuba = nir.CubaLIF(tau_syn=np.full(n, tau_syn), tau_mem=np.full(n, 5e-3), r=np.ones(n),
                       v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n),
                       w_in=np.full(n, 2.0))
    foreign = mlp(cuba, nir.I(r=np.ones(5)))
    _, rows = import_graph(foreign, dt=DT, reset="zero", timesteps=T)
    filtered = [("cubalif", "synaptic filter dt/tau_syn")] if tau_syn == 3e-3 else []
    assert [(r.node, r.what) for r in rows] == [("cubalif", "leak dt/tau"), *filtered]
    spikes, predictions, active = compare(foreign, images())
    assert active > 100 and spikes > 0.97 and predictions > 0.9


def test_leak_that_fits_12_bits_is_exact():
    foreign = mlp(lif(12, tau=4e-3), nir.I(r=np.ones(5)))  # dt/tau = 1/4: exact in 1/4096
    _, rows = import_graph(foreign, dt=DT, reset="zero", timesteps=T)
    assert rows == []


@pytest.mark.parametrize("dt", [1e-4, 0.7])
def test_a_time_constant_of_dt_stored_as_float32_is_no_decay(dt):
    """float32(dt) is a little below dt for these: dt/tau came out above 1 and was refused."""
    tau = np.float32(dt)
    assert dt / np.float64(tau) > 1
    foreign = mlp(lif(12, tau=tau), nir.I(r=np.ones(5)))
    graph, rows = import_graph(foreign, dt=dt, reset="zero", timesteps=T)
    assert rows == []
    assert np.all(population_meta(graph, "lif").decay == DECAY_ONE)


def test_an_input_of_no_values_is_refused_by_name():
    """An internal IndexError before."""
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(np.array([0])), "fc": nir.Linear(weight=np.zeros((5, 0))),
        "lif": nir.IF(r=np.ones(5), v_threshold=np.ones(5), v_reset=np.zeros(5)),
        "output": nir.Output(np.array([5]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])
    with pytest.raises(MetadataError, match=r"^input: the input has no values \(shape \(0,\)"):
        import_graph(graph, dt=DT, reset="zero", timesteps=T)


def test_subtract_reset_is_listed():
    _, rows = import_graph(mlp(lif(12, tau=4e-3), nir.I(r=np.ones(5))), dt=DT,
                           reset="subtract", timesteps=T)
    assert [(r.node, r.what) for r in rows] == [("lif", "reset")]


def test_imported_network_runs_on_lava_targets(tmp_path):
    """Loihi targets: quantized, written, read back; the approximation rows include the
    passes' rounding."""
    foreign = mlp(lif(12, v_leak=0.2), lif(5, tau=8e-3, threshold=0.8))
    nir.write(tmp_path / "foreign.nir", foreign)
    result = api.import_nir(tmp_path / "foreign.nir", target="loihi", dt=DT, timesteps=T)
    api.save(result.graph, tmp_path / "ours.nir")
    assert {r.what for r in result.approximations} >= {"leak dt/tau", "weights"}
    assert np.array_equal(api.load(tmp_path / "ours.nir").simulate(images(), T).outputs,
                          api.simulate(result.graph, images(), T).outputs)


@pytest.mark.parametrize(("change", "message"), [
    ({"dt": 0.0}, "dt must be positive"),
    ({"dt": 1.0}, "forward Euler is unstable"),
    ({"reset": "never"}, "reset must be one of"),
])
def test_bad_arguments(change, message):
    args = {"dt": DT, "reset": "zero", "timesteps": T, **change}
    with pytest.raises(NeurodeployError, match=message):
        import_graph(mlp(lif(12), nir.I(r=np.ones(5))), **args)


def test_weights_that_are_not_finite_are_named_as_the_file_s():
    """They were blamed on dt ("--dt makes the weights overflow")."""
    graph = mlp(lif(12), nir.I(r=np.ones(5)))
    weight = np.array(graph.nodes["affine"].weight, np.float64)
    weight[0, 0] = np.nan
    graph.nodes["affine"] = nir.Affine(weight=weight, bias=graph.nodes["affine"].bias)
    with pytest.raises(InputError, match="^affine: the file's weight holds values that are "
                                         "not finite"):
        import_graph(graph, dt=DT, reset="zero", timesteps=T)


def test_a_bias_of_another_size_than_the_outputs_is_refused():
    """A bias of 3 values on an Affine of 12 outputs ended as numpy's broadcast error
    (exit 3)."""
    graph = mlp(lif(12), nir.I(r=np.ones(5)))
    graph.nodes["affine"] = nir.Affine(weight=graph.nodes["affine"].weight, bias=np.zeros(3))
    with pytest.raises(MetadataError, match="^affine: bias of 3 values does not fit 12 outputs"):
        import_graph(graph, dt=DT, reset="zero", timesteps=T)


@pytest.mark.parametrize(("hidden", "message"), [
    (nir.LIF(tau=np.full(12, np.nan), r=np.ones(12), v_leak=np.zeros(12),
             v_threshold=np.ones(12), v_reset=np.zeros(12)), "'tau' holds NaN"),
    (lif(12, threshold=np.inf), "'v_threshold' holds NaN or infinite values"),
    (nir.IF(r=np.full(12, np.nan), v_threshold=np.ones(12), v_reset=np.zeros(12)),
     "'r' holds NaN"),
])
def test_parameters_that_are_not_finite_are_named(hidden, message):
    """A NaN tau was reported as "'bias' holds NaN or infinite values", a field the file
    does not have, and without the node."""
    with pytest.raises(MetadataError, match=f"^{type(hidden).__name__.lower()}: {message}"):
        import_graph(mlp(hidden, nir.I(r=np.ones(5))), dt=DT, reset="zero", timesteps=T)


def test_a_threshold_no_shift_of_the_sums_reaches_is_refused_by_population():
    """v_threshold 1e30 said "'input_shift' is 100, it must be in 0..31", a field the user
    never set."""
    with pytest.raises(InputError, match=r"^lif: its threshold is [0-9.e+]+ times its largest "
                                         r"weight: beyond a 17-bit threshold even with the "
                                         r"synaptic sums shifted by 31 bits\. Check"):
        api.import_nir(mlp(lif(12, threshold=1e30), nir.I(r=np.ones(5))), dt=DT, timesteps=T)


def test_refusals_name_the_node():
    n = 12
    nonzero_reset = nir.LIF(tau=np.full(n, 5e-3), r=np.ones(n), v_leak=np.zeros(n),
                            v_threshold=np.ones(n), v_reset=np.full(n, 0.1))
    with pytest.raises(UnsupportedLayer, match="lif: v_reset other than 0"):
        import_graph(mlp(nonzero_reset, nir.I(r=np.ones(5))), dt=DT, reset="zero",
                     timesteps=T)
    delayed = nir.NIRGraph.from_list(nir.Input(input_type=np.array([3])),
                                     nir.Delay(delay=np.ones(3)),
                                     nir.Output(output_type=np.array([3])))
    with pytest.raises(UnsupportedLayer, match="delay: nir.Delay cannot be imported"):
        import_graph(delayed, dt=DT, reset="zero", timesteps=T)
    recurrent = mlp(lif(12), nir.I(r=np.ones(5)))
    recurrent.edges.append(("lif", "affine"))  # a cycle closed into a synapse, not a neuron
    with pytest.raises(UnsupportedLayer, match="affine: a recurrent edge from 'lif' must end "
                                               "at a neuron"):
        import_graph(recurrent, dt=DT, reset="zero", timesteps=T)


def test_a_synapse_whose_weights_all_round_to_zero_is_refused_by_name():
    """Braille's input synapse shares its population's exponent with the recurrent one: read
    as values in [0, 1] (one input step 1/255) every weight rounds to zero, as event counts
    none does."""
    braille = NETS["braille"]
    with pytest.raises(WeightsLost, match=r"^fc1: every weight rounds to zero on loihi2: it "
                                          r"shares .* with lif1\.w_rec.*events=True"):
        api.import_nir(braille.path, dt=braille.dt, timesteps=T)
    deployed = api.import_nir(braille.path, dt=braille.dt, timesteps=T, events=True).graph
    assert np.any(deployed.nodes["fc1"].weight)


@pytest.mark.parametrize("dt, exponent", [(1e300, "983"), (1e-300, "-1010")])
def test_weights_beyond_any_exponent_are_refused_by_population(dt, exponent):
    """An absurd dt scales the weights out of the record's exponent range: one line naming
    the population and the scale, not the record's internal field."""
    sinabs = NETS["cnn_sinabs"]
    with pytest.raises(InputError, match=rf"^1: its synapses' weights need an exponent of "
                                         rf"{exponent}, beyond -64\.\.64.*its dt\)$"):
        api.import_nir(sinabs.path, dt=dt, timesteps=T, allow_saturation=True)


def test_unreadable_files(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        api.import_nir(tmp_path / "missing.nir", dt=DT)
    (tmp_path / "text.nir").write_text("not hdf5")
    with pytest.raises(MetadataError, match="not a NIR file"):
        api.import_nir(tmp_path / "text.nir", dt=DT)
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(MetadataError, match="not a NIR file \\(an HDF5 file without a NIR "):
        api.import_nir(tmp_path / "plain.h5", dt=DT)


def test_a_network_neurodeploy_compiled_is_not_imported_again(mlp_graph, tmp_path):
    """Its records are not NIR: imported, it evaluated at 7% where it scores 96%."""
    api.save(mlp_graph, tmp_path / "net.nir")
    with pytest.raises(InputError, match="was compiled by neurodeploy; it runs as it is"):
        api.import_nir(tmp_path / "net.nir", dt=DT)
