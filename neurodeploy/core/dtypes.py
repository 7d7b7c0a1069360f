"""Integer widths, defined once (the qonnx DataType idea, much smaller)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class IntSpec:
    bits: int
    signed: bool = True

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def allowed(self, x: np.ndarray | int) -> bool:
        """True when every value fits without wrapping."""
        arr = np.asarray(x)
        return bool(arr.size == 0 or (arr.min() >= self.min and arr.max() <= self.max))

    def saturate(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x, self.min, self.max)

    def __str__(self) -> str:
        return f"{'int' if self.signed else 'uint'}{self.bits}"
