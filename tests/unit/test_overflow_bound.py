"""The static membrane bound is sound: within the proven window no membrane saturates, and
no membrane (before its reset) exceeds the recorded worst-case magnitude; with or without a
per-step bias table."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from neurodeploy.core.dtypes import IntSpec
from neurodeploy.core.neuron import NeuronParams, run
from neurodeploy.core.population import Population
from neurodeploy.passes.check_overflow import _follow_bounds

NARROW = 12  # a narrow membrane so that saturation is reachable in a few steps


@st.composite
def cases(draw):
    theta = draw(st.integers(1, 200))
    steps = draw(st.integers(1, 40))
    table = draw(st.one_of(st.none(), st.lists(st.integers(-40, 40), min_size=steps,
                                               max_size=steps)))
    meta = Population(
        kind=draw(st.sampled_from(["if", "readout"])), theta=np.array(theta),
        bias=np.array(draw(st.integers(-30, 30))), v_init=np.array(draw(st.integers(0, theta))),
        theta_neg=np.array(-draw(st.integers(0, theta))), max_burst=draw(st.integers(1, 3)),
        dual=draw(st.booleans()), bias_table=None if table is None else np.array(table))
    low = -draw(st.integers(0, 300))
    high = draw(st.integers(0, 300))
    picks = draw(st.lists(st.sampled_from([0, 1, 2]), min_size=steps * 4, max_size=steps * 4))
    extremes = np.array([low, high, (low + high) // 2])[np.array(picks)].reshape(steps, 4)
    return meta, np.array(low), np.array(high), extremes.astype(np.int32)


def params(meta: Population, bits: int) -> NeuronParams:
    return NeuronParams(theta=np.int32(meta.theta), bias=np.int32(meta.bias),
                        v_init=np.int32(meta.v_init), theta_neg=np.int32(meta.theta_neg),
                        max_burst=meta.max_burst, dual=meta.dual, fires=meta.fires,
                        membrane_bits=bits, bias_table=None if meta.bias_table is None
                        else meta.bias_table.astype(np.int32))


@settings(max_examples=400, deadline=None)
@given(cases())
def test_no_saturation_within_the_proven_window(case):
    meta, low, high, currents = case
    safe, reach = _follow_bounds(meta, (4,), high, low, IntSpec(NARROW), len(currents))
    window = min(safe, len(currents))
    narrow = run(currents[:window].copy(), params(meta, NARROW))
    wide = run(currents[:window].copy(), params(meta, 28))
    np.testing.assert_array_equal(narrow[1], wide[1])
    np.testing.assert_array_equal(narrow[0], wide[0])
    before_reset = wide[1].astype(np.int64) + wide[0] * int(meta.theta)
    assert np.abs(before_reset).max(initial=0) <= reach
