"""quantize_input: inputs become unsigned integers of the target's input width."""

from __future__ import annotations

import nir

from neurodeploy.core.encoding import input_meta
from neurodeploy.core.graph import input_name
from neurodeploy.core.meta import InputMeta, copy_graph, get_node_meta, with_node_meta
from neurodeploy.passes.base import PassContext


def quantize_input(graph: nir.NIRGraph, ctx: PassContext) -> nir.NIRGraph:
    """Direct encoding sends the same image every step, so its resolution is the target's
    input width; one integer unit is worth 1 / (2**bits - 1) of a [0, 1] pixel. Event
    counts stay one event per integer, up to the width's largest count."""
    name = input_name(graph)
    bits = ctx.target.input.bits
    meta = input_meta(bits, get_node_meta(graph.nodes[name], InputMeta, name).events)
    ctx.notes["quantize_input"] = {"bits": bits}
    return copy_graph(graph, {name: with_node_meta(graph.nodes[name], meta)})
