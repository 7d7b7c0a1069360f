"""The backend contract.

A backend runs a *quantized* neurodeploy NIR graph on integer inputs and returns a Trace.
Rules every backend meets (tested by the shared backend tests):

1. Semantics come from ``neurodeploy.core.neuron``; a backend never re-implements the rule.
2. ``run(graph, inputs, timesteps, record=...)``: ``inputs`` are integer arrays in the input
   node's integer units, (batch, *input_shape) injected every step (direct encoding) or
   streams (batch, L, *input_shape) whose step t is injected at step t
   (``core.encoding.step_inputs``). Each sample runs a window of ``timesteps`` steps from
   ``v_init``; a recurrent edge delivers ``core.graph.recurrent_delays`` steps late and
   nothing from an earlier sample.
3. Traces are in the *ideal* (unshifted) time frame: step t of population p is the t-th
   step of its window. On a pipelined target the window of p starts ``offsets[p]`` steps
   after the input's (design.md §3); the backend reports those offsets.
4. Arrays in a Trace are NIR layout (C, H, W) per sample, integers, and identical across
   backends for the same graph and inputs: that is what ``verify`` checks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import nir
import numpy as np

from neurodeploy.errors import InputError


class Record(enum.StrEnum):
    """What a run keeps besides the outputs (full traces cost memory)."""

    OUTPUT = "output"
    COUNTS = "counts"  #: outputs + per-neuron spike event counts (synaptic operations)
    SPIKES = "spikes"
    ALL = "all"
    #: ALL + the synaptic input entering each population (reference simulator only: the
    #: analyses that need a population's input read it here instead of inverting the rule)
    CURRENTS = "currents"

    @classmethod
    def of(cls, value: object) -> Record:
        """``value`` (a Record or its name, e.g. "all") as a Record."""
        try:
            return cls(value)
        except ValueError:
            raise InputError(f"record must be one of {', '.join(cls)}, got {value!r}") from None

    @property
    def counts(self) -> bool:
        return self is not Record.OUTPUT

    @property
    def spikes(self) -> bool:
        return self in (Record.SPIKES, Record.ALL, Record.CURRENTS)

    @property
    def membranes(self) -> bool:
        return self in (Record.ALL, Record.CURRENTS)

    @property
    def currents(self) -> bool:
        return self is Record.CURRENTS


@dataclass(frozen=True)
class Trace:
    timesteps: int
    #: readout membrane (integer) at the last step of each sample's window: (batch, n_out)
    outputs: np.ndarray
    #: outputs in ANN units (the float network's logits, up to conversion error)
    logits: np.ndarray
    #: readout membrane at every step: (T, batch, n_out). The rule is causal, so row t-1 is
    #: exactly the output of a t-step window: one run evaluates every shorter window too.
    output_steps: np.ndarray
    #: population -> (T, batch, *shape) integer spikes (signed graded counts)
    spikes: dict[str, np.ndarray] = field(default_factory=dict)
    #: population -> (T, batch, *shape) integer membrane after the step's reset
    membranes: dict[str, np.ndarray] = field(default_factory=dict)
    #: population -> (T, batch, *shape) integer synaptic input I[t] of ``neuron.rule`` (the sum
    #: of its synapse layers, before the input shift, bias and bias table); Record.CURRENTS
    currents: dict[str, np.ndarray] = field(default_factory=dict)
    #: population -> hop delay of its window on the target (design.md §3)
    offsets: dict[str, int] = field(default_factory=dict)
    #: population -> (*shape) spike events (nonzero payloads, a graded spike is one event) per
    #: neuron, summed over the window and the batch; recorded unless ``Record.OUTPUT``
    events: dict[str, np.ndarray] = field(default_factory=dict)
    #: synapse node -> synaptic operations over the window and the batch: every nonzero value
    #: entering the layer times the synapses it drives (reference simulator, unless
    #: ``Record.OUTPUT``); a graded spike is one event
    synops: dict[str, int] = field(default_factory=dict)

    def save(self, path: str) -> None:
        """Write exactly ``path``, whose name must end in .npz, atomically (``fileio``)."""
        from neurodeploy.fileio import atomic_write, output_file

        output_file(path, suffix=".npz")
        atomic_write(path, self.write_npz)

    def write_npz(self, path: str) -> None:
        """outputs, logits, and ``<kind>/<node>`` for each per-node record into ``path``."""
        arrays = {"outputs": self.outputs, "logits": self.logits,
                  "output_steps": self.output_steps, "timesteps": np.array(self.timesteps)}
        for kind in _PER_NODE:
            for pop, value in getattr(self, kind).items():
                arrays[f"{kind}/{pop}"] = np.asarray(value)
        with open(path, "wb") as stream:  # given a name, np.savez would append ".npz"
            np.savez_compressed(stream, **arrays)

    @classmethod
    def concatenate(cls, parts: list[Trace]) -> Trace:
        """One trace of the samples of ``parts`` (runs of the same graph and window on
        consecutive chunks of samples), as one run on all of them would have returned."""
        first = parts[0]
        if len(parts) == 1:
            return first
        joined = {key: np.concatenate([getattr(p, key) for p in parts], axis=axis)
                  for key, axis in BATCH_AXIS.items() if key not in _PER_NODE}
        for kind in _PER_NODE:
            if kind in BATCH_AXIS:
                joined[kind] = {pop: np.concatenate([getattr(p, kind)[pop] for p in parts],
                                                    axis=BATCH_AXIS[kind])
                                for pop in getattr(first, kind)}
            elif kind in SUMMED:
                joined[kind] = {pop: sum(getattr(p, kind)[pop] for p in parts)
                                for pop in getattr(first, kind)}
        return cls(timesteps=first.timesteps, offsets=first.offsets, **joined)

    @classmethod
    def load(cls, path: str) -> Trace:
        with np.load(path) as data:
            parts: dict[str, dict] = {kind: {} for kind in _PER_NODE}
            for key in data.files:
                if "/" in key:
                    kind, node = key.split("/", 1)
                    parts[kind][node] = int(data[key]) if kind in _SCALARS else data[key]
            return cls(timesteps=int(data["timesteps"]), outputs=data["outputs"],
                       logits=data["logits"], output_steps=data["output_steps"], **parts)


_PER_NODE = ("spikes", "membranes", "currents", "events", "offsets", "synops")
_SCALARS = ("offsets", "synops")
#: the sample axis of each per-sample array (per-node ones: of every node's array)
BATCH_AXIS = {"outputs": 0, "logits": 0, "output_steps": 1, "spikes": 1, "membranes": 1,
              "currents": 1}
SUMMED = ("events", "synops")  #: per-node records summed over the samples


class Backend(Protocol):
    name: ClassVar[str]

    def run(self, graph: nir.NIRGraph, inputs: np.ndarray, timesteps: int, *,
            record: Record = Record.OUTPUT) -> Trace: ...
