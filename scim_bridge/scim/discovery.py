"""ServiceProviderConfig, ResourceTypes and Schemas payloads (RFC 7643 §5-§7, RFC 7644 §4).

Generated from the same definitions the server validates with, so they tell the truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scim_bridge.scim import schema as s


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What this deployment supports, as advertised in ServiceProviderConfig."""

    max_results: int
    patch: bool
    bulk: bool
    bulk_max_operations: int = 0
    bulk_max_payload_size: int = 0
    documentation_uri: str = ""


def service_provider_config(caps: Capabilities, location: str) -> dict[str, Any]:
    """Return the ServiceProviderConfig resource (RFC 7643 §5)."""
    return {
        "schemas": [s.SPC_SCHEMA],
        "documentationUri": caps.documentation_uri,
        "patch": {"supported": caps.patch},
        "bulk": {"supported": caps.bulk, "maxOperations": caps.bulk_max_operations,
                 "maxPayloadSize": caps.bulk_max_payload_size},
        "filter": {"supported": True, "maxResults": caps.max_results},
        "changePassword": {"supported": True},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with an OAuth 2.0 bearer token (RFC 6750).",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
            "documentationUri": caps.documentation_uri,
            "primary": True,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": location},
    }


def resource_types(base_url: str) -> list[dict[str, Any]]:
    """Return every ResourceType resource."""
    return [resource_type(rt, base_url) for rt in s.RESOURCE_TYPES]


def resource_type(rt: s.ResourceType, base_url: str) -> dict[str, Any]:
    """Return one ResourceType resource."""
    return rt.to_scim(f"{base_url}/ResourceTypes/{rt.id}", f"{base_url}/Schemas/{rt.schema.id}")


def find_resource_type(type_id: str) -> s.ResourceType | None:
    """Return the resource type with id *type_id*."""
    return next((rt for rt in s.RESOURCE_TYPES if rt.id == type_id), None)


def schemas(base_url: str) -> list[dict[str, Any]]:
    """Return every Schema resource."""
    return [sc.to_scim(f"{base_url}/Schemas/{sc.id}") for sc in s.SCHEMAS]


def find_schema(schema_id: str) -> s.Schema | None:
    """Return the schema with URN *schema_id*."""
    return next((sc for sc in s.SCHEMAS if sc.id == schema_id), None)


def list_response(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """Wrap discovery resources in a ListResponse."""
    return {"schemas": [s.LIST_RESPONSE_SCHEMA], "totalResults": len(resources), "startIndex": 1,
            "itemsPerPage": len(resources), "Resources": resources}
