"""Membrane-potential calibration: per-neuron ``v_init`` from unlabeled images.

``v_init += T * (mean ANN activation - mean SNN rate)`` per neuron, layer by layer in network
order, the rates measured on the deployed integer network (``methods.deployed``). A neuron whose
spikes on average fall short of (or overshoot) its ANN activation starts the window with
the charge that closes the gap (SNN calibration's potential correction, dual-phase phase II
(a); algorithms.md §2.3B, §3.3). It is specific to the window length T it was measured at.
"""

from __future__ import annotations

import nir
import numpy as np

from neurodeploy.core.meta import population_meta
from neurodeploy.core.population import param_for_shape
from neurodeploy.methods.base import MethodContext
from neurodeploy.methods.corrections import layer_by_layer, with_population
from neurodeploy.methods.deployed import DeployedNetwork
from neurodeploy.methods.probe import ActivationStream


def calibrate_potentials(snn: nir.NIRGraph, images: np.ndarray, ctx: MethodContext,
                         description: str = "v_init calibration") -> nir.NIRGraph:
    """Every firing population's v_init, in network order."""
    targets = ActivationStream(ctx, images, snn)
    net = DeployedNetwork(snn, images, ctx)
    for pop in layer_by_layer(snn, net, description, ctx.show_progress):
        snn = calibrate_potential(snn, pop, net, targets.pop(pop))
    return snn


def calibrate_potential(snn: nir.NIRGraph, pop: str, net: DeployedNetwork, target: np.ndarray
                        ) -> nir.NIRGraph:
    """v_init of ``pop`` += T * (mean ANN activation - mean deployed SNN rate), per neuron."""
    shift = net.steps * (target.mean(axis=0) - net.mean_rates(snn, pop))
    v_init = np.asarray(population_meta(snn, pop).v_init, np.float64)
    return with_population(snn, pop, v_init=param_for_shape(v_init, shift.shape) + shift)
