"""``replace`` operations (RFC 7644 §3.5.2.3) for every path kind and attribute kind."""

from __future__ import annotations

from typing import Any

import pytest

from scim_bridge.scim.errors import NoTarget
from scim_bridge.scim.patch import PatchResult
from scim_bridge.scim.schema import ENTERPRISE_USER_SCHEMA as ENT
from scim_bridge.scim.schema import USER_SCHEMA
from tests.unit.scim.patch_fixtures import ENTERPRISE
from tests.unit.scim.patch_fixtures import HOME
from tests.unit.scim.patch_fixtures import NAME
from tests.unit.scim.patch_fixtures import WORK
from tests.unit.scim.patch_fixtures import WORK_ADDRESS
from tests.unit.scim.patch_fixtures import base_user
from tests.unit.scim.patch_fixtures import run_one


def replace(operation: dict[str, Any], resource: dict[str, Any] | None = None) -> PatchResult:
    """Apply one ``replace`` operation to *resource* (default: the base user)."""
    return run_one("replace", operation, resource)


REPLACE_CASES = [
    # single-valued string
    pytest.param({"path": "userName", "value": "bj@example.com"}, "userName", "bj@example.com", id="string-E-U5"),
    pytest.param({"path": "nickName", "value": "Babs"}, "nickName", "Babs", id="absent-is-add"),
    pytest.param({"path": "displayName", "value": None}, "displayName", None, id="null-removes"),
    pytest.param({"path": "externalId", "value": "e2"}, "externalId", "e2", id="common-attribute"),
    # boolean
    pytest.param({"path": "active", "value": False}, "active", False, id="boolean"),
    pytest.param({"path": "active", "value": "False"}, "active", False, id="boolean-string-Q2"),
    pytest.param({"path": "active", "value": "TRUE"}, "active", True, id="boolean-string-upper"),
    # complex
    pytest.param({"path": "name.familyName", "value": "Smith"}, "name", {**NAME, "familyName": "Smith"},
                 id="sub-attribute"),
    pytest.param({"path": "name", "value": {"familyName": "Smith"}}, "name", {**NAME, "familyName": "Smith"},
                 id="complex-merges-unspecified-kept"),
    pytest.param({"path": "name", "value": {"givenName": None, "formatted": "J"}}, "name",
                 {"familyName": "Jensen", "formatted": "J"}, id="complex-null-sub-clears"),
    pytest.param({"path": "name.givenName", "value": None}, "name", {"familyName": "Jensen"},
                 id="sub-attribute-null-removes"),
    pytest.param({"path": "name", "value": None}, "name", None, id="complex-null-removes"),
    # multi-valued complex
    pytest.param({"path": "emails", "value": [{"value": "n@x.example", "type": "work"}]}, "emails",
                 [{"value": "n@x.example", "type": "work"}], id="multi-valued-whole-list"),
    pytest.param({"path": "emails", "value": []}, "emails", None, id="empty-list-clears"),
    pytest.param({"path": "emails", "value": None}, "emails", None, id="null-clears"),
    pytest.param({"path": "emails.type", "value": "other"}, "emails",
                 [{**WORK, "type": "other"}, {**HOME, "type": "other"}], id="sub-of-all-elements"),
    # value filters
    pytest.param({"path": 'emails[type eq "work"].value', "value": "new@work.example"}, "emails",
                 [{**WORK, "value": "new@work.example"}, HOME], id="filter-sub-E-U4"),
    pytest.param({"path": 'emails[type eq "WORK"].value', "value": "new@work.example"}, "emails",
                 [{**WORK, "value": "new@work.example"}, HOME], id="filter-case-insensitive-type"),
    pytest.param({"path": 'emails[type eq "other"].value', "value": "o@x.example"}, "emails",
                 [WORK, HOME, {"type": "other", "value": "o@x.example"}], id="filter-no-match-creates-Q24"),
    pytest.param({"path": 'emails[type eq "work"]', "value": {"value": "n@work.example", "display": "N"}},
                 "emails", [{**WORK, "value": "n@work.example", "display": "N"}, HOME], id="filter-element-merge"),
    pytest.param({"path": 'emails[type eq "work"]', "value": {"value": "n@work.example", "primary": None}},
                 "emails", [{"value": "n@work.example", "type": "work"}, HOME], id="filter-element-null-clears"),
    pytest.param({"path": 'emails[primary eq true].value', "value": "p@x.example"}, "emails",
                 [{**WORK, "value": "p@x.example"}, HOME], id="filter-boolean-Q4"),
    pytest.param({"path": 'emails[type eq "home"].primary', "value": "true"}, "emails",
                 [{**WORK, "primary": False}, {**HOME, "primary": True}], id="filter-primary-moves"),
    pytest.param({"path": 'addresses[type eq "work"].streetAddress', "value": "2 Elm"}, "addresses",
                 [{**WORK_ADDRESS, "streetAddress": "2 Elm"}], id="filter-address-sub"),
    pytest.param({"path": 'addresses[type eq "work"].formatted', "value": "18/2111"}, "addresses",
                 [{**WORK_ADDRESS, "formatted": "18/2111"}], id="filter-address-formatted"),
    pytest.param({"path": 'phoneNumbers[type eq "work"].value', "value": None}, "phoneNumbers",
                 [{"type": "work"}], id="filter-sub-null-removes-sub"),
    pytest.param({"path": 'emails[type eq "work"]', "value": "w@x.example"}, "emails",
                 [{**WORK, "value": "w@x.example"}, HOME], id="filter-bare-value"),
    # extension
    pytest.param({"path": f"{ENT}:department", "value": "Retail"}, ENT, {**ENTERPRISE, "department": "Retail"},
                 id="extension-attribute"),
    pytest.param({"path": f"{ENT}:employeeNumber", "value": "Eqpj"}, ENT, {**ENTERPRISE, "employeeNumber": "Eqpj"},
                 id="extension-new-attribute"),
    pytest.param({"path": f"{ENT}:manager.value", "value": "m2"}, ENT, {**ENTERPRISE, "manager": {"value": "m2"}},
                 id="extension-sub-attribute"),
    pytest.param({"path": f"{ENT}:manager", "value": {"value": "m2"}}, ENT,
                 {**ENTERPRISE, "manager": {"value": "m2"}}, id="extension-complex"),
    pytest.param({"path": f"{ENT}:department", "value": None}, ENT, {"manager": {"value": "m1"}},
                 id="extension-null-removes"),
    pytest.param({"path": ENT, "value": {"department": "Ops"}}, ENT, {**ENTERPRISE, "department": "Ops"},
                 id="whole-extension-merges"),
    pytest.param({"path": ENT.lower(), "value": {"department": "Ops"}}, ENT, {**ENTERPRISE, "department": "Ops"},
                 id="whole-extension-urn-case-insensitive"),
    # path-less
    pytest.param({"value": {"active": False}}, "active", False, id="pathless-plain-O-U5"),
    pytest.param({"value": {"name.givenName": "Kkom"}}, "name", {**NAME, "givenName": "Kkom"}, id="pathless-dotted"),
    pytest.param({"value": {f"{ENT}:employeeNumber": "Aklq"}}, ENT, {**ENTERPRISE, "employeeNumber": "Aklq"},
                 id="pathless-urn-qualified"),
    pytest.param({"value": {ENT: {"department": "Ops", "costCenter": None}}}, ENT,
                 {**ENTERPRISE, "department": "Ops"}, id="pathless-extension-object"),
    pytest.param({"value": {"emails": [{"value": "only@x.example"}]}}, "emails", [{"value": "only@x.example"}],
                 id="pathless-multi-valued-replaces"),
    pytest.param({"value": {"title": None}}, "title", None, id="pathless-null"),
    pytest.param({"value": {"displayName": None}}, "displayName", None, id="pathless-null-removes"),
    pytest.param({"value": {"name": {"givenName": "G"}}}, "name", {**NAME, "givenName": "G"},
                 id="pathless-complex-merges"),
    pytest.param({"value": {USER_SCHEMA: {"nickName": "N"}}}, "nickName", "N", id="pathless-core-urn-object"),
    pytest.param({"value": {"id": "other", "meta": {"version": "x"}, "groups": [], "nickName": "N"}}, "nickName",
                 "N", id="pathless-read-only-keys-ignored"),
]


@pytest.mark.parametrize(("operation", "key", "expected"), REPLACE_CASES)
def test_replace(operation: dict[str, Any], key: str, expected: Any) -> None:
    """Each replace lands where RFC 7644 §3.5.2.3 says and touches nothing else."""
    before = base_user()
    result = replace(operation)
    assert result.resource.get(key) == expected
    others = {k: v for k, v in result.resource.items() if k != key}
    assert others == {k: v for k, v in before.items() if k != key}


def test_replace_filter_matching_several_elements_replaces_all() -> None:
    """Every matching element gets the new sub-attribute value (RFC 7644 §3.5.2.3)."""
    user = base_user()
    user["emails"].append({"value": "second@work.example", "type": "work"})
    emails = replace({"path": 'emails[type eq "work"].display', "value": "W"}, user).resource["emails"]
    assert [e.get("display") for e in emails] == ["W", None, "W"]


def test_replace_filter_that_cannot_describe_an_element_fails() -> None:
    """No match and no ``eq`` conditions to build an element from: 400 noTarget (RFC 7644 §3.5.2.3)."""
    with pytest.raises(NoTarget):
        replace({"path": 'emails[type eq "a" or type eq "b"].value', "value": "x@y.example"})
    with pytest.raises(NoTarget):
        replace({"path": 'emails[value co "nowhere"].display', "value": "x"})


def test_replace_last_extension_attribute_drops_extension_and_schema() -> None:
    """An emptied extension object disappears, and so does its URN in ``schemas``."""
    user = base_user()
    user[ENT] = {"department": "Sales"}
    result = replace({"path": f"{ENT}:department", "value": None}, user)
    assert ENT not in result.resource
    assert result.resource["schemas"] == [USER_SCHEMA]


def test_replace_whole_extension_with_null_removes_it() -> None:
    """``replace`` of the extension URN with ``null`` unassigns every extension attribute."""
    result = replace({"path": ENT, "value": None})
    assert ENT not in result.resource
    assert result.changed_attributes == {f"{ENT}:department", f"{ENT}:manager"}


def test_replace_multi_valued_keeps_one_primary() -> None:
    """A replacing list with two primaries keeps the first (RFC 7643 §2.4)."""
    value = [{"value": "a@x.example", "primary": "true"}, {"value": "b@x.example", "primary": True}]
    emails = replace({"path": "emails", "value": value}).resource["emails"]
    assert emails == [{"value": "a@x.example", "primary": True}, {"value": "b@x.example", "primary": False}]
