"""The neurodeploy neuron as a Lava Process: its interface (ports and state), no behaviour.

The behaviour is ``neurodeploy.neuron.step`` (see that module for the equations), run by the
``fixed_pt`` model in ``models.py``. On top of the rule the process knows its place in a
pipelined run of many samples, each ``window`` steps long: the population processes sample
k during Lava steps [k*window + offset, (k+1)*window + offset) (0-based), restarts from
(v_init, c=0) at the first step of each window, and stays silent before its first window.
``v_out`` sends the membrane every step so that a recorder can stream it to the host
(reading a Var back through Lava's management pipe goes element by element: too slow).
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class NeuronProcess(AbstractProcess):
    """A population of integer neurons with graded, signed spikes.

    Array parameters must already have the process ``shape`` (Lava's XYC layout for
    feature maps). ``fires=False`` makes the readout integrator, which never spikes.
    ``bias_table`` (window, *shape), when given, is subtracted at each step of a window.
    ``input_shift``, ``decay`` and ``hard_reset`` are the rule's parameters of the same names.
    """

    def __init__(self, *, shape: tuple[int, ...], theta: np.ndarray, bias: np.ndarray,
                 v_init: np.ndarray, theta_neg: np.ndarray, max_burst: int, window: int,
                 offset: int, dual: bool, fires: bool, membrane_bits: int,
                 input_shift: int = 0, decay: np.ndarray | int = 0, hard_reset: bool = False,
                 bias_table: np.ndarray | None = None, name: str | None = None) -> None:
        super().__init__(shape=shape, dual=dual, fires=fires, membrane_bits=membrane_bits,
                         input_shift=input_shift, hard_reset=hard_reset,
                         bias_table=bias_table, name=name)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.v_out = OutPort(shape=shape)  #: membrane after each step, for recording only
        self.v = Var(shape=shape, init=v_init)
        self.c = Var(shape=shape, init=0)  #: net spike count, guards negative spikes
        self.theta = Var(shape=shape, init=theta)
        self.theta_neg = Var(shape=shape, init=theta_neg)
        self.bias = Var(shape=shape, init=bias)
        self.v_init = Var(shape=shape, init=v_init)
        self.decay = Var(shape=shape, init=decay)  #: leak in 1/4096 per step (imported nets)
        self.max_burst = Var(shape=(1,), init=max_burst)
        self.window = Var(shape=(1,), init=window)
        self.offset = Var(shape=(1,), init=offset)


class DelayProcess(AbstractProcess):
    """Sends what it received ``delay`` steps earlier (zeros before that): a ``nir.Delay``
    that align_delays put on a residual shortcut so both paths reach the merge together."""

    def __init__(self, *, shape: tuple[int, ...], delay: int, name: str | None = None) -> None:
        super().__init__(shape=shape, delay=delay, name=name)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.buffer = Var(shape=(delay, *shape), init=0)  #: ring of the last ``delay`` inputs
