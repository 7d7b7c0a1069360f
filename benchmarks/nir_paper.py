"""The NIR paper's three benchmark networks (tests/data/nir_paper) imported and run on
generated event inputs.

    python benchmarks/nir_paper.py            # about 3 minutes on 2 cores

Per file (the Braille network in both reset modes): the `neurodeploy import` command; spike and
output agreement of the imported loihi2 network with the float NIR simulation (tests/nirsim.py)
on SAMPLES samples of T steps; the Lava verify result (every spike and membrane equal to the
reference simulator, on LAVA_SAMPLES samples of LAVA_T steps run back to back); and the
reference simulator's seconds per sample-step (best of three runs of the agreement batch).

Prints a table and writes benchmarks/results/nir_paper.json.
"""

from __future__ import annotations

import argparse
import sys

from common import ROOT, print_table, timed, write_result

sys.path.insert(0, str(ROOT))  # the float simulation and the file list live in tests/

from neurodeploy import api
from neurodeploy.backends import Record, get_backend
from neurodeploy.verify import run_and_compare
from tests.nir_paper import NETS, agreement

SAMPLES, T = 20, 100
LAVA_SAMPLES, LAVA_T = 2, 16


def measure(name: str, reset: str, samples: int, steps: int) -> dict:
    net = NETS[name]
    graph = api.import_nir(net.path, target="loihi2", dt=net.dt, timesteps=steps, reset=reset,
                           events=True, allow_saturation=net.allow_saturation).graph
    x = net.inputs(samples, steps)
    agree = agreement(net, graph, reset, x)
    reference = get_backend("reference")
    reference.run(graph, x[:1], steps)  # compile the kernels once
    seconds = min(timed(lambda: reference.run(graph, x, steps, record=Record.OUTPUT))
                  for _ in range(3))
    lava_x = net.inputs(LAVA_SAMPLES, LAVA_T, seed=1)
    divergence = run_and_compare(graph, lava_x, LAVA_T, backend="lava").comparison.divergence
    return {"file": f"tests/data/nir_paper/{net.file}", "reset": reset,
            "command": net.command(reset, steps),
            "samples": samples, "timesteps": steps, "input_rate": net.rate,
            "spike_agreement": agree.spikes, "output_agreement": agree.outputs,
            "float_spikes": agree.float_spikes, "spike_agreement_per_population":
                agree.per_population,
            "lava": {"samples": LAVA_SAMPLES, "timesteps": LAVA_T,
                     "bit_exact": divergence is None,
                     "divergence": None if divergence is None else str(divergence)},
            "reference_seconds_per_sample_step": seconds / (samples * steps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=SAMPLES)
    parser.add_argument("-T", "--timesteps", type=int, default=T)
    args = parser.parse_args()
    rows = [measure(name, reset, args.samples, args.timesteps)
            for name, net in NETS.items() for reset in net.resets]
    print_table(["file", "reset", "samples x T", "spike agr.", "output agr.", "Lava verify",
                 "ref s/sample-step"],
                [[r["file"].rsplit("/", 1)[-1], r["reset"], f"{r['samples']} x {r['timesteps']}",
                  f"{r['spike_agreement']:.4f}", f"{r['output_agreement']:.2f}",
                  "bit-exact" if r["lava"]["bit_exact"] else "DIVERGES",
                  f"{r['reference_seconds_per_sample_step']:.2e}"] for r in rows])
    for r in rows:
        print(r["command"])
    print(write_result("nir_paper", {"networks": rows}))


if __name__ == "__main__":
    main()
