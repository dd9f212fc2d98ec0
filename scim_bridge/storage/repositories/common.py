"""Helpers shared by repositories."""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import Insert
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal


def parse_id(value: str | uuid.UUID | None) -> uuid.UUID | None:
    """Return *value* as a UUID, or ``None`` when it is not one (an unknown id, to the client)."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def dialect_name(session: Session) -> str:
    """Return the name of the database dialect *session* talks to (``sqlite``, ``postgresql``)."""
    bind = session.bind if session.bind is not None else session.get_bind()
    return bind.dialect.name


def insert_ignoring_conflicts(session: Session, table: Table, rows: list[dict[str, Any]],
                              index_elements: list[str]) -> int:
    """Insert *rows*, skipping those that violate the unique index on *index_elements*; return inserted count.

    The count comes from ``RETURNING``, not ``rowcount``: an executemany's rowcount is -1 on
    psycopg 3 (SQLAlchemy batches it as "insertmanyvalues"), which made an add-only PATCH look
    like no change. RETURNING keeps one statement per batch and counts only the rows inserted.
    """
    if not rows:
        return 0
    statement = ignoring_conflicts(dialect_name(session), table, tuple(index_elements))
    return len(session.execute(statement, rows).all())


@cache
def ignoring_conflicts(dialect: str, table: Table, index_elements: tuple[str, ...]) -> Insert:
    """Return ``INSERT INTO table … ON CONFLICT (index_elements) DO NOTHING RETURNING <primary key>``.

    Built once per dialect, table and conflict target (building costs about as much as running);
    ``.from_select(...)`` on it gives the ``INSERT … SELECT`` form.
    """
    stmt = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return stmt.on_conflict_do_nothing(index_elements=list(index_elements)).returning(
        next(iter(table.primary_key.columns)))


CHUNK = 1000
"""Largest IN-list sent in one statement (PostgreSQL and SQLite both cap bound parameters)."""


def chunked(items: Any, size: int = CHUNK) -> Any:
    """Yield successive lists of at most *size* items."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class unindexed(ColumnElement[Any]):  # noqa: N801 - reads as a SQL function in a where clause
    """A column the SQLite planner must not use an index for (``+column``); plain SQL elsewhere.

    SQLite has no statistics unless ``ANALYZE`` runs (the service never runs it), and then prefers
    an index with an equality on ``tenant_id`` over a lookup by a list of ids: ``tenant_id = ? AND
    id IN (…)`` walked every row of the tenant (``ix_users_tenant_created``) instead of looking the
    ids up by primary key, which made adding one member to a group, or a /Bulk batch, cost O(users
    of the tenant). Wrapping the tenant column keeps the tenant check in the statement and leaves
    the index choice to the id. SQLite documents the unary ``+`` as a no-op on any value, for this use.
    """

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type


@compiles(unindexed)
def _unindexed_plain(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.column, **kw)
