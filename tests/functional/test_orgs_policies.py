"""Profile policies through SCIM: link/reject, follow/keep, detach/delete, single/multi, nesting, re-keying."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import event

from scim_bridge.app import create_app
from scim_bridge.mappings.model import MappingError
from tests.functional.orgs_support import GROUP
from tests.functional.orgs_support import INF_GROUP
from tests.functional.orgs_support import INF_USER
from tests.functional.orgs_support import PATCH_OP
from tests.functional.orgs_support import USER

# The Infinity extensions' computed attributes are returned on request only (RFC 7643 §7
# returned = "request"): a response carries them when the client names the extension.
WITH_GROUP_ORG = {"attributes": INF_GROUP}
WITH_USER_ORG = {"attributes": INF_USER}


def group(t, name, external_id=None, members=(), query_string=None, **extra):
    body = {"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in members], **extra}
    if external_id is not None:
        body["externalId"] = external_id
    response = t.scim.post("/Groups", body, query_string=query_string)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


# -- link / reject -------------------------------------------------------------------------------


def test_reject_names_the_existing_org(tenancy):
    t = tenancy("t-reject")
    t.admin(lambda service: service.create("ACME-1", "ACME"))
    response = t.scim.post("/Groups", {"schemas": [GROUP], "displayName": "acme", "externalId": "ACME-1"})
    assert response.status_code == 409
    body = response.get_json()
    assert body["scimType"] == "uniqueness" and "organization 'ACME'" in body["detail"]
    assert "ACME-1" in body["detail"]
    assert t.scim.get('/Groups?filter=displayName eq "acme"').get_json()["totalResults"] == 0  # rolled back
    # org_id is case-sensitive: another case is another org.
    assert group(t, "acme lower", "acme-1", query_string=WITH_GROUP_ORG)[INF_GROUP]["orgId"] == "acme-1"


def test_generic_profile_rejects_an_orphaned_org_id(tenancy):
    t = tenancy("generic")
    first = group(t, "Sales", "S-1")
    t.scim.delete(f"/Groups/{first['id']}")
    response = t.scim.post("/Groups", {"schemas": [GROUP], "displayName": "Sales again", "externalId": "S-1"})
    assert response.status_code == 409 and "(orphaned)" in response.get_json()["detail"]


def test_link_adopts_an_admin_org_and_keeps_its_edited_name(tenancy):
    t = tenancy("t-link")
    t.admin(lambda service: service.create("ACME-1", "ACME (admin)"))
    linked = group(t, "ACME from IdP", "ACME-1", query_string=WITH_GROUP_ORG)
    assert linked[INF_GROUP] == {"orgId": "ACME-1", "orgName": "ACME (admin)", "managed": False, "orphaned": False}
    # A second live group cannot take an org that already has one.
    response = t.scim.post("/Groups", {"schemas": [GROUP], "displayName": "Other", "externalId": "X"})
    assert response.status_code == 201
    response = t.patch_group(response.get_json()["id"], {"op": "replace", "path": "externalId", "value": "ACME-1"})
    assert response.status_code == 409 and "already" in response.get_json()["detail"]


def test_override_lets_idp_renames_win(tenancy):
    t = tenancy("t-override")
    g = group(t, "Ops", "OPS")
    t.admin(lambda service: service.rename("OPS", "Operations (admin)"))
    t.patch_group(g["id"], {"op": "replace", "path": "displayName", "value": "Operations"})
    assert t.orgs()["OPS"] == {"name": "Operations", "source": "idp", "group": g["id"], "orphaned": False,
                               "name_locked": False}


# -- follow / keep, re-keying --------------------------------------------------------------------


@pytest.mark.parametrize(("profile", "org_id", "events"), [
    ("t-link", "ENG-2", ["org.rekeyed"]),  # on_org_id_change = "follow"
    ("t-keep", "ENG-1", []),  # on_org_id_change = "keep"
])
def test_follow_rekeys_and_keep_does_not(tenancy, profile, org_id, events):
    t = tenancy(profile)
    user = t.scim.create_user("u1")
    g = group(t, "Eng", "ENG-1", [user["id"]])
    cursor = t.cursor()
    response = t.patch_group(g["id"], {"op": "replace", "path": "externalId", "value": "ENG-2"},
                             query_string=WITH_GROUP_ORG)
    assert response.status_code == 200 and response.get_json()[INF_GROUP]["orgId"] == org_id
    assert set(t.orgs()) == {org_id} and t.variables("u1")["org_id"] == org_id
    assert t.types(cursor) == events


def test_rekey_onto_a_taken_org_id_is_409(tenancy):
    t = tenancy("t-link")
    a = group(t, "A", "A-1")
    t.admin(lambda service: service.create("B-1", "B"))
    response = t.patch_group(a["id"], {"op": "replace", "path": "externalId", "value": "B-1"})
    assert response.status_code == 409 and response.get_json()["scimType"] == "uniqueness"
    assert "organization 'B' has that org_id" in response.get_json()["detail"]
    assert t.group_ext(a["id"])["orgId"] == "A-1" and t.scim.get(f"/Groups/{a['id']}").get_json()["externalId"] == "A-1"


def test_admin_rekey_sticks_until_the_idp_changes_the_source(tenancy):
    t = tenancy("t-link")
    user = t.scim.create_user("rk")
    g = group(t, "Research", "R-1", [user["id"]])
    cursor = t.cursor()
    t.admin(lambda service: service.set_org_id("R-1", "4711"))
    (rekeyed,) = t.events(cursor)
    assert rekeyed["type"] == "org.rekeyed" and (rekeyed["before"], rekeyed["after"]) == (
        {"org_id": "R-1"}, {"org_id": "4711"})
    assert t.group_ext(g["id"])["orgId"] == "4711" and t.variables("rk")["org_id"] == "4711"
    assert t.scim.get(f'/Users?filter={INF_USER}:orgId eq "4711"').get_json()["totalResults"] == 1
    t.patch_group(g["id"], {"op": "replace", "path": "displayName", "value": "Research & Development"})
    assert t.group_ext(g["id"])["orgId"] == "4711"  # a rename is not a change of the org_id source
    t.patch_group(g["id"], {"op": "replace", "path": "externalId", "value": "R-2"})
    assert t.group_ext(g["id"])["orgId"] == "R-2"  # the IdP changed it: follow


def test_org_id_from_the_iam_org_id_extension_attribute(tenancy):
    t = tenancy("t-iam")
    plain = group(t, "No IAM id", "whatever")
    assert INF_GROUP not in plain and t.group_ext(plain["id"]) == {}
    mapped = group(t, "With IAM id", None, **{INF_GROUP: {"iamOrgId": "IAM-77", "orgId": "ignored"}})
    # By default the response echoes the writable iamOrgId only (what the client wrote reads back as is).
    assert mapped[INF_GROUP] == {"iamOrgId": "IAM-77"}
    assert t.group_ext(mapped["id"]) == {"iamOrgId": "IAM-77", "orgId": "IAM-77", "orgName": "With IAM id",
                                         "managed": True, "orphaned": False}
    response = t.patch_group(plain["id"], {"op": "add", "path": f"{INF_GROUP}:iamOrgId", "value": "IAM-78"},
                             query_string=WITH_GROUP_ORG)
    assert response.get_json()[INF_GROUP]["orgId"] == "IAM-78"
    # The derived attributes are readOnly.
    response = t.patch_group(plain["id"], {"op": "replace", "path": f"{INF_GROUP}:orgId", "value": "x"})
    assert response.status_code == 400 and response.get_json()["scimType"] == "mutability"
    body = t.scim.get(f'/Groups?filter={INF_GROUP}:iamOrgId eq "IAM-77"').get_json()
    assert [r["id"] for r in body["Resources"]] == [mapped["id"]]


# -- detach / delete -----------------------------------------------------------------------------


def test_detach_keeps_the_org_and_its_manual_memberships(tenancy):
    t = tenancy("t-link")
    user = t.scim.create_user("d1")
    g = group(t, "Detach me", "DET", [user["id"]])
    cursor = t.cursor()
    t.scim.delete(f"/Groups/{g['id']}")
    assert t.orgs()["DET"]["orphaned"] is True
    assert t.types(cursor) == ["org.orphaned", "membership.removed", "user.primary_org_changed"]
    assert t.variables("d1")["org_ids"] == []


def test_delete_policy_deletes_the_org(tenancy):
    t = tenancy("t-delete")
    user = t.scim.create_user("del1")
    g = group(t, "Delete me", "DEL", [user["id"]])
    cursor = t.cursor()
    t.scim.delete(f"/Groups/{g['id']}")
    assert t.orgs() == {}
    assert t.types(cursor) == ["membership.removed", "user.primary_org_changed", "org.deleted"]
    deleted = t.events(cursor)[-1]
    assert deleted["before"] == {"org_id": "DEL", "name": "Delete me"}


def test_delete_policy_when_the_group_stops_mapping(tenancy):
    t = tenancy("t-delete")
    user = t.scim.create_user("del2")
    g = group(t, "Unmap me", "UNMAP", [user["id"]])
    cursor = t.cursor()
    response = t.patch_group(g["id"], {"op": "remove", "path": "externalId"}, query_string=WITH_GROUP_ORG)
    assert response.status_code == 200 and INF_GROUP not in response.get_json()
    assert t.orgs() == {} and t.variables("del2")["org_ids"] == []
    assert t.types(cursor) == ["membership.removed", "user.primary_org_changed", "org.deleted"]


def test_a_group_that_stops_matching_is_unmapped_and_restored(tenancy):
    t = tenancy("okta")
    user = t.scim.create_user("um@x.test")
    g = group(t, "ORG-9 Nine", None, [user["id"]])
    t.patch_group(g["id"], {"op": "replace", "path": "displayName", "value": "Nine (archived)"})
    assert t.group_ext(g["id"]) == {"orgId": "9", "orgName": "Nine", "managed": True, "orphaned": True}
    assert t.variables("um@x.test")["org_id"] is None
    cursor = t.cursor()
    t.patch_group(g["id"], {"op": "replace", "path": "displayName", "value": "ORG-9 Nine"})
    assert t.group_ext(g["id"])["orphaned"] is False and t.variables("um@x.test")["org_id"] == "9"
    assert t.types(cursor) == ["org.linked", "membership.added", "user.primary_org_changed"]


# -- single / multi ------------------------------------------------------------------------------


def test_single_membership_precedence_and_conflict(tenancy):
    t = tenancy("t-single")
    user = t.scim.create_user("s1")
    branch_b = group(t, "Branch B", "B-2", [user["id"]])
    group(t, "Branch A", "A-1", [user["id"]])
    assert t.user(user["id"]) == {"orgId": "B-2", "orgIds": ["B-2"], "role": "Viewer", "primaryOrgConflict": True}
    hq = group(t, "Head office", "HQ-1")
    t.add_members(hq["id"], user["id"])
    assert t.user(user["id"])["orgId"] == "HQ-1"  # precedence: org_id =~ ^HQ- ranks first
    assert t.variables("s1")["org_ids"] == ["HQ-1"]
    conflicts = [e for e in t.events() if e["type"] == "user.primary_org_conflict"]
    assert conflicts[-1]["after"] == {"conflict": True, "candidates": ["A-1", "B-2", "HQ-1"], "chosen": "HQ-1"}
    t.remove_members(hq["id"], user["id"])
    assert t.user(user["id"])["orgId"] == "A-1"  # the current one left: lowest org_id among the tie
    t.remove_members(branch_b["id"], user["id"])
    assert t.user(user["id"])["primaryOrgConflict"] is False
    body = t.scim.get(f"/Users?filter={INF_USER}:primaryOrgConflict eq false").get_json()
    assert body["totalResults"] == 1


def test_multi_membership(tenancy):
    t = tenancy("t-link")
    user = t.scim.create_user("m1")
    group(t, "One", "O-1", [user["id"]])
    group(t, "Two", "O-2", [user["id"]])
    assert t.user(user["id"]) == {"orgId": "O-1", "orgIds": ["O-1", "O-2"], "role": "Viewer",
                                  "primaryOrgConflict": False}


# -- nesting and roles ---------------------------------------------------------------------------


def test_nested_groups_are_flattened_and_cycles_refused(tenancy):
    t = tenancy("t-link")
    alice = t.scim.create_user("alice")
    bob = t.scim.create_user("bob")
    team = group(t, "Team", None, [alice["id"]])  # not an org (no externalId)
    dept = group(t, "Department", "DEPT-1", [team["id"]])
    assert t.user(alice["id"])["orgIds"] == ["DEPT-1"]
    t.add_members(team["id"], bob["id"])  # reaches DEPT-1 through Team
    assert t.user(bob["id"])["orgIds"] == ["DEPT-1"]
    admins = group(t, "Infinity Admins", None, [dept["id"]])  # a role through two levels
    assert t.user(bob["id"])["role"] == "Admin"
    # Cycles: Department -> Team -> Department, and a longer one through Admins.
    for parent, child in ((team, dept), (team, admins), (dept, dept)):
        response = t.patch_group(parent["id"], {"op": "add", "path": "members", "value": [{"value": child["id"]}]})
        assert response.status_code == 400 and response.get_json()["scimType"] == "invalidValue"
    response = t.scim.put(f"/Groups/{team['id']}", {"schemas": [GROUP], "displayName": "Team",
                                                     "members": [{"value": admins["id"]}]})
    assert response.status_code == 400 and "cycle" in response.get_json()["detail"]
    # Removing the nested group removes the users below it from the org and the role.
    t.remove_members(dept["id"], team["id"])
    assert t.user(bob["id"]) == {"role": "Viewer", "primaryOrgConflict": False}


def test_role_groups_by_external_id_and_precedence(tenancy):
    t = tenancy("t-link")
    user = t.scim.create_user("r1")
    editors = group(t, "Whatever", "role-editor", [user["id"]])
    assert t.group_ext(editors["id"]) == {} and t.user(user["id"])["role"] == "Editor"  # role groups are never orgs
    group(t, "Analysts", None, [user["id"]])
    assert t.user(user["id"])["role"] == "Editor"  # Editor precedes the custom role Analyst
    t.remove_members(editors["id"], user["id"])
    assert t.user(user["id"])["role"] == "Analyst"
    t.patch_group(editors["id"], {"op": "add", "path": "members", "value": [{"value": user["id"]}]})
    t.patch_group(editors["id"], {"op": "replace", "path": "externalId", "value": "no-role"})
    assert t.user(user["id"])["role"] == "Analyst"  # the group stopped granting Editor; it is an org now
    assert t.user(user["id"])["orgIds"] == ["no-role"]


def test_user_deleted_and_recreated(tenancy):
    t = tenancy("t-link")
    user = t.scim.create_user("gone", emails=[{"value": "gone@x.test", "type": "work"}])
    group(t, "G", "G-1", [user["id"]])
    cursor = t.cursor()
    t.scim.delete(f"/Users/{user['id']}")
    removed, deleted = t.events(cursor)
    assert removed["type"] == "membership.removed" and removed["before"]["email"] == "gone@x.test"
    assert deleted["type"] == "user.deleted" and deleted["subject"] == f"user:{user['id']}"


# -- SCIM view -----------------------------------------------------------------------------------


def test_projection_and_one_org_query_per_page(tenancy, engine):
    t = tenancy("t-link")
    users = [t.scim.create_user(f"p{i}")["id"] for i in range(5)]
    for i in range(3):
        group(t, f"Org {i}", f"P-{i}", users)
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    def fetch(*paths):
        statements.clear()
        event.listen(engine, "before_cursor_execute", record)
        try:
            return [t.scim.get(path).get_json() for path in paths]
        finally:
            event.remove(engine, "before_cursor_execute", record)

    # By default the computed attributes are left out (returned = "request") and not even queried.
    users_page, groups_page = fetch("/Users?count=10", "/Groups?count=10&excludedAttributes=members")
    assert len(users_page["Resources"]) == 5 and len(groups_page["Resources"]) == 3
    assert all(INF_USER not in r and INF_USER not in r["schemas"] for r in users_page["Resources"])
    assert all(INF_GROUP not in r and INF_GROUP not in r["schemas"] for r in groups_page["Resources"])
    assert not any("user_org_state" in s or "orgs" in s for s in statements)
    # Named, they are returned, with one org query per page (never one per resource).
    users_page, groups_page = fetch(f"/Users?count=10&attributes={INF_USER}",
                                    f"/Groups?count=10&attributes={INF_GROUP}")
    assert all(r[INF_USER]["orgIds"] == ["P-0", "P-1", "P-2"] for r in users_page["Resources"])
    assert all(r[INF_GROUP]["managed"] is True for r in groups_page["Resources"])
    assert sum("user_org_state" in s for s in statements) == 1
    assert sum("FROM orgs" in s for s in statements) == 1
    # Excluded, or not named among the attributes: no org query either.
    body, excluded_groups = fetch(f"/Users?excludedAttributes={INF_USER}", "/Groups?attributes=displayName")
    assert all(INF_USER not in r for r in body["Resources"])
    assert all(INF_GROUP not in r for r in excluded_groups["Resources"])
    assert not any("user_org_state" in s or "orgs" in s for s in statements)
    only_role = t.scim.get(f"/Users/{users[0]}?attributes={INF_USER}:role").get_json()
    assert only_role[INF_USER] == {"role": "Viewer"}
    body = t.scim.get(f'/Users?filter={INF_USER}:orgId eq "P-0"&attributes=userName,{INF_USER}').get_json()
    assert body["totalResults"] == 5
    assert {r["userName"]: r[INF_USER]["orgId"] for r in body["Resources"]} == {f"p{i}": "P-0" for i in range(5)}


def test_readonly_user_extension_cannot_be_written(tenancy):
    t = tenancy("t-link")
    user = t.scim.create_user("ro")
    for name, value in (("role", "Owner"), ("orgId", "X-1"), ("orgIds", ["X-1"]), ("primaryOrgConflict", True)):
        response = t.scim.patch(f"/Users/{user['id']}", {"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": f"{INF_USER}:{name}", "value": value}]})
        assert response.status_code == 400 and response.get_json()["scimType"] == "mutability", name
    # readOnly input is ignored; the writable iamOrgId is stored and, alone, read back as written.
    response = t.scim.post("/Users", {"userName": "ro2", INF_USER: {"role": "Owner", "orgId": "X-1",
                                                                      "iamOrgId": "IAM-1"}})
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created[INF_USER] == {"iamOrgId": "IAM-1"}
    assert t.user(created["id"]) == {"iamOrgId": "IAM-1", "role": "Viewer", "primaryOrgConflict": False}
    response = t.scim.patch(f"/Users/{user['id']}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": f"{INF_USER}:iamOrgId", "value": "IAM-2"}]})
    assert response.status_code == 200 and response.get_json()[INF_USER] == {"iamOrgId": "IAM-2"}


def test_sort_by_org_id(tenancy):
    t = tenancy("t-link")
    a, b = t.scim.create_user("sa"), t.scim.create_user("sb")
    group(t, "Z", "Z-9", [a["id"]])
    group(t, "A", "A-1", [b["id"]])
    body = t.scim.get(f"/Users?sortBy={INF_USER}:orgId").get_json()
    assert [r["userName"] for r in body["Resources"]] == ["sb", "sa"]
    body = t.scim.get(f"/Groups?sortBy={INF_GROUP}:orgId&sortOrder=descending").get_json()
    assert [r["displayName"] for r in body["Resources"]] == ["Z", "A"]


# -- the User extension's writable iamOrgId -------------------------------------------------------


def patch_user(t, user_id, *operations, **kwargs):
    return t.scim.patch(f"/Users/{user_id}", {"schemas": [PATCH_OP], "Operations": list(operations)}, **kwargs)


def test_user_iam_org_id_is_written_by_post_put_and_patch(tenancy):
    t = tenancy("t-link")
    response = t.scim.post("/Users", {"schemas": [USER, INF_USER], "userName": "iam1",
                                      INF_USER: {"iamOrgId": "IAM-U1"}})
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    # Returned by default, exactly as written (the computed attributes only on request).
    assert created["schemas"] == [USER, INF_USER] and created[INF_USER] == {"iamOrgId": "IAM-U1"}
    assert t.scim.get(f"/Users/{created['id']}").get_json()[INF_USER] == {"iamOrgId": "IAM-U1"}
    group(t, "Org", "O-1", [created["id"]])
    assert t.user(created["id"]) == {"iamOrgId": "IAM-U1", "orgId": "O-1", "orgIds": ["O-1"], "role": "Viewer",
                                     "primaryOrgConflict": False}
    assert t.variables("iam1")["iam_org_id"] == "IAM-U1"

    response = patch_user(t, created["id"], {"op": "replace", "path": f"{INF_USER}:iamOrgId", "value": "IAM-U2"})
    assert response.status_code == 200 and response.get_json()[INF_USER] == {"iamOrgId": "IAM-U2"}
    assert t.variables("iam1")["iam_org_id"] == "IAM-U2"
    # Writing it changes no org: the user's orgs come from its groups.
    assert t.user(created["id"])["orgIds"] == ["O-1"] and set(t.orgs()) == {"O-1"}

    response = patch_user(t, created["id"], {"op": "remove", "path": f"{INF_USER}:iamOrgId"},
                          query_string=WITH_USER_ORG)
    assert response.status_code == 200
    assert response.get_json()[INF_USER] == {"orgId": "O-1", "orgIds": ["O-1"], "role": "Viewer",
                                             "primaryOrgConflict": False}
    assert INF_USER not in t.scim.get(f"/Users/{created['id']}").get_json()
    assert "iam_org_id" not in t.variables("iam1")

    # A path-less add, then PUT (which replaces it, and clears it when left out).
    response = patch_user(t, created["id"], {"op": "add", "value": {INF_USER: {"iamOrgId": "IAM-U3"}}})
    assert response.status_code == 200 and response.get_json()[INF_USER] == {"iamOrgId": "IAM-U3"}
    response = t.scim.put(f"/Users/{created['id']}", {"schemas": [USER, INF_USER], "userName": "iam1",
                                                       INF_USER: {"iamOrgId": "IAM-U4"}})
    assert response.status_code == 200 and response.get_json()[INF_USER] == {"iamOrgId": "IAM-U4"}
    assert t.variables("iam1")["iam_org_id"] == "IAM-U4"
    response = t.scim.put(f"/Users/{created['id']}", {"schemas": [USER], "userName": "iam1"})
    assert response.status_code == 200 and INF_USER not in response.get_json()
    assert "iam_org_id" not in t.variables("iam1")


def test_filter_by_user_iam_org_id(tenancy):
    t = tenancy("t-link")
    t.scim.create_user("fa", **{INF_USER: {"iamOrgId": "IAM-A"}})
    b = t.scim.create_user("fb", **{INF_USER: {"iamOrgId": "IAM-B"}})
    t.scim.create_user("fc")

    def found(expression):
        response = t.scim.get(f"/Users?filter={expression}")
        assert response.status_code == 200, response.get_json()
        return sorted(r["userName"] for r in response.get_json()["Resources"])

    assert found(f'{INF_USER}:iamOrgId eq "IAM-A"') == ["fa"]
    assert found(f'{INF_USER}:iamOrgId eq "iam-a"') == []  # caseExact
    assert found(f"{INF_USER}:iamOrgId pr") == ["fa", "fb"]
    assert found(f'{INF_USER}:iamOrgId sw "IAM-" and not (userName eq "fa")') == ["fb"]
    patch_user(t, b["id"], {"op": "replace", "path": f"{INF_USER}:iamOrgId", "value": "IAM-A"})
    assert found(f'{INF_USER}:iamOrgId eq "IAM-A"') == ["fa", "fb"]


def test_user_variables_include_iam_org_id(tenancy, database_url, monkeypatch):
    from click.testing import CliRunner

    from scim_bridge.cli import main

    monkeypatch.setenv("SCIM_BRIDGE_DATABASE_URL", database_url)
    monkeypatch.delenv("SCIM_BRIDGE_MAPPINGS_DIR", raising=False)
    t = tenancy("generic")
    t.scim.create_user("vic@x.test", **{INF_USER: {"iamOrgId": "IAM-V"}})
    t.scim.create_user("nil@x.test")
    expected = {"org_id": None, "org_name": None, "org_ids": [], "role": "Viewer", "department": None,
                "active": True, "iam_org_id": "IAM-V"}
    assert t.variables("vic@x.test") == expected
    assert "iam_org_id" not in t.variables("nil@x.test")  # only when the identity provider sent one
    result = CliRunner().invoke(main, ["user", "variables", "--tenant", t.tenant.slug, "VIC@x.test"],
                                catch_exceptions=False)
    assert result.exit_code == 0 and json.loads(result.output) == expected


# -- start-up ------------------------------------------------------------------------------------


def test_invalid_profile_refuses_to_start(settings, storage, tmp_path):
    (tmp_path / "broken.toml").write_text("[membership]\nmode = 'several'\n", encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        create_app(settings.replace(mappings_dir=str(tmp_path)), storage=storage)
    assert str(caught.value) == (f"{tmp_path / 'broken.toml'}: membership.mode: 'several' is not one of: "
                                 "single, multi")


def test_unknown_tenant_profile_is_a_clear_500(tenancy, storage):
    from scim_bridge.storage.models import Tenant

    t = tenancy("t-link")
    with storage.sessionmaker() as session, session.begin():
        session.get(Tenant, t.tenant.id).profile = "removed"
    response = t.scim.post("/Users", {"userName": "x"})
    assert response.status_code == 500 and "mapping profile 'removed'" in response.get_json()["detail"]


# -- Bulk ----------------------------------------------------------------------------------------


def test_bulk_failed_operation_leaves_no_org_or_event(tenancy):
    """Bulk runs operations in savepoints: a refused mapping rolls back with its events only."""
    t = tenancy("t-reject")
    t.admin(lambda service: service.create("TAKEN", "Taken"))
    cursor = t.cursor()
    operations = [
        {"method": "POST", "path": "/Users", "bulkId": "u", "data": {"schemas": [USER], "userName": "bulk-user"}},
        {"method": "POST", "path": "/Groups", "bulkId": "bad",
         "data": {"schemas": [GROUP], "displayName": "Clash", "externalId": "TAKEN"}},
        {"method": "POST", "path": "/Groups", "bulkId": "good",
         "data": {"schemas": [GROUP], "displayName": "Fine", "externalId": "FINE", "members": [{"value": "bulkId:u"}]}},
    ]
    response = t.scim.post("/Bulk", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                                     "Operations": operations})
    assert response.status_code == 200, response.get_json()
    statuses = [op["status"] for op in response.get_json()["Operations"]]
    assert statuses == ["201", "409", "201"]
    assert set(t.orgs()) == {"TAKEN", "FINE"}
    assert t.types(cursor) == ["user.provisioned", "org.created", "membership.added", "user.primary_org_changed"]
    assert t.variables("bulk-user")["org_ids"] == ["FINE"]
