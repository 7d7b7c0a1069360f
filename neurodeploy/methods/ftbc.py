"""FTBC: forward temporal bias correction (Wu et al. 2024; algorithms.md §5), a refiner.

Each population gets a per-step, per-channel bias table ``b_t[c]``, subtracted from the
membrane at step t (``neuron.py``). It is computed forward only, layer by layer in network
order, on a few batches of unlabeled images: the layer's synaptic input at each step is
recorded from the deployed integer network (with its upstream layers already corrected), then
the neuron is replayed step by step; at each step the error ``e_t = s_t - a`` between the value
it sends and the ANN activation ``a`` (clipped to what the neuron can send,
``max_burst * theta``) is pushed into ``b_t[c]`` with step ``alpha`` (its mean over the batch
and positions), and the replay continues from the corrected membrane ``m - e_t``, as if the
error had been removed.

The currents come from the kept deployed network (``methods.deployed``): correcting a layer
re-simulates only it and what follows, so the cost grows linearly with depth. The replay runs
the neuron rule itself (``neuron.step``) on the recorded currents with the
deployed integer parameters, so it covers every part of the rule (bursts, the dual threshold,
input shift, saturation, leak, reset to zero); the table is stored in ANN units and rounded by
the ``quantize_bias`` pass like the bias.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import nir
import numpy as np

from neurodeploy.core import neuron
from neurodeploy.core.meta import population_meta
from neurodeploy.methods.base import MethodContext
from neurodeploy.methods.calibration import correction_images
from neurodeploy.methods.corrections import firing, with_note, with_population
from neurodeploy.methods.deployed import DeployedNetwork
from neurodeploy.methods.probe import ann_activations
from neurodeploy.progress import progress

ALPHA = 0.4  #: the authors' script (curr_t_alpha)
BATCHES = 3  #: the authors' number of calibration batches


@dataclass(frozen=True)
class Ftbc:
    name: str = "ftbc"
    builds: bool = False
    needs_calibration: bool = True
    window_specific: bool = True
    alpha: float = ALPHA
    batches: int = BATCHES

    def __call__(self, graph: nir.NIRGraph | None, ctx: MethodContext) -> nir.NIRGraph:
        start = time.perf_counter()
        steps = ctx.options.timesteps
        for name in firing(graph):
            meta = population_meta(graph, name)
            channels = int(graph.nodes[name].input_type["input"][0])
            table = np.zeros((steps, channels)) if meta.bias_table is None else \
                np.asarray(meta.bias_table, np.float64)
            graph = with_population(graph, name, bias_table=table)
        images = correction_images(ctx, self.name)
        # fewer images than batches: one image a batch
        batches = [images[b::self.batches] for b in range(min(self.batches, len(images)))]
        nets = [DeployedNetwork(graph, x, ctx) for x in batches]
        targets = [ann_activations(ctx, x, graph) for x in batches]
        work = [(b, name) for b in range(len(batches)) for name in firing(graph)]
        for batch, name in progress(work, self.name, ctx.show_progress):
            increment = _step_errors(graph, nets[batch], targets[batch][name], name)
            table = population_meta(graph, name).bias_table + self.alpha * increment
            graph = with_population(graph, name, bias_table=table)
        tables = {n: float(np.abs(population_meta(graph, n).bias_table).max())
                  for n in firing(graph)}
        return with_note(graph, self.name, {"alpha": self.alpha, "batches": len(batches),
                                            "max_abs_bias_table": tables,
                                            "seconds": time.perf_counter() - start})


def _step_errors(graph: nir.NIRGraph, net: DeployedNetwork, activation: np.ndarray, name: str
                 ) -> np.ndarray:
    """(T, C) per-step, per-channel mean error (ANN units) of population ``name`` against its
    ANN ``activation`` on ``net``'s images: its deployed synaptic currents, replayed
    (``replay_errors``)."""
    currents, meta = net.currents(graph, name)
    unit = 2.0 ** meta.exponent
    params = meta.neuron_params(currents.shape[2:])
    target = np.minimum(activation / unit, meta.max_burst * params.theta.astype(np.int64))
    return replay_errors(currents, params, target) * unit


def replay_errors(currents: np.ndarray, params: neuron.NeuronParams, target: np.ndarray
                  ) -> np.ndarray:
    """(T, C) per-step, per-channel mean error (membrane units) between what the neurons
    send and ``target`` (batch, C, ...), replaying ``currents`` (T, batch, C, ...) through the
    rule with each step's error removed from the input before the next step."""
    theta = params.theta.astype(np.int64)
    v, c, u = neuron.initial_state(params, currents[0])
    kernel = neuron.Kernel.of(params, v)  # mapped once for the 2T steps below
    errors = np.zeros((len(currents), currents.shape[2]))
    for t, current in enumerate(currents.astype(np.int64)):
        sent = kernel.step(v.copy(order="K"), c.copy(order="K"), u.copy(order="K"), current, t)
        error = sent * theta - target
        errors[t] = error.reshape(len(error), currents.shape[2], -1).mean(axis=(0, 2))
        # removed from the integrated input: a whole number of membrane units, which passes
        # the rule's rounding input shift unchanged when scaled by 2**shift
        removed = np.rint(error).astype(np.int64) << params.input_shift
        kernel.step(v, c, u, current - removed, t)
    return errors
