"""A fix for nir 1.0.8's ``Conv2d`` types, applied once when neurodeploy is imported.

``nir.Conv2d.__post_init__`` takes the input channels from ``weight.shape[1]``, which is the
channels *per group* (wrong whenever ``groups > 1``), and computes both output sizes from
``weight.shape[2]`` alone (wrong for kernels that are not square). A graph holding a depthwise
or a 3x1 convolution then fails NIR's own type check when it is built or read back. The patch
runs NIR's ``__post_init__`` and then recomputes both types from the whole kernel shape and
``groups``; for the convolutions NIR gets right it changes nothing.
"""

from __future__ import annotations

import nir
import numpy as np
from nir.ir.utils import calculate_conv_output

_original_post_init = nir.Conv2d.__post_init__


def _conv2d_post_init(self: nir.Conv2d) -> None:
    _original_post_init(self)
    if self.input_shape is None:
        return
    channels = int(self.weight.shape[1]) * int(self.groups)
    self.input_type = {"input": np.array([channels, *self.input_shape])}
    size = calculate_conv_output(self.input_shape, self.padding, self.dilation,
                                 tuple(self.weight.shape[2:]), self.stride)
    self.output_type = {"output": np.array([self.weight.shape[0], *size])}


def install() -> None:
    """Idempotent: patch ``nir.Conv2d`` if it is not patched yet."""
    if nir.Conv2d.__post_init__ is not _conv2d_post_init:
        nir.Conv2d.__post_init__ = _conv2d_post_init


def original_conv2d_types(node: nir.Conv2d) -> tuple[np.ndarray, np.ndarray]:
    """(input, output) shapes as unpatched nir computes them (tests use it to see whether the
    patch is still needed)."""
    probe = object.__new__(nir.Conv2d)
    probe.__dict__.update(node.__dict__)
    _original_post_init(probe)
    return probe.input_type["input"], probe.output_type["output"]
