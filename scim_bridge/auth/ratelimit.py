"""Fixed-window counters in the database, shared by every gunicorn worker and instance.

One ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` per request and key: the row of a key holds
the start of its current window and the count in it, so no process keeps state and no cleanup job
is needed for credential keys. Keys by remote address are pruned now and then.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from scim_bridge.storage.models import RateLimitCounter

PRUNE_PROBABILITY = 0.01
PRUNE_AFTER_SECONDS = 86_400

# Epoch seconds; tests pin it so that no window ends in the middle of a test.
clock: Callable[[], float] = time.time


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of counting one request against a limit."""

    allowed: bool
    count: int
    retry_after: int


def hit(session: Session, key: str, limit: int, window_seconds: int = 60, now: float | None = None) -> Decision:
    """Count one request for *key* and tell whether it is within *limit* per window (0 = unlimited)."""
    if limit <= 0:
        return Decision(True, 0, 0)
    moment = clock() if now is None else now
    count, window_start = increment(session, key, window_seconds, moment)
    retry_after = max(1, math.ceil(window_start + window_seconds - moment))
    return Decision(count <= limit, count, retry_after)


def increment(session: Session, key: str, window_seconds: int, now: float | None = None) -> tuple[int, int]:
    """Add one to *key*'s counter in the current window; return the new count and the window start."""
    moment = clock() if now is None else now
    window = int(moment // window_seconds) * window_seconds
    table = RateLimitCounter.__table__
    insert = (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(table)
    insert = insert.values(key=key[:200], window_start=window, count=1)
    # A counter whose window is over starts again at 1; a newer window (clock skew) is kept.
    current = table.c.window_start >= insert.excluded.window_start
    stmt = insert.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "count": case((current, table.c.count + 1), else_=1),
            "window_start": case((current, table.c.window_start), else_=insert.excluded.window_start),
        },
    ).returning(table.c.count, table.c.window_start)
    count, window_start = session.execute(stmt).one()
    if count == 1 and random.random() < PRUNE_PROBABILITY:
        prune(session, moment - PRUNE_AFTER_SECONDS)
    return int(count), int(window_start)


def peek(session: Session, key: str, window_seconds: int, now: float | None = None) -> int:
    """Return *key*'s count in the current window without counting (0 when none)."""
    moment = clock() if now is None else now
    window = int(moment // window_seconds) * window_seconds
    stmt = select(RateLimitCounter.count).where(RateLimitCounter.key == key[:200],
                                                RateLimitCounter.window_start >= window)
    return int(session.scalars(stmt).first() or 0)


def prune(session: Session, before: float) -> int:
    """Delete counters whose window started before *before* (epoch seconds); return how many."""
    stmt = delete(RateLimitCounter).where(RateLimitCounter.window_start < int(before))
    return int(session.execute(stmt.execution_options(synchronize_session=False)).rowcount or 0)  # type: ignore[attr-defined]
