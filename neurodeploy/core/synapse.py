"""The synapse arithmetic: what a Linear, Conv2d, SumPool2d or Flatten node does to the
values entering it. The reference simulator runs it on spikes; the capacity allocator, the
operation counter and NIR import run it on patterns and shapes, so every analysis sees the
layer exactly as the simulator computes it."""

from __future__ import annotations

from math import prod

import nir
import numpy as np
import torch
import torch.nn.functional as F

from neurodeploy.errors import MetadataError
from neurodeploy.nir_compat import replace_node

FLOAT32_EXACT = 1 << 24  #: integers below this are exact in float32 sums


def synapse(node: nir.NIRNode, x: torch.Tensor) -> torch.Tensor:
    """One synapse layer on a (batch, *shape) tensor, in the tensor's dtype."""
    dtype = x.dtype
    if isinstance(node, nir.Linear):
        return x @ torch.as_tensor(node.weight, dtype=dtype).T
    if isinstance(node, nir.Conv2d):
        return F.conv2d(x, torch.as_tensor(node.weight, dtype=dtype), None,
                        _pair(node.stride), _pair(node.padding), _pair(node.dilation),
                        int(node.groups))
    if isinstance(node, nir.SumPool2d):
        return F.avg_pool2d(x, _pair(node.kernel_size), _pair(node.stride), _pair(node.padding),
                            count_include_pad=True, divisor_override=1)
    if isinstance(node, nir.Flatten):
        return x.reshape(x.shape[0], -1)
    raise MetadataError(f"the reference simulator cannot run a {type(node).__name__} node")


def dense(x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``x`` in ``dtype`` (its own by default), channels-last when it is a 4-D map: the layout
    the convolutions run fastest on, reached in one copy (converting, then reordering, copies
    twice)."""
    if x.dim() == 4:
        return x.to(dtype=dtype or x.dtype, memory_format=torch.channels_last)
    return x if dtype is None else x.to(dtype)


def fan_out(node: nir.NIRNode, input_shape: tuple[int, ...]) -> np.ndarray:
    """Synapses each input position of a synapse layer drives (its nonzero weights; every
    window position for a sum pool): the gradient of the layer's summed output over a
    0/1 pattern of its weights, so stride, padding, dilation and groups count exactly."""
    x = torch.ones((1, *input_shape), dtype=torch.float64, requires_grad=True)
    synapse(nonzero_pattern(node), x).sum().backward()
    return np.rint(x.grad[0].numpy()).astype(np.int64)


def nonzero_pattern(node: nir.NIRNode) -> nir.NIRNode:
    """``node`` with every nonzero weight replaced by 1 (nodes without weights unchanged):
    propagating counts through it counts synapses."""
    if getattr(node, "weight", None) is None:
        return node
    return replace_node(node, weight=(np.asarray(node.weight) != 0).astype(np.float64))


def propagate(node: nir.NIRNode, values: np.ndarray) -> np.ndarray:
    """Float values (batch, *shape) of one step through a synapse layer, flatten or delay,
    computed as the simulator computes them (a delay only shifts time, so one step passes
    through unchanged). For analyses that must agree with the simulator."""
    return propagate_tensor(node, torch.as_tensor(values, dtype=torch.float64)).numpy()


def propagate_tensor(node: nir.NIRNode, values: torch.Tensor) -> torch.Tensor:
    """``propagate`` on a tensor, so autograd can run a chain backwards."""
    return values if isinstance(node, nir.Delay) else synapse(node, values)


def count_nonzero(x: torch.Tensor, lead: int) -> torch.Tensor:
    """int64 count of nonzero entries per position over the first ``lead`` axes.

    Reduces a 2-D view in memory order (channels-last maps stay channels-last): a reduction
    over strided axes is several times slower. The 0/1 bytes are summed as int32 (exact
    below 2^31 terms) by numpy, which adds them row by row: ten times faster than torch's
    sum over the leading axis, which took a third of scoring a candidate."""
    rest = sorted(range(lead, x.dim()), key=lambda a: -x.stride(a))
    flat = x.permute(*range(lead), *rest).reshape(-1, prod(x.shape[a] for a in rest)).numpy()
    exact = np.int32 if flat.shape[0] < 2**31 else np.int64
    counts = np.add.reduce((flat != 0).view(np.uint8), axis=0, dtype=exact).astype(np.int64)
    return torch.from_numpy(counts.reshape([x.shape[a] for a in rest])).permute(
        *(rest.index(a) for a in range(lead, x.dim())))


def _pair(value) -> tuple[int, int]:
    arr = np.broadcast_to(np.asarray(value, dtype=np.int64), (2,))
    return int(arr[0]), int(arr[1])
