"""VGG-11 and ResNet-18 shapes (tests/models.py: 3x32x32, random weights, BatchNorm statistics
of random images) compile for a multi-chip Loihi 2 system and run on the reference simulator;
one sample of each runs bit-exact on Lava in tests/bitexact/test_lava_models.py."""

from __future__ import annotations

import numpy as np

from neurodeploy import api
from neurodeploy.backends import Record
from neurodeploy.capacity import allocate
from neurodeploy.targets import load_target


def test_compiles_onto_as_many_chips_as_its_cores_need(deep_shape):
    deployment = deep_shape.deployment
    allocation = allocate(deployment.graph, deployment.target)
    per_chip = deployment.target.limits.cores
    chips = {block[0] for layer in allocation.layers for block in layer.chip_blocks(per_chip)}
    assert allocation.violations == ()
    assert allocation.cores_used == deployment.meta.cores_used
    assert chips == set(range(-(-allocation.cores_used // per_chip)))  # in order, none skipped
    one_chip = allocate(deployment.graph, load_target("loihi2"))
    assert bool(one_chip.violations) == (allocation.cores_used > per_chip)


def test_reference_runs_a_batch_as_its_samples_one_by_one(deep_shape):
    deployment = deep_shape.deployment
    inputs = api.quantize_inputs(deployment.graph, deep_shape.images[:3])
    batch = deployment.simulate(inputs, record=Record.SPIKES)
    assert all(spikes.any() for spikes in batch.spikes.values())  # every layer is reached
    assert len({tuple(row) for row in batch.outputs}) == 3  # the readout sees the input
    for index in range(3):
        alone = deployment.simulate(inputs[index:index + 1], record=Record.SPIKES)
        assert np.array_equal(alone.outputs[0], batch.outputs[index])
        for name, spikes in alone.spikes.items():
            assert np.array_equal(spikes[:, 0], batch.spikes[name][:, index]), name
