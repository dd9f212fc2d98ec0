"""The PatchOp envelope, error cases, atomicity and result bookkeeping of the PATCH engine."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from scim_bridge.scim.errors import InvalidPath
from scim_bridge.scim.errors import InvalidSyntax
from scim_bridge.scim.errors import InvalidValue
from scim_bridge.scim.errors import Mutability
from scim_bridge.scim.errors import NoTarget
from scim_bridge.scim.errors import ScimError
from scim_bridge.scim.patch import MISSING
from scim_bridge.scim.patch import MemberChange
from scim_bridge.scim.patch import Operation
from scim_bridge.scim.patch import PatchResult
from scim_bridge.scim.patch import apply_patch
from scim_bridge.scim.patch import parse_patch_request
from scim_bridge.scim.schema import ENTERPRISE_USER_SCHEMA as ENT
from scim_bridge.scim.schema import GROUP_RESOURCE
from scim_bridge.scim.schema import PATCH_OP_SCHEMA
from scim_bridge.scim.schema import USER_RESOURCE
from scim_bridge.scim.schema import USER_SCHEMA
from scim_bridge.scim.schema import ResourceType


def base_user() -> dict[str, Any]:
    """Return a fresh user in canonical wire form."""
    return {
        "schemas": [USER_SCHEMA, ENT],
        "id": "u1",
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs Jensen",
        "active": True,
        "emails": [{"value": "bjensen@work.example", "type": "work", "primary": True},
                   {"value": "babs@home.example", "type": "home"}],
        ENT: {"department": "Sales", "manager": {"value": "m1"}},
        "meta": {"resourceType": "User", "version": 'W/"1"'},
    }


def base_group() -> dict[str, Any]:
    """Return a fresh group (never with members)."""
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1", "displayName": "Admins",
            "meta": {"resourceType": "Group"}}


def patch(resource: dict[str, Any], *operations: dict[str, Any], resource_type: ResourceType = USER_RESOURCE,
          ignore_unknown: bool = False) -> PatchResult:
    """Wrap *operations* in a PatchOp body, parse and apply it."""
    body = {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}
    return apply_patch(resource, parse_patch_request(body), resource_type, ignore_unknown=ignore_unknown)


# --- the envelope -------------------------------------------------------------------------------


def test_parse_patch_request_returns_operations() -> None:
    """Ops come back lower-cased, paths stripped, ``value`` distinct from ``null`` and absent."""
    ops = parse_patch_request({"schemas": [PATCH_OP_SCHEMA], "Operations": [
        {"op": "Replace", "path": " userName ", "value": "x"},
        {"op": "REMOVE", "path": "members"},
        {"op": "add", "path": "title", "value": None},
        {"op": "add", "path": "", "value": {"title": "t"}}]})
    assert ops == [Operation("replace", "userName", "x"), Operation("remove", "members"),
                   Operation("add", "title", None), Operation("add", None, {"title": "t"})]
    assert [op.has_value for op in ops] == [True, False, True, True]
    assert ops[1].value is MISSING


def test_parse_patch_request_keys_case_insensitive() -> None:
    """``Operations``, ``op``, ``path`` and ``value`` are matched case-insensitively (RFC 7643 §2.1)."""
    ops = parse_patch_request({"Schemas": [PATCH_OP_SCHEMA.upper()],
                               "operations": [{"OP": "add", "Path": "title", "VALUE": "t"}]})
    assert ops == [Operation("add", "title", "t")]


@pytest.mark.parametrize(("body", "error"), [
    pytest.param([], InvalidSyntax, id="not-an-object"),
    pytest.param({"Operations": [{"op": "add", "value": {}}]}, InvalidSyntax, id="no-schemas"),
    pytest.param({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                  "Operations": [{"op": "add", "value": {}}]}, InvalidSyntax, id="wrong-schema"),
    pytest.param({"schemas": PATCH_OP_SCHEMA, "Operations": [{"op": "add", "value": {}}]}, InvalidSyntax,
                 id="schemas-not-a-list"),
    pytest.param({"schemas": [PATCH_OP_SCHEMA]}, InvalidSyntax, id="no-operations"),
    pytest.param({"schemas": [PATCH_OP_SCHEMA], "Operations": []}, InvalidSyntax, id="empty-operations"),
    pytest.param({"schemas": [PATCH_OP_SCHEMA], "Operations": {"op": "add"}}, InvalidSyntax,
                 id="operations-not-a-list"),
    pytest.param({"schemas": [PATCH_OP_SCHEMA], "Operations": ["add"]}, InvalidSyntax, id="operation-not-object"),
    pytest.param({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"path": "title", "value": "t"}]}, InvalidSyntax,
                 id="op-missing"),
    pytest.param({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "move", "path": "title"}]}, InvalidSyntax,
                 id="op-unknown"),
    pytest.param({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": 1, "path": "title"}]}, InvalidSyntax,
                 id="op-not-a-string"),
    pytest.param({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "add", "path": 5, "value": 1}]},
                 InvalidPath, id="path-not-a-string"),
    pytest.param({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "add", "path": 'emails[type eq "w"',
                                                                 "value": 1}]}, InvalidPath, id="path-unparseable"),
    pytest.param({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "remove", "path": "name..x"}]},
                 InvalidPath, id="path-bad-dots"),
    pytest.param({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "add", "path": "title"}]}, InvalidValue,
                 id="add-without-value"),
    pytest.param({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "Replace"}]}, InvalidValue,
                 id="replace-without-value"),
])
def test_parse_patch_request_errors(body: Any, error: type[ScimError]) -> None:
    """A malformed envelope is a 400 with the matching scimType, before anything is applied."""
    with pytest.raises(error) as info:
        parse_patch_request(body)
    assert type(info.value) is error
    assert info.value.status == 400


def test_parse_error_names_the_operation() -> None:
    """Messages say which operation is wrong."""
    with pytest.raises(InvalidSyntax, match=r"Operations\[1\]\.op"):
        parse_patch_request({"schemas": [PATCH_OP_SCHEMA], "Operations": [
            {"op": "add", "path": "title", "value": "t"}, {"op": "copy"}]})


# --- errors while applying ----------------------------------------------------------------------

USER_ERRORS = [
    pytest.param({"op": "remove"}, NoTarget, id="remove-without-path"),
    pytest.param({"op": "add", "path": "nosuch", "value": 1}, InvalidPath, id="unknown-attribute"),
    pytest.param({"op": "add", "path": "name.nosuch", "value": 1}, InvalidPath, id="unknown-sub-attribute"),
    pytest.param({"op": "add", "path": f"{ENT}:nosuch", "value": 1}, InvalidPath, id="unknown-extension-attribute"),
    pytest.param({"op": "add", "path": "urn:example:ext:1.0:User:foo", "value": 1}, InvalidPath,
                 id="unknown-schema-urn"),
    pytest.param({"op": "add", "path": "members", "value": [{"value": "x"}]}, InvalidPath, id="members-on-user"),
    pytest.param({"op": "remove", "path": 'emails[nosuch eq "x"]'}, InvalidPath, id="unknown-filter-attribute"),
    pytest.param({"op": "remove", "path": "emails[primary gt true]"}, InvalidPath, id="boolean-ordered"),
    pytest.param({"op": "remove", "path": 'emails[primary eq "maybe"]'}, InvalidPath, id="boolean-bad-literal"),
    pytest.param({"op": "replace", "path": 'name[givenName eq "x"].familyName', "value": "y"}, NoTarget,
                 id="filter-on-single-valued"),
    pytest.param({"op": "replace", "path": 'emails[type eq "x" or type eq "y"]', "value": {"value": "v"}},
                 NoTarget, id="filter-no-match-not-derivable"),
    pytest.param({"op": "replace", "path": "id", "value": "x"}, Mutability, id="id"),
    pytest.param({"op": "remove", "path": "id"}, Mutability, id="remove-id"),
    pytest.param({"op": "replace", "path": "meta.version", "value": "x"}, Mutability, id="meta-sub"),
    pytest.param({"op": "add", "path": "meta", "value": {"created": "2020-01-01T00:00:00Z"}}, Mutability,
                 id="meta"),
    pytest.param({"op": "add", "path": "groups", "value": [{"value": "g1"}]}, Mutability, id="groups"),
    pytest.param({"op": "remove", "path": 'groups[value eq "g1"]'}, Mutability, id="groups-filter"),
    pytest.param({"op": "replace", "path": f"{ENT}:manager.displayName", "value": "x"}, Mutability,
                 id="manager-displayName"),
    pytest.param({"op": "replace", "path": "active", "value": "maybe"}, InvalidValue, id="boolean-bad"),
    pytest.param({"op": "replace", "path": "active", "value": 1}, InvalidValue, id="boolean-number"),
    pytest.param({"op": "replace", "path": "displayName", "value": 42}, InvalidValue, id="string-number"),
    pytest.param({"op": "replace", "path": "displayName", "value": ["a", "b"]}, InvalidValue,
                 id="single-valued-list"),
    pytest.param({"op": "replace", "path": "name", "value": "Babs"}, InvalidValue, id="complex-scalar"),
    pytest.param({"op": "add", "path": "emails", "value": 5}, InvalidValue, id="multi-valued-number"),
    pytest.param({"op": "add", "path": 'emails[type eq "work"].primary', "value": "yes"}, InvalidValue,
                 id="filter-sub-bad-boolean"),
    pytest.param({"op": "replace", "path": "name", "value": {"nickname": "x"}}, InvalidSyntax,
                 id="unknown-sub-in-value"),
    pytest.param({"op": "add", "value": "Babs"}, InvalidValue, id="pathless-not-object"),
    pytest.param({"op": "add", "value": ["Babs"]}, InvalidValue, id="pathless-list"),
    pytest.param({"op": "replace", "value": {"nosuch": 1}}, InvalidSyntax, id="pathless-unknown-key"),
    pytest.param({"op": "replace", "value": {"name.nosuch": 1}}, InvalidSyntax, id="pathless-unknown-dotted"),
    pytest.param({"op": "replace", "value": {f"{ENT}:nosuch": 1}}, InvalidSyntax, id="pathless-unknown-urn"),
    pytest.param({"op": "replace", "value": {ENT: {"nosuch": 1}}}, InvalidSyntax,
                 id="pathless-unknown-in-extension"),
    pytest.param({"op": "replace", "value": {ENT: "Sales"}}, InvalidValue, id="pathless-extension-not-object"),
    pytest.param({"op": "remove", "path": "userName"}, InvalidValue, id="remove-required"),
    pytest.param({"op": "replace", "path": "userName", "value": None}, InvalidValue, id="null-required"),
    pytest.param({"op": "replace", "value": {"userName": None}}, InvalidValue, id="pathless-null-required"),
    pytest.param({"op": "remove", "path": "password"}, InvalidValue, id="remove-password"),
    pytest.param({"op": "replace", "path": "password", "value": None}, InvalidValue, id="null-password"),
    pytest.param({"op": "replace", "path": "password", "value": 1234}, InvalidValue, id="password-number"),
]


@pytest.mark.parametrize(("operation", "error"), USER_ERRORS)
def test_user_errors(operation: dict[str, Any], error: type[ScimError]) -> None:
    """Each bad operation raises its RFC 7644 §3.12 error, a 400, and returns nothing."""
    user = base_user()
    snapshot = copy.deepcopy(user)
    with pytest.raises(error) as info:
        patch(user, operation)
    assert type(info.value) is error and info.value.status == 400
    assert info.value.to_body()["scimType"] == error.scim_type
    assert user == snapshot


GROUP_ERRORS = [
    pytest.param({"op": "add", "path": "members", "value": [{"display": "x"}]}, InvalidValue, id="member-no-value"),
    pytest.param({"op": "add", "path": "members", "value": [{"value": ""}]}, InvalidValue, id="member-empty-value"),
    pytest.param({"op": "add", "path": "members", "value": [{"value": None}]}, InvalidValue, id="member-null-value"),
    pytest.param({"op": "add", "path": "members", "value": [{"value": 7}]}, InvalidValue, id="member-number"),
    pytest.param({"op": "add", "path": "members", "value": [{"value": "u", "type": "Robot"}]}, InvalidValue,
                 id="member-bad-type"),
    pytest.param({"op": "add", "path": "members", "value": [{"value": "u", "$ref": 5}]}, InvalidValue,
                 id="member-bad-ref"),
    pytest.param({"op": "add", "path": "members", "value": [5]}, InvalidValue, id="member-not-object"),
    pytest.param({"op": "add", "path": "members", "value": [{"value": "u", "operation": "delete"}]}, InvalidValue,
                 id="member-scim11-operation"),
    pytest.param({"op": "add", "path": "members", "value": [{"value": "u", "color": "red"}]}, InvalidSyntax,
                 id="member-unknown-key"),
    pytest.param({"op": "replace", "path": "members.value", "value": "x"}, Mutability, id="members-value"),
    pytest.param({"op": "replace", "path": 'members[value eq "x"].display', "value": "y"}, Mutability,
                 id="members-filter-sub"),
    pytest.param({"op": "remove", "path": "members.type"}, Mutability, id="remove-members-type"),
    pytest.param({"op": "replace", "value": {"members.value": "x"}}, Mutability, id="pathless-members-value"),
    pytest.param({"op": "add", "path": 'members[value eq "x"]', "value": {"value": "x"}}, InvalidPath,
                 id="add-members-filter"),
    pytest.param({"op": "remove", "path": 'members[nosuch eq "x"]'}, InvalidPath, id="members-unknown-filter"),
    pytest.param({"op": "remove", "path": "displayName"}, InvalidValue, id="remove-required-displayName"),
    pytest.param({"op": "add", "path": f"{ENT}:department", "value": "x"}, InvalidPath, id="user-extension"),
    pytest.param({"op": "add", "path": ENT, "value": {"department": "x"}}, InvalidPath, id="user-extension-urn"),
    pytest.param({"op": "replace", "value": {"userName": "x"}}, InvalidSyntax, id="pathless-user-attribute"),
]


@pytest.mark.parametrize(("operation", "error"), GROUP_ERRORS)
def test_group_errors(operation: dict[str, Any], error: type[ScimError]) -> None:
    """Bad group operations raise before any member change is returned."""
    with pytest.raises(error):
        patch(base_group(), operation, resource_type=GROUP_RESOURCE)


def test_error_detail_names_the_operation() -> None:
    """The detail says which operation failed and on which path."""
    with pytest.raises(Mutability, match=r"operation 2 \(replace id\)"):
        patch(base_user(), {"op": "add", "path": "title", "value": "t"}, {"op": "replace", "path": "id", "value": 1})


def test_unknown_op_in_hand_built_operation() -> None:
    """Operations built without the parser are checked too."""
    with pytest.raises(InvalidSyntax):
        apply_patch(base_user(), [Operation("move", "title", "x")], USER_RESOURCE)  # type: ignore[arg-type]
    with pytest.raises(InvalidValue):
        apply_patch(base_user(), [Operation("add", "title")], USER_RESOURCE)


def test_hand_built_operation_with_capitalised_op() -> None:
    """A hand-built ``Operation`` with ``"Add"`` works like the parsed one (Q1)."""
    result = apply_patch(base_user(), [Operation("Add", "title", "T")], USER_RESOURCE)  # type: ignore[arg-type]
    assert result.resource["title"] == "T"


# --- atomicity and immutability of the input ----------------------------------------------------


def test_error_in_third_operation_changes_nothing() -> None:
    """All or nothing: ops 1–2 succeed on the copy, op 3 fails, the input is untouched."""
    user = base_user()
    snapshot = copy.deepcopy(user)
    with pytest.raises(Mutability, match="operation 3"):
        patch(user,
              {"op": "replace", "path": "displayName", "value": "Changed"},
              {"op": "add", "path": "emails", "value": [{"value": "n@x.example", "primary": True}]},
              {"op": "replace", "path": "meta.lastModified", "value": "2024-01-01T00:00:00Z"},
              {"op": "replace", "path": "title", "value": "never applied"})
    assert user == snapshot


def test_error_after_member_ops_returns_no_member_changes() -> None:
    """A failing group PATCH yields no member changes for the caller to apply."""
    group = base_group()
    with pytest.raises(InvalidValue):
        patch(group, {"op": "add", "path": "members", "value": [{"value": "u1"}]},
              {"op": "remove", "path": "members"},
              {"op": "remove", "path": "displayName"}, resource_type=GROUP_RESOURCE)
    assert group == base_group()


@pytest.mark.parametrize("operation", [
    pytest.param({"op": "replace", "path": 'emails[type eq "work"].value', "value": "x@y.example"}, id="filter-sub"),
    pytest.param({"op": "add", "path": "emails", "value": [{"value": "x@y.example", "primary": True}]},
                 id="append-primary"),
    pytest.param({"op": "remove", "path": 'emails[type eq "work"].primary'}, id="remove-sub"),
    pytest.param({"op": "replace", "path": "name", "value": {"givenName": None}}, id="complex-null"),
    pytest.param({"op": "add", "path": f"{ENT}:manager.value", "value": "m2"}, id="extension-sub"),
    pytest.param({"op": "remove", "path": ENT}, id="whole-extension"),
    pytest.param({"op": "replace", "value": {"name.givenName": "G", f"{ENT}:department": "D"}}, id="pathless"),
])
def test_input_is_not_mutated(operation: dict[str, Any]) -> None:
    """The engine deep-copies: the caller's dict (and nested dicts/lists) stay as they were."""
    user = base_user()
    snapshot = copy.deepcopy(user)
    result = patch(user, operation)
    assert user == snapshot
    assert result.resource != snapshot


def test_result_shares_no_structure_with_input() -> None:
    """Mutating the result does not reach back into the input."""
    user = base_user()
    result = patch(user, {"op": "replace", "path": "title", "value": "T"})
    result.resource["emails"][0]["value"] = "changed"
    result.resource[ENT]["department"] = "changed"
    assert user == base_user()


def test_no_operations_returns_equal_copy() -> None:
    """An empty operation list (from a hand-built call) returns an unchanged copy."""
    user = base_user()
    result = apply_patch(user, [], USER_RESOURCE)
    assert result == PatchResult(user, (), frozenset(), None)
    assert result.resource is not user


# --- result bookkeeping -------------------------------------------------------------------------


@pytest.mark.parametrize(("operations", "changed"), [
    pytest.param([{"op": "replace", "path": "displayName", "value": "Babs Jensen"}], set(), id="same-value"),
    pytest.param([{"op": "add", "path": "emails", "value": [{"value": "babs@home.example", "type": "home"}]}], set(),
                 id="duplicate-add"),
    pytest.param([{"op": "remove", "path": "title"}], set(), id="remove-absent"),
    pytest.param([{"op": "replace", "path": "title", "value": "T"}, {"op": "remove", "path": "title"}], set(),
                 id="set-then-unset"),
    pytest.param([{"op": "replace", "path": "name.givenName", "value": "B"}], {"name"}, id="sub-attribute"),
    pytest.param([{"op": "replace", "value": {"active": "false", "nickName": "N"}}], {"active", "nickName"},
                 id="pathless"),
    pytest.param([{"op": "add", "path": f"{ENT}:costCenter", "value": "1"}], {f"{ENT}:costCenter"},
                 id="extension"),
    pytest.param([{"op": "replace", "value": {"password": "s3cret"}}], {"password"}, id="password"),
])
def test_changed_attributes(operations: list[dict[str, Any]], changed: set[str]) -> None:
    """``changed_attributes`` lists what actually differs, so a no-op PATCH can skip the write."""
    assert patch(base_user(), *operations).changed_attributes == changed


@pytest.mark.parametrize("operation", [
    pytest.param({"op": "replace", "path": "password", "value": "s3cret"}, id="path"),
    pytest.param({"op": "add", "path": "PASSWORD", "value": "s3cret"}, id="add-any-case"),
    pytest.param({"op": "replace", "value": {"password": "s3cret", "title": "T"}}, id="pathless"),
    pytest.param({"op": "replace", "value": {f"{USER_SCHEMA}:password": "s3cret"}}, id="urn-qualified"),
])
def test_password_is_returned_not_stored(operation: dict[str, Any]) -> None:
    """The new password is in ``PatchResult.password`` only (``returned: never``, RFC 7643 §4.1.1)."""
    result = patch(base_user(), operation)
    assert result.password == "s3cret"
    assert "password" not in result.resource


def test_stored_password_never_leaks_into_result() -> None:
    """A password present in the input resource is not copied to the output."""
    result = patch({**base_user(), "password": "old"}, {"op": "replace", "path": "title", "value": "T"})
    assert "password" not in result.resource
    assert result.password is None
    assert result.changed_attributes == {"title"}


def test_last_password_wins() -> None:
    """Two password operations: the last one is the new password."""
    result = patch(base_user(), {"op": "replace", "path": "password", "value": "one"},
                   {"op": "replace", "path": "password", "value": "two"})
    assert result.password == "two"


def test_member_change_ids() -> None:
    """``MemberChange.ids`` lists the member ids in order."""
    change = MemberChange("add", ({"value": "a", "type": "User"}, {"value": "b"}))
    assert change.ids == ("a", "b")
    assert MemberChange("remove_all").ids == ()


def test_group_resource_never_gains_members() -> None:
    """Member operations never put ``members`` into the returned resource."""
    result = patch(base_group(), {"op": "add", "path": "members", "value": [{"value": "u1"}]},
                   {"op": "replace", "value": {"displayName": "Ops", "members": [{"value": "u2"}]}},
                   resource_type=GROUP_RESOURCE)
    assert "members" not in result.resource
    assert result.changed_attributes == {"displayName", "members"}


# --- ignore_unknown -----------------------------------------------------------------------------


@pytest.mark.parametrize("operation", [
    pytest.param({"op": "add", "path": "nosuch", "value": 1}, id="unknown-path"),
    pytest.param({"op": "remove", "path": "name.nosuch"}, id="unknown-sub-path"),
    pytest.param({"op": "remove", "path": 'emails[nosuch eq "x"]'}, id="unknown-filter-attribute"),
    pytest.param({"op": "replace", "value": {"nosuch": 1, "prefferedLanguage": "en"}}, id="unknown-keys"),
    pytest.param({"op": "replace", "value": {ENT: {"nosuch": 1}}}, id="unknown-extension-key"),
    pytest.param({"op": "replace", "path": "name", "value": {"nosuch": 1}}, id="unknown-sub-in-value"),
])
def test_ignore_unknown_drops_unknown_attributes(operation: dict[str, Any]) -> None:
    """With ``ignore_unknown`` (OneLogin's templates), unknown names are dropped, not errors."""
    result = patch(base_user(), operation, ignore_unknown=True)
    assert result.resource == base_user()
    assert result.changed_attributes == frozenset()


def test_ignore_unknown_keeps_known_keys() -> None:
    """Known keys next to unknown ones still apply."""
    result = patch(base_user(), {"op": "replace", "value": {"nosuch": 1, "title": "T"}}, ignore_unknown=True)
    assert result.resource["title"] == "T"


def test_ignore_unknown_member_keys() -> None:
    """Unknown member keys are dropped too."""
    result = patch(base_group(), {"op": "add", "path": "members", "value": [{"value": "u1", "color": "red"}]},
                   resource_type=GROUP_RESOURCE, ignore_unknown=True)
    assert result.member_changes == (MemberChange("add", ({"value": "u1"},)),)


def test_ignore_unknown_does_not_relax_mutability() -> None:
    """``ignore_unknown`` is about unknown names only: readOnly paths still fail."""
    with pytest.raises(Mutability):
        patch(base_user(), {"op": "replace", "path": "id", "value": "x"}, ignore_unknown=True)
