"""Reads in one statement: GET and list render a user exactly as the write path does.

GET /Users/{id} and list pages read the user row with its multi-valued attributes and groups as
JSON aggregates in one statement (``UserRepository.read``/``read_page``); responses to writes render
from mapped objects with one query per related table. Both must give the same resource, on both
databases, for every kind of value the aggregates carry (text with quotes and non-ASCII, booleans,
NULLs, integers, several groups in displayName order).
"""

from __future__ import annotations

import pytest

from tests.conftest import new_token

RICH = {
    "displayName": 'Zoë "Z" O\'Brien — 日本',
    "name": {"givenName": "Zoë", "familyName": "O'Brien", "formatted": "Zoë O'Brien"},
    "emails": [
        {"value": "zoe@example.com", "type": "work", "primary": True},
        {"value": "ZOE@home.example", "type": "home", "primary": False},
        {"value": "z@x.example", "display": "Zed \\ \"quoted\""},
    ],
    "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
    "addresses": [{"streetAddress": "1 Rue de l'Église\nApt 2", "locality": "Paris", "postalCode": "75001",
                   "country": "FR", "type": "work", "primary": True}],
    "roles": [{"value": "admin"}, {"value": "viewer", "primary": False}],
    "x509Certificates": [{"value": "MIIB" + "A" * 300}],
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "42", "department": "R&D"},
}


@pytest.fixture
def rich_user(scim):
    user = scim.create_user("zoë@example.com", **RICH)
    # Several groups whose display names sort differently by case and by creation order.
    for name in ("beta", "Alpha", "gamma", "alpha two"):
        scim.create_group(name, [user["id"]])
    return user


def test_get_equals_the_write_path_rendering(scim, rich_user):
    got = scim.get(f"/Users/{rich_user['id']}")
    assert got.status_code == 200
    # PUT answers with the resource rendered from the mapped object (the write path).
    body = {k: v for k, v in got.get_json().items() if k not in ("id", "meta", "groups")}
    put = scim.put(f"/Users/{rich_user['id']}", body, headers={"If-Match": got.headers["ETag"]})
    assert put.status_code == 200, put.get_json()
    again = scim.get(f"/Users/{rich_user['id']}").get_json()
    assert again == put.get_json()
    assert [g["display"] for g in again["groups"]] == ["Alpha", "alpha two", "beta", "gamma"]
    emails = again["emails"]
    assert [e.get("primary") for e in emails] == [True, False, None]
    assert emails[2]["display"] == 'Zed \\ "quoted"'
    assert again["addresses"][0]["streetAddress"] == "1 Rue de l'Église\nApt 2"
    assert again["displayName"] == RICH["displayName"]


def test_list_page_equals_single_reads(scim, rich_user):
    plain = scim.create_user("plain@example.com")
    page = scim.get("/Users?count=10").get_json()["Resources"]
    assert len(page) == 2
    for resource in page:
        assert resource == scim.get(f"/Users/{resource['id']}").get_json()
    by_id = {r["id"]: r for r in page}
    assert "emails" not in by_id[plain["id"]] and by_id[plain["id"]].get("groups", []) == []


@pytest.mark.parametrize(("query", "present", "absent"), [
    ("attributes=emails", {"id", "emails"}, {"groups", "phoneNumbers", "userName"}),
    ("attributes=groups.display", {"id", "groups"}, {"emails"}),
    ("excludedAttributes=groups,emails", {"userName", "phoneNumbers"}, {"groups", "emails"}),
    ("attributes=userName", {"id", "userName"}, {"groups", "emails"}),
])
def test_projection_reads_only_what_it_needs_and_renders_the_same(scim, rich_user, query, present, absent):
    one = scim.get(f"/Users/{rich_user['id']}?{query}").get_json()
    assert present <= set(one) and not (absent & set(one))
    listed = scim.get(f'/Users?filter=id eq "{rich_user["id"]}"&{query}').get_json()["Resources"]
    assert listed == [one]
    if "groups" in one:
        assert [set(g) for g in one["groups"]][0] <= {"value", "$ref", "display", "type"}


def test_other_tenants_groups_never_show(scim, client, storage, rich_user):
    from tests.conftest import ScimClient
    from tests.conftest import new_tenant

    other = ScimClient(client, new_token(storage, new_tenant(storage)))
    stranger = other.create_user("stranger@example.com")
    other.create_group("theirs", [stranger["id"]])
    groups = scim.get(f"/Users/{rich_user['id']}").get_json()["groups"]
    assert "theirs" not in [g["display"] for g in groups]
    assert other.get(f"/Users/{rich_user['id']}").status_code == 404
