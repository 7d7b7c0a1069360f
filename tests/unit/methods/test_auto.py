"""The default method: auto compiles the candidates the target can run and keeps the one it
says agrees best with the ANN on images none of them calibrated on."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from neurodeploy import api
from neurodeploy.core.meta import get_graph_meta, population_meta
from neurodeploy.data import calibration_set
from neurodeploy.errors import InputError
from neurodeploy.methods import DEFAULT_METHOD, STAGES, get_method
from neurodeploy.methods.adafire import INITIAL_BURST, AdaFire, burst_ceiling
from neurodeploy.methods.auto import CALIBRATE_BURST, Auto, Score, _best, _candidates
from neurodeploy.methods.calibration import LIGHT, WEIGHT_SAMPLES
from neurodeploy.methods.corrections import firing
from neurodeploy.targets import load_target
from tests.conftest import images, random_mlp
from tests.unit.methods.test_calibration import context, equal_graphs


def candidate(name: str, ctx, max_burst: int):
    """What auto's choice ``name`` (a stage, optionally +dual) builds on its own."""
    stage, _, dual = name.partition("+")
    options = replace(ctx.options, dual=bool(dual), max_burst=max_burst)
    return get_method(stage).convert(replace(ctx, options=options))


@pytest.fixture(scope="module")
def scored():
    """Auto on loihi2 with a calibration source that has more images, recording each ask."""
    ctx = context()
    asked = []

    def more(samples: int, skip: int = 0) -> np.ndarray:
        asked.append((samples, skip))  # a small source: fewer than asked, as digits gives
        return images(ctx.ann.input_shape, n=min(samples, 128), seed=7 + skip)

    ctx = replace(ctx, more_calibration=more)
    return ctx, Auto()(None, ctx), asked


def check_choice(ctx, graph, expected: set[str]) -> dict:
    """The note's scores say why ``graph`` was kept: calibrate's dual threshold chosen on the
    light pipeline, the best of the full candidates, then (not chosen before) the dual
    threshold tried on the winner."""
    note = get_graph_meta(graph).notes["auto"]

    def score(name: str) -> Score:
        return Score(note["divergence"][name], note["agreement"][name],
                     note["synops_per_image"][name])

    light = [name for name in note["agreement"] if name.startswith(LIGHT.name)]
    first = {name: score(name) for name in note["agreement"]
             if name not in light and name != "adafire+dual"}  # adafire's dual: a retry
    assert {name.partition("+")[0] for name in first} == expected
    dual = ctx.target.neuron.dual_threshold
    assert any(name.endswith("+dual") for name in note["agreement"]) == dual
    assert bool(light) == (dual and "calibrate" in expected)
    if light:
        light_dual = score(f"{LIGHT.name}+dual").divergence <= score(LIGHT.name).divergence
        assert ("calibrate+dual" in first) == light_dual
    best = _best(first)
    assert note["chosen"] == best or (dual and note["chosen"] == f"{best}+dual")
    if dual:  # the winner's dual threshold was tried, on LIGHT (calibrate) or in full
        assert best.endswith("+dual") or bool(light) if best == "calibrate" else \
            best.endswith("+dual") or f"{best}+dual" in note["agreement"]
    base = best.partition("+")[0]
    assert note["reason"].startswith(f"{base} ")  # the label names the stage, not "+dual"
    assert ("with the dual threshold" in note["reason"]) == note["chosen"].endswith("+dual")
    assert equal_graphs(graph, candidate(note["chosen"], ctx, note["max_burst"][base]))
    return note


def test_auto_on_graded_spikes_keeps_the_candidate_it_reports_as_best(scored):
    ctx, graph, _ = scored
    note = check_choice(ctx, graph, {"calibrate", "adafire"})
    assert note["max_burst"] == {"calibrate": CALIBRATE_BURST, "adafire": INITIAL_BURST}


def test_auto_calibrates_with_the_bursts_the_options_ask_for():
    ctx = context()
    assert _candidates(ctx)["calibrate"][1].max_burst == CALIBRATE_BURST > 1
    asked = replace(ctx, options=replace(ctx.options, max_burst=2))
    assert _candidates(asked)["calibrate"][1].max_burst == 2
    binary = replace(ctx, target=load_target("loihi"))
    assert list(_candidates(binary)) == ["calibrate"]
    assert _candidates(binary)["calibrate"][1].max_burst == 1


def test_adafire_keeps_within_the_bursts_the_options_ask_for():
    """--max-burst was ignored by adafire (bursts of 8), while auto's summary stated it."""
    ctx = context()
    assert burst_ceiling(ctx) == INITIAL_BURST  # the default asks for none
    assert burst_ceiling(replace(ctx, options=replace(ctx.options, max_burst=3))) == 3
    asked = replace(ctx, options=replace(ctx.options, max_burst=2))
    graph = AdaFire()(None, asked)
    assert max(population_meta(graph, p).max_burst for p in firing(graph)) <= 2


def test_a_model_without_relu_is_calibrated_by_auto_and_refused_by_adafire():
    """AdaFire chooses the bursts of ReLU layers: with none, it failed with StopIteration."""
    ctx = context(ann=random_mlp(sizes=(16, 5)))
    with pytest.raises(InputError, match="'adafire' chooses the bursts of ReLU layers, and "
                                         "the model has none"):
        AdaFire()(None, ctx)
    note = check_choice(ctx, Auto()(None, ctx), {"calibrate"})
    assert "a model without ReLU layers" in note["reason"]


def test_auto_on_binary_spikes_is_calibrate():
    ctx = replace(context(), target=load_target("loihi"))
    note = check_choice(ctx, Auto()(None, ctx), {"calibrate"})
    assert not note["scored_on_unseen_images"] and "calibration images" in note["reason"]


def test_best_prefers_the_lowest_divergence_then_fewer_synaptic_operations():
    scores = {"a": Score(0.02, 0.99, 100.0), "b": Score(0.01, 0.95, 300.0)}
    assert _best(scores) == "b"  # closer to the ANN, although it agrees on fewer images
    assert _best({**scores, "c": Score(0.01, 0.95, 200.0)}) == "c"  # a tie: the cheaper one


def test_auto_scores_on_images_after_the_ones_the_stages_draw(scored):
    ctx, graph, asked = scored
    note = get_graph_meta(graph).notes["auto"]
    scoring = [call for call in asked if call[1] > 0]
    assert scoring and all(skip >= max(len(ctx.calib), WEIGHT_SAMPLES) for _, skip in scoring)
    assert note["scored_on_unseen_images"] and "unseen" in note["reason"]


def test_calibration_subsets_nest_and_skip_gives_images_the_smaller_draws_lack():
    first, rest = calibration_set("digits", 100, seed=3), calibration_set("digits", 50, seed=3,
                                                                         skip=100)
    both = calibration_set("digits", 150, seed=3)
    rows = {row.tobytes() for row in both}
    assert {row.tobytes() for row in first} | {row.tobytes() for row in rest} == rows
    assert not {row.tobytes() for row in first} & {row.tobytes() for row in rest}


def test_the_default_method_is_auto_and_without_data_it_says_how_to_give_it():
    assert DEFAULT_METHOD == "auto"
    ann = context().ann
    with pytest.raises(InputError, match="method 'auto' needs calibration data") as error:
        api.compile(ann, target="loihi2")
    assert "calib=" in error.value.hint and "qcfs" in error.value.hint
    # the one method the hint names as needing no data is the only one that needs none
    assert [name for name in STAGES if not get_method(name).needs_calibration] == ["qcfs"]


def test_auto_fits_calibrate_once_with_the_dual_threshold_its_light_pipeline_kept():
    """On these images at T=2 the dual threshold does not move the light pipeline's outputs
    further: calibrate is built with it, and not built again without."""
    ctx = context(timesteps=2)
    note = check_choice(ctx, Auto()(None, ctx), {"calibrate", "adafire"})
    assert "calibrate+dual" in note["divergence"] and "calibrate" not in note["divergence"]
