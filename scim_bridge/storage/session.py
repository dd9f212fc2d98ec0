"""Per-request sessions (kept in ``flask.g``) and the unit of work that commits them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextlib import nullcontext
from dataclasses import dataclass

from flask import Flask
from flask import current_app
from flask import g
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from scim_bridge.storage.engine import SQLITE_BEGIN_OPTION
from scim_bridge.storage.engine import build_engine
from scim_bridge.storage.write_gate import WriteGate

EXTENSION_KEY = "scim_bridge.storage"


@dataclass(slots=True)
class Storage:
    """The engine and session factory of one app."""

    engine: Engine
    sessionmaker: sessionmaker[Session]
    write_gate: WriteGate | None = None

    @classmethod
    def build(cls, url: str, *, busy_timeout_ms: int = 30_000, pool_size: int = 5) -> Storage:
        """Create the engine and a session factory for *url* (and the write gate of an SQLite file)."""
        engine = build_engine(url, busy_timeout_ms=busy_timeout_ms, pool_size=pool_size)
        gate = None
        if engine.dialect.name == "sqlite":
            gate = WriteGate.for_database(engine.url.database, busy_timeout_ms / 1000)
        return cls(engine, sessionmaker(engine, expire_on_commit=False), gate)

    @property
    def is_sqlite(self) -> bool:
        """Tell whether the database is SQLite."""
        return self.engine.dialect.name == "sqlite"


def init_app(app: Flask, storage: Storage) -> None:
    """Attach *storage* to *app* and close the request session on teardown."""
    app.extensions[EXTENSION_KEY] = storage
    app.teardown_appcontext(_close_session)


def get_storage() -> Storage:
    """Return the current app's storage."""
    storage: Storage = current_app.extensions[EXTENSION_KEY]
    return storage


def get_session() -> Session:
    """Return the session of the current request (created on first use)."""
    if "db_session" not in g:
        g.db_session = get_storage().sessionmaker()
    session: Session = g.db_session
    return session


def _close_session(_exc: BaseException | None) -> None:
    if (session := g.pop("db_session", None)) is not None:
        session.close()


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """Run one write transaction: commit on success, roll back on any error.

    On SQLite the transaction starts with ``BEGIN IMMEDIATE`` so that concurrent writers queue on
    the busy timeout instead of failing on a lock upgrade; before it, they queue on the storage's
    write gate, which hands the lock over without the busy handler's sleeps.
    """
    session = get_session()
    yield from _transaction(session, get_storage())


def standalone_unit_of_work(storage: Storage) -> Iterator[Session]:
    """Yield a session in one write transaction outside any request (CLI)."""
    with storage.sessionmaker() as session:
        yield from _transaction(session, storage)


def _transaction(session: Session, storage: Storage) -> Iterator[Session]:
    if session.in_transaction() and storage.is_sqlite:
        # Reads done earlier in the request (token lookup) end here; writes start a fresh,
        # immediate transaction and re-read what they depend on. On PostgreSQL the read
        # transaction simply goes on as the write transaction: under READ COMMITTED each
        # statement sees what is committed when it runs, so there is nothing stale to end, and
        # a COMMIT and a BEGIN (two round trips) are saved.
        session.commit()
    with storage.write_gate.passed() if storage.write_gate is not None else nullcontext():
        if storage.is_sqlite:
            session.connection(execution_options={SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


cli_unit_of_work = contextmanager(standalone_unit_of_work)
