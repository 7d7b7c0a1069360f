"""Small NIR graphs as other tools write them (float, continuous-time neurons), with a
recurrent layer, and generated event streams to run them on."""

from __future__ import annotations

import nir
import numpy as np

DT = 1e-3


def lif(n: int, tau: float = 5e-3, threshold: float = 1.0) -> nir.LIF:
    return nir.LIF(tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n),
                   v_threshold=np.full(n, threshold), v_reset=np.zeros(n))


def recurrent_net(inputs: int = 6, hidden: int = 10, outputs: int = 4, seed: int = 0,
                  recurrent_gain: float = 1.0, feedback: bool = False) -> nir.NIRGraph:
    """input -> affine -> LIF (which feeds itself through ``rec``) -> linear -> LIF -> output,
    edges in snnTorch's order (the recurrent edge first). ``feedback``: the last LIF feeds
    the first through ``rec`` instead (a cycle of two synapse layers)."""
    rng = np.random.default_rng(seed)
    nodes = {
        "input": nir.Input(input_type=np.array([inputs])),
        "fc1": nir.Affine(weight=rng.normal(1.0, 1.5, (hidden, inputs)),
                          bias=rng.normal(0.05, 0.05, hidden)),
        "lif1": lif(hidden),
        "rec": nir.Linear(weight=recurrent_gain * rng.normal(
            -0.2, 1.0, (hidden, outputs if feedback else hidden))),
        "fc2": nir.Linear(weight=rng.normal(0.8, 1.0, (outputs, hidden))),
        "lif2": lif(outputs, tau=8e-3, threshold=0.8),
        "output": nir.Output(output_type=np.array([outputs])),
    }
    edges = [("rec", "lif1"), ("input", "fc1"), ("fc1", "lif1"), ("lif2" if feedback else "lif1",
                                                                   "rec"),
             ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")]
    return nir.NIRGraph(nodes, edges)


def event_streams(samples: int, steps: int, shape: tuple[int, ...], rate: float,
                  seed: int = 0) -> np.ndarray:
    """(samples, steps, *shape) spikes: each input fires with probability ``rate`` per step."""
    rng = np.random.default_rng(seed)
    return (rng.random((samples, steps, *shape)) < rate).astype(np.int32)
