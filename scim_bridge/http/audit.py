"""Audited writes: a unit of work whose success and failure both land in the audit log."""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

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
                  prepare: Callable[[], Any] | None = None) -> Iterator[AuditedWrite]:
    """Run one SCIM write in a unit of work and audit it.

    On success the audit record commits in the same transaction as the write. On failure the
    write rolls back and the failure is recorded in a transaction of its own (status and
    ``scimType`` only: error details may quote request data). Bulk records its operations
    itself, inside its savepoints, with :func:`audit.record_scim_write`.

    *prepare* runs first, before the unit of work begins, and its result is ``write.prepared``:
    checking and building what the write needs (validation, reads, password hashing) outside
    the transaction keeps it out of the time the write holds its locks (SQLite's one write lock,
    the tenant's event lock on PostgreSQL), which every other writer waits on. Its failures are
    audited like the write's.
    """
    token = context.tenant()
    write = AuditedWrite(resource_id)
    try:
        if prepare is not None:
            write.prepared = prepare()
        with unit_of_work() as session:
            yield write
            audit.record_scim_write(session, token.tenant_id, token.actor, action, resource_type,
                                    write.resource_id, audit.SUCCESS, request_id(), direct=True)
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
