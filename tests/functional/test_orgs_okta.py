"""The Okta push-groups flow (idp-behavior.md §1.3) under the ``okta`` profile, through SCIM.

Okta pushes groups by name only (no externalId); the ``okta`` profile maps groups named
``ORG-<id> <name>`` onto organizations, gives each user one primary org, and role groups grant roles.
"""

from __future__ import annotations

from tests.functional.orgs_support import GROUP
from tests.functional.orgs_support import INF_GROUP
from tests.functional.orgs_support import INF_USER
from tests.functional.orgs_support import PATCH_OP
from tests.functional.orgs_support import USER


def okta_user(t, user_name, given, family, **extra):
    """O-U2: Okta's create body (with password and groups: [])."""
    body = {"schemas": [USER], "userName": user_name, "name": {"givenName": given, "familyName": family},
            "emails": [{"primary": True, "value": user_name, "type": "work"}], "displayName": f"{given} {family}",
            "locale": "en-US", "externalId": f"00u{given.lower()}", "groups": [], "password": "1mz050nq",
            "active": True, **extra}
    response = t.scim.post("/Users", body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def push_group(t, name, headers=None):
    """O-G1: ``POST /Groups`` with a name and no members."""
    response = t.scim.post("/Groups", {"schemas": [GROUP], "displayName": name, "members": []}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def patched_group(t, group_id, response):
    """Check a group PATCH's answer and return the group read back through GET.

    Okta sends no ``Prefer`` header, so a group PATCH answers 204 with the ETag and no body
    (O-G4 to O-G6 accept 200 with the group or 204); the ETag is the version the PATCH produced.
    """
    assert response.status_code == 204, response.get_data(as_text=True)
    assert response.get_data() == b"" and response.headers.get("ETag")
    fetched = t.scim.get(f"/Groups/{group_id}")
    assert fetched.status_code == 200, fetched.get_json()
    assert response.headers["ETag"] == fetched.get_json()["meta"]["version"]
    return fetched.get_json()


def rename(t, group, name):
    """O-G4: path-less replace whose value carries the read-only id."""
    return t.patch_group(group["id"], {"op": "replace", "value": {"id": group["id"], "displayName": name}})


def push_members(t, group, remove, add):
    """O-G5: remove-by-filter and add in one PATCH."""
    operations = [{"op": "remove", "path": f'members[value eq "{uid}"]'} for uid in remove]
    operations.append({"op": "add", "path": "members",
                       "value": [{"value": uid, "display": "okta"} for uid in add]})
    return patched_group(t, group["id"], t.patch_group(group["id"], *operations))


def test_okta_push_groups_flow(tenancy):
    t = tenancy("okta")
    alice = okta_user(t, "alice@acme.test", "Alice", "Smith")
    bob = okta_user(t, "bob@acme.test", "Bob", "Jones")

    # O-G1: a pushed org group becomes an org; the name loses its "ORG-<id> " prefix.
    berlin = push_group(t, "ORG-4711 ACME Berlin", headers={"X-Request-ID": "okta-push-1"})
    # The computed extension is returned on request only (returned = "request"), so Okta reads back
    # what it pushed; asked for, it is there.
    assert berlin["schemas"] == [GROUP] and INF_GROUP not in berlin
    requested = t.scim.get(f"/Groups/{berlin['id']}?attributes={INF_GROUP}").get_json()
    assert requested["schemas"] == [GROUP, INF_GROUP]
    assert requested[INF_GROUP] == {"orgId": "4711", "orgName": "ACME Berlin", "managed": True, "orphaned": False}
    created = t.events()[-1]
    assert created["type"] == "org.created" and created["request_id"] == "okta-push-1"
    assert created["after"]["org_id"] == "4711" and created["after"]["name"] == "ACME Berlin"
    # A group that does not match the profile stays a plain group.
    plain = push_group(t, "Test SCIMv2")
    assert plain["schemas"] == [GROUP] and INF_GROUP not in plain and t.group_ext(plain["id"]) == {}

    # O-G4 rename (idempotent, sent before each membership push) then O-G5 membership.
    cursor = t.cursor()
    patched_group(t, berlin["id"], rename(t, berlin, "ORG-4711 ACME Berlin"))
    assert t.events(cursor) == []  # the same name again changes nothing
    push_members(t, berlin, remove=[], add=[alice["id"], bob["id"]])
    assert t.user(alice["id"]) == {"orgId": "4711", "orgIds": ["4711"], "role": "Viewer",
                                   "primaryOrgConflict": False}
    assert t.types(cursor) == ["membership.added", "user.primary_org_changed",
                               "membership.added", "user.primary_org_changed"]

    # Role groups grant roles (Owner beats Admin).
    admins = push_group(t, "Infinity Admins")
    owners = push_group(t, "Infinity Owners")
    assert t.group_ext(admins["id"]) == {}  # a role group is never an org
    push_members(t, admins, remove=[], add=[alice["id"], bob["id"]])
    push_members(t, owners, remove=[], add=[alice["id"]])
    assert t.user(alice["id"])["role"] == "Owner" and t.user(bob["id"])["role"] == "Admin"
    role_events = [e for e in t.events() if e["type"] == "role.changed"]
    assert [(e["before"]["role"], e["after"]["role"]) for e in role_events] == [
        ("Viewer", "Admin"), ("Viewer", "Admin"), ("Admin", "Owner")]

    # A second org group: alice (single membership) keeps Berlin; the conflict is recorded.
    hamburg = push_group(t, "ORG-4712 ACME Hamburg")
    cursor = t.cursor()
    push_members(t, hamburg, remove=[], add=[alice["id"]])
    assert t.user(alice["id"]) == {"orgId": "4711", "orgIds": ["4711"], "role": "Owner",
                                   "primaryOrgConflict": True}
    (conflict,) = t.events(cursor)
    assert conflict["type"] == "user.primary_org_conflict"
    assert conflict["after"] == {"conflict": True, "candidates": ["4711", "4712"], "chosen": "4711"}

    # O-G6: full membership push with replace (bob moves to Hamburg, alice leaves Berlin).
    patched_group(t, berlin["id"], t.patch_group(berlin["id"], {"op": "replace", "path": "members", "value": []}))
    patched_group(t, hamburg["id"], t.patch_group(hamburg["id"], {
        "op": "replace", "path": "members", "value": [{"value": alice["id"]}, {"value": bob["id"]}]}))
    assert t.user(alice["id"])["orgId"] == "4712" and t.user(alice["id"])["primaryOrgConflict"] is False
    assert t.user(bob["id"])["orgIds"] == ["4712"]

    # Rename in Okta: the org follows, and a new number re-keys it (on_org_id_change = follow).
    cursor = t.cursor()
    rename(t, hamburg, "ORG-4712 ACME Hamburg-Altona")
    rename(t, hamburg, "ORG-4713 ACME Hamburg-Altona")
    assert t.types(cursor) == ["org.renamed", "org.rekeyed"]
    assert t.group_ext(hamburg["id"])["orgId"] == "4713"
    assert t.variables("alice@acme.test") == {
        "org_id": "4713", "org_name": "ACME Hamburg-Altona", "org_ids": ["4713"], "role": "Owner",
        "department": None, "employee_number": None, "title": None, "active": True}

    # O-U5: deactivation keeps memberships; the user is reported inactive.
    cursor = t.cursor()
    response = t.scim.patch(f"/Users/{alice['id']}", {"schemas": [PATCH_OP],
                                                      "Operations": [{"op": "replace", "value": {"active": False}}]})
    assert response.status_code == 200 and response.get_json()["active"] is False
    assert INF_USER not in response.get_json() and t.user(alice["id"])["orgId"] == "4713"
    (deactivated,) = t.events(cursor)
    assert deactivated["type"] == "user.deactivated" and deactivated["after"]["active"] is False
    assert t.variables("alice@acme.test")["active"] is False and t.variables("alice@acme.test")["org_id"] == "4713"

    # O-G7: unlink + delete the group: its org is detached (kept, orphaned), memberships go.
    cursor = t.cursor()
    assert t.scim.delete(f"/Groups/{hamburg['id']}").status_code == 204
    orgs = t.orgs()
    assert orgs["4713"]["orphaned"] is True and orgs["4713"]["group"] is None
    assert orgs["4711"]["orphaned"] is False
    assert t.user(bob["id"]) == {"role": "Admin", "primaryOrgConflict": False}
    assert t.types(cursor) == ["org.orphaned", "membership.removed", "user.primary_org_changed",
                               "membership.removed", "user.primary_org_changed"]


def test_okta_org_group_without_a_valid_number_is_refused(tenancy):
    t = tenancy("okta")
    response = t.scim.post("/Groups", {"schemas": [GROUP], "displayName": "ORG-12345678901234567890 Too long"})
    assert response.status_code == 400 and response.get_json()["scimType"] == "invalidValue"
    assert "does not match the pattern" in response.get_json()["detail"]
    assert t.orgs() == {}


def test_admin_edited_name_survives_okta_renames(tenancy):
    t = tenancy("okta")
    group = push_group(t, "ORG-100 Sales")
    t.admin(lambda service: service.rename("100", "Sales (EMEA)"))
    rename(t, group, "ORG-100 Sales Team")
    assert t.orgs()["100"]["name"] == "Sales (EMEA)"  # idp_renames_override_admin = false
    assert t.group_ext(group["id"])["orgName"] == "Sales (EMEA)"


def test_okta_links_a_pushed_group_to_an_org_an_admin_created(tenancy):
    t = tenancy("okta")
    t.admin(lambda service: service.create("4711", "ACME (created in Infinity)"))
    group = push_group(t, "ORG-4711 ACME Berlin")
    assert t.group_ext(group["id"]) == {"orgId": "4711", "orgName": "ACME (created in Infinity)", "managed": False,
                                        "orphaned": False}
    assert t.types()[-1] == "org.linked"
    # Deleting the group detaches an admin's org even under on_group_delete = "delete" rules.
    t.scim.delete(f"/Groups/{group['id']}")
    assert t.orgs()["4711"]["orphaned"] is True
