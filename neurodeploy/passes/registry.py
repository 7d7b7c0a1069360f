"""Every pass by name, and the default pipeline: data, in one place (a name is what the CLI,
``stop_after`` and the artifact's ``GraphMeta.pipeline`` use)."""

from __future__ import annotations

from neurodeploy.passes.align_delays import align_delays
from neurodeploy.passes.base import GraphPass
from neurodeploy.passes.check_capacity import check_capacity
from neurodeploy.passes.check_overflow import check_overflow
from neurodeploy.passes.check_target import check_target
from neurodeploy.passes.quantize_bias import quantize_bias
from neurodeploy.passes.quantize_input import quantize_input
from neurodeploy.passes.quantize_membrane_init import quantize_membrane_init
from neurodeploy.passes.quantize_thresholds import quantize_thresholds
from neurodeploy.passes.quantize_weights import quantize_weights

PASSES: dict[str, GraphPass] = {fn.__name__: fn for fn in (
    quantize_input, quantize_weights, quantize_bias, quantize_thresholds,
    quantize_membrane_init, align_delays, check_target, check_capacity, check_overflow)}

#: the order matters: the weight exponent fixes the unit every later pass rounds in
DEFAULT_PIPELINE = ("quantize_input", "quantize_weights", "quantize_bias", "quantize_thresholds",
                    "quantize_membrane_init", "align_delays", "check_target", "check_capacity",
                    "check_overflow")
