"""Search across resource types (``POST /.search`` at the root, RFC 7644 §3.4.3)."""

from __future__ import annotations

import dataclasses
from typing import Any
from typing import Protocol

from scim_bridge.domain.query import ListQuery
from scim_bridge.domain.query import ListResult
from scim_bridge.scim.errors import InvalidFilter
from scim_bridge.scim.rendered import RenderedObject


class Searchable(Protocol):
    """A service that can list its resources."""

    def list(self, query: ListQuery) -> ListResult: ...


class RootSearch:
    """Users first, then Groups, paged as one sequence.

    A filter that names an attribute one resource type lacks matches nothing of that type; it is
    an error only when no type knows the attribute.
    """

    def __init__(self, *services: Searchable) -> None:
        self._services = services

    def run(self, query: ListQuery) -> ListResult:
        """Return one page of the combined results."""
        totals: list[tuple[Searchable, int]] = []
        first_error: InvalidFilter | None = None
        for service in self._services:
            try:
                totals.append((service, service.list(dataclasses.replace(query, count=0)).total))
            except InvalidFilter as exc:
                first_error = first_error or exc
        if not totals and first_error is not None:
            raise first_error
        total = sum(t for _, t in totals)
        skip, remaining = query.start_index - 1, query.count
        resources: list[dict[str, Any] | RenderedObject] = []
        for service, type_total in totals:
            if remaining <= 0:
                break
            if skip >= type_total:
                skip -= type_total
                continue
            page = service.list(dataclasses.replace(query, start_index=skip + 1, count=remaining))
            resources.extend(page.resources)
            remaining -= len(page.resources)
            skip = 0
        return ListResult(total, query.start_index, resources)
