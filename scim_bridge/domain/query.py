"""List/search requests (RFC 7644 §3.4.2) as a typed value, independent of HTTP."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from scim_bridge.scim import schema as s
from scim_bridge.scim.filter.ast import AttrPath
from scim_bridge.scim.filter.ast import Filter
from scim_bridge.scim.projection import Projection
from scim_bridge.scim.rendered import RenderedArray
from scim_bridge.scim.rendered import RenderedObject


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A parsed list or ``.search`` request."""

    filter: Filter | None = None
    sort_by: AttrPath | None = None
    descending: bool = False
    start_index: int = 1
    count: int = 100
    attributes: list[AttrPath] = field(default_factory=list)
    excluded_attributes: list[AttrPath] = field(default_factory=list)

    def projection(self, resource_type: s.ResourceType) -> Projection:
        """Return the response projection for *resource_type*."""
        return Projection.build(resource_type, self.attributes, self.excluded_attributes)


@dataclass(frozen=True, slots=True)
class ListResult:
    """One page of results and the total number of matches."""

    total: int
    start_index: int
    resources: list[dict[str, Any] | RenderedObject]
    """Resource dicts, or resources the database rendered as text (users of a default-projection page)."""

    def to_scim(self) -> dict[str, Any]:
        """Render as a ListResponse (RFC 7644 §3.4.2); paging fields are JSON integers.

        A page of resources that are all text already (users of a default-projection page) goes
        to the response writer as one array of texts: spliced once, not once per resource (~25 µs
        instead of ~90-125 µs for a 100-user page in-process).
        """
        texts = [r.text for r in self.resources if type(r) is RenderedObject]
        resources = RenderedArray(texts) if texts and len(texts) == len(self.resources) else self.resources
        return {
            "schemas": [s.LIST_RESPONSE_SCHEMA],
            "totalResults": self.total,
            "startIndex": self.start_index,
            "itemsPerPage": len(self.resources),
            "Resources": resources,
        }


def page_total(offset: int, count: int, found: int, count_all: Callable[[], int]) -> int:
    """Return ``totalResults`` for a page of *found* rows read at *offset* with limit *count*.

    A page that is not full is the end of the result set, so the total is known without counting,
    unless it is empty past the start (then the offset may be beyond the end). Filters such as
    ``userName eq`` (0 or 1 rows) thus cost one statement, not two; a full page still counts.
    """
    if found < count and (found > 0 or offset == 0):
        return offset + found
    return count_all()
