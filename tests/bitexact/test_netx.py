"""lava-dl netx: an exported network (dense, or conv + flatten + dense) loads in
``lava.lib.dl.netx.hdf5.Network`` and runs; where the neuron semantics coincide (reset to
zero, v_init 0, no leak) it matches the reference simulator bit for bit."""

from __future__ import annotations

import nir
import numpy as np
import pytest
from click.testing import CliRunner

from neurodeploy import api
from neurodeploy.backends import Record
from neurodeploy.cli import main
from neurodeploy.interop.netx_run import run_netx

T = 8


def imported(hidden: nir.NIRNode, seed: int = 0) -> nir.NIRGraph:
    """input (16,) -> affine -> hidden (12) -> affine -> integrator (5), imported for
    loihi2."""
    rng = np.random.default_rng(seed)
    foreign = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([16])),
        nir.Affine(weight=rng.normal(0.3, 1.0, (12, 16)), bias=rng.normal(0, 0.3, 12)),
        hidden, nir.Affine(weight=rng.normal(0.2, 1.0, (5, 12)), bias=np.zeros(5)),
        nir.I(r=np.ones(5)), nir.Output(output_type=np.array([5])))
    return api.import_nir(foreign, target="loihi2", dt=1e-3, timesteps=T).graph


def imported_conv(seed: int = 0) -> nir.NIRGraph:
    """input (1, 6, 6) -> strided conv -> IF (3, 3, 3) -> flatten -> affine -> integrator."""
    rng = np.random.default_rng(seed)
    shape = (3, 3, 3)
    foreign = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([1, 6, 6])),
        nir.Conv2d(input_shape=(6, 6), weight=rng.normal(0.3, 1.0, (3, 1, 3, 3)), stride=2,
                   padding=1, dilation=1, groups=1, bias=np.full(3, 0.2)),
        nir.IF(r=np.full(shape, 1000.0), v_threshold=np.full(shape, 1.5),
               v_reset=np.zeros(shape)),
        nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0),
        nir.Affine(weight=rng.normal(0.2, 1.0, (5, 27)), bias=np.zeros(5)),
        nir.I(r=np.ones(5)), nir.Output(output_type=np.array([5])))
    return api.import_nir(foreign, target="loihi2", dt=1e-3, timesteps=T).graph


@pytest.mark.lava
@pytest.mark.parametrize("kind", ["if", "lif", "conv"])
def test_netx_run_matches_reference(tmp_path, kind):
    n = 12
    leak = kind == "lif"
    if kind == "conv":
        graph = imported_conv()
    elif leak:
        graph = imported(nir.LIF(tau=np.full(n, 1e-2), r=np.full(n, 10.0), v_leak=np.zeros(n),
                                 v_threshold=np.full(n, 1.5), v_reset=np.zeros(n)))
    else:
        graph = imported(nir.IF(r=np.full(n, 1000.0), v_threshold=np.full(n, 1.5),
                                v_reset=np.zeros(n)))
    network = tmp_path / "net.nir"
    api.save(graph, network)
    result = CliRunner().invoke(main, ["export", str(network), "--flavor", "netx", "-o",
                                       str(tmp_path / "net.net")])
    assert result.exit_code == 0, result.output
    assert ("leak" in result.stderr) == leak and "reset by subtraction" not in result.stderr
    shape = tuple(graph.nodes["input"].input_type["input"])
    x = np.random.default_rng(4).integers(0, 256, (6, *shape))
    ours = api.simulate(graph, x, T, record=Record.ALL)
    theirs = run_netx(tmp_path / "net.net", x, T)
    (spikes,) = ours.spikes.values()
    assert spikes.shape == theirs.spikes[0].shape and 50 < int(spikes.sum())
    if leak:  # LIF decays on a 64x finer grid: close, not exact
        assert (theirs.spikes[0] == spikes).mean() > 0.95
    else:
        assert np.array_equal(theirs.spikes[0], spikes)
        assert np.array_equal(theirs.outputs, ours.outputs)
