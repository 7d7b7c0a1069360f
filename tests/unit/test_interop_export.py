"""Exports: plain NIR (lossless where NIR can say it, with warnings for the rest, checked with
an independent float NIR simulator and by importing it back) and lava-dl netx (refusals and
warnings here; runs in lava-dl in tests/bitexact/test_netx.py)."""

from __future__ import annotations

import nir
import numpy as np
import pytest
from click.testing import CliRunner

from neurodeploy import api
from neurodeploy.backends import Record
from neurodeploy.cli import main
from neurodeploy.convert import ConvertOptions
from neurodeploy.core.meta import KEY
from neurodeploy.errors import UnsupportedLayer
from neurodeploy.interop.netx import netx_chain, to_netx
from neurodeploy.interop.standard import to_standard
from tests import nirsim
from tests.conftest import images, random_cnn, random_mlp

T = 6


def compiled(ann, **options):
    return api.compile(ann, target="loihi2", calib=images(ann.input_shape), timesteps=T,
                       options=ConvertOptions(**options), method="p99.99").graph


@pytest.mark.parametrize("ann", [random_mlp(), random_cnn()], ids=["mlp", "cnn"])
def test_standard_export_is_exact_where_nir_can_express_it(ann):
    """v_init = 0: the only loss is the reset, which a consumer told to subtract recovers
    exactly (float NIR simulation), and which import --reset subtract restores bit for bit."""
    graph = compiled(ann, v_init_ratio=0.0)
    plain, warnings = to_standard(graph)
    assert [w.split(" (")[0] for w in warnings] == ["reset by subtraction"]
    assert all(KEY not in node.metadata for node in plain.nodes.values())
    x = images(ann.input_shape, n=24, seed=5)
    ours = api.simulate(graph, x, T, record=Record.ALL)
    pixels = api.quantize_inputs(graph, x) / 255.0  # what the integer network sees
    theirs = nirsim.simulate(plain, pixels, T, dt=1.0, subtract=True)
    for name, spikes in ours.spikes.items():
        assert np.array_equal(theirs[name], spikes), name
    assert np.allclose(theirs["readout"][-1], ours.logits * T)
    back = api.import_nir(plain, target="loihi2", dt=1.0, timesteps=T, reset="subtract")
    again = api.simulate(back.graph, x, T, record=Record.ALL)
    assert np.array_equal(again.outputs, ours.outputs)
    for name, spikes in ours.spikes.items():
        assert np.array_equal(again.spikes[name], spikes), name


def test_standard_export_warns_about_what_nir_cannot_say():
    graph = compiled(random_mlp(), dual=True, max_burst=2)
    _, warnings = to_standard(graph)
    assert [w.split(" (")[0] for w in warnings] == [
        "reset by subtraction", "v_init", "negative spikes", "bursts"]
    assert all("relu0" in w for w in warnings)


def test_netx_refuses_what_lif_cannot_express(tmp_path):
    with pytest.raises(UnsupportedLayer, match="relu0: netx LIF neurons cannot express "
                                               "per-channel thresholds"):
        to_netx(compiled(random_mlp()), tmp_path / "x.net")
    with pytest.raises(UnsupportedLayer, match="negative spikes"):
        to_netx(compiled(random_mlp(), dual=True, per_channel=False), tmp_path / "x.net")
    with pytest.raises(UnsupportedLayer, match="pool1: netx export supports Linear and Conv2d "
                                               "blocks .lava-dl 0.6 netx has no pooling"):
        netx_chain(compiled(random_cnn(), per_channel=False))
    assert not list(tmp_path.iterdir())


def test_netx_warns_about_reset_v_init_and_lif_range(tmp_path):
    """The first layer integrates 8-bit inputs: its worst-case membrane and current exceed
    what LIF holds at 6 fractional bits, which is said too."""
    warnings = to_netx(compiled(random_mlp(), per_channel=False), tmp_path / "x.net")
    assert {w.split(" (")[0] for w in warnings} == {
        "reset by subtraction", "v_init", "membrane may saturate", "synaptic current may wrap"}


def test_export_cli(tmp_path):
    network = tmp_path / "mlp.nir"
    api.save(compiled(random_mlp()), network)
    result = CliRunner().invoke(main, ["export", str(network), "--flavor", "standard"])
    assert result.exit_code == 0, result.output
    assert "warning: reset by subtraction (relu0, relu1)" in result.stderr
    assert isinstance(nir.read(tmp_path / "mlp.standard.nir"), nir.NIRGraph)
    result = CliRunner().invoke(main, ["export", str(network), "--flavor", "netx"])
    assert result.exit_code == 2 and "per-channel thresholds" in result.stderr
    assert not (tmp_path / "mlp.net").exists()
