"""Integer passes; importing this package registers all of them (see base.py for the contract)."""

from neurodeploy.passes import (  # noqa: F401
                                align_delays,
                                check_capacity,
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
from neurodeploy.passes.pipeline import DEFAULT_PIPELINE, quantize

__all__ = ["DEFAULT_PIPELINE", "PASSES", "PassContext", "graph_pass", "quantize", "run_pipeline"]
