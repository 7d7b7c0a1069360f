"""The API takes what a PyTorch user has in hand: modules in memory, tensors, DataLoaders."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import neurodeploy
from neurodeploy import api, train
from neurodeploy.data import calibration_set
from neurodeploy.errors import InputError, TargetLimitExceeded
from neurodeploy.testing import assert_bit_exact
from tests.models import DigitsMLP, save_torchscript

T = 3


def _model() -> DigitsMLP:
    torch.manual_seed(0)
    return DigitsMLP().eval()


@pytest.fixture(scope="module")
def calib() -> np.ndarray:
    return calibration_set("digits", 48)


@pytest.fixture(scope="module")
def from_file(tmp_path_factory, calib) -> np.ndarray:
    """Output of the model compiled the CLI way: a TorchScript file and a numpy array."""
    path = save_torchscript(_model(), tmp_path_factory.mktemp("api") / "model.pt")
    return _outputs(api.compile(path, method="p99.99", calib=calib, timesteps=T,
                                show_progress=False))


def _outputs(result) -> np.ndarray:
    return api.simulate(result.graph, calibration_set("digits", 8, seed=1), T).outputs


def test_a_module_in_memory_with_a_tensor_compiles_like_the_saved_file(calib, from_file):
    model = _model()
    result = api.compile(model, method="p99.99", calib=torch.as_tensor(calib), timesteps=T,
                         show_progress=False)
    assert np.array_equal(_outputs(result), from_file)


def test_the_module_keeps_its_training_mode(calib):
    model = _model().train()
    api.compile(model, calib=calib, timesteps=T, show_progress=False, method="p99.99")
    assert all(m.training for m in model.modules())


@pytest.mark.parametrize("labelled", [True, False])
def test_a_dataloader_gives_its_first_calib_samples_images(calib, from_file, labelled):
    """Batches of 20 (images, labels) or plain images; 48 taken across three batches."""
    more = torch.as_tensor(np.concatenate([calib, calibration_set("digits", 30, seed=5)]))
    data = TensorDataset(more, torch.zeros(len(more))) if labelled else more
    result = api.compile(_model(), calib=DataLoader(data, batch_size=20),
                         calib_samples=len(calib), timesteps=T, show_progress=False,
                         method="p99.99")
    assert np.array_equal(_outputs(result), from_file)


def test_an_npz_path_is_drawn_from_like_a_dataset(tmp_path):
    path = tmp_path / "calib.npz"
    np.savez(path, x=calibration_set("digits", 500, seed=3))
    drawn = calibration_set(str(path), 48, seed=2)
    by_path = api.compile(_model(), calib=path, calib_samples=48, seed=2, timesteps=T,
                          show_progress=False, method="p99.99")
    by_array = api.compile(_model(), calib=drawn, timesteps=T, show_progress=False, method="p99.99")
    assert np.array_equal(_outputs(by_path), _outputs(by_array))


@pytest.mark.parametrize("model, data, message", [
    (42, "calib", "cannot read a model from an object of type int"),
    ("model", 3.5, "calibration data must be a non-empty batch of images"),
    ("model", (x for x in range(3)), "images .*, got an object of type generator"),
    ("model", torch.ones(4, 1, 8, 8, dtype=torch.bool), "images .*, got bool of shape"),
    ("model", np.zeros((0, 1, 8, 8)), "calibration data must be a non-empty batch of images"),
    ("model", torch.zeros(4, 1, 8, 8, device="meta"), "a tensor on the meta device holds no "
                                                      "values"),  # NotImplementedError before
])
def test_what_cannot_be_used_is_named(calib, model, data, message):
    model = _model() if model == "model" else model
    data = calib if isinstance(data, str) else data
    with pytest.raises(InputError, match=message):
        api.compile(model, calib=data, timesteps=T, show_progress=False, method="p99.99")


def test_calibration_images_that_do_not_fit_are_named_not_the_input_shape(calib):
    """Without input_shape the images give it: the error must point at them, while a shape
    the user gave keeps the hint about input_shape."""
    small = calib[:, :, :4, :4]
    with pytest.raises(InputError, match=r"expects 64 input features, but gets 16\. That is "
                                         r"the shape of the calibration images \(calib=") as info:
        api.compile(_model(), calib=small, timesteps=T, method="p99.99")
    assert "input_shape" not in str(info.value)
    with pytest.raises(InputError, match=r"but gets 16.*input_shape=\(1, 28, 28\)"):
        api.compile(_model(), calib=small, input_shape=(1, 4, 4), timesteps=T, method="p99.99")
    program = torch.export.export(_model(), (torch.zeros(2, 1, 8, 8),))
    with pytest.raises(InputError, match=r"^calibration data has shape \(64,\), the model "
                                         r"expects \(1, 8, 8\)$"):  # it records its shape
        api.compile(program, calib=calib.reshape(len(calib), 64), method="p99.99")


def test_one_calibration_sample_does_not_give_the_input_shape(calib):
    """calib[0], an image without its batch axis, compiled a network for (8, 8) inputs; the
    shape comes from the user, or from a model that records it."""
    with pytest.raises(InputError, match=r"cannot be read from the calibration images \(calib=, "
                                         r"--calib\): they hold a single sample\. Pass a batch"):
        api.compile(_model(), calib=calib[0], timesteps=T, method="p99.99")
    shaped = api.compile(_model(), calib=calib[:1], input_shape=(1, 8, 8), method="p99.99")
    program = torch.export.export(_model(), (torch.zeros(2, 1, 8, 8),))
    recorded = api.compile(program, calib=calib[:1], method="p99.99")
    assert shaped.input_shape == recorded.input_shape == (1, 8, 8)
    one_drawn = api.compile(_model(), calib="digits", calib_samples=1, method="p99.99")
    assert one_drawn.input_shape == (1, 8, 8)  # a dataset's images come batched


def test_a_shape_the_user_gave_is_blamed_as_given(calib):
    with pytest.raises(InputError, match=r"^calibration data has shape \(1, 8, 8\), "
                                         r"input_shape \(--input-shape\) is \(64,\)$"):
        api.compile(_model(), calib=calib, input_shape=(64,), method="p99.99")


@pytest.mark.parametrize(("target", "options", "message"), [
    ("loihi2", api.ConvertOptions(max_burst=16), "max_burst is 16, the target allows 15"),
    ("loihi2", api.ConvertOptions(max_burst=10 ** 20), "max_burst is 1000000000000000000"),
    ("loihi", api.ConvertOptions(dual=True), "dual_threshold is on, the target allows off"),
])
def test_spikes_the_target_cannot_send_are_refused_before_the_model_is_read(target, options,
                                                                             message):
    """They were refused after calibration (minutes at burst 1000; 10^20 failed inside
    numpy); here no model or data is even looked at."""
    with pytest.raises(TargetLimitExceeded, match=f"^options: {message}"):
        api.compile("no such model.pt", target=target, options=options, method="calibrate")


def test_errors_name_the_argument_and_hints_both_spellings(calib):
    with pytest.raises(InputError, match=r"^timesteps must be at least 1, got 0$"):
        api.compile(_model(), calib=calib, timesteps=0, method="p99.99")
    with pytest.raises(InputError, match=r"needs calibration data\. Pass calib= \(--calib\)"):
        api.compile(_model(), input_shape=(1, 8, 8), timesteps=T, method="p99.99")


def test_inputs_may_be_tensors(mlp_graph):
    x = np.random.default_rng(0).random((3, 1, 4, 4)).astype(np.float32)
    assert np.array_equal(api.simulate(mlp_graph, torch.as_tensor(x).requires_grad_()).outputs,
                          api.simulate(mlp_graph, x).outputs)


@pytest.fixture(scope="module")
def deployment(calib) -> api.Deployment:
    return api.compile(_model(), calib=calib, timesteps=T, show_progress=False, method="p99.99")


def test_a_deployment_loads_back_from_its_file(deployment, tmp_path):
    deployment.save(tmp_path / "model.nir")
    loaded = api.load(tmp_path / "model.nir")
    x = calibration_set("digits", 4, seed=1)
    assert loaded.target == deployment.target and loaded.ann is None
    assert loaded.meta.timesteps == T and loaded.input_shape == (1, 8, 8)
    assert np.array_equal(loaded.simulate(x).outputs, deployment.simulate(x).outputs)


def test_one_sample_runs_as_a_batch_of_one(deployment):
    x = calibration_set("digits", 1, seed=1)
    assert np.array_equal(deployment.simulate(x[0]).outputs, deployment.simulate(x).outputs)


def test_the_report_compares_with_the_model_in_memory(deployment, tmp_path):
    x, y = api.dataset("digits", limit=16)
    report = deployment.report(x, y, show_progress=False)
    assert report.data["ann_reference"] == {"kind": "model", "description": "the float model"}
    deployment.save(tmp_path / "model.nir")
    again = api.load(tmp_path / "model.nir").report(x, y, show_progress=False)
    assert again.data["ann_reference"]["kind"] == "equivalent"


def test_a_run_takes_the_compiled_window_unless_told_and_refuses_zero(deployment):
    x = api.dataset("digits", limit=2)[0]
    assert deployment.simulate(x).output_steps.shape[0] == deployment.meta.timesteps
    assert deployment.simulate(x, timesteps=2).output_steps.shape[0] == 2
    for run in (deployment.simulate, deployment.predict, deployment.verify):
        with pytest.raises(InputError, match="timesteps must be at least 1, got 0"):
            run(x, timesteps=0)


@pytest.mark.parametrize("bad", [2.5, "3", True])
def test_a_window_that_is_not_a_whole_number_is_refused_everywhere(deployment, calib, bad):
    x, y = api.dataset("digits", limit=2)
    for run in (lambda: deployment.simulate(x, bad), lambda: deployment.verify(x, timesteps=bad),
                lambda: deployment.evaluate(x, y, bad, show_progress=False),
                lambda: deployment.evaluate(x, y, [1, bad], show_progress=False),
                lambda: deployment.report(x, y, timesteps=[bad], show_progress=False),
                lambda: api.compile(_model(), calib=calib, timesteps=bad, method="p99.99",
                                    show_progress=False)):
        with pytest.raises(InputError, match=f"timesteps must be a whole number, got {bad!r}"):
            run()


def test_one_window_may_be_named_as_a_number(deployment):
    x, y = api.dataset("digits", limit=8)
    assert deployment.evaluate(x, y, 2, show_progress=False) == \
        deployment.evaluate(x, y, [2], show_progress=False)
    report = deployment.report(x, y, timesteps=np.int64(2), show_progress=False)
    assert report.data["accuracy"]["timesteps"] == [2, T]


def test_a_run_the_free_memory_cannot_hold_is_refused_before_it_starts(deployment,
                                                                       monkeypatch):
    from neurodeploy.backends import memory

    x = api.dataset("digits", limit=4)[0]
    monkeypatch.setattr(memory, "available_memory", lambda: 1000)
    with pytest.raises(InputError, match="4 samples over 3 steps need up to"):
        deployment.simulate(x)  # the whole trace, in one run
    with pytest.raises(InputError, match="over 3 steps need"):
        deployment.verify(x, backend="reference")


def test_ann_accuracy_is_the_compiled_models(deployment):
    x, y = api.dataset("digits", limit=64)
    expected = (_model()(torch.as_tensor(x)).argmax(1).numpy() == y).mean()
    assert deployment.ann_accuracy(x, y) == pytest.approx(expected)


def test_ann_accuracy_refuses_a_model_the_network_was_not_compiled_from(deployment):
    """Another network on the same input: its accuracy beside the SNN's would mislead."""
    x, y = api.dataset("digits", limit=8)
    other = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    with pytest.raises(InputError, match=r"the float model \(ann\) has no node '.*', which "
                                         r"population .* was converted from"):
        deployment.ann_accuracy(x, y, ann=other)
    assert deployment.ann_accuracy(x, y, ann=_model()) == deployment.ann_accuracy(x, y)


def test_export_writes_the_asked_flavor(deployment, tmp_path):
    deployment.export(tmp_path / "plain.nir", "standard")
    assert (tmp_path / "plain.nir").is_file()
    with pytest.raises(InputError, match="unknown export flavor 'onnx'"):
        deployment.export(tmp_path / "model.onnx", "onnx")


def test_the_package_exports_the_api_without_importing_it():
    """`import neurodeploy` imports neither torch nor Lava; the API comes on first use."""
    code = ("import sys, neurodeploy\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lava'})\n"
            "assert not heavy, heavy\n"
            "from neurodeploy import api\n"
            "assert neurodeploy.compile is api.compile and neurodeploy.load is api.load\n"
            "assert neurodeploy.Deployment is api.Deployment\n"
            "assert not any(m.startswith('lava') for m in sys.modules)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        neurodeploy.nope  # noqa: B018


def test_the_compile_command_and_the_api_share_their_defaults():
    """The CLI parses and calls api.compile: an option default that differs from the keyword
    default would make `neurodeploy compile` and `compile()` build different networks."""
    import inspect

    from neurodeploy.cli import compile_cmd

    keywords = inspect.signature(api.compile).parameters
    options = {p.name: p.default for p in compile_cmd.params}
    shared = {"target", "method", "timesteps", "calib_samples", "seed"}
    assert shared <= options.keys() & keywords.keys()
    assert {name: options[name] for name in shared} == {name: keywords[name].default
                                                        for name in shared}


@pytest.mark.parametrize("make, name", [
    (lambda bad: api.ConvertOptions(max_burst=bad), "options.max_burst"),
    (lambda bad: api.Workers(count=bad), "workers"),
    (lambda bad: api.dataset("digits", limit=bad), "limit"),
    (lambda bad: train.TrainConfig(epochs=bad), "epochs"),
    (lambda bad: train.TrainConfig(batch=bad), "batch"),
    (lambda bad: train.clip_levels(bad, None), "levels"),
    (lambda bad: train.clip_levels(4, bad), "timesteps")])
def test_every_count_the_api_takes_is_a_whole_number(make, name):
    for bad, message in [(2.5, "a whole number, got 2.5"), ("3", "a whole number, got '3'"),
                         (True, "a whole number, got True"), (0, "at least 1, got 0")]:
        with pytest.raises(InputError, match=f"^{name} must be {message}$"):
            make(bad)
    make(np.int64(2))  # numpy's integers are whole numbers


@pytest.mark.parametrize("inputs", [np.zeros((0, 1, 8, 8), np.float32), None,
                                    np.array(["a", "b"])])
def test_inputs_that_are_no_batch_of_numbers_are_refused(deployment, inputs):
    for run in (deployment.simulate, deployment.predict, deployment.verify):
        with pytest.raises(InputError, match="inputs must be a non-empty batch of numbers"):
            run(inputs)


@pytest.mark.parametrize(("labels", "message"), [
    (lambda y: y + 0.5, r"labels must be whole-number class indices, got float64 values such "
                        r"as \[.*\.5"),
    (lambda y: y[:, None], r"need one label per image: 16 images, labels of shape \(16, 1\)"),
    (lambda y: y[:3], r"need one label per image: 16 images, labels of shape \(3,\)"),
    (lambda y: y.astype(str), "labels must be whole-number class indices, got <U"),
    (lambda y: np.full_like(y, 99), "label 99 is not a class of the model")])
def test_labels_are_checked_alike_by_every_accuracy(deployment, labels, message):
    """A fractional or broadcast label scored 0% or 4508% without a word."""
    x, y = api.dataset("digits", limit=16)
    for run in (lambda: deployment.evaluate(x, labels(y), show_progress=False),
                lambda: deployment.ann_accuracy(x, labels(y)),
                lambda: deployment.report(x, labels(y), show_progress=False)):
        with pytest.raises(InputError, match=message):
            run()
    assert deployment.evaluate(x, y.astype(np.float32), 2, show_progress=False) == \
        deployment.evaluate(x, y, 2, show_progress=False)  # whole floats are labels


def test_ann_accuracy_reads_images_as_evaluate_does(deployment):
    x, y = api.dataset("digits", limit=16)
    assert deployment.ann_accuracy(np.round(x * 255).astype(np.uint8), y) == \
        deployment.ann_accuracy(np.round(x * 255) / 255, y)
    for images, message in [(x * 5, r"values in \[0, 1\]"), (np.full_like(x, np.nan),
                                                                r"values in \[0, 1\]"),
                            (x.reshape(16, 64), r"the model takes \(N, 1, 8, 8\)")]:
        with pytest.raises(InputError, match=message):
            deployment.ann_accuracy(images, y)


@pytest.mark.parametrize(("call", "message"), [
    (lambda d, c: api.compile(_model(), calib=c, calib_samples=2.5), "calib_samples must be a "
                                                                     "whole number, got 2.5"),
    (lambda d, c: api.compile(_model(), calib=c, seed=-1), "seed must be at least 0, got -1"),
    (lambda d, c: api.compile(_model(), calib=c, seed="a"), "seed must be a whole number"),
    (lambda d, c: api.compile(_model(), calib=c, target=None), "target must be a target's name"),
    (lambda d, c: api.compile(_model(), calib=c, method=None), "method must be a name such as"),
    (lambda d, c: api.compile(_model(), calib=c, options={"max_burst": 2}),
     "options must be a ConvertOptions, got dict"),
    (lambda d, c: api.compile(_model(), calib=c, memory_budget="1GB"),
     "memory_budget must be a number of bytes, got '1GB'"),
    (lambda d, c: d.evaluate(c, np.zeros(len(c), int), memory_budget="1GB"),
     "memory_budget must be a number of bytes"),
    (lambda d, c: d.evaluate(c, np.zeros(len(c), int), workers=2), "workers must be a Workers"),
    (lambda d, c: d.simulate(c, record="everything"), "record must be one of output, counts"),
    (lambda d, c: d.random_inputs(2, seed=-1), "seed must be at least 0"),
    (lambda d, c: d.save(None), "path must be a file path, got None"),
    (lambda d, c: d.save(""), "path must be a file path, got ''"),
    (lambda d, c: api.load(None), "path must be a file path, got None"),
    (lambda d, c: d.summary(None), "path must be a file path, got None"),
    (lambda d, c: api.compile(_model(), calib=c, target=3), "target must be a target's name or "
                                                          "a .toml path, got 3"),
    (lambda d, c: assert_bit_exact(_model(), c),
     "network must be a Deployment, a NIR graph or a .nir path, got DigitsMLP")])
def test_arguments_of_the_wrong_kind_are_named(deployment, calib, call, message):
    """Each was a bare TypeError, AttributeError or ValueError from deep inside."""
    from neurodeploy.errors import NeurodeployError

    with pytest.raises(NeurodeployError, match=message):
        call(deployment, calib)


def test_a_bfloat16_tensor_is_read_as_its_float32_values(deployment, calib):
    x = torch.as_tensor(calib[:4]).to(torch.bfloat16)
    assert np.array_equal(deployment.simulate(x).outputs,
                          deployment.simulate(x.float().numpy()).outputs)
    assert deployment.simulate(calib[:2], record="all").membranes  # a name is a Record


@pytest.mark.parametrize("method", ["p99.99", "calibrate"])
def test_compile_leaves_the_callers_torch_random_stream_alone(method):
    """calibrate seeded torch's global generator: a notebook's seeded training drew other
    numbers after a compile than without it."""
    from tests.conftest import images, random_mlp

    ann = random_mlp()
    calib = images(ann.input_shape, 32)
    torch.manual_seed(123)
    alone = torch.rand(3)
    torch.manual_seed(123)
    api.compile(ann, method=method, calib=calib, show_progress=False)
    assert torch.equal(torch.rand(3), alone)


@pytest.mark.parametrize(("shape", "message"), [
    (64, "input_shape must be a sequence of sizes, got 64"),  # a raw TypeError
    ("1,8,8", "input_shape must be a sequence of sizes, got '1,8,8'"),  # a raw ValueError
    ((1.5, 8, 8), "every size of input_shape must be a whole number, got 1.5"),  # was (1, 8, 8)
])
def test_an_input_shape_that_is_no_shape_is_refused_by_name(shape, message):
    from tests.conftest import images

    with pytest.raises(InputError, match=f"^{message}"):
        api.compile(DigitsMLP(), method="p99.99", calib=images((1, 8, 8), 8),
                    input_shape=shape, show_progress=False)


def test_a_dataset_is_a_name_or_any_path(tmp_path):
    """A Path failed with "'PosixPath' object has no attribute 'endswith'"."""
    x, y = api.dataset("digits", limit=5)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    read = api.dataset(tmp_path / "data.npz")
    assert np.array_equal(read[0], x) and np.array_equal(read[1], y)
    with pytest.raises(InputError, match="^a dataset is a name or a path, got NoneType"):
        api.dataset(None)
