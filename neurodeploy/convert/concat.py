"""``torch.cat`` along channels, mapped without a layer of its own.

A concatenation of spike maps only places them side by side, so the layer that reads it is
split instead: one synapse layer per part, each with the slice of the weights (input
channels, or Linear columns after a flatten) that reads that part, all feeding the one
population after the layer, as the two summands of a residual add do. Each part keeps its
own spike scale, and ``align_delays`` evens out parts of different depth.
"""

from __future__ import annotations

import itertools

import numpy as np

from neurodeploy.errors import UnsupportedLayer
from neurodeploy.frontend.ann import AnnGraph, AnnNode

HINT = ("torch.cat(..., dim=1) is mapped when its result feeds Conv2d (groups=1) or Linear "
        "layers, directly or through a flatten")


def check_readers(ann: AnnGraph, node: AnnNode, shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse a concatenation whose readers cannot be split by input channel; ``shapes`` are
    ``ann.shapes()``, which the converter has already run."""
    rank = len(shapes[node.inputs[0]]) + 1  # with the batch axis: dim=-3 of NCHW is 1
    if node.params["dim"] % rank != 1:
        raise UnsupportedLayer(f"concatenation along dimension {node.params['dim']}",
                               node=node.name, hint="Only channels (dim=1) are supported")
    for reader in ann.consumers(node.name):
        fits = (reader.op == "linear" or (reader.op == "conv2d" and reader.params["groups"] == 1)
                or (reader.op == "flatten"
                    and all(r.op == "linear" for r in ann.consumers(reader.name))))
        if not fits:
            raise UnsupportedLayer(f"the concatenation feeds '{reader.name}' ({reader.op}), "
                                   "which cannot be split by input channel", node=node.name,
                                   hint=HINT)


def split_weight(weight: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """The slices of ``weight``'s input axis (axis 1) that read parts of ``sizes`` each."""
    bounds = np.cumsum([0, *sizes])
    return [weight[:, lo:hi] for lo, hi in itertools.pairwise(bounds)]
