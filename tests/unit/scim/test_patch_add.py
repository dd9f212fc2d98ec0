"""``add`` operations (RFC 7644 §3.5.2.1) for every path kind and attribute kind."""

from __future__ import annotations

from typing import Any

import pytest

from scim_bridge.scim.patch import PatchResult
from scim_bridge.scim.schema import ENTERPRISE_USER_SCHEMA as ENT
from scim_bridge.scim.schema import USER_SCHEMA
from tests.unit.scim.patch_fixtures import ENTERPRISE
from tests.unit.scim.patch_fixtures import HOME
from tests.unit.scim.patch_fixtures import NAME
from tests.unit.scim.patch_fixtures import WORK
from tests.unit.scim.patch_fixtures import WORK_ADDRESS
from tests.unit.scim.patch_fixtures import WORK_PHONE
from tests.unit.scim.patch_fixtures import base_user
from tests.unit.scim.patch_fixtures import run_one


def add(operation: dict[str, Any], resource: dict[str, Any] | None = None) -> PatchResult:
    """Apply one ``add`` operation to *resource* (default: the base user)."""
    return run_one("add", operation, resource)


ADD_CASES = [
    # single-valued string
    pytest.param({"path": "nickName", "value": "Babsy"}, "nickName", "Babsy", id="string-new"),
    pytest.param({"path": "displayName", "value": "B"}, "displayName", "B", id="string-existing-is-replace-Q25"),
    pytest.param({"path": "DISPLAYNAME", "value": "B"}, "displayName", "B", id="path-case-insensitive"),
    pytest.param({"path": "externalId", "value": "ext-1"}, "externalId", "ext-1", id="common-attribute"),
    pytest.param({"path": f"{USER_SCHEMA}:title", "value": "Boss"}, "title", "Boss", id="core-urn-path"),
    # boolean
    pytest.param({"path": "active", "value": False}, "active", False, id="boolean"),
    pytest.param({"path": "active", "value": "False"}, "active", False, id="boolean-string-Q2"),
    # complex
    pytest.param({"path": "name.middleName", "value": "Ann"}, "name", {**NAME, "middleName": "Ann"},
                 id="sub-attribute"),
    pytest.param({"path": "name", "value": {"middleName": "Ann", "givenName": "Barb"}}, "name",
                 {"givenName": "Barb", "familyName": "Jensen", "middleName": "Ann"}, id="complex-merges"),
    # multi-valued complex
    pytest.param({"path": "emails", "value": [{"value": "b@other.example", "type": "other"}]}, "emails",
                 [WORK, HOME, {"value": "b@other.example", "type": "other"}], id="multi-valued-appends"),
    pytest.param({"path": "emails", "value": [dict(HOME)]}, "emails", [WORK, HOME], id="exact-duplicate-skipped"),
    pytest.param({"path": "emails", "value": {"value": "b@other.example"}}, "emails",
                 [WORK, HOME, {"value": "b@other.example"}], id="single-object-for-list"),
    pytest.param({"path": "emails", "value": [{"value": "n@x.example", "primary": "true"}]}, "emails",
                 [{**WORK, "primary": False}, HOME, {"value": "n@x.example", "primary": True}],
                 id="new-primary-clears-others"),
    pytest.param({"path": "phoneNumbers", "value": ["555-0199"]}, "phoneNumbers",
                 [WORK_PHONE, {"value": "555-0199"}], id="bare-value-is-value-sub-attribute"),
    pytest.param({"path": "ims", "value": [{"value": "babs", "type": "xmpp"}]}, "ims",
                 [{"value": "babs", "type": "xmpp"}], id="multi-valued-absent"),
    pytest.param({"path": "emails.display", "value": "E"}, "emails",
                 [{**WORK, "display": "E"}, {**HOME, "display": "E"}], id="sub-of-all-elements"),
    # value filters
    pytest.param({"path": 'emails[type eq "work"].display', "value": "Work"}, "emails",
                 [{**WORK, "display": "Work"}, HOME], id="filter-sub-attribute"),
    pytest.param({"path": 'phoneNumbers[type eq "fax"].value', "value": "555-0199"}, "phoneNumbers",
                 [WORK_PHONE, {"type": "fax", "value": "555-0199"}], id="filter-no-match-creates-Q24"),
    pytest.param({"path": 'addresses[type eq "home"]', "value": {"locality": "Shelbyville"}}, "addresses",
                 [WORK_ADDRESS, {"type": "home", "locality": "Shelbyville"}], id="filter-creates-element"),
    pytest.param({"path": 'addresses[type eq "work"]', "value": {"postalCode": "12345"}}, "addresses",
                 [{**WORK_ADDRESS, "postalCode": "12345"}], id="filter-merges-element"),
    pytest.param({"path": 'emails[type eq "home"].primary', "value": True}, "emails",
                 [{**WORK, "primary": False}, {**HOME, "primary": True}], id="filter-primary-moves"),
    # extension
    pytest.param({"path": f"{ENT}:department", "value": "Retail"}, ENT, {**ENTERPRISE, "department": "Retail"},
                 id="extension-attribute"),
    pytest.param({"path": f"{ENT}:costCenter", "value": "42"}, ENT, {**ENTERPRISE, "costCenter": "42"},
                 id="extension-new-attribute"),
    pytest.param({"path": f"{ENT}:manager.value", "value": "m2"}, ENT, {**ENTERPRISE, "manager": {"value": "m2"}},
                 id="extension-sub-attribute"),
    pytest.param({"path": ENT, "value": {"costCenter": "42"}}, ENT, {**ENTERPRISE, "costCenter": "42"},
                 id="whole-extension-merges"),
    pytest.param({"path": "manager", "value": [{"$ref": "../Users/m2", "value": "m2"}]}, ENT,
                 {**ENTERPRISE, "manager": {"value": "m2", "$ref": "../Users/m2"}},
                 id="unqualified-extension-name-one-element-list-E-U8"),
    pytest.param({"path": f"{ENT}:manager", "value": "m3"}, ENT, {**ENTERPRISE, "manager": {"value": "m3"}},
                 id="bare-id-for-manager"),
    # path-less
    pytest.param({"value": {"nickName": "B"}}, "nickName", "B", id="pathless-plain"),
    pytest.param({"value": {"name.middleName": "Ann"}}, "name", {**NAME, "middleName": "Ann"},
                 id="pathless-dotted"),
    pytest.param({"value": {f"{ENT}:division": "East"}}, ENT, {**ENTERPRISE, "division": "East"},
                 id="pathless-urn-qualified"),
    pytest.param({"value": {f"{ENT}:manager.value": "m9"}}, ENT, {**ENTERPRISE, "manager": {"value": "m9"}},
                 id="pathless-urn-qualified-dotted"),
    pytest.param({"value": {ENT: {"division": "East"}}}, ENT, {**ENTERPRISE, "division": "East"},
                 id="pathless-extension-object"),
    pytest.param({"value": {f"{USER_SCHEMA}:title": "Boss"}}, "title", "Boss", id="pathless-core-urn"),
    pytest.param({"value": {"emails": [{"value": "b@other.example"}]}}, "emails",
                 [WORK, HOME, {"value": "b@other.example"}], id="pathless-multi-valued-appends"),
    pytest.param({"value": {"active": "false"}}, "active", False, id="pathless-boolean-string"),
    pytest.param({"value": {"department": "Ops"}}, ENT, {**ENTERPRISE, "department": "Ops"},
                 id="pathless-unqualified-extension-name"),
    # null
    pytest.param({"path": "title", "value": None}, "title", None, id="null-is-no-op"),
    pytest.param({"value": {"displayName": None}}, "displayName", "Babs Jensen", id="pathless-null-is-no-op"),
]


@pytest.mark.parametrize(("operation", "key", "expected"), ADD_CASES)
def test_add(operation: dict[str, Any], key: str, expected: Any) -> None:
    """Each add lands where RFC 7644 §3.5.2.1 says and touches nothing else."""
    before = base_user()
    result = add(operation)
    assert result.resource.get(key) == expected
    others = {k: v for k, v in result.resource.items() if k != key}
    assert others == {k: v for k, v in before.items() if k != key}
    assert result.member_changes == ()
    assert result.password is None


def test_add_sub_attribute_creates_complex() -> None:
    """Adding ``name.givenName`` to a user without a name creates the complex attribute."""
    result = add({"path": "name.givenName", "value": "B"}, {"userName": "x"})
    assert result.resource == {"userName": "x", "name": {"givenName": "B"}}


def test_add_sub_of_all_creates_first_element() -> None:
    """``emails.value`` on a user without emails creates one element."""
    result = add({"path": "emails.value", "value": "a@b.example"}, {"userName": "x"})
    assert result.resource["emails"] == [{"value": "a@b.example"}]


def test_add_extension_attribute_to_user_without_extension() -> None:
    """The extension object and its schema URN appear when the first attribute is added."""
    result = add({"path": f"{ENT}:department", "value": "Retail"}, {"schemas": [USER_SCHEMA], "userName": "x"})
    assert result.resource == {"schemas": [USER_SCHEMA, ENT], "userName": "x", ENT: {"department": "Retail"}}
    assert result.changed_attributes == {f"{ENT}:department"}


def test_add_filter_with_and_conditions_creates_element_from_all() -> None:
    """The created element carries every ``eq`` condition of an ``and`` filter (Q24)."""
    result = add({"path": 'phoneNumbers[type eq "mobile" and primary eq true].value', "value": "555"})
    assert result.resource["phoneNumbers"] == [WORK_PHONE, {"type": "mobile", "primary": True, "value": "555"}]


def test_add_multiple_primaries_in_one_value_keeps_first() -> None:
    """Only one ``primary: true`` survives (RFC 7643 §2.4)."""
    value = [{"value": "a@x.example", "primary": True}, {"value": "b@x.example", "primary": True}]
    emails = add({"path": "emails", "value": value}).resource["emails"]
    assert [e.get("primary") for e in emails] == [False, None, True, False]
