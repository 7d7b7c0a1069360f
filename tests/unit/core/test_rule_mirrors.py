"""Analyses that mirror the neuron rule, held to ``neuron.run`` on random parameters and
inputs within the domain each one states: FTBC's replay of the recorded currents, the MMSE
rate model, and the weight fit's torch surrogate. (The overflow bound has its own file,
test_overflow_bound.py; the reference's recorded currents are checked in test_reference.py.)
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

from neurodeploy.core.neuron import NeuronParams, run
from neurodeploy.core.population import Kind, Reset
from neurodeploy.methods.ftbc import replay_errors
from neurodeploy.methods.mmse import quantized
from neurodeploy.methods.weights import surrogate_steps
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


def mmse_rate_model(data: st.DataObject) -> None:
    """For an integer activation and an integer shift theta/(2T), the model's value is the
    rule's spike count over the window times theta / T."""
    steps = data.draw(st.integers(1, 16), label="steps")
    burst = data.draw(st.integers(1, 4), label="max_burst")
    shift = np.array(data.draw(st.lists(st.integers(1, 40), min_size=NEURONS,
                                        max_size=NEURONS), label="theta / 2T"))
    theta = 2 * steps * shift
    top = (burst + 1) * int(theta.max())
    a = data.draw(extreme_inputs(-top, top, (NEURONS,)), label="activation")
    params = NeuronParams(theta=theta.astype(np.int32), bias=shift.astype(np.int32),
                          v_init=np.int32(0), theta_neg=np.int32(0), max_burst=burst)
    spikes, _ = run(np.broadcast_to(a, (steps, NEURONS)), params)
    np.testing.assert_array_equal(quantized(a.astype(np.float64), theta, steps, burst),
                                  spikes.sum(0) * theta / steps)


def weight_fit_surrogate(data: st.DataObject) -> None:
    """On integer values the surrogate's forward spikes and membranes are the rule's, for the
    populations it models (bursts, the dual threshold; no leak, input shift, bias table or
    reset to zero; no saturation at these magnitudes)."""
    steps = data.draw(st.integers(1, 16), label="steps")
    meta = data.draw(integer_populations(NEURONS, steps, kinds=(Kind.IF,)), label="meta")
    meta = meta.replace(decay=np.array(0), input_shift=0, bias_table=None,
                        reset=Reset.SUBTRACT)
    params = meta.neuron_params((NEURONS,))
    currents = data.draw(extreme_inputs(-300, 300, (steps, 2, NEURONS)), label="currents")
    spikes, membranes = run(currents, params)

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x, np.float32))

    steps_out = list(surrogate_steps(tensor(currents + params.bias), tensor(params.theta),
                                     tensor(params.v_init), params.max_burst,
                                     tensor(params.theta_neg) if params.dual else None))
    np.testing.assert_array_equal(torch.stack([s for s, _ in steps_out]).numpy(), spikes)
    np.testing.assert_array_equal(torch.stack([v for _, v in steps_out]).numpy(), membranes)


@budgets(100, 3000)
def test_ftbc_replays_the_rule_on_the_recorded_currents(examples):
    check_property(ftbc_replay, examples)


@budgets(200, 5000)
def test_mmse_rate_model_is_the_rules_spike_count(examples):
    check_property(mmse_rate_model, examples)


@budgets(100, 3000)
def test_weight_fit_surrogate_forward_is_the_rule(examples):
    check_property(weight_fit_surrogate, examples)


def test_weight_fit_surrogate_gradient_is_the_sum_of_the_per_spike_surrogates():
    """The fused burst spike's gradient is that of sum_k 0.5 tanh(alpha x_k) + 0.5,
    x_k = v / theta - k: each of the burst's thresholds contributes its own tanh."""
    from neurodeploy.methods.weights import SURROGATE_SLOPE, _BurstSpike

    generator = torch.Generator().manual_seed(0)
    theta = torch.rand(3, 1, generator=generator) * 10 + 1
    v = (torch.randn(5, 3, 7, generator=generator) * 30).requires_grad_()
    for burst in (1, 2, 4):
        weights = torch.randn(5, 3, 7, generator=generator)
        (grad,) = torch.autograd.grad((_BurstSpike.apply(v, theta, burst) * weights).sum(), v)
        smooth = sum(0.5 * torch.tanh(SURROGATE_SLOPE * (v / theta - k)) + 0.5
                     for k in range(1, burst + 1))
        (expected,) = torch.autograd.grad((smooth * weights).sum(), v)
        torch.testing.assert_close(grad, expected)
        assert grad.abs().max() > 0


def test_weight_fit_negative_spike_gradient_is_the_sum_of_the_allowed_surrogates():
    """The dual threshold's negative spikes count boundaries theta_neg - (k-1) theta crossed
    from above, k up to the smaller of the burst size and the spikes sent so far; the gradient
    is that of the smooth count over the same boundaries, and nothing where none is allowed."""
    from neurodeploy.methods.weights import SURROGATE_SLOPE, _NegativeBurst

    generator = torch.Generator().manual_seed(0)
    theta = torch.rand(3, 1, generator=generator) * 10 + 1
    theta_neg = -0.5 * theta
    v = (torch.randn(5, 3, 7, generator=generator) * 30).requires_grad_()
    sent = torch.randint(0, 4, (5, 3, 7), generator=generator).to(torch.float32)
    for burst in (1, 2, 4):
        weights = torch.randn(5, 3, 7, generator=generator)
        spikes = _NegativeBurst.apply(v, theta, theta_neg, sent, burst)
        (grad,) = torch.autograd.grad((spikes * weights).sum(), v)
        allowed = [(sent >= k).to(torch.float32) for k in range(1, burst + 1)]
        boundaries = [(theta_neg - (k - 1) * theta - v) / theta for k in range(1, burst + 1)]
        smooth = sum(a * (0.5 * torch.tanh(SURROGATE_SLOPE * y) + 0.5)
                     for a, y in zip(allowed, boundaries, strict=True))
        (expected,) = torch.autograd.grad((smooth * weights).sum(), v)
        torch.testing.assert_close(grad, expected)
        torch.testing.assert_close(spikes, sum(a * (y >= 0) for a, y in
                                               zip(allowed, boundaries, strict=True)))
        assert grad.abs().max() > 0
        assert torch.all(grad[sent == 0] == 0)
