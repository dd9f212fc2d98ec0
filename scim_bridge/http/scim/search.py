"""``POST /.search`` at the service root (RFC 7644 §3.4.3): Users and Groups together."""

from __future__ import annotations

from flask import Response

from scim_bridge.auth import require_oauth
from scim_bridge.auth.tokens import SCIM_READ
from scim_bridge.domain.search import RootSearch
from scim_bridge.http.scim import bp
from scim_bridge.http.scim.endpoints import group_service
from scim_bridge.http.scim.endpoints import user_service
from scim_bridge.http.scim.params import list_query_from_body
from scim_bridge.http.scim.responses import scim_response


@bp.post("/.search")
@require_oauth(SCIM_READ)
def root_search() -> Response:
    """Search every resource type with one SearchRequest."""
    query = list_query_from_body()
    return scim_response(RootSearch(user_service(), group_service()).run(query).to_scim())
