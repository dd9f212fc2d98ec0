"""The SQLite write gate: writers of the service queue on a file lock before ``BEGIN IMMEDIATE``."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from scim_bridge.storage.session import Storage
from scim_bridge.storage.session import cli_unit_of_work
from scim_bridge.storage.write_gate import WriteGate
from tests.unit.storage.gate_support import time_to_pass


@pytest.mark.parametrize("database", [None, "", ":memory:", "file:db?mode=memory"])
def test_no_gate_without_a_database_file(database):
    assert WriteGate.for_database(database, 1.0) is None


def test_the_gate_lets_one_holder_through_at_a_time(tmp_path: Path):
    gate = WriteGate.for_database(str(tmp_path / "x.db"), 5.0)
    assert gate is not None
    inside: list[str] = []
    order: list[str] = []

    def hold(name: str, seconds: float) -> None:
        with gate.passed():
            inside.append(name)
            assert len(inside) == 1, inside
            time.sleep(seconds)
            order.append(name)
            inside.remove(name)

    first = threading.Thread(target=hold, args=("first", 0.2))
    first.start()
    time.sleep(0.05)
    started = time.monotonic()
    hold("second", 0)
    first.join()
    assert order == ["first", "second"]
    assert time.monotonic() - started >= 0.1  # the second waited for the first to leave


def test_the_gate_is_reentrant_within_a_thread_and_released_on_error(tmp_path: Path):
    gate = WriteGate.for_database(str(tmp_path / "x.db"), 5.0)
    assert gate is not None
    with pytest.raises(RuntimeError), gate.passed(), gate.passed():
        raise RuntimeError("boom")
    other = WriteGate.for_database(str(tmp_path / "x.db"), 0.0)
    assert other is not None
    done = threading.Event()

    def enter() -> None:
        with other.passed():
            done.set()

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join(2)
    assert done.is_set()


def test_a_writer_stops_waiting_at_the_gate_after_the_timeout(tmp_path: Path):
    holder = WriteGate.for_database(str(tmp_path / "x.db"), 5.0)
    waiter = WriteGate.for_database(str(tmp_path / "x.db"), 0.1)
    assert holder is not None and waiter is not None
    release = threading.Event()
    entered = threading.Event()

    def hold() -> None:
        with holder.passed():
            entered.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    entered.wait(5)
    started = time.monotonic()
    with waiter.passed():
        waited = time.monotonic() - started
    release.set()
    thread.join()
    assert 0.1 <= waited < 2


def test_sqlite_units_of_work_pass_the_gate(tmp_path: Path):
    storage = Storage.build(f"sqlite:///{tmp_path / 'gate.db'}")
    try:
        assert storage.write_gate is not None
        with cli_unit_of_work(storage) as session:
            session.execute(text("CREATE TABLE t (x INTEGER)"))
            probe = WriteGate.for_database(str(tmp_path / "gate.db"), 0.05)
            assert probe is not None
            blocked = time_to_pass(probe)
            assert blocked >= 0.05  # held by the unit of work: the probe waited its whole timeout
        assert time_to_pass(probe) < 0.05  # released with the commit
    finally:
        storage.engine.dispose()
