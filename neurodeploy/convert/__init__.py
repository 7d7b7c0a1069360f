"""Conversion: ANN graph -> float SNN graph (NIR), and where thresholds come from."""

from neurodeploy.convert.thresholds import (
    activation_thresholds,
    learned_thresholds,
    parse_statistic,
)
from neurodeploy.convert.to_snn import ConvertOptions, to_snn

__all__ = ["ConvertOptions", "activation_thresholds", "learned_thresholds",
           "parse_statistic", "to_snn"]
