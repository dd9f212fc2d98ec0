"""Org management through the admin service (issue 6 §1): list, create, edit, delete, assign, link."""

from __future__ import annotations

import pytest

from scim_bridge.admin.errors import Conflict
from scim_bridge.admin.errors import InvalidInput
from scim_bridge.admin.errors import NotFound
from scim_bridge.admin.errors import Refused
from scim_bridge.admin.orgs_admin import OrgQuery
from scim_bridge.domain import audit


def test_create_checks_org_id_and_name(admin_tenancy):
    a = admin_tenancy("okta")  # validate = '^\d{1,18}$'
    org = a.admin(lambda s: s.create(" 4711 ", " ACME Berlin "))
    assert (org.org_id, org.name, org.source, org.name_locked) == ("4711", "ACME Berlin", "manual", True)
    with pytest.raises(Conflict, match="already used by organization 'ACME Berlin'"):
        a.admin(lambda s: s.create("4711", "Other"))
    with pytest.raises(InvalidInput, match=r"does not match the pattern /\^\\d\{1,18\}\$/"):
        a.admin(lambda s: s.create("ACME-1", "x"))
    for org_id, name in (("", "x"), ("1", " "), ("1" * 300, "x")):
        with pytest.raises(InvalidInput):
            a.admin(lambda s, i=org_id, n=name: s.create(i, n))
    (created,) = [e for e in a.t.events() if e["type"] == "org.created"]
    assert created["after"] == {"org_id": "4711", "name": "ACME Berlin", "source": "manual", "group": None}


def test_list_searches_filters_counts_and_pages(admin_tenancy):
    a = admin_tenancy("t-link")
    alice, bob = a.user("alice"), a.user("bob")
    a.group("Sales Berlin", "S-1", (alice["id"], bob["id"]))
    a.group("Sales Paris", "S-2", (alice["id"],))
    a.admin(lambda s: s.create("M-1", "Marketing"))
    page = a.admin(lambda s: s.list(OrgQuery(search="sales")))
    assert [(v.org_id, v.member_count, v.source, v.group_name) for v in page.items] == [
        ("S-1", 2, "idp", "Sales Berlin"), ("S-2", 1, "idp", "Sales Paris")]
    assert a.admin(lambda s: [v.org_id for v in s.list(OrgQuery(search="m-1")).items]) == ["M-1"]
    assert a.admin(lambda s: [v.org_id for v in s.list(OrgQuery(source="manual")).items]) == ["M-1"]
    assert a.admin(lambda s: [v.org_id for v in s.list(OrgQuery(linked=False)).items]) == ["M-1"]
    first = a.admin(lambda s: s.list(OrgQuery(limit=2)))
    assert (first.total, len(first.items), first.next_offset) == (3, 2, 2)
    last = a.admin(lambda s: s.list(OrgQuery(offset=2, limit=2)))
    assert ([v.org_id for v in last.items], last.next_offset) == (["S-2"], None)
    # LIKE wildcards in a search are literal.
    assert a.admin(lambda s: s.list(OrgQuery(search="%")).total) == 0


def test_edit_renames_and_rekeys_with_events(admin_tenancy):
    a = admin_tenancy("t-link")
    user = a.user("rk")
    g = a.group("Research", "R-1", (user["id"],))
    cursor = a.t.cursor()
    org = a.admin(lambda s: s.edit(s.by_org_id("R-1"), org_id="4711", name="Research & Development"))
    assert (org.org_id, org.name, org.name_locked) == ("4711", "Research & Development", True)
    rekeyed, renamed = a.t.events(cursor)
    assert (rekeyed["type"], rekeyed["before"], rekeyed["after"]) == ("org.rekeyed", {"org_id": "R-1"},
                                                                      {"org_id": "4711"})
    assert renamed["type"] == "org.renamed" and renamed["after"]["name"] == "Research & Development"
    assert a.t.variables("rk")["org_id"] == "4711" and a.t.group_ext(g["id"])["orgId"] == "4711"
    a.admin(lambda s: s.create("X-1", "X"))
    with pytest.raises(Conflict, match="organization 'X' has that org_id"):
        a.admin(lambda s: s.edit(s.by_org_id("4711"), org_id="X-1"))
    with pytest.raises(Conflict, match="changed since you loaded it"):
        a.admin(lambda s: s.edit(s.by_org_id("4711"), name="Y", expected_version=1))
    assert a.orgs()["4711"]["name"] == "Research & Development"  # nothing of the refused edits stayed


def test_delete_only_manual_or_orphaned(admin_tenancy):
    a = admin_tenancy("t-link")
    user = a.user("del")
    g = a.group("Managed", "MG-1", (user["id"],))
    with pytest.raises(Refused, match="managed by the identity provider through group 'Managed'"):
        a.admin(lambda s: s.delete(s.by_org_id("MG-1")))
    a.admin(lambda s: s.create("MAN-1", "Manual"))
    other = a.group("Other", None)
    a.admin(lambda s: s.link(s.by_org_id("MAN-1"), s.require_group(other["id"])))
    with pytest.raises(Refused, match="linked to group 'Other': unlink it first"):
        a.admin(lambda s: s.delete(s.by_org_id("MAN-1")))
    a.admin(lambda s: s.unlink(s.by_org_id("MAN-1")))
    a.admin(lambda s: s.assign(s.by_org_id("MAN-1"), s.require_user("del")))
    cursor = a.t.cursor()
    a.admin(lambda s: s.delete(s.by_org_id("MAN-1")))
    assert a.t.types(cursor) == ["membership.removed", "org.deleted"]
    a.t.scim.delete(f"/Groups/{g['id']}")  # orphans MG-1
    a.admin(lambda s: s.delete(s.by_org_id("MG-1")))
    assert a.orgs() == {}
    with pytest.raises(NotFound):
        a.admin(lambda s: s.by_org_id("MG-1"))


def test_manual_memberships_survive_idp_syncs(admin_tenancy):
    a = admin_tenancy("t-link")
    alice, bob = a.user("alice"), a.user("bob")
    g = a.group("Eng", "ENG", (alice["id"],))
    a.admin(lambda s: s.create("HQ", "Head office"))
    cursor = a.t.cursor()
    a.admin(lambda s: s.assign(s.by_org_id("HQ"), s.require_user("alice")))
    a.admin(lambda s: s.assign(s.by_org_id("HQ"), s.require_user(bob["id"])))
    added = [e for e in a.t.events(cursor) if e["type"] == "membership.added"]
    assert [e["after"]["source"] for e in added] == ["manual", "manual"]
    assert a.t.variables("bob")["org_id"] == "HQ"  # only a manual org: it is the primary one
    with pytest.raises(Conflict, match="already assigned"):
        a.admin(lambda s: s.assign(s.by_org_id("HQ"), s.require_user("bob")))
    # IdP syncs touching alice keep her manual membership.
    a.t.remove_members(g["id"], alice["id"])
    a.t.add_members(g["id"], alice["id"], bob["id"])
    assert a.t.variables("alice")["org_ids"] == ["ENG", "HQ"] and a.t.variables("bob")["org_ids"] == ["ENG", "HQ"]
    members = a.admin(lambda s: s.members(s.by_org_id("HQ").id)).items
    assert [(m.user_name, m.sources) for m in members] == [("alice", ("manual",)), ("bob", ("manual",))]
    # IdP memberships cannot be removed by hand; manual ones can.
    with pytest.raises(Refused, match="through group 'Eng' of the identity provider"):
        a.admin(lambda s: s.unassign(s.by_org_id("ENG"), s.require_user("alice")))
    a.admin(lambda s: s.unassign(s.by_org_id("HQ"), s.require_user("alice")))
    assert a.t.variables("alice")["org_ids"] == ["ENG"]
    with pytest.raises(NotFound, match="not a member"):
        a.admin(lambda s: s.unassign(s.by_org_id("HQ"), s.require_user("alice")))


def test_link_and_unlink(admin_tenancy):
    a = admin_tenancy("t-link")
    user = a.user("lu")
    team = a.group("Team", None, (user["id"],))  # not an org: no externalId
    a.admin(lambda s: s.create("T-1", "Team"))
    cursor = a.t.cursor()
    a.admin(lambda s: s.link(s.by_org_id("T-1"), s.require_group("team")))
    assert a.t.types(cursor) == ["org.linked", "membership.added", "user.primary_org_changed"]
    assert a.t.variables("lu")["org_id"] == "T-1" and a.t.group_ext(team["id"])["orgId"] == "T-1"
    a.t.add_members(team["id"], a.user("late")["id"])  # the link follows IdP membership changes
    assert a.t.variables("late")["org_id"] == "T-1"
    with pytest.raises(Conflict, match="already linked"):
        a.admin(lambda s: s.link(s.by_org_id("T-1"), s.require_group("Team")))
    a.admin(lambda s: s.create("T-2", "Other"))
    with pytest.raises(Conflict, match="group 'Team' is linked to organization 'Team'"):
        a.admin(lambda s: s.link(s.by_org_id("T-2"), s.require_group("Team")))
    a.admin(lambda s: s.unlink(s.by_org_id("T-1")))
    assert a.orgs()["T-1"] == {"name": "Team", "source": "manual", "group": None, "orphaned": False,
                               "name_locked": True}
    assert a.t.variables("lu")["org_ids"] == []
    # A group the profile maps onto the org's own org_id cannot be unlinked: the IdP would re-link it.
    a.group("Mapped", "MP-1")
    with pytest.raises(Refused, match="maps group 'Mapped' onto org_id 'MP-1'"):
        a.admin(lambda s: s.unlink(s.by_org_id("MP-1")))
    with pytest.raises(NotFound):
        a.admin(lambda s: s.link(s.by_org_id("T-2"), s.require_group("nope")))


def test_admin_writes_are_audited(admin_tenancy, storage):
    a = admin_tenancy("t-link")
    a.admin(lambda s: s.create("AU-1", "Audited"))
    a.admin(lambda s: s.edit(s.by_org_id("AU-1"), org_id="AU-2"))
    with storage.sessionmaker() as session:
        rows = audit.query(session, audit.AuditFilter(a.tenant.id, action="org"))
    assert [(r.action, r.client, r.resource_type, r.detail) for r in rows] == [
        ("org.edit", "test", "org", "org_id 'AU-1' -> 'AU-2'"), ("org.create", "test", "org", "org_id 'AU-1'")]


def test_a_hand_made_link_survives_idp_renames(admin_tenancy):
    """A group the profile does not map, linked by an admin, stays linked when the IdP renames it."""
    a = admin_tenancy("generic")
    user = a.user("stick")
    team = a.group("Team", None, (user["id"],))
    a.admin(lambda s: s.create("T-1", "Team"))
    a.admin(lambda s: s.link(s.by_org_id("T-1"), s.require_group("Team")))
    response = a.t.patch_group(team["id"], {"op": "replace", "path": "displayName", "value": "Team (renamed)"})
    # A group PATCH answers 204 with the ETag and no body unless the client asks for the group.
    assert response.status_code == 204 and response.get_data() == b"" and response.headers.get("ETag")
    renamed = a.t.scim.get(f"/Groups/{team['id']}").get_json()
    assert renamed["displayName"] == "Team (renamed)" and renamed["meta"]["version"] == response.headers["ETag"]
    assert a.orgs()["T-1"]["orphaned"] is False and a.t.variables("stick")["org_id"] == "T-1"
