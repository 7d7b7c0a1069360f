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


def test_unknown_target_lists_known_ones():
    with pytest.raises(TargetError, match="unknown target 'loihi9'.*loihi2"):
        load_target("loihi9")
