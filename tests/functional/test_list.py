"""Listing and searching: paging, sorting, projection, filters through HTTP, ``.search``."""

from __future__ import annotations

import pytest

LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


@pytest.fixture
def five_users(scim):
    return [scim.create_user(f"user{i}@example.com", displayName=f"User {i}", title=["b", "a", None, "c", "a"][i]
                             or None) for i in range(5)]


def test_empty_list_is_200(scim):
    body = scim.get('/Users?filter=userName eq "nobody"').get_json()
    assert body == {"schemas": [LIST], "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []}


@pytest.mark.parametrize(("query", "total", "start", "items"), [
    ("", 5, 1, 5),
    ("?count=2", 5, 1, 2),
    ("?startIndex=2&count=2", 5, 2, 2),
    ("?startIndex=5&count=10", 5, 5, 1),
    ("?startIndex=6", 5, 6, 0),
    ("?startIndex=0&count=2", 5, 1, 2),
    ("?startIndex=-4&count=2", 5, 1, 2),
    ("?count=0", 5, 1, 0),
    ("?count=-3", 5, 1, 0),
    ("?count=junk", 5, 1, 5),
    ("?startIndex=junk&count=1", 5, 1, 1),
    ("?count=100000", 5, 1, 5),
])
def test_paging(scim, five_users, query, total, start, items):
    body = scim.get(f"/Users{query}").get_json()
    assert (body["totalResults"], body["startIndex"], body["itemsPerPage"], len(body["Resources"])) == (
        total, start, items, items)
    assert all(isinstance(body[k], int) for k in ("totalResults", "startIndex", "itemsPerPage"))


def test_count_clamped_to_max_page_size(scim, settings):
    for i in range(settings.max_page_size + 3):
        scim.create_user(f"bulk{i}")
    body = scim.get("/Users?count=1000").get_json()
    assert body["itemsPerPage"] == settings.max_page_size
    assert body["totalResults"] == settings.max_page_size + 3


def test_paging_is_stable_and_complete(scim, five_users):
    seen = []
    for start in (1, 3, 5):
        seen += [r["id"] for r in scim.get(f"/Users?startIndex={start}&count=2").get_json()["Resources"]]
    assert sorted(seen) == sorted(u["id"] for u in five_users) and len(set(seen)) == 5


def test_sort_by_user_name_descending(scim, five_users):
    body = scim.get("/Users?sortBy=userName&sortOrder=descending").get_json()
    names = [r["userName"] for r in body["Resources"]]
    assert names == sorted(names, reverse=True)


def test_sort_nulls_last_ascending(scim, five_users):
    titles = [r.get("title") for r in scim.get("/Users?sortBy=title").get_json()["Resources"]]
    assert titles == ["a", "a", "b", "c", None]


def test_invalid_sort_order(scim):
    assert scim.get("/Users?sortOrder=sideways").status_code == 400


@pytest.mark.parametrize(("query", "present", "absent"), [
    ("attributes=userName", {"id", "userName", "schemas"}, {"displayName", "meta", "groups"}),
    ("attributes=name.givenName", {"id", "name"}, {"userName"}),
    ("excludedAttributes=displayName,meta", {"id", "userName"}, {"displayName", "meta"}),
    ("excludedAttributes=id", {"id"}, set()),
    ("attributes=userName&excludedAttributes=userName", {"userName"}, {"displayName"}),
    ("attributes=UNKNOWN", {"id"}, {"userName"}),
    ("excludedAttributes=groups", {"userName"}, {"groups"}),
])
def test_projection(scim, query, present, absent):
    user = scim.create_user("proj@example.com", displayName="Proj", name={"givenName": "P", "familyName": "Q"})
    for body in (scim.get(f"/Users/{user['id']}?{query}").get_json(),
                 scim.get(f"/Users?{query}").get_json()["Resources"][0]):
        assert present <= set(body), body
        assert not (absent & set(body)), body
    if query == "attributes=name.givenName":
        assert body["name"] == {"givenName": "P"}


def test_filter_through_http_with_plus_and_encoding(scim):
    scim.create_user("test.user@okta.local")
    for query in ("filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100",
                  'filter=userName+eq+"TEST.USER@okta.local"'):
        body = scim.get(f"/Users?{query}").get_json()
        assert body["totalResults"] == 1, query


@pytest.mark.parametrize("bad", ['userName eq', 'userName xx "a"', '(userName eq "a"', 'foo eq "a"',
                                 'emails[type eq "work"', 'userName eq "unterminated'])
def test_invalid_filter(scim, bad):
    response = scim.get("/Users", query_string={"filter": bad})
    assert response.status_code == 400
    body = response.get_json()
    assert body["scimType"] == "invalidFilter" and body["detail"]


def test_search_endpoint(scim, five_users):
    response = scim.post("/Users/.search", {"schemas": [SEARCH], "filter": 'title eq "a"', "sortBy": "userName",
                                            "attributes": ["userName"], "startIndex": 1, "count": 1})
    assert response.status_code == 200
    body = response.get_json()
    assert body["totalResults"] == 2 and body["itemsPerPage"] == 1
    assert set(body["Resources"][0]) == {"schemas", "id", "userName"}


def test_search_requires_search_schema(scim):
    response = scim.post("/Users/.search", {"schemas": ["urn:wrong"], "filter": 'userName pr'})
    assert response.status_code == 400


def test_root_search_spans_users_and_groups(scim):
    user = scim.create_user("root-search")
    group = scim.create_group("root-group")
    body = scim.post("/.search", {"schemas": [SEARCH]}).get_json()
    assert {r["id"] for r in body["Resources"]} == {user["id"], group["id"]}
    body = scim.post("/.search", {"schemas": [SEARCH], "filter": 'displayName eq "root-group"'}).get_json()
    assert [r["id"] for r in body["Resources"]] == [group["id"]]
    body = scim.post("/.search", {"schemas": [SEARCH], "filter": 'userName eq "root-search"'}).get_json()
    assert [r["id"] for r in body["Resources"]] == [user["id"]]
    body = scim.post("/.search", {"schemas": [SEARCH], "startIndex": 2, "count": 1}).get_json()
    assert body["totalResults"] == 2 and [r["id"] for r in body["Resources"]] == [group["id"]]
    assert scim.post("/.search", {"schemas": [SEARCH], "filter": 'nothing eq "x"'}).status_code == 400


def test_filter_on_meta_and_groups(scim):
    user = scim.create_user("meta-user")
    group = scim.create_group("meta-group", [user["id"]])
    body = scim.get("/Users", query_string={"filter": f'groups.value eq "{group["id"]}"'}).get_json()
    assert [r["id"] for r in body["Resources"]] == [user["id"]]
    body = scim.get("/Groups", query_string={"filter": f'members.value eq "{user["id"]}"'}).get_json()
    assert [r["id"] for r in body["Resources"]] == [group["id"]]
    body = scim.get("/Users", query_string={"filter": 'meta.lastModified gt "2000-01-01T00:00:00Z"'}).get_json()
    assert body["totalResults"] == 1
