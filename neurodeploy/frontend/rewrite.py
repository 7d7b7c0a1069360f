"""Value-preserving rewrites that put a captured graph in the form conversion maps.

A flatten only renames positions, so where it stands relative to an elementwise activation
does not change any value; but the converter needs every activation directly after its
Linear/Conv2d (the population takes the synapse layer's output). ``move_flattens`` therefore
moves a flatten from in front of an activation to behind it, and drops flattens of tensors
that are already flat. The frontend's final comparison with the source model checks the result.
"""

from __future__ import annotations

from dataclasses import replace

from neurodeploy.frontend.ann import ACTIVATIONS, AnnGraph, AnnNode


def move_flattens(graph: AnnGraph) -> AnnGraph:
    """Apply both rewrites until none applies (each removes a flatten or moves one later)."""
    while (rewritten := _drop_flat(graph) or _swap_with_activation(graph)) is not None:
        graph = rewritten
    return graph


def _drop_flat(graph: AnnGraph) -> AnnGraph | None:
    shapes = graph.shapes()
    for node in graph.nodes:
        if node.op == "flatten" and len(shapes[node.inputs[0]]) == 1:
            source = node.inputs[0]
            nodes = [_renamed_input(n, node.name, source) for n in graph.nodes if n is not node]
            return AnnGraph(nodes, source if graph.output == node.name else graph.output)
    return None


def _swap_with_activation(graph: AnnGraph) -> AnnGraph | None:
    """flatten -> act  becomes  act -> flatten, when the activation is the flatten's only
    reader (otherwise the flat value is still needed, and the graph stays as it is)."""
    for node in graph.nodes:
        readers = graph.consumers(node.name)
        if node.op != "flatten" or len(readers) != 1 or readers[0].op not in ACTIVATIONS:
            continue
        act = readers[0]
        moved_act = replace(act, inputs=node.inputs)
        moved_flat = AnnNode(node.name, "flatten", (act.name,), dict(node.params))
        nodes = []
        for n in graph.nodes:
            if n is act:
                nodes += [moved_act, moved_flat]
            elif n is not node:
                nodes.append(_renamed_input(n, act.name, node.name))
        return AnnGraph(nodes, node.name if graph.output == act.name else graph.output)
    return None


def _renamed_input(node: AnnNode, old: str, new: str) -> AnnNode:
    if old not in node.inputs:
        return node
    return replace(node, inputs=tuple(new if i == old else i for i in node.inputs))
