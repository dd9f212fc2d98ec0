"""Resource ids: UUID version 7 (RFC 9562), time-ordered, with random bits."""

from __future__ import annotations

import time
import uuid

from scim_bridge.storage import base
from scim_bridge.storage.base import new_id


def test_ids_are_version_7_with_the_rfc_variant():
    for _ in range(1000):
        made = new_id()
        assert made.version == 7 and made.variant == uuid.RFC_4122


def test_the_first_48_bits_are_the_creation_time_in_milliseconds():
    before = time.time_ns() // 1_000_000
    made = new_id()
    after = time.time_ns() // 1_000_000
    assert before <= made.int >> 80 <= after


def test_ids_of_later_milliseconds_sort_after_and_ids_are_unique(monkeypatch):
    now = [1_764_000_000_000_000_000]
    monkeypatch.setattr(base.time, "time_ns", lambda: now[0])
    first = [new_id() for _ in range(500)]
    now[0] += 1_000_000  # one millisecond later
    second = [new_id() for _ in range(500)]
    assert max(first) < min(second)
    assert len(set(first + second)) == 1000  # 74 random bits within one millisecond


def test_the_random_bits_vary():
    ids = [new_id() for _ in range(200)]
    random_parts = {(made.int >> 64 & 0xFFF, made.int & (1 << 62) - 1) for made in ids}
    assert len(random_parts) == 200
