"""auto, the default method: the accurate training-free builders the target can run, compiled
side by side, and the one whose deployed network agrees best with the ANN kept.

1. Candidates: ``calibrate`` on every target, and ``adafire`` where spikes are graded (bursts
   need a payload). Where spikes are graded, ``calibrate`` sends bursts of up to
   ``CALIBRATE_BURST`` unless the options ask for bursts themselves: on the Fashion CNN at T=4
   that is 92.58% against 91.70% with single spikes (``--max-burst 2``: 92.44%).
2. Each candidate's deployed (integer) network runs on calibration images none of them
   calibrated on (the source's images after the ones the stages draw; the calibration images
   themselves when the source has no more, e.g. an array). Score: the fraction of images on
   which its prediction is the ANN's (no labels needed). Within one image of the best, the
   candidate causing fewer synaptic operations wins: accuracy first, then cost.
3. The dual threshold is tried on the winner where the target has negative spikes, and kept
   only if it does not lower the score (it usually costs a little more traffic).

The choice, every candidate's score and synaptic operations, and the reason are recorded in
``GraphMeta.notes["auto"]``; ``neurodeploy compile`` prints the reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import nir
import numpy as np

from neurodeploy.convert import ConvertOptions
from neurodeploy.core.graph import readout_name
from neurodeploy.methods.adafire import DESIRED_BURST, AdaFire
from neurodeploy.methods.base import MethodContext, Stage
from neurodeploy.methods.calibration import WEIGHT_SAMPLES, Calibrate, correction_images
from neurodeploy.methods.corrections import firing, with_note
from neurodeploy.methods.deployed import DeployedNetwork
from neurodeploy.methods.probe import ann_activations

#: images the candidates are scored on: candidates often differ by a few tenths of a point,
#: a handful of images in 512; 2048 halve the spread of the scores, for seconds per candidate
SCORE_SAMPLES = 2048
CALIBRATE_BURST = DESIRED_BURST  #: calibrate's bursts on graded targets (AdaFire's budget)


@dataclass(frozen=True)
class Score:
    agreement: float  #: fraction of images predicted as the ANN predicts them
    synops: float  #: synaptic operations per image over the window


@dataclass(frozen=True)
class Auto:
    name: str = "auto"
    builds: bool = True
    needs_calibration: bool = True
    window_specific: bool = True

    def __call__(self, graph: nir.NIRGraph | None, ctx: MethodContext) -> nir.NIRGraph:
        start = time.perf_counter()
        candidates = _candidates(ctx)
        skip = max(len(ctx.calibration(self.name)), WEIGHT_SAMPLES)
        unseen = ctx.unseen(self.name, SCORE_SAMPLES, skip)
        images = correction_images(ctx, self.name, SCORE_SAMPLES) if unseen is None else unseen
        scorer = _Scorer(ctx, images)
        built = {stage.name: stage(None, replace(ctx, options=options))
                 for stage, options in candidates.values()}
        scores = {name: scorer(g) for name, g in built.items()}
        chosen = _best(scores, 1 / len(images))
        top = max(score.agreement for score in scores.values())
        stage, options = candidates[chosen]
        label = chosen if options.max_burst == 1 else \
            f"{chosen} (bursts of up to {options.max_burst})"
        why = (f"{label} is the accurate method for binary spikes" if len(scores) == 1 else
               f"{label} agreed best with the ANN" if scores[chosen].agreement == top else
               f"{label} agreed within one image of the best at fewer synaptic operations")
        graph, kept = built[chosen], chosen
        if ctx.target.neuron.dual_threshold and not ctx.options.dual:
            kept = f"{chosen}+dual"
            dual_graph = stage(None, replace(ctx, options=replace(options, dual=True)))
            scores[kept] = scorer(dual_graph)
            if scores[kept].agreement >= scores[chosen].agreement:
                graph = dual_graph
                why += ", with the dual threshold (it did not lower the agreement)"
            else:
                kept = chosen
                why += ", without the dual threshold (it lowered the agreement)"
        source = "calibration" if unseen is None else "unseen"
        why += f" ({scores[kept].agreement:.2%} on {len(images)} {source} images)"
        return with_note(graph, self.name, {
            "chosen": kept, "reason": why,
            "max_burst": {name: options.max_burst for name, (_, options) in candidates.items()},
            "agreement": {k: s.agreement for k, s in scores.items()},
            "synops_per_image": {k: s.synops for k, s in scores.items()},
            "scored_on_unseen_images": unseen is not None, "score_images": len(images),
            "seconds": time.perf_counter() - start})


def _candidates(ctx: MethodContext) -> dict[str, tuple[Stage, ConvertOptions]]:
    """Stage name -> (stage, the options it compiles with)."""
    if not ctx.target.spikes.graded:
        return {"calibrate": (Calibrate(), ctx.options)}
    burst = ctx.options.max_burst if ctx.options.max_burst > 1 else \
        min(CALIBRATE_BURST, ctx.target.neuron.max_burst)
    return {"calibrate": (Calibrate(), replace(ctx.options, max_burst=burst)),
            "adafire": (AdaFire(), ctx.options)}


class _Scorer:
    """Agreement with the ANN and synaptic operations of a candidate's deployed network."""

    def __init__(self, ctx: MethodContext, images: np.ndarray):
        self.ctx, self.images = ctx, images
        self.ann: np.ndarray | None = None

    def __call__(self, graph: nir.NIRGraph) -> Score:
        if self.ann is None:
            logits = ann_activations(self.ctx, self.images, graph)[readout_name(graph)]
            self.ann = logits.argmax(axis=1)
        net = DeployedNetwork(graph, self.images, self.ctx)
        agreement = float((net.logits(graph).argmax(axis=1) == self.ann).mean())
        synops = sum(sum(net.synops(graph, pop)) for pop in firing(graph))
        return Score(agreement, synops / len(self.images))


def _best(scores: dict[str, Score], tie: float) -> str:
    """The highest agreement; among those within ``tie`` of it, the fewest synaptic ops."""
    top = max(s.agreement for s in scores.values())
    near = [name for name, s in scores.items() if s.agreement >= top - tie - 1e-12]
    return min(near, key=lambda name: scores[name].synops)
