"""``single_member_change``: which group PATCHes may take the group's write lock last (GroupService.patch).

Saying ``True`` for anything but an add or remove of one member would let that PATCH change the
group without its lock; saying ``False`` only costs speed. So every doubtful shape must be ``False``.
"""

from __future__ import annotations

from typing import Any

import pytest

from scim_bridge.scim.patch import apply_patch
from scim_bridge.scim.patch import parse_patch_request
from scim_bridge.scim.patch import single_member_change
from scim_bridge.scim.schema import GROUP_RESOURCE
from scim_bridge.scim.schema import GROUP_SCHEMA
from scim_bridge.scim.schema import PATCH_OP_SCHEMA

A = "2819c223-7f76-453a-919d-413861904646"
B = "902c246b-6245-4190-8e05-00816be7344a"

ONE_MEMBER: dict[str, list[dict[str, Any]]] = {
    "okta add": [{"op": "add", "path": "members", "value": [{"value": A, "display": "a@x.test"}]}],
    "entra add": [{"op": "Add", "path": "members", "value": [{"$ref": None, "value": A}]}],
    "entra remove": [{"op": "Remove", "path": "members", "value": [{"$ref": None, "value": A}]}],
    "remove by filter": [{"op": "remove", "path": f'members[value eq "{A}"]'}],
    "remove by filter, any case": [{"op": "REMOVE", "path": f'Members[Value EQ "{A}"]'}],
    "a single object": [{"op": "add", "path": "members", "value": {"value": A}}],
    "a bare id": [{"op": "add", "path": "members", "value": A}],
    "core URN path": [{"op": "add", "path": f"{GROUP_SCHEMA}:members", "value": [{"value": A}]}],
    "path-less add": [{"op": "add", "value": {"members": [{"value": A}]}}],
    "the same id twice": [{"op": "add", "path": "members", "value": [{"value": A}, {"value": A}]}],
    "add then remove it": [{"op": "add", "path": "members", "value": [{"value": A}]},
                           {"op": "remove", "path": f'members[value eq "{A}"]'}],
    "a value that is not a UUID": [{"op": "add", "path": "members", "value": [{"value": "not-a-uuid"}]}],
}

NOT_ONE_MEMBER: dict[str, list[dict[str, Any]]] = {
    "two members": [{"op": "add", "path": "members", "value": [{"value": A}, {"value": B}]}],
    "okta remove + add (two members)": [{"op": "remove", "path": f'members[value eq "{A}"]'},
                                        {"op": "add", "path": "members", "value": [{"value": B}]}],
    "filter naming two": [{"op": "remove", "path": f'members[value eq "{A}" or value eq "{B}"]'}],
    "filter on display": [{"op": "remove", "path": 'members[display eq "a"]'}],
    "filter not eq": [{"op": "remove", "path": f'members[value ne "{A}"]'}],
    "filter and a value": [{"op": "remove", "path": f'members[value eq "{A}"]', "value": [{"value": A}]}],
    "add through a filter": [{"op": "add", "path": f'members[value eq "{A}"]', "value": [{"value": A}]}],
    "remove all": [{"op": "remove", "path": "members"}],
    "remove with null": [{"op": "remove", "path": "members", "value": None}],
    "add null": [{"op": "add", "path": "members", "value": None}],
    "add nothing": [{"op": "add", "path": "members", "value": []}],
    "replace members": [{"op": "replace", "path": "members", "value": [{"value": A}]}],
    "rename": [{"op": "replace", "path": "displayName", "value": "x"}],
    "rename with a member": [{"op": "replace", "path": "displayName", "value": "x"},
                             {"op": "add", "path": "members", "value": [{"value": A}]}],
    "path-less with another key": [{"op": "add", "value": {"members": [{"value": A}], "displayName": "x"}}],
    "path-less replace": [{"op": "replace", "value": {"members": [{"value": A}]}}],
    "path-less under the core URN": [{"op": "add", "value": {GROUP_SCHEMA: {"members": [{"value": A}]}}}],
    "member sub-attribute": [{"op": "add", "path": "members.value", "value": A}],
    "sub-attribute after a filter": [{"op": "remove", "path": f'members[value eq "{A}"].display'}],
    "another schema's members": [{"op": "add", "path": "urn:example:Group:members", "value": [{"value": A}]}],
    "a member without a value": [{"op": "add", "path": "members", "value": [{"display": "a"}]}],
    "a value that is not a string": [{"op": "add", "path": "members", "value": [{"value": 7}]}],
    "a member that is a number": [{"op": "add", "path": "members", "value": [7]}],
}


def _operations(operations: list[dict[str, Any]]) -> Any:
    return parse_patch_request({"schemas": [PATCH_OP_SCHEMA], "Operations": operations})


@pytest.mark.parametrize("name", list(ONE_MEMBER))
def test_one_member(name):
    assert single_member_change(_operations(ONE_MEMBER[name])) is True


@pytest.mark.parametrize("name", list(NOT_ONE_MEMBER))
def test_anything_else(name):
    assert single_member_change(_operations(NOT_ONE_MEMBER[name])) is False


def test_a_path_that_does_not_parse_is_not_one_member():
    # parse_patch_request refuses it first; the predicate, called on raw operations, must not raise.
    from scim_bridge.scim.patch import Operation

    assert single_member_change([Operation("remove", "members[value eq")]) is False


@pytest.mark.parametrize("name", [n for n in ONE_MEMBER if n != "a value that is not a UUID"])
def test_what_it_accepts_changes_only_members(name):
    # The promise the group service relies on: applied to a group, such a PATCH changes nothing
    # but its membership, and names exactly one member.
    group = {"schemas": [GROUP_SCHEMA], "id": B, "displayName": "g"}
    result = apply_patch(group, _operations(ONE_MEMBER[name]), GROUP_RESOURCE)
    assert result.changed_attributes <= {"members"}
    assert result.resource == group
    named = {member["value"] for change in result.member_changes for member in change.values}
    assert named == {A}
    assert {change.op for change in result.member_changes} <= {"add", "remove"}
