"""``/Users`` through HTTP, on every backend: create, read, replace, delete, uniqueness, errors."""

from __future__ import annotations

import pytest

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"

FULL_USER = {
    "schemas": [USER, ENTERPRISE],
    "userName": "bjensen@example.com",
    "externalId": "701984",
    "name": {"formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen", "givenName": "Barbara",
             "middleName": "Jane", "honorificPrefix": "Ms.", "honorificSuffix": "III"},
    "displayName": "Babs Jensen",
    "nickName": "Babs",
    "profileUrl": "https://login.example.com/bjensen",
    "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True},
               {"value": "babs@jensen.org", "type": "home"}],
    "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood",
                   "region": "CA", "postalCode": "91608", "country": "USA",
                   "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA", "primary": True}],
    "phoneNumbers": [{"value": "555-555-5555", "type": "work"}, {"value": "555-555-4444", "type": "mobile"}],
    "ims": [{"value": "someaimhandle", "type": "aim"}],
    "photos": [{"value": "https://photos.example.com/profilephoto/72930000000Ccne/F", "type": "photo"}],
    "userType": "Employee",
    "title": "Tour Guide",
    "preferredLanguage": "en-US",
    "locale": "en-US",
    "timezone": "America/Los_Angeles",
    "active": True,
    "password": "t1meMa$heen",
    "entitlements": [{"value": "reports:read"}],
    "roles": [{"value": "analyst", "primary": True}],
    "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx"}],
    ENTERPRISE: {"employeeNumber": "701984", "costCenter": "4130", "organization": "Universal Studios",
                 "division": "Theme Park", "department": "Tour Operations",
                 "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}},
}


def test_create_returns_full_resource_with_location_and_etag(scim):
    response = scim.post("/Users", FULL_USER)
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == body["meta"]["location"]
    assert response.headers["ETag"] == body["meta"]["version"] == 'W/"1"'
    assert response.mimetype == "application/scim+json"
    assert body["meta"]["resourceType"] == "User"
    assert body["meta"]["location"].endswith(f"/scim/v2/Users/{body['id']}")
    for key in ("userName", "externalId", "name", "displayName", "nickName", "profileUrl", "emails", "addresses",
                "phoneNumbers", "ims", "photos", "userType", "title", "preferredLanguage", "locale", "timezone",
                "active", "entitlements", "roles", "x509Certificates"):
        assert body[key] == FULL_USER[key], key
    assert body[ENTERPRISE]["department"] == "Tour Operations"
    assert body[ENTERPRISE]["manager"]["value"] == "26118915-6090-4610-87e4-49d8ca9f808d"
    assert ENTERPRISE in body["schemas"]
    assert "password" not in body
    assert body["groups"] == []
    fetched = scim.get(f"/Users/{body['id']}").get_json()
    assert fetched == body


def test_password_is_stored_hashed(scim, db_session):
    from sqlalchemy import select

    from scim_bridge.storage.models import User

    created = scim.create_user("pw@example.com", password="s3cret-Pass")
    stored = db_session.scalars(select(User.password_hash).where(User.user_name == "pw@example.com")).all()
    assert len(stored) == 1 and stored[0].startswith("scrypt$") and "s3cret-Pass" not in stored[0]
    assert "password" not in scim.get(f"/Users/{created['id']}").get_json()


def test_only_a_create_answers_with_a_location(scim):
    """RFC 7644 §3.3: Location on 201; GET, PUT and PATCH answer with the resource and its ETag only."""
    created = scim.post("/Users", {"schemas": [USER], "userName": "located@example.com"})
    user_id = created.get_json()["id"]
    answers = {
        "GET": scim.get(f"/Users/{user_id}"),
        "PUT": scim.put(f"/Users/{user_id}", {"schemas": [USER], "userName": "located@example.com",
                                              "displayName": "Located"}),
        "PATCH": scim.patch(f"/Users/{user_id}", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                                  "Operations": [{"op": "replace", "path": "active",
                                                                  "value": False}]}),
    }
    for method, response in answers.items():
        assert response.status_code == 200, method
        assert "Location" not in response.headers, method
        assert response.headers["ETag"] == response.get_json()["meta"]["version"], method
        assert response.headers["Content-Type"] == "application/scim+json; charset=utf-8", method
    assert created.headers["Content-Type"] == "application/scim+json; charset=utf-8"


@pytest.mark.parametrize("content_type", ["application/scim+json", "application/json",
                                          "application/scim+json; charset=utf-8", None])
def test_accepted_content_types(scim, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    import json

    response = scim.client.post("/scim/v2/Users", data=json.dumps({"userName": f"ct-{content_type}"}),
                                headers={"Authorization": f"Bearer {scim.token}", **headers})
    assert response.status_code == 201, response.get_json()


def test_unsupported_content_type(scim):
    response = scim.post("/Users", "userName=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    assert response.get_json()["schemas"] == [ERROR]


def test_okta_create_with_read_only_and_password(scim):
    body = {"schemas": [USER], "userName": "test.user@okta.local", "name": {"givenName": "Test", "familyName": "User"},
            "emails": [{"primary": True, "value": "test.user@okta.local", "type": "work"}],
            "displayName": "Test User", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7", "groups": [],
            "password": "1mz050nq", "active": True}
    response = scim.post("/Users", body)
    assert response.status_code == 201
    created = response.get_json()
    assert created["externalId"] == "00ujl29u0le5T6Aj10h7" and created["active"] is True


def test_boolean_strings_are_coerced(scim):
    created = scim.create_user("entra@example.com", active="False",
                               emails=[{"value": "entra@example.com", "primary": "true", "type": "work"}])
    assert created["active"] is False
    assert created["emails"][0]["primary"] is True


@pytest.mark.parametrize(("first", "second"), [("Alice@Example.com", "alice@example.com"), ("bob", "BOB")])
def test_user_name_unique_case_insensitively(scim, first, second):
    scim.create_user(first)
    response = scim.post("/Users", {"schemas": [USER], "userName": second})
    assert response.status_code == 409
    body = response.get_json()
    assert body == {"schemas": [ERROR], "status": "409", "scimType": "uniqueness", "detail": body["detail"]}


def test_external_id_unique_per_tenant_and_type(scim, other_scim):
    scim.create_user("a1", externalId="ext-1")
    assert scim.post("/Users", {"userName": "a2", "externalId": "ext-1"}).status_code == 409
    # same externalId in another tenant or on a Group is fine
    other_scim.create_user("a1", externalId="ext-1")
    scim.create_group("g-ext", externalId="ext-1")


@pytest.mark.parametrize(("body", "scim_type"), [
    ({"schemas": [USER]}, "invalidValue"),
    ({"userName": 5}, "invalidValue"),
    ({"userName": "x", "active": "maybe"}, "invalidValue"),
    ({"userName": "x", "emails": "nope"}, "invalidValue"),
    ({"userName": "x", "name": "Barbara"}, "invalidValue"),
    ({"userName": "x", "favouriteColour": "blue"}, "invalidSyntax"),
    ([1, 2], "invalidSyntax"),
])
def test_invalid_bodies(scim, body, scim_type):
    response = scim.post("/Users", body)
    assert response.status_code == 400
    payload = response.get_json()
    assert payload["status"] == "400" and payload["scimType"] == scim_type and payload["detail"]


def test_malformed_json(scim):
    response = scim.post("/Users", "{not json", headers={"Content-Type": "application/scim+json"})
    assert response.status_code == 400
    assert response.get_json()["scimType"] == "invalidSyntax"


def test_unknown_attributes_ignored_when_tenant_says_so(client, storage):
    from tests.conftest import ScimClient
    from tests.conftest import new_tenant
    from tests.conftest import new_token

    lenient = ScimClient(client, new_token(storage, new_tenant(storage, ignore_unknown_attributes=True)))
    created = lenient.create_user("lenient", favouriteColour="blue")
    assert "favouriteColour" not in created


def test_unknown_extension_schema_is_ignored(scim):
    created = scim.create_user("ext@example.com", **{
        "urn:ietf:params:scim:schemas:extension:Microsoft:Entra:2.0:User": {"x": 1}})
    assert "urn:ietf:params:scim:schemas:extension:Microsoft:Entra:2.0:User" not in created


def test_put_replaces_and_keeps_read_only(scim):
    created = scim.post("/Users", FULL_USER).get_json()
    replacement = {"schemas": [USER], "id": "ignored", "userName": "bjensen@example.com",
                   "name": {"givenName": "Another", "middleName": "Excited", "familyName": "User"},
                   "emails": [{"primary": True, "value": "bjensen@example.com", "type": "work"}],
                   "active": True, "groups": [], "meta": {"resourceType": "User"}}
    response = scim.put(f"/Users/{created['id']}", replacement)
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == created["id"]
    assert body["name"] == replacement["name"]
    assert "nickName" not in body and "addresses" not in body and ENTERPRISE not in body
    assert body["meta"]["created"] == created["meta"]["created"]
    assert body["meta"]["version"] == 'W/"2"' and response.headers["ETag"] == 'W/"2"'


def test_put_conflicting_user_name(scim):
    scim.create_user("taken")
    mine = scim.create_user("mine")
    response = scim.put(f"/Users/{mine['id']}", {"userName": "TAKEN"})
    assert response.status_code == 409


def test_put_same_user_name_different_case_is_allowed(scim):
    mine = scim.create_user("Case@Example.com")
    response = scim.put(f"/Users/{mine['id']}", {"userName": "case@example.com"})
    assert response.status_code == 200 and response.get_json()["userName"] == "case@example.com"


def test_delete_then_404(scim):
    created = scim.create_user("gone")
    assert scim.delete(f"/Users/{created['id']}").status_code == 204
    for response in (scim.get(f"/Users/{created['id']}"), scim.delete(f"/Users/{created['id']}")):
        assert response.status_code == 404
        assert response.get_json()["status"] == "404"


def test_delete_removes_user_from_groups(scim):
    alice, bob = scim.create_user("alice"), scim.create_user("bob")
    group = scim.create_group("team", [alice["id"], bob["id"]])
    scim.delete(f"/Users/{alice['id']}")
    members = scim.get(f"/Groups/{group['id']}").get_json()["members"]
    assert [m["value"] for m in members] == [bob["id"]]


@pytest.mark.parametrize("user_id", ["does-not-exist", "00000000-0000-0000-0000-000000000000", "%00"])
def test_unknown_ids_are_404(scim, user_id):
    for method in ("GET", "PUT", "DELETE"):
        body = {"userName": "x"} if method == "PUT" else None
        response = scim.request(method, f"/Users/{user_id}", body)
        assert response.status_code == 404, method


def test_groups_attribute_is_computed(scim):
    user = scim.create_user("member")
    group = scim.create_group("Readers", [user["id"]])
    body = scim.get(f"/Users/{user['id']}").get_json()
    assert body["groups"] == [{"value": group["id"], "$ref": f"http://localhost/scim/v2/Groups/{group['id']}",
                               "display": "Readers", "type": "direct"}]


def test_etag_if_none_match_and_if_match(scim):
    user = scim.create_user("etag")
    path = f"/Users/{user['id']}"
    assert scim.get(path, headers={"If-None-Match": 'W/"1"'}).status_code == 304
    assert scim.get(path, headers={"If-None-Match": 'W/"7"'}).status_code == 200
    stale = scim.put(path, {"userName": "etag"}, headers={"If-Match": 'W/"7"'})
    assert stale.status_code == 412 and stale.get_json()["scimType"] == "preconditionFailed"
    assert scim.put(path, {"userName": "etag"}, headers={"If-Match": 'W/"1"'}).status_code == 200
    assert scim.delete(path, headers={"If-Match": 'W/"1"'}).status_code == 412
    assert scim.delete(path, headers={"If-Match": 'W/"2"'}).status_code == 204


def test_attribute_projection_on_write_responses(scim):
    response = scim.post("/Users?attributes=userName", {"userName": "proj", "displayName": "P"})
    assert response.status_code == 201
    assert set(response.get_json()) == {"schemas", "id", "userName"}


def test_deactivated_user_stays_readable(scim):
    user = scim.create_user("inactive", active=False)
    listed = scim.get('/Users?filter=userName eq "inactive"').get_json()
    assert listed["totalResults"] == 1 and listed["Resources"][0]["active"] is False
    assert scim.get(f"/Users/{user['id']}").status_code == 200


def test_manager_display_name_is_resolved(scim):
    boss = scim.create_user("boss@example.com", displayName="The Boss")
    report = scim.create_user("report@example.com", **{ENTERPRISE: {"manager": {"value": boss["id"],
                                                                             "displayName": "ignored"}}})
    assert report[ENTERPRISE]["manager"] == {"value": boss["id"]}  # returned: request
    requested = scim.get(f"/Users/{report['id']}?attributes={ENTERPRISE}:manager").get_json()
    assert requested[ENTERPRISE]["manager"] == {"value": boss["id"], "displayName": "The Boss"}
    dangling = scim.create_user("dangling@example.com", **{ENTERPRISE: {"manager": {"value": "random-string"}}})
    requested = scim.get(f"/Users/{dangling['id']}?attributes={ENTERPRISE}:manager").get_json()
    assert requested[ENTERPRISE]["manager"] == {"value": "random-string"}
