"""The hottest reads of a request, run on the DBAPI cursor of a leased connection.

Every SCIM request validates its token, and most then read one row by key (a user, a group, a
``userName eq`` lookup). Through an ORM session each of those statements costs SQLAlchemy's
connection and execution bookkeeping: about 100 µs of CPU on SQLite against 11 µs for the same
statement on the DBAPI cursor (160 µs against 75 µs on PostgreSQL), a third of a GET. A
:class:`PreparedRead` is a Core ``SELECT`` compiled once per dialect, with SQLAlchemy's own bind and
result processors for its types, so that the rows it returns are the rows a ``Session.execute``
would (tests/functional/test_prepared_reads.py checks that on both databases).

Where a statement runs: a request session outside a unit of work (reads without a transaction,
see :func:`scim_bridge.storage.session.get_session`) uses its :class:`ReadLease`, a pooled
connection in autocommit; anything else (a unit of work, the CLI) goes through the session as
usual, so writes and their reads stay in one transaction.
"""

from __future__ import annotations

import copy
import os
import time
import weakref
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter
from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import Insert
from sqlalchemy import Select
from sqlalchemy import Table
from sqlalchemy import bindparam
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import literal_column
from sqlalchemy import select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DataError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.visitors import replacement_traverse

from scim_bridge.storage import engine as engine_settings

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    """One statement compiled for one dialect: SQL text, parameter order and type processors."""

    sql: str
    positional: tuple[str, ...] | None
    """Parameter names in placeholder order (qmark, numbered); ``None`` for named parameters."""
    sent: Any
    """What the cursor is given: ``sql``, or its encoded bytes for a numbered statement."""
    cursor: Callable[[Any], Any] | None
    """The cursor class for a numbered statement (psycopg's ``RawCursor``); ``None``: the connection's own."""
    defaults: Mapping[str, Any]
    """Values of the statement's own literals (anonymous bind parameters)."""
    binds: Mapping[str, Processor]
    results: tuple[tuple[int, Callable[[Any], Any]], ...]
    """(column index, result processor) of the columns that have one."""
    memo: dict[Any, tuple[Any, ...]] | None
    """Processed leading columns by the driver's values of them, for a statement that keeps them
    (see ``PreparedRead``)."""
    memo_columns: int
    """How many leading columns the memo covers."""
    head_results: tuple[tuple[int, Callable[[Any], Any]], ...]
    """The result processors of those columns."""
    tail_results: tuple[tuple[int, Callable[[Any], Any]], ...]
    """The result processors of the columns after those, indexed from the first of them."""


class PreparedRead:
    """A Core ``SELECT`` with scalar bind parameters, compiled once per dialect (see the module doc)."""

    def __init__(self, statement: Select[Any], *, memo_rows: int = 0, memo_columns: int | None = None) -> None:
        self.statement = statement
        self.names: tuple[str, ...] = tuple(column.key for column in statement.selected_columns)
        """The result columns' names, in order."""
        self.memo_rows = memo_rows
        """How many processed rows to keep by the driver's row (0: none).

        For a statement that returns the same few rows over and over (the token grant of every
        request), a row the driver returned before is not processed again (UUIDs, timestamps and
        JSON parsed from SQLite's text: ~7 µs of a request). The kept rows are shared, so their
        callers must not change them (copy a JSON value before changing it). Rows the driver
        returns as unhashable values (PostgreSQL's JSON) are processed every time.
        """
        self.memo_columns = len(self.names) if memo_columns is None else memo_columns
        """How many leading columns the memo covers: the rest of a row is processed every time
        (the grant's columns, followed by a resource read along with it)."""
        self._compiled: dict[str, _Compiled] = {}
        _BUILT.add(self)

    def all(self, session: Session, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Return every row for *params* (values as the session would return them)."""
        lease: ReadLease | None = getattr(session, "read_lease", None)
        if lease is None or session.in_transaction():
            return [tuple(row) for row in session.execute(self.statement, params)]
        return lease.run(self, params)

    def one_or_none(self, session: Session, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Return the only row for *params*, or ``None`` (the statement must select by a unique key)."""
        rows = self.all(session, params)
        if len(rows) > 1:
            raise LookupError(f"expected at most one row, got {len(rows)}")
        return rows[0] if rows else None

    def mapping(self, row: tuple[Any, ...]) -> dict[str, Any]:
        """Return *row* (one of this statement's) as a dict by column name."""
        return dict(zip(self.names, row, strict=True))

    def compiled_for(self, dialect: Dialect) -> _Compiled:
        """Return the statement compiled for *dialect* (once per process)."""
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = _compile(self.statement, dialect, self.memo_rows > 0,
                                                            self.memo_columns)
        return found


@dataclass(frozen=True, slots=True)
class PlannedRead:
    """A prepared read of one tenant's rows and its parameters but ``tenant_id``, known before the tenant is.

    What a request will read once its token is accepted (a user by id, a user by ``userName``, a
    group by id), so that the token's grant can read it along (see
    ``scim_bridge.auth.tokens.authenticate_bearer``).
    """

    prepared: PreparedRead
    params: Mapping[str, Any]

    def params_in(self, tenant_id: Any) -> dict[str, Any]:
        """Return its parameters with the tenant bound (what a run, and rows read ahead, are keyed by)."""
        return {**self.params, "tenant_id": tenant_id}

    def rows(self, session: Session, tenant_id: Any) -> list[tuple[Any, ...]]:
        """Return its rows in *tenant_id*."""
        return self.prepared.all(session, self.params_in(tenant_id))


def statement_dialect(dialect: Dialect) -> Dialect:
    """Return the dialect a :class:`PreparedRead` is compiled with for *dialect*.

    psycopg takes SQLAlchemy's ``%(name)s`` placeholders and rewrites them into PostgreSQL's ``$n``
    on every execution, and caches the rewrite only for statements under 4 KB: the token's grant
    read along with a user is 4.7 KB, a page of users more. Rewriting it cost ~20 µs of client CPU
    a statement (~30 % of the driver's part), so on psycopg a prepared read is compiled once with
    ``$n`` placeholders (SQLAlchemy's ``numeric_dollar``: a copy of the engine's dialect, so the
    server's version and settings it learned stay) and sent as bytes on psycopg's ``RawCursor``,
    which takes the statement as it is. Other drivers: *dialect* itself.
    """
    if dialect.driver != "psycopg":
        return dialect
    numbered = _NUMBERED.get(dialect)
    # A copy made before the engine's first connection taught the dialect the server is made again.
    if numbered is None or numbered.server_version_info != dialect.server_version_info:
        numbered = copy.copy(dialect)
        numbered.paramstyle = "numeric_dollar"
        numbered.positional = True
        numbered.identifier_preparer = numbered.preparer(numbered)  # no "%%" for a literal "%" any more
        _NUMBERED[dialect] = numbered
    return numbered


_NUMBERED: weakref.WeakKeyDictionary[Dialect, Dialect] = weakref.WeakKeyDictionary()


def _raw_cursor() -> Callable[[Any], Any]:
    import psycopg  # only on psycopg's dialect: SQLite installs need not have it

    return psycopg.RawCursor


def _compile(statement: Select[Any], dialect: Dialect, memo: bool = False, memo_columns: int = 0, *,
             numbered: bool = True) -> _Compiled:
    compiled_with = statement_dialect(dialect) if numbered else dialect
    compiled = statement.compile(dialect=compiled_with)
    binds: dict[str, Processor] = {}
    defaults: dict[str, Any] = {}
    for name, bind in compiled.binds.items():
        if bind.expanding:
            raise ValueError(f"{name}: expanding IN parameters are not supported by a prepared read")
        binds[name] = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if not bind.required:
            defaults[name] = bind.effective_value
    processors = (column.type.dialect_impl(dialect).result_processor(dialect, None)
                  for column in statement.selected_columns)
    results = tuple((index, process) for index, process in enumerate(processors) if process is not None)
    positional = tuple(compiled.positiontup) if compiled.positiontup is not None else None
    head = tuple((index, process) for index, process in results if index < memo_columns)
    tail = tuple((index - memo_columns, process) for index, process in results if index >= memo_columns)
    sql = str(compiled)
    numbered = compiled_with is not dialect
    return _Compiled(sql, positional, sql.encode() if numbered else sql, _raw_cursor() if numbered else None,
                     defaults, binds, results, {} if memo else None, memo_columns, head, tail)


class ReadConnections:
    """Where an engine's read leases park their connection between requests (see :class:`ReadLease`).

    Checking a connection out of SQLAlchemy's pool and back in (a pool proxy, its weakref finalizer,
    the pool's queue and events, reset on return) cost about 20 µs of a GET's ~240 µs on SQLite,
    twice what the statement it served did. A sync worker serves one request at a time, so the
    connection its last request read on is parked here and the next request reads on it again.

    What is parked stays checked out of the pool (``pool.checkedout()`` counts it): at most
    *keep* connections, in autocommit as they were used. One parked in another process (inherited
    through a fork) is dropped without being closed, as ``engine.dispose(close=False)`` would; one
    parked longer than the pool's idle limit is pinged before reuse, as the pool would ping it
    (``storage.engine.PING_AFTER_IDLE_S``), and replaced when dead, with the pool (its siblings
    most likely died with it: a server restart).
    """

    def __init__(self, engine: Engine, *, keep: int = 1, ping_after_idle_s: float | None = None) -> None:
        self._engine = engine
        self._keep = keep
        self._ping_after = ping_after_idle_s
        """Seconds after which a parked connection is pinged; ``None``: the pool's (read when taken)."""
        self._parked: list[tuple[Any, int, float]] = []

    def take(self) -> Any:
        """Return a parked connection of this process, else one checked out of the pool (autocommit)."""
        while (found := self._pop_mine()) is not None:
            connection, parked_at = found
            limit = self._ping_after if self._ping_after is not None else engine_settings.PING_AFTER_IDLE_S
            if time.monotonic() - parked_at < limit or self._alive(connection):
                return connection
        connection = self._engine.raw_connection()
        if self._engine.dialect.name != "sqlite":
            # SQLite connections run without implicit transactions already (storage.engine).
            connection.dbapi_connection.autocommit = True
        return connection

    def park(self, connection: Any) -> None:
        """Keep *connection* for the next lease, or give it back to the pool when enough are parked."""
        if len(self._parked) < self._keep:
            self._parked.append((connection, os.getpid(), time.monotonic()))
        else:
            self.give_back(connection)

    @property
    def parked(self) -> int:
        """How many connections are parked."""
        return len(self._parked)

    def give_back(self, connection: Any) -> None:
        """Return *connection* to the pool, out of autocommit again for the next borrower (a unit of work)."""
        try:
            if self._engine.dialect.name != "sqlite":
                connection.dbapi_connection.autocommit = False
        except Exception:  # noqa: BLE001 - a broken connection must not go back to the pool
            connection.invalidate()
        connection.close()

    def release_all(self) -> None:
        """Give every parked connection of this process back to the pool (before disposing of the engine)."""
        for connection in self._unpark_all():
            self.give_back(connection)

    def lose_all(self) -> None:
        """Invalidate every parked connection of this process (their server went away, see ``ReadLease``)."""
        for connection in self._unpark_all():
            connection.invalidate()

    def _unpark_all(self) -> list[Any]:
        """Take every parked connection of this process."""
        mine = []
        while (found := self._pop_mine()) is not None:
            mine.append(found[0])
        return mine

    def _pop_mine(self) -> tuple[Any, float] | None:
        """Take the last parked connection of this process and when it was parked; ``None`` when none is left.

        Those parked by another process (inherited through a fork: the parent's socket or file
        handle) are dropped on the way, never closed here.
        """
        while True:
            try:
                connection, pid, parked_at = self._parked.pop()
            except IndexError:  # none left (another thread may have taken the last one)
                return None
            if pid == os.getpid():
                return connection, parked_at

    def _alive(self, connection: Any) -> bool:
        try:
            if self._engine.dialect.do_ping(connection.dbapi_connection):
                return True
        except Exception:  # noqa: BLE001 - a dead connection is replaced, whatever the driver raised
            pass
        connection.invalidate()
        # What killed it (a server restart) most likely killed its siblings in the pool too.
        self._engine.dispose(close=False)
        return False


class ReadLease:
    """One connection that a request's reads borrow, in autocommit, until the request ends.

    No transaction is ever open on it: each statement reads a committed snapshot of its own, as the
    request session's reads do. The connection comes from *connections* (parked by the previous
    request, see :class:`ReadConnections`) and goes back there; without it, from the pool and back.
    A lost connection is reported as SQLAlchemy would (a ``DBAPIError`` with
    ``connection_invalidated``, which the app answers with 503) and the pool and the parked
    connections are replaced, so that the retry gets a live connection.

    Its statements fire the engine's ``before_cursor_execute`` / ``after_cursor_execute`` events
    (with no ``Connection`` and no execution context: both arguments are ``None``), so that whatever
    watches the engine's SQL (tests, query-plan checks) sees them too.
    """

    def __init__(self, engine: Engine, connections: ReadConnections | None = None) -> None:
        self._engine = engine
        self._connections = connections if connections is not None else ReadConnections(engine, keep=0)
        self._connection: Any = None
        self._ahead: dict[tuple[PreparedRead, tuple[tuple[str, Any], ...]], list[tuple[Any, ...]]] = {}

    def run(self, prepared: PreparedRead, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run *prepared* with *params* on the leased connection; return its processed rows.

        Rows read ahead for exactly this statement and these parameters (:meth:`read_ahead`) are
        returned instead, once.
        """
        if self._ahead:
            found = self._ahead.pop((prepared, _params_key(params)), None)
            if found is not None:
                return found
        # The connection first: a process's first connection initializes the dialect, which the
        # statement is then compiled with (the warm-up does both before the fork, when it can).
        connection = self._connection
        if connection is None:
            connection = self._connection = self._connections.take()
        dialect = self._engine.dialect
        compiled = prepared.compiled_for(dialect)
        arguments = _arguments(compiled, params)
        cursor = connection.cursor() if compiled.cursor is None else compiled.cursor(connection.dbapi_connection)
        try:
            _execute(self._engine.dispatch, None, cursor, compiled.sql, arguments, many=False, sent=compiled.sent)
            raw = cursor.fetchall()
        except BaseException as exc:
            _failed(dialect, connection.dbapi_connection, cursor, compiled.sql, arguments, exc, self._lose)
            raise
        cursor.close()
        memo = compiled.memo
        if memo is None:
            return [_processed(fetched, compiled.results) for fetched in raw]
        rows = []
        width = compiled.memo_columns
        for fetched in raw:
            key = fetched if width == len(fetched) else fetched[:width]
            try:
                head = memo.get(key)
            except TypeError:  # an unhashable value (a JSON document from the driver)
                rows.append(_processed(fetched, compiled.results))
                continue
            if head is None:
                head = _processed(key, compiled.head_results)
                if len(memo) >= prepared.memo_rows:
                    memo.clear()
                memo[key] = head
            rows.append(head if key is fetched else head + _processed(fetched[width:], compiled.tail_results))
        return rows

    def read_ahead(self, prepared: PreparedRead, params: Mapping[str, Any], rows: list[tuple[Any, ...]]) -> None:
        """Keep *rows* as what *prepared* returns for *params*, until the lease is released.

        A statement that read them along with another one (the token's grant, see
        ``scim_bridge.auth.tokens.authenticate_bearer``) saves the request a statement: its next
        :meth:`run` of *prepared* with the same parameters, the tenant's included, gets them
        without reading again; a second run reads.
        """
        self._ahead[(prepared, _params_key(params))] = rows

    @property
    def holding(self) -> bool:
        """Tell whether the lease holds a connection (between its first read and :meth:`release`)."""
        return self._connection is not None

    def release(self) -> None:
        """Park the connection for the next lease (or give it back to the pool); forget rows read ahead."""
        self._ahead.clear()
        connection, self._connection = self._connection, None
        if connection is not None:
            self._connections.park(connection)

    def _lose(self, error: BaseException) -> None:
        connection, self._connection = self._connection, None
        connection.invalidate(error)
        # Its siblings in the pool, and the parked ones, are most likely dead too (a server restart).
        self._connections.lose_all()
        self._engine.dispose(close=False)


class PreparedCommand:
    """A Core statement run in the session's transaction for its effect, its rows unread (a row lock).

    Compiled once per dialect like a :class:`PreparedRead`, and sent on the transaction's cursor with
    :func:`execute_on_cursor`, without ``Session.execute``'s ORM bookkeeping (~100 µs of CPU for
    the tenant's event lock on PostgreSQL). Pending ORM changes are flushed first, as
    ``Session.execute`` would autoflush them.
    """

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}
        _BUILT.add(self)

    def compiled_for(self, dialect: Dialect) -> _Compiled:
        """Return the statement compiled for *dialect* (once per process)."""
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = _compile(self.statement, dialect, numbered=False)
        return found

    def run(self, session: Session, params: Mapping[str, Any]) -> None:
        """Run the statement with *params* in *session*'s transaction."""
        session.flush()
        connection = session.connection()
        compiled = self.compiled_for(connection.dialect)
        execute_on_cursor(connection, compiled.sql, _arguments(compiled, params))


def _arguments(compiled: _Compiled, params: Mapping[str, Any]) -> Any:
    """Return *params* as the driver takes them for *compiled*: defaults added, bind processors applied, in order."""
    values = {**compiled.defaults, **params}
    for name, process in compiled.binds.items():
        if process is not None:
            values[name] = process(values[name])
    return tuple(values[name] for name in compiled.positional) if compiled.positional is not None else values


def read_ahead(session: Session, prepared: PreparedRead, params: Mapping[str, Any],
               rows: list[tuple[Any, ...]]) -> None:
    """Let *session*'s next run of *prepared* with *params* return *rows* (see :meth:`ReadLease.read_ahead`).

    Only reads on the request's lease take them: in a transaction (a unit of work, the CLI),
    statements read as usual.
    """
    lease: ReadLease | None = getattr(session, "read_lease", None)
    if lease is not None and not session.in_transaction():
        lease.read_ahead(prepared, params, rows)


def _params_key(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


def _processed(fetched: Sequence[Any], results: tuple[tuple[int, Callable[[Any], Any]], ...]) -> tuple[Any, ...]:
    row = list(fetched)
    for index, process in results:
        row[index] = process(row[index])
    return tuple(row)


def execute_on_cursor(connection: Connection, sql: str, parameters: Any = (), *, many: bool = False) -> int:
    """Run *sql* on a DBAPI cursor of *connection* (a statement whose rows nobody reads), as SQLAlchemy would.

    The engine's cursor events fire, driver errors become SQLAlchemy's, and a lost connection is
    invalidated; without SQLAlchemy's execution bookkeeping (~15 µs a statement on SQLite).
    Return the driver's row count (rows an INSERT, UPDATE or DELETE touched; -1 when unknown).
    """
    dbapi_connection = connection.connection.dbapi_connection
    cursor = dbapi_connection.cursor()
    try:
        _execute(connection.dispatch, connection, cursor, sql, parameters, many=many)
    except BaseException as exc:
        _failed(connection.dialect, dbapi_connection, cursor, sql, parameters, exc, connection.invalidate)
        raise
    count: int = cursor.rowcount
    cursor.close()
    return count


def _execute(dispatch: Any, connection: Any, cursor: Any, sql: str, parameters: Any, *, many: bool,
             sent: Any = None) -> None:
    """Send *sql* on *cursor* (as *sent*, its encoded form, when given), firing the engine's cursor events around it
    as SQLAlchemy does."""
    if dispatch.before_cursor_execute:
        dispatch.before_cursor_execute(connection, cursor, sql, parameters, None, many)
    if many:
        cursor.executemany(sql, parameters)
    else:
        cursor.execute(sql if sent is None else sent, parameters)
    if dispatch.after_cursor_execute:
        dispatch.after_cursor_execute(connection, cursor, sql, parameters, None, many)


def _failed(dialect: Dialect, dbapi_connection: Any, cursor: Any, sql: str, parameters: Any, error: BaseException,
            on_lost: Callable[[BaseException], Any]) -> None:
    """Close *cursor* after *error*; raise a driver error as SQLAlchemy's, handing a lost connection to *on_lost*.

    Other errors are left to the caller to re-raise. A lost connection (the dialect's
    ``is_disconnect``) is reported with ``connection_invalidated``, which the app answers with 503;
    *on_lost* closes the DBAPI connection, so the cursor is closed before it.
    """
    driver_error = isinstance(error, dialect.loaded_dbapi.Error)
    try:
        lost = driver_error and dialect.is_disconnect(error, dbapi_connection, cursor)
    finally:
        try:
            cursor.close()
        except dialect.loaded_dbapi.Error:
            pass  # the cursor of a dead connection: the error that matters is the first one
    if not driver_error:
        return
    if lost:
        on_lost(error)
    raise DBAPIError.instance(sql, parameters, error, dialect.loaded_dbapi.Error,
                              connection_invalidated=lost, dialect=dialect) from error


CURSOR_ROWS_AT_MOST = 50
"""Up to this many rows, a :class:`PreparedInsert` sends them on the cursor itself; beyond, through
SQLAlchemy, whose "insertmanyvalues" batches rows into multi-row INSERTs on PostgreSQL (Bulk)."""

_MISSING = object()


@dataclass(frozen=True, slots=True)
class _CompiledInsert:
    sql: str
    positional: bool
    columns: tuple[str, ...]
    binds: tuple[Processor, ...]
    """The bind processor of each column, in ``columns`` order."""


@dataclass(frozen=True, slots=True)
class BoundRows:
    """Rows of a :class:`PreparedInsert`, bound for one dialect (:meth:`PreparedInsert.bind`)."""

    insert: PreparedInsert
    dialect: str
    rows: list[Any]
    """The statement's parameters, one per row (``cursor``), else the rows as given, for ``Session.execute``."""
    cursor: bool


class PreparedInsert:
    """An INSERT of whole rows into one table, run on the DBAPI cursor of the session's transaction.

    A create inserts five rows (user, values, org state, change event, audit record) while it holds
    the write lock (SQLite's one lock; the tenant's event lock on PostgreSQL). Through
    ``Session.execute`` each INSERT cost ~40 µs of SQLAlchemy bookkeeping around a statement of
    ~10 µs on SQLite, time every other writer waits. Here the statement is compiled once per
    dialect with every column of the table but its autoincrement key, a row's missing columns take
    their Python-side defaults (as SQLAlchemy would give them; the tables have no server-side
    ones), and values go through SQLAlchemy's own bind processors. Pending ORM changes are flushed
    first, as ``Session.execute`` would autoflush them; the engine's cursor events fire (with the
    connection, no execution context); driver errors become SQLAlchemy's (``IntegrityError``...),
    and a lost connection is invalidated, as SQLAlchemy does. More than :data:`CURSOR_ROWS_AT_MOST`
    rows go through ``Session.execute``.

    *statement* replaces the plain ``INSERT … VALUES``: an INSERT into *table* that takes one
    parameter per column, named by the column's key (an ``INSERT … SELECT`` that also takes a
    lock, say); one row at a time then (no multi-row form).
    """

    def __init__(self, table: Table, statement: Insert | None = None) -> None:
        self.table = table
        self.statement = statement if statement is not None else insert(table)
        self.single_row = statement is not None
        skipped = table.autoincrement_column
        self.columns = tuple(column for column in table.columns if column is not skipped)
        for column in self.columns:
            if column.server_default is not None:
                raise ValueError(f"{table.name}.{column.key}: server-side defaults are not supported")
            if column.default is not None and not (column.default.is_callable or column.default.is_scalar):
                raise ValueError(f"{table.name}.{column.key}: only scalar and callable defaults are supported")
        self._compiled: dict[str, _CompiledInsert] = {}
        _BUILT.add(self)

    def compiled_for(self, dialect: Dialect) -> _CompiledInsert:
        """Return the statement compiled for *dialect* (once per process)."""
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = self._compile(dialect)
        return compiled

    def run(self, session: Session, rows: Sequence[Mapping[str, Any]], *, conflict: Conflict | None = None) -> int:
        """Insert *rows* (column key → value; missing columns take their defaults) in the session's transaction.

        Return the number of rows the database inserted (see :meth:`send`).
        """
        if not rows:
            return 0
        return self.send(session, self.bind(session.get_bind().dialect, rows), conflict=conflict)

    def bind(self, dialect: Dialect, rows: Sequence[Mapping[str, Any]]) -> BoundRows:
        """Turn *rows* into the statement's parameters for *dialect* now, to :meth:`send` later.

        Defaults and bind processors run here: a create binds its rows before it waits for the
        write lock, and only sends them while it holds it.
        """
        if self.single_row and len(rows) != 1:
            raise ValueError(f"{self.table.name}: this INSERT takes one row at a time, not {len(rows)}")
        if len(rows) > CURSOR_ROWS_AT_MOST:
            return BoundRows(self, dialect.name, list(rows), cursor=False)
        compiled = self.compiled_for(dialect)
        return BoundRows(self, dialect.name, [self._values(compiled, row) for row in rows], cursor=True)

    def send(self, session: Session, bound: BoundRows, *, conflict: Conflict | None = None) -> int:
        """Insert rows bound by :meth:`bind` in the session's transaction.

        Return the number of rows inserted, as the driver counts them (an ``INSERT … SELECT`` may
        insert fewer than it was given; -1 when the driver cannot tell). A constraint the rows
        break raises ``IntegrityError``, or what *conflict* makes of it.

        Inside :func:`inserts_together` (PostgreSQL) the rows are queued instead and sent with the
        write's other INSERTs in one statement, before anything else the write runs: the count
        returned is then the rows given (the statement fails when an ``INSERT … SELECT`` of it
        inserts nothing), and *conflict* applies there.
        """
        if bound.insert is not self:
            raise ValueError(f"rows bound for {bound.insert.table.name}, not {self.table.name}")
        if not bound.rows:
            return 0
        queue: InsertQueue | None = session.info.get(_QUEUE)
        try:
            if not bound.cursor:
                result: Any = session.execute(self.statement, bound.rows)
                return int(result.rowcount)
            session.flush()
            if queue is not None:
                queue.add(bound, conflict)
                return len(bound.rows)
            connection = session.connection()
            dialect = connection.dialect
            if dialect.name != bound.dialect:
                raise ValueError(f"rows bound for {bound.dialect}, sent to {dialect.name}")
            many = len(bound.rows) > 1
            return execute_on_cursor(connection, self._compiled[dialect.name].sql,
                                     bound.rows if many else bound.rows[0], many=many)
        except IntegrityError as exc:
            if conflict is None:
                raise
            raise conflict(exc) from exc

    def _values(self, compiled: _CompiledInsert, row: Mapping[str, Any]) -> Any:
        values = []
        for column, process in zip(self.columns, compiled.binds, strict=True):
            value = row.get(column.key, _MISSING)
            if value is _MISSING:
                value = _default(column)
            values.append(process(value) if process is not None else value)
        if compiled.positional:
            return tuple(values)
        return dict(zip(compiled.columns, values, strict=True))

    def _compile(self, dialect: Dialect) -> _CompiledInsert:
        keys = [column.key for column in self.columns]
        compiled = self.statement.compile(dialect=dialect, column_keys=keys)
        positional = compiled.positiontup is not None
        names = list(compiled.positiontup) if positional else sorted(compiled.binds)
        if names != (keys if positional else sorted(keys)):
            raise ValueError(f"{self.table.name}: parameters {names} are not the columns {keys}")
        binds = tuple(column.type.dialect_impl(dialect).bind_processor(dialect) for column in self.columns)
        return _CompiledInsert(str(compiled), positional, tuple(keys), binds)


# -- a write's INSERTs as one statement (PostgreSQL) -----------------------------------------------

Conflict = Callable[[IntegrityError], Exception]
"""What a constraint that an INSERT breaks becomes (a SCIM ``uniqueness`` error, say)."""

_QUEUE = "scim_bridge.insert_queue"
"""Where a session (``Session.info``) and its write connection (``Connection.info``) keep their open queue."""

_DIVISION_BY_ZERO = "22012"

_SHAPES_KEPT = 64
"""Combined statements kept compiled, by shape (which INSERTs, how many rows each)."""


class InsertQueue:
    """The INSERTs of one write transaction, held back and sent to PostgreSQL as one statement.

    A create inserts its audit record, the user, its values, its org state and its event (the one
    that takes the tenant's lock): five statements, each a round trip to the server (~60 µs of
    the worker's CPU and ~70 µs of the server's each, measured), and with ``BEGIN`` and ``COMMIT``
    seven. Queued here, they go as one statement of data-modifying CTEs
    (``WITH w0 AS (INSERT …), w1 AS (INSERT …), … SELECT 1``), and when nothing else ran
    in the transaction, in autocommit: one round trip for the whole write, atomic as one statement
    is, which holds the tenant's lock only while the server runs it.

    Order is kept: anything else the write sends on its connection (an ORM flush, a read, a lock)
    sends the queue first (:func:`send_queued_first`, an engine listener), so the queued rows are
    in the database before any statement that could depend on them. An ``INSERT … SELECT``
    (:class:`PreparedInsert` with its own statement) that inserts nothing fails the whole statement
    (``LookupError``), as a constraint would; a constraint the statement breaks becomes what the
    offending table's *conflict* makes of it.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.entries: list[tuple[BoundRows, Conflict | None]] = []

    def add(self, bound: BoundRows, conflict: Conflict | None) -> None:
        """Queue *bound* (cursor-bound rows of a :class:`PreparedInsert`).

        One ``INSERT … SELECT`` per statement (their CTEs, the tenant's lock, keep their names):
        a second one sends the queue first.
        """
        if bound.dialect != self.connection.dialect.name:
            raise ValueError(f"rows bound for {bound.dialect}, sent to {self.connection.dialect.name}")
        if bound.insert.single_row and any(queued.insert.single_row for queued, _ in self.entries):
            self.send()
        self.entries.append((bound, conflict))

    def finish(self, session: Session) -> None:
        """Send what is queued at the end of the write: in autocommit when it is the whole write.

        Pending ORM changes are flushed first (which sends the queue ahead of them, in the
        transaction); otherwise, if nothing has been sent in the transaction yet, the queue is the
        whole write and goes as one autocommitted statement (no ``BEGIN``, no ``COMMIT``).
        """
        if not self.entries:
            return
        if session.new or session.dirty or session.deleted:
            session.flush()
        if self.entries:
            dbapi_connection = self.connection.connection.dbapi_connection
            self.send(autocommit=dbapi_connection.info.transaction_status == _idle())

    def send(self, *, autocommit: bool = False) -> None:
        """Send the queued INSERTs now, as one statement (an ``INSERT … SELECT`` that inserts nothing fails it)."""
        entries, self.entries = self.entries, []
        if not entries:
            return
        connection = self.connection
        dialect = connection.dialect
        together = _together(tuple((bound.insert, len(bound.rows)) for bound, _ in entries), dialect)
        arguments = tuple(entries[entry][0].rows[row][key] for entry, row, key in together.order)
        dbapi_connection = connection.connection.dbapi_connection
        if autocommit:
            dbapi_connection.autocommit = True
        try:
            cursor = _raw_cursor()(dbapi_connection)
            try:
                _execute(connection.dispatch, connection, cursor, together.sql, arguments, many=False,
                         sent=together.sent)
            except BaseException as exc:
                _failed(dialect, dbapi_connection, cursor, together.sql, arguments, exc, connection.invalidate)
                raise
            cursor.close()
        except IntegrityError as exc:
            raise _conflict(entries, exc) from exc
        except DataError as exc:
            if getattr(exc.orig, "sqlstate", None) != _DIVISION_BY_ZERO:
                raise
            names = [bound.insert.table.name for bound, _ in entries if bound.insert.single_row]
            raise LookupError(f"{', '.join(names)}: the INSERT … SELECT found no row to insert from "
                              "(its tenant is gone?); nothing was written") from exc
        finally:
            if autocommit and not dbapi_connection.closed:
                dbapi_connection.autocommit = False


@contextmanager
def inserts_together(session: Session, connection: Connection) -> Iterator[InsertQueue | None]:
    """Queue the :class:`PreparedInsert` rows *session* sends on *connection* inside the block (PostgreSQL).

    Yield the queue (``None`` where queueing does not apply: SQLite, whose statements are library
    calls, or an engine without :func:`queue_inserts_on`); the caller sends what is left with
    :meth:`InsertQueue.finish` at the end of its write, before COMMIT. Leaving the block drops
    anything unsent (the write failed and rolls back).
    """
    if connection.dialect not in _QUEUEING:
        yield None
        return
    queue = InsertQueue(connection)
    session.info[_QUEUE] = connection.info[_QUEUE] = queue
    try:
        yield queue
    finally:
        session.info.pop(_QUEUE, None)
        connection.info.pop(_QUEUE, None)


def queue_inserts_on(engine: Engine) -> None:
    """Let writes on *engine* queue their INSERTs (:func:`inserts_together`): psycopg's PostgreSQL only."""
    if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg" and engine.dialect not in _QUEUEING:
        event.listen(engine, "before_cursor_execute", send_queued_first)
        _QUEUEING.add(engine.dialect)


def send_queued_first(conn: Connection | None, _cursor: Any, _statement: str, _parameters: Any, _context: Any,
                      _executemany: bool) -> None:
    """Send a write's queued INSERTs before any other statement on its connection (an engine listener)."""
    if conn is None:
        return  # a request's read lease: no write on it
    queue: InsertQueue | None = conn.info.get(_QUEUE)
    if queue is not None and queue.entries:
        queue.send()


_QUEUEING: weakref.WeakSet[Dialect] = weakref.WeakSet()
"""The dialects of engines with the listener (an engine's ``execution_options`` copies share its dialect)."""


@dataclass(frozen=True, slots=True)
class _Together:
    sql: str
    sent: bytes
    order: tuple[tuple[int, int, str], ...]
    """For each ``$n`` in turn: (queued entry, row of it, column key)."""


_TOGETHER: dict[tuple[str, tuple[tuple[PreparedInsert, int], ...]], _Together] = {}


def _together(shape: tuple[tuple[PreparedInsert, int], ...], dialect: Dialect) -> _Together:
    """Return the one statement inserting *shape*'s rows (built and compiled once per shape)."""
    key = (dialect.name, shape)
    found = _TOGETHER.get(key)
    if found is not None:
        return found
    order: dict[str, tuple[int, int, str]] = {}
    written: list[Any] = []
    checks = []
    for entry, (prepared, rows) in enumerate(shape):
        def named(row: int, column_key: str, type_: Any, entry: int = entry) -> BindParameter[Any]:
            name = f"w{entry}_{row}_{column_key}"
            order[name] = (entry, row, column_key)
            return bindparam(name, type_=type_)

        statement: Insert
        if prepared.single_row:
            def rename(element: Any, named: Callable[..., BindParameter[Any]] = named) -> Any:
                if isinstance(element, BindParameter):
                    return named(0, element.key, element.type)
                return None

            statement = replacement_traverse(prepared.statement, {}, rename)
            # An INSERT … SELECT that finds nothing to insert from divides by zero, which aborts
            # the whole statement (an autocommitted one included): no row of the write stays.
            inserted = statement.returning(literal_column("1")).cte(f"w{entry}")
            checks.append(select(literal_column("1") / func.count()).select_from(inserted).scalar_subquery())
        else:
            # A plain INSERT … VALUES inserts every row or fails the statement: nothing to check.
            inserted = insert(prepared.table).values([{column.key: named(row, column.key, column.type)
                                                       for column in prepared.columns} for row in range(rows)]
                                                     ).cte(f"w{entry}")
        written.append(inserted)
    # Data-modifying CTEs run whether or not the query reads them: add_cte renders them all, in order.
    together = (select(*checks) if checks else select(literal_column("1"))).add_cte(*written)
    compiled = together.compile(dialect=statement_dialect(dialect))
    if compiled.positiontup is None:
        raise ValueError("statements sent together are compiled with numbered parameters")
    sql = str(compiled)
    found = _Together(sql, sql.encode(), tuple(order[name] for name in compiled.positiontup))
    if len(_TOGETHER) >= _SHAPES_KEPT:
        _TOGETHER.clear()
    _TOGETHER[key] = found
    return found


def _conflict(entries: list[tuple[BoundRows, Conflict | None]], error: IntegrityError) -> Exception:
    """Return what the entry whose table *error* names makes of it (*error* itself without a taker)."""
    table = getattr(getattr(error.orig, "diag", None), "table_name", None)
    for bound, conflict in entries:
        if conflict is not None and bound.insert.table.name == table:
            return conflict(error)
    return error


def _idle() -> Any:
    from psycopg.pq import TransactionStatus  # only on psycopg's dialect

    return TransactionStatus.IDLE


def _default(column: Any) -> Any:
    """Return the Python-side default of *column* for a new row (``None`` without one).

    A callable default is called without an execution context (SQLAlchemy wraps zero-argument
    callables to take one; the models' defaults take none).
    """
    default = column.default
    if default is None:
        return None
    return default.arg(None) if default.is_callable else default.arg


_BUILT: weakref.WeakSet[PreparedRead | PreparedInsert | PreparedCommand] = weakref.WeakSet()
"""Every prepared statement built so far (module constants, and those built by cached factories)."""


def compile_all(dialect: Dialect) -> int:
    """Compile every prepared statement built so far for *dialect*; return how many there are.

    Compiling is a first request's work in each process (a few ms per statement); the gunicorn
    master does it once before it forks (``scim_bridge.app.warm_up``), and its workers inherit it.
    """
    built = list(_BUILT)
    for prepared in built:
        prepared.compiled_for(dialect)
    return len(built)
