"""``/Groups`` through HTTP: members, nesting, uniqueness, projection, replace."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine
from sqlalchemy import event

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


@contextmanager
def recorded_statements(engine: Engine) -> Iterator[list[str]]:
    """Collect the SQL statements *engine* executes inside the block."""
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_okta_push_group(scim):
    response = scim.post("/Groups", {"schemas": [GROUP], "displayName": "Test SCIMv2", "members": []})
    assert response.status_code == 201
    body = response.get_json()
    assert body["displayName"] == "Test SCIMv2" and body["members"] == []
    assert body["meta"]["resourceType"] == "Group"
    assert response.headers["Location"].endswith(f"/Groups/{body['id']}")


def test_members_carry_value_ref_display_type(scim):
    user = scim.create_user("jdoe", displayName="John Doe")
    inner = scim.create_group("inner")
    response = scim.post("/Groups", {"displayName": "outer", "members": [
        {"value": user["id"], "display": "John Doe"}, {"value": inner["id"], "displayName": "inner"}]})
    members = {m["value"]: m for m in response.get_json()["members"]}
    assert members[user["id"]] == {"value": user["id"], "$ref": f"http://localhost/scim/v2/Users/{user['id']}",
                                   "display": "John Doe", "type": "User"}
    assert members[inner["id"]]["type"] == "Group" and members[inner["id"]]["display"] == "inner"
    assert members[inner["id"]]["$ref"].endswith(f"/Groups/{inner['id']}")


def test_member_display_is_kept_as_sent(scim):
    """members' sub-attributes are immutable (RFC 7643 §4.2): no display is invented."""
    user = scim.create_user("plain", displayName="Plain User")
    group = scim.create_group("g", [user["id"]])
    assert group["members"][0] == {"value": user["id"], "$ref": f"http://localhost/scim/v2/Users/{user['id']}",
                                   "type": "User"}


@pytest.mark.parametrize("member", [{"value": "nope"}, {"value": "00000000-0000-0000-0000-000000000001"}])
def test_unknown_member_is_400(scim, member):
    response = scim.post("/Groups", {"displayName": "bad", "members": [member]})
    assert response.status_code == 400
    assert response.get_json()["scimType"] == "invalidValue"


def test_member_of_other_tenant_is_unknown(scim, other_scim):
    foreign = other_scim.create_user("foreign")
    response = scim.post("/Groups", {"displayName": "bad", "members": [{"value": foreign["id"]}]})
    assert response.status_code == 400


def test_member_type_mismatch_is_400(scim):
    user = scim.create_user("typed")
    response = scim.post("/Groups", {"displayName": "t", "members": [{"value": user["id"], "type": "Group"}]})
    assert response.status_code == 400


def test_duplicate_members_are_stored_once(scim):
    user = scim.create_user("dup")
    group = scim.create_group("dups", [user["id"], user["id"]])
    assert len(group["members"]) == 1


def test_display_name_unique_case_insensitively(scim):
    scim.create_group("Engineering")
    response = scim.post("/Groups", {"displayName": "ENGINEERING"})
    assert response.status_code == 409 and response.get_json()["scimType"] == "uniqueness"


def test_put_sets_exact_member_set(scim):
    a, b, c = (scim.create_user(n) for n in ("a", "b", "c"))
    group = scim.create_group("set", [a["id"], b["id"]])
    response = scim.put(f"/Groups/{group['id']}", {"schemas": [GROUP], "displayName": "renamed",
                                                    "members": [{"value": b["id"]}, {"value": c["id"]}]})
    assert response.status_code == 200
    body = response.get_json()
    assert body["displayName"] == "renamed"
    assert sorted(m["value"] for m in body["members"]) == sorted([b["id"], c["id"]])
    assert body["meta"]["version"] == 'W/"2"'


def test_group_cannot_contain_itself(scim):
    group = scim.create_group("self")
    response = scim.put(f"/Groups/{group['id']}", {"displayName": "self", "members": [{"value": group["id"]}]})
    assert response.status_code == 400


def test_excluded_members_are_not_loaded(scim, engine):
    users = [scim.create_user(f"m{i}")["id"] for i in range(3)]
    group = scim.create_group("big", users)
    with recorded_statements(engine) as statements:
        response = scim.get(f"/Groups/{group['id']}?excludedAttributes=members")
    assert response.status_code == 200 and "members" not in response.get_json()
    assert not any("group_members" in s for s in statements)


def test_members_are_one_query(scim, engine):
    users = [scim.create_user(f"q{i}")["id"] for i in range(25)]
    group = scim.create_group("query-count", users)
    with recorded_statements(engine) as statements:
        response = scim.get(f"/Groups/{group['id']}")
    assert len(response.get_json()["members"]) == 25
    assert sum("group_members" in s for s in statements) == 1


def test_excluded_members_in_list(scim):
    user = scim.create_user("listed")
    scim.create_group("with-members", [user["id"]])
    body = scim.get("/Groups?excludedAttributes=members").get_json()
    assert body["totalResults"] == 1 and "members" not in body["Resources"][0]
    body = scim.get('/Groups?filter=displayName eq "WITH-MEMBERS"').get_json()
    assert body["totalResults"] == 1 and body["Resources"][0]["members"][0]["value"] == user["id"]


def test_delete_group_removes_nested_references(scim):
    inner = scim.create_group("inner-del")
    outer = scim.create_group("outer-del", [inner["id"]])
    assert scim.delete(f"/Groups/{inner['id']}").status_code == 204
    assert scim.get(f"/Groups/{outer['id']}").get_json()["members"] == []
    assert scim.get(f"/Groups/{inner['id']}").status_code == 404
