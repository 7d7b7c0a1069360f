"""Hypothesis strategies for the property tests that hold an analysis to the neuron rule
(``core/neuron.py``): random population records using every feature of the rule, input
sequences that dwell on the extremes of their range, and example budgets (a modest one in the
default run, a thorough one under the ``slow`` marker)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurodeploy.core.neuron import DECAY_ONE
from neurodeploy.core.population import Kind, Population, Reset


@st.composite
def integer_populations(draw, neurons: int, steps: int,
                        kinds: tuple[Kind, ...] = (Kind.IF, Kind.READOUT),
                        synaptic_filter: bool = False) -> Population:
    """A quantized record of ``neurons`` neurons: theta, bias, v_init and decays shared or per
    neuron; bursts, the dual threshold, input shift, either reset, a leak, a synaptic filter
    (spiking neurons, if ``synaptic_filter``: imported networks only), and a bias table
    of ``steps`` rows or none. Membrane values stay below 2**8 in magnitude."""
    def values(low: int, high: int) -> np.ndarray:
        shared = draw(st.booleans())
        drawn = draw(st.lists(edge_biased(low, high), min_size=1 if shared else neurons,
                              max_size=1 if shared else neurons))
        return np.array(drawn[0] if shared else drawn)

    theta = values(1, 200)
    table = draw(st.none() | st.lists(st.lists(st.integers(-40, 40), min_size=neurons,
                                               max_size=neurons),
                                      min_size=steps, max_size=steps))
    kind = draw(st.sampled_from(kinds))
    filtered = synaptic_filter and kind is Kind.IF and draw(st.booleans())
    return Population(
        kind=kind, theta=theta, bias=values(-30, 30),
        v_init=values(-200, 200), theta_neg=-values(0, int(theta.min())),
        max_burst=draw(st.integers(1, 3)), dual=draw(st.booleans()),
        input_shift=draw(st.integers(0, 3)),
        bias_table=None if table is None else np.array(table),
        decay=values(0, DECAY_ONE) if draw(st.booleans()) else np.array(0),
        current_decay=values(0, DECAY_ONE) if filtered else np.array(DECAY_ONE),
        reset=draw(st.sampled_from(list(Reset))))


@st.composite
def extreme_inputs(draw, low: int, high: int, shape: tuple[int, ...]) -> np.ndarray:
    """int32 inputs of ``shape`` in [low, high], mostly at either end (where bounds are
    reached) and otherwise anywhere between."""
    size = int(np.prod(shape))
    picks = draw(st.lists(edge_biased(low, high), min_size=size, max_size=size))
    return np.array(picks, np.int32).reshape(shape)


def edge_biased(low: int, high: int) -> st.SearchStrategy[int]:
    """Integers in [low, high], either end as likely as all the others together."""
    return st.sampled_from([low, high]) | st.integers(low, high)


def budgets(quick: int, thorough: int) -> pytest.MarkDecorator:
    """Parametrize a property test by its ``examples``: ``quick`` in the default run,
    ``thorough`` under the ``slow`` marker."""
    return pytest.mark.parametrize("examples", [
        pytest.param(quick, id="quick"),
        pytest.param(thorough, id="thorough", marks=pytest.mark.slow)])


def check_property(prop: Callable[[st.DataObject], None], examples: int) -> None:
    """Run ``prop(data)`` on ``examples`` hypothesis examples (no deadline: the machine is
    shared and the rule compiles on first use)."""
    settings(max_examples=examples, deadline=None)(given(st.data())(prop))()
