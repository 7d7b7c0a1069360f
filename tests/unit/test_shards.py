"""Samples sharded over a local Ray of two workers give exactly the one-process results
(evaluate's accuracies, verify's traces and comparison). Ray is the [ray] extra, installed by
`make setup`: without it these tests fail (they are not skipped)."""

from __future__ import annotations

import builtins
import signal
import socket
import sys

import numpy as np
import pytest

from neurodeploy import shards, simulation
from neurodeploy.errors import BackendUnavailable, InputError
from neurodeploy.shards import Workers, import_ray, ray_session, run_sharded
from neurodeploy.verify import run_and_compare
from tests.conftest import images

TWO = Workers(count=2)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray of two workers for the module (starting one takes seconds)."""
    with ray_session(TWO) as ray:
        yield ray


def _rows(rows: slice, values: np.ndarray) -> list[int]:
    return values[rows].tolist()


def test_shards_cover_the_samples_in_order(local_ray):
    values = np.arange(7) * 3
    shards = run_sharded(_rows, 7, (values,), TWO, show_progress=False)
    assert len(shards) == 2
    assert [v for shard in shards for v in shard] == values.tolist()


def test_a_shard_size_gives_one_task_per_configuration(local_ray):
    values = np.arange(5) * 3
    shards = run_sharded(_rows, 5, (values,), TWO, show_progress=False, shard_size=1)
    assert shards == [[v] for v in values.tolist()]


def test_evaluate_on_two_workers_equals_one_process(local_ray, cnn_graph):
    x = images((1, 8, 8), n=37, seed=3)
    outputs = simulation.predict(cnn_graph, x, show_progress=False)[0]
    labels = outputs.argmax(axis=1)
    labels[::3] = (labels[::3] + 1) % outputs.shape[1]  # a third wrong at the compiled T
    alone = simulation.evaluate(cnn_graph, x, labels, [1, 2, 4], show_progress=False)
    sharded = simulation.evaluate(cnn_graph, x, labels, [1, 2, 4], show_progress=False,
                                  workers=TWO)
    assert sharded == alone
    assert alone[4] == 24 / 37  # the counts are compared, not only a perfect score


def test_verify_on_two_workers_equals_one_process(local_ray, cnn_graph):
    x = simulation.random_inputs(cnn_graph, 9, seed=4)
    alone = run_and_compare(cnn_graph, x, 4, backend="reference")
    sharded = run_and_compare(cnn_graph, x, 4, backend="reference", workers=TWO)
    assert sharded.comparison == alone.comparison
    for trace_a, trace_b in ((alone.expected, sharded.expected), (alone.actual, sharded.actual)):
        assert np.array_equal(trace_a.outputs, trace_b.outputs)
        assert trace_a.spikes.keys() == trace_b.spikes.keys()
        for kind in ("spikes", "membranes"):
            for pop, value in getattr(trace_a, kind).items():
                assert np.array_equal(value, getattr(trace_b, kind)[pop]), (kind, pop)


def test_without_ray_the_error_names_the_extra(monkeypatch):
    real = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(BackendUnavailable, match=r"pip install 'neurodeploy\[ray\]'"):
        import_ray()


def test_without_workers_it_runs_in_this_process_without_ray():
    assert not Workers().distributed and Workers(count=1).distributed
    assert run_sharded(_rows, 3, (np.arange(3),), Workers(), show_progress=False) == [[0, 1, 2]]


def test_a_local_ray_leaves_the_callers_sigterm_handler_in_place(monkeypatch):
    """ray.init sets its own SIGTERM handler for good (exit at once); the caller's (the CLI's
    clean unwinding) must hold during the run and after it."""

    class FakeRay:
        def is_initialized(self):
            return False

        def init(self, **settings):
            signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))

        def shutdown(self):
            pass

    def callers(signum, frame):
        pass

    monkeypatch.setattr(shards, "import_ray", FakeRay)
    before = signal.signal(signal.SIGTERM, callers)
    try:
        with ray_session(TWO):
            assert signal.getsignal(signal.SIGTERM) is callers
        assert signal.getsignal(signal.SIGTERM) is callers
    finally:
        signal.signal(signal.SIGTERM, before)


class _Stopped(Exception):
    pass


def _ray_starting_with(start):
    """A stand-in for ``import_ray``: a ray module with no session, whose ``init`` calls
    ``start``."""

    class StartingRay:
        def is_initialized(self):
            return False

        def init(self, **settings):
            start()

        def shutdown(self):
            pass

    return StartingRay


def test_a_sigterm_while_ray_starts_reaches_the_callers_handler(monkeypatch):
    """Ray's handler (sys.exit) was active while ray.init ran: the CLI exited 15 with no line."""

    def start():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))
        signal.raise_signal(signal.SIGTERM)

    def callers(signum, frame):
        raise _Stopped

    monkeypatch.setattr(shards, "import_ray", _ray_starting_with(start))
    before = signal.signal(signal.SIGTERM, callers)
    try:
        with pytest.raises(_Stopped), ray_session(TWO):
            pass
        assert signal.getsignal(signal.SIGTERM) is callers
    finally:
        signal.signal(signal.SIGTERM, before)


def test_no_cluster_at_the_address_is_one_line(monkeypatch):
    """--address auto without a running Ray was an internal error (exit 3)."""

    def start():
        raise ConnectionError("Could not find any running Ray instance.\nMore lines.")

    monkeypatch.setattr(shards, "import_ray", _ray_starting_with(start))
    with pytest.raises(InputError, match=r"^cannot join the Ray cluster at 'auto': Could not "
                                         r"find any running Ray instance\. Start it"):
        with ray_session(Workers(address="auto")):
            pass


def test_an_address_no_connection_reaches_is_one_line(monkeypatch):
    """ray.init retried it forever, logging every 40 s."""

    def start():
        raise AssertionError("ray.init was reached: it would retry forever")

    monkeypatch.setattr(shards, "import_ray", _ray_starting_with(start))
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(InputError, match=rf"^cannot reach the Ray cluster at '127.0.0.1:{port}'"):
        with ray_session(Workers(address=f"127.0.0.1:{port}")):
            pass


def test_only_segments_no_process_maps_are_removed(tmp_path):
    """A worker killed mid-run leaves its shared memory; a live one's stays."""
    import mmap
    import time

    since = time.time() - 1
    orphan, live = tmp_path / "psm_orphan", tmp_path / "psm_live"
    for path in (orphan, live):
        path.write_bytes(b"\0" * 4096)
    (tmp_path / "other").write_bytes(b"")  # not a Python segment
    with live.open("r+b") as f, mmap.mmap(f.fileno(), 4096):
        assert shards.remove_orphan_segments(since, tmp_path) == [orphan]
    assert not orphan.exists() and live.exists() and (tmp_path / "other").exists()
    assert shards.remove_orphan_segments(time.time() + 60, tmp_path) == []  # older: kept
    assert live.exists()


def _refuse(rows: slice) -> None:
    raise InputError("input has shape (2, 3), the network expects (batch, 4)")


def test_a_users_error_in_a_worker_reaches_the_caller_as_itself(local_ray):
    """Not wrapped in Ray's task error, whose text carries the worker's traceback: the CLI
    prints it as its one line."""
    with pytest.raises(InputError) as refused:
        run_sharded(_refuse, 4, (), TWO, show_progress=False)
    assert type(refused.value) is InputError
    assert str(refused.value) == "input has shape (2, 3), the network expects (batch, 4)"
