"""Mapping between stored rows and SCIM resource dicts (``to_scim_*`` / ``from_scim_*``).

Which SCIM attribute lives in which column is declared once, here, as data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scim_bridge.scim import schema as s
from scim_bridge.scim.etag import weak_etag
from scim_bridge.scim.rendered import RenderedArray
from scim_bridge.storage.models import Group
from scim_bridge.storage.models import Org
from scim_bridge.storage.models import User
from scim_bridge.storage.models import UserValue
from scim_bridge.storage.repositories.orgs import UserOrgView

# top-level single-valued User attributes -> column
USER_COLUMNS: dict[str, str] = {
    "userName": "user_name",
    "externalId": "external_id",
    "displayName": "display_name",
    "nickName": "nick_name",
    "profileUrl": "profile_url",
    "title": "title",
    "userType": "user_type",
    "preferredLanguage": "preferred_language",
    "locale": "locale",
    "timezone": "timezone",
    "active": "active",
}
NAME_COLUMNS: dict[str, str] = {
    "formatted": "name_formatted",
    "familyName": "name_family_name",
    "givenName": "name_given_name",
    "middleName": "name_middle_name",
    "honorificPrefix": "name_honorific_prefix",
    "honorificSuffix": "name_honorific_suffix",
}
ENTERPRISE_COLUMNS: dict[str, str] = {
    "employeeNumber": "employee_number",
    "costCenter": "cost_center",
    "organization": "organization",
    "division": "division",
    "department": "department",
}
MANAGER_COLUMNS: dict[str, str] = {
    "value": "manager_value", "$ref": "manager_ref", "displayName": "manager_display_name",
}
# multi-valued complex attributes stored in user_values -> their sub-attribute columns
MULTI_VALUED: tuple[str, ...] = (
    "emails", "phoneNumbers", "ims", "photos", "addresses", "entitlements", "roles", "x509Certificates",
)
VALUE_COLUMNS: dict[str, str] = {"value": "value", "display": "display", "type": "type", "primary": "primary"}
ADDRESS_COLUMNS: dict[str, str] = {
    "formatted": "formatted",
    "streetAddress": "street_address",
    "locality": "locality",
    "region": "region",
    "postalCode": "postal_code",
    "country": "country",
    "type": "type",
    "primary": "primary",
}


def sub_columns(attribute: str) -> dict[str, str]:
    """Return the sub-attribute -> ``user_values`` column map of a multi-valued attribute."""
    return ADDRESS_COLUMNS if attribute == "addresses" else VALUE_COLUMNS


def fold(value: str | None) -> str | None:
    """Return the case-insensitive key of a caseExact=false string (RFC 7643 §2.2)."""
    return value.lower() if value is not None else None


@dataclass(frozen=True, slots=True)
class MemberRef:
    """One member of a group as rendered in ``members``."""

    value: uuid.UUID
    type: str
    display: str | None


@dataclass(frozen=True, slots=True)
class GroupRef:
    """One group of a user as rendered in ``groups``."""

    value: uuid.UUID
    display: str
    type: str = "direct"


def iso(moment: datetime) -> str:
    """Render a timestamp as RFC 3339 with a ``Z`` suffix."""
    return moment.isoformat().replace("+00:00", "Z")


def meta(resource_type: str, row: User | Group, location: str) -> dict[str, Any]:
    """Return the ``meta`` attribute of a row (RFC 7643 §3.1)."""
    return {
        "resourceType": resource_type,
        "created": iso(row.created),
        "lastModified": iso(row.last_modified),
        "location": location,
        "version": weak_etag(row.version),
    }


def to_scim_user(user: User, base_url: str, groups: Iterable[GroupRef] | None = None,
                 values: Iterable[UserValue] | None = None, org: UserOrgView | None = None) -> dict[str, Any]:
    """Render a stored user as a SCIM User resource (before projection)."""
    location = f"{base_url}/Users/{user.id}"
    body: dict[str, Any] = {"schemas": [s.USER_SCHEMA], "id": str(user.id)}
    for attr, column in USER_COLUMNS.items():
        value = getattr(user, column)
        if value is not None:
            body[attr] = value
    name = {attr: getattr(user, col) for attr, col in NAME_COLUMNS.items() if getattr(user, col) is not None}
    if name:
        body["name"] = name
    for attr, items in _group_values(values or ()).items():
        body[attr] = items
    if groups is not None:
        body["groups"] = [
            {"value": str(g.value), "$ref": f"{base_url}/Groups/{g.value}", "display": g.display, "type": g.type}
            for g in groups
        ]
    enterprise = {a: getattr(user, c) for a, c in ENTERPRISE_COLUMNS.items() if getattr(user, c) is not None}
    manager = {a: getattr(user, c) for a, c in MANAGER_COLUMNS.items() if getattr(user, c) is not None}
    if manager:
        enterprise["manager"] = manager
    if enterprise:
        body["schemas"].append(s.ENTERPRISE_USER_SCHEMA)
        body[s.ENTERPRISE_USER_SCHEMA] = enterprise
    infinity = infinity_user(org) if org is not None else {}
    if user.iam_org_id is not None:
        infinity = {"iamOrgId": user.iam_org_id, **infinity}
    if infinity:
        body["schemas"].append(s.INFINITY_USER_SCHEMA)
        body[s.INFINITY_USER_SCHEMA] = infinity
    body["meta"] = meta("User", user, location)
    return body


def _group_values(values: Iterable[UserValue]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(values, key=lambda v: (v.attribute, v.position)):
        element: dict[str, Any] = {}
        for attr, column in sub_columns(row.attribute).items():
            value = getattr(row, column)
            if value is None:
                continue
            element[attr] = value
        if row.attribute != "addresses" and row.display is not None:
            element["display"] = row.display
        grouped.setdefault(row.attribute, []).append(element)
    return grouped


def apply_scim_user(user: User, data: dict[str, Any], *, defaults: bool = True) -> None:
    """Set every column of *user* from canonical SCIM *data* (full replace; absent means unset).

    With *defaults* (POST and PUT, RFC 7644 §3.5.1 "set to default"), an absent ``active`` is
    true; a PATCH that removes ``active`` leaves it unassigned. Multi-valued attributes are
    handled by :func:`user_values_from_scim`.
    """
    for attr, column in USER_COLUMNS.items():
        value = data.get(attr)
        if attr == "active" and value is None and defaults:
            value = True
        setattr(user, column, value)
    user.user_name_key = fold(user.user_name) or ""
    name = data.get("name") or {}
    for attr, column in NAME_COLUMNS.items():
        setattr(user, column, name.get(attr))
    enterprise = data.get(s.ENTERPRISE_USER_SCHEMA) or {}
    for attr, column in ENTERPRISE_COLUMNS.items():
        setattr(user, column, enterprise.get(attr))
    manager = enterprise.get("manager") or {}
    user.manager_value = manager.get("value")
    user.manager_ref = manager.get("$ref")
    user.iam_org_id = (data.get(s.INFINITY_USER_SCHEMA) or {}).get("iamOrgId")


def user_values_from_scim(data: dict[str, Any], tenant_id: uuid.UUID) -> list[UserValue]:
    """Return the ``user_values`` rows for the multi-valued attributes in *data*."""
    rows: list[UserValue] = []
    for attribute in MULTI_VALUED:
        for position, element in enumerate(data.get(attribute) or []):
            row = UserValue(tenant_id=tenant_id, attribute=attribute, position=position)
            for attr, column in sub_columns(attribute).items():
                if attr in element:
                    setattr(row, column, element[attr])
            if attribute != "addresses":
                row.display = element.get("display")
            row.primary = element.get("primary")
            row.value_key = fold(row.value) if attribute != "x509Certificates" else row.value
            rows.append(row)
    return rows


def infinity_user(org: UserOrgView) -> dict[str, Any]:
    """Return the Infinity User extension: resolved orgId, orgIds, role (all readOnly)."""
    body: dict[str, Any] = {}
    if org.org_id is not None:
        body["orgId"] = org.org_id
    if org.org_ids:
        body["orgIds"] = list(org.org_ids)
    if org.role is not None:
        body["role"] = org.role
    body["primaryOrgConflict"] = org.conflict
    return body


def to_scim_group(group: Group, base_url: str, members: Iterable[MemberRef] | RenderedArray | None = None,
                  org: Org | None = None) -> dict[str, Any]:
    """Render a stored group as a SCIM Group resource (before projection).

    *members* may come already rendered (``GroupRepository.rendered_members``): the same JSON as
    :func:`_member` makes, spliced into the response as it is.
    """
    body: dict[str, Any] = {"schemas": [s.GROUP_SCHEMA], "id": str(group.id), "displayName": group.display_name}
    if group.external_id is not None:
        body["externalId"] = group.external_id
    if isinstance(members, RenderedArray):
        body["members"] = members
    elif members is not None:
        body["members"] = [_member(m, base_url) for m in members]
    infinity: dict[str, Any] = {}
    if group.iam_org_id is not None:
        infinity["iamOrgId"] = group.iam_org_id
    if org is not None:
        infinity |= {"orgId": org.org_id, "orgName": org.name, "managed": org.source == "idp",
                     "orphaned": org.orphaned}
    if infinity:
        body["schemas"].append(s.INFINITY_GROUP_SCHEMA)
        body[s.INFINITY_GROUP_SCHEMA] = infinity
    body["meta"] = meta("Group", group, f"{base_url}/Groups/{group.id}")
    return body


def _member(member: MemberRef, base_url: str) -> dict[str, Any]:
    endpoint = "Users" if member.type == "User" else "Groups"
    item: dict[str, Any] = {"value": str(member.value), "$ref": f"{base_url}/{endpoint}/{member.value}",
                            "type": member.type}
    if member.display is not None:
        item["display"] = member.display
    return item
