"""The neurodeploy neuron as a Lava Process: its interface (ports and state), no behaviour.

The behaviour is ``neurodeploy.core.neuron.step`` (see that module for the equations), run by the
``fixed_pt`` model in ``models.py``. On top of the rule the process knows its place in a
pipelined run of many samples, each ``window`` steps long: the population processes sample
k during Lava steps [k*window + offset, (k+1)*window + offset) (0-based), restarts from
(v_init, c=0) at the first step of each window, and stays silent before its first window.
Recurrent inputs arrive at ``r_in``; in the first ``recurrent_delay`` steps of a window they
still carry the previous sample's spikes, so they are ignored there (a recurrent edge
delivers nothing before its delay, as in the reference simulator).
``v_out`` sends the membrane every step so that a recorder can stream it to the host
(reading a Var back through Lava's management pipe goes element by element: too slow).
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from neurodeploy.core.neuron import NeuronParams


class NeuronProcess(AbstractProcess):
    """A population of integer neurons with graded, signed spikes.

    ``params`` are the rule's parameters, whole, with arrays already in the process
    ``shape`` (Lava's XYC layout for feature maps); the model hands them to the rule
    unchanged, so a new parameter of the rule needs nothing here.
    """

    def __init__(self, *, shape: tuple[int, ...], params: NeuronParams, window: int,
                 offset: int, recurrent_delay: int = 0, name: str | None = None) -> None:
        super().__init__(shape=shape, params=params, window=window, offset=offset,
                         recurrent_delay=recurrent_delay, name=name)
        self.a_in = InPort(shape=shape)
        self.r_in = InPort(shape=shape)  #: recurrent edges (core/graph.py back_edges)
        self.s_out = OutPort(shape=shape)
        self.v_out = OutPort(shape=shape)  #: membrane after each step, for recording only
        self.v = Var(shape=shape, init=np.array(np.broadcast_to(params.v_init, shape)))
        self.c = Var(shape=shape, init=0)  #: net spike count, guards negative spikes
        self.u = Var(shape=shape, init=0)  #: synaptic current (a filtered population's)


class DelayProcess(AbstractProcess):
    """Sends what it received ``delay`` steps earlier (zeros before that): a ``nir.Delay``
    that align_delays put on a residual shortcut so both paths reach the merge together."""

    def __init__(self, *, shape: tuple[int, ...], delay: int, name: str | None = None) -> None:
        super().__init__(shape=shape, delay=delay, name=name)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.buffer = Var(shape=(delay, *shape), init=0)  #: ring of the last ``delay`` inputs
