"""Bit-accurate ``fixed_pt`` models: ``NeuronProcess``, whose arithmetic is one call to
``neurodeploy.core.neuron.step`` (so Lava and the reference simulator run the same ``neuron.rule``),
and ``DelayProcess``, a ring buffer."""

from __future__ import annotations

from typing import Any

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from neurodeploy.backends.lava.procs.process import DelayProcess, NeuronProcess
from neurodeploy.core import neuron


def _int_var(precision: int = 24) -> LavaPyType:
    return LavaPyType(np.ndarray, np.int32, precision=precision)


@implements(proc=NeuronProcess, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyNeuronModelFixed(PyLoihiProcessModel):
    """Windowed driver around ``neuron.step`` (window timing: see ``process.py``)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    r_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    v: np.ndarray = _int_var()
    c: np.ndarray = _int_var()
    u: np.ndarray = _int_var()

    def __init__(self, proc_params: Any) -> None:
        super().__init__(proc_params)
        self.params: neuron.NeuronParams = proc_params["params"]
        self.window = int(proc_params["window"])
        self.offset = int(proc_params["offset"])
        self.recurrent_delay = int(proc_params["recurrent_delay"])
        self.kernel: neuron.Kernel | None = None  #: made at the first step, from v's layout

    def run_spk(self) -> None:
        current = self.a_in.recv()
        recurrent = self.r_in.recv()
        t = self.time_step - 1 - self.offset  # step since the first window began
        if t < 0:  # the first sample has not reached this population yet
            self.s_out.send(np.zeros_like(self.v))
            self.v_out.send(self.v)
            return
        if self.kernel is None:
            self.kernel = neuron.Kernel.of(self.params, self.v)
        step_in_window = t % self.window
        if step_in_window == 0:
            self.v[:], self.c[:], self.u[:] = neuron.initial_state(self.params, self.v)
        if step_in_window >= self.recurrent_delay:
            current = current + recurrent
        self.s_out.send(self.kernel.step(self.v, self.c, self.u, current, step_in_window))
        self.v_out.send(self.v)


@implements(proc=DelayProcess, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyDelayModelFixed(PyLoihiProcessModel):
    """Step s sends the input of step s - delay: the slot it overwrites next."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    buffer: np.ndarray = _int_var()

    def run_spk(self) -> None:
        slot = (self.time_step - 1) % self.buffer.shape[0]
        received = self.a_in.recv()
        self.s_out.send(self.buffer[slot].copy())
        self.buffer[slot] = received
