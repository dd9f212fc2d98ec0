"""Values serialized ahead of the response: large member lists and list pages are rendered as JSON by the database.

A :class:`RenderedArray` stands in a resource dict where a list would be, and the response writer
splices its text into the body, so that ``members`` of a large group never exists as Python dicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RenderedArray:
    """A JSON array whose elements are already JSON texts (compact, UTF-8, no ASCII escaping).

    Only put one where the projection keeps every element whole (``Projection.wants_whole``):
    projection cannot trim sub-attributes out of text.
    """

    items: Sequence[str]

    def __len__(self) -> int:
        """Return the number of elements."""
        return len(self.items)

    def to_json(self) -> str:
        """Return the array's JSON text."""
        return "[" + ",".join(self.items) + "]"


@dataclass(frozen=True, slots=True)
class RenderedObject:
    """A JSON value already serialized (compact, UTF-8, no ASCII escaping): a whole resource, say."""

    text: str

    def to_json(self) -> str:
        """Return the value's JSON text."""
        return self.text
