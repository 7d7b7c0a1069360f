"""The output policy: what may be replaced, how, with which mode, and what a failure leaves."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import numpy as np
import pytest

from neurodeploy import fileio
from neurodeploy.backends import Trace
from neurodeploy.errors import InputError
from neurodeploy.fileio import atomic_write, output_dir, output_file, scratch_dir, write_files


def _text(content: str):
    return lambda tmp: Path(tmp).write_text(content)


def test_writes_a_new_file_with_the_umask_and_no_temp_file_left(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "a.nir", _text("new"))
    finally:
        os.umask(old)
    assert (tmp_path / "a.nir").read_text() == "new"
    assert stat.S_IMODE((tmp_path / "a.nir").stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["a.nir"]


def test_a_replaced_file_keeps_its_mode(tmp_path):
    target = tmp_path / "a.nir"
    target.write_text("old")
    target.chmod(0o604)
    atomic_write(target, _text("new"))
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o604


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "a.nir"
    target.write_text("old")

    def fail(tmp):
        Path(tmp).write_text("partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, fail)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["a.nir"]


def test_directories_created_for_a_failed_write_are_removed(tmp_path):
    def fail(tmp):
        raise OSError(28, "No space left on device")

    with pytest.raises(InputError, match="cannot write \\(No space left on device\\)"):
        atomic_write(tmp_path / "new" / "deeper" / "a.nir", fail)
    assert os.listdir(tmp_path) == []


def test_several_files_are_written_together_or_not_at_all(tmp_path):
    (tmp_path / "a").write_text("old a")

    def fail(tmp):
        raise ValueError("the second writer fails")

    with pytest.raises(ValueError):
        write_files({tmp_path / "a": _text("new a"), tmp_path / "b": fail})
    assert sorted(os.listdir(tmp_path)) == ["a"] and (tmp_path / "a").read_text() == "old a"


def test_an_input_is_refused_also_through_another_name(tmp_path):
    model = tmp_path / "m.pt"
    model.write_text("model")
    (tmp_path / "link.pt").symlink_to(model)
    os.link(model, tmp_path / "hard.pt")
    for path in (model, tmp_path / "link.pt", tmp_path / "hard.pt", tmp_path / "." / "m.pt"):
        with pytest.raises(InputError, match="is also an input of this command"):
            output_file(path, inputs=[str(model), None])
    assert model.read_text() == "model"


def test_a_directory_a_device_a_socket_and_a_fifo_are_refused(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "sock"))
    try:
        with pytest.raises(InputError, match="is a directory"):
            atomic_write(tmp_path, _text("x"))
        for path in ("/dev/null", tmp_path / "fifo", tmp_path / "sock"):
            with pytest.raises(InputError, match="not a regular file"):
                atomic_write(path, _text("x"))
    finally:
        server.close()
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path):
    (tmp_path / "real.nir").write_text("old")
    (tmp_path / "link.nir").symlink_to("real.nir")
    atomic_write(tmp_path / "link.nir", _text("new"))
    assert (tmp_path / "link.nir").is_symlink()
    assert (tmp_path / "real.nir").read_text() == "new"


def test_an_unwritable_directory_is_refused_before_any_work(tmp_path, monkeypatch):
    """os.access is what a read-only mount answers (root included): simulated here."""
    monkeypatch.setattr(fileio.os, "access", lambda path, mode: False)
    with pytest.raises(InputError, match="cannot write in"):
        output_file(tmp_path / "x" / "a.nir")
    with pytest.raises(InputError, match="cannot write in"):
        output_dir(tmp_path / "report")


def test_a_directory_no_one_can_create_files_in_fails_in_one_line():
    with pytest.raises(InputError, match="/proc/neurodeploy.nir: cannot write"):
        atomic_write("/proc/neurodeploy.nir", _text("x"))


def test_output_dir_refuses_an_existing_file_and_a_file_on_the_way(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="exists and is not a directory"):
        output_dir(tmp_path / "file")
    with pytest.raises(InputError, match="is not a directory"):
        output_file(tmp_path / "file" / "a.nir")


def test_the_trace_writer_writes_exactly_the_name_given_or_refuses_it(tmp_path):
    trace = Trace(timesteps=2, outputs=np.zeros((1, 3), np.int32), logits=np.zeros((1, 3)),
                  output_steps=np.zeros((2, 1, 3), np.int32))
    (tmp_path / "net.nir").write_text("the network")
    with pytest.raises(InputError, match=r"must end in \.npz"):
        trace.save(str(tmp_path / "net.nir"))
    assert (tmp_path / "net.nir").read_text() == "the network"
    trace.save(str(tmp_path / "t.npz"))
    assert sorted(os.listdir(tmp_path)) == ["net.nir", "t.npz"]
    assert Trace.load(str(tmp_path / "t.npz")).timesteps == 2


def test_hdf5_files_meet_a_full_disk_as_a_plain_write_does(mlp_graph, tmp_path, monkeypatch):
    """HDF5 writing to a full disk raised an untyped RuntimeError or crashed the process (netx
    export, import): the files are built in memory and only their bytes go to disk."""
    from neurodeploy import nir_io
    from neurodeploy.interop.standard import write_standard

    old = tmp_path / "old.nir"
    old.write_text("OLD")
    built = []

    def full_disk(self, data):
        built.append(bytes(data[:4]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    for write in (lambda: nir_io.write(mlp_graph, old), lambda: write_standard(mlp_graph, old)):
        with pytest.raises(InputError, match=r"old.nir: cannot write \(No space left on device"):
            write()
    assert built == [b"\x89HDF"] * 2  # the whole file was made before the disk was touched
    assert old.read_text() == "OLD" and os.listdir(tmp_path) == ["old.nir"]


def test_a_trace_whose_parts_meet_a_full_disk_is_refused_in_one_line(tmp_path, monkeypatch):
    with pytest.raises(InputError, match=r"t.npz: cannot write \(No space left on device\)"):
        with scratch_dir(tmp_path / "t.npz"):
            raise OSError(28, "No space left on device")
    assert os.listdir(tmp_path) == []
