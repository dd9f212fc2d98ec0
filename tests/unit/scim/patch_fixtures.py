"""Shared fixtures of the PATCH engine tests: a canonical user and a one-operation runner."""

from __future__ import annotations

from typing import Any

from scim_bridge.scim.patch import PatchResult
from scim_bridge.scim.patch import apply_patch
from scim_bridge.scim.patch import parse_patch_request
from scim_bridge.scim.schema import ENTERPRISE_USER_SCHEMA as ENT
from scim_bridge.scim.schema import PATCH_OP_SCHEMA
from scim_bridge.scim.schema import USER_RESOURCE
from scim_bridge.scim.schema import USER_SCHEMA

WORK = {"value": "bjensen@work.example", "type": "work", "primary": True}
HOME = {"value": "babs@home.example", "type": "home"}
WORK_PHONE = {"value": "555-0100", "type": "work"}
WORK_ADDRESS = {"type": "work", "streetAddress": "1 Main St", "locality": "Springfield"}
NAME = {"givenName": "Barbara", "familyName": "Jensen"}
ENTERPRISE = {"department": "Sales", "manager": {"value": "m1"}}

__all__ = ["ENT", "ENTERPRISE", "HOME", "NAME", "USER_SCHEMA", "WORK", "WORK_ADDRESS", "WORK_PHONE", "base_user",
           "run_one"]


def base_user() -> dict[str, Any]:
    """Return a fresh user in canonical wire form."""
    return {
        "schemas": [USER_SCHEMA, ENT],
        "id": "u1",
        "userName": "bjensen",
        "name": dict(NAME),
        "displayName": "Babs Jensen",
        "active": True,
        "emails": [dict(WORK), dict(HOME)],
        "phoneNumbers": [dict(WORK_PHONE)],
        "addresses": [dict(WORK_ADDRESS)],
        ENT: {"department": "Sales", "manager": {"value": "m1"}},
        "meta": {"resourceType": "User"},
    }


def run_one(op: str, operation: dict[str, Any], resource: dict[str, Any] | None = None) -> PatchResult:
    """Apply one operation *op* to *resource* (default: the base user)."""
    body = {"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": op, **operation}]}
    return apply_patch(base_user() if resource is None else resource, parse_patch_request(body), USER_RESOURCE)
