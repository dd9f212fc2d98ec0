"""Engine construction: SQLite in WAL mode with a busy timeout, PostgreSQL through psycopg 3."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session

from scim_bridge.storage.wal import AUTOCHECKPOINT_PAGES

SQLITE_BEGIN_OPTION = "sqlite_begin"


def build_engine(url: str, *, busy_timeout_ms: int = 30_000, pool_size: int = 5) -> Engine:
    """Create the engine for *url*, with the per-dialect settings this service relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False})
        _configure_sqlite(engine, busy_timeout_ms)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, pool_size=pool_size, max_overflow=pool_size * 2,
                           connect_args={"options": _without_jit(parsed.query.get("options"))})
    _ping_when_idle(engine)
    return engine


def _without_jit(options: str | tuple[str, ...] | None) -> str:
    """Return libpq ``options`` that turn PostgreSQL's JIT off, after any the URL gave.

    JIT compiles a plan's expressions when its estimated cost passes ``jit_above_cost``, and pays
    that compilation on every execution. psycopg prepares a statement after five executions, and
    the generic plan of a prepared page query estimates its ``LIMIT $n`` at a tenth of the table:
    at 1,000,000 users ``EXPLAIN EXECUTE`` of the 100-user page shows 28 functions to JIT-compile,
    tens to hundreds of milliseconds for a query that runs in one. Short indexed statements, which
    is all this service runs, never gain from it.
    """
    given = " ".join(options) if isinstance(options, tuple) else (options or "")
    return f"{given} -c jit=off".strip()


PING_AFTER_IDLE_S = 5.0
"""A pooled connection idle for longer than this is pinged before use (see :func:`_ping_when_idle`)."""


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before reuse only when it sat idle (pessimistic disconnect handling).

    ``pool_pre_ping`` pings on every checkout: one extra round trip per request, 12% of a GET's time
    under load on PostgreSQL. A connection returned to the pool moments ago is as good as the ping
    would say; one that sat idle past :data:`PING_AFTER_IDLE_S` (a database restart, a proxy's
    idle timeout) is pinged, and a dead one is replaced before the request sees it. What a ping
    cannot catch (the server dying in the last few seconds) fails that request with 503 and
    invalidates the pool (:func:`is_disconnect`).
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("checked_in_at")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out another (SQLAlchemy pool events).
            raise DisconnectionError("connection found dead after idling") from exc
        if not alive:
            raise DisconnectionError("connection found dead after idling")


def is_disconnect(error: BaseException) -> bool:
    """Tell whether *error* means the database connection was lost (the request may be retried)."""
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


# PostgreSQL's deadlock_detected and serialization_failure: the server rolled the transaction back,
# and the same transaction run again would most likely succeed.
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})
# SQLite's SQLITE_BUSY and SQLITE_LOCKED: the write lock was not granted within the busy timeout.
_TRANSIENT_SQLITE_CODES = frozenset({5, 6})


def is_transient_conflict(error: BaseException) -> bool:
    """Tell whether *error* is the database giving up a transaction over concurrent writes (retry it).

    PostgreSQL aborts one of two transactions that wait on each other's locks (a deadlock) and
    refuses a transaction that cannot be serialized; SQLite gives up waiting for its write lock
    after the busy timeout. Neither is the request's fault nor a bug of the write itself.
    """
    if not isinstance(error, DBAPIError):
        return False
    original = error.orig
    return (getattr(original, "sqlstate", None) in _TRANSIENT_SQLSTATES
            or getattr(original, "sqlite_errorcode", None) in _TRANSIENT_SQLITE_CODES)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    """Take over SQLite transaction control (SQLAlchemy's documented pysqlite recipe).

    pysqlite's implicit BEGIN is deferred: two writers that both read first then deadlock on the
    lock upgrade and one fails at once with SQLITE_BUSY, ignoring the busy timeout. Write units of
    work therefore start with ``BEGIN IMMEDIATE`` (see ``SQLITE_BEGIN_OPTION``), which waits.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # The service checkpoints after its writes, outside the write gate (storage.wal).
        cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        # LIKE is case-sensitive on PostgreSQL; make SQLite agree, and lower() explicitly where
        # an attribute is caseExact=false.
        cursor.execute("PRAGMA case_sensitive_like=ON")
        cursor.close()
        # SQLite's built-in lower() only folds ASCII; use Python's so SQL and Python agree.
        dbapi_connection.create_function("lower", 1, _py_lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # "NONE": a request's reads, which need no transaction (storage.session.get_session).
        mode = conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
        if mode != "NONE":
            conn.exec_driver_sql(f"BEGIN {mode}")


def _py_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def ensure_transaction(session: Session) -> None:
    """Put a request's transaction-less reads into a read transaction (for a server-side cursor).

    PostgreSQL streams a large result (``yield_per``) through a cursor that only lives inside a
    transaction. Inside a unit of work there is one already; nothing else is pending outside one.
    """
    connection = session.connection()
    if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        session.commit()  # ends nothing on the server: autocommit has no transaction open
        session.connection(execution_options={"isolation_level": "READ COMMITTED"})
