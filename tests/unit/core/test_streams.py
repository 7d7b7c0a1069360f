"""Inputs with a time axis (event frames, spike trains): checked, encoded, run step by step,
and read from .npz datasets with one label per sample."""

from __future__ import annotations

import numpy as np
import pytest

from neurodeploy import api
from neurodeploy.backends import Record, get_backend
from neurodeploy.core.encoding import check_inputs, quantize_inputs, step_inputs
from neurodeploy.errors import InputError


def shape_of(graph) -> tuple[int, ...]:
    return tuple(int(d) for d in graph.nodes["input"].input_type["input"])


def test_each_step_injects_its_own_input(mlp_graph):
    """Step t of a stream drives the first population like a static run of that input."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 2, *shape_of(mlp_graph))).astype(np.int32)
    stream = frames[:, [0, 1, 1, 0, 1]]
    ran = get_backend("reference").run(mlp_graph, stream, 5, record=Record.CURRENTS)
    first = next(iter(ran.currents))
    for k in range(2):
        static = get_backend("reference").run(mlp_graph, frames[:, k], 1,
                                              record=Record.CURRENTS)
        for t in np.flatnonzero(np.array([0, 1, 1, 0, 1]) == k):
            np.testing.assert_array_equal(ran.currents[first][t], static.currents[first][0])


def test_stream_checks(mlp_graph):
    shape = shape_of(mlp_graph)
    with pytest.raises(InputError, match="streams hold 3 steps, a window of 4 steps"):
        check_inputs(mlp_graph, np.zeros((2, 3, *shape), np.int32), 4)
    with pytest.raises(InputError, match=r"or a stream \(batch, steps, "):
        check_inputs(mlp_graph, np.zeros((2, 3, 1, *shape), np.int32), 2)
    with pytest.raises(InputError, match="must be in 0..255"):
        check_inputs(mlp_graph, np.full((1, 2, *shape), 256, np.int32), 2)
    check_inputs(mlp_graph, np.zeros((1, 5, *shape), np.int32), 4)  # a longer stream is fine
    floats = np.random.default_rng(1).random((2, 3, *shape)).astype(np.float32)
    assert np.array_equal(quantize_inputs(mlp_graph, floats), np.round(floats * 255))


def test_step_inputs_repeat_a_static_input_and_cut_a_stream(mlp_graph):
    shape = shape_of(mlp_graph)
    static = np.arange(2 * np.prod(shape)).reshape(2, *shape)
    assert np.array_equal(step_inputs(mlp_graph, static, 3),
                          np.repeat(static[:, None], 3, axis=1))
    stream = np.arange(2 * 5 * np.prod(shape)).reshape(2, 5, *shape)
    assert np.array_equal(step_inputs(mlp_graph, stream, 3), stream[:, :3])


def test_evaluate_reads_an_event_dataset(mlp_graph, tmp_path):
    """An .npz of streams with labels: evaluate runs each stream and reads one label each."""
    shape = shape_of(mlp_graph)
    x = np.random.default_rng(2).integers(0, 256, (6, 4, *shape)).astype(np.int32)
    path = tmp_path / "events.npz"
    outputs = get_backend("reference").run(mlp_graph, x, 4).outputs
    np.savez(path, x=x, y=outputs.argmax(1))
    images, labels = api.dataset(str(path))
    accuracy = api.Deployment(mlp_graph, None, None).evaluate(images, labels, [4],
                                                                show_progress=False)
    assert accuracy == {4: 1.0}
    # by default as far as the streams reach (windows past them were refused)
    assert max(api.Deployment(mlp_graph, None, None).evaluate(images, labels,
                                                              show_progress=False)) == 4


@pytest.mark.parametrize(("bits", "events"), [(8, False), (12, False), (8, True)])
def test_uint8_images_are_0_to_255_on_any_input_width(mlp_graph, bits, events):
    """Calibration reads uint8 as 0..255; a run must too, or a 12-bit input sees images 16x
    too dark. Event counts are counts whatever their dtype."""
    from neurodeploy.core.encoding import input_meta
    from neurodeploy.core.meta import copy_graph, with_node_meta

    graph = copy_graph(mlp_graph, {"input": with_node_meta(mlp_graph.nodes["input"],
                                                           input_meta(bits, events))})
    images = np.random.default_rng(3).integers(0, 256, (2, *shape_of(graph))).astype(np.uint8)
    expected = images.astype(np.int32) if events else \
        quantize_inputs(graph, images.astype(np.float32) / 255)
    assert np.array_equal(quantize_inputs(graph, images), expected)
    if bits == 8:
        assert np.array_equal(expected, images)


def test_one_image_gives_one_input_whatever_its_float_dtype(mlp_graph):
    """0.5 is 127.5 input units: float32 arithmetic made it 127, float64 128, so the same
    digits image ran differently from a tensor and from a float64 array."""
    shape = shape_of(mlp_graph)
    halves = np.full((1, *shape), 0.5)
    for dtype in (np.float16, np.float32, np.float64):
        assert np.array_equal(quantize_inputs(mlp_graph, halves.astype(dtype)),
                              np.full((1, *shape), 128))
    sixteenths = np.arange(17).repeat(-(-int(np.prod(shape)) // 17))[:int(np.prod(shape))]
    image = (sixteenths.reshape(1, *shape) / 16)
    assert np.array_equal(quantize_inputs(mlp_graph, image.astype(np.float32)),
                          quantize_inputs(mlp_graph, image))


def test_event_inputs_are_whole_counts(mlp_graph):
    """A stream of probabilities (0.5) rounded to no events without a word."""
    from neurodeploy.core.encoding import EVENT_INPUT
    from neurodeploy.core.meta import copy_graph, with_node_meta

    graph = copy_graph(mlp_graph, {"input": with_node_meta(mlp_graph.nodes["input"],
                                                           EVENT_INPUT)})
    counts = np.ones((2, 3, *shape_of(graph)))
    assert np.array_equal(quantize_inputs(graph, counts), counts.astype(np.int32))
    with pytest.raises(InputError, match="event counts: whole numbers"):
        quantize_inputs(graph, counts * 0.5)


def test_a_window_shorter_than_the_streams_says_what_it_leaves_unread(mlp_graph, tmp_path):
    """simulate ran 20 of 40 steps, all the events in the other 20, with exit 0 unsaid."""
    import warnings

    stream = np.ones((1, 5, *shape_of(mlp_graph)), np.int32)
    runs = {"simulate": lambda t: api.simulate(mlp_graph, stream, t),
            "predict": lambda t: api.Deployment(mlp_graph, None).predict(
                stream, t, show_progress=False),
            "to a file": lambda t: api.Deployment(mlp_graph, None).simulate_to_file(
                stream, tmp_path / f"trace{t}.npz", t, show_progress=False)}
    for run in runs.values():
        with pytest.warns(UserWarning, match="^the input streams hold 5 steps; a window of 3 "
                                             r"runs the first 3 \(timesteps=5"):
            run(3)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            run(5)
