"""PATCH (RFC 7644 §3.5.2) through HTTP for Users and Groups, on every backend.

Every rejected PATCH must be a 400 (or 404/409/412) with a SCIM Error body and must change
nothing: the resource read back afterwards — ``meta.version`` and ``lastModified`` included —
equals the one read before. Version bumps happen only on a real change.

A successful group PATCH answers 204 with the new version's ETag and no body unless the client asks
for the group (its body would be every member): the tests of PATCH semantics check that ETag and
read the group back through GET; :func:`test_patch_answer_policy` covers when the body comes.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import ScimClient
from tests.conftest import new_tenant
from tests.conftest import new_token
from tests.functional.replay import ENTERPRISE
from tests.functional.replay import PATCH_OP
from tests.functional.replay import assert_error
from tests.functional.replay import member_ids
from tests.functional.replay import patch_body
from tests.functional.replay import version_number

UNKNOWN_ID = "6f1c9b4e-0000-4000-8000-000000000000"


@pytest.fixture
def user(scim: ScimClient) -> dict[str, Any]:
    """Return a user with a few attributes to break."""
    return scim.create_user("patch.me@example.com", title="Engineer", displayName="Patch Me",
                            name={"givenName": "Patch", "familyName": "Me"},
                            emails=[{"value": "patch.me@example.com", "type": "work", "primary": True}])


@pytest.fixture
def members(scim: ScimClient) -> list[str]:
    """Return the ids of three users of the tenant."""
    return [scim.create_user(f"member{i}@example.com")["id"] for i in range(3)]


@pytest.fixture
def group(scim: ScimClient, members: list[str]) -> dict[str, Any]:
    """Return a group whose members are the first two of ``members``."""
    return scim.create_group("Patched", members[:2])


def snapshot(scim: ScimClient, path: str) -> dict[str, Any]:
    """Return the resource as read through GET (members included)."""
    response = scim.get(path)
    assert response.status_code == 200
    return dict(response.get_json())


def assert_rejected_unchanged(scim: ScimClient, path: str, body: Any, status: int, scim_type: str | None,
                              **kwargs: Any) -> dict[str, Any]:
    """PATCH *body*, expect a SCIM error, and check that the resource did not change at all."""
    before = snapshot(scim, path)
    error = assert_error(scim.patch(path, body, **kwargs), status, scim_type)
    assert snapshot(scim, path) == before
    return error


# --- error types: 400 with a SCIM body, nothing changed --------------------------------------------

USER_ERRORS = [
    # invalidPath: a path that names nothing, or is malformed
    ("invalidPath", patch_body({"op": "replace", "path": "nickname.first", "value": "x"})),
    ("invalidPath", patch_body({"op": "replace", "path": "favouriteColour", "value": "x"})),
    ("invalidPath", patch_body({"op": "replace", "path": 'emails[type eq "work"', "value": "x"})),
    ("invalidPath", patch_body({"op": "replace", "path": 'emails[colour eq "red"].value', "value": "x"})),
    ("invalidPath", patch_body({"op": "add", "path": "name.nope", "value": "x"})),
    # noTarget: remove without a path; a filter that matches nothing and has no eq to create from
    ("noTarget", patch_body({"op": "remove"})),
    ("noTarget", patch_body({"op": "replace", "path": 'emails[value co "nobody"].type', "value": "home"})),
    ("noTarget", patch_body({"op": "replace", "path": 'title[value eq "x"]', "value": "x"})),
    # mutability: readOnly / immutable targets
    ("mutability", patch_body({"op": "replace", "path": "id", "value": UNKNOWN_ID})),
    ("mutability", patch_body({"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"})),
    ("mutability", patch_body({"op": "add", "path": "groups", "value": [{"value": UNKNOWN_ID}]})),
    # invalidValue: wrong types, required attributes, missing values
    ("invalidValue", patch_body({"op": "replace", "path": "active", "value": "maybe"})),
    ("invalidValue", patch_body({"op": "replace", "path": "title", "value": 42})),
    ("invalidValue", patch_body({"op": "remove", "path": "userName"})),
    ("invalidValue", patch_body({"op": "replace", "path": "userName", "value": None})),
    ("invalidValue", patch_body({"op": "add", "path": "title"})),
    ("invalidValue", patch_body({"op": "replace", "value": "not an object"})),
    ("invalidValue", patch_body({"op": "remove", "path": "password"})),
    # invalidSyntax: the envelope itself
    ("invalidSyntax", {"Operations": [{"op": "replace", "path": "title", "value": "x"}]}),
    ("invalidSyntax", {"schemas": [PATCH_OP], "Operations": []}),
    ("invalidSyntax", {"schemas": [PATCH_OP]}),
    ("invalidSyntax", patch_body({"op": "copy", "path": "title", "value": "x"})),
    ("invalidSyntax", patch_body({"path": "title", "value": "x"})),
    ("invalidSyntax", patch_body("replace title")),
    ("invalidSyntax", patch_body({"op": "replace", "value": {"favouriteColour": "red"}})),
    ("invalidSyntax", [{"op": "replace", "path": "title", "value": "x"}]),
    ("invalidSyntax", "{not json"),
]


@pytest.mark.parametrize(("scim_type", "body"), USER_ERRORS,
                         ids=[f"{t}-{i}" for i, (t, _b) in enumerate(USER_ERRORS)])
def test_user_patch_errors_change_nothing(scim, user, scim_type, body):
    """Each error type on a User: 400, its scimType, and the user exactly as before."""
    assert_rejected_unchanged(scim, f"/Users/{user['id']}", body, 400, scim_type)


GROUP_ERRORS = [
    ("invalidPath", patch_body({"op": "replace", "path": "owner", "value": "x"})),
    ("invalidPath", patch_body({"op": "add", "path": f'members[value eq "{UNKNOWN_ID}"]', "value": "x"})),
    ("invalidPath", patch_body({"op": "remove", "path": 'members[colour eq "red"]'})),
    ("noTarget", patch_body({"op": "remove"})),
    ("mutability", patch_body({"op": "replace", "path": "members.display", "value": "x"})),
    ("mutability", patch_body({"op": "replace", "path": "id", "value": UNKNOWN_ID})),
    ("invalidValue", patch_body({"op": "remove", "path": "displayName"})),
    ("invalidValue", patch_body({"op": "replace", "path": "displayName", "value": ["a", "b"]})),
    ("invalidValue", patch_body({"op": "add", "path": "members", "value": [{"display": "no value"}]})),
    ("invalidValue", patch_body({"op": "add", "path": "members", "value": [{"value": UNKNOWN_ID}]})),
    ("invalidValue", patch_body({"op": "add", "path": "members", "value": [{"value": "not-a-uuid"}]})),
    ("invalidValue", patch_body({"op": "add", "path": "members",
                                 "value": [{"value": UNKNOWN_ID, "operation": "delete"}]})),
    ("invalidSyntax", patch_body({"op": "add", "path": "members", "value": [{"value": UNKNOWN_ID, "x": 1}]})),
    ("invalidSyntax", patch_body({"op": "Upsert", "path": "members", "value": []})),
    ("invalidSyntax", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "Operations": []}),
]


@pytest.mark.parametrize(("scim_type", "body"), GROUP_ERRORS,
                         ids=[f"{t}-{i}" for i, (t, _b) in enumerate(GROUP_ERRORS)])
def test_group_patch_errors_change_nothing(scim, group, scim_type, body):
    """Each error type on a Group: 400, its scimType, and the group (members included) as before."""
    assert_rejected_unchanged(scim, f"/Groups/{group['id']}", body, 400, scim_type)


def test_group_cannot_be_its_own_member(scim, group):
    """A group added to itself is refused (invalidValue), nothing changes."""
    body = patch_body({"op": "add", "path": "members", "value": [{"value": group["id"]}]})
    assert_rejected_unchanged(scim, f"/Groups/{group['id']}", body, 400, "invalidValue")


@pytest.mark.parametrize("resource", ["Users", "Groups"])
def test_patch_missing_resource_is_404(scim, resource):
    """PATCH of an unknown (or malformed) id is 404."""
    body = patch_body({"op": "replace", "path": "displayName", "value": "x"})
    assert_error(scim.patch(f"/{resource}/{UNKNOWN_ID}", body), 404)
    assert_error(scim.patch(f"/{resource}/not-a-uuid", body), 404)


def test_uniqueness_conflict_changes_nothing(scim, user, group):
    """A rename onto another resource's unique value is 409 ``uniqueness``; nothing changes."""
    scim.create_user("taken@example.com")
    scim.create_group("Taken")
    assert_rejected_unchanged(scim, f"/Users/{user['id']}", patch_body(
        {"op": "replace", "path": "title", "value": "changed first"},
        {"op": "replace", "path": "userName", "value": "TAKEN@example.com"}), 409, "uniqueness")
    assert_rejected_unchanged(scim, f"/Groups/{group['id']}", patch_body(
        {"op": "remove", "path": "members"},
        {"op": "replace", "path": "displayName", "value": "taken"}), 409, "uniqueness")


def test_other_tenant_cannot_patch(scim, other_scim, user, group):
    """Another tenant's token sees 404, and nothing changes."""
    body = patch_body({"op": "replace", "path": "displayName", "value": "hijacked"})
    before_user, before_group = snapshot(scim, f"/Users/{user['id']}"), snapshot(scim, f"/Groups/{group['id']}")
    assert_error(other_scim.patch(f"/Users/{user['id']}", body), 404)
    assert_error(other_scim.patch(f"/Groups/{group['id']}", body), 404)
    assert snapshot(scim, f"/Users/{user['id']}") == before_user
    assert snapshot(scim, f"/Groups/{group['id']}") == before_group


# --- atomicity across operations ----------------------------------------------------------------------


def test_user_operations_are_all_or_nothing(scim, user):
    """Valid operations before a failing one are not applied (RFC 7644 §3.5.2)."""
    assert_rejected_unchanged(scim, f"/Users/{user['id']}", patch_body(
        {"op": "replace", "path": "title", "value": "Manager"},
        {"op": "add", "path": "emails", "value": [{"value": "second@example.com", "type": "home"}]},
        {"op": "replace", "path": "active", "value": False},
        {"op": "replace", "path": "nonexistent", "value": "boom"}), 400, "invalidPath")


def test_group_operations_are_all_or_nothing(scim, group, members):
    """Member changes already written in SQL are rolled back when a later operation fails."""
    path = f"/Groups/{group['id']}"
    # The failure comes from the engine (after the rename), before any SQL.
    assert_rejected_unchanged(scim, path, patch_body(
        {"op": "replace", "path": "displayName", "value": "Renamed"},
        {"op": "remove", "path": "members"},
        {"op": "add", "path": "members", "value": [{"value": members[2]}]},
        {"op": "remove"}), 400, "noTarget")
    # The failure comes from storage: the remove-all and the first add already ran in SQL.
    assert_rejected_unchanged(scim, path, patch_body(
        {"op": "replace", "path": "displayName", "value": "Renamed"},
        {"op": "remove", "path": "members"},
        {"op": "add", "path": "members", "value": [{"value": members[2]}]},
        {"op": "add", "path": "members", "value": [{"value": UNKNOWN_ID}]}), 400, "invalidValue")
    assert member_ids(scim, group["id"]) == set(members[:2])


def test_operations_apply_in_order(scim, group, members):
    """remove-all, add, remove, add: the outcome is the sequence's, and one version bump."""
    response = scim.patch(f"/Groups/{group['id']}", patch_body(
        {"op": "remove", "path": "members"},
        {"op": "add", "path": "members", "value": [{"value": m} for m in members]},
        {"op": "remove", "path": f'members[value eq "{members[0]}"]'},
        {"op": "add", "path": "members", "value": [{"value": members[0]}]},
        {"op": "remove", "path": "members", "value": [{"value": members[1]}]}))
    assert response.status_code == 204 and response.headers["ETag"] == 'W/"2"'
    assert member_ids(scim, group["id"]) == {members[0], members[2]}
    assert snapshot(scim, f"/Groups/{group['id']}")["meta"]["version"] == 'W/"2"'


# --- If-Match -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("resource", ["user", "group"])
def test_if_match(scim, request, resource):
    """A stale ``If-Match`` is 412 ``preconditionFailed`` and changes nothing; the current one or ``*`` applies."""
    row = request.getfixturevalue(resource)
    path = f"/{'Users' if resource == 'user' else 'Groups'}/{row['id']}"
    body = patch_body({"op": "replace", "path": "displayName", "value": "Conditional"})
    assert_rejected_unchanged(scim, path, body, 412, "preconditionFailed", headers={"If-Match": 'W/"7"'})
    assert_rejected_unchanged(scim, path, body, 412, "preconditionFailed", headers={"If-Match": '"7", W/"8"'})
    # A user's PATCH answers 200 and the user; a group's 204 and the ETag (its body would be every member).
    applied = 200 if resource == "user" else 204
    current = snapshot(scim, path)["meta"]["version"]
    response = scim.patch(path, body, headers={"If-Match": current})
    assert response.status_code == applied and response.headers["ETag"] == 'W/"2"'
    if applied == 200:
        assert response.get_json()["displayName"] == "Conditional"
        assert response.get_json()["meta"]["version"] == 'W/"2"'
    else:
        assert response.get_data() == b""
    after = snapshot(scim, path)
    assert after["displayName"] == "Conditional" and after["meta"]["version"] == response.headers["ETag"]
    # The version just replaced is now stale.
    assert_rejected_unchanged(scim, path, body, 412, "preconditionFailed", headers={"If-Match": current})
    body = patch_body({"op": "replace", "path": "displayName", "value": "Any version"})
    assert scim.patch(path, body, headers={"If-Match": "*"}).status_code == applied
    # A strong tag naming the current version matches too (weak comparison, RFC 7232 §2.3.2).
    assert scim.patch(path, patch_body({"op": "replace", "path": "displayName", "value": "Strong"}),
                      headers={"If-Match": '"3"'}).status_code == applied


# --- version bumps only on real change ------------------------------------------------------------------


def test_user_version_bumps_only_on_change(scim, user):
    """A PATCH that changes nothing keeps the version (and lastModified); a real change bumps it once."""
    path = f"/Users/{user['id']}"
    before = snapshot(scim, path)
    for body in (
        patch_body({"op": "replace", "path": "title", "value": "Engineer"}),
        patch_body({"op": "add", "path": "title", "value": "Engineer"}),
        patch_body({"op": "replace", "value": {"active": True, "displayName": "Patch Me"}}),
        patch_body({"op": "remove", "path": "nickName"}),
        patch_body({"op": "remove", "path": 'emails[type eq "home"]'}),
        patch_body({"op": "add", "path": "emails", "value": [user["emails"][0]]}),
        patch_body({"op": "replace", "path": 'emails[type eq "work"].value', "value": "patch.me@example.com"}),
    ):
        response = scim.patch(path, body)
        assert response.status_code == 200, (body, response.get_json())
        assert response.get_json()["meta"]["version"] == before["meta"]["version"], body
    assert snapshot(scim, path) == before
    response = scim.patch(path, patch_body({"op": "replace", "path": "title", "value": "Lead"},
                                           {"op": "replace", "path": "nickName", "value": "pm"}))
    assert response.get_json()["meta"]["version"] == 'W/"2"'
    assert response.get_json()["meta"]["lastModified"] >= before["meta"]["lastModified"]


def test_group_version_bumps_only_on_change(scim, group, members):
    """Adding a member twice, removing a non-member, or renaming to the same name keeps the version."""
    path = f"/Groups/{group['id']}"
    before = snapshot(scim, path)
    for body in (
        patch_body({"op": "add", "path": "members", "value": [{"value": members[0]}]}),
        patch_body({"op": "remove", "path": "members", "value": [{"value": members[2]}]}),
        patch_body({"op": "remove", "path": f'members[value eq "{members[2]}"]'}),
        patch_body({"op": "remove", "path": f'members[value eq "{UNKNOWN_ID}"]'}),
        patch_body({"op": "replace", "path": "displayName", "value": "Patched"}),
        patch_body({"op": "replace", "path": "members", "value": [{"value": m} for m in members[:2]]}),
    ):
        # A group's PATCH answers 204: the version it reached is the ETag header.
        response = scim.patch(path, body)
        assert response.status_code == 204, (body, response.get_json())
        assert response.headers["ETag"] == before["meta"]["version"], body
    assert snapshot(scim, path) == before
    response = scim.patch(path, patch_body({"op": "add", "path": "members", "value": [{"value": members[2]}]}))
    assert response.status_code == 204
    assert version_number(response.headers["ETag"]) == version_number(before["meta"]["version"]) + 1
    assert snapshot(scim, path)["meta"]["version"] == response.headers["ETag"]


# --- members: unknown, twice, non-member, other tenant ----------------------------------------------------


def test_add_unknown_member_is_400(scim, group):
    """A member that does not exist in the tenant is 400 ``invalidValue`` naming it; nothing changes."""
    error = assert_rejected_unchanged(scim, f"/Groups/{group['id']}", patch_body(
        {"op": "add", "path": "members", "value": [{"value": UNKNOWN_ID}]}), 400, "invalidValue")
    assert UNKNOWN_ID in error["detail"]


def test_add_member_twice_is_a_no_op(scim, group, members):
    """Adding the same member twice (two requests, or twice in one list) stores it once."""
    path = f"/Groups/{group['id']}"
    body = patch_body({"op": "add", "path": "members", "value": [{"value": members[2]}, {"value": members[2]}]})
    first = scim.patch(path, body)
    assert first.status_code == 204 and first.headers["ETag"] == 'W/"2"'
    second = scim.patch(path, body)
    assert second.status_code == 204 and second.headers["ETag"] == first.headers["ETag"]
    # The 204 has no body: the group read back lists the member once, at the version of the first add.
    after = snapshot(scim, path)
    assert [m["value"] for m in after["members"]].count(members[2]) == 1
    assert after["meta"]["version"] == first.headers["ETag"]
    assert member_ids(scim, group["id"]) == set(members)


def test_remove_non_member_is_a_no_op(scim, group, members):
    """Removing a user of the tenant who is not a member (or an unknown id) changes nothing."""
    path = f"/Groups/{group['id']}"
    before = snapshot(scim, path)
    for value in (members[2], UNKNOWN_ID, "not-a-uuid"):
        response = scim.patch(path, patch_body({"op": "remove", "path": "members", "value": [{"value": value}]}))
        assert response.status_code == 204, response.get_json()
        assert response.headers["ETag"] == before["meta"]["version"], value
    assert snapshot(scim, path) == before


def test_member_of_another_tenant_is_400(scim, other_scim, group):
    """A user or group of another tenant is unknown here: 400, nothing changes, nothing leaks."""
    foreign_user = other_scim.create_user("foreign@example.com")
    foreign_group = other_scim.create_group("Foreign")
    for foreign in (foreign_user, foreign_group):
        assert_rejected_unchanged(scim, f"/Groups/{group['id']}", patch_body(
            {"op": "add", "path": "members", "value": [{"value": foreign["id"]}]}), 400, "invalidValue")
        assert_rejected_unchanged(scim, f"/Groups/{group['id']}", patch_body(
            {"op": "replace", "path": "members", "value": [{"value": foreign["id"]}]}), 400, "invalidValue")
    assert other_scim.get(f"/Users/{foreign_user['id']}").get_json()["groups"] == []


def test_nested_group_member(scim, group):
    """A group of the same tenant can be added (and removed) as a member, typed ``Group``."""
    inner = scim.create_group("Inner")
    path = f"/Groups/{group['id']}"
    response = scim.patch(path, patch_body(
        {"op": "add", "path": "members", "value": [{"value": inner["id"], "type": "Group"}]}))
    assert response.status_code == 204 and response.headers["ETag"] == 'W/"2"'
    after = snapshot(scim, path)
    assert {m["value"]: m["type"] for m in after["members"]}[inner["id"]] == "Group"
    assert after["meta"]["version"] == response.headers["ETag"]
    response = scim.patch(path, patch_body(
        {"op": "remove", "path": f'members[value eq "{inner["id"]}"]'}))
    assert response.status_code == 204 and response.headers["ETag"] == 'W/"3"'
    assert inner["id"] not in {m["value"] for m in snapshot(scim, path)["members"]}


def test_remove_members_by_type_filter(scim, group, members):
    """A member filter other than ``value eq`` is evaluated in SQL (``remove_where``)."""
    inner = scim.create_group("Nested")
    scim.patch(f"/Groups/{group['id']}", patch_body(
        {"op": "add", "path": "members", "value": [{"value": inner["id"]}]}))
    response = scim.patch(f"/Groups/{group['id']}", patch_body({"op": "remove", "path": 'members[type eq "User"]'}))
    assert response.status_code == 204
    assert response.headers["ETag"] == snapshot(scim, f"/Groups/{group['id']}")["meta"]["version"] == 'W/"3"'
    assert member_ids(scim, group["id"]) == {inner["id"]}


# --- response: projection, Prefer, 204 or 200 --------------------------------------------------------------


def test_user_response_projection(scim, user):
    """``attributes``/``excludedAttributes`` shape the PATCH response as they shape a GET."""
    path = f"/Users/{user['id']}"
    body = patch_body({"op": "replace", "path": "title", "value": "Projected"})
    response = scim.patch(f"{path}?attributes=title", body)
    assert response.status_code == 200
    assert set(response.get_json()) == {"schemas", "id", "title"} and response.get_json()["title"] == "Projected"
    assert response.headers.get("ETag") in (None, 'W/"2"')
    response = scim.patch(f"{path}?excludedAttributes=emails,name", patch_body(
        {"op": "replace", "path": "title", "value": "Excluded"}))
    got = response.get_json()
    assert "emails" not in got and "name" not in got and got["title"] == "Excluded" and got["meta"]["version"]
    assert snapshot(scim, path)["emails"] == user["emails"]


def test_group_response_projection(scim, group, members):
    """``excludedAttributes=members`` drops members from the PATCH response; ``attributes`` selects."""
    path = f"/Groups/{group['id']}"
    add = patch_body({"op": "add", "path": "members", "value": [{"value": members[2]}]})
    response = scim.patch(f"{path}?excludedAttributes=members", add)
    assert response.status_code == 200
    got = response.get_json()
    assert "members" not in got and got["displayName"] == "Patched" and got["meta"]["version"] == 'W/"2"'
    response = scim.patch(f"{path}?attributes=displayName", patch_body(
        {"op": "replace", "path": "displayName", "value": "Selected"}))
    assert set(response.get_json()) == {"schemas", "id", "displayName"}
    response = scim.patch(f"{path}?attributes=members", patch_body({"op": "remove", "path": "members",
                                                                    "value": [{"value": members[0]}]}))
    assert {m["value"] for m in response.get_json()["members"]} == set(members[1:])


@pytest.mark.parametrize("prefer", ["return=minimal", "return=minimal, handling=lenient", "RETURN=MINIMAL"])
def test_prefer_return_minimal(scim, user, group, members, prefer):
    """``Prefer: return=minimal`` answers 204 with no body and the new ETag (RFC 7240)."""
    for path, body, version in (
        (f"/Users/{user['id']}", patch_body({"op": "replace", "path": "title", "value": "Minimal"}), 'W/"2"'),
        (f"/Groups/{group['id']}", patch_body({"op": "add", "path": "members", "value": [{"value": members[2]}]}),
         'W/"2"'),
    ):
        response = scim.patch(path, body, headers={"Prefer": prefer})
        assert response.status_code == 204 and response.get_data() == b""
        assert response.headers["ETag"] == version
        assert snapshot(scim, path)["meta"]["version"] == version
    assert snapshot(scim, f"/Users/{user['id']}")["title"] == "Minimal"
    assert member_ids(scim, group["id"]) == set(members)


def test_prefer_return_minimal_does_not_hide_errors(scim, group):
    """Errors are still SCIM error bodies under ``Prefer: return=minimal``."""
    assert_rejected_unchanged(scim, f"/Groups/{group['id']}", patch_body(
        {"op": "add", "path": "members", "value": [{"value": UNKNOWN_ID}]}), 400, "invalidValue",
        headers={"Prefer": "return=minimal"})


def test_prefer_other_values_return_the_resource(scim, user):
    """``Prefer: return=representation`` (or anything else) keeps the 200 + resource."""
    response = scim.patch(f"/Users/{user['id']}", patch_body({"op": "replace", "path": "title", "value": "Rep"}),
                          headers={"Prefer": "return=representation"})
    assert response.status_code == 200 and response.get_json()["title"] == "Rep"


def test_patch_answer_policy(client, storage, scim, user, group, members):
    """A group PATCH answers 204 unless asked for the group; a user PATCH answers 200 and the user.

    A group's answer would be its whole member list (14 MB at 100,000 members; Entra asks for 204,
    Okta takes either), so it comes only when the client asks: ``Prefer: return=representation``
    (RFC 7240), ``attributes``/``excludedAttributes`` in the query, or the tenant's
    ``group_patch_returns_resource``. The client's ``Prefer`` wins over the tenant's settings.
    """
    path = f"/Groups/{group['id']}"

    def add(member_id: str) -> dict[str, Any]:
        return patch_body({"op": "add", "path": "members", "value": [{"value": member_id}]})

    def remove(member_id: str) -> dict[str, Any]:
        return patch_body({"op": "remove", "path": f'members[value eq "{member_id}"]'})

    # No Prefer header: 204, the new version's ETag, no body; the change is made.
    response = scim.patch(path, add(members[2]))
    assert response.status_code == 204 and response.get_data() == b""
    assert response.headers["ETag"] == 'W/"2"' == snapshot(scim, path)["meta"]["version"]
    assert member_ids(scim, group["id"]) == set(members)
    # Prefer: return=representation: 200 and the whole group, members included, as GET shows it.
    response = scim.patch(path, remove(members[2]), headers={"Prefer": "return=representation"})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert {m["value"] for m in body["members"]} == set(members[:2])
    assert response.headers["ETag"] == body["meta"]["version"] == 'W/"3"'
    assert body == snapshot(scim, path)
    # A projection says what the client wants back: 200 and the group without its members.
    response = scim.patch(f"{path}?excludedAttributes=members", add(members[2]))
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert "members" not in body and body["id"] == group["id"] and body["displayName"] == "Patched"
    assert body["meta"]["version"] == 'W/"4"'
    assert member_ids(scim, group["id"]) == set(members)
    # Prefer: return=minimal: 204 as without the header.
    response = scim.patch(path, remove(members[2]), headers={"Prefer": "return=minimal"})
    assert response.status_code == 204 and response.get_data() == b"" and response.headers["ETag"] == 'W/"5"'
    assert member_ids(scim, group["id"]) == set(members[:2])
    # A user's PATCH is unchanged: 200 and the user without any header.
    response = scim.patch(f"/Users/{user['id']}", patch_body({"op": "replace", "path": "title", "value": "Policy"}))
    assert response.status_code == 200 and response.get_json()["title"] == "Policy"
    assert response.headers["ETag"] == response.get_json()["meta"]["version"] == 'W/"2"'

    # A tenant with group_patch_returns_resource gets the group without asking (Prefer still decides).
    full = ScimClient(client, new_token(storage, new_tenant(storage, group_patch_returns_resource=True)))
    member = full.create_user("full.member@example.com")["id"]
    full_group = full.create_group("full-group")
    response = full.patch(f"/Groups/{full_group['id']}", add(member))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [m["value"] for m in response.get_json()["members"]] == [member]
    assert response.headers["ETag"] == response.get_json()["meta"]["version"] == 'W/"2"'
    response = full.patch(f"/Groups/{full_group['id']}", remove(member), headers={"Prefer": "return=minimal"})
    assert response.status_code == 204 and response.get_data() == b"" and response.headers["ETag"] == 'W/"3"'

    # A tenant with patch_returns_no_content gets 204 for a user too, unless the client asks for the user.
    minimal = ScimClient(client, new_token(storage, new_tenant(storage, patch_returns_no_content=True)))
    minimal_user = minimal.create_user("minimal.user@example.com")
    user_path = f"/Users/{minimal_user['id']}"
    response = minimal.patch(user_path, patch_body({"op": "replace", "path": "title", "value": "Quiet"}))
    assert response.status_code == 204 and response.get_data() == b"" and response.headers["ETag"] == 'W/"2"'
    assert minimal.get(user_path).get_json()["title"] == "Quiet"
    response = minimal.patch(user_path, patch_body({"op": "replace", "path": "title", "value": "Shown"}),
                             headers={"Prefer": "return=representation"})
    assert response.status_code == 200 and response.get_json()["title"] == "Shown"
    assert response.headers["ETag"] == response.get_json()["meta"]["version"] == 'W/"3"'


# --- a few supported forms, end to end ------------------------------------------------------------------


def test_pathless_value_with_dotted_urn_and_core_schema_keys(scim, user):
    """Path-less values: plain, dotted, URN-qualified keys, the whole extension, the core URN."""
    response = scim.patch(f"/Users/{user['id']}", patch_body({"op": "replace", "value": {
        "name.givenName": "Dotted",
        f"{ENTERPRISE}:department": "Qualified",
        ENTERPRISE: {"costCenter": "4130"},
        "urn:ietf:params:scim:schemas:core:2.0:User": {"nickName": "core-urn"},
        "id": user["id"], "meta": {"resourceType": "User"}, "schemas": ["ignored"],
    }}))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["name"] == {"givenName": "Dotted", "familyName": "Me"}
    assert body[ENTERPRISE] == {"department": "Qualified", "costCenter": "4130"}
    assert body["nickName"] == "core-urn" and body["id"] == user["id"]


def test_remove_extension_attribute_and_whole_extension(scim, user):
    """``remove`` of one extension attribute, then of the whole extension, drops its schema URN."""
    path = f"/Users/{user['id']}"
    scim.patch(path, patch_body({"op": "add", "path": ENTERPRISE, "value": {"department": "D", "division": "V"}}))
    body = scim.patch(path, patch_body({"op": "remove", "path": f"{ENTERPRISE}:department"})).get_json()
    assert body[ENTERPRISE] == {"division": "V"}
    body = scim.patch(path, patch_body({"op": "remove", "path": ENTERPRISE})).get_json()
    assert ENTERPRISE not in body and ENTERPRISE not in body["schemas"]


def test_replace_multi_valued_and_primary(scim, user):
    """Adding a new primary email clears the old primary (RFC 7643 §2.4)."""
    body = scim.patch(f"/Users/{user['id']}", patch_body({"op": "add", "path": "emails", "value": [
        {"value": "new@example.com", "type": "home", "primary": True}]})).get_json()
    assert [(e["value"], e.get("primary")) for e in body["emails"]] == [
        ("patch.me@example.com", False), ("new@example.com", True)]


def test_unknown_id_value_in_remove_list_is_ignored(scim, group, members):
    """A remove list may carry ids that were never members: only real members go."""
    response = scim.patch(f"/Groups/{group['id']}", patch_body({"op": "remove", "path": "members", "value": [
        {"value": members[0]}, {"value": str(uuid.uuid4())}]}))
    assert response.status_code == 204 and member_ids(scim, group["id"]) == {members[1]}
    assert response.headers["ETag"] == snapshot(scim, f"/Groups/{group['id']}")["meta"]["version"] == 'W/"2"'


def test_tenant_can_choose_204_for_patch(client, storage):
    """Entra sends no Prefer header but recommends 204 for group PATCH: a tenant setting gives it."""
    minimal = ScimClient(client, new_token(storage, new_tenant(storage, patch_returns_no_content=True)))
    group = minimal.create_group("entra-group")
    response = minimal.patch(f"/Groups/{group['id']}", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "displayName", "value": "renamed"}]})
    assert response.status_code == 204 and response.headers["ETag"] == 'W/"2"'
    assert minimal.get(f"/Groups/{group['id']}").get_json()["displayName"] == "renamed"
