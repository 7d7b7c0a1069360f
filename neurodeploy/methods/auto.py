"""auto, the default method: the accurate training-free builders the target can run, compiled
side by side, and the one whose deployed network comes closest to the ANN's outputs kept.

1. Candidates: ``calibrate`` on every target, and ``adafire`` where spikes are graded (bursts
   need a payload). Where spikes are graded, ``calibrate`` sends bursts of up to
   ``CALIBRATE_BURST`` unless the options ask for bursts themselves: on the Fashion CNN at T=4
   that is 92.58% against 91.70% with single spikes (``--max-burst 2``: 92.44%).
2. Each candidate's deployed (integer) network runs on calibration images none of them
   calibrated on (the source's images after the ones the stages draw; the calibration images
   themselves when the source has no more, e.g. an array). Score: the divergence of its
   outputs from the ANN's (symmetric KL between the softmaxes, the measure AdaFire's search
   uses; no labels needed); the lowest wins, and on a tie the one causing fewer synaptic
   operations. The fraction of images predicted as the ANN predicts them is recorded but does
   not choose: on the Fashion ResNet at T=4 it preferred AdaFire by 3 images of 2,048 where
   calibrate scores 0.2 points higher on the test split.
3. Where the target has negative spikes, the dual threshold is kept only if it does not
   raise the divergence (it usually costs a little more traffic). Calibrate's is chosen
   before its weight fit, on the corrections-only pipeline (``calibrate_light``, seconds)
   built with and without it: trying it on the full pipeline afterwards fitted every layer
   twice, 40% of auto. On both Fashion examples the two choose alike at T = 1, 2, 4 and 8
   (docs/methods.md). AdaFire's is tried on its full pipeline when it wins.

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
from neurodeploy.frontend.ann import ACTIVATIONS
from neurodeploy.methods.adafire import DESIRED_BURST, AdaFire, burst_ceiling
from neurodeploy.methods.base import MethodContext, Stage
from neurodeploy.methods.calibration import LIGHT, WEIGHT_SAMPLES, Calibrate, correction_images
from neurodeploy.methods.corrections import firing, with_note
from neurodeploy.methods.deployed import DeployedNetwork
from neurodeploy.methods.probe import ActivationStream
from neurodeploy.methods.search import symmetric_kl

#: images the candidates are scored on: candidates often differ by a few tenths of a point,
#: a handful of images in 512; 2048 halve the spread of the scores, for seconds per candidate
SCORE_SAMPLES = 2048
CALIBRATE_BURST = DESIRED_BURST  #: calibrate's bursts on graded targets (AdaFire's budget)


@dataclass(frozen=True)
class Score:
    divergence: float  #: mean symmetric KL between the output softmaxes, SNN and ANN
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
        bursts = {name: burst_ceiling(ctx) if name == "adafire" else options.max_burst
                  for name, (_, options) in candidates.items()}
        scores: dict[str, Score] = {}
        try_dual = ctx.target.neuron.dual_threshold and not ctx.options.dual
        if try_dual:
            candidates = _with_light_dual_choice(candidates, ctx, scorer, scores)
        built = {name: stage(None, replace(ctx, options=options))
                 for name, (stage, options) in candidates.items()}
        scores.update({name: scorer(g) for name, g in built.items()})
        chosen = _best({name: scores[name] for name in built})
        base = chosen.partition("+")[0]
        label = base if bursts[base] == 1 else f"{base} (bursts of up to {bursts[base]})"
        alone = "binary spikes" if not ctx.target.spikes.graded else \
            "a model without ReLU layers (AdaFire chooses their bursts)"
        why = (f"{label} is the accurate method for {alone}" if len(built) == 1 else
               f"{label} came closest to the ANN's outputs")
        graph = built[chosen]
        if chosen != base:
            why += (", with the dual threshold (it did not move the corrections-only "
                    "pipeline's further)")
        elif try_dual and chosen == "calibrate":  # the dual threshold lost on LIGHT
            why += ", without the dual threshold (it moved the corrections-only pipeline's further)"
        elif try_dual:
            stage, options = candidates[chosen]
            dual_graph = _dual_graph(chosen, stage, options, ctx, scorer, scores)
            if dual_graph is not None:
                graph, chosen = dual_graph, f"{chosen}+dual"
                why += ", with the dual threshold (it did not move them further)"
            else:
                why += ", without the dual threshold (it moved them further)"
        source = "calibration" if unseen is None else "unseen"
        why += (f" (divergence {scores[chosen].divergence:.4f}, the ANN's prediction on "
                f"{scores[chosen].agreement:.2%} of {len(images)} {source} images)")
        return with_note(graph, self.name, {
            "chosen": chosen, "reason": why,
            "max_burst": bursts,
            "divergence": {k: s.divergence for k, s in scores.items()},
            "agreement": {k: s.agreement for k, s in scores.items()},
            "synops_per_image": {k: s.synops for k, s in scores.items()},
            "scored_on_unseen_images": unseen is not None, "score_images": len(images),
            "seconds": time.perf_counter() - start})


def _with_light_dual_choice(candidates: dict[str, tuple[Stage, ConvertOptions]],
                            ctx: MethodContext, scorer: _Scorer, scores: dict[str, Score]
                            ) -> dict[str, tuple[Stage, ConvertOptions]]:
    """The candidates with calibrate's dual threshold chosen before its weight fit: the
    corrections-only pipeline (``LIGHT``) built with and without it, scored into ``scores``,
    and calibrate renamed ``calibrate+dual`` where the dual threshold did not move the
    outputs further."""
    if "calibrate" not in candidates:
        return candidates
    stage, options = candidates["calibrate"]
    scores[LIGHT.name] = scorer(LIGHT(None, replace(ctx, options=options)))
    if _dual_graph(LIGHT.name, LIGHT, options, ctx, scorer, scores) is None:
        return candidates
    renamed = {}
    for name, candidate in candidates.items():  # in their order: it breaks exact ties
        if name == "calibrate":
            name, candidate = "calibrate+dual", (stage, replace(options, dual=True))
        renamed[name] = candidate
    return renamed


def _dual_graph(name: str, stage: Stage, options: ConvertOptions, ctx: MethodContext,
                scorer: _Scorer, scores: dict[str, Score]) -> nir.NIRGraph | None:
    """``stage`` built with the dual threshold and scored into ``scores`` as ``name+dual``:
    the graph if it does not raise the divergence of ``name`` (scored before), else None."""
    graph = stage(None, replace(ctx, options=replace(options, dual=True)))
    scores[f"{name}+dual"] = scorer(graph)
    return graph if scores[f"{name}+dual"].divergence <= scores[name].divergence else None


def _candidates(ctx: MethodContext) -> dict[str, tuple[Stage, ConvertOptions]]:
    """Stage name -> (stage, the options it compiles with)."""
    if not ctx.target.spikes.graded or not any(n.op in ACTIVATIONS for n in ctx.ann.nodes):
        return {"calibrate": (Calibrate(), ctx.options)}  # AdaFire chooses ReLU layers' bursts
    burst = ctx.options.max_burst if ctx.options.max_burst > 1 else \
        min(CALIBRATE_BURST, ctx.target.neuron.max_burst)
    return {"calibrate": (Calibrate(), replace(ctx.options, max_burst=burst)),
            "adafire": (AdaFire(), ctx.options)}


class _Scorer:
    """How close a candidate's deployed network comes to the ANN, and its synaptic
    operations."""

    def __init__(self, ctx: MethodContext, images: np.ndarray):
        self.ctx, self.images = ctx, images
        self.ann: np.ndarray | None = None

    def __call__(self, graph: nir.NIRGraph) -> Score:
        if self.ann is None:
            self.ann = ActivationStream(self.ctx, self.images, graph).pop(readout_name(graph))
        net = DeployedNetwork(graph, self.images, self.ctx)
        logits = net.logits(graph)
        agreement = float((logits.argmax(axis=1) == self.ann.argmax(axis=1)).mean())
        synops = sum(sum(net.synops(graph, pop)) for pop in firing(graph))
        return Score(symmetric_kl(logits, self.ann), agreement, synops / len(self.images))


def _best(scores: dict[str, Score]) -> str:
    """The lowest divergence; on a tie, the fewest synaptic operations."""
    return min(scores, key=lambda name: (scores[name].divergence, scores[name].synops))
