"""How many samples one simulator run may take, so that the memory a run holds stays under a
budget whatever the number of samples.

A run of the reference simulator holds values of whole windows: every synapse and neuron
output of every step of every sample in the run, as GEMM floats, plus the records it keeps
(spikes, membranes, currents as int32). Its working memory is therefore proportional to the
samples in the run, and a long sample list is run in chunks of ``chunk_size`` samples. The
estimate counts every node's output as if all were alive at once, an upper bound (the
simulator frees a node's values after their last consumer), which leaves room for the
transient buffers of a convolution. The budget covers this working memory, not the process's
fixed part (Python, torch, the graph's weights, the dataset).

The budget is also held to the memory the machine has free: a run that does not fit is not
slowed down by the system but killed midway, without a word. A run is made of fewer samples
instead, and one that cannot hold even one sample is refused up front.
"""

from __future__ import annotations

import re
from pathlib import Path

import nir
import numpy as np

from neurodeploy.backends.base import Record
from neurodeploy.errors import InputError

#: what one run's working memory may take unless told: fits a laptop next to its other work
DEFAULT_MEMORY_BUDGET = 2_000_000_000
#: most samples in one run (beyond this, a bigger run is not faster, only longer to wait for)
MAX_CHUNK = 2000
#: bytes a signal value takes while the simulator runs (float64 GEMMs, or float32 and a copy)
SIGNAL_BYTES = 8
RECORD_BYTES = 4  #: bytes per recorded spike, membrane or current (int32)

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_memory(text: str) -> int:
    """'2GB', '512MiB', '1.5G' or a number of bytes -> bytes (K/M/G/T are decimal, KiB/MiB/GiB
    binary)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?I?B?)\s*", text.upper())
    unit = None if match is None else match[2]
    if unit and not unit.endswith("B"):
        unit += "B"
    if unit not in _UNITS:  # None (no match) included
        raise InputError(f"memory budget must look like 2GB, 512MB or 1.5GiB, got '{text}'")
    return check_budget(int(float(match[1]) * _UNITS[unit]))


def check_budget(budget: int) -> int:
    """The budget, refused when it is not a positive number of bytes."""
    if isinstance(budget, bool) or not isinstance(budget, int | np.integer):
        raise InputError(f"memory_budget must be a number of bytes, got {budget!r}",
                         hint="parse_memory('1GB') reads a size with its unit")
    if budget < 1:
        raise InputError(f"memory budget must be positive, got {budget} bytes")
    return budget


def sample_bytes(graph: nir.NIRGraph, timesteps: int, record: Record = Record.OUTPUT) -> int:
    """Upper bound of the working memory one sample adds to a run of ``timesteps`` steps."""
    per_value = SIGNAL_BYTES + RECORD_BYTES * (record.spikes + record.membranes + record.currents)
    values = sum(int(np.prod(node.output_type["output"])) for node in graph.nodes.values()
                 if not isinstance(node, nir.Input | nir.Output))
    return timesteps * values * per_value


def chunk_size(graph: nir.NIRGraph, timesteps: int, budget: int = DEFAULT_MEMORY_BUDGET,
               record: Record = Record.OUTPUT) -> int:
    """Samples per run so that a run's working memory stays within ``budget`` bytes (at
    least one sample, whatever the budget), refused when one sample needs more than the
    machine has free."""
    per_sample = sample_bytes(graph, timesteps, record)
    check_free_memory(per_sample, 1, timesteps, hint="Use a shorter window (fewer timesteps)")
    return samples_within(per_sample, budget)


def check_free_memory(per_sample: int, samples: int, timesteps: int, hint: str) -> None:
    """Refuses a run of ``samples`` samples of ``per_sample`` bytes each that the machine's
    free memory cannot hold."""
    free, need = available_memory(), per_sample * samples
    if free is not None and need > free:
        who = "one sample over" if samples == 1 else f"{samples} samples over"
        raise InputError(f"{who} {timesteps} steps need{'s' if samples == 1 else ''} up to "
                         f"{_gb(need)} of working memory, and this machine has {_gb(free)} "
                         "free", hint=hint)


def samples_within(per_sample: int, budget: int) -> int:
    """Samples of ``per_sample`` bytes each that fit ``budget`` and the machine's free memory
    (at least one, at most ``MAX_CHUNK``)."""
    free = available_memory()
    fits = check_budget(budget) if free is None else min(check_budget(budget), free)
    return int(np.clip(fits // max(per_sample, 1), 1, MAX_CHUNK))


def available_memory(root: Path = Path("/")) -> int | None:
    """Bytes the process may still take: the kernel's estimate of what can be allocated without
    swapping (MemAvailable), lowered to what a container's limit leaves (cgroup v2); None
    where the system says neither."""
    free = []
    meminfo = root / "proc/meminfo"
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free.append(int(line.split()[1]) * 1024)  # in kB
    limit, used = root / "sys/fs/cgroup/memory.max", root / "sys/fs/cgroup/memory.current"
    cap = limit.read_text().strip() if limit.exists() and used.exists() else "max"
    if cap != "max":
        free.append(max(0, int(cap) - int(used.read_text())))
    return min(free) if free else None


def _gb(size: int) -> str:
    return f"{size / 1e9:.1f} GB"


def chunks(samples: int, size: int) -> list[slice]:
    """``range(samples)`` cut into consecutive slices of at most ``size``."""
    return [slice(first, min(first + size, samples)) for first in range(0, samples, size)]
