"""The Lava backend: runs a quantized graph in lava-nc's bit-accurate CPU simulation.

All samples of a batch run back to back in ONE Lava session (building and starting the
processes costs far more than a step, see docs/backends/lava.md): sample k enters during
steps [k*T, (k+1)*T) and each population restarts its state at the start of every window.
Records are cut into per-sample windows and returned in the ideal time frame.
"""

from __future__ import annotations

from time import perf_counter
from typing import ClassVar

import nir
import numpy as np
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel

from neurodeploy.backends.base import Record, Trace
from neurodeploy.backends.lava.build import RECORD_BUFFER, LavaNetwork, build_network
from neurodeploy.backends.lava.session import abort, workers_starting
from neurodeploy.core.encoding import check_inputs, readout_logits
from neurodeploy.core.meta import get_graph_meta
from neurodeploy.errors import InputError, MetadataError

#: bit-accurate models; the Extractor's models carry no tag, so name the synchronous one
RUN_CONFIG = Loihi2SimCfg(select_tag="fixed_pt",
                          exception_proc_model_map={Extractor: PyLoihiExtractorModel})


class LavaBackend:
    """``run`` builds a fresh process network per call; timings of the last call are kept."""

    name: ClassVar[str] = "lava"

    def __init__(self) -> None:
        self.last_setup_seconds = 0.0  #: compile + start the runtime (forks one OS process each)
        self.last_run_seconds = 0.0  #: stepping the network, records streamed meanwhile
        self.last_steps = 0  #: Lava steps of the last run: batch * T + pipeline depth
        self.last_processes = 0  #: Lava processes of the last run

    def run(self, graph: nir.NIRGraph, inputs: np.ndarray, timesteps: int, *,
            record: Record = Record.OUTPUT) -> Trace:
        gmeta = get_graph_meta(graph)
        if not gmeta.quantized:
            raise MetadataError("graph is not quantized; run the integer passes first")
        inputs = np.asarray(inputs)
        check_inputs(graph, inputs, timesteps)
        if timesteps < 1 or len(inputs) == 0:
            raise InputError("need at least one timestep and one sample")
        if record.currents:
            raise InputError("the Lava backend does not record synaptic currents",
                             hint="Record them with the reference backend")
        net = build_network(graph, gmeta, inputs, timesteps, record)
        windows: dict[str, dict[str, np.ndarray]] = {"spikes": {}, "membranes": {}}
        for (kind, name), series in self._execute(net).items():
            windows[kind][name] = _windows(net, name, series, len(inputs), timesteps)
        output_steps = windows["membranes"][net.readout]
        if not record.membranes:
            del windows["membranes"][net.readout]
        outputs = output_steps[-1].copy()  # not a view: kept outputs must not keep every step
        events = {name: np.count_nonzero(s, axis=(0, 1)) for name, s in windows["spikes"].items()}
        return Trace(timesteps=timesteps, outputs=outputs,
                     logits=readout_logits(graph, outputs, timesteps), output_steps=output_steps,
                     spikes=windows["spikes"] if record.spikes else {},
                     membranes=windows["membranes"], offsets=dict(net.offsets), events=events)

    def _execute(self, net: LavaNetwork) -> dict[tuple[str, str], np.ndarray]:
        """Run all steps in chunks that fit the recorders' channel buffers, draining them
        after each chunk (a full recorder would block the run; shared memory stays bounded).

        Returns ("spikes" | "membranes", population) -> (steps, *lava_shape) records.
        """
        records = {key: np.empty((net.steps, *rec.in_port.shape), np.int64)
                   for key, rec in net.recorders.items()}
        start = perf_counter()
        try:
            with workers_starting():
                net.source.create_runtime(run_cfg=RUN_CONFIG)
            started = perf_counter()
            for first in range(0, net.steps, RECORD_BUFFER):
                chunk = min(RECORD_BUFFER, net.steps - first)
                net.source.run(condition=RunSteps(num_steps=chunk))
                for step in range(first, first + chunk):
                    for key, recorder in net.recorders.items():
                        records[key][step] = recorder.receive()
            net.source.stop()
        except BaseException:  # an interrupt or a failed worker: Lava's stop() could hang
            abort(net.source)
            raise
        self.last_setup_seconds = started - start
        self.last_run_seconds = perf_counter() - started
        self.last_steps = net.steps
        self.last_processes = len(net.processes)
        return records


def _windows(net: LavaNetwork, name: str, series: np.ndarray, batch: int, timesteps: int
             ) -> np.ndarray:
    """(steps, *lava_shape) record -> (T, batch, *nir_shape): sample k's window of ``name``."""
    start = net.offsets[name]
    layout = net.layouts[name]
    window = series[start:start + batch * timesteps].reshape(batch, timesteps, *layout.lava_shape)
    return layout.to_nir(window.swapaxes(0, 1))
