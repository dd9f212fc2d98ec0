"""Per-request sessions (kept in ``flask.g``) and the unit of work that commits them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextlib import nullcontext
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from flask import Flask
from flask import current_app
from flask import g
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from scim_bridge.storage.engine import SQLITE_BEGIN_OPTION
from scim_bridge.storage.engine import build_engine
from scim_bridge.storage.prepared import ReadConnections
from scim_bridge.storage.prepared import ReadLease
from scim_bridge.storage.prepared import execute_on_cursor
from scim_bridge.storage.prepared import inserts_together as together
from scim_bridge.storage.prepared import queue_inserts_on
from scim_bridge.storage.wal import WalCheckpointer
from scim_bridge.storage.write_gate import WriteGate

EXTENSION_KEY = "scim_bridge.storage"


@dataclass(slots=True)
class Storage:
    """The engine and session factory of one app."""

    engine: Engine
    sessionmaker: sessionmaker[Session]
    """Sessions whose every statement runs in a transaction (CLI, tests)."""
    request_sessionmaker: sessionmaker[Session]
    """Sessions of HTTP requests: reads without a transaction, writes in :func:`unit_of_work`."""
    write_gate: WriteGate | None = None
    """Where the writers of an SQLite file queue, across processes (see :class:`WriteGate`)."""
    checkpointer: WalCheckpointer | None = None
    """What checkpoints an SQLite file's WAL after writes, outside the gate (see :class:`WalCheckpointer`)."""
    read_connections: ReadConnections | None = None
    """Where request reads park their connection between requests (see :class:`ReadConnections`)."""
    spare_sessions: list[RequestSession] = field(default_factory=list)
    """Closed request sessions kept for the next request (see :func:`get_session`)."""
    reads_along: bool = False
    """Whether a request's token statement also reads what the request will read (a GET: one statement).

    On for PostgreSQL, where it saves a GET one round trip to the server (the in-process GET of a
    user went from ~1.15 to ~0.79 ms). Off for SQLite, where a statement is a library call: the
    joined statement costs SQLite what the two did, and planning the read ahead cost as much as
    the second statement's Python did (measured: ~15 µs slower per GET).
    """

    @classmethod
    def build(cls, url: str, *, busy_timeout_ms: int = 30_000, pool_size: int = 5) -> Storage:
        """Create the engine and the session factories for *url* (and the write gate of an SQLite file)."""
        engine = build_engine(url, busy_timeout_ms=busy_timeout_ms, pool_size=pool_size)
        queue_inserts_on(engine)
        reads = engine.execution_options(**_read_options(engine))
        gate = checkpointer = None
        if engine.dialect.name == "sqlite":
            gate = WriteGate.for_database(engine.url.database, busy_timeout_ms / 1000)
            checkpointer = WalCheckpointer(engine)
        connections = ReadConnections(engine)
        requests = sessionmaker(reads, class_=RequestSession, expire_on_commit=False, read_engine=engine,
                                read_connections=connections)
        return cls(engine, sessionmaker(engine, expire_on_commit=False), requests, gate, checkpointer, connections,
                   reads_along=engine.dialect.name != "sqlite")

    def dispose(self) -> None:
        """Close the parked read connections and every pooled one (the end of a CLI command or a test)."""
        if self.read_connections is not None:
            self.read_connections.release_all()
        self.spare_sessions.clear()
        self.engine.dispose()

    @property
    def is_sqlite(self) -> bool:
        """Tell whether the database is SQLite."""
        return self.engine.dialect.name == "sqlite"

    @property
    def write_options(self) -> dict[str, str]:
        """Connection options of a unit of work: READ COMMITTED on PostgreSQL.

        On SQLite the engine's begin hook sends no BEGIN ("NONE"): the unit of work sends
        ``BEGIN IMMEDIATE`` itself once past the write gate, so that the connection is checked
        out before the writer queues.
        """
        return {SQLITE_BEGIN_OPTION: "NONE"} if self.is_sqlite else {"isolation_level": "READ COMMITTED"}


class RequestSession(Session):
    """The session of one HTTP request, with a :class:`ReadLease` for its prepared reads.

    Outside a unit of work, :class:`~scim_bridge.storage.prepared.PreparedRead` statements run on
    the lease's connection instead of through the session (a third of a GET's CPU was SQLAlchemy
    bookkeeping); the lease's connection is parked for the next request when the session closes,
    at the end of the request (see :class:`~scim_bridge.storage.prepared.ReadConnections`), and
    the closed session itself is kept for the next request (see :func:`get_session`).
    """

    def __init__(self, *args: Any, read_engine: Engine, read_connections: ReadConnections | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_lease = ReadLease(read_engine, read_connections)

    def close(self) -> None:
        """Close the session and park the leased connection.

        A session that never began a transaction and holds no object (a request whose reads all
        ran on the lease: most GETs) has nothing of its own to close; Session.close() would still
        cost it ~10 µs of bookkeeping.
        """
        try:
            if self._holds_work():
                super().close()
        finally:
            self.read_lease.release()

    @property
    def is_clean(self) -> bool:
        """Tell whether the session holds nothing of a request: no transaction, object or leased connection."""
        return not (self._holds_work() or self.read_lease.holding)

    def _holds_work(self) -> bool:
        # Session.new / .deleted build a set on every call; their dicts say the same for free.
        return self._transaction is not None or bool(self.identity_map) or bool(self._new) or bool(self._deleted)


def _read_options(engine: Engine) -> dict[str, str]:
    """Connection options of a request's reads: no transaction (see :func:`get_session`)."""
    return {SQLITE_BEGIN_OPTION: "NONE"} if engine.dialect.name == "sqlite" else {"isolation_level": "AUTOCOMMIT"}


def init_app(app: Flask, storage: Storage) -> None:
    """Attach *storage* to *app* and close the request session on teardown."""
    app.extensions[EXTENSION_KEY] = storage
    app.teardown_appcontext(_close_session)


def get_storage() -> Storage:
    """Return the current app's storage."""
    storage: Storage = current_app.extensions[EXTENSION_KEY]
    return storage


def get_session() -> Session:
    """Return the session of the current request (created on first use).

    Reads outside a unit of work run without a transaction: each statement reads a consistent
    snapshot of its own, which is what READ COMMITTED gives each statement of a transaction on
    PostgreSQL anyway, and saves the BEGIN and ROLLBACK round trips of every read-only request
    (two of a GET's four on PostgreSQL; two statements on SQLite). Every write goes through
    :func:`unit_of_work`, which opens a real transaction. The session is the one the previous
    request closed when the storage kept it (:func:`_close_session`), else a new one.
    """
    session: Session | None = g.get("db_session")
    if session is None:
        storage = get_storage()
        spare = storage.spare_sessions
        try:
            session = spare.pop()
        except IndexError:
            session = storage.request_sessionmaker()
        g.db_session = session
    return session


SPARE_SESSIONS = 1
"""Closed request sessions a storage keeps for reuse: a sync worker serves one request at a time."""


def _close_session(_exc: BaseException | None) -> None:
    """Close the request's session and keep it for the next request when it is clean.

    A closed Session is reusable (SQLAlchemy documents ``close()`` as leaving it ready for new
    work); building one cost ~6 µs of every request. One that is not clean after closing (it
    cannot be, short of a bug) is dropped rather than handed to another request.
    """
    session = g.pop("db_session", None)
    if session is None:
        return
    session.close()
    if isinstance(session, RequestSession) and session.is_clean:
        spare = get_storage().spare_sessions
        if len(spare) < SPARE_SESSIONS:
            spare.append(session)


@contextmanager
def unit_of_work(*, inserts_together: bool = False) -> Iterator[Session]:
    """Run one write transaction: commit on success, roll back on any error.

    With *inserts_together*, on PostgreSQL, the write's plain INSERTs are sent as one statement
    (see :func:`~scim_bridge.storage.prepared.inserts_together`): when they are all it writes, in
    autocommit, with no ``BEGIN`` or ``COMMIT`` of their own.

    On SQLite the transaction starts with ``BEGIN IMMEDIATE`` so that concurrent writers queue on
    the busy timeout instead of failing on a lock upgrade; before it, they queue on the storage's
    write gate, which hands the lock over without the busy handler's sleeps. The connection is
    checked out before the gate, and once the write has left it, it may checkpoint the WAL
    (:class:`~scim_bridge.storage.wal.WalCheckpointer`): the gate is held only from BEGIN to COMMIT.
    """
    yield from _transaction(get_session(), get_storage(), inserts_together)


def standalone_unit_of_work(storage: Storage, *, inserts_together: bool = False) -> Iterator[Session]:
    """Yield a session in one write transaction outside any request (CLI).

    *inserts_together*: see :func:`unit_of_work`.
    """
    with storage.sessionmaker() as session:
        yield from _transaction(session, storage, inserts_together)


def _transaction(session: Session, storage: Storage, inserts_together: bool = False) -> Iterator[Session]:
    if session.in_transaction():
        # Reads done earlier in the request (token lookup) end here; writes start a fresh
        # transaction (immediate on SQLite) and re-read what they depend on.
        session.commit()
    # The connection is checked out before the writer queues: only the transaction needs the gate.
    connection = session.connection(execution_options=storage.write_options)
    with storage.write_gate.passed() if storage.write_gate is not None else nullcontext():
        try:
            if storage.is_sqlite:
                execute_on_cursor(connection, "BEGIN IMMEDIATE")
            with together(session, connection) if inserts_together else nullcontext() as queue:
                yield session
                if queue is not None:
                    queue.finish(session)
            session.commit()
        except BaseException:
            session.rollback()
            raise
    if storage.checkpointer is not None:
        storage.checkpointer.after_write()


cli_unit_of_work = contextmanager(standalone_unit_of_work)
