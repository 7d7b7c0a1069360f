"""The neuron rule's invariants, and the two compiled loops around it agreeing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurodeploy.core.dtypes import IntSpec
from neurodeploy.core.neuron import DECAY_ONE, NeuronParams, initial_state, run, step


@st.composite
def populations(draw, fires=True, leaky=False):
    """Random populations; ``leaky`` also draws the imported-network features (leak, synaptic
    filter, hard reset), which break the charge conservation of reset by subtraction."""
    theta = draw(st.integers(1, 300))
    dual = draw(st.booleans())
    leak = {"decay": np.int32(draw(st.integers(0, DECAY_ONE))),
            "current_decay": np.int32(draw(st.integers(0, DECAY_ONE))),
            "hard_reset": draw(st.booleans())} if leaky else {}
    params = NeuronParams(
        theta=np.int32(theta), bias=np.int32(draw(st.integers(-50, 50))),
        v_init=np.int32(draw(st.integers(0, theta))),
        theta_neg=np.int32(-draw(st.integers(0, theta))),
        max_burst=draw(st.integers(1, 4)), dual=dual, fires=fires, membrane_bits=24,
        input_shift=draw(st.integers(0, 3)), **leak)
    steps = draw(st.integers(1, 16))
    currents = np.array(draw(st.lists(st.lists(st.integers(-400, 400), min_size=3, max_size=3),
                                      min_size=steps, max_size=steps)), np.int32)
    return params, currents


def integrated(currents: np.ndarray, p: NeuronParams) -> np.ndarray:
    """The input as the membrane sees it: divided by 2**input_shift, rounding half up."""
    half = (1 << p.input_shift) >> 1
    return (currents.astype(np.int64) + half) >> p.input_shift


@settings(max_examples=300, deadline=None)
@given(populations())
def test_reset_by_subtraction_conserves_charge(case):
    """v_T = v_init + sum(I + b) - theta * sum(s): every unit of input is accounted for."""
    p, currents = case
    spikes, membranes = run(currents.copy(), p)
    total_in = integrated(currents, p).sum(0) + len(currents) * int(p.bias)
    expected = int(p.v_init) + total_in - int(p.theta) * spikes.astype(np.int64).sum(0)
    np.testing.assert_array_equal(membranes[-1], expected)


@settings(max_examples=300, deadline=None)
@given(populations())
def test_spikes_bounded_and_net_output_non_negative(case):
    p, currents = case
    spikes, _ = run(currents, p)
    assert np.abs(spikes).max(initial=0) <= p.max_burst
    assert (np.cumsum(spikes, axis=0) >= 0).all(), "net output went negative"
    if not p.dual:
        assert spikes.min(initial=0) >= 0


@settings(max_examples=300, deadline=None)
@given(populations())
def test_residual_stays_below_threshold_when_not_saturated(case):
    """After a step that fired fewer than max_burst spikes, 0 <= v < theta."""
    p, currents = case
    spikes, membranes = run(currents, p)
    positive = (spikes > 0) & (spikes < p.max_burst)
    assert ((membranes[positive] >= 0) & (membranes[positive] < p.theta)).all()


@settings(max_examples=300, deadline=None)
@given(populations(leaky=True))
def test_stepwise_and_windowed_loops_agree(case):
    """``step`` (the Lava model's loop) and ``run`` (the reference's) execute the same rule."""
    p, currents = case
    s_run, v_run = run(currents, p)
    v, c, u = initial_state(p, currents[0])
    for t, current in enumerate(currents):
        v, c, u, s = step(v, c, u, current, p, t)
        np.testing.assert_array_equal(s, s_run[t])
        np.testing.assert_array_equal(v, v_run[t])


def test_memory_layout_does_not_change_results():
    """Channels-last windows (the reference's layout) and per-channel parameters."""
    rng = np.random.default_rng(0)
    currents = rng.integers(-300, 300, (5, 2, 3, 4, 6)).astype(np.int32)  # (T, B, C, H, W)
    p = NeuronParams(theta=rng.integers(50, 200, (3, 1, 1)), bias=np.int32(4),
                     v_init=rng.integers(0, 50, (3, 4, 6)), theta_neg=np.int32(-30),
                     max_burst=2, dual=True, bias_table=rng.integers(-9, 9, (5, 3, 1, 1)))
    channels_last = np.ascontiguousarray(currents.transpose(0, 1, 3, 4, 2)).transpose(
        0, 1, 4, 2, 3)
    floats = channels_last.astype(np.float32)
    out = np.empty_like(floats)
    s_c, v_c = run(currents, p)
    s_l, v_l = run(floats, p, spikes_out=out)
    assert s_l is out and not channels_last.flags.c_contiguous
    np.testing.assert_array_equal(s_c, out)
    np.testing.assert_array_equal(v_c, v_l)
    per_sample = [run(currents[:, b], p)[0] for b in range(2)]
    np.testing.assert_array_equal(s_c, np.stack(per_sample, axis=1))


def test_short_bias_table_is_refused():
    p = NeuronParams(theta=np.int32(9), bias=np.int32(0), v_init=np.int32(0),
                     theta_neg=np.int32(0), bias_table=np.zeros((2, 1), np.int32))
    with pytest.raises(ValueError, match="bias table"):
        run(np.zeros((3, 1), np.int32), p)


@settings(max_examples=200, deadline=None)
@given(populations(fires=False))
def test_readout_only_integrates(case):
    p, currents = case
    spikes, membranes = run(currents, p)
    assert not spikes.any()
    expected = int(p.v_init) + np.cumsum(integrated(currents, p) + int(p.bias), axis=0)
    np.testing.assert_array_equal(membranes, expected)


def test_membrane_saturates_at_its_width():
    p = NeuronParams(theta=np.int32(10), bias=np.int32(0), v_init=np.int32(0),
                     theta_neg=np.int32(0), membrane_bits=8)
    v, c, u = initial_state(p, np.zeros(1, np.int32))
    v, c, u, s = step(v, c, u, np.array([-1000], np.int32), p)
    assert int(v[0]) == IntSpec(8).min and int(s[0]) == 0


def test_dual_threshold_retracts_only_sent_spikes():
    p = NeuronParams(theta=np.int32(10), bias=np.int32(0), v_init=np.int32(0),
                     theta_neg=np.int32(-5), max_burst=1, dual=True)
    spikes, membranes = run(np.array([[12], [-20], [-20]], np.int32), p)
    assert spikes[:, 0].tolist() == [1, -1, 0]
    assert membranes[:, 0].tolist() == [2, -8, -28]


def test_burst_sends_several_spikes_in_one_step():
    p = NeuronParams(theta=np.int32(10), bias=np.int32(0), v_init=np.int32(5),
                     theta_neg=np.int32(0), max_burst=3)
    spikes, membranes = run(np.array([[27], [100]], np.int32), p)
    assert spikes[:, 0].tolist() == [3, 3]
    assert membranes[:, 0].tolist() == [2, 72]


@settings(max_examples=500, deadline=None)
@given(st.integers(1, 2**27 - 1), st.integers(1, 2**27 - 1), st.integers(-1, 1),
       st.integers(1, 2**20))
def test_burst_size_is_the_integer_quotient_over_the_whole_membrane_range(
        theta, multiple, offset, max_burst):
    """Near every multiple of theta (the float64 quotient the rule uses must not round up)."""
    m = min(max(theta, (multiple % (2**27 // theta) + 1) * theta + offset), 2**27 - 1)
    p = NeuronParams(theta=np.int64(theta), bias=np.int64(0), v_init=np.int64(0),
                     theta_neg=np.int64(0), max_burst=max_burst, membrane_bits=28)
    spikes, membranes = run(np.array([[m]], np.int64), p)
    sent = min(max_burst, m // theta)
    assert (int(spikes[0, 0]), int(membranes[0, 0])) == (sent, m - sent * theta)


def test_input_shift_rounds_half_up():
    p = NeuronParams(theta=np.int32(1000), bias=np.int32(0), v_init=np.int32(0),
                     theta_neg=np.int32(0), input_shift=2)
    _, membranes = run(np.array([[1], [2], [-2], [-3], [6]], np.int32), p)
    assert membranes[:, 0].tolist() == [0, 1, 1, 0, 2]


def test_bias_table_is_subtracted_per_step():
    p = NeuronParams(theta=np.int32(100), bias=np.int32(10), v_init=np.int32(0),
                     theta_neg=np.int32(0), bias_table=np.array([3, -4], np.int32))
    _, membranes = run(np.zeros((2, 1), np.int32), p)
    assert membranes[:, 0].tolist() == [7, 21]


def leaky_reference(currents: np.ndarray, theta: int, decay: int, hard_reset: bool
                    ) -> tuple[list[int], list[int]]:
    """Loihi's LIF voltage update in plain Python (lava-notes §1: v * (4096 - dv) >> 12
    toward zero), with this project's ``v >= theta`` spike and either reset."""
    v, spikes, membranes = 0, [], []
    for current in currents:
        kept = v * (4096 - decay)
        v = (abs(kept) >> 12) * (1 if kept >= 0 else -1) + int(current)
        s = int(v >= theta)
        v = (0 if hard_reset else v - theta) if s else v
        spikes.append(s)
        membranes.append(v)
    return spikes, membranes


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 200), st.integers(0, DECAY_ONE), st.booleans(),
       st.lists(st.integers(-300, 300), min_size=1, max_size=20))
def test_leak_and_hard_reset_follow_loihi(theta, decay, hard_reset, currents):
    p = NeuronParams(theta=np.int32(theta), bias=np.int32(0), v_init=np.int32(0),
                     theta_neg=np.int32(0), decay=np.int32(decay), hard_reset=hard_reset)
    spikes, membranes = run(np.array(currents, np.int32)[:, None], p)
    expected = leaky_reference(currents, theta, decay, hard_reset)
    assert (spikes[:, 0].tolist(), membranes[:, 0].tolist()) == expected


def test_full_decay_forgets_the_membrane():
    """decay = 4096 keeps nothing: a stateless threshold unit (NIR's Threshold node)."""
    p = NeuronParams(theta=np.int32(10), bias=np.int32(0), v_init=np.int32(0),
                     theta_neg=np.int32(0), decay=np.int32(DECAY_ONE))
    spikes, membranes = run(np.array([[9], [9], [-4], [15]], np.int32), p)
    assert spikes[:, 0].tolist() == [0, 0, 0, 1]
    assert membranes[:, 0].tolist() == [9, 9, -4, 5]


def test_decay_out_of_range_is_refused():
    with pytest.raises(ValueError, match="decay"):
        NeuronParams(theta=np.int32(1), bias=np.int32(0), v_init=np.int32(0),
                     theta_neg=np.int32(0), decay=np.int32(DECAY_ONE + 1))
