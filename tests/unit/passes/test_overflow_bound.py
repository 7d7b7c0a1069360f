"""The static membrane bound of check_overflow is sound against the neuron rule: within the
proven window no membrane saturates, every membrane before its spike decision lies in that
step's bounds, and none, before or after its reset, exceeds the recorded worst-case
magnitude; for random populations using every feature of the rule (leak, synaptic filter,
either reset, input shift, bursts, dual threshold, bias table) and inputs that dwell on the
extremes of their range."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from neurodeploy.core.dtypes import IntSpec
from neurodeploy.core.neuron import NeuronParams, run, step
from neurodeploy.passes.check_overflow import _follow_bounds, step_bounds
from tests.strategies import (
    budgets,
    check_property,
    edge_biased,
    extreme_inputs,
    integer_populations,
)

NARROW = 12  #: a narrow membrane so that saturation is reachable in a few steps
NEURONS = 4


def before_reset(currents: np.ndarray, p: NeuronParams, membranes: np.ndarray) -> np.ndarray:
    """The membrane of every step before its spike decision: the same step taken by a
    non-firing copy of the neuron from the state the run left (the rule itself, not a copy)."""
    integrator = dataclasses.replace(p, fires=False)
    v = np.empty_like(membranes[0])
    v[...] = p.v_init
    u = np.zeros_like(v)  # a filtered current does not depend on spikes: follow it along
    out = np.empty_like(membranes)
    for t, current in enumerate(currents):
        out[t] = step(v.copy(), np.zeros_like(v), u, current, integrator, t)[0]
        v = membranes[t]
    return out


def bound_holds(data: st.DataObject) -> None:
    steps = data.draw(st.integers(1, 40), label="steps")
    meta = data.draw(integer_populations(NEURONS, steps, synaptic_filter=True), label="meta")
    low, high = sorted(data.draw(st.lists(edge_biased(-300, 300), min_size=2, max_size=2),
                                 label="input range"))
    currents = data.draw(extreme_inputs(low, high, (steps, NEURONS)), label="currents")
    safe, reach = _follow_bounds(meta, (NEURONS,), np.array(high), np.array(low),
                                 IntSpec(NARROW), steps)
    window = min(safe, steps)
    assume(window > 0)
    wide = meta.replace(membrane_bits=28).neuron_params((NEURONS,))
    narrow = run(currents[:window], dataclasses.replace(wide, membrane_bits=NARROW))
    spikes, membranes = run(currents[:window], wide)
    np.testing.assert_array_equal(narrow[1], membranes, err_msg="saturated in the window")
    np.testing.assert_array_equal(narrow[0], spikes)
    m = before_reset(currents[:window], wide, membranes)
    bounds = itertools.islice(step_bounds(meta, (NEURONS,), np.array(high), np.array(low)),
                              window)
    for t, (peak, trough) in enumerate(bounds):
        assert (trough <= m[t]).all() and (m[t] <= peak).all(), f"step {t}"
    assert np.abs(m).max() <= reach and np.abs(membranes).max() <= reach


@budgets(300, 3000)
def test_membranes_stay_within_the_bound(examples):
    check_property(bound_holds, examples)
