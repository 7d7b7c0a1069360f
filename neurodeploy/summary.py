"""The short text and JSON summaries printed by `neurodeploy compile`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurodeploy.graph import populations
from neurodeploy.meta import get_graph_meta, population_meta


def compile_summary(result, path: Path) -> dict:
    graph = result.graph
    meta = get_graph_meta(graph)
    layers = []
    for name in populations(graph):
        pop = population_meta(graph, name)
        layers.append({
            "population": name, "kind": pop.kind,
            "neurons": int(np.prod(graph.nodes[name].input_type["input"])),
            "theta": _compact(pop.theta), "v_init": _compact(pop.v_init),
            "exponent": pop.exponent, "max_burst": pop.max_burst, "dual": pop.dual,
            "safe_timesteps": result.notes.get("check_overflow", {}).get(
                "safe_timesteps", {}).get(name)})
    lines = [(f"compiled {path} for {meta.target} (method {meta.method}, T={meta.timesteps}) "
              f"in {result.seconds:.2f} s"),
             (f"{'population':<20} {'kind':<8} {'neurons':>8} {'theta':>8} {'exp':>4} "
              f"{'safe T':>7}")]
    for layer in layers:
        lines.append(f"{layer['population']:<20} {layer['kind']:<8} {layer['neurons']:>8} "
                     f"{layer['theta']!s:>8} {layer['exponent']!s:>4} "
                     f"{layer['safe_timesteps']!s:>7}")
    if not meta.quantized:
        lines.append(f"stopped after {meta.pipeline[-1]}: the graph is not fully quantized")
    return {"path": str(path), "target": meta.target, "method": meta.method,
            "timesteps": meta.timesteps, "seconds": result.seconds, "quantized": meta.quantized,
            "safe_timesteps": meta.safe_timesteps, "pipeline": meta.pipeline,
            "layers": layers, "text": "\n".join(lines)}


def _compact(value) -> float | int | str:
    arr = np.asarray(value)
    if arr.ndim == 0:
        return arr.item()
    return f"{arr.min()}..{arr.max()}"
