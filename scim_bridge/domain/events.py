"""The per-tenant change log: every change to Infinity-facing state, in order, with a cursor.

Events are appended in the transaction of the SCIM request (or CLI command) that caused them, so
the log and the state never disagree. The event id is the cursor: a consumer reads
``events after <cursor>`` and stores the last id it applied. Delivery (webhooks) is built on this.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Session

from scim_bridge.storage.models import ChangeEvent
from scim_bridge.storage.repositories.orgs import OrgRepository

ORG_CREATED = "org.created"
ORG_RENAMED = "org.renamed"
ORG_REKEYED = "org.rekeyed"
ORG_LINKED = "org.linked"
ORG_ORPHANED = "org.orphaned"
ORG_DELETED = "org.deleted"
USER_PROVISIONED = "user.provisioned"
USER_UPDATED = "user.updated"
USER_DEACTIVATED = "user.deactivated"
USER_REACTIVATED = "user.reactivated"
USER_DELETED = "user.deleted"
MEMBERSHIP_ADDED = "membership.added"
MEMBERSHIP_REMOVED = "membership.removed"
ROLE_CHANGED = "role.changed"
PRIMARY_ORG_CHANGED = "user.primary_org_changed"
PRIMARY_ORG_CONFLICT = "user.primary_org_conflict"


def org_subject(org_pk: uuid.UUID) -> str:
    """Return the subject of an org event (the org's stable id; its org_id may change)."""
    return f"org:{org_pk}"


def user_subject(user_id: uuid.UUID) -> str:
    """Return the subject of a user event."""
    return f"user:{user_id}"


class EventLog:
    """Buffer events of one unit of work and append them, in order, on :meth:`flush`."""

    def __init__(self, session: Session, tenant_id: uuid.UUID, request_id: str | None = None) -> None:
        self._session = session
        self._repository = OrgRepository(session, tenant_id)
        self._request_id = request_id or None
        self._pending: list[dict[str, Any]] = []
        self._locked = False
        self._held = False

    def append(self, type_: str, subject: str, before: dict[str, Any] | None = None,
               after: dict[str, Any] | None = None) -> None:
        """Queue one event; it is written by the next :meth:`flush`."""
        self._pending.append({"type": type_, "subject": subject, "before": before, "after": after,
                              "request_id": self._request_id})

    def flush(self) -> None:
        """Write the queued events (one INSERT), taking the tenant's append lock on first use.

        Inside a savepoint (a Bulk operation) the lock is taken again: rolling a savepoint back
        releases the locks taken in it, so an earlier lock may be gone.
        """
        if not self._pending or self._held:
            return
        if not self._locked or self._session.in_nested_transaction():
            self._repository.lock_and_append_events(self._pending)
            self._locked = True
        else:
            self._repository.append_events(self._pending)
        self._pending = []

    @contextmanager
    def held(self) -> Iterator[None]:
        """Keep the events queued inside the block, flushed or not, until it ends; then write them.

        They are written in the order they were queued, so their cursors are the same as with a
        flush after each change; a block that fails discards them (its changes roll back).
        """
        self._held = True
        try:
            yield
        except BaseException:
            self._held = False
            self.discard()
            raise
        self._held = False
        self.flush()

    def discard(self) -> None:
        """Forget queued events (the change that queued them failed and rolls back)."""
        self._pending = []
        self._locked = False


def read_events(session: Session, tenant_id: uuid.UUID, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    """Return up to *limit* events of the tenant after cursor *after*, oldest first, as dicts."""
    return [to_dict(event) for event in OrgRepository(session, tenant_id).events_after(after, limit)]


def to_dict(event: ChangeEvent) -> dict[str, Any]:
    """Render an event as a JSON-ready dict (the contract of ``scim-bridge events``)."""
    return {
        "cursor": event.id,
        "type": event.type,
        "subject": event.subject,
        "before": event.before,
        "after": event.after,
        "request_id": event.request_id,
        "occurred_at": event.occurred_at.isoformat().replace("+00:00", "Z"),
    }
