"""The NIR paper's three benchmark networks (tests/data/nir_paper): how each is imported, the
event inputs it runs on, and its agreement with the float NIR simulation (tests/nirsim.py).
Shared by tests/integration/test_nir_paper.py and benchmarks/nir_paper.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nir
import numpy as np

from neurodeploy import api
from neurodeploy.backends import Record
from tests import nirsim

DATA = Path(__file__).resolve().parent / "data" / "nir_paper"


@dataclass(frozen=True)
class PaperNet:
    """One file and how it is run: the exporting tool's step, the event rate of the
    generated inputs, and the reset modes that apply."""

    file: str
    dt: float  #: the exporting tool's step (Norse 1 ms, Sinabs 1 per step, snnTorch 0.1 ms)
    rate: float  #: probability that one input channel fires in one step
    resets: tuple[str, ...] = ("zero",)
    #: the static bound assumes up to 255 events per input and step; an IF layer without a
    #: leak could then saturate within long windows (both backends saturate alike)
    allow_saturation: bool = False

    @property
    def path(self) -> Path:
        return DATA / self.file

    def options(self, reset: str, timesteps: int, target: str = "loihi2") -> list[str]:
        """The `neurodeploy import FILE` options."""
        return ["--target", target, "--dt", repr(self.dt), "-T", str(timesteps), "--reset",
                reset, "--events", *(["--allow-saturation"] if self.allow_saturation else [])]

    def command(self, reset: str, timesteps: int) -> str:
        """The command line, from the repository's root."""
        return " ".join(["neurodeploy", "import", str(self.path.relative_to(DATA.parents[2])),
                         *self.options(reset, timesteps)])

    def foreign(self) -> nir.NIRGraph:
        return nir.read(self.path)

    def inputs(self, samples: int, timesteps: int, seed: int = 0) -> np.ndarray:
        """(samples, T, *shape) spikes, each channel firing with probability ``rate``."""
        shape = tuple(int(d) for d in self.foreign().nodes["input"].input_type["input"])
        rng = np.random.default_rng(seed)
        return (rng.random((samples, timesteps, *shape)) < self.rate).astype(np.int32)


NETS = {
    "lif_norse": PaperNet("lif_norse.nir", dt=1e-3, rate=0.3),
    "cnn_sinabs": PaperNet("cnn_sinabs.nir", dt=1.0, rate=0.05, allow_saturation=True),
    "braille": PaperNet("braille_noDelay_bias_zero.nir", dt=1e-4, rate=0.1,
                        resets=("zero", "subtract")),
}


@dataclass(frozen=True)
class Agreement:
    """The imported integer network against the float simulation of the file."""

    spikes: float  #: equal (neuron, step, sample) spikes over every spiking population
    outputs: float  #: equal predictions (most output spikes, or the readout's class)
    float_spikes: int  #: spikes the float simulation sent (a silent network proves little)
    per_population: dict[str, float]  #: equal spikes per spiking population
    samples: int
    timesteps: int


def agreement(net: PaperNet, graph, reset: str, x: np.ndarray) -> Agreement:
    """Run ``graph`` (the file imported with ``reset``) and the float simulation on ``x``."""
    samples, timesteps = x.shape[:2]
    expected = nirsim.simulate(net.foreign(), x.astype(np.float64), timesteps, net.dt,
                               subtract=reset == "subtract")
    trace = api.simulate(graph, x, timesteps, record=Record.ALL)
    equal = total = spikes = 0
    per_population = {}
    for name, ours in trace.spikes.items():
        theirs = expected[name].reshape(ours.shape)
        equal += int((ours == theirs).sum())
        total += ours.size
        spikes += int(theirs.sum())
        per_population[name] = float((ours == theirs).mean())
    last = _last_layer(net.foreign())
    same = float((trace.outputs.argmax(1) == expected[last].sum(0).argmax(1)).mean())
    return Agreement(equal / total, same, spikes, per_population, samples, timesteps)


def _last_layer(graph: nir.NIRGraph) -> str:
    (name,) = [src for src, dst in graph.edges if dst == "output"]
    return name
