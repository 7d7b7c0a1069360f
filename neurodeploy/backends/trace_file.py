"""A trace of many samples written chunk by chunk, so that saving every step of every sample
does not need them all in memory at once.

Each per-sample array goes to its own .npy file in a scratch directory: its header gives
the whole run's shape, and each chunk's rows are written at their place (for a (T, batch,
...) array, one block per step). ``write_npz`` then copies the files into one .npz archive,
file by file, in the layout ``Trace.save`` writes and ``Trace.load`` reads. Only the
readout (``outputs``), summed counts and the run's constants stay in memory.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurodeploy.backends.base import BATCH_AXIS, SUMMED, Trace


@dataclass(frozen=True)
class _Part:
    """One per-sample array on disk: where its data starts and one sample's row size."""

    path: Path
    start: int
    row_bytes: int


class TraceFile:
    """Collects the traces of consecutive chunks of ``samples`` samples (``add``) into files
    in ``scratch``, a directory the caller removes afterwards."""

    def __init__(self, samples: int, scratch: Path):
        self.samples = samples
        self._scratch = scratch
        self._parts: dict[str, _Part] = {}
        self._summed: dict[str, dict] = {kind: {} for kind in SUMMED}
        self._constants: dict[str, np.ndarray] = {}
        self.outputs = None  #: (samples, n_out) readout, filled as chunks arrive

    @property
    def events(self) -> dict[str, np.ndarray]:
        """Spike events per neuron, summed over the samples added so far."""
        return self._summed["events"]

    def add(self, trace: Trace, rows: slice) -> None:
        """Write ``trace``, the run of samples ``rows``, at its place."""
        if self.outputs is None:
            self.outputs = np.empty((self.samples, *trace.outputs.shape[1:]),
                                    trace.outputs.dtype)
            self._constants = {"timesteps": np.array(trace.timesteps)} | {
                f"offsets/{pop}": np.asarray(v) for pop, v in trace.offsets.items()}
        self.outputs[rows] = trace.outputs
        for key, value in _per_sample(trace):
            self._write(key, value, BATCH_AXIS[key.split("/")[0]], rows)
        for kind in SUMMED:
            total = self._summed[kind]
            for pop, value in getattr(trace, kind).items():
                total[pop] = total.get(pop, 0) + value

    def write_npz(self, path: str) -> None:
        """Every array added into the .npz file ``path`` (deflated, as ``Trace.save``)."""
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for key, part in self._parts.items():
                archive.write(part.path, f"{key}.npy")
            small = self._constants | {f"{kind}/{pop}": np.asarray(value)
                                       for kind in SUMMED
                                       for pop, value in self._summed[kind].items()}
            for key, value in small.items():
                buffer = io.BytesIO()
                np.save(buffer, value)
                archive.writestr(f"{key}.npy", buffer.getvalue())

    def _write(self, key: str, value: np.ndarray, axis: int, rows: slice) -> None:
        """A batch-first array's rows are one block; a (T, batch, ...) array's, one per step."""
        part = self._parts.get(key) or self._create(key, value, axis)
        blocks = [value] if axis == 0 else list(value)
        with open(part.path, "r+b") as stream:
            for step, block in enumerate(blocks):
                stream.seek(part.start + (step * self.samples + rows.start) * part.row_bytes)
                stream.write(np.ascontiguousarray(block).tobytes())

    def _create(self, key: str, value: np.ndarray, axis: int) -> _Part:
        shape = (*value.shape[:axis], self.samples, *value.shape[axis + 1:])
        path = self._scratch / f"{len(self._parts)}.npy"
        with open(path, "wb") as stream:
            np.lib.format.write_array_header_1_0(stream, {
                "descr": np.lib.format.dtype_to_descr(value.dtype), "fortran_order": False,
                "shape": shape})
            start = stream.tell()
            stream.truncate(start + int(np.prod(shape)) * value.dtype.itemsize)
        row = int(np.prod(value.shape[axis + 1:])) * value.dtype.itemsize
        part = self._parts[key] = _Part(path, start, row)
        return part


def _per_sample(trace: Trace):
    """(key, array) of every per-sample array, keys as ``Trace.save`` names them."""
    for key in BATCH_AXIS:
        value = getattr(trace, key)
        if isinstance(value, dict):
            for pop, array in value.items():
                yield f"{key}/{pop}", array
        else:
            yield key, value

