"""The Bulk envelope (RFC 7644 §3.7): parse a BulkRequest, find and replace ``bulkId`` references.

Pure protocol code: it validates the *shape* of the request (what the BulkRequest schema
requires) and leaves everything an operation does to :mod:`scim_bridge.domain.bulk`. A malformed
envelope fails the whole request with 400 ``invalidSyntax`` before anything is written; problems
inside one operation (its path, its data, its references) fail that operation only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scim_bridge.scim import schema as s
from scim_bridge.scim.errors import InvalidSyntax
from scim_bridge.scim.errors import ScimError
from scim_bridge.scim.errors import TooLarge

METHODS = ("POST", "PUT", "PATCH", "DELETE")
BULK_ID_PREFIX = "bulkId:"

# A reference inside a longer string: a quoted value in a PATCH path filter such as
# members[value eq "bulkId:u1"]. A whole-string value "bulkId:u1" is matched separately.
_QUOTED_REFERENCE = re.compile(r'"bulkId:([^"]+)"')


class MethodNotAllowed(ScimError):
    """The operation's method does not apply to its path (POST to an item, PUT to a collection)."""

    status = 405


class UnresolvedReference(ScimError):
    """A ``bulkId`` cannot be resolved: circular, or its POST failed (RFC 7644 §3.7.1: 409)."""

    status = 409


@dataclass(frozen=True, slots=True)
class BulkOperation:
    """One element of ``Operations``; ``method`` is upper case, ``index`` its position in the request."""

    index: int
    method: str
    path: str
    bulk_id: str | None
    version: str | None
    data: Any
    references: frozenset[str]


@dataclass(frozen=True, slots=True)
class BulkRequest:
    """A validated BulkRequest."""

    operations: list[BulkOperation]
    fail_on_errors: int | None


@dataclass(slots=True)
class OperationResult:
    """The outcome of one operation, rendered as an element of the BulkResponse ``Operations``."""

    index: int
    method: str
    bulk_id: str | None
    status: int
    location: str | None = None
    version: str | None = None
    error: ScimError | None = None

    def to_scim(self) -> dict[str, Any]:
        """Render (RFC 7644 §3.7.3): ``status`` is a string, ``response`` only on failure."""
        body: dict[str, Any] = {"method": self.method}
        if self.bulk_id is not None:
            body["bulkId"] = self.bulk_id
        if self.version is not None:
            body["version"] = self.version
        if self.location is not None:
            body["location"] = self.location
        body["status"] = str(self.status)
        if self.error is not None:
            body["response"] = self.error.to_body()
        return body


def bulk_response(results: list[OperationResult]) -> dict[str, Any]:
    """Render a BulkResponse with the results in request order."""
    ordered = sorted(results, key=lambda r: r.index)
    return {"schemas": [s.BULK_RESPONSE_SCHEMA], "Operations": [r.to_scim() for r in ordered]}


def parse_bulk_request(body: Any, max_operations: int) -> BulkRequest:
    """Validate a BulkRequest body; 413 ``tooLarge`` beyond *max_operations* (RFC 7644 §3.7.4)."""
    if not isinstance(body, dict):
        raise InvalidSyntax("the BulkRequest must be a JSON object")
    schemas = _get(body, "schemas")
    if not isinstance(schemas, list) or not any(
            isinstance(urn, str) and urn.lower() == s.BULK_REQUEST_SCHEMA.lower() for urn in schemas):
        raise InvalidSyntax(f"'schemas' must be a list containing '{s.BULK_REQUEST_SCHEMA}'")
    items = _get(body, "Operations")
    if not isinstance(items, list):
        raise InvalidSyntax("'Operations' must be a list of operations")
    if len(items) > max_operations:
        raise TooLarge(f"the bulk request has {len(items)} operations; maxOperations is {max_operations}")
    fail_on_errors = _get(body, "failOnErrors")
    if fail_on_errors is not None and (
            isinstance(fail_on_errors, bool) or not isinstance(fail_on_errors, int) or fail_on_errors < 1):
        raise InvalidSyntax("'failOnErrors' must be an integer of at least 1")
    operations = [_parse_operation(item, index) for index, item in enumerate(items)]
    seen: set[str] = set()
    for op in operations:
        if op.method == "POST" and op.bulk_id is not None:
            if op.bulk_id in seen:
                raise InvalidSyntax(f"bulkId '{op.bulk_id}' is used by more than one POST operation")
            seen.add(op.bulk_id)
    return BulkRequest(operations, fail_on_errors)


def _parse_operation(item: Any, index: int) -> BulkOperation:
    where = f"Operations[{index}]"
    if not isinstance(item, dict):
        raise InvalidSyntax(f"{where} must be an object")
    method = _get(item, "method")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise InvalidSyntax(f"{where}.method must be one of {', '.join(METHODS)} (got {method!r})")
    method = method.upper()
    path = _get(item, "path")
    if not isinstance(path, str) or not path:
        raise InvalidSyntax(f"{where}.path is required and must be a string such as '/Users'")
    bulk_id = _optional_string(item, "bulkId", where)
    if method == "POST" and not bulk_id:
        raise InvalidSyntax(f"{where}.bulkId is required for POST")
    version = _optional_string(item, "version", where)
    data = _get(item, "data")
    if method != "DELETE" and data is None:
        raise InvalidSyntax(f"{where}.data is required for {method}")
    refs = references(data)
    if (target := path_reference(path)) is not None:
        refs.add(target)
    return BulkOperation(index, method, path, bulk_id, version, data, frozenset(refs))


def _optional_string(item: dict[str, Any], key: str, where: str) -> str | None:
    value = _get(item, key)
    if value is not None and not isinstance(value, str):
        raise InvalidSyntax(f"{where}.{key} must be a string")
    return value


def references(value: Any) -> set[str]:
    """Return every bulkId that the data *value* refers to (RFC 7644 §3.7.2), at any depth."""
    found: set[str] = set()
    _collect(value, found)
    return found


def _collect(value: Any, found: set[str]) -> None:
    if isinstance(value, str):
        if BULK_ID_PREFIX in value:
            if value.startswith(BULK_ID_PREFIX) and '"' not in value:
                found.add(value[len(BULK_ID_PREFIX):])
            else:
                found.update(_QUOTED_REFERENCE.findall(value))
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, found)
    elif isinstance(value, list):
        for item in value:
            _collect(item, found)


def path_reference(path: str) -> str | None:
    """Return the bulkId that a path such as ``/Users/bulkId:u1`` refers to, if any."""
    _, _, last = path.rpartition("/")
    return last[len(BULK_ID_PREFIX):] if last.startswith(BULK_ID_PREFIX) else None


def substitute(value: Any, resolved: Mapping[str, str]) -> Any:
    """Return a copy of the data *value* with each bulkId reference replaced by its id in *resolved*."""
    if isinstance(value, str):
        if BULK_ID_PREFIX not in value:
            return value
        if value.startswith(BULK_ID_PREFIX) and '"' not in value:
            return resolved.get(value[len(BULK_ID_PREFIX):], value)
        return _QUOTED_REFERENCE.sub(lambda m: f'"{resolved.get(m.group(1), m.group(0)[1:-1])}"', value)
    if isinstance(value, dict):
        return {k: substitute(v, resolved) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, resolved) for v in value]
    return value


def _get(mapping: dict[str, Any], key: str) -> Any:
    """Return ``mapping[key]`` with *key* matched case-insensitively (RFC 7643 §2.1)."""
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    return next((v for k, v in mapping.items() if isinstance(k, str) and k.lower() == lowered), None)
