"""Reading a .nir file is validating it: a file whose records, metadata or weights were edited
(by hand or by another tool) is refused with one line naming the file, the node and the field,
and ``verify`` refuses it instead of comparing it (issue: files you can trust)."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from neurodeploy import api, nir_compat, nir_io
from neurodeploy.cli import main
from neurodeploy.core.graph import populations, predecessors
from neurodeploy.core.meta import population_meta
from neurodeploy.errors import MetadataError
from tests.models import save_torchscript, trained_digits_mlp

DELETE = object()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("records")
    model = save_torchscript(trained_digits_mlp(steps=20), path / "model.pt")
    api.save(api.compile(model, target="loihi2", calib="digits", timesteps=4,
                         show_progress=False, method="p99.99").graph, path / "good.nir")
    return path / "good.nir"


def names(path: Path) -> dict[str, str]:
    graph = nir_io.read(path)
    hidden = populations(graph)[0]
    return {"pop": hidden, "syn": predecessors(graph)[hidden][0]}


def record(key: str) -> str:
    return f"node/nodes/{{pop}}/metadata/neurodeploy/{key}"


def graph_meta(key: str) -> str:
    return f"node/metadata/neurodeploy/{key}"


def input_meta(key: str) -> str:
    return f"node/nodes/input/metadata/neurodeploy/{key}"


def scaled(factor: float):
    return lambda old: old * factor


def with_entry(value: float):
    def change(old: np.ndarray) -> np.ndarray:
        new = np.array(old, np.float64)
        new.flat[0] = value
        return new
    return change


#: case -> (HDF5 path, new value or a function of the old one, what the error names)
CASES = {
    "threshold is a string": (record("theta"), b"high", "theta"),
    "threshold negative": (record("theta"), scaled(-1), "'theta' must be positive"),
    "threshold zero": (record("theta"), scaled(0), "'theta' must be positive"),
    "threshold missing": (record("theta"), DELETE, "'theta' is missing"),
    "threshold beyond the target's width": (record("theta"), lambda old: old * 0 + (1 << 20),
                                            "threshold"),
    "max_burst 0": (record("max_burst"), 0, "max_burst"),
    # report printed these as given: the numbers as the method's name, a lone string as its
    # characters (one violation each)
    "method a number": (graph_meta("method"), np.arange(5), "'method' is malformed .*not text"),
    "capacity violations a lone string": (graph_meta("capacity_violations"), b"oops",
                                          "'capacity_violations' is malformed .*not a list"),
    "membrane_bits 0": (record("membrane_bits"), 0, "membrane_bits"),
    "decay negative": (record("decay"), -100000, "decay"),
    "v_init NaN": (record("v_init"), with_entry(np.nan), "v_init"),
    "kind lif": (record("kind"), b"lif", "lif"),
    "exponent 5000": (record("exponent"), 5000, "exponent"),
    "input_shift -4": (record("input_shift"), -4, "input_shift"),
    "input_shift 200": (record("input_shift"), 200, "input_shift"),
    "window 0": (graph_meta("timesteps"), 0, "timesteps"),
    "window -5": (graph_meta("timesteps"), -5, "timesteps"),
    "window 10^12": (graph_meta("timesteps"), 10**12, "timesteps"),
    "window infinite": (graph_meta("timesteps"), np.inf, "timesteps"),
    "cores infinite": (graph_meta("cores/{pop}"), np.inf, "cores"),
    "hop delay -2": (graph_meta("hop_delay"), -2, "hop_delay"),
    "input bits 0": (input_meta("bits"), 0, "bits"),
    "input bits 64": (input_meta("bits"), 64, "bits"),
    "input scale NaN": (input_meta("scale"), np.nan, "scale"),
    "weight 2^31 on an 8-bit target": ("node/nodes/{syn}/weight", with_entry(2.0**31),
                                       "weight mantissa"),
    "weight NaN": ("node/nodes/{syn}/weight", with_entry(np.nan), "weights"),
    # read loosely before: a string was True, 4.7 steps were 4, the scale rescaled all inputs
    "dual is a string": (record("dual"), b"False", "'dual' is malformed"),
    "quantized is a string": (graph_meta("quantized"), b"no", "'quantized' is malformed"),
    "window 4.7": (graph_meta("timesteps"), 4.7, "'timesteps' is malformed"),
    "window '7'": (graph_meta("timesteps"), b"7", "'timesteps' is malformed"),
    "max_burst 4.9": (record("max_burst"), 4.9, "'max_burst' is malformed"),
    "exponent -13.3": (record("exponent"), -13.3, "'exponent' is malformed"),
    "input scale against its bits": (input_meta("scale"), 100.0,
                                     r"8-bit \[0, 1\] inputs have 0.00392"),
    "cores -5": (graph_meta("cores/{pop}"), -5, "'cores' of '{pop}' is -5"),
    "safe window -5": (graph_meta("safe_windows/{pop}"), -5, "'safe_windows' of '{pop}' is -5"),
    "utilisation NaN": (graph_meta("utilisation/cores"), np.nan, "'utilisation' of 'cores'"),
    "bias of another shape": (record("bias"), lambda old: np.zeros(np.size(old) - 1, old.dtype),
                              r"parameter of shape \(47,\) does not fit population \(48,\)"),
    "node disagrees with its record": ("node/nodes/{pop}/v_threshold", scaled(2),
                                       "disagrees with its record"),
}


def damaged(good: Path, tmp_path: Path, key: str, change) -> Path:
    path = tmp_path / "damaged.nir"
    shutil.copy(good, path)
    with h5py.File(path, "r+") as f:
        old = f[key][()]
        del f[key]
        if change is not DELETE:
            f[key] = change(old) if callable(change) else change
    return path


@pytest.mark.parametrize("case", CASES)
def test_a_damaged_file_is_refused_naming_the_field(case, compiled, tmp_path):
    key, change, expected = CASES[case]
    where = names(compiled)
    path = damaged(compiled, tmp_path, key.format(**where), change)
    with pytest.raises(MetadataError, match=expected.format(**where)) as refused:
        nir_io.read(path)
    assert str(path) in str(refused.value)
    if key.startswith("node/nodes/{pop}") or key.startswith("node/nodes/{syn}"):
        node = where["pop"] if "{pop}" in key else where["syn"]
        assert f": {node}: " in str(refused.value)


@pytest.mark.parametrize("case", ["threshold negative", "weight 2^31 on an 8-bit target",
                                  "node disagrees with its record"])
def test_verify_refuses_a_damaged_file_instead_of_comparing_it(case, compiled, tmp_path):
    key, change, expected = CASES[case]
    path = damaged(compiled, tmp_path, key.format(**names(compiled)), change)
    result = CliRunner().invoke(main, ["verify", str(path), "--dataset", "digits",
                                       "--samples", "1"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    assert "bit-exact" not in result.output


def test_the_undamaged_file_reads(compiled):
    nir_io.read(compiled)


def test_the_weights_of_a_network_for_a_target_not_at_hand_are_checked(compiled, tmp_path):
    """Without the target file only its widths are unknown: NaN weights evaluated at 6%."""
    syn = names(compiled)["syn"]
    path = damaged(compiled, tmp_path, graph_meta("target"), b"mychip")
    nir_compat.seal(path)  # as if compiled for that target
    nir_io.read(path)  # the undamaged weights of a target not shipped read
    with h5py.File(path, "r+") as f:
        weight = f[f"node/nodes/{syn}/weight"][()].astype(np.float64)
        del f[f"node/nodes/{syn}/weight"]
        f[f"node/nodes/{syn}/weight"] = weight + 0.5
    with pytest.raises(MetadataError, match=f"{syn}: weights are not all finite integers"):
        nir_io.read(path)


@pytest.mark.parametrize(("steps", "expected"), [
    (np.nan, r"a delay must be one whole number of steps in 1\.\.65536, got \[nan\]"),
    (-5.0, r"got \[-5\.0\]"),
    (1.5, r"got \[1\.5\]"),
    (1.0, "a delay must hold one input back in front of a synapse layer")])
def test_a_delay_align_delays_would_not_insert_is_refused(compiled, tmp_path, steps, expected):
    """Read before, these crashed simulate or verify, or exported as an internal error."""
    where = names(compiled)
    path = tmp_path / "delayed.nir"
    shutil.copy(compiled, path)
    with h5py.File(path, "r+") as f:
        size = f[f"node/nodes/{where['syn']}/weight"].shape[0]  # the population's
        f["node/nodes/dly/type"] = b"Delay"
        f["node/nodes/dly/delay"] = np.full(size, steps)
        edges = [[a.decode(), b.decode()] for a, b in f["node/edges"][()]]
        edges = [e for e in edges if e != [where["syn"], where["pop"]]] + [
            [where["syn"], "dly"], ["dly", where["pop"]]]
        del f["node/edges"]
        f["node/edges"] = np.array(edges, dtype=h5py.string_dtype())
    with pytest.raises(MetadataError, match=expected):
        nir_io.read(path)


def test_a_valid_change_to_a_written_file_is_refused_by_its_digest(compiled, tmp_path):
    """A flipped bit in a small record (an input shift of 0 read as 2) passes every range
    check and runs another network; a file without the digest (another tool's, an older
    one) is read without it."""
    pop = names(compiled)["pop"]
    shift = population_meta(nir_io.read(compiled), pop).input_shift
    path = damaged(compiled, tmp_path, record("input_shift").format(pop=pop), lambda v: v + 2)
    with pytest.raises(MetadataError, match="does not match the digest written with it"):
        nir_io.read(path)
    with h5py.File(path, "r+") as f:
        del f.attrs[nir_compat.DIGEST]
    assert population_meta(nir_io.read(path), pop).input_shift == shift + 2


def test_a_cycle_into_a_synapse_layer_is_refused_when_read(tmp_path):
    """It was read, then report ended as an internal error and export wrote a file that
    simulate refused."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 10))
    good = tmp_path / "good.nir"
    api.save(api.compile(model, target="loihi2", calib="digits", timesteps=2,
                         show_progress=False, method="p99.99").graph, good)
    graph = nir_io.read(good)
    later = populations(graph)[1]
    syn = predecessors(graph)[later][0]  # fed by the first population, as wide as the second
    path = damaged(good, tmp_path, "node/edges",
                   lambda edges: np.concatenate([edges, np.array([[later.encode(),
                                                                   syn.encode()]], object)]))
    with pytest.raises(MetadataError, match=f"a recurrent edge from '{later}' must end at a "
                                            "neuron population"):
        nir_io.read(path)


def test_bookkeeping_of_no_population_is_refused(compiled, tmp_path):
    """Cores of a population that is not there (renamed, or made up) were added up by report:
    1,003 cores "fit" a 128-core chip."""
    pop = names(compiled)["pop"]
    path = tmp_path / "ghost.nir"
    shutil.copy(compiled, path)
    with h5py.File(path, "r+") as f:
        f.move(graph_meta(f"cores/{pop}"), graph_meta("cores/ghost"))
    with pytest.raises(MetadataError, match="'cores' names 'ghost', which is no population"):
        nir_io.read(path)


def test_a_bias_table_longer_than_any_window_is_refused(compiled, tmp_path):
    pop = names(compiled)["pop"]
    path = tmp_path / "long.nir"
    shutil.copy(compiled, path)
    with h5py.File(path, "r+") as f:
        size = f[f"node/nodes/{pop}/v_threshold"].shape
        f.create_dataset(record("bias_table").format(pop=pop), compression="gzip",
                         data=np.zeros((65537, *size), np.int64))
    with pytest.raises(MetadataError, match=f"{pop}: the bias table has 65537 rows, more than "
                                            "the longest window"):
        nir_io.read(path)
