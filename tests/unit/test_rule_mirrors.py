"""Analyses that mirror the neuron rule, held to ``neuron.run`` on random parameters and
inputs within the domain each one states: FTBC's replay of the recorded currents. (The
reference's recorded currents are checked in test_reference.py.)
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from neurodeploy.core.neuron import run
from neurodeploy.core.population import Kind
from neurodeploy.methods.ftbc import replay_errors
from tests.strategies import budgets, check_property, extreme_inputs, integer_populations

NEURONS = 4


def ftbc_replay(data: st.DataObject) -> None:
    """Each step's error is what the rule sends at that step, from the recorded inputs with
    every earlier step's error removed (``rint(e)`` membrane units, i.e. shifted left by the
    input shift), minus the target."""
    steps = data.draw(st.integers(1, 8), label="steps")
    meta = data.draw(integer_populations(NEURONS, steps, kinds=(Kind.IF,)), label="meta")
    params = meta.neuron_params((NEURONS,))
    currents = data.draw(extreme_inputs(-300, 300, (steps, 1, NEURONS)), label="currents")
    target = np.array(data.draw(st.lists(st.floats(0, 3 * 200), min_size=NEURONS,
                                         max_size=NEURONS), label="target"))[None]
    errors = replay_errors(currents, params, target)
    theta = params.theta.astype(np.int64)
    integrated = currents.astype(np.int64)
    for t in range(steps):
        spikes, _ = run(integrated[:t + 1], params)
        np.testing.assert_array_equal(errors[t], (spikes[t] * theta - target)[0])
        integrated[t] -= np.rint(errors[t]).astype(np.int64) << params.input_shift


@budgets(100, 3000)
def test_ftbc_replays_the_rule_on_the_recorded_currents(examples):
    check_property(ftbc_replay, examples)
