"""The per-process batching in front of the shared rate-limit counters (``ratelimit.BatchedCounter``).

The database is replaced by a dict shared by several counters, each standing for one gunicorn
worker, with the same semantics as ``ratelimit.increment`` (fixed windows, add n, return the count).
"""

from __future__ import annotations

import random

import pytest

from scim_bridge.auth import ratelimit


class SharedStore:
    """The ``rate_limit_counters`` table: one row per key with its window and count."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[int, int]] = {}
        self.writes = 0

    def flusher(self, key: str, window_seconds: int = 60):
        def flush(hits: int, moment: float) -> tuple[int, int]:
            self.writes += 1
            window = int(moment // window_seconds) * window_seconds
            start, count = self.rows.get(key, (window, 0))
            if start < window:
                start, count = window, 0
            self.rows[key] = (start, count + hits)
            return count + hits, start
        return flush


def test_small_limits_are_counted_exactly_on_every_hit():
    store, counter = SharedStore(), ratelimit.BatchedCounter()
    decisions = [counter.hit("db", "k", 5, store.flusher("k"), now=1000.0 + i * 0.001).allowed for i in range(7)]
    assert decisions == [True] * 5 + [False] * 2
    assert store.writes == 7 and store.rows["k"][1] == 7


def test_far_from_the_limit_hits_are_written_in_batches():
    store, counter = SharedStore(), ratelimit.BatchedCounter()
    limit = 6000  # batches of 60
    for i in range(600):
        assert counter.hit("db", "k", limit, store.flusher("k"), now=1200.0 + i * 0.0001).allowed
    # The first hit of the window is written at once (to learn the shared count), then every 60th.
    assert store.writes == 1 + 599 // 60
    assert store.rows["k"][1] == 1 + 60 * (599 // 60)


def test_a_second_passing_writes_pending_hits():
    store, counter = SharedStore(), ratelimit.BatchedCounter()
    counter.hit("db", "k", 6000, store.flusher("k"), now=1200.0)
    counter.hit("db", "k", 6000, store.flusher("k"), now=1200.5)
    assert store.rows["k"][1] == 1
    counter.hit("db", "k", 6000, store.flusher("k"), now=1201.2)
    assert store.rows["k"][1] == 3


def test_near_the_limit_every_hit_is_written_and_the_limit_holds():
    store, counter = SharedStore(), ratelimit.BatchedCounter()
    limit = 1000
    allowed = sum(counter.hit("db", "k", limit, store.flusher("k"), now=1800.0 + i * 1e-5).allowed
                  for i in range(1500))
    assert allowed == limit  # one process: exact
    assert store.rows["k"][1] == 1500  # refused hits count too, as with ratelimit.hit


@pytest.mark.parametrize("workers", [2, 5, 9])
def test_several_workers_overshoot_by_at_most_one_batch_each(workers):
    store = SharedStore()
    counters = [ratelimit.BatchedCounter() for _ in range(workers)]
    limit, rng = 6000, random.Random(workers)
    allowed = 0
    for i in range(9000):
        counter = rng.choice(counters)
        allowed += counter.hit("db", "k", limit, store.flusher("k"), now=2400.0 + i * 1e-5).allowed
    batch = int(limit * ratelimit.BATCH_FRACTION)
    assert limit <= allowed <= limit + workers * batch


def test_a_new_window_starts_from_zero_and_drops_the_old_pending_hits():
    store, counter = SharedStore(), ratelimit.BatchedCounter()
    for i in range(30):
        counter.hit("db", "k", 6000, store.flusher("k"), now=3000.0 + i * 0.001)
    decision = counter.hit("db", "k", 6000, store.flusher("k"), now=3060.5)
    assert decision.allowed and decision.count == 1 and decision.retry_after == 60
    assert store.rows["k"] == (3060, 1)


def test_keys_and_databases_are_counted_apart():
    store, counter = SharedStore(), ratelimit.BatchedCounter()
    hits = [counter.hit("db1", "a", 2, store.flusher("a"), now=4000.0).allowed for _ in range(3)]
    assert hits == [True, True, False]
    assert counter.hit("db1", "b", 2, store.flusher("b"), now=4000.0).allowed
    assert counter.hit("db2", "a", 2, SharedStore().flusher("a"), now=4000.0).allowed


def test_limit_zero_is_off():
    store, counter = SharedStore(), ratelimit.BatchedCounter()
    assert counter.hit("db", "k", 0, store.flusher("k")).allowed and store.writes == 0
