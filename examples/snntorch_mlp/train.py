"""An snnTorch LIF MLP on the digits, trained with surrogate gradients and exported to NIR.

The network another tool would hand us: `neurodeploy import` reads its NIR file. The image is
injected as a constant current every step (direct encoding, as neurodeploy does) and the class
is the output neuron with the most spikes. snnTorch exports its step as dt = 1e-4 s
(tau = dt / (1 - beta)), so import with `--dt 1e-4`.

    python examples/snntorch_mlp/train.py --out examples/snntorch_mlp/model.nir
    neurodeploy import examples/snntorch_mlp/model.nir --target loihi2 --dt 1e-4 -T 8 -o ours.nir
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nir
import numpy as np
import snntorch as snn
import torch
from snntorch import utils
from snntorch.export_nir import export_to_nir
from torch import nn

from neurodeploy.data import load_dataset

EXPORT_DT = 1e-4  #: the step snnTorch's NIR export assumes (snntorch/export_nir.py)
SHAPE = (1, 8, 8)


def build(hidden: int = 64, beta: float = 0.9, reset: str = "zero") -> nn.Sequential:
    """64 -> hidden -> 10 with LIF neurons. Per-neuron beta and threshold tensors give the
    NIR nodes explicit shapes (scalars fail NIR's type inference)."""

    def lif(n: int, output: bool = False) -> snn.Leaky:
        return snn.Leaky(beta=torch.full((n,), beta), threshold=torch.ones(n),
                         reset_mechanism=reset, init_hidden=True, output=output)

    return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), lif(hidden),
                         nn.Linear(hidden, 10), lif(10, output=True))


def simulate(net: nn.Sequential, images: np.ndarray, timesteps: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """snnTorch's own run: (hidden spikes, output spikes), each (T, batch, neurons)."""
    x = torch.as_tensor(images, dtype=torch.float32)
    hidden, out = [], []
    utils.reset(net)
    with torch.no_grad():
        for _ in range(timesteps):
            h = net[2](net[1](net[0](x)))
            spikes, _ = net[4](net[3](h))
            hidden.append(h.numpy())
            out.append(spikes.numpy())
    return np.stack(hidden), np.stack(out)


def train(net: nn.Sequential, timesteps: int, epochs: int, seed: int = 0) -> float:
    """Cross-entropy on output spike counts (surrogate gradients); returns test accuracy."""
    torch.manual_seed(seed)
    x, y = (torch.as_tensor(a) for a in load_dataset("digits", split="train"))
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-3)
    for _ in range(epochs):
        for batch in torch.randperm(len(x)).split(64):
            utils.reset(net)
            counts = sum(net(x[batch])[0] for _ in range(timesteps))
            loss = nn.functional.cross_entropy(counts, y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    test_x, test_y = load_dataset("digits", split="test")
    _, out = simulate(net, test_x, timesteps)
    return float((out.sum(0).argmax(1) == test_y).mean())


def export(net: nn.Sequential, path: Path) -> nir.NIRGraph:
    graph = export_to_nir(net, torch.zeros((1, *SHAPE)), ignore_dims=[0])
    nir.write(path, graph)
    return graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--timesteps", "-T", type=int, default=8)
    parser.add_argument("--reset", choices=("zero", "subtract"), default="zero")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("model.nir"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    net = build(reset=args.reset)
    accuracy = train(net, args.timesteps, args.epochs)
    print(f"snnTorch test accuracy {100 * accuracy:.2f}% (T={args.timesteps})")
    export(net, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
