"""Queue the SQLite writers of every process on a file lock, so that the write lock is handed over at once."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: writers wait in SQLite's busy handler only
    fcntl = None  # type: ignore[assignment]

_FIRST_WAIT = 0.0002
_LONGEST_WAIT = 0.001


class WriteGate:
    """An exclusive ``flock`` on a file next to the SQLite database, held by each write transaction.

    A writer that finds SQLite's database locked sleeps and retries (the busy handler backs off to
    tens of milliseconds), so under concurrent writes the lock sits idle between transactions and
    SQLite write throughput drops far below what one writer achieves. Writers of this service
    queue here first, retrying every millisecond at most, and so find the database free when
    they start their ``BEGIN IMMEDIATE``. SQLite still holds the real lock: a writer that does
    not pass the gate (another program, a test's session) is serialised as before, and after
    *timeout* seconds a writer stops waiting here and leaves the rest to the busy timeout.
    """

    def __init__(self, path: Path, timeout: float) -> None:
        self._path = path
        self._timeout = timeout
        self._local = threading.local()

    @classmethod
    def for_database(cls, database: str | None, timeout: float) -> WriteGate | None:
        """Return the gate of an SQLite database file, or ``None`` (in memory, URI, or no ``flock``)."""
        if fcntl is None or not database or database == ":memory:" or database.startswith("file:"):
            return None
        return cls(Path(f"{database}-writers.lock"), timeout)

    @contextmanager
    def passed(self) -> Iterator[None]:
        """Hold the gate for the block (re-entrant within a thread)."""
        if getattr(self._local, "inside", False):
            yield
            return
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self._wait(fd)
            self._local.inside = True
            try:
                yield
            finally:
                self._local.inside = False
        finally:
            os.close(fd)  # releases the lock

    def _wait(self, fd: int) -> None:
        deadline = time.monotonic() + self._timeout
        pause = _FIRST_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return
                time.sleep(pause)
                pause = min(pause * 2, _LONGEST_WAIT)
