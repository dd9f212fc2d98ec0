"""SQLite's WAL is checkpointed after writes, outside the write gate; BEGIN IMMEDIATE is sent past the gate."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from scim_bridge.storage import wal
from scim_bridge.storage.session import Storage
from scim_bridge.storage.session import cli_unit_of_work
from scim_bridge.storage.write_gate import WriteGate
from tests.unit.storage.gate_support import time_to_pass


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    built = Storage.build(f"sqlite:///{tmp_path / 'wal.db'}", busy_timeout_ms=200)
    with cli_unit_of_work(built) as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
    yield built
    built.engine.dispose()


def _gate_is_held(storage: Storage) -> bool:
    """Tell whether a writer holds the gate, from another thread (the gate is re-entrant within one)."""
    database = storage.engine.url.database
    assert database is not None
    probe = WriteGate.for_database(database, 0.05)
    assert probe is not None
    return time_to_pass(probe) >= 0.05


def test_our_connections_leave_sqlites_own_checkpoint_as_a_backstop(storage):
    with storage.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == wal.AUTOCHECKPOINT_PAGES
    assert wal.AUTOCHECKPOINT_PAGES > 1000  # above SQLite's default, which would checkpoint inside COMMITs


def test_a_write_checkpoints_the_log_once_it_has_left_the_gate(storage, monkeypatch):
    held_at_checkpoint: list[bool] = []
    results: list[tuple[int, int, int]] = []
    checkpointer = wal.WalCheckpointer(storage.engine, interval_s=0)
    real_checkpoint = checkpointer.checkpoint

    def observed() -> tuple[int, int, int]:
        held_at_checkpoint.append(_gate_is_held(storage))
        results.append(real_checkpoint())
        return results[-1]

    monkeypatch.setattr(checkpointer, "checkpoint", observed)
    storage.checkpointer = checkpointer
    with cli_unit_of_work(storage) as session:
        session.execute(text("INSERT INTO t VALUES (1), (2), (3)"))
    assert held_at_checkpoint == [False]
    busy, frames, copied = results[0]
    assert busy == 0 and frames > 0 and copied == frames  # every frame of the write copied back


def test_a_process_checkpoints_at_most_once_per_interval(storage, monkeypatch):
    now = [100.0]
    checkpointer = wal.WalCheckpointer(storage.engine, interval_s=0.2, clock=lambda: now[0])
    runs: list[float] = []
    monkeypatch.setattr(checkpointer, "checkpoint", lambda: runs.append(now[0]) or (0, 0, 0))
    storage.checkpointer = checkpointer
    for step in (0.1, 0.15, 0.1, 0.05, 0.3):  # 100.1, 100.25, 100.35, 100.4, 100.7
        now[0] += step
        with cli_unit_of_work(storage) as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
    assert runs == [pytest.approx(100.25), pytest.approx(100.7)]


def test_a_failed_write_does_not_checkpoint(storage, monkeypatch):
    checkpointer = wal.WalCheckpointer(storage.engine, interval_s=0)
    runs: list[int] = []
    monkeypatch.setattr(checkpointer, "checkpoint", lambda: runs.append(1) or (0, 0, 0))
    storage.checkpointer = checkpointer
    with pytest.raises(RuntimeError), cli_unit_of_work(storage) as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
        raise RuntimeError("boom")
    assert runs == []


def test_a_failed_checkpoint_is_logged_and_the_write_stands(storage, monkeypatch, caplog):
    checkpointer = wal.WalCheckpointer(storage.engine, interval_s=0)

    def fail() -> tuple[int, int, int]:
        raise OperationalError("PRAGMA wal_checkpoint(PASSIVE)", {}, sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr(checkpointer, "checkpoint", fail)
    storage.checkpointer = checkpointer
    with caplog.at_level(logging.WARNING, logger="scim_bridge.storage.wal"), cli_unit_of_work(storage) as session:
        session.execute(text("INSERT INTO t VALUES (42)"))
    assert "WAL checkpoint failed" in caplog.text
    with storage.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t WHERE x = 42").scalar() == 1


def test_one_checkpoint_at_a_time_within_a_process(storage, monkeypatch):
    checkpointer = wal.WalCheckpointer(storage.engine, interval_s=0)
    entered, release = threading.Event(), threading.Event()
    runs: list[str] = []

    def slow() -> tuple[int, int, int]:
        runs.append(threading.current_thread().name)
        entered.set()
        release.wait(5)
        return (0, 0, 0)

    monkeypatch.setattr(checkpointer, "checkpoint", slow)
    first = threading.Thread(target=checkpointer.after_write, name="first")
    first.start()
    assert entered.wait(5)
    checkpointer.after_write()  # another thread is checkpointing: this one goes on without waiting
    release.set()
    first.join(5)
    assert runs == ["first"]


def test_the_connection_is_checked_out_before_the_gate_and_begin_sent_past_it(storage):
    seen: list[tuple[str, bool]] = []

    def on_checkout(*_args: Any) -> None:
        seen.append(("checkout", _gate_is_held(storage)))

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append((statement, _gate_is_held(storage)))

    event.listen(storage.engine, "checkout", on_checkout)
    event.listen(storage.engine, "before_cursor_execute", on_statement)
    try:
        with cli_unit_of_work(storage) as session:
            session.execute(text("INSERT INTO t VALUES (7)"))
    finally:
        event.remove(storage.engine, "checkout", on_checkout)
        event.remove(storage.engine, "before_cursor_execute", on_statement)
    assert seen[:3] == [("checkout", False), ("BEGIN IMMEDIATE", True), ("INSERT INTO t VALUES (7)", True)]


def test_a_begin_that_cannot_get_the_lock_fails_cleanly(storage):
    # Another program (not passing the gate) holds SQLite's write lock past the busy timeout.
    database = storage.engine.url.database
    assert database is not None
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="database is locked"), cli_unit_of_work(storage) as session:
            session.execute(text("INSERT INTO t VALUES (8)"))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert not _gate_is_held(storage)
    with cli_unit_of_work(storage) as session:
        session.execute(text("INSERT INTO t VALUES (9)"))
    with storage.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT x FROM t WHERE x IN (8, 9)").scalars().all() == [9]
