"""Fixed-window counters in the database, shared by every gunicorn worker and instance.

One ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` per write and key: the row of a key holds the
start of its current window and the count in it, so no cleanup job is needed for credential keys.
Keys by remote address are pruned now and then.

Refusals and token-endpoint limits write on every request (:func:`hit`). Accepted SCIM requests,
the bulk of the traffic, go through :class:`BatchedCounter`: each process adds its hits to the
shared row in batches, so that a read does not become a write transaction (on SQLite, a
``BEGIN IMMEDIATE`` that every worker queues for).
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


def increment(session: Session, key: str, window_seconds: int, now: float | None = None,
              by: int = 1) -> tuple[int, int]:
    """Add *by* to *key*'s counter in the current window; return the new count and the window start."""
    moment = clock() if now is None else now
    window = int(moment // window_seconds) * window_seconds
    table = RateLimitCounter.__table__
    insert = (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(table)
    insert = insert.values(key=key[:200], window_start=window, count=by)
    # A counter whose window is over starts again; a newer window (clock skew) is kept.
    current = table.c.window_start >= insert.excluded.window_start
    stmt = insert.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "count": case((current, table.c.count + insert.excluded.count), else_=insert.excluded.count),
            "window_start": case((current, table.c.window_start), else_=insert.excluded.window_start),
        },
    ).returning(table.c.count, table.c.window_start)
    count, window_start = session.execute(stmt).one()
    if count == by and random.random() < PRUNE_PROBABILITY:
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


BATCH_FRACTION = 0.01
"""A process writes its pending hits once they reach this fraction of the limit (at least 1)..."""
SYNC_INTERVAL_S = 1.0
"""...or once this long has passed since it last wrote..."""
EXACT_FROM = 0.9
"""...and on every hit once the shared count it knows is past this fraction of the limit."""
MAX_TALLIES = 10_000


@dataclass(slots=True)
class _Tally:
    window: int
    shared: int = 0
    """The shared count as of this process's last write (its own hits included)."""
    pending: int = 0
    """Hits counted here since then, not yet in the database."""
    synced_at: float = float("-inf")


Flush = Callable[[int, float], tuple[int, int]]
"""Add ``n`` hits at time ``t`` to the shared counter in a transaction; return (count, window start)."""


class BatchedCounter:
    """A per-process front for the shared fixed-window counters of high-volume keys.

    Each hit is counted in memory first; the process adds its pending hits to the database row when
    they reach ``BATCH_FRACTION`` of the limit, when ``SYNC_INTERVAL_S`` has passed, on its first
    hit of a window, and on every hit once the credential is within ``1 - EXACT_FROM`` of its
    limit. Far from the limit a request therefore costs no write; near it, counting is exact as
    with :func:`hit`. The shared count can lag behind the truth by at most one batch per process
    (1% of the limit per gunicorn worker, and hits of a worker that dies before writing): that is
    the slack of the limit. Limits under 200 per window are counted exactly (a batch of one).
    Pending hits are kept per process only until they are written, never beyond their window, so no
    other process or instance needs them.
    """

    def __init__(self) -> None:
        self._tallies: dict[tuple[object, str], _Tally] = {}

    def hit(self, scope: object, key: str, limit: int, flush: Flush, window_seconds: int = 60,
            now: float | None = None) -> Decision:
        """Count one request for *key* (in the database named by *scope*) against *limit* per window."""
        if limit <= 0:
            return Decision(True, 0, 0)
        moment = clock() if now is None else now
        window = int(moment // window_seconds) * window_seconds
        tally = self._tallies.get((scope, key))
        if tally is None or tally.window != window:
            # A new window: hits still pending from the last one belong to a window that is over.
            if len(self._tallies) >= MAX_TALLIES:
                self._forget_before(window)
            tally = self._tallies[(scope, key)] = _Tally(window)
        tally.pending += 1
        estimate = tally.shared + tally.pending
        window_start = window
        if (tally.pending >= max(1, int(limit * BATCH_FRACTION)) or moment - tally.synced_at >= SYNC_INTERVAL_S
                or estimate >= limit * EXACT_FROM):
            estimate, window_start = flush(tally.pending, moment)
            tally.shared, tally.pending, tally.synced_at = estimate, 0, moment
        retry_after = max(1, math.ceil(window_start + window_seconds - moment))
        return Decision(estimate <= limit, estimate, retry_after)

    def _forget_before(self, window: int) -> None:
        for stale in [k for k, t in self._tallies.items() if t.window < window]:
            del self._tallies[stale]

    def clear(self) -> None:
        """Forget every pending hit (tests)."""
        self._tallies.clear()


credentials = BatchedCounter()
"""The counter of accepted SCIM requests per credential, one per process."""
