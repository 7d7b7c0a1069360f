"""Fuzzing the CLI: arguments, input arrays and target files drawn by hypothesis.

Each case must keep the outcome contract (tests/errors/contract.py): exit 0 with its result
or exit 2 with one line, never a traceback, never a changed input. The default run draws a
few hundred cases (derandomized, so it repeats); ``-m slow`` draws thousands at random.
Lava stays out (seconds per run): its errors go through the same CLI ending.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.errors.contract import run_case

INTS = st.sampled_from(["-1", "0", "1", "2", "3", "4", "16", "2147483648", "10000000000000",
                        "-9223372036854775809", "1.5", "nan", "", "a", " 3", "0x10", "٣"])
FLOATS = st.sampled_from(["nan", "inf", "-inf", "0", "-0.0", "1e-300", "1e308", "1e-4", "x"])
WINDOWS = st.sampled_from(["1", "1,2", "0", "-1", "a,b", "", ",", "1,,2", "1,1", "4,8", "999"])
INPUTS = st.sampled_from(["net.nir", "x.npy", "data.npz", "adir", "/dev/null", "missing",
                          "", "chip.toml", "model.pt", "empty.txt"])
OUTPUTS = st.sampled_from(["out.nir", "out.npz", "adir", "/dev/null", "net.nir", "x.npy",
                           "new/deeper/out.npz", "", "/proc/out.npz", "bad\nname.npz",
                           "x" * 300 + ".npz", "empty.txt/out.npz"])
DATASETS = st.sampled_from(["digits", "data.npz", "x.npy", "imagenet", "", "missing.npz",
                            "adir", "empty.txt"])
TARGETS = st.sampled_from(["loihi", "loihi2", "reference", "chip.toml", "tpu", "x.npy", "",
                           "/dev/null", "missing.toml"])
METHODS = st.sampled_from(["max", "p99.9", "p200", "p-1", "pnan", "max+max", "", "calibrate",
                           "ftbc", "adafire", "qcfs"])
DUMP_DIRS = st.sampled_from(["dumps", "x.npy", "/dev/null", "/proc/dumps", "", "model.pt"])
SHAPES = st.sampled_from(["1,8,8", "64", "0", "-1,8,8", "1,9,9", "99999,99999,99999", "a",
                          "", "1,8,8,", "8x8"])


def _options(**pools) -> st.SearchStrategy[list[str]]:
    """Each option present or not, with a value from its pool (flags: pool None)."""
    parts = [st.one_of(st.just([]), st.just([name]) if pool is None
                       else pool.map(lambda v, n=name: [n, v]))
             for name, pool in pools.items()]
    return st.tuples(*parts).map(lambda chosen: [a for part in chosen for a in part])


def _command(name: str, *positional, **options) -> st.SearchStrategy[list[str]]:
    return st.tuples(st.tuples(*positional), _options(**options)).map(
        lambda parts: [name, *parts[0], *parts[1]])


CHEAP_COMMANDS = st.one_of(
    _command("simulate", INPUTS, st.just("--input"), INPUTS, **{
        "-T": INTS, "--backend": st.sampled_from(["reference", "gpu", ""]), "--out": OUTPUTS,
        "--json": None}),
    _command("evaluate", INPUTS, **{"--dataset": DATASETS, "--limit": INTS,
                                    "--timesteps": WINDOWS, "--adaptive-timesteps": None,
                                    "--json": None}),
    _command("verify", INPUTS, st.just("--backend"), st.just("reference"), **{
        "--samples": INTS, "-T": INTS, "--seed": INTS, "--trace-dir": OUTPUTS,
        "--dataset": DATASETS}),
    _command("export", INPUTS, st.just("--flavor"), st.sampled_from(["standard", "netx", "x"]),
             **{"-o": OUTPUTS}),
    _command("check", INPUTS, **{"--input-shape": SHAPES, "--json": None}),
    _command("import", INPUTS, st.just("--dt"), FLOATS, **{"-T": INTS, "--target": TARGETS,
                                                           "-o": OUTPUTS}),
    _command("targets", **{"--json": None}),
)
COSTLY_COMMANDS = st.one_of(
    _command("compile", INPUTS, st.just("--calib-samples"), st.just("8"), **{
        "--calib": DATASETS, "--method": METHODS, "--target": TARGETS, "-T": INTS,
        "--input-shape": SHAPES, "--max-burst": INTS, "--seed": INTS, "-o": OUTPUTS,
        "--dump-dir": DUMP_DIRS, "--stop-after": st.sampled_from(["quantize_input", "x"])}),
    _command("report", INPUTS, st.just("--dataset"), st.just("data.npz"), **{
        "--samples": INTS, "--timesteps": WINDOWS, "--target": TARGETS, "-o": OUTPUTS}),
    _command("finetune", INPUTS, st.just("--method"), st.sampled_from(["ecl", "qcfs"]),
             st.just("--dataset"), DATASETS, st.just("-o"), OUTPUTS, **{
                 "--epochs": st.sampled_from(["1", "0", "-1", "x"]), "--lr": FLOATS,
                 "--batch": INTS, "--levels": INTS}),
)

DTYPES = st.sampled_from([np.bool_, np.int8, np.uint8, np.int16, np.int32, np.int64,
                          np.uint64, np.float16, np.float32, np.float64, np.complex64, "<U3",
                          "datetime64[s]"])
SAMPLE_SHAPES = st.sampled_from([(), (64,), (1, 8, 8), (0, 1, 8, 8), (1, 1, 8, 8),
                                 (3, 1, 8, 8), (2, 64), (2, 3), (1, 8, 8, 1)])

#: TOML literals a mutated key may get (arrays, tables and dates included)
TOML_VALUES = st.sampled_from([
    "-1", "0", "1", "2", "3", "8", "24", "27", "28", "29", "31", "32", "33", "63", "64", "65",
    "200", "4611686018427387904", "nan", "inf", "-inf", "0.5", "1e300", "-0.0", "true",
    "false", '""', '"x"', '"a\\nb"', '"../x"', '"loihi2"', "[1, 2]", "{ a = 1 }",
    "1979-05-27"])


def _case_test(strategy, examples: int, *, derandomize: bool):
    @settings(max_examples=examples, deadline=None, derandomize=derandomize,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(argv=strategy)
    def test(workspace, monkeypatch, argv):
        monkeypatch.chdir(workspace.directory)
        event(f"exit {run_case(argv, workspace, kept_on_failure=['dumps']).exit_code}")

    return test


def _array_test(examples: int, *, derandomize: bool):
    @settings(max_examples=examples, deadline=None, derandomize=derandomize,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(array=st.tuples(DTYPES, SAMPLE_SHAPES).flatmap(
        lambda spec: hnp.arrays(spec[0], spec[1])), json=st.booleans())
    def test(workspace, monkeypatch, array, json):
        monkeypatch.chdir(workspace.directory)
        np.save("drawn.npy", array)
        try:
            result = run_case(["simulate", "net.nir", "--input", "drawn.npy",
                               *(["--json"] * json)], workspace)
            event(f"exit {result.exit_code}")
        finally:
            (workspace.directory / "drawn.npy").unlink()

    return test


def _target_test(examples: int, *, derandomize: bool):
    @settings(max_examples=examples, deadline=None, derandomize=derandomize,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(data=st.data())
    def test(workspace, monkeypatch, data):
        monkeypatch.chdir(workspace.directory)
        lines = (workspace.directory / "chip.toml").read_text().splitlines()
        keys = [i for i, line in enumerate(lines) if re.match(r"\w+ *=", line)]
        for index in data.draw(st.lists(st.sampled_from(keys), min_size=1, max_size=2)):
            key = lines[index].split("=")[0].strip()
            lines[index] = data.draw(st.one_of(
                TOML_VALUES.map(lambda value, key=key: f"{key} = {value}"),
                st.sampled_from(["", f"{key}_typo = 1"])))  # a key missing, a key unknown
        (workspace.directory / "drawn.toml").write_text("\n".join(lines))
        try:
            result = run_case(["compile", "model.pt", "--calib", "data.npz", "--calib-samples",
                               "8", "--target", "drawn.toml", "-o", "out.nir"], workspace)
            event(f"exit {result.exit_code}")
        finally:
            (workspace.directory / "drawn.toml").unlink()

    return test


@pytest.fixture(scope="module", autouse=True)
def _extra_inputs(workspace):
    (workspace.directory / "empty.txt").write_text("")


test_cheap_commands = _case_test(CHEAP_COMMANDS, 150, derandomize=True)
test_costly_commands = _case_test(COSTLY_COMMANDS, 25, derandomize=True)
test_input_arrays = _array_test(100, derandomize=True)
test_target_files = _target_test(30, derandomize=True)

test_cheap_commands_many = pytest.mark.slow(_case_test(CHEAP_COMMANDS, 2000, derandomize=False))
test_costly_commands_many = pytest.mark.slow(_case_test(COSTLY_COMMANDS, 300,
                                                        derandomize=False))
test_input_arrays_many = pytest.mark.slow(_array_test(1000, derandomize=False))
test_target_files_many = pytest.mark.slow(_target_test(500, derandomize=False))
