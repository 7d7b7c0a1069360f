"""The default pipeline, and ``quantize``: a float SNN graph -> the integer graph for a target."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nir

from neurodeploy.meta import get_graph_meta, set_graph_meta
from neurodeploy.passes.base import PassContext
from neurodeploy.passes.manager import run_pipeline
from neurodeploy.targets import Target

#: the order matters: the weight exponent fixes the unit every later pass rounds in
DEFAULT_PIPELINE = ("quantize_input", "quantize_weights", "quantize_bias", "quantize_thresholds",
                    "quantize_membrane_init", "align_delays", "check_target", "check_capacity",
                    "check_overflow")


def quantize(graph: nir.NIRGraph, target: Target, timesteps: int, *,
             allow_saturation: bool = False, capacity_check: bool = True,
             stop_after: str | None = None, dump_dir: str | Path | None = None
             ) -> tuple[nir.NIRGraph, dict]:
    """Run the default pipeline for ``target``; returns the graph and the passes' notes.

    The graph is marked quantized (runnable by the backends) only when the whole pipeline
    ran. Methods call this too, to measure the network as it will be deployed.
    """
    set_graph_meta(graph, dataclasses.replace(
        get_graph_meta(graph), target=target.name, hop_delay=target.timing.hop_delay,
        membrane_bits=target.neuron.membrane_bits))
    ctx = PassContext(target=target, timesteps=timesteps, allow_saturation=allow_saturation,
                      capacity_check=capacity_check)
    graph = run_pipeline(graph, DEFAULT_PIPELINE, ctx, stop_after=stop_after, dump_dir=dump_dir)
    done = stop_after in (None, DEFAULT_PIPELINE[-1])
    set_graph_meta(graph, dataclasses.replace(get_graph_meta(graph), quantized=done))
    return graph, ctx.notes
