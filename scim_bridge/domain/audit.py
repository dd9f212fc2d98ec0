"""The audit log: every write and every credential event, with who, what, outcome and request id.

Records are added to the caller's session so that a write and its audit record commit (or roll
back) together; events of failed requests are written by the caller in a transaction of their own.
The log never holds a secret or a token: callers pass identifiers only, and :func:`scrub` removes
anything shaped like one of our secrets as a second line of defence.

Deviation from the import rules in STYLE.md (``auth`` → storage only): the authorization server in
``auth/`` records credential events here, since audit is a domain concern shared by auth, http and
the CLI, and this module imports nothing but storage.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from scim_bridge.storage.base import utcnow
from scim_bridge.storage.models import AuditEvent
from scim_bridge.storage.prepared import PreparedInsert

SUCCESS = "success"
FAILURE = "failure"

# Credential events.
CLIENT_CREATE = "client.create"
CLIENT_ROTATE_SECRET = "client.rotate_secret"
CLIENT_DISABLE = "client.disable"
CLIENT_ENABLE = "client.enable"
CLIENT_DELETE = "client.delete"
CLIENT_AUTH_FAILED = "client.auth_failed"
TOKEN_CREATE = "token.create"
TOKEN_ISSUE = "token.issue"
TOKEN_REVOKE = "token.revoke"
TOKEN_REJECTED = "token.rejected"

# Anything that looks like a token or client secret of ours (``sbt_``/``sbs_`` + base64url).
_SECRET_SHAPE = re.compile(r"sb[ts]_[A-Za-z0-9_\-]{6,}")


def scrub(text: str | None, limit: int = 255) -> str | None:
    """Return *text* with secret-shaped substrings redacted and NUL characters replaced, cut to *limit* characters.

    PostgreSQL's text cannot hold NUL, and a request may carry one (``PUT /Users/%00``): its
    audit record keeps U+FFFD in its place instead of failing to be written.
    """
    if text is None:
        return None
    return _SECRET_SHAPE.sub("[redacted]", text).replace("\x00", "\ufffd")[:limit]


def record(
    session: Session,
    action: str,
    outcome: str,
    *,
    tenant_id: uuid.UUID | None = None,
    client: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    status: int | None = None,
    detail: str | None = None,
    request_id: str | None = None,
    remote_addr: str | None = None,
    into: list[AuditEvent] | None = None,
    direct: bool = False,
) -> AuditEvent | None:
    """Add one audit event to *session* (it commits with the caller's transaction).

    With *into*, the event is appended there instead, for :func:`insert_all` to write with the
    others (Bulk writes the records of a batch of operations with one INSERT). With *direct*, it
    is inserted at once with a plain INSERT instead of a flush of the ORM, and returns ``None``:
    no mapped object is built (its ``id`` would not be read back anyway).
    """
    values = {
        "occurred_at": utcnow(),
        "tenant_id": tenant_id,
        "client": scrub(client, 128),
        "action": action,
        "resource_type": resource_type,
        "resource_id": scrub(resource_id),
        "outcome": outcome,
        "status": status,
        "detail": scrub(detail),
        "request_id": request_id or None,
        "remote_addr": (remote_addr or None) and remote_addr[:64],
    }
    if direct:
        _INSERT.run(session, [values])
        return None
    event = AuditEvent(**values)
    if into is not None:
        into.append(event)
        return event
    session.add(event)
    session.flush()
    return event


def insert_all(session: Session, events: list[AuditEvent]) -> None:
    """Insert events collected by ``record(..., into=...)`` with one statement (their ids are not read back)."""
    _INSERT.run(session, [{key: getattr(event, key) for key in _COLUMNS} for event in events])


_INSERT = PreparedInsert(AuditEvent.__table__)
_COLUMNS = tuple(column.key for column in _INSERT.columns)


def record_scim_write(
    session: Session,
    tenant_id: uuid.UUID,
    client: str,
    action: str,
    resource_type: str,
    resource_id: str | None,
    outcome: str,
    request_id: str | None,
    *,
    status: int | None = None,
    detail: str | None = None,
    into: list[AuditEvent] | None = None,
    direct: bool = False,
) -> AuditEvent | None:
    """Record one SCIM write (``create``/``replace``/``patch``/``delete``/``bulk``) of a resource."""
    return record(session, f"{resource_type.lower()}.{action}", outcome, tenant_id=tenant_id, client=client,
                  resource_type=resource_type, resource_id=resource_id, status=status, detail=detail,
                  request_id=request_id, into=into, direct=direct)


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which events to read (every field optional except the tenant)."""

    tenant_id: uuid.UUID
    action: str | None = None
    outcome: str | None = None
    client: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None


def query(session: Session, flt: AuditFilter, limit: int = 100) -> list[AuditEvent]:
    """Return up to *limit* events matching *flt*, newest first (page on with ``before_id``)."""
    stmt = select(AuditEvent).where(AuditEvent.tenant_id == flt.tenant_id)
    if flt.action:
        # "user" matches "user.create", "user.delete", ...; "user.create" matches itself.
        stmt = stmt.where((AuditEvent.action == flt.action) | AuditEvent.action.startswith(flt.action + "."))
    if flt.outcome:
        stmt = stmt.where(AuditEvent.outcome == flt.outcome)
    if flt.client:
        stmt = stmt.where(AuditEvent.client == flt.client)
    if flt.resource_type:
        stmt = stmt.where(AuditEvent.resource_type == flt.resource_type)
    if flt.resource_id:
        stmt = stmt.where(AuditEvent.resource_id == flt.resource_id)
    if flt.since:
        stmt = stmt.where(AuditEvent.occurred_at >= flt.since)
    if flt.until:
        stmt = stmt.where(AuditEvent.occurred_at < flt.until)
    if flt.before_id:
        stmt = stmt.where(AuditEvent.id < flt.before_id)
    stmt = stmt.order_by(AuditEvent.id.desc()).limit(limit)
    return list(session.scalars(stmt))


def tail(session: Session, tenant_id: uuid.UUID, limit: int = 50, action: str | None = None) -> list[AuditEvent]:
    """Return the last *limit* events of a tenant, oldest first (like ``tail``)."""
    return list(reversed(query(session, AuditFilter(tenant_id, action=action), limit)))


def to_dict(event: AuditEvent) -> dict[str, object]:
    """Render an event as plain JSON-ready values."""
    return {
        "id": event.id,
        "time": event.occurred_at.isoformat(),
        "tenant_id": str(event.tenant_id) if event.tenant_id else None,
        "client": event.client,
        "action": event.action,
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "outcome": event.outcome,
        "status": event.status,
        "detail": event.detail,
        "request_id": event.request_id,
        "remote_addr": event.remote_addr,
    }
