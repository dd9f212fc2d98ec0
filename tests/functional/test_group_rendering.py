"""Group members rendered without Python dicts (issue 7) give exactly the output the dicts gave.

``GroupRepository.rendered_members`` formats each member as JSON text (in SQL on PostgreSQL, from
raw columns on SQLite), and the response splices that text in. Every test here checks the text
against what ``json.dumps`` makes of ``mapping.to_scim_group``'s member dicts, on every backend.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import insert

from scim_bridge.domain.mapping import MemberRef
from scim_bridge.domain.mapping import to_scim_group
from scim_bridge.storage.models import Group
from scim_bridge.storage.models import GroupMember
from scim_bridge.storage.models import User
from scim_bridge.storage.repositories.groups import GroupRepository
from tests.conftest import ScimClient
from tests.conftest import new_tenant
from tests.conftest import new_token
from tests.functional.test_groups import recorded_statements

BASE = "http://localhost/scim/v2"
# Everything json.dumps escapes (quote, backslash, every control character but NUL, which
# PostgreSQL text cannot hold), next to characters it must leave alone.
DISPLAYS = [
    None,
    "John Doe",
    "",
    'Quote " and back\\slash',
    "".join(chr(c) for c in range(1, 0x20)),
    "Zoë Ünïcødé 日本語 🎉",
    "line\u2028separator\u2029and \u007f del",
    "</script><b>&amp;</b> ' \t",
    "x" * 512,
]


def compact(value: Any) -> str:
    """Serialize as the SCIM responses do."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def python_rendered(repo: GroupRepository, group: Group) -> list[str]:
    """Return the members as the pre-issue-7 path rendered them: dicts, then json.dumps."""
    refs = [MemberRef(mid, kind, display) for mid, kind, display in repo.members_of([group.id])[group.id]]
    return [compact(m) for m in to_scim_group(group, BASE, refs)["members"]]


def assert_byte_identical(response: Any) -> dict[str, Any]:
    """Assert the body is exactly what json.dumps makes of its own parse (key order included)."""
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert response.get_data(as_text=True) == compact(body)
    return body


@pytest.fixture
def varied(scim: ScimClient) -> dict[str, Any]:
    """A group whose members are users and groups, with every kind of display (and none)."""
    users = [scim.create_user(f"u{i}") for i in range(len(DISPLAYS))]
    inner = scim.create_group("inner")
    other = scim.create_group("other")
    members: list[dict[str, Any]] = []
    for user, display in zip(users, DISPLAYS, strict=True):
        members.append({"value": user["id"]} if display is None else {"value": user["id"], "display": display})
    members.insert(3, {"value": inner["id"], "type": "Group", "display": "Inner \"group\" ✓"})
    members.append({"value": other["id"]})
    response = scim.post("/Groups", {"displayName": "varied", "members": members})
    assert response.status_code == 201, response.get_json()
    return {"group": response.get_json(), "members": members, "inner": inner, "other": other}


def test_rendered_members_equal_python_rendering(varied, db_session, tenant):
    repo = GroupRepository(db_session, tenant.id)
    group = repo.read(uuid.UUID(varied["group"]["id"]))
    assert group is not None
    rendered = repo.rendered_members([group.id], BASE)[group.id]
    assert rendered == python_rendered(repo, group)
    assert len(rendered) == len(varied["members"])


def test_rendered_members_of_several_groups_stay_with_their_group(varied, db_session, tenant, scim):
    user = scim.create_user("solo")
    solo = scim.create_group("solo", [user["id"]])
    empty = scim.create_group("empty")
    repo = GroupRepository(db_session, tenant.id)
    groups = [repo.read(uuid.UUID(g["id"])) for g in (varied["group"], solo, empty)]
    rendered = repo.rendered_members([g.id for g in groups if g is not None], BASE)
    for group in groups:
        assert group is not None
        assert rendered[group.id] == python_rendered(repo, group)
    assert rendered[uuid.UUID(empty["id"])] == []


def test_get_group_members_are_as_sent_and_in_order(varied, scim):
    group = varied["group"]
    body = assert_byte_identical(scim.get(f"/Groups/{group['id']}"))
    assert body == group  # the POST answer was rendered by the same path
    groups = (varied["inner"]["id"], varied["other"]["id"])
    # Membership order: a create stores the users, then the groups, each in the order sent.
    sent = [m for m in varied["members"] if m["value"] not in groups] + [
        m for m in varied["members"] if m["value"] in groups]
    assert [m["value"] for m in body["members"]] == [m["value"] for m in sent]
    for sent_member, member in zip(sent, body["members"], strict=True):
        kind = "Group" if sent_member["value"] in groups else "User"
        expected = {"value": sent_member["value"], "$ref": f"{BASE}/{kind}s/{sent_member['value']}", "type": kind}
        if "display" in sent_member:
            expected["display"] = sent_member["display"]
        assert member == expected
        assert list(member) == list(expected)  # value, $ref, type, display: the order of the dicts


def test_list_and_search_render_members_per_group(varied, scim):
    user = scim.create_user("listed")
    scim.create_group("listed", [user["id"]])
    body = assert_byte_identical(scim.get("/Groups?sortBy=displayName"))
    by_name = {g["displayName"]: g for g in body["Resources"]}
    assert by_name["varied"]["members"] == varied["group"]["members"]
    assert [m["value"] for m in by_name["listed"]["members"]] == [user["id"]]
    assert by_name["inner"]["members"] == [] and by_name["other"]["members"] == []
    search = scim.post("/Groups/.search", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                                           "filter": 'displayName eq "varied"'})
    assert assert_byte_identical(search)["Resources"][0]["members"] == varied["group"]["members"]


@pytest.mark.parametrize(("query", "expected_keys"), [
    ("attributes=members.value", ["value"]),
    ("attributes=members", ["value", "$ref", "type", "display"]),
    ("attributes=displayName,members.display", ["display"]),
    ("excludedAttributes=members.display", ["value", "$ref", "type"]),
    ("excludedAttributes=members.$ref,members.type", ["value", "display"]),
])
def test_member_projection(varied, scim, query, expected_keys):
    body = assert_byte_identical(scim.get(f"/Groups/{varied['group']['id']}?{query}"))
    full = varied["group"]["members"]
    assert body["members"] == [{k: v for k, v in m.items() if k in expected_keys} for m in full]


def test_excluded_members_read_no_membership(varied, scim, engine):
    with recorded_statements(engine) as statements:
        body = assert_byte_identical(scim.get(f"/Groups/{varied['group']['id']}?excludedAttributes=members"))
    assert "members" not in body and body["id"] == varied["group"]["id"]
    assert statements and not any("group_members" in s for s in statements)


def test_patch_answers_the_whole_group_with_its_new_member(varied, scim):
    user = scim.create_user("late")
    group_id = varied["group"]["id"]
    # A group PATCH answers 204 unless the client asks for the group (RFC 7240); this test is about that body.
    response = scim.patch(f"/Groups/{group_id}", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": user["id"], "display": "Late «é»"}]}]},
        headers={"Prefer": "return=representation"})
    body = assert_byte_identical(response)
    assert body["members"][:-1] == varied["group"]["members"]
    assert body["members"][-1] == {"value": user["id"], "$ref": f"{BASE}/Users/{user['id']}", "type": "User",
                                   "display": "Late «é»"}
    assert response.headers["ETag"] == body["meta"]["version"] == 'W/"2"'
    assert body == assert_byte_identical(scim.get(f"/Groups/{group_id}"))


def test_large_group_renders_every_member_in_order(app, storage):
    """More members than one fetch batch (5,000), seeded with Core as test_membership_scale does."""
    tenant = new_tenant(storage)
    scim = ScimClient(app.test_client(), new_token(storage, tenant))
    now = datetime.now(UTC)
    user_ids = [uuid.uuid4() for _ in range(12_000)]
    group_id = uuid.uuid4()
    with storage.engine.begin() as conn:
        conn.execute(insert(User.__table__), [
            {"id": uid, "tenant_id": tenant.id, "user_name": f"big{n}", "user_name_key": f"big{n}", "active": True,
             "version": 1, "created": now, "last_modified": now} for n, uid in enumerate(user_ids)])
        conn.execute(insert(Group.__table__), [
            {"id": group_id, "tenant_id": tenant.id, "display_name": "big", "display_name_key": "big", "version": 1,
             "created": now, "last_modified": now}])
        # Insertion order differs from id order, so the test sees that members come in membership order.
        order = user_ids[::-1]
        conn.execute(insert(GroupMember.__table__), [
            {"tenant_id": tenant.id, "group_id": group_id, "user_id": uid, "created": now,
             "display": None if n % 2 else f"Big «{n}» \"quoted\""} for n, uid in enumerate(order)])
    response = scim.get(f"/Groups/{group_id}")
    body = assert_byte_identical(response)
    assert [m["value"] for m in body["members"]] == [str(u) for u in order]
    assert body["members"][0] == {"value": str(order[0]), "$ref": f"{BASE}/Users/{order[0]}", "type": "User",
                                  "display": 'Big «0» "quoted"'}
    assert body["members"][1] == {"value": str(order[1]), "$ref": f"{BASE}/Users/{order[1]}", "type": "User"}
    with storage.sessionmaker() as session:
        repo = GroupRepository(session, tenant.id)
        group = repo.read(group_id)
        assert group is not None
        assert repo.rendered_members([group_id], BASE)[group_id] == python_rendered(repo, group)
