"""Where each element of a NIR tensor sits in a Lava port.

NIR feature maps are (C, H, W); Lava's Conv and its ports use (X, Y, C) = (W, H, C). A
``Layout`` keeps the permutation between the two as one flat index array, so a flattened
feature map (Lava flattens its XYC port row-major) needs no extra process: a Dense after a
Flatten just takes its weight columns in Lava's order. Parameters go NIR -> Lava with
``to_lava`` and recorded traces come back with ``to_nir``.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np

from neurodeploy.errors import MetadataError


@dataclass(frozen=True, eq=False)
class Layout:
    nir_shape: tuple[int, ...]
    lava_shape: tuple[int, ...]
    #: Lava flat position -> NIR flat (C-order) index
    order: np.ndarray

    @classmethod
    def native(cls, nir_shape: tuple[int, ...]) -> Layout:
        """The layout Lava processes use: vectors as they are, (C, H, W) as (W, H, C)."""
        nir_shape = tuple(int(d) for d in nir_shape)
        index = np.arange(prod(nir_shape)).reshape(nir_shape)
        if len(nir_shape) == 1:
            return cls(nir_shape, nir_shape, index)
        if len(nir_shape) == 3:
            return cls(nir_shape, nir_shape[::-1], index.transpose(2, 1, 0).ravel())
        raise MetadataError(f"the Lava backend maps vectors and (C, H, W) maps, not shape "
                            f"{nir_shape}")

    def flattened(self) -> Layout:
        """The same elements seen through a flattened Lava port (Lava's row-major order)."""
        size = len(self.order)
        return Layout((size,), (size,), self.order)

    def matches(self, other: Layout) -> bool:
        return (self.nir_shape == other.nir_shape and self.lava_shape == other.lava_shape
                and np.array_equal(self.order, other.order))

    def to_lava(self, array: np.ndarray) -> np.ndarray:
        """(..., *nir_shape) -> (..., *lava_shape)."""
        lead = array.shape[:array.ndim - len(self.nir_shape)]
        flat = array.reshape((*lead, -1))
        return flat[..., self.order].reshape(lead + self.lava_shape)

    def to_nir(self, array: np.ndarray) -> np.ndarray:
        """(..., *lava_shape) -> (..., *nir_shape)."""
        lead = array.shape[:array.ndim - len(self.lava_shape)]
        flat = array.reshape((*lead, -1))
        out = np.empty_like(flat)
        out[..., self.order] = flat
        return out.reshape(lead + self.nir_shape)
