"""IAT: input-aware adaptive timesteps (AdaFire, algorithms.md §4.4), a refiner.

At inference the readout is checked after every step: a sample exits at the first step t
whose confidence ``1 - H(softmax(logits_t)) / log K`` (H: entropy; logits_t the readout
after t steps, in ANN units) exceeds the step's threshold ``tau_t``, and is classified there;
otherwise it runs the whole window. Easy inputs stop early, which saves their remaining
steps' operations. On a chip this is host-side (or readout) logic, not a neuron feature.

The thresholds are calibrated on the unlabeled calibration images against the network's own
full-window prediction (no labels): step by step, ``tau_t`` is the lowest threshold at which
the samples that would exit at t disagree with their full-window prediction in at most
``tolerance`` of cases. The authors' closed form (0.6 + 0.4 exp(min e - e_t) from the mean
entropy of correctly classified samples) needs labels and compares a different statistic
than it calibrates, so it is not used. Thresholds are stored in ``GraphMeta.notes["iat"]``.

Exit thresholds are rare-event statistics (a tolerance of 0.2% of the exits), so they take
at least ``EXIT_SAMPLES`` images from the calibration source, more than the other stages'
default 512 (on one Fashion-MNIST CNN the loss at T=8 was 0.53 points with 512, 0.07 with
2048; docs/methods.md). One reference run per image, so the extra images cost seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import nir
import numpy as np

from neurodeploy.backends import Record
from neurodeploy.core.encoding import readout_logits
from neurodeploy.core.meta import get_graph_meta
from neurodeploy.errors import InputError
from neurodeploy.methods.base import MethodContext
from neurodeploy.methods.corrections import with_note
from neurodeploy.methods.probe import simulate

TOLERANCE = 0.002  #: fraction of early exits allowed to change the full-window prediction
NEVER = 1.0  #: a threshold no confidence exceeds
EXIT_SAMPLES = 2048  #: fewest calibration images the thresholds are chosen on, if available


@dataclass(frozen=True)
class Iat:
    name: str = "iat"
    builds: bool = False
    needs_calibration: bool = True
    window_specific: bool = True
    last: bool = True  #: its exits are calibrated on the network as the stages before left it
    tolerance: float = TOLERANCE
    samples: int = EXIT_SAMPLES

    def __call__(self, graph: nir.NIRGraph | None, ctx: MethodContext) -> nir.NIRGraph:
        start = time.perf_counter()
        images = ctx.calibration(self.name, self.samples)
        probe = simulate(graph, images, ctx, record=Record.OUTPUT)
        steps = probe.trace.output_steps
        scores = confidence_steps(probe.graph, steps)
        predictions = steps.argmax(axis=2)
        changed = predictions != predictions[-1]
        remaining = np.ones(steps.shape[1], bool)
        thresholds = []
        for t in range(len(steps) - 1):
            tau = exit_threshold(scores[t, remaining], changed[t, remaining], self.tolerance)
            thresholds.append(tau)
            remaining &= ~(scores[t] > tau)
        taken, _ = exit_steps(scores, predictions, thresholds)
        return with_note(graph, self.name, {
            "thresholds": thresholds, "tolerance": self.tolerance,
            "calibration_images": len(images),
            "calibration_mean_timesteps": float(taken.mean()),
            "seconds": time.perf_counter() - start})


def confidence_steps(graph: nir.NIRGraph, output_steps: np.ndarray) -> np.ndarray:
    """(T, batch) confidence 1 - normalized entropy of the readout after each step."""
    scores = np.empty(output_steps.shape[:2])
    for t, outputs in enumerate(output_steps):
        logits = readout_logits(graph, outputs.astype(np.float64), t + 1)
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        entropy = -(p * np.log(np.maximum(p, 1e-300))).sum(axis=1)
        scores[t] = 1 - entropy / np.log(output_steps.shape[2])
    return scores


def exit_threshold(scores: np.ndarray, changed: np.ndarray, tolerance: float) -> float:
    """Lowest threshold whose exits (score > threshold) change at most ``tolerance`` of
    their predictions; ``NEVER`` when even the most confident exit is not safe."""
    order = np.argsort(-scores, kind="stable")
    exits = np.arange(1, len(order) + 1)
    safe = np.flatnonzero(np.cumsum(changed[order]) <= tolerance * exits)
    if len(safe) == 0:
        return NEVER
    last = safe[-1]
    if last == len(order) - 1:
        return float(np.nextafter(scores.min(), -np.inf))
    return float(scores[order[last + 1]])


def exit_steps(scores: np.ndarray, predictions: np.ndarray, thresholds: list[float]
               ) -> tuple[np.ndarray, np.ndarray]:
    """(steps each sample ran, its prediction there) for (T, batch) scores and predictions."""
    steps = len(scores)
    taken = np.full(scores.shape[1], steps)
    for t in range(min(len(thresholds), steps - 1) - 1, -1, -1):
        taken = np.where(scores[t] > thresholds[t], t + 1, taken)
    return taken, predictions[taken - 1, np.arange(scores.shape[1])]


def iat_thresholds(graph: nir.NIRGraph) -> list[float]:
    """The calibrated thresholds of a compiled network, or a readable error."""
    note = get_graph_meta(graph).notes.get("iat")
    if note is None:
        raise InputError("the network has no adaptive-timestep thresholds",
                         hint="Compile it with a method ending in +iat (e.g. adafire+iat)")
    return [float(t) for t in np.asarray(note["thresholds"]).ravel()]
