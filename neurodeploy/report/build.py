"""Build the deployment report of a compiled network on a labelled dataset, and write it.

The report is one JSON-ready dict (validated against ``schema.json`` by the tests) plus PNG
figures; ``report.md`` and the printed summary are rendered from that dict, so every output
says the same thing. Files are written only once everything is built, each atomically.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import nir
import numpy as np

from neurodeploy import __version__
from neurodeploy.backends.memory import DEFAULT_MEMORY_BUDGET
from neurodeploy.capacity import allocate
from neurodeploy.core.graph import num_outputs
from neurodeploy.core.meta import get_graph_meta
from neurodeploy.data import labelled
from neurodeploy.errors import InputError, MetadataError
from neurodeploy.fileio import output_dir, write_files
from neurodeploy.operations import LayerOperations, count_operations, energy_pj
from neurodeploy.report import plots, render
from neurodeploy.report.chips import chip_rows, remote_chips
from neurodeploy.report.diagnose import hints
from neurodeploy.report.measure import Measurement, Stats, measure, membrane_traces
from neurodeploy.report.reference import AnnReference
from neurodeploy.report.static import LayerFacts, capacity_facts, layer_facts
from neurodeploy.simulation import default_windows, evaluate
from neurodeploy.targets import Target

SCHEMA_VERSION = 1
SCHEMA = Path(__file__).with_name("schema.json")
PLOTS = {"accuracy": "accuracy_vs_timesteps.png", "error": "layer_error.png",
         "firing_rate": "firing_rate.png", "membrane": "membrane_traces.png",
         "chips": "chips.png"}


@dataclass(frozen=True)
class Report:
    data: dict  #: the JSON content (report.json)
    plots: dict[str, bytes]  #: file name -> PNG

    @property
    def markdown(self) -> str:
        return render.markdown(self.data)

    @property
    def text(self) -> str:
        return render.summary(self.data)

    def write(self, directory: str | Path) -> list[Path]:
        """report.json, report.md and the PNGs in ``directory`` (created if needed)."""
        directory = Path(directory)
        output_dir(directory)
        files = {"report.json": json.dumps(self.data, indent=2).encode(),
                 "report.md": self.markdown.encode(), **self.plots}
        write_files({directory / name: lambda tmp, content=content: Path(tmp).write_bytes(content)
                     for name, content in files.items()})
        return [directory / name for name in files]


def build_report(graph: nir.NIRGraph, images: np.ndarray, labels: np.ndarray, *,
                 target: Target, reference: AnnReference, timesteps: list[int] | None = None,
                 network: str = "", dataset: str = "", show_progress: bool = True,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET) -> Report:
    """Measure ``graph`` on labelled float ``images`` against ``reference``. ``timesteps``
    are the windows of the accuracy sweep (the compiled window is always included); runs
    in chunks within ``memory_budget`` bytes."""
    gmeta = get_graph_meta(graph)
    if not gmeta.quantized:
        raise MetadataError("the network is not fully quantized (compiled with stop_after)",
                            hint="Compile it without stop_after (--stop-after)")
    if target.name != gmeta.target:
        raise InputError(f"the network was compiled for target '{gmeta.target}', not "
                         f"'{target.name}'", hint="Pass the target it was compiled for")
    images, labels = labelled(images, labels, num_outputs(graph))
    compiled = gmeta.timesteps
    sweep = sorted({compiled, *(timesteps or default_windows(graph))})
    facts = layer_facts(graph)
    measured = measure(graph, images, labels, compiled, reference, show_progress,
                       memory_budget)
    ops = count_operations(graph, measured.synops, measured.samples, compiled)
    by_synapse = {layer.name: layer for layer in ops.layers}
    placement = placement_facts(graph, target, measured)
    layers = [_layer(f, measured.stats[f.population], compiled, by_synapse, target)
              | placement[f.population] for f in facts]
    capacity = capacity_facts(graph, target) | {
        "cross_chip_spikes": sum(p["cross_chip_spikes"] for p in placement.values())}
    accuracy = evaluate(graph, images, labels, sweep, show_progress=show_progress,
                        memory_budget=memory_budget)
    ann_accuracy = measured.ann_correct / measured.samples
    data = {
        "schema_version": SCHEMA_VERSION,
        "network": {"path": network, "target": gmeta.target, "method": gmeta.method,
                    "timesteps": compiled, "membrane_bits": target.neuron.membrane_bits,
                    "hop_delay": gmeta.hop_delay, "compiled_with": gmeta.version,
                    "reported_with": __version__},
        "dataset": {"name": dataset, "split": "test", "samples": measured.samples},
        "ann_reference": {"kind": reference.kind, "description": reference.description},
        "accuracy": {"timesteps": sweep, "snn": {str(t): accuracy[t] for t in sweep},
                     "ann": ann_accuracy},
        "capacity": capacity,
        "operations": ops.as_dict(target) | {"synop_pj": target.energy.synop_pj,
                                             "neuron_update_pj": target.energy.neuron_update_pj},
        "layers": layers,
        "plots": dict(PLOTS),
    }
    ann_label = "float ANN" if reference.kind == "model" else "ANN equivalent (compiled weights)"
    figures = {
        PLOTS["accuracy"]: plots.accuracy_plot(accuracy, ann_accuracy, ann_label, compiled),
        PLOTS["error"]: plots.error_plot(layers),
        PLOTS["firing_rate"]: plots.rate_plot(layers),
        PLOTS["membrane"]: plots.membrane_plot(
            membrane_traces(graph, images[0], sweep[-1]), compiled),
        PLOTS["chips"]: plots.chips_plot(layers, target.system.chips)}
    return Report(data, figures)


def placement_facts(graph: nir.NIRGraph, target: Target, measured: Measurement) -> dict:
    """Per population: the chips it uses with their cores, and the spikes per inference it
    sends across chips (its measured events times the other chips each neuron drives)."""
    allocation = allocate(graph, target)
    remote = remote_chips(graph, allocation)
    out = {}
    for layer in allocation.layers:
        sent = measured.stats[layer.population].neuron_events
        crossing = 0 if sent is None else int((sent * remote[layer.population]).sum())
        out[layer.population] = {
            "chips": chip_rows(layer, target.limits.cores),
            "memory_bits": layer.memory_bits,
            "cross_chip_spikes": crossing / measured.samples}
    return out


def _layer(facts: LayerFacts, stats: Stats, timesteps: int,
           by_synapse: dict[str, LayerOperations], target: Target) -> dict:
    activity = stats.activity(timesteps)
    comparison = stats.comparison()
    synops = sum(by_synapse[s].synops for s in facts.synapse_layers)
    updates = facts.neurons * timesteps
    return asdict(facts) | {
        "activity": activity, "ann_vs_snn": comparison,
        "operations": {"synops": synops, "neuron_updates": updates,
                       "ann_macs": sum(by_synapse[s].ann_macs for s in facts.synapse_layers),
                       "energy_pj": energy_pj(synops, updates, target)},
        "hints": hints(facts, activity, comparison, timesteps)}
