"""Targets load strictly: every mistake names the file and the key."""

from __future__ import annotations

import re

import pytest

from neurodeploy.errors import TargetError
from neurodeploy.targets import TARGETS_DIR, available_targets, load_target


def test_shipped_targets_load():
    assert {"loihi", "loihi2", "reference"} <= set(available_targets())
    loihi2 = load_target("loihi2")
    assert loihi2.spikes.graded and loihi2.spikes.signed and loihi2.timing.hop_delay == 1
    assert not load_target("loihi").spikes.graded


@pytest.mark.parametrize(("edit", "message"), [
    (lambda s: s.replace("membrane_bits = 24", 'membrane_bits = "24"'),
     r"\[neuron\]|neuron.membrane_bits must be int"),
    (lambda s: s.replace("hop_delay = 1", "hop_delay = 1\nhop_dealy = 2"),
     "unknown key timing.hop_dealy"),
    (lambda s: re.sub(r"\ngraded = .*", "", s), "missing key spikes.graded"),
    (lambda s: s.replace("schema = 1", "schema = 7"), "schema must be 1"),
    (lambda s: s + "\n[[[", "not valid TOML"),
])
def test_bad_target_files_name_the_key(tmp_path, edit, message):
    path = tmp_path / "chip.toml"
    path.write_text(edit((TARGETS_DIR / "loihi2.toml").read_text()))
    with pytest.raises(TargetError, match=message) as info:
        load_target(path)
    assert "chip.toml" in str(info.value)


def test_systems_take_their_chip_from_base():
    board = load_target("loihi2-kapoho-point")
    chip = load_target("loihi2")
    assert board.system.chips == 8 and board.total_cores == 8 * 128
    assert (board.neuron, board.limits, board.memory) == (chip.neuron, chip.limits, chip.memory)
    assert load_target("loihi").system.chips == 1 and load_target("loihi").memory is None
    assert load_target("loihi-nahuku32").total_cores == 32 * 128


SYSTEM = 'base = "loihi2"\n[system]\n'
MEMORY = 'base = "loihi2"\n[memory]\nshared_kernels = true\nsource = "x"\n'


@pytest.mark.parametrize(("text", "message"), [
    (SYSTEM + 'chips = 0\nsource = "x"', r"system.chips must be at least 1, got 0$"),
    (SYSTEM + 'chips = "8"\nsource = "x"', r"system.chips must be int, got '8'$"),
    (SYSTEM + 'chips = 8\nsorce = "x"', r"unknown key system.sorce\. Allowed keys here"),
    (SYSTEM + "chips = 8", r"missing key system.source$"),
    ('base = "loihi7"', r"base names an unknown target 'loihi7'\. Known targets"),
    (MEMORY + "bits_per_core = 0\nweight_bits = 8\nneuron_bits = 72",
     r"memory.bits_per_core must be at least 1, got 0$"),
    (MEMORY + "bits_per_core = 9\nweight_bits = 33\nneuron_bits = 72",
     r"memory.weight_bits must be in 1..32, got 33$"),
    (MEMORY + "bits_per_core = 9\nweight_bits = 8\nneuron_bits = -1",
     r"memory.neuron_bits must be at least 0, got -1$"),
    # each in range, together impossible (capacity 6x too small; chips of no cores)
    (MEMORY + "bits_per_core = 9\nweight_bits = 1\nneuron_bits = 72",
     r"memory.weight_bits must hold a weight: at least weights.mantissa_bits$"),
    ('base = "reference"\n[system]\nchips = 4\nsource = "x"',
     r"system.chips above 1 needs limits.cores"),
    ('base = "loihi2"\n[spikes]\ngraded = true\nsigned = false\npayload_bits = 24',
     r"neuron.dual_threshold needs spikes.signed"),
    ('base = "loihi2"\n[energy]\nsynop_pj = 1e308\nneuron_update_pj = 1.0\nsource = "x"',
     r"energy.synop_pj must be in 0..1e\+06 pJ, got 1e\+308$"),
])
def test_bad_system_and_memory_tables_are_refused_in_one_line(tmp_path, text, message):
    path = tmp_path / "board.toml"
    path.write_text(f'schema = 1\nname = "board"\ndescription = "a board"\n{text}\n')
    with pytest.raises(TargetError, match=message) as info:
        load_target(path)
    assert str(info.value).startswith("board.toml: ") and "\n" not in str(info.value)


def test_a_file_may_not_take_a_shipped_target_s_name_unless_it_is_that_target(tmp_path):
    """A copy of loihi2.toml edited to 2 cores kept the name loihi2: the network's report,
    which reads its target by name, then used the shipped chip (3 cores of 128 '150%')."""
    shipped = (TARGETS_DIR / "loihi2.toml").read_text()
    (tmp_path / "copy.toml").write_text(shipped)
    assert load_target(tmp_path / "copy.toml") == load_target("loihi2")
    (tmp_path / "mychip.toml").write_text(shipped.replace("cores = 128", "cores = 2"))
    with pytest.raises(TargetError, match=r"^mychip.toml: name 'loihi2' is a shipped target's, "
                                          r"and the file differs from it\. Give it a name"):
        load_target(tmp_path / "mychip.toml")
    (tmp_path / "board.toml").write_text('schema = 1\nbase = "loihi2"\n[system]\nchips = 2\n'
                                         'source = "x"\n')
    with pytest.raises(TargetError, match="name 'loihi2' is a shipped target's"):
        load_target(tmp_path / "board.toml")


def test_unknown_target_lists_known_ones():
    with pytest.raises(TargetError, match="unknown target 'loihi9'.*loihi2"):
        load_target("loihi9")
