"""A float, forward-Euler simulator of plain NIR graphs: the oracle for the import tests.

Written from NIR's node equations (nir/ir/*.py docstrings), independently of
``neurodeploy.interop``: every step the input passes through the whole graph; neurons keep
their state between steps; a spike is 1 when ``v > v_threshold``, then ``v = v_reset``
(or ``v -= v_threshold`` with ``subtract``). A recurrent edge (one closing a cycle) carries
its source's output of the previous step (nothing at the first step). The input is static
(batch, *shape), the same every step, or a stream (batch, T, *shape).
"""

from __future__ import annotations

import nir
import numpy as np
import torch
import torch.nn.functional as F

from neurodeploy.core.graph import predecessors, topological_order


def simulate(graph: nir.NIRGraph, x: np.ndarray, timesteps: int, dt: float,
             subtract: bool = False) -> dict[str, np.ndarray]:
    """Every node's output at every step: name -> (T, batch, *shape)."""
    preds = predecessors(graph)
    order = topological_order(graph)
    (source,) = [n for n in graph.nodes.values() if isinstance(n, nir.Input)]
    stream = x.ndim == len(source.input_type["input"]) + 2
    state: dict[str, dict[str, np.ndarray]] = {name: {} for name in order}
    record: dict[str, list[np.ndarray]] = {name: [] for name in order}
    previous: dict[str, np.ndarray] = {}
    for t in range(timesteps):
        values: dict[str, np.ndarray] = {}
        for name in order:
            node = graph.nodes[name]
            if isinstance(node, nir.Input):
                inp = x[:, t] if stream else x
            else:  # a value not computed yet in this step comes from a recurrent edge
                inp = sum(values[p] if p in values else previous[p]
                          for p in preds[name] if p in values or p in previous)
            values[name] = _node(node, inp, state[name], dt, subtract)
            record[name].append(values[name])
        previous = values
    return {name: np.stack(steps) for name, steps in record.items()}


def _node(node: nir.NIRNode, inp: np.ndarray, st: dict, dt: float, subtract: bool
          ) -> np.ndarray:
    t = torch.as_tensor(np.asarray(inp, np.float64))
    if isinstance(node, (nir.Input, nir.Output)):
        return inp
    if isinstance(node, nir.Affine):
        return inp @ node.weight.T + node.bias
    if isinstance(node, nir.Linear):
        return inp @ node.weight.T
    if isinstance(node, nir.Conv2d):
        out = F.conv2d(t, torch.as_tensor(node.weight, dtype=torch.float64),
                       torch.as_tensor(node.bias, dtype=torch.float64), tuple(node.stride),
                       tuple(node.padding), tuple(node.dilation), int(node.groups))
        return out.numpy()
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        kernel = tuple(int(k) for k in node.kernel_size)
        out = F.avg_pool2d(t, kernel, tuple(int(s) for s in node.stride),
                           tuple(int(p) for p in node.padding)).numpy()
        return out * np.prod(kernel) if isinstance(node, nir.SumPool2d) else out
    if isinstance(node, nir.Flatten):
        return inp.reshape(len(inp), -1)
    if isinstance(node, nir.Scale):
        return inp * node.scale
    if isinstance(node, nir.Threshold):
        return (inp > node.threshold).astype(np.float64)
    v = st.get("v", np.zeros_like(inp))
    if isinstance(node, nir.CubaLIF):
        current = st.get("i", np.zeros_like(inp))
        current = current + dt / node.tau_syn * (-current + node.w_in * inp)
        st["i"] = current
        v = v + dt / node.tau_mem * (node.v_leak - v + node.r * current)
    elif isinstance(node, (nir.LIF, nir.LI)):
        v = v + dt / node.tau * (node.v_leak - v + node.r * inp)
    else:  # IF, I
        v = v + dt * node.r * inp
    if isinstance(node, (nir.LI, nir.I)):
        st["v"] = v
        return v
    spikes = v > node.v_threshold
    v_reset = 0.0 if node.v_reset is None else node.v_reset
    reset = v - node.v_threshold if subtract else np.zeros_like(v) + v_reset
    st["v"] = np.where(spikes, reset, v)
    return spikes.astype(np.float64)
