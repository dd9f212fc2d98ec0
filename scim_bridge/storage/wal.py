"""Checkpoint SQLite's write-ahead log after write transactions, outside the write gate."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine

log = logging.getLogger(__name__)

AUTOCHECKPOINT_PAGES = 4_000
"""SQLite's own checkpoint threshold on our connections (its default is 1,000 pages).

A backstop: when the log reaches it, SQLite checkpoints inside a COMMIT as before, but finds most
frames copied already by :class:`WalCheckpointer`, and the log starts over from its beginning
(which a checkpoint running beside writers rarely allows).
"""

CHECKPOINT_INTERVAL_S = 0.2
"""How often one process checkpoints at most, after a write of its own."""


class WalCheckpointer:
    """Copy the WAL back into the database after a write, when this process has not done so lately.

    SQLite checkpoints by itself inside the COMMIT that takes the log past its threshold (1,000
    pages by default): about every 50 creates of a user, that COMMIT copies the pages back into
    the database, ~5 ms on our machines, a seventh of the write-lock time of a create on
    average. SQLite releases its write lock before that copy, but the service's writers queue on
    the write gate (:class:`~scim_bridge.storage.write_gate.WriteGate`), which the committing
    request holds until COMMIT returns, so every other writer waited for the copy.

    Our connections raise SQLite's threshold to :data:`AUTOCHECKPOINT_PAGES`, and the unit of
    work calls :meth:`after_write` once it has left the gate: a ``PASSIVE`` checkpoint, which
    runs beside other writers and readers (it copies what no reader still needs, never waits),
    at most every :data:`CHECKPOINT_INTERVAL_S` per process. With several workers writing, one of
    them checkpoints every fraction of that interval; idle, nothing runs (SQLite checkpoints when
    the last connection closes). SQLite's own threshold still applies when the log reaches it
    (see :data:`AUTOCHECKPOINT_PAGES`): that COMMIT then has little left to copy.
    """

    def __init__(self, engine: Engine, interval_s: float = CHECKPOINT_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._engine = engine
        self._interval_s = interval_s
        self._clock = clock
        self._last = clock()
        self._running = threading.Lock()

    def after_write(self) -> None:
        """Checkpoint if this process's last checkpoint is older than the interval; never raise."""
        now = self._clock()
        if now - self._last < self._interval_s or not self._running.acquire(blocking=False):
            return
        try:
            self._last = now
            self.checkpoint()
        except Exception:  # the write committed; a checkpoint left undone is done by the next one
            log.warning("WAL checkpoint failed", exc_info=True)
        finally:
            self._running.release()

    def checkpoint(self) -> tuple[int, int, int]:
        """Run a ``PASSIVE`` checkpoint: return SQLite's (busy, frames in the log, frames copied)."""
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                busy, frames, copied = cursor.fetchone()
            finally:
                cursor.close()
        finally:
            connection.close()
        return int(busy), int(frames), int(copied)
