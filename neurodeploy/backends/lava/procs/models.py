"""Bit-accurate ``fixed_pt`` models: ``NeuronProcess``, whose arithmetic is one call to
``neurodeploy.neuron.step`` (so Lava and the reference simulator run the same ``neuron.rule``),
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

from neurodeploy import neuron
from neurodeploy.backends.lava.procs.process import DelayProcess, NeuronProcess


def _int_var(precision: int = 24) -> LavaPyType:
    return LavaPyType(np.ndarray, np.int32, precision=precision)


@implements(proc=NeuronProcess, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyNeuronModelFixed(PyLoihiProcessModel):
    """Windowed driver around ``neuron.step`` (window timing: see ``process.py``)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    v: np.ndarray = _int_var()
    c: np.ndarray = _int_var()
    theta: np.ndarray = _int_var()
    theta_neg: np.ndarray = _int_var()
    bias: np.ndarray = _int_var()
    v_init: np.ndarray = _int_var()
    decay: np.ndarray = _int_var(13)
    max_burst: np.ndarray = _int_var(8)
    window: np.ndarray = _int_var(16)
    offset: np.ndarray = _int_var(16)

    def __init__(self, proc_params: Any) -> None:
        super().__init__(proc_params)
        self.dual = bool(proc_params["dual"])
        self.fires = bool(proc_params["fires"])
        self.membrane_bits = int(proc_params["membrane_bits"])
        self.input_shift = int(proc_params["input_shift"])
        self.hard_reset = bool(proc_params["hard_reset"])
        self.bias_table = proc_params["bias_table"]

    def run_spk(self) -> None:
        current = self.a_in.recv()
        t = self.time_step - 1 - int(self.offset[0])  # step since the first window began
        if t < 0:  # the first sample has not reached this population yet
            self.s_out.send(np.zeros_like(self.v))
            self.v_out.send(self.v)
            return
        params = self._params()
        step_in_window = t % int(self.window[0])
        if step_in_window == 0:
            self.v[:], self.c[:] = neuron.initial_state(params, self.v)
        v, c, s = neuron.step(self.v, self.c, current, params, step_in_window)
        self.v[:] = v
        self.c[:] = c
        self.s_out.send(s)
        self.v_out.send(self.v)

    def _params(self) -> neuron.NeuronParams:
        return neuron.NeuronParams(
            theta=self.theta, bias=self.bias, v_init=self.v_init, theta_neg=self.theta_neg,
            max_burst=int(self.max_burst[0]), dual=self.dual, fires=self.fires,
            membrane_bits=self.membrane_bits, input_shift=self.input_shift,
            bias_table=self.bias_table, decay=self.decay, hard_reset=self.hard_reset)


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
