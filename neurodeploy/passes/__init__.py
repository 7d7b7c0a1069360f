"""Integer passes (see base.py for the contract, registry.py for the list)."""

from neurodeploy.passes.base import PassContext
from neurodeploy.passes.manager import run_pipeline
from neurodeploy.passes.pipeline import quantize, quantize_population
from neurodeploy.passes.registry import DEFAULT_PIPELINE, PASSES

__all__ = ["DEFAULT_PIPELINE", "PASSES", "PassContext", "quantize", "quantize_population",
           "run_pipeline"]
