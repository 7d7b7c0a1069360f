"""Integer passes; importing this package registers all of them (see base.py for the contract)."""

from neurodeploy.passes import (  # noqa: F401
                                check_overflow,
                                check_target,
                                quantize_bias,
                                quantize_input,
                                quantize_membrane_init,
                                quantize_thresholds,
                                quantize_weights,
)
from neurodeploy.passes.base import PASSES, PassContext, graph_pass
from neurodeploy.passes.manager import run_pipeline

#: the order matters: the weight exponent fixes the unit every later pass rounds in
DEFAULT_PIPELINE = ("quantize_input", "quantize_weights", "quantize_bias", "quantize_thresholds",
                    "quantize_membrane_init", "check_target", "check_overflow")

__all__ = ["DEFAULT_PIPELINE", "PASSES", "PassContext", "graph_pass", "run_pipeline"]
