"""The short report printed by `neurodeploy compile` and `import`: per-population resources
and bounds, and whether the network fits the target's cores (the static part of `neurodeploy
report`); for an imported network, what the target cannot express exactly."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from neurodeploy.core.meta import get_graph_meta
from neurodeploy.interop.approximations import table
from neurodeploy.report.static import LayerFacts, capacity_facts, capacity_line, layer_facts

#: relative RMS rounding error of a layer's weights past which compile and import warn
WEIGHT_ERROR_WARNING = 0.5
COLUMNS = (("population", "<14"), ("kind", "<8"), ("neurons", ">8"), ("synapses", ">10"),
           ("fan-in", ">7"), ("theta", ">12"), ("exp", ">4"), ("|v| bound", ">10"),
           ("safe T", ">7"), ("cores", ">5"))


def compile_summary(result, path: Path) -> dict:
    graph = result.graph
    meta = get_graph_meta(graph)
    facts = layer_facts(graph)
    capacity = capacity_facts(graph, result.target)
    lines = [(f"compiled {path} for {meta.target} (method {meta.method}, T={meta.timesteps}) "
              f"in {result.seconds:.2f} s"), resource_table(facts), *_spike_features(facts),
             capacity_line(capacity)]
    if "auto" in meta.notes:
        lines.insert(1, f"auto: {meta.notes['auto']['reason']}")
    if not meta.quantized:
        lines.append(f"stopped after {meta.pipeline[-1]}: the graph is not fully quantized")
    summary = {"path": str(path), "target": meta.target, "method": meta.method,
               "timesteps": meta.timesteps, "seconds": result.seconds,
               "quantized": meta.quantized, "safe_timesteps": meta.safe_timesteps,
               "pipeline": meta.pipeline, "layers": [asdict(f) for f in facts],
               "capacity": capacity}
    summary["warnings"] = result.warnings + _weight_warnings(meta)
    if result.approximations is not None:
        summary["approximations"] = [asdict(a) for a in result.approximations]
        lines.append(f"approximations on {meta.target}:\n{table(result.approximations)}")
    return summary | {"text": "\n".join(lines)}


def _weight_warnings(meta) -> list[str]:
    """Layers whose weights the target's mantissa changes by more than
    ``WEIGHT_ERROR_WARNING`` (relative RMS): such a network computes something else than the
    model, and only an evaluation shows how much."""
    errors = meta.notes.get("quantize_weights", {}).get("relative_rms_error", {})
    return [f"{name}: {meta.target}'s weight mantissa changes its weights by {error:.0%} (RMS "
            "of the weights): compare the network with the model (evaluate --ann)"
            for name, error in errors.items() if error > WEIGHT_ERROR_WARNING]


def _spike_features(facts: list[LayerFacts]) -> list[str]:
    """A line naming bursts and the dual threshold when a population uses them: the table
    omits them, and they need a target's graded and signed spikes."""
    burst = max((f.max_burst for f in facts), default=1)
    used = [f"bursts up to {burst} spikes a step"] if burst > 1 else []
    if any(f.dual for f in facts):
        used.append("dual threshold")
    return [f"spikes: {', '.join(used)}"] if used else []


def resource_table(facts: list[LayerFacts]) -> str:
    rows = [[f.population, f.kind, f.neurons, f.synapses, f.fan_in_max, f.theta,
             "-" if f.exponent is None else f.exponent, f.membrane_bound or "-",
             f.safe_timesteps or "-", f.cores or "-"] for f in facts]
    return "\n".join(" ".join(f"{cell!s:{fmt}}" for cell, (_, fmt) in zip(row, COLUMNS,
                                                                            strict=True))
                     for row in [[name for name, _ in COLUMNS], *rows])
