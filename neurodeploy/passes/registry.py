"""Every pass by name, and the default pipeline: data, in one place (a name is what the CLI,
``stop_after`` and the artifact's ``GraphMeta.pipeline`` use)."""

from __future__ import annotations

from neurodeploy.passes.align_delays import align_delays
from neurodeploy.passes.base import GraphPass, PopulationStep
from neurodeploy.passes.check_capacity import check_capacity
from neurodeploy.passes.check_overflow import check_overflow
from neurodeploy.passes.check_target import check_target
from neurodeploy.passes.quantize_bias import bias_of, quantize_bias
from neurodeploy.passes.quantize_input import quantize_input
from neurodeploy.passes.quantize_membrane_init import membrane_init_of, quantize_membrane_init
from neurodeploy.passes.quantize_thresholds import quantize_thresholds, thresholds_of
from neurodeploy.passes.quantize_weights import quantize_weights

PASSES: dict[str, GraphPass] = {fn.__name__: fn for fn in (
    quantize_input, quantize_weights, quantize_bias, quantize_thresholds,
    quantize_membrane_init, align_delays, check_target, check_capacity, check_overflow)}

#: the order matters: the weight exponent fixes the unit every later pass rounds in
DEFAULT_PIPELINE = ("quantize_input", "quantize_weights", "quantize_bias", "quantize_thresholds",
                    "quantize_membrane_init", "align_delays", "check_target", "check_capacity",
                    "check_overflow")

#: the passes after quantize_weights that round one population's values on their own (the
#: others check the graph or add delays, which change no value): ``quantize_population``
POPULATION_STEPS: dict[str, PopulationStep] = {
    "quantize_bias": bias_of, "quantize_thresholds": thresholds_of,
    "quantize_membrane_init": membrane_init_of}
