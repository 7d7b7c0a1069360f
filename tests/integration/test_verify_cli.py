"""`neurodeploy verify` end to end: bit-exact examples, a caught corruption, bad arguments."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from neurodeploy import api, verify
from neurodeploy.backends import get_backend
from neurodeploy.cli import main
from neurodeploy.core.meta import population_meta, with_record
from neurodeploy.errors import InputError
from tests.models import save_torchscript

ROOT = Path(__file__).resolve().parents[2]



@pytest.mark.lava
def test_verify_in_a_fresh_process_is_bit_exact(digits_nir, tmp_path):
    """A new process runs the reference (which starts numba's thread pool) before Lava is
    imported: the order a user's `verify` takes."""
    junit = tmp_path / "verify.xml"
    result = subprocess.run([sys.executable, "-m", "neurodeploy.cli", "verify", str(digits_nir),
                             "--dataset", "digits", "--samples", "3", "--junit-xml", str(junit)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "bit-exact: lava == reference on 2 populations" in result.stdout
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("tests") == "3" and suite.get("failures") == "0"
    assert [c.get("name") for c in suite.iter("testcase")] == ["sample 0", "sample 1", "sample 2"]


def _corrupt_threshold(graph, name):
    """A copy of ``graph`` whose population ``name`` has every threshold raised by one."""
    meta = population_meta(graph, name)
    return with_record(graph, name, meta.replace(theta=meta.theta + 1))


@pytest.mark.lava
@pytest.mark.parametrize("traces_written", [True, False])
def test_a_mismatch_exits_1_names_the_population_and_writes_both_traces(digits_nir, tmp_path,
                                                                        monkeypatch,
                                                                        traces_written):
    """The Lava backend is handed a network with one threshold off by one, as a miscompiled
    backend would run it; verify must say where the two first differ. Traces that cannot be
    written (a full disk) hid the mismatch: exit 2, one line on the traces, no JUnit file."""
    lava = get_backend("lava")
    if not traces_written:
        def full_disk(*args):
            raise InputError("model.reference.npz: cannot write (No space left on device)")

        monkeypatch.setattr(verify.Verification, "save_traces", full_disk)

    class Miscompiled:
        name = "lava"

        def run(self, graph, *args, **kwargs):
            return lava.run(_corrupt_threshold(graph, "net.2"), *args, **kwargs)

    real = verify.get_backend
    monkeypatch.setattr(verify, "get_backend",
                        lambda name: Miscompiled() if name == "lava" else real(name))
    junit = tmp_path / "verify.xml"
    result = CliRunner().invoke(main, ["verify", str(digits_nir), "--dataset", "digits",
                                       "--samples", "3", "--trace-dir", str(tmp_path),
                                       "--junit-xml", str(junit)])
    assert result.exit_code == 1
    assert "MISMATCH: first divergence in population 'net.2'" in result.stderr
    assert (tmp_path / "model.reference.npz").is_file() == traces_written
    assert (tmp_path / "model.lava.npz").is_file() == traces_written
    assert ("traces not written: model.reference.npz: cannot write" in result.stderr) != \
        traces_written
    failures = [f.get("message") for f in ET.parse(junit).getroot().iter("failure")]
    assert failures and all("population 'net.2'" in message for message in failures)


def _fashion_cnn() -> torch.nn.Module:
    """The Fashion-MNIST example's architecture (untrained weights: exactness needs none)."""
    spec = importlib.util.spec_from_file_location("fashion_train",
                                                  ROOT / "examples/fashion_cnn/train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    return module.build().eval()


@pytest.mark.lava
def test_fashion_cnn_on_real_images_is_bit_exact(tmp_path):
    model = save_torchscript(_fashion_cnn(), tmp_path / "cnn.pt")
    out = tmp_path / "cnn.nir"
    api.save(api.compile(model, target="loihi2", calib="fashion-mnist", calib_samples=64,
                         timesteps=3, method="p99.99").graph, out)
    result = CliRunner().invoke(main, ["verify", str(out), "--dataset", "fashion-mnist",
                                       "--samples", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["bit_exact"] and report["populations"] == 5 and report["samples"] == 2


def test_verify_refuses_zero_samples(digits_nir):
    result = CliRunner().invoke(main, ["verify", str(digits_nir), "--samples", "0"])
    assert result.exit_code == 2 and "--samples" in result.stderr


def test_verify_takes_images_without_labels(digits_nir, tmp_path):
    images = tmp_path / "images.npz"
    np.savez(images, x=api.dataset("digits", limit=2)[0])  # no y: verify compares, not scores
    result = CliRunner().invoke(main, ["verify", str(digits_nir), "--dataset", str(images),
                                       "--samples", "2"])
    assert result.exit_code == 0, result.stderr
    assert "bit-exact: lava == reference" in result.output


def test_verify_reads_an_npy_as_simulate_does(digits_nir, tmp_path):
    """The same file is taken, or refused with the same line, by both: verify read an .npy as
    images, so it refused int64 inputs that simulate runs."""
    def run(*args):
        return CliRunner().invoke(main, [str(a) for a in args])

    inputs = {"ints": np.random.default_rng(0).integers(0, 256, (3, 1, 8, 8)),
              "one": api.dataset("digits", limit=1)[0][0], "too_large": np.full((2, 1, 8, 8), 999)}
    for name, x in inputs.items():
        path = tmp_path / f"{name}.npy"
        np.save(path, x)
        simulated = run("simulate", digits_nir, "--input", path)
        verified = run("verify", digits_nir, "--dataset", path, "--backend", "reference")
        assert simulated.exit_code == verified.exit_code == (2 if name == "too_large" else 0)
        assert simulated.stderr == verified.stderr
