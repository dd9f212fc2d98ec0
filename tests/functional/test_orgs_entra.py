"""The Entra group flow (idp-behavior.md §2.2, §2.3) under the ``entra`` profile, through SCIM.

Entra sends each group with externalId = its objectId; every assigned group becomes an org keyed by
that GUID, users may be in several orgs (multi), deactivation keeps memberships, DELETE removes them.
"""

from __future__ import annotations

from tests.functional.orgs_support import ENTERPRISE
from tests.functional.orgs_support import GROUP
from tests.functional.orgs_support import INF_GROUP
from tests.functional.orgs_support import INF_USER
from tests.functional.orgs_support import PATCH_OP
from tests.functional.orgs_support import USER
from tests.functional.orgs_support import guid

MS_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"


def entra_user(t, user_name, department=None):
    """E-U2: Entra's create body (enterprise extension, meta, roles: [])."""
    body = {"schemas": [USER, ENTERPRISE], "externalId": guid(), "userName": user_name, "active": True,
            "emails": [{"primary": True, "type": "work", "value": f"{user_name}@contoso.test"}],
            "meta": {"resourceType": "User"}, "roles": [],
            "name": {"formatted": "givenName familyName", "familyName": "Family", "givenName": "Given"}}
    if department:
        body[ENTERPRISE] = {"department": department}
    response = t.scim.post("/Users", body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def entra_group(t, display_name, object_id=None):
    """E-G2: created with the Microsoft schema URI and no members."""
    body = {"schemas": [GROUP, MS_GROUP], "externalId": object_id or guid(), "displayName": display_name,
            "meta": {"resourceType": "Group"}}
    response = t.scim.post("/Groups", body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_entra_group_flow(tenancy):
    t = tenancy("entra")
    object_id = guid()
    # E-G1: the lookup by displayName finds nothing; E-G2 creates the group and its org.
    lookup = '/Groups?excludedAttributes=members&filter=displayName eq "Contoso Sales"'
    assert t.scim.get(lookup).get_json()["totalResults"] == 0
    sales = entra_group(t, "Contoso Sales", object_id.upper())
    assert INF_GROUP not in sales  # computed attributes are returned on request only
    assert t.group_ext(sales["id"]) == {"orgId": object_id, "orgName": "Contoso Sales", "managed": True,
                                        "orphaned": False}
    (found,) = t.scim.get(lookup).get_json()["Resources"]
    assert found["id"] == sales["id"] and "members" not in found and INF_GROUP not in found
    (found,) = t.scim.get(f"{lookup}&attributes={INF_GROUP}").get_json()["Resources"]
    assert found["id"] == sales["id"] and found[INF_GROUP]["orgId"] == object_id

    # E-G5: members are added by PATCH (several in one request; 204 when asked for minimal).
    ann = entra_user(t, "ann", department="Retail")
    ben = entra_user(t, "ben")
    cursor = t.cursor()
    response = t.add_members(sales["id"], ann["id"], ben["id"])
    response = t.patch_group(sales["id"], {"op": "Add", "path": "members", "value": [{"value": ann["id"]}]},
                             headers={"Prefer": "return=minimal"})
    assert response.status_code == 204
    assert t.types(cursor) == ["membership.added", "user.primary_org_changed"] * 2
    assert t.user(ann["id"]) == {"orgId": object_id, "orgIds": [object_id], "role": "Viewer",
                                 "primaryOrgConflict": False}

    # A second group: multi membership; orgId is the lowest org_id, orgIds has both.
    support_id = guid()
    support = entra_group(t, "Contoso Support", support_id)
    t.add_members(support["id"], ann["id"])
    assert t.user(ann["id"])["orgIds"] == sorted([object_id, support_id])
    assert t.user(ann["id"])["orgId"] == min(object_id, support_id)
    assert t.user(ann["id"])["primaryOrgConflict"] is False
    variables = t.variables("ann")
    assert variables["org_ids"] == sorted([object_id, support_id]) and variables["department"] == "Retail"
    assert set(variables) == {"org_id", "org_name", "org_ids", "role", "department", "employee_number",
                              "cost_center", "active"}

    # Role group: by displayName.
    admins = entra_group(t, "Infinity Admins")
    assert t.group_ext(admins["id"]) == {} and admins["externalId"] not in t.orgs()  # role groups are never orgs
    t.add_members(admins["id"], ben["id"])
    assert t.user(ben["id"])["role"] == "Admin"

    # E-G4: rename by PATCH; the org follows (no admin edit).
    t.patch_group(sales["id"], {"op": "Replace", "path": "displayName", "value": "Contoso Sales EMEA"})
    assert t.orgs()[object_id]["name"] == "Contoso Sales EMEA"

    # Filters on the extension.
    body = t.scim.get(f'/Users?filter={INF_USER}:orgIds eq "{support_id}"').get_json()
    assert [r["id"] for r in body["Resources"]] == [ann["id"]]
    body = t.scim.get(f'/Groups?filter={INF_GROUP}:orgId eq "{object_id}"&excludedAttributes=members').get_json()
    assert [r["id"] for r in body["Resources"]] == [sales["id"]]
    body = t.scim.get(f'/Users?filter={INF_USER}:role eq "Admin"').get_json()
    assert [r["id"] for r in body["Resources"]] == [ben["id"]]

    # E-G6: remove a member: ann stays in Support only.
    cursor = t.cursor()
    t.remove_members(sales["id"], ann["id"])
    assert t.user(ann["id"])["orgIds"] == [support_id]
    assert [e["type"] for e in t.events(cursor)][0] == "membership.removed"

    # §2.3: soft delete = active false keeps memberships (Q16); hard DELETE removes them.
    response = t.scim.patch(f"/Users/{ben['id']}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "Replace", "path": "active", "value": "False"}]})
    assert response.status_code == 200 and response.get_json()["active"] is False
    assert t.user(ben["id"])["orgIds"] == [object_id]
    assert t.variables("ben")["active"] is False
    cursor = t.cursor()
    assert t.scim.delete(f"/Users/{ben['id']}").status_code == 204
    deleted = t.events(cursor)
    assert [e["type"] for e in deleted] == ["membership.removed", "user.deleted"]
    assert deleted[0]["before"]["org_id"] == object_id and deleted[1]["before"]["user_name"] == "ben"

    # E-G7: DELETE the group: the org is detached (orphaned); re-assigning the group in Entra
    # (same objectId) links it back (on_existing_org_id = "link").
    assert t.scim.delete(f"/Groups/{support['id']}").status_code == 204
    assert t.orgs()[support_id]["orphaned"] is True
    assert t.user(ann["id"]) == {"role": "Viewer", "primaryOrgConflict": False}  # no org left
    again = entra_group(t, "Contoso Support", support_id)
    assert t.group_ext(again["id"]) == {"orgId": support_id, "orgName": "Contoso Support", "managed": True,
                                        "orphaned": False}
    assert t.types()[-1] == "org.linked"
    t.add_members(again["id"], ann["id"])
    assert t.user(ann["id"])["orgIds"] == [support_id]


def test_entra_keeps_the_org_id_when_external_id_changes(tenancy):
    t = tenancy("entra")
    object_id = guid()
    group = entra_group(t, "Finance", object_id)
    response = t.patch_group(group["id"], {"op": "Replace", "path": "externalId", "value": guid()},
                             query_string={"attributes": INF_GROUP})
    assert response.status_code == 200
    assert response.get_json()[INF_GROUP]["orgId"] == object_id  # on_org_id_change = "keep"
    assert "org.rekeyed" not in t.types()


def test_entra_department_changes_are_events(tenancy):
    t = tenancy("entra")
    user = entra_user(t, "dora", department="Retail")
    cursor = t.cursor()
    t.scim.patch(f"/Users/{user['id']}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Wholesale"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}]})
    (updated,) = t.events(cursor)
    assert updated["type"] == "user.updated"
    assert updated["before"] == {"department": "Retail", "last_name": "Family"}
    assert updated["after"] == {"department": "Wholesale", "last_name": "updatedFamilyName"}
    # A change to an attribute the profile does not map is not an Infinity event.
    cursor = t.cursor()
    t.scim.patch(f"/Users/{user['id']}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "Replace", "path": "locale", "value": "de-DE"}]})
    assert t.events(cursor) == []
