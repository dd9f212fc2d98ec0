"""Helpers shared by repositories."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Insert
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session


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


def insert_ignoring_conflicts(session: Session, table: Table, rows: list[dict[str, Any]],
                              index_elements: list[str]) -> int:
    """Insert *rows*, skipping those that violate the unique index on *index_elements*; return inserted count.

    The count comes from ``RETURNING``, not ``rowcount``: an executemany's rowcount is -1 on
    psycopg 3 (SQLAlchemy batches it as "insertmanyvalues"), which made an add-only PATCH look
    like no change. RETURNING keeps one statement per batch and counts only the rows inserted.
    """
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    stmt: Insert
    if dialect == "postgresql":
        stmt = postgresql.insert(table).on_conflict_do_nothing(index_elements=index_elements)
    else:
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=index_elements)
    key = next(iter(table.primary_key.columns))
    return len(session.execute(stmt.returning(key), rows).all())


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
