"""Verbatim Okta and Entra PATCH bodies and the quirks of idp-behavior.md §4 (Q1–Q9, Q11, Q24, Q25, Q27)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scim_bridge.scim.filter.ast import AttrPath
from scim_bridge.scim.filter.ast import Compare
from scim_bridge.scim.patch import MemberChange
from scim_bridge.scim.patch import PatchResult
from scim_bridge.scim.patch import apply_patch
from scim_bridge.scim.patch import parse_patch_request
from scim_bridge.scim.schema import ENTERPRISE_USER_SCHEMA as ENT
from scim_bridge.scim.schema import GROUP_RESOURCE
from scim_bridge.scim.schema import GROUP_SCHEMA
from scim_bridge.scim.schema import USER_RESOURCE
from scim_bridge.scim.schema import USER_SCHEMA
from scim_bridge.scim.schema import ResourceType

OKTA_USER_ID = "23a35c27-23d3-4c03-b4c5-6443c09e7173"
OKTA_OTHER_ID = "89bb1940-b905-4575-9e7f-6f887cfb368e"
OKTA_GROUP_ID = "abf4dd94-a4c0-4f67-89c9-76b03340cb9b"


def okta_user() -> dict[str, Any]:
    """Return the O-U2 user as stored (canonical form, with id and meta)."""
    return {
        "schemas": [USER_SCHEMA],
        "id": OKTA_USER_ID,
        "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": True, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "active": True,
        "meta": {"resourceType": "User"},
    }


def entra_user() -> dict[str, Any]:
    """Return the E-U2 user as stored."""
    return {
        "schemas": [USER_SCHEMA, ENT],
        "id": "5171a35d82074e068ce2",
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
        "active": True,
        "emails": [{"primary": True, "type": "work",
                    "value": "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"}],
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "meta": {"resourceType": "User"},
    }


def group(display_name: str = "Test SCIMv2", group_id: str = OKTA_GROUP_ID) -> dict[str, Any]:
    """Return a stored group (never with members)."""
    return {"schemas": [GROUP_SCHEMA], "id": group_id, "displayName": display_name,
            "meta": {"resourceType": "Group"}}


def run(resource: dict[str, Any], body_json: str, resource_type: ResourceType = USER_RESOURCE) -> PatchResult:
    """Parse a verbatim JSON body and apply it."""
    return apply_patch(resource, parse_patch_request(json.loads(body_json)), resource_type)


# --- Okta (idp-behavior.md §1) -----------------------------------------------------------------


def test_okta_o_u5_deactivate() -> None:
    """O-U5: path-less replace with ``{"active": false}``."""
    result = run(okta_user(), """{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": false}}]}""")
    assert result.resource == {**okta_user(), "active": False}
    assert result.changed_attributes == {"active"}


def test_okta_o_u6_reactivate() -> None:
    """O-U6: same shape with ``true``."""
    user = {**okta_user(), "active": False}
    result = run(user, """{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": true}}]}""")
    assert result.resource["active"] is True


def test_okta_o_u7_password_sync() -> None:
    """O-U7: the password comes back in the result, never in the resource."""
    result = run(okta_user(), """{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"password": "1mz050nq"}}]}""")
    assert result.password == "1mz050nq"
    assert result.resource == okta_user()
    assert result.changed_attributes == {"password"}


def test_okta_o_g4_rename_with_read_only_id() -> None:
    """O-G4: the value carries the read-only ``id``; it is ignored, membership untouched."""
    result = run(group("Old name"), """{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b",
        "displayName": "Test SCIMv2"}}]}""", GROUP_RESOURCE)
    assert result.resource == group("Test SCIMv2")
    assert result.member_changes == ()
    assert result.changed_attributes == {"displayName"}


def test_okta_o_g4_rename_is_idempotent_q27() -> None:
    """Q27: the rename sent before every membership update changes nothing."""
    result = run(group(), """{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b",
        "displayName": "Test SCIMv2"}}]}""", GROUP_RESOURCE)
    assert result.resource == group()
    assert result.changed_attributes == frozenset()


def test_okta_o_g4_rename_with_a_different_id_still_ignores_it() -> None:
    """RFC 7643 §2.2: a readOnly value sent by the client is ignored, whatever it is."""
    result = run(group("Old"), """{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"id": "something-else", "displayName": "New"}}]}""",
                 GROUP_RESOURCE)
    assert result.resource["id"] == OKTA_GROUP_ID


def test_okta_o_g5_remove_by_filter_then_add() -> None:
    """O-G5: one request, remove-by-filter then add, emitted in order (Q4, Q8, Q9)."""
    result = run(group(), """{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "remove", "path": "members[value eq \\"89bb1940-b905-4575-9e7f-6f887cfb368e\\"]"},
            {"op": "add", "path": "members",
             "value": [{"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"}]}
        ]}""", GROUP_RESOURCE)
    assert result.member_changes == (
        MemberChange("remove", ({"value": OKTA_OTHER_ID},)),
        MemberChange("add", ({"value": OKTA_USER_ID, "display": "test.user@okta.local"},)),
    )
    assert result.resource == group()
    assert result.changed_attributes == {"members"}


def test_okta_o_g6_replace_members() -> None:
    """O-G6: full membership push = replace with exactly that set (Q7)."""
    result = run(group(), """{
      "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
      "Operations": [{
          "op": "replace", "path": "members",
          "value": [
            {"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"},
            {"value": "89bb1940-b905-4575-9e7f-6f887cfb368e", "display": "test.user@okta.local"}
          ]}]}""", GROUP_RESOURCE)
    assert result.member_changes == (MemberChange("replace", (
        {"value": OKTA_USER_ID, "display": "test.user@okta.local"},
        {"value": OKTA_OTHER_ID, "display": "test.user@okta.local"})),)
    assert result.member_changes[0].ids == (OKTA_USER_ID, OKTA_OTHER_ID)


# --- Entra (idp-behavior.md §2) ----------------------------------------------------------------


def test_entra_e_u4_multi_valued_and_sub_attribute() -> None:
    """E-U4: filtered email value and ``name.familyName`` (Q1, Q4)."""
    result = run(entra_user(), """{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Replace", "path": "emails[type eq \\"work\\"].value", "value": "updatedEmail@microsoft.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}
        ]}""")
    assert result.resource["emails"] == [{"primary": True, "type": "work", "value": "updatedEmail@microsoft.com"}]
    assert result.resource["name"]["familyName"] == "updatedFamilyName"
    assert result.changed_attributes == {"emails", "name"}


def test_entra_e_u5_replace_user_name() -> None:
    """E-U5: ``Replace`` with a capital R on ``userName``."""
    result = run(entra_user(), """{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
        {"op":"Replace","path":"userName","value":"5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"}]}""")
    assert result.resource["userName"] == "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"


@pytest.mark.parametrize("value", ["false", '"False"'], ids=["boolean", "string-without-flag-Q2"])
def test_entra_e_u6_disable(value: str) -> None:
    """E-U6 and MS-COMPAT 1: ``active`` as a boolean or as the string ``"False"``."""
    body = '{"Operations":[{"op":"Replace","path":"active","value":VALUE}],' \
           '"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}'
    result = run(entra_user(), body.replace("VALUE", value))
    assert result.resource["active"] is False


def test_entra_e_u8_manager() -> None:
    """E-U8: ``Add`` on the unqualified ``manager`` with a one-element list."""
    result = run(entra_user(), """{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
        {"op":"Add","path":"manager","value":[{"$ref":"http://.../scim/Users/00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
        "value":"00aa00aa-bb11-cc22-dd33-44ee44ee44ee"}]}]}""")
    assert result.resource[ENT] == {"manager": {
        "$ref": "http://.../scim/Users/00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
        "value": "00aa00aa-bb11-cc22-dd33-44ee44ee44ee"}}
    assert result.changed_attributes == {f"{ENT}:manager"}


def test_entra_laravel_first_add_then_replace() -> None:
    """The real-world Entra PATCH (laravel-scim-server#34): Q24 element creation and a URN path."""
    user = entra_user()
    result = run(user, """{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
        {"op":"Replace","path":"emails[type eq \\"work\\"].value","value":"AdeleV2@contoso.onmicrosoft.com"},
        {"op":"Replace","path":"addresses[type eq \\"work\\"].formatted","value":"18/2111"},
        {"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
         "value":"Retail"}]}""")
    assert result.resource["emails"][0]["value"] == "AdeleV2@contoso.onmicrosoft.com"
    assert result.resource["addresses"] == [{"type": "work", "formatted": "18/2111"}]
    assert result.resource[ENT] == {"department": "Retail"}


def test_entra_compat_2_add_single_valued_both_spellings() -> None:
    """MS-COMPAT 2: ``Add``/``add`` on single-valued ``nickName`` (Q1, Q25), twice."""
    result = run(entra_user(), """{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
        {"op":"Add","path":"nickName","value":"Babs"},{"op":"add","path":"nickName","value":"Babs2"}]}""")
    assert result.resource["nickName"] == "Babs2"


def test_entra_compat_3_without_flag() -> None:
    """MS-COMPAT 3 without the flag: one op per attribute."""
    result = run(entra_user(), """{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
        {"op":"Replace","path":"displayName","value":"Pvlo"},
        {"op":"Replace","path":"emails[type eq \\"work\\"].value","value":"TestBcwqnm@test.microsoft.com"},
        {"op":"Replace","path":"name.givenName","value":"Gtfd"},
        {"op":"Replace","path":"name.familyName","value":"Pkqf"},
        {"op":"Replace","path":"externalId","value":"Eqpj"},
        {"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
         "value":"Eqpj"}]}""")
    r = result.resource
    assert (r["displayName"], r["name"]["givenName"], r["name"]["familyName"], r["externalId"]) == (
        "Pvlo", "Gtfd", "Pkqf", "Eqpj")
    assert r["emails"][0]["value"] == "TestBcwqnm@test.microsoft.com"
    assert r[ENT] == {"employeeNumber": "Eqpj"}
    assert result.changed_attributes == {"displayName", "emails", "name", "externalId", f"{ENT}:employeeNumber"}


def test_entra_compat_3_with_flag_dotted_and_urn_keys() -> None:
    """MS-COMPAT 3 with the flag: path-less replace with dotted and URN-qualified keys (Q3)."""
    result = run(entra_user(), """{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
        {"op":"replace","path":"emails[type eq \\"work\\"].value","value":"TestMhvaes@test.microsoft.com"},
        {"op":"replace","value":{"displayName":"Bjfe","name.givenName":"Kkom","name.familyName":"Unua",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"Aklq"}}]}""")
    r = result.resource
    assert r["displayName"] == "Bjfe"
    assert r["name"] == {"formatted": "givenName familyName", "givenName": "Kkom", "familyName": "Unua"}
    assert r[ENT] == {"employeeNumber": "Aklq"}
    assert r["emails"][0]["value"] == "TestMhvaes@test.microsoft.com"


def test_entra_e_g4_rename_group() -> None:
    """E-G4: replace ``displayName`` with a path."""
    result = run(group("displayName", "fa2ce26709934589afc5"),
                 """{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace",
                 "path":"displayName","value":"1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}]}""",
                 GROUP_RESOURCE)
    assert result.resource["displayName"] == "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"


def test_entra_e_g5_add_member_with_null_ref() -> None:
    """E-G5: ``$ref`` is JSON null (Q9)."""
    result = run(group(), """{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Add", "path": "members",
                        "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]}]}""",
                 GROUP_RESOURCE)
    assert result.member_changes == (MemberChange("add", ({"value": "f648f8d5ea4e4cd38e9c"},)),)


def test_entra_e_g6_remove_member_by_value_list_q5() -> None:
    """E-G6 / MS-COMPAT 4 without flag: remove with a value list removes only those (Q5)."""
    result = run(group(), """{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Remove", "path": "members",
                        "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]}]}""",
                 GROUP_RESOURCE)
    assert result.member_changes == (MemberChange("remove", ({"value": "f648f8d5ea4e4cd38e9c"},)),)


def test_entra_compat_4_both_variants() -> None:
    """MS-COMPAT 4: the value-list form and the flag's filter form give the same change."""
    without = run(group(), """{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
        {"op":"Remove","path":"members","value":[{"value":"u1091"}]}]}""", GROUP_RESOURCE)
    with_flag = run(group(), """{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
        {"op":"remove","path":"members[value eq \\"u1091\\"]"}]}""", GROUP_RESOURCE)
    assert without.member_changes == with_flag.member_changes == (MemberChange("remove", ({"value": "u1091"},)),)


# --- quirks not tied to one body (idp-behavior.md §4) ------------------------------------------


@pytest.mark.parametrize("op", ["add", "Add", "ADD", "replace", "Replace", "REPLACE", "rEpLaCe"])
def test_q1_op_case_insensitive(op: str) -> None:
    """Q1: ``op`` in any case."""
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": op, "path": "title", "value": "T"}]}
    assert apply_patch(okta_user(), parse_patch_request(body), USER_RESOURCE).resource["title"] == "T"


@pytest.mark.parametrize(("value", "expected"), [("True", True), ("true", True), ("False", False),
                                                  ("FALSE", False), (" false ", False), (True, True)])
def test_q2_boolean_strings(value: Any, expected: bool) -> None:
    """Q2: boolean strings for ``active`` and for ``primary`` become JSON booleans."""
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "replace", "path": "active", "value": value},
        {"op": "add", "path": "emails", "value": [{"value": "n@x.example", "primary": value}]}]}
    result = apply_patch(okta_user(), parse_patch_request(body), USER_RESOURCE).resource
    assert result["active"] is expected
    assert result["emails"][-1]["primary"] is expected


@pytest.mark.parametrize("op", ["Remove", "remove"])
def test_q6_remove_all_members(op: str) -> None:
    """Q6: remove ``members`` without a value removes everyone."""
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": op, "path": "members"}]}
    result = apply_patch(group(), parse_patch_request(body), GROUP_RESOURCE)
    assert result.member_changes == (MemberChange("remove_all"),)


def test_q7_replace_members_with_empty_list() -> None:
    """Q7: replace with ``[]`` sets an empty membership."""
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "members", "value": []}]}
    assert apply_patch(group(), parse_patch_request(body), GROUP_RESOURCE).member_changes == (
        MemberChange("replace", ()),)


def test_q8_validator_remove_add_replace_on_same_attribute() -> None:
    """Q8: several ops on one attribute apply in order."""
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "remove", "path": "emails"},
        {"op": "add", "path": "emails", "value": [{"value": "a@x.example", "type": "work"}]},
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "b@x.example"}]}
    result = apply_patch(okta_user(), parse_patch_request(body), USER_RESOURCE)
    assert result.resource["emails"] == [{"value": "b@x.example", "type": "work"}]


@pytest.mark.parametrize(("member", "expected"), [
    pytest.param({"value": "u1"}, {"value": "u1"}, id="value-only"),
    pytest.param({"value": "u1", "display": "Ann"}, {"value": "u1", "display": "Ann"}, id="display"),
    pytest.param({"value": "u1", "displayName": "Ann"}, {"value": "u1", "display": "Ann"}, id="displayName"),
    pytest.param({"value": "u1", "$ref": None}, {"value": "u1"}, id="null-ref"),
    pytest.param({"value": "u1", "type": None}, {"value": "u1"}, id="null-type"),
    pytest.param("u1", {"value": "u1"}, id="bare-id"),
])
def test_q9_member_shapes(member: Any, expected: dict[str, str]) -> None:
    """Q9: every member shape seen in the wild normalises; a display (or Entra's displayName) is kept."""
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [member]}]}
    assert apply_patch(group(), parse_patch_request(body), GROUP_RESOURCE).member_changes == (
        MemberChange("add", (expected,)),)


def test_q9_member_type_and_ref_are_kept() -> None:
    """``type`` (canonicalised) and a string ``$ref`` stay in the member object."""
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": "g2", "type": "group", "$ref": "../Groups/g2"},
                                                   {"value": "u1", "type": "User"}, {"value": "u1"}]}]}
    assert apply_patch(group(), parse_patch_request(body), GROUP_RESOURCE).member_changes == (
        MemberChange("add", ({"value": "g2", "type": "Group", "$ref": "../Groups/g2"},
                             {"value": "u1", "type": "User"})),)


def test_q11_read_only_and_null_keys_in_pathless_value() -> None:
    """Q11: ``meta``, ``id``, ``groups``, ``schemas`` and nulls in a path-less value are harmless."""
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": {
        "schemas": [USER_SCHEMA], "id": "x", "meta": {"resourceType": "User"}, "groups": [],
        "title": None, "displayName": "New"}}]}
    result = apply_patch(okta_user(), parse_patch_request(body), USER_RESOURCE)
    assert result.resource == {**okta_user(), "displayName": "New"}


def test_q11_unimplemented_extension_keys_are_dropped() -> None:
    """Q10/Q11: keys under an extension URN we do not implement are ignored, as on POST."""
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "value": {
        "urn:ietf:params:scim:schemas:extension:Microsoft:Entra:2.0:User:foo": "x", "nickName": "N"}}]}
    assert apply_patch(okta_user(), parse_patch_request(body), USER_RESOURCE).resource["nickName"] == "N"


def test_pathless_replace_without_members_never_touches_membership() -> None:
    """A path-less replace that does not name members emits no member change (and null members is ignored)."""
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "replace", "value": {"displayName": "X", "members": None}}]}
    assert apply_patch(group(), parse_patch_request(body), GROUP_RESOURCE).member_changes == ()


@pytest.mark.parametrize(("op", "expected"), [("add", "add"), ("replace", "replace")])
def test_pathless_members_key(op: str, expected: str) -> None:
    """A path-less value with ``members`` adds or replaces membership."""
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": op, "value": {"displayName": "X", "members": [{"value": "u1"}, {"value": "u2"}]}}]}
    result = apply_patch(group(), parse_patch_request(body), GROUP_RESOURCE)
    assert result.member_changes == (MemberChange(expected, ({"value": "u1"}, {"value": "u2"})),)  # type: ignore[arg-type]
    assert result.resource["displayName"] == "X"


@pytest.mark.parametrize(("path", "change"), [
    pytest.param('members[value eq "a" or value eq "b"]', MemberChange("remove", ({"value": "a"}, {"value": "b"})),
                 id="or-chain-of-value-eq"),
    pytest.param('members[value eq "a" or value eq "a"]', MemberChange("remove", ({"value": "a"},)),
                 id="duplicates-collapsed"),
    pytest.param('members[type eq "Group"]',
                 MemberChange("remove_where", filter=Compare(AttrPath(None, "type"), "eq", "Group")),
                 id="other-filter-remove-where"),
    pytest.param('members[TYPE eq "Group"]',
                 MemberChange("remove_where", filter=Compare(AttrPath(None, "type"), "eq", "Group")),
                 id="remove-where-path-canonical"),
    pytest.param('members[members.value eq "a"]', MemberChange("remove", ({"value": "a"},)),
                 id="qualified-value-eq"),
    pytest.param('members[VALUE eq "a"]', MemberChange("remove", ({"value": "a"},)), id="value-any-case"),
    pytest.param('members[value eq "a" and type eq "User"]', None, id="and-is-remove-where"),
    pytest.param('members[value sw "a"]', None, id="sw-is-remove-where"),
])
def test_member_filters_on_remove(path: str, change: MemberChange | None) -> None:
    """Member filters: value-eq sets become ``remove``, anything else ``remove_where`` with the filter."""
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": path}]}
    (emitted,) = apply_patch(group(), parse_patch_request(body), GROUP_RESOURCE).member_changes
    if change is None:
        assert emitted.op == "remove_where" and emitted.filter is not None and emitted.values == ()
    else:
        assert emitted == change


def test_member_changes_keep_request_order() -> None:
    """Member changes are emitted in operation order, one per operation."""
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "remove", "path": "members"},
        {"op": "add", "path": "members", "value": [{"value": "a"}, {"value": "a"}]},
        {"op": "replace", "path": "members", "value": None},
        {"op": "add", "path": "members", "value": []},
        {"op": "remove", "path": "members", "value": []},
        {"op": "add", "path": "members", "value": None},
        {"op": "remove", "path": "members", "value": {"value": "b"}}]}
    changes = apply_patch(group(), parse_patch_request(body), GROUP_RESOURCE).member_changes
    assert [(c.op, c.ids) for c in changes] == [("remove_all", ()), ("add", ("a",)), ("remove_all", ()),
                                                 ("remove", ("b",))]
