"""``totalResults`` without a count when the page itself shows where the result set ends."""

from __future__ import annotations

import pytest

from scim_bridge.domain.query import page_total


@pytest.mark.parametrize(("offset", "count", "found", "counted", "expected", "counts"), [
    (0, 100, 0, 0, 0, False),        # nothing matched: the empty first page is the end
    (0, 100, 1, 7, 1, False),        # userName eq: one row, no count
    (0, 100, 100, 250, 250, True),   # full page: there may be more, count
    (40, 20, 5, 45, 45, False),      # last, partial page: offset + found
    (60, 20, 0, 45, 45, True),       # past the end: the offset says nothing, count
    (40, 20, 20, 60, 60, True),      # full page in the middle
])
def test_page_total(offset, count, found, counted, expected, counts):
    calls = []

    def count_all():
        calls.append(1)
        return counted

    assert page_total(offset, count, found, count_all) == expected
    assert bool(calls) is counts
