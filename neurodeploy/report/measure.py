"""Run the compiled network on a labelled dataset and collect what the report needs.

In chunks within a memory budget, at the compiled window T: per population the SNN's rate
of every (sample, neuron) pair next to the ANN reference's activation, both in ANN units (a
spike is worth ``theta * 2**exponent``; the readout's value is its logit), kept as streaming
sums; the ANN reference's accuracy; the synaptic operations the reference simulator counts.
Separately, one sample's membrane traces for a few neurons per population.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nir
import numpy as np

from neurodeploy.backends import Record
from neurodeploy.backends.memory import DEFAULT_MEMORY_BUDGET, chunk_size, chunks
from neurodeploy.backends.reference import ReferenceBackend
from neurodeploy.core.encoding import quantize_inputs
from neurodeploy.core.graph import populations, readout_name
from neurodeploy.core.meta import population_meta
from neurodeploy.core.population import param_for_shape
from neurodeploy.progress import progress
from neurodeploy.report.reference import AnnReference

TRACED_NEURONS = 3  #: neurons per population in the membrane traces


@dataclass
class Stats:
    """Streaming sums over (sample, neuron) pairs of the SNN value r and the ANN value a."""

    unit: np.ndarray | None = None  #: ANN value of one spike per neuron (None: readout)
    max_count: int = 0  #: largest net spike count in the window (T * max_burst)
    pairs: int = 0
    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ("r", "a", "rr", "aa", "ra", "abs_err", "abs_a", "spikes", "events", "saturated",
         "clipped"), 0.0))
    fired: np.ndarray | None = None  #: per neuron: sent a spike on some sample
    ann_active: np.ndarray | None = None  #: per neuron: the ANN asks for half a spike or more
    neuron_events: np.ndarray | None = None  #: per neuron (flat): nonzero spikes on all samples

    def add(self, r: np.ndarray, a: np.ndarray) -> None:
        s = self.sums
        s["r"] += float(r.sum())
        s["a"] += float(a.sum())
        s["rr"] += float((r * r).sum())
        s["aa"] += float((a * a).sum())
        s["ra"] += float((r * a).sum())
        s["abs_err"] += float(np.abs(r - a).sum())
        s["abs_a"] += float(np.abs(a).sum())
        self.pairs += r.size

    def add_spikes(self, counts: np.ndarray, events: np.ndarray, a: np.ndarray,
                   timesteps: int) -> None:
        """counts, events: (batch, *shape) net spikes and nonzero spikes in the window."""
        s = self.sums
        s["spikes"] += float(counts.sum())
        s["events"] += float(events.sum())
        s["saturated"] += float((counts >= self.max_count).sum())
        s["clipped"] += float((a > self.max_count / timesteps * self.unit).sum())
        fired = (events > 0).any(axis=0)
        active = (a >= self.unit / (2 * timesteps)).any(axis=0)
        self.fired = fired if self.fired is None else self.fired | fired
        sent = events.reshape(len(events), -1).sum(axis=0, dtype=np.int64)
        self.neuron_events = sent if self.neuron_events is None else self.neuron_events + sent
        self.ann_active = active if self.ann_active is None else self.ann_active | active
        self.add(counts / timesteps * self.unit, a)

    def activity(self, timesteps: int) -> dict | None:
        if self.unit is None:
            return None
        s, steps = self.sums, self.pairs * timesteps
        return {"firing_rate": s["spikes"] / steps, "event_rate": s["events"] / steps,
                "saturated_fraction": s["saturated"] / self.pairs,
                "dead_fraction": float(1 - self.fired.mean()),
                "silent_but_ann_active_fraction": float((~self.fired & self.ann_active).mean())}

    def comparison(self) -> dict:
        s, n = self.sums, self.pairs
        cov = s["ra"] / n - s["r"] * s["a"] / n**2
        var = (s["rr"] / n - (s["r"] / n) ** 2) * (s["aa"] / n - (s["a"] / n) ** 2)
        mae, scale = s["abs_err"] / n, s["abs_a"] / n
        return {"correlation": float(cov / np.sqrt(var)) if var > 0 else None, "mae": mae,
                "mean_error": (s["r"] - s["a"]) / n, "ann_mean_abs": scale,
                "relative_mae": mae / scale if scale > 0 else None,
                "clipped_fraction": None if self.unit is None else s["clipped"] / n}


@dataclass
class Measurement:
    samples: int
    timesteps: int
    stats: dict[str, Stats]
    synops: dict[str, int]  #: summed over all samples
    ann_correct: int = 0  #: samples the ANN reference classifies right


def measure(graph: nir.NIRGraph, images: np.ndarray, labels: np.ndarray, timesteps: int,
            reference: AnnReference, show_progress: bool = True,
            memory_budget: int = DEFAULT_MEMORY_BUDGET) -> Measurement:
    stats = {name: _stats(graph, name, timesteps) for name in populations(graph)}
    result = Measurement(len(images), timesteps, stats, {})
    readout = readout_name(graph)
    size = chunk_size(graph, timesteps, memory_budget, Record.SPIKES)
    backend = ReferenceBackend()
    for rows in progress(chunks(len(images), size), "report", show_progress):
        x, y = images[rows], labels[rows]
        inputs = quantize_inputs(graph, x)
        trace = backend.run(graph, inputs, timesteps, record=Record.SPIKES)
        ann = reference.activations(x, inputs)
        for name, spikes in trace.spikes.items():
            stats[name].add_spikes(spikes.sum(axis=0), (spikes != 0).sum(axis=0), ann[name],
                                   timesteps)
        stats[readout].add(trace.logits, ann[readout])
        for node, count in trace.synops.items():
            result.synops[node] = result.synops.get(node, 0) + count
        result.ann_correct += int((ann[readout].argmax(axis=1) == y).sum())
        del trace, ann  # else this chunk's records stay alive through the next run
    return result


def membrane_traces(graph: nir.NIRGraph, image: np.ndarray, timesteps: int) -> dict[str, dict]:
    """One sample: per population the membrane and spikes of its most active neurons (the
    readout: its largest logits) at every step, with their thresholds; neurons are named by
    their index in the population's (C, H, W) or (N,) shape."""
    trace = ReferenceBackend().run(graph, quantize_inputs(graph, image[None]), timesteps,
                                   record=Record.ALL)
    out = {}
    for name in populations(graph):
        membrane = trace.membranes[name][:, 0].reshape(timesteps, -1)
        meta = population_meta(graph, name)
        if meta.fires:
            spikes = trace.spikes[name][:, 0].reshape(timesteps, -1)
            score = np.abs(spikes).sum(axis=0)
        else:
            spikes, score = np.zeros_like(membrane), membrane[-1]
        chosen = np.argsort(-score, kind="stable")[:TRACED_NEURONS]
        shape = tuple(int(d) for d in graph.nodes[name].input_type["input"])
        theta = np.broadcast_to(param_for_shape(np.asarray(meta.theta), shape), shape)
        out[name] = {"neurons": [tuple(int(i) for i in np.unravel_index(n, shape))
                                 for n in chosen],
                     "membrane": membrane[:, chosen], "spikes": spikes[:, chosen],
                     "theta": theta.reshape(-1)[chosen], "fires": meta.fires}
    return out


def _stats(graph: nir.NIRGraph, name: str, timesteps: int) -> Stats:
    meta = population_meta(graph, name)
    if not meta.fires:
        return Stats()
    shape = tuple(int(d) for d in graph.nodes[name].input_type["input"])
    unit = param_for_shape(np.asarray(meta.theta, np.float64), shape) * 2.0**meta.exponent
    return Stats(unit=np.broadcast_to(unit, shape), max_count=timesteps * meta.max_burst)
