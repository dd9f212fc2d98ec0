"""``POST /Bulk`` (RFC 7644 §3.7): size checks here, the operations in :mod:`scim_bridge.domain.bulk`."""

from __future__ import annotations

from flask import Response
from flask import request

from scim_bridge.auth import require_oauth
from scim_bridge.auth.tokens import SCIM_WRITE
from scim_bridge.domain.bulk import AuditContext
from scim_bridge.domain.bulk import BulkService
from scim_bridge.http import context
from scim_bridge.http.request_log import request_id
from scim_bridge.http.scim import bp
from scim_bridge.http.scim.endpoints import group_service
from scim_bridge.http.scim.endpoints import user_service
from scim_bridge.http.scim.params import read_json
from scim_bridge.http.scim.responses import scim_response
from scim_bridge.scim.bulk import bulk_response
from scim_bridge.scim.bulk import parse_bulk_request
from scim_bridge.scim.errors import TooLarge
from scim_bridge.storage.session import get_session
from scim_bridge.storage.session import unit_of_work


@bp.post("/Bulk")
@require_oauth(SCIM_WRITE)
def bulk() -> Response:
    """Run a BulkRequest; per-operation outcomes are in the 200 BulkResponse."""
    check_payload_size(max_payload_bytes())
    bulk_request = parse_bulk_request(read_json(), context.settings().bulk_max_operations)
    with unit_of_work():
        service = BulkService(get_session(), user_service(), group_service(), context.scim_base_url(),
                              audit_context())
        results = service.run(bulk_request)
    return scim_response(bulk_response(results))


def max_payload_bytes() -> int:
    """Return the effective ``maxPayloadSize``: the bulk limit, capped by the app-wide body limit."""
    cfg = context.settings()
    return min(cfg.bulk_max_payload_bytes, cfg.max_request_bytes)


def check_payload_size(limit: int) -> None:
    """Raise 413 ``tooLarge`` (RFC 7644 §3.7.4) when the body exceeds *limit*, before parsing it.

    ``Content-Length`` is trusted to refuse early without reading; a body without one (chunked)
    is read (the app-wide limit still bounds it) and measured.
    """
    declared = request.content_length
    size = declared if declared is not None else len(request.get_data(cache=True))
    if size > limit:
        raise TooLarge(f"the bulk request is {size} bytes; maxPayloadSize is {limit}")


def audit_context() -> AuditContext:
    """Return who is writing, as the audit log names them."""
    token = context.tenant()
    return AuditContext(token.tenant_id, token.actor, request_id())
