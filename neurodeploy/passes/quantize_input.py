"""quantize_input: images in [0, 1] become unsigned integers of the target's input width."""

from __future__ import annotations

import nir

from neurodeploy.core.graph import input_name
from neurodeploy.core.meta import InputMeta, copy_graph, with_node_meta
from neurodeploy.passes.base import PassContext


def quantize_input(graph: nir.NIRGraph, ctx: PassContext) -> nir.NIRGraph:
    """Direct encoding sends the same image every step, so its resolution is the target's
    input width; one integer unit is worth 1 / (2**bits - 1) of a [0, 1] pixel."""
    name = input_name(graph)
    bits = ctx.target.input.bits
    meta = InputMeta(bits=bits, scale=1.0 / ((1 << bits) - 1))
    ctx.notes["quantize_input"] = {"bits": bits}
    return copy_graph(graph, {name: with_node_meta(graph.nodes[name], meta)})
