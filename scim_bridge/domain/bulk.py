"""Bulk operations (RFC 7644 §3.7): run the operations of one BulkRequest.

**Transactions.** The whole request is one database transaction (the caller's unit of work), and
each operation runs in a SAVEPOINT of its own (``session.begin_nested()``). An operation that
fails rolls back to its savepoint, so it leaves nothing behind, while the operations that
succeeded commit together when the request ends. This is what RFC 7644 §3.7 asks ("continue
performing as many changes as possible and disregard partial failures") without paying a commit
per operation; both SQLite and PostgreSQL support savepoints. The price: on SQLite the request
holds the write lock (``BEGIN IMMEDIATE``) until it ends, so other writers queue behind a large
bulk, and an unexpected (non-SCIM) error fails the whole request and rolls everything back.
For speed, consecutive independent operations share one savepoint while nothing fails; when one
fails, that group is rolled back and run again one savepoint per operation, so the outcome is
exactly the per-operation one (see :meth:`BulkService.execute_together`).

**bulkId references** (RFC 7644 §3.7.2). ``"bulkId:x"`` may appear as any value of ``data``, in a
quoted filter value of a PATCH path, or as the id in ``path``; each is replaced by the id of the
resource that the POST with ``bulkId`` ``x`` created. Operations run in request order, except
that an operation referring to a bulkId created *later* waits until that POST has run (then runs
at once). What can never run fails on its own: a bulkId that no POST defines is 400
``invalidValue``; one whose POST failed is 409; a cycle (A refers to B, B to A, or a POST to
itself) is 409 (RFC 7644 §3.7.1 lets the server give up on circular references that way).

Results are returned in request order. ``failOnErrors`` stops processing after that many failed
operations; the operations not run are absent from the response (RFC 7644 §3.7.3).
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.orm import SessionTransaction

from scim_bridge.domain import audit
from scim_bridge.domain.errors import InvalidValue
from scim_bridge.domain.errors import NotFound
from scim_bridge.domain.groups import GroupService
from scim_bridge.domain.users import UserService
from scim_bridge.scim.bulk import BulkOperation
from scim_bridge.scim.bulk import BulkRequest
from scim_bridge.scim.bulk import MethodNotAllowed
from scim_bridge.scim.bulk import OperationResult
from scim_bridge.scim.bulk import UnresolvedReference
from scim_bridge.scim.bulk import substitute
from scim_bridge.scim.errors import ScimError
from scim_bridge.scim.etag import weak_etag
from scim_bridge.storage.models import AuditEvent

_ACTIONS = {"POST": "create", "PUT": "replace", "PATCH": "patch", "DELETE": "delete"}
_SUCCESS = {"POST": 201, "PUT": 200, "PATCH": 200, "DELETE": 204}
_MAX_TOGETHER = 100
"""Most operations run in one shared savepoint (see :meth:`BulkService.execute_together`)."""


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Who sends the bulk request, for the audit record of each operation."""

    tenant_id: uuid.UUID
    client: str
    request_id: str


class BulkService:
    """Run BulkRequests of one tenant through its user and group services; the caller commits."""

    def __init__(self, session: Session, users: UserService, groups: GroupService, base_url: str,
                 audit_context: AuditContext | None = None) -> None:
        self._session = session
        self._services: dict[str, UserService | GroupService] = {"Users": users, "Groups": groups}
        self._base_url = base_url
        self._audit = audit_context

    def run(self, request: BulkRequest) -> list[OperationResult]:
        """Run the operations (see the module docstring for order and failures); return their results."""
        return _Run(self, request).execute()

    def execute(self, op: BulkOperation, resolved: dict[str, str]) -> tuple[OperationResult, str | None]:
        """Run one operation in its own savepoint; return its result and the id it created or targeted."""
        try:
            endpoint, resource_id = self._route(op, resolved)
        except ScimError as error:
            return self.reject(op, error), None
        try:
            with self._session.begin_nested():
                version, resource_id = self._apply(self._services[endpoint], op, resource_id, resolved)
        except ScimError as error:
            self._record(op, endpoint, resource_id, error)
            location = f"{self._base_url}/{endpoint}/{resource_id}" if resource_id else None
            return OperationResult(op.index, op.method, op.bulk_id, error.status, location, error=error), None
        return self._succeeded(op, endpoint, resource_id, version), resource_id

    def execute_together(self, ops: list[BulkOperation],
                         resolved: dict[str, str]) -> list[tuple[OperationResult, str | None]] | int:
        """Run *ops* in one shared savepoint; return their results, or the position of the first failure.

        On a failure everything *ops* did is rolled back, so the caller can run them again one
        savepoint each and get exactly the per-operation outcome; when nothing fails (the common
        case: seeding users) this saves two statements (SAVEPOINT, RELEASE) per operation.
        """
        if all(op.method == "POST" and op.path == "/Users" for op in ops):
            return self._create_users_together(ops, resolved)
        done: list[tuple[OperationResult, str | None]] = []
        with self._shared_savepoint() as nested:
            for position, op in enumerate(ops):
                try:
                    endpoint, resource_id = self._route(op, resolved)
                    version, resource_id = self._apply(self._services[endpoint], op, resource_id, resolved)
                except ScimError:
                    nested.rollback()
                    return position
                done.append((self._succeeded(op, endpoint, resource_id, version), resource_id))
        return done

    def _create_users_together(self, ops: list[BulkOperation],
                               resolved: dict[str, str]) -> list[tuple[OperationResult, str | None]] | int:
        """Run user creations as :meth:`execute_together` does, writing their rows in batches.

        :meth:`UserService.create_together` checks uniqueness for all of them with one query and
        writes each table (users, values, org states, events) with one statement per batch;
        their audit records follow with one more. The outcome is the same as one by one.
        """
        users = self._services["Users"]
        assert isinstance(users, UserService)
        with self._shared_savepoint() as nested:
            try:
                created = users.create_together([substitute(op.data, resolved) if op.references else op.data
                                                  for op in ops])
            except ScimError:
                # A concurrent request took a userName or externalId of the batch after our check:
                # run the batch again one operation at a time, which finds out which one.
                nested.rollback()
                return 0
            if isinstance(created, int):
                nested.rollback()
                return created
            records: list[AuditEvent] = []
            done = [(self._succeeded(op, "Users", str(user.id), user.version, into=records), str(user.id))
                    for op, user in zip(ops, created, strict=True)]
            audit.insert_all(self._session, records)
        return done

    @contextmanager
    def _shared_savepoint(self) -> Iterator[SessionTransaction]:
        """One SAVEPOINT for a batch: released at the end unless the block rolled it back; rolled back on errors."""
        nested = self._session.begin_nested()
        try:
            yield nested
        except BaseException:
            if nested.is_active:
                nested.rollback()
            raise
        if nested.is_active:
            nested.commit()

    def _succeeded(self, op: BulkOperation, endpoint: str, resource_id: str | None,
                   version: int | None, *, into: list[AuditEvent] | None = None) -> OperationResult:
        """Audit a successful operation (or collect its record *into* a list) and return its result."""
        self._record(op, endpoint, resource_id, None, into=into)
        return OperationResult(op.index, op.method, op.bulk_id, _SUCCESS[op.method],
                               f"{self._base_url}/{endpoint}/{resource_id}",
                               weak_etag(version) if version is not None else None)

    def reject(self, op: BulkOperation, error: ScimError) -> OperationResult:
        """Fail *op* without running it (bad path, unresolvable bulkId) and audit the failure."""
        parts = op.path.split("/")
        if len(parts) > 1 and parts[1] in self._services:
            self._record(op, parts[1], None, error)
        return OperationResult(op.index, op.method, op.bulk_id, error.status, error=error)

    def _apply(self, service: UserService | GroupService, op: BulkOperation, resource_id: str | None,
               resolved: dict[str, str]) -> tuple[int | None, str | None]:
        """Call the service; return the new version (``None`` after DELETE) and the resource id."""
        data = substitute(op.data, resolved) if op.references else op.data
        if op.method == "POST":
            row: Any = service.create(data)
            return row.version, str(row.id)
        assert resource_id is not None  # _route guarantees an id for PUT, PATCH and DELETE
        if op.method == "PUT":
            row = service.replace(resource_id, data, op.version)
        elif op.method == "PATCH":
            row = service.patch(resource_id, data, op.version)
        else:
            service.delete(resource_id, op.version)
            return None, resource_id
        return row.version, resource_id

    def _route(self, op: BulkOperation, resolved: dict[str, str]) -> tuple[str, str | None]:
        """Split ``/Users`` or ``/Users/{id}`` into the endpoint and the id (bulkId resolved).

        Each operation stands for one HTTP request, so a path that request could not reach is
        404 and a method its resource does not accept is 405, as on the plain endpoints.
        """
        parts = op.path.split("/")
        if parts[0] != "" or len(parts) not in (2, 3) or parts[1] not in self._services or parts[-1] == "":
            raise NotFound(f"no such endpoint '{op.path}'; use /Users, /Groups or /Users/{{id}}")
        endpoint, resource_id = parts[1], (parts[2] if len(parts) == 3 else None)
        if resource_id is not None and resource_id.startswith("bulkId:"):
            resource_id = resolved[resource_id.removeprefix("bulkId:")]
        if op.method == "POST" and resource_id is not None:
            raise MethodNotAllowed(f"POST creates a resource: its path must be /{endpoint}")
        if op.method != "POST" and resource_id is None:
            raise MethodNotAllowed(f"{op.method} needs the path of one resource: /{endpoint}/{{id}}")
        return endpoint, resource_id

    def _record(self, op: BulkOperation, endpoint: str, resource_id: str | None,
                error: ScimError | None, *, into: list[AuditEvent] | None = None) -> None:
        """Add the audit record of one operation (it commits with the bulk request).

        Recorded as ``http.audit.audited_write`` records single writes: a failure keeps its status
        and ``scimType`` only, never the detail (it may quote request data).
        """
        if self._audit is None:
            return
        ctx, resource_type = self._audit, endpoint[:-1]
        if error is None:
            audit.record_scim_write(self._session, ctx.tenant_id, ctx.client, _ACTIONS[op.method], resource_type,
                                    resource_id, audit.SUCCESS, ctx.request_id, into=into)
        else:
            audit.record_scim_write(self._session, ctx.tenant_id, ctx.client, _ACTIONS[op.method], resource_type,
                                    resource_id, audit.FAILURE, ctx.request_id, status=error.status,
                                    detail=error.scim_type or type(error).__name__)


class _Run:
    """The state of one BulkRequest being run: resolved bulkIds, waiting operations, results."""

    def __init__(self, service: BulkService, request: BulkRequest) -> None:
        self._service = service
        self._operations = request.operations
        self._limit = request.fail_on_errors
        self._defined = {op.bulk_id for op in request.operations if op.method == "POST" and op.bulk_id}
        self._resolved: dict[str, str] = {}
        self._failed: set[str] = set()
        self._waiting: dict[str, list[BulkOperation]] = {}
        self._results: list[OperationResult] = []
        self._errors = 0

    @property
    def _stopped(self) -> bool:
        return self._limit is not None and self._errors >= self._limit

    def execute(self) -> list[OperationResult]:
        """Run every operation (or until ``failOnErrors`` is reached) and return the results."""
        position, size, cap, solo = 0, _MAX_TOGETHER, _MAX_TOGETHER, -1
        while position < len(self._operations) and not self._stopped:
            batch = self._ready_run(position, min(size, cap)) if position != solo else []
            if len(batch) < 2:
                if self._run_from(self._operations[position]):
                    size = min(size * 2, _MAX_TOGETHER)
                position, cap = position + 1, _MAX_TOGETHER
                continue
            outcome = self._service.execute_together(batch, self._resolved)
            if isinstance(outcome, int):
                # Run those before the failure together again, then the failing one in its own
                # savepoint; run smaller groups for a while, since failures may come in clusters.
                cap, solo, size = outcome, position + outcome, max(size // 4, 1)
                continue
            for op, (result, created) in zip(batch, outcome, strict=True):
                self._finish(op, result, created)
            position, size, cap = position + len(batch), min(size * 2, _MAX_TOGETHER), _MAX_TOGETHER
        if self._stopped:
            return self._results
        # Whatever still waits is in a cycle of references, or waits for an operation that is.
        leftover = sorted((op for ops in self._waiting.values() for op in ops), key=lambda o: o.index)
        for op in leftover:
            if self._stopped:
                break
            refs = ", ".join(sorted(r for r in op.references if r not in self._resolved))
            error = UnresolvedReference(f"circular bulkId reference: bulkId {refs} cannot be created before "
                                        "this operation runs")
            self._finish(op, self._service.reject(op, error), None)
        return self._results

    def _ready_run(self, position: int, cap: int) -> list[BulkOperation]:
        """Return up to *cap* consecutive operations from *position* that can share a savepoint.

        They must not depend on each other or on anything unresolved (their references are all
        resolved already), and nothing may wait for the bulkIds they define, so that running them
        together changes neither the order nor the outcome of anything.
        """
        batch: list[BulkOperation] = []
        for op in self._operations[position:position + cap]:
            if not op.references.issubset(self._resolved) or (op.bulk_id and op.bulk_id in self._waiting):
                break
            batch.append(op)
        return batch

    def _run_from(self, first: BulkOperation) -> bool:
        """Run *first*, then every operation its outcome unblocks; tell whether *first* succeeded."""
        queue = deque([first])
        succeeded = False
        while queue and not self._stopped:
            op = queue.popleft()
            outcome = self._attempt(op)
            if outcome is None:
                continue  # waits for a bulkId not created yet
            result, created = outcome
            succeeded = succeeded or (op is first and result.error is None)
            queue.extend(self._finish(op, result, created))
        return succeeded

    def _attempt(self, op: BulkOperation) -> tuple[OperationResult, str | None] | None:
        """Run *op* if its references are resolved; fail it if they never can be; else park it."""
        pending = [r for r in op.references if r not in self._resolved]
        if not pending:
            return self._service.execute(op, self._resolved)
        unknown = sorted(r for r in pending if r not in self._defined)
        if unknown:
            error = InvalidValue(f"bulkId {', '.join(unknown)} is not defined by any POST of this request")
            return self._service.reject(op, error), None
        failed = sorted(r for r in pending if r in self._failed)
        if failed:
            conflict = UnresolvedReference(f"bulkId {', '.join(failed)} cannot be resolved: the operation "
                                           "creating it failed")
            return self._service.reject(op, conflict), None
        self._waiting.setdefault(min(pending), []).append(op)
        return None

    def _finish(self, op: BulkOperation, result: OperationResult, created: str | None) -> list[BulkOperation]:
        """Record *result*; return the operations that waited for the bulkId *op* defines."""
        self._results.append(result)
        if result.error is not None:
            self._errors += 1
        if op.method != "POST" or op.bulk_id is None:
            return []
        if created is not None and result.error is None:
            self._resolved[op.bulk_id] = created
        else:
            self._failed.add(op.bulk_id)
        return self._waiting.pop(op.bulk_id, [])
