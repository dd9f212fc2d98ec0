"""Audited writes: a unit of work whose success and failure both land in the audit log."""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from scim_bridge.auth import TokenContext
from scim_bridge.domain import audit
from scim_bridge.http import context
from scim_bridge.http.request_log import request_id
from scim_bridge.scim.errors import ScimError
from scim_bridge.storage.session import unit_of_work

log = logging.getLogger("scim_bridge.audit")


@dataclass(slots=True)
class AuditedWrite:
    """The resource a write touches; set ``resource_id`` once it is known (after a create)."""

    resource_id: str | None = None
    prepared: Any = None
    """What the ``prepare`` step of :func:`audited_write` returned."""


@contextmanager
def audited_write(action: str, resource_type: str, resource_id: str | None = None,
                  prepare: Callable[[], Any] | None = None, *, inserts_together: bool = False
                  ) -> Iterator[AuditedWrite]:
    """Run one SCIM write in a unit of work and audit it.

    On success the audit record commits in the same transaction as the write. On failure the
    write rolls back and the failure is recorded in a transaction of its own (status and
    ``scimType`` only: error details may quote request data). Bulk records its operations
    itself, inside its savepoints, with :func:`audit.record_scim_write`.

    *prepare* runs first, before the unit of work begins, and its result is ``write.prepared``:
    checking and building what the write needs (validation, reads, password hashing) outside
    the transaction keeps it out of the time the write holds its locks (SQLite's one write lock,
    the tenant's event lock on PostgreSQL), which every other writer waits on. Its failures are
    audited like the write's. A prepared result with a ``resource_id`` (a new user's) names the
    resource of the write.

    When the resource is known before the write runs, its success record is inserted first:
    on PostgreSQL that is before the write takes the tenant's event lock, which it then holds
    for one round trip less. The record rolls back with a write that fails, as before.
    *inserts_together*: see :func:`~scim_bridge.storage.session.unit_of_work` (the record is
    one of the INSERTs sent together).
    """
    token = context.tenant()
    write = AuditedWrite(resource_id)
    try:
        if prepare is not None:
            write.prepared = prepare()
            if write.resource_id is None:
                write.resource_id = getattr(write.prepared, "resource_id", None)
        with unit_of_work(inserts_together=inserts_together) as session:
            early = write.resource_id is not None
            if early:
                _record_success(session, token, action, resource_type, write.resource_id)
            yield write
            if not early:
                _record_success(session, token, action, resource_type, write.resource_id)
    except Exception as exc:
        status = exc.status if isinstance(exc, ScimError) else None
        detail = (exc.scim_type if isinstance(exc, ScimError) else None) or type(exc).__name__
        try:
            with unit_of_work() as session:
                audit.record_scim_write(session, token.tenant_id, token.actor, action, resource_type,
                                        write.resource_id, audit.FAILURE, request_id(), status=status,
                                        detail=detail)
        except Exception:  # the original error matters more than its audit record
            log.exception("could not record a failed %s of a %s", action, resource_type)
        raise


def _record_success(session: Session, token: TokenContext, action: str, resource_type: str,
                    resource_id: str | None) -> None:
    audit.record_scim_write(session, token.tenant_id, token.actor, action, resource_type, resource_id,
                            audit.SUCCESS, request_id(), direct=True)
