"""Discovery endpoints: token required unless ``SCIM_BRIDGE_DISCOVERY_PUBLIC`` is set."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Response

from scim_bridge.auth import require_oauth
from scim_bridge.auth.tokens import SCIM_READ
from scim_bridge.http import context
from scim_bridge.http.scim import bp
from scim_bridge.http.scim.bulk import max_payload_bytes
from scim_bridge.http.scim.responses import scim_response
from scim_bridge.scim import discovery as d
from scim_bridge.scim.errors import NotFound


def discovery_auth(view: Callable[..., Response]) -> Callable[..., Response]:
    """Require ``scim:read`` unless discovery is configured public."""
    protected = require_oauth(SCIM_READ)(view)

    @functools.wraps(protected)  # keeps protected.required_scope on the route's view
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        if context.settings().discovery_public:
            return view(*args, **kwargs)
        result: Response = protected(*args, **kwargs)
        return result

    return wrapper


def capabilities() -> d.Capabilities:
    """Return what this deployment supports."""
    cfg = context.settings()
    return d.Capabilities(max_results=cfg.max_page_size, patch=True, bulk=True,
                          bulk_max_operations=cfg.bulk_max_operations, bulk_max_payload_size=max_payload_bytes(),
                          documentation_uri=cfg.documentation_uri)


@bp.get("/ServiceProviderConfig")
@discovery_auth
def service_provider_config() -> Response:
    """Return the ServiceProviderConfig."""
    base = context.scim_base_url()
    return scim_response(d.service_provider_config(capabilities(), f"{base}/ServiceProviderConfig"))


@bp.get("/ResourceTypes")
@discovery_auth
def resource_types() -> Response:
    """List the resource types."""
    return scim_response(d.list_response(d.resource_types(context.scim_base_url())))


@bp.get("/ResourceTypes/<type_id>")
@discovery_auth
def resource_type(type_id: str) -> Response:
    """Return one resource type."""
    rt = d.find_resource_type(type_id)
    if rt is None:
        raise NotFound(f"ResourceType {type_id} not found")
    return scim_response(d.resource_type(rt, context.scim_base_url()))


@bp.get("/Schemas")
@discovery_auth
def schemas() -> Response:
    """List the schemas."""
    return scim_response(d.list_response(d.schemas(context.scim_base_url())))


@bp.get("/Schemas/<path:schema_id>")
@discovery_auth
def schema(schema_id: str) -> Response:
    """Return one schema."""
    found = d.find_schema(schema_id)
    if found is None:
        raise NotFound(f"Schema {schema_id} not found")
    return scim_response(found.to_scim(f"{context.scim_base_url()}/Schemas/{found.id}"))
