"""Run a netx HDF5 file in lava-dl's ``hdf5.Network`` on Lava's bit-accurate CPU simulation.

Samples run back to back as in the Lava backend: sample k is injected (graded, every step of
its window) during steps [k*T, (k+1)*T); each dense block adds one step, so block i sees it
one step later per block. ``reset_interval=T, reset_offset=1`` makes netx zero every block's
LIF state at the first step of each of its windows (netx adds the block index to the offset
itself). Records are cut into per-sample windows: the same ideal time frame as a ``Trace``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurodeploy.errors import InputError

INPUT_MESSAGE_BITS = 16  #: graded input; Dense passes any payload through when this is > 0


@dataclass
class NetxTrace:
    spikes: list[np.ndarray]  #: per hidden block, (T, batch, *shape) 0/1, NIR layout
    outputs: np.ndarray  #: last block's membrane after each window, integer units (batch, n)


def run_netx(path: str | Path, inputs: np.ndarray, timesteps: int) -> NetxTrace:
    """``inputs``: (batch, *shape) integers in NIR layout (flattened for a first dense
    block, moved to (X, Y, C) for a first conv block)."""
    from neurodeploy.backends.lava.compat import install
    from neurodeploy.interop.netx import STATE_SHIFT

    install()  # before the first lava import
    from lava.lib.dl.netx import hdf5
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer
    from lava.proc.monitor.process import Monitor

    x = np.asarray(inputs)
    if not np.issubdtype(x.dtype, np.integer) or len(x) == 0 or timesteps < 1:
        raise InputError("netx runs need integer inputs, one sample and one timestep at least")
    net = hdf5.Network(net_config=str(path), input_message_bits=INPUT_MESSAGE_BITS,
                       reset_interval=timesteps, reset_offset=1)
    shape = tuple(int(d) for d in net.inp.shape)
    depth = len(net.layers)
    steps = len(x) * timesteps + depth
    data = np.zeros((*shape, steps), np.int32)
    data[..., :len(x) * timesteps] = np.moveaxis(np.repeat(_lava_layout(x, shape), timesteps,
                                                           axis=0), 0, -1)
    source = RingBuffer(data=data)
    source.s_out.connect(net.inp)
    monitors = []
    for i, block in enumerate(net.layers):
        monitor = Monitor()
        monitor.probe(block.neuron.v if i == depth - 1 else block.neuron.s_out, steps)
        monitors.append(monitor)
    try:
        net.run(condition=RunSteps(num_steps=steps),
                run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        records = [next(iter(next(iter(m.get_data().values())).values())) for m in monitors]
    finally:
        net.stop()
    windows = [_windows(r, i + 1, len(x), timesteps) for i, r in enumerate(records)]
    outputs = windows[-1][-1] / 2**STATE_SHIFT
    return NetxTrace(spikes=[w.astype(np.int32) for w in windows[:-1]],
                     outputs=np.rint(outputs).astype(np.int64))


def _lava_layout(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(batch, C, H, W) or (batch, ...) -> netx's input layout: (X, Y, C) or flat."""
    if len(shape) == 3:
        return x.reshape(len(x), shape[2], shape[1], shape[0]).transpose(0, 3, 2, 1)
    return x.reshape(len(x), -1)


def _windows(record: np.ndarray, hop: int, batch: int, timesteps: int) -> np.ndarray:
    """(steps, *shape) record of a block ``hop`` synapses deep -> (T, batch, *nir_shape):
    a conv block's (X, Y, C) back to (C, H, W)."""
    window = record[hop:hop + batch * timesteps]
    window = window.reshape(batch, timesteps, *window.shape[1:]).swapaxes(0, 1)
    return window.transpose(0, 1, 4, 3, 2) if window.ndim == 5 else window
