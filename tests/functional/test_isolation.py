"""Tenant isolation: another tenant's resources are indistinguishable from missing ones."""

from __future__ import annotations

import pytest


@pytest.fixture
def theirs(other_scim):
    user = other_scim.create_user("shared-name@example.com", externalId="ext-shared")
    group = other_scim.create_group("Shared Group", [user["id"]], externalId="gext-shared")
    return user, group


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_tenants_resources_are_404(scim, theirs, method):
    user, group = theirs
    for path, body in ((f"/Users/{user['id']}", {"userName": "x"}), (f"/Groups/{group['id']}", {"displayName": "x"})):
        response = scim.request(method, path, body if method == "PUT" else None)
        assert response.status_code == 404, (method, path)


def test_never_in_lists_or_filters(scim, theirs):
    user, group = theirs
    assert scim.get("/Users").get_json()["totalResults"] == 0
    assert scim.get("/Groups").get_json()["totalResults"] == 0
    for path, flt in (("/Users", f'id eq "{user["id"]}"'), ("/Users", 'externalId eq "ext-shared"'),
                      ("/Users", 'userName eq "shared-name@example.com"'),
                      ("/Groups", f'members.value eq "{user["id"]}"'), ("/Groups", f'id eq "{group["id"]}"'),
                      ("/Groups", 'externalId eq "gext-shared"')):
        body = scim.get(path, query_string={"filter": flt}).get_json()
        assert body["totalResults"] == 0, flt
    body = scim.post("/.search", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}).get_json()
    assert body["totalResults"] == 0


def test_same_names_in_two_tenants(scim, theirs):
    mine = scim.create_user("shared-name@example.com", externalId="ext-shared")
    scim.create_group("Shared Group", [mine["id"]], externalId="gext-shared")
    assert scim.get("/Users").get_json()["totalResults"] == 1


def test_cannot_reference_foreign_members(scim, theirs):
    user, group = theirs
    for member in (user["id"], group["id"]):
        response = scim.post("/Groups", {"displayName": "sneaky", "members": [{"value": member}]})
        assert response.status_code == 400
