"""Hints: what a layer's numbers say is off, and what usually fixes it.

Each rule reads one measured figure against a threshold below (docs/report.md lists them).
Errors compound from layer to layer, so the first layer with a hint is where to start.
"""

from __future__ import annotations

from neurodeploy.report.static import LayerFacts

CLIPPED = 0.01  #: ANN activations above the largest rate the neuron can send
SILENT = 0.10  #: neurons that never fire although the ANN asks for half a spike or more
BIAS = 0.10  #: mean signed error relative to the mean |ANN activation|
CORRELATION = 0.90  #: Pearson correlation of SNN rate and ANN activation


def hints(facts: LayerFacts, activity: dict | None, comparison: dict,
          timesteps: int) -> list[str]:
    """``activity`` is None for the readout (it does not fire)."""
    found = []
    if facts.safe_timesteps and facts.safe_timesteps < timesteps:
        found.append(f"the membrane may saturate after {facts.safe_timesteps} steps (static "
                     f"bound {facts.membrane_bound} vs limit {facts.membrane_limit}): compile "
                     "for fewer timesteps")
    if activity is not None:
        found += _rate_hints(facts, activity, comparison)
    correlation = comparison["correlation"]
    if not found and correlation is not None and correlation < CORRELATION:
        if activity is None:
            found.append(f"the logits follow the ANN loosely (correlation {correlation:.2f}); "
                         "the error comes from the layers before: start with the first "
                         "layer that has a hint")
        else:
            levels = timesteps * facts.max_burst
            burst = "" if facts.max_burst > 1 else " or allow bursts (--max-burst, loihi2)"
            found.append(f"the rate follows the ANN loosely (correlation {correlation:.2f}): "
                         f"T={timesteps} gives each neuron only {levels} rate levels; raise "
                         f"T{burst}")
    return found


def _rate_hints(facts: LayerFacts, activity: dict, comparison: dict) -> list[str]:
    found = []
    clipped = comparison["clipped_fraction"]
    if clipped > CLIPPED:
        burst = "" if facts.max_burst > 1 else ", or allow bursts (--max-burst, loihi2)"
        found.append(f"{clipped:.1%} of the ANN's activations exceed the largest rate "
                     f"(theta x max_burst): raise the thresholds (a higher percentile such as "
                     f"p99.999, or max){burst}")
    silent = activity["silent_but_ann_active_fraction"]
    if silent > SILENT:
        found.append(f"{silent:.1%} of the neurons never fire although the ANN activates "
                     "them: raise T, lower the thresholds (a lower percentile), or calibrate")
    scale = comparison["ann_mean_abs"]
    bias = comparison["mean_error"] / scale if scale > 0 else 0.0
    if bias < -BIAS:
        found.append(f"the SNN sends {-bias:.0%} less than the ANN on average: raise T or "
                     "use calibration (bias correction)")
    elif bias > BIAS:
        dual = "" if facts.dual else "the dual threshold (--dual-threshold, loihi2) or "
        found.append(f"the SNN sends {bias:.0%} more than the ANN on average (over-firing): "
                     f"use {dual}calibration (bias correction)")
    return found
