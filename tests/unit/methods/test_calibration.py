"""The training-free calibration stages: calibrate, ftbc, adafire (with SSC) and iat; their
composition, determinism, and that they never see labels."""

from __future__ import annotations

import gc
import itertools
import weakref

import numpy as np
import pytest
import torch

from neurodeploy import api
from neurodeploy.convert import ConvertOptions
from neurodeploy.core.meta import get_graph_meta, population_meta
from neurodeploy.errors import InputError
from neurodeploy.methods import MethodContext, calibration, deployed, get_method, mmse
from neurodeploy.methods import adafire as adafire_module
from neurodeploy.methods.adafire import CandidateSearch, burst_thresholds
from neurodeploy.methods.corrections import firing
from neurodeploy.methods.deployed import DeployedNetwork
from neurodeploy.methods.iat import (
    NEVER,
    TOLERANCE,
    Iat,
    confidence_steps,
    exit_steps,
    exit_threshold,
)
from neurodeploy.methods.mmse import (
    activation_samples,
    mmse_threshold,
    mmse_thresholds_by_burst,
    quantized,
)
from neurodeploy.methods.probe import ann_activations, simulate
from neurodeploy.methods.search import pareto_choice
from neurodeploy.methods.weights import (
    AmsGrad,
    WeightFit,
    _LayerThroughTime,
    _paired_paths,
    _Upstream,
    calibrate_weights,
    input_merge,
)
from neurodeploy.nir_io import read, write
from neurodeploy.passes import quantize
from neurodeploy.targets import load_target
from tests.conftest import images, random_cnn, random_resnet

T = 4


def context(timesteps: int = T, seed: int = 0, ann=None, **options) -> MethodContext:
    ann = ann or random_cnn()
    return MethodContext(ann=ann, calib=images(ann.input_shape, n=96, seed=2),
                         options=ConvertOptions(timesteps=timesteps, **options),
                         target=load_target("loihi2"), seed=seed, show_progress=False)


def mean_rate_error(graph, ctx) -> dict[str, float]:
    """Per population: mean over neurons of |mean SNN rate - mean ANN activation| on the
    calibration images (what the bias and potential corrections remove)."""
    x = ctx.calib
    probe, ann = simulate(graph, x, ctx), ann_activations(ctx, x, graph)
    return {p: float(np.abs(probe.rates(p).mean(0) - ann[p].mean(0)).mean())
            for p in firing(graph)}


def equal_graphs(a, b) -> bool:
    if a.nodes.keys() != b.nodes.keys():
        return False
    for name in firing(a):
        ma, mb = population_meta(a, name), population_meta(b, name)
        for field in ("theta", "bias", "v_init"):
            if not np.array_equal(getattr(ma, field), getattr(mb, field)):
                return False
        if (ma.bias_table is None) != (mb.bias_table is None) or (
                ma.bias_table is not None and not np.array_equal(ma.bias_table, mb.bias_table)):
            return False
        if ma.max_burst != mb.max_burst:
            return False
    return True


@pytest.fixture(scope="module")
def calibrated():
    ctx = context()
    return ctx, get_method("calibrate").convert(ctx)


def test_mmse_threshold_minimises_the_quantization_error():
    values = np.random.default_rng(0).exponential(1.0, (2, 5000))
    values[1] *= 10
    theta = mmse_threshold(values, T, 1)
    assert theta.shape == (2,) and 5 < theta[1] / theta[0] < 20
    for c in range(2):
        best = ((values[c] - quantized(values[c], theta[c], T, 1)) ** 2).mean()
        for other in (values[c].max(), 0.5 * theta[c], 1.5 * theta[c]):
            assert best <= ((values[c] - quantized(values[c], other, T, 1)) ** 2).mean()
    # bursts reach further, so the threshold the search settles on is lower
    assert mmse_threshold(values, T, 4)[0] < theta[0]


@pytest.mark.parametrize("timesteps", [1, 3, 4, 512])
def test_mmse_errors_from_running_sums_are_the_direct_mean(timesteps):
    """The search's errors (sorted values, running sums) against the mean over every value
    of ``quantized``: values below zero, exactly on an edge between two levels, and beyond
    the largest burst (T=512: more levels than values, where the search makes the passes)."""
    rng = np.random.default_rng(2)
    theta = np.array([2.0, 0.7, 0.013, 5.5])
    edges = (np.arange(1, 9) - 0.5) * 2.0 / timesteps  # theta 2.0's edges, exactly
    values = np.concatenate([rng.exponential(1.0, 3000), -rng.random(20), edges, [50.0]])
    bursts = [1, 2, 8]
    found = mmse.candidate_errors(values, theta, timesteps, bursts)
    for burst in bursts:
        direct = [((values - quantized(values, t, timesteps, burst)) ** 2).mean() for t in theta]
        np.testing.assert_allclose(found[burst], direct, rtol=1e-9)


def test_searching_every_burst_at_once_finds_each_bursts_own_threshold():
    values = np.random.default_rng(1).exponential(1.0, (3, 4000))
    values[2] = 0  # a silent channel
    found = mmse_thresholds_by_burst(values, T, [1, 2, 8])
    for burst, theta in found.items():
        alone = mmse_thresholds_by_burst(values, T, [burst])[burst]
        np.testing.assert_array_equal(theta, alone)
        best = [((values[c] - quantized(values[c], theta[c], T, burst)) ** 2).mean()
                for c in range(2)]
        for c in range(2):
            for other in (0.9 * theta[c], 1.1 * theta[c]):
                assert best[c] <= ((values[c] - quantized(values[c], other, T, burst)) ** 2).mean()
    assert found[1][2] == found[1][:2].max()
    assert len({float(found[b][0]) for b in found}) == 3


def test_calibrate_shifts_the_bias_and_corrects_rates_per_neuron(calibrated):
    ctx, graph = calibrated
    assert get_graph_meta(graph).method == "calibrate"
    before = get_graph_meta(graph).notes["calibrate"]["mean_abs_rate_error_before"]
    after = mean_rate_error(graph, ctx)
    assert set(before) == set(after) == set(firing(graph))
    assert all(after[p] < 0.6 * before[p] for p in after)
    first = firing(graph)[0]
    meta, plain = population_meta(graph, first), population_meta(
        get_method("p99.99").convert(ctx), first)
    assert meta.v_init.shape == tuple(graph.nodes[first].input_type["input"])
    assert not np.allclose(meta.theta, plain.theta)


def test_weight_calibration_brings_the_output_closer_than_the_corrections_alone(calibrated):
    ctx, graph = calibrated
    fits = get_graph_meta(graph).notes["calibrate"]["weight_calibration"]
    assert set(fits) == set(firing(graph))
    assert all(f["loss"] == "mse" and f["held_out_after"] < f["held_out_before"]
               for f in fits.values())
    light = get_method("calibrate_light").convert(ctx)
    assert get_graph_meta(light).notes["calibrate_light"]["weight_calibration"] == {}
    assert logits_error(graph, ctx) < logits_error(light, ctx)


def test_calibrated_network_round_trips_through_nir(calibrated, tmp_path):
    _, graph = calibrated
    write(graph, tmp_path / "c.nir")
    assert equal_graphs(read(tmp_path / "c.nir"), graph)


def test_calibration_is_deterministic_for_a_seed():
    a = get_method("calibrate").convert(context(seed=3))
    b = get_method("calibrate").convert(context(seed=3))
    assert equal_graphs(a, b)


def test_stages_only_see_unlabeled_images():
    """A MethodContext has no place for labels: every stage calibrates on images alone."""
    assert "labels" not in MethodContext.__dataclass_fields__
    assert not any("label" in name for name in MethodContext.__dataclass_fields__)


@pytest.mark.parametrize("spec, message", [
    ("calibrate+p99.99", "chooses thresholds twice"),
    ("ftbc+calibrate", "must come first"),
    ("calibrate+ftbc+ftbc", "twice"),
    ("calibrate+nope", "unknown method 'nope'"),
])
def test_bad_stage_lists_are_refused(spec, message):
    with pytest.raises(InputError, match=message):
        get_method(spec)


@pytest.fixture(scope="module")
def corrected():
    ctx = context()
    return ctx, get_method("p99.99+ftbc").convert(ctx)


def logits_error(graph, ctx) -> float:
    """Mean squared distance of the SNN's readout from the ANN's logits."""
    ann = ann_activations(ctx, ctx.calib, graph)["readout"]
    return float(((simulate(graph, ctx.calib, ctx).logits - ann) ** 2).mean())


def test_ftbc_adds_a_per_step_per_channel_table_that_brings_the_output_closer(corrected):
    ctx, graph = corrected
    for name in firing(graph):
        table = population_meta(graph, name).bias_table
        channels = int(graph.nodes[name].input_type["input"][0])
        assert table.shape == (T, channels) and np.abs(table).max() > 0
    assert logits_error(graph, ctx) < 0.95 * logits_error(get_method("p99.99").convert(ctx),
                                                          ctx)


def test_ftbc_composes_after_calibrate_and_round_trips(tmp_path):
    ctx = context()
    graph = get_method("calibrate_light+ftbc").convert(ctx)
    meta = get_graph_meta(graph)
    assert meta.method == "calibrate_light+ftbc"
    assert {"calibrate_light", "ftbc"} <= set(meta.notes)
    light = get_method("calibrate_light").convert(ctx)
    assert logits_error(graph, ctx) < 0.95 * logits_error(light, ctx)
    write(graph, tmp_path / "f.nir")
    assert equal_graphs(read(tmp_path / "f.nir"), graph)


def test_pareto_choice_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        sens, cost = rng.random((3, 4)), rng.random((3, 4))
        budget = float(np.median(cost.sum(axis=0)))
        best = None
        for choice in itertools.product(range(4), repeat=3):
            c = sum(cost[i, k] for i, k in enumerate(choice))
            s = sum(sens[i, k] for i, k in enumerate(choice))
            if c <= budget and (best is None or s < best[0]):
                best = (s, choice)
        picked = pareto_choice(sens, cost, budget)
        if best is None:
            assert picked == list(np.argmin(cost, axis=1))
        else:
            assert sum(sens[i, k] for i, k in enumerate(picked)) == pytest.approx(best[0])
            assert sum(cost[i, k] for i, k in enumerate(picked)) <= budget


@pytest.fixture(scope="module")
def adafire():
    ctx = context()
    return ctx, get_method("adafire+iat").convert(ctx)


def test_adafire_chooses_bursts_and_scales_under_the_budget(adafire):
    ctx, graph = adafire
    note = get_graph_meta(graph).notes["adafire"]
    bursts = {population_meta(graph, p).source: population_meta(graph, p).max_burst
              for p in firing(graph)}
    assert bursts == note["max_burst"] and all(1 <= b <= 8 for b in bursts.values())
    assert set(note["threshold_scale"]) == set(bursts)
    cost = np.asarray(note["burst_synops"])
    chosen = [b - 1 for b in bursts.values()]
    assert cost[np.arange(len(chosen)), chosen].sum() <= cost[:, 3].sum() + 1e-9
    # bursts carry more levels per step: the output is closer to the ANN than single spikes
    assert logits_error(graph, ctx) < logits_error(get_method("calibrate").convert(ctx), ctx)


def test_ssc_search_skips_only_the_scales_past_the_budget():
    ctx = context()
    samples = activation_samples(ctx.ann, ctx.calibration("adafire"), ctx.options.per_channel,
                                 ctx.seed)
    thetas = {name: burst_thresholds(values, ctx, [1, 2]) for name, values in samples.items()}
    search = CandidateSearch(ctx, ctx.calib[:32], thetas)
    base = dict.fromkeys(thetas, 2)
    options = [("scale", r) for r in (1.0, 2.0, 4.0, 8.0)]
    full_sens, full_cost = search.table(base, options, "test")
    limit = float(np.median(full_sens))
    sens, cost = search.table(base, options, "test", limit=limit)
    assert np.isfinite(full_sens).all() and not np.isfinite(sens).all()
    least = 0.0  # the rows come last layer first; each must fit next to those before
    for row, full in reversed(list(zip(sens, full_sens, strict=True))):
        over = np.flatnonzero(full + least > limit)
        first = over[over > 0][0] if (over > 0).any() else len(full)  # the base is measured
        assert np.array_equal(row[:first], full[:first]) and np.isinf(row[first:]).all()
        least += full[:first].min()
    assert np.array_equal(np.isfinite(sens), np.isfinite(cost))
    assert pareto_choice(cost, sens, limit) == pareto_choice(full_cost, full_sens, limit)


def test_adafire_frees_its_search_before_the_corrections(monkeypatch):
    """The search's deployed network holds a spike record per layer: alive next to the
    corrections' own, it put `auto`'s peak on the ResNet-18 shape at 3,129 MB, 2,765 without."""
    alive: weakref.WeakSet = weakref.WeakSet()
    made = deployed.DeployedNetwork.__init__

    def tracked(self, *args, **kwargs):
        made(self, *args, **kwargs)
        alive.add(self)

    correct = adafire_module.correct

    def checked(*args, **kwargs):
        gc.collect()
        assert not alive, "the search's deployed network outlives the search"
        return correct(*args, **kwargs)

    monkeypatch.setattr(deployed.DeployedNetwork, "__init__", tracked)
    monkeypatch.setattr(adafire_module, "correct", checked)
    graph = get_method("adafire").convert(context())
    assert get_graph_meta(graph).notes["adafire"]["max_burst"]


def test_calibrate_frees_the_records_behind_it_and_builds_the_same_network(monkeypatch):
    """Layer by layer, calibrate releases the spike records it will not read again: fewer are
    alive than populations, and the network (records and fitted weights) is the one built
    with every record kept, on a residual network."""
    ctx = context(ann=random_resnet())
    release = deployed.DeployedNetwork.release_behind
    alive = []

    def counted(net, corrected):
        release(net, corrected)
        alive.append(sum(not run.released for run in net._runs.values()))

    monkeypatch.setattr(deployed.DeployedNetwork, "release_behind", counted)
    freed = get_method("calibrate").convert(ctx)
    monkeypatch.setattr(deployed.DeployedNetwork, "release_behind", lambda net, corrected: None)
    kept = get_method("calibrate").convert(ctx)
    assert equal_graphs(freed, kept)
    synapses = [n for n, node in kept.nodes.items() if hasattr(node, "weight")]
    assert synapses and all(np.array_equal(freed.nodes[n].weight, kept.nodes[n].weight)
                            for n in synapses)
    assert alive and max(alive) < len(firing(kept))


def test_adafire_is_refused_on_binary_spike_targets():
    ctx = context()
    ctx = MethodContext(ann=ctx.ann, calib=ctx.calib, options=ctx.options,
                        target=load_target("loihi"), show_progress=False)
    with pytest.raises(InputError, match="'loihi' has binary spikes.*loihi2"):
        get_method("adafire").convert(ctx)


def test_iat_thresholds_keep_the_full_window_prediction_on_calibration_data(adafire):
    ctx, graph = adafire
    note = get_graph_meta(graph).notes["iat"]
    assert len(note["thresholds"]) == T - 1 and 1 <= note["calibration_mean_timesteps"] <= T
    probe = simulate(graph, ctx.calib, ctx)
    steps = probe.trace.output_steps
    taken, predictions = exit_steps(confidence_steps(probe.graph, steps),
                                    steps.argmax(axis=2), note["thresholds"])
    changed = (predictions != steps[-1].argmax(axis=1)).mean()
    assert changed <= TOLERANCE + 1e-9
    assert taken.mean() == pytest.approx(note["calibration_mean_timesteps"])


def test_iat_takes_its_own_larger_sample_from_the_calibration_source(adafire):
    ctx, graph = adafire
    asked = []

    def more(samples: int) -> np.ndarray:
        asked.append(samples)
        return images(ctx.ann.input_shape, n=samples, seed=5)

    few = MethodContext(ann=ctx.ann, calib=ctx.calib, options=ctx.options, target=ctx.target,
                        show_progress=False, more_calibration=more)
    note = get_graph_meta(Iat(samples=200)(graph, few)).notes["iat"]
    assert asked == [200] and note["calibration_images"] == 200
    assert ctx.calibration("x", 200) is ctx.calib  # no source for more: what there is
    assert few.calibration("x", len(ctx.calib)) is ctx.calib and asked == [200]


def test_exit_threshold_and_exit_steps():
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    assert exit_threshold(scores, np.array([0, 0, 1, 0], bool), 0.0) == 0.7
    assert exit_threshold(scores, np.array([1, 0, 0, 0], bool), 0.0) == NEVER
    assert exit_threshold(scores, np.zeros(4, bool), 0.0) < 0.6
    step_scores = np.array([[0.9, 0.1, 0.1], [0.9, 0.8, 0.1], [0, 0, 0]])
    predictions = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    taken, chosen = exit_steps(step_scores, predictions, [0.5, 0.5])
    assert taken.tolist() == [1, 2, 3] and chosen.tolist() == [1, 5, 9]


def test_adaptive_evaluation_reports_mean_steps(adafire):
    ctx, graph = adafire
    compiled = quantize(graph, ctx.target)
    x = images(ctx.ann.input_shape, n=50, seed=11)
    labels = ann_activations(ctx, x, graph)["readout"].argmax(axis=1)
    result = api.evaluate_adaptive(compiled, x, labels, show_progress=False)
    assert result.timesteps == T and sum(result.exits.values()) == 50
    assert result.mean_timesteps == pytest.approx(
        sum(t * n for t, n in result.exits.items()) / 50)
    assert result.full_accuracy == api.evaluate(compiled, x, labels, [T],
                                                show_progress=False)[T]
    with pytest.raises(InputError, match=r"\+iat"):
        api.evaluate_adaptive(quantize(get_method("p99.99").convert(ctx), ctx.target),
                              x, labels)


def test_a_window_longer_than_the_bias_tables_is_refused_and_the_report_stops_there(corrected):
    from neurodeploy.backends import get_backend
    from neurodeploy.report.build import build_report
    from neurodeploy.report.reference import EquivalentReference

    ctx, graph = corrected
    compiled = quantize(graph, ctx.target)
    x = api.quantize_inputs(compiled, ctx.calib[:4])
    with pytest.raises(InputError, match=f"bias tables .* for {T} steps; it cannot run {T + 1}"):
        get_backend("reference").run(compiled, x, T + 1)
    labels = np.zeros(4, np.int64)
    report = build_report(compiled, ctx.calib[:4], labels, target=ctx.target,
                          reference=EquivalentReference(compiled), show_progress=False)
    assert max(report.data["accuracy"]["timesteps"]) == T


def test_weight_fit_stops_when_the_held_out_loss_stops_improving():

    ctx = context()
    graph = get_method("calibrate_light").convert(ctx)
    net = DeployedNetwork(graph, ctx.calib, ctx)
    pop = firing(graph)[1]
    target = ann_activations(ctx, ctx.calib, graph)[pop]
    _, still = calibrate_weights(graph, pop, net, target, WeightFit("mse", lr=0.0, patience=3))
    assert still["passes"] == 3 and still["held_out_after"] == still["held_out_before"]
    torch.manual_seed(0)
    fit = WeightFit("mse", epochs=4, patience=4, batch=16)
    _, moving = calibrate_weights(graph, pop, net, target, fit)
    assert moving["passes"] <= 4 and moving["held_out_after"] < moving["held_out_before"]
    torch.manual_seed(0)  # gains that never reach the asked fraction stop it, best kept
    small_gains = WeightFit("mse", epochs=12, patience=4, batch=16, min_improvement=0.99)
    _, stopped = calibrate_weights(graph, pop, net, target, small_gains)
    assert stopped["passes"] == 4 and stopped["held_out_after"] < stopped["held_out_before"]


def test_weight_fit_optimizer_takes_torch_adams_amsgrad_steps():

    generator = torch.Generator().manual_seed(0)
    ours = [torch.randn(3, 4, generator=generator), torch.randn(5, generator=generator)]
    theirs = [p.clone() for p in ours]
    optimizer = AmsGrad(ours, lr=1e-2)
    reference = torch.optim.Adam(theirs, lr=1e-2, amsgrad=True)
    for _ in range(6):
        grads = [torch.randn(p.shape, generator=generator) for p in ours]
        for p, q, g in zip(ours, theirs, grads, strict=True):
            p.grad, q.grad = g.clone(), g.clone()
        optimizer.step()
        reference.step()
        for p, q in zip(ours, theirs, strict=True):
            assert torch.equal(p, q)
    optimizer.zero_grad()
    assert all(p.grad is None for p in ours)


def test_weight_fit_trains_a_residual_sum_as_a_whole():
    """relu3 = relu(conv3(relu2) + relu1) (identity shortcut), relu5 = relu(conv5(relu4) +
    proj(relu3)): every weighted summand is fitted, the identity shortcut is left alone."""

    ctx = context(ann=random_resnet())
    merge = input_merge(ctx.ann, "relu5")
    assert [c.source for c in merge.chains] == ["relu4", "relu3"]
    assert [n.name for n in merge.weighted] == ["conv5", "proj"]
    assert [n.name for n in input_merge(ctx.ann, "relu3").weighted] == ["conv3"]
    graph = get_method("calibrate_light").convert(ctx)
    net = DeployedNetwork(graph, ctx.calib, ctx)
    targets = ann_activations(ctx, ctx.calib, graph)
    fit = WeightFit("mse", epochs=4, patience=4, batch=16)
    for pop, changed, kept in [("relu5", {"conv5", "proj"}, set()),
                               ("relu3", {"conv3"}, {"add1.shortcut1"})]:
        torch.manual_seed(0)
        fitted, report = calibrate_weights(graph, pop, net, targets[pop], fit)
        assert report["held_out_after"] < report["held_out_before"]
        moved = {n for n in changed | kept
                 if not np.array_equal(fitted.nodes[n].weight, graph.nodes[n].weight)}
        assert moved == changed
        assert not np.array_equal(population_meta(fitted, pop).bias,
                                  population_meta(graph, pop).bias)


@pytest.mark.parametrize("ann", [random_cnn, random_resnet])
def test_weight_fit_inputs_are_the_same_kept_or_made_per_batch(monkeypatch, ann):
    """The fit's input values, kept for all images (converted and pooled once), are the
    values made per batch, on every population of a CNN (pooling, flattening) and a ResNet
    (residual merges, identity shortcuts)."""
    from neurodeploy.methods import weights

    ctx = context(ann=ann())
    graph = get_method("calibrate_light").convert(ctx)
    net = DeployedNetwork(graph, ctx.calib, ctx)
    index = np.array([5, 0, 17, 3])
    checked = 0
    for pop in firing(graph):
        merge = weights.input_merge(ctx.ann, population_meta(graph, pop).source)
        paths = weights._paired_paths(merge, graph, pop, net)
        kept = weights._Upstream(graph, merge, paths, net)
        monkeypatch.setattr(weights, "KEPT_SHARE", 0.0)
        made = weights._Upstream(graph, merge, paths, net)
        monkeypatch.undo()
        assert not made.kept
        for a, b in zip(kept(index), made(index), strict=True):
            assert a.shape == b.shape and torch.equal(a, b)
        checked += len(kept.kept)  # the input images are not kept: a view repeats them
    assert checked >= 1


def fit_inputs(ctx: MethodContext):
    """What the weight fit of the second population of the light pipeline's network starts
    from: its merge, its record, its upstream (the input values of any of the calibration
    images) and its ANN target."""
    graph = get_method("calibrate_light").convert(ctx)
    net = DeployedNetwork(graph, ctx.calib, ctx)
    pop = firing(graph)[1]
    meta = population_meta(graph, pop)
    merge = input_merge(ctx.ann, meta.source)
    upstream = _Upstream(graph, merge, _paired_paths(merge, graph, pop, net), net)
    target = torch.as_tensor(ann_activations(ctx, ctx.calib, graph)[pop], dtype=torch.float32)
    return merge, meta, upstream, target


def test_weight_fit_runs_a_dual_threshold_population_with_its_negative_spikes():
    """The fitted layer runs the neuron the network runs: with the dual threshold, a neuron
    whose membrane drops below theta_neg after it fired takes spikes back, so less is sent
    overall on these images."""
    merge, meta, upstream, target = fit_inputs(context(dual=True))
    dual = _LayerThroughTime(merge, meta, target.shape[1:], "mse")
    single = _LayerThroughTime(merge, meta.replace(dual=False), target.shape[1:], "mse")
    values = upstream(np.arange(len(target)))
    with torch.no_grad():
        sent_dual, sent_single = dual(values), single(values)
    assert dual.theta_neg is not None and single.theta_neg is None
    assert sent_dual.sum() < sent_single.sum()


@pytest.mark.parametrize("loss", ["mse", "kl"])
def test_weight_fit_scores_in_batches_the_loss_of_all_the_images(loss):
    """The held-out score runs a batch at a time; weighted by size, the batches' losses are
    the loss on all the images at once, also when the last batch is short (96 = 2 x 40 + 16)."""
    merge, meta, upstream, target = fit_inputs(context())
    layer = _LayerThroughTime(merge, meta, target.shape[1:], loss)
    index = np.arange(len(target))
    with torch.no_grad():
        whole = float(layer.loss(upstream(index), target))
    assert whole > 0
    assert layer.score(upstream, index, target, 40) == pytest.approx(whole, rel=1e-5)


@pytest.mark.parametrize("per_channel", [True, False])
def test_mmse_samples_are_drawn_up_front_and_taken_chunk_by_chunk(per_channel, monkeypatch):
    """The values the MMSE search sees are the drawn entries of each activation's (channel,
    image, position) array, whether the images run at once or one at a time (memory then
    does not grow with the number of calibration images; torch's convolutions round a batch of
    one a little differently)."""
    monkeypatch.setattr(mmse, "MAX_SAMPLES", 50)
    ann = random_cnn()
    x = images(ann.input_shape, n=12)
    whole = mmse.activation_samples(ann, x, per_channel, seed=3)
    one_by_one = mmse.activation_samples(ann, x, per_channel, seed=3, memory_budget=1)
    acts = ann.run(torch.as_tensor(x), keep=set(whole))
    rng = np.random.default_rng(3)
    for name in whole:
        every = acts[name].transpose(0, 1).flatten(1).numpy().astype(np.float64)
        every = every if per_channel else every.reshape(1, -1)
        drawn = rng.choice(every.shape[1], 50, replace=False) if every.shape[1] > 50 else \
            np.arange(every.shape[1])
        assert np.array_equal(whole[name], every[:, drawn])
        assert np.allclose(one_by_one[name], whole[name], rtol=1e-5, atol=1e-6)


def test_the_weight_fit_takes_a_seeded_subset_of_a_larger_calibration_set(monkeypatch):
    """The fit keeps every image's spikes and activations for every layer: at most
    WEIGHT_SAMPLES of them, whatever the source holds."""
    monkeypatch.setattr(calibration, "WEIGHT_SAMPLES", 8)
    fitted_on = []
    real = calibration.DeployedNetwork
    monkeypatch.setattr(calibration, "DeployedNetwork",
                        lambda graph, images, ctx: fitted_on.append(len(images)) or
                        real(graph, images, ctx))
    ann = random_cnn()
    ctx = MethodContext(ann=ann, calib=images(ann.input_shape, n=40), target=load_target("loihi2"),
                        options=ConvertOptions(timesteps=2), show_progress=False)
    get_method("calibrate").convert(ctx)
    assert fitted_on == [8]
