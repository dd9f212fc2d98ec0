"""Okta's provisioning traffic replayed through HTTP (idp-behavior.md §1), on every backend.

Bodies are verbatim from the reference (OKTA-REF / OKTA-SPEC); the document's ids are swapped for
the ids this server assigned (:func:`replay.bind`). Each test asserts what Okta relies on.

Quirks of idp-behavior.md §4 covered here (the rest are in ``test_idp_entra.py``):

====  ========================================================================================
Q1    lower-case ``op`` everywhere below (Okta)
Q3    ``test_o_u5_u6_deactivate_and_reactivate`` (path-less ``{"active": …}``),
      ``test_o_g4_rename_with_read_only_id`` (path-less value with the read-only ``id``)
Q7    ``test_o_g6_replace_sets_exact_membership``
Q8    ``test_o_g5_remove_by_filter_and_add_in_one_request``
Q9    ``test_o_g5_…`` (``value`` + ``display``, no ``type``/``$ref``)
Q11   ``test_o_u2_create`` (``password``, ``groups: []``), ``test_o_u4_put_read_modify_write``
      (``id``, ``meta``, ``groups``)
Q12   ``test_o_u2_duplicate_is_409`` (userName uniqueness ignores case)
Q13   ``test_o_u1_lookup_before_create`` (``%20``/``%22``/``%40``)
Q14   ``test_o_u1_…``, ``test_import_pages_users`` / ``test_o_g2_import_pages_groups``
Q16   ``test_deactivated_user_keeps_memberships``
Q17   ``test_o_u2_duplicate_is_409``, ``test_spec_errors``
Q18   ``test_spec_errors`` (``Authorization: non-token``)
Q19   ``test_o_u2_duplicate_is_409``, ``test_o_g1_push_group`` (duplicate group)
Q20   ``test_o_u5_…`` (200 and, with ``Prefer: return=minimal``, 204); group PATCH answers 204 by
      default (:func:`patched_group`)
Q21   ``test_o_g7_delete_group``
Q27   ``test_o_g4_rename_with_read_only_id`` (a repeated rename changes nothing, not even the version)
====  ========================================================================================
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from scim_bridge.storage.models import User
from tests.conftest import ScimClient
from tests.functional.replay import ERROR
from tests.functional.replay import GROUP
from tests.functional.replay import USER
from tests.functional.replay import assert_error
from tests.functional.replay import assert_list_response
from tests.functional.replay import bind
from tests.functional.replay import member_ids
from tests.functional.replay import patch_body
from tests.functional.replay import version_number

DOC_USER_ID = "23a35c27-23d3-4c03-b4c5-6443c09e7173"
DOC_OTHER_ID = "89bb1940-b905-4575-9e7f-6f887cfb368e"
DOC_GROUP_ID = "abf4dd94-a4c0-4f67-89c9-76b03340cb9b"

# §1.0: the headers the Okta clients send (OKTA-REF and the Runscope SPEC suite).
OKTA_HEADERS = {"User-Agent": "Okta SCIM Client 1.0.0", "Accept": "application/scim+json",
                "Content-Type": "application/scim+json; charset=utf-8", "Accept-Charset": "utf-8"}
OKTA_POST_HEADERS = {**OKTA_HEADERS, "Content-Type": "application/json",
                     "Accept": "application/scim+json; charset=utf-8"}

# O-U1 (verbatim query string, %-encoded as Okta sends it).
O_U1 = "/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100"

O_U2 = """{
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "test.user@okta.local",
    "name": {"givenName": "Test", "familyName": "User"},
    "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
    "displayName": "Test User",
    "locale": "en-US",
    "externalId": "00ujl29u0le5T6Aj10h7",
    "groups": [],
    "password": "1mz050nq",
    "active": true
}"""

O_U4 = """{
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "id": "23a35c27-23d3-4c03-b4c5-6443c09e7173",
    "userName": "test.user@okta.local",
    "name": {"givenName": "Another", "middleName": "Excited", "familyName": "User"},
    "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work", "display": "test.user@okta.local"}],
    "active": true,
    "groups": [],
    "meta": {"resourceType": "User"}
}"""

O_U5 = """{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "value": {"active": false}}]
}"""

O_U6 = """{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "value": {"active": true}}]
}"""

O_U7 = """{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "value": {"password": "n3w-Secret"}}]
}"""

O_G1 = """{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Test SCIMv2","members":[]}"""

O_G4 = """{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "value": {"id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b",
                                               "displayName": "Test SCIMv2"}}]
}"""

O_G5 = """{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [
        {"op": "remove", "path": "members[value eq \\"89bb1940-b905-4575-9e7f-6f887cfb368e\\"]"},
        {"op": "add", "path": "members",
         "value": [{"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"}]}
    ]
}"""

O_G6 = """{
  "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  "Operations": [{
      "op": "replace", "path": "members",
      "value": [
        {"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"},
        {"value": "89bb1940-b905-4575-9e7f-6f887cfb368e", "display": "test.user@okta.local"}
      ]}]
}"""


class Okta:
    """Send requests the way Okta does (its headers; POST with ``application/json``)."""

    def __init__(self, scim: ScimClient) -> None:
        self.scim = scim

    def get(self, path: str) -> Any:
        """GET with Okta's headers."""
        return self.scim.get(path, headers=OKTA_HEADERS)

    def post(self, path: str, body: Any) -> Any:
        """POST with Okta's POST headers."""
        return self.scim.post(path, body, headers=OKTA_POST_HEADERS)

    def put(self, path: str, body: Any) -> Any:
        """PUT with Okta's headers."""
        return self.scim.put(path, body, headers=OKTA_HEADERS)

    def patch(self, path: str, body: Any, **headers: str) -> Any:
        """PATCH with Okta's headers (plus *headers*)."""
        return self.scim.patch(path, body, headers={**OKTA_HEADERS, **headers})

    def delete(self, path: str) -> Any:
        """DELETE with Okta's headers."""
        return self.scim.delete(path, headers=OKTA_HEADERS)


@pytest.fixture
def okta(scim: ScimClient) -> Okta:
    """Return a client that speaks like Okta, for a fresh tenant."""
    return Okta(scim)


def create_okta_user(okta: Okta, user_name: str = "test.user@okta.local", external_id: str | None = None) -> str:
    """POST the O-U2 body (for *user_name*) and return the new id."""
    body = bind(O_U2)
    body["userName"] = body["emails"][0]["value"] = user_name
    body["externalId"] = external_id or f"00u-{user_name}"
    response = okta.post("/Users", body)
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def patched_group(okta: Okta, group_id: str, response: Any) -> dict[str, Any]:
    """Check a group PATCH's answer and return the group read back through GET.

    Okta sends no ``Prefer`` header, so a group PATCH answers 204 with the ETag and no body
    (O-G4 to O-G6 accept 200 with the group or 204); what Okta would read from a 200 is read
    back with GET, and the ETag must be the version the PATCH produced.
    """
    assert response.status_code == 204, response.get_data(as_text=True)
    assert response.get_data() == b"" and response.headers.get("ETag")
    fetched = okta.get(f"/Groups/{group_id}")
    assert fetched.status_code == 200, fetched.get_json()
    body = dict(fetched.get_json())
    assert response.headers["ETag"] == body["meta"]["version"]
    return body


# --- §1.1 user assignment → create ---------------------------------------------------------------


def test_o_u1_lookup_before_create(okta):
    """O-U1: the lookup of a user that does not exist is a 200 empty ListResponse (Q13, Q14)."""
    response = okta.get(O_U1)
    assert response.get_json() == {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                                   "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []}
    created = okta.post("/Users", bind(O_U2)).get_json()
    # After the create, the same lookup links to the user instead of creating it again.
    (found,) = assert_list_response(okta.get(O_U1), 1)
    assert found["id"] == created["id"] and found["userName"] == "test.user@okta.local"


def test_o_u2_create(okta):
    """O-U2: 201 with the fields Okta keeps; ``password`` and ``groups: []`` are accepted (Q11)."""
    response = okta.post("/Users", bind(O_U2))
    assert response.status_code == 201
    body = response.get_json()
    assert body, "Okta: 'Create new user returned empty user'"
    sent = bind(O_U2)
    assert body["schemas"][0] == USER and body["id"]
    for key in ("userName", "name", "emails", "displayName", "locale", "externalId", "active"):
        assert body[key] == sent[key], key
    assert body["active"] is True and body["groups"] == []
    assert body["meta"]["resourceType"] == "User"
    assert "password" not in body
    assert response.headers["Location"] == body["meta"]["location"]


def test_o_u2_duplicate_is_409(okta):
    """A second O-U2 (same userName, any case) is a 409 with the Error schema (Q12, Q17, Q19)."""
    okta.post("/Users", bind(O_U2))
    assert_error(okta.post("/Users", bind(O_U2)), 409, "uniqueness")
    shouted = bind(O_U2)
    shouted["userName"] = "TEST.USER@OKTA.LOCAL"
    shouted["externalId"] = "another-okta-id"
    assert_error(okta.post("/Users", shouted), 409, "uniqueness")


def test_spec_errors(okta, client):
    """OKTA-SPEC: 404 for an unknown id and 401 for a bogus credential, as Error bodies (Q17, Q18)."""
    body = assert_error(okta.get("/Users/010101010101010101010101"), 404)
    assert body["status"] == "404"
    response = client.get("/scim/v2/Users", headers={**OKTA_HEADERS, "Authorization": "non-token"})
    assert response.status_code == 401
    assert response.get_json()["schemas"] == [ERROR] and response.get_json()["status"] == "401"


# --- §1.2 updates, deactivate / reactivate ------------------------------------------------------


def test_o_u3_get_returns_full_user(okta):
    """O-U3: GET by id returns the full user Okta read-modify-writes from."""
    user_id = create_okta_user(okta)
    response = okta.get(f"/Users/{user_id}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == user_id and body["name"] == {"givenName": "Test", "familyName": "User"}
    assert body["emails"] == [{"primary": True, "value": "test.user@okta.local", "type": "work"}]
    assert response.headers["ETag"] == body["meta"]["version"] == 'W/"1"'


def test_o_u4_put_read_modify_write(okta):
    """O-U4: the whole GET body, modified, comes back as a PUT with read-only ``id``/``meta``/``groups``."""
    user_id = create_okta_user(okta)
    response = okta.put(f"/Users/{user_id}", bind(O_U4, {DOC_USER_ID: user_id}))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["id"] == user_id
    assert body["name"] == {"givenName": "Another", "middleName": "Excited", "familyName": "User"}
    assert body["emails"] == [{"primary": True, "value": "test.user@okta.local", "type": "work",
                               "display": "test.user@okta.local"}]
    assert body["active"] is True and body["meta"]["version"] == 'W/"2"'
    assert okta.get(f"/Users/{user_id}").get_json() == body


def test_o_u4_put_deactivates_aiw_app(okta):
    """AIW apps deactivate through PUT: the same body with ``active: false``; the user stays readable."""
    user_id = create_okta_user(okta)
    body = bind(O_U4, {DOC_USER_ID: user_id})
    body["active"] = False
    assert okta.put(f"/Users/{user_id}", body).get_json()["active"] is False
    assert okta.get(f"/Users/{user_id}").get_json()["active"] is False


@pytest.mark.parametrize("minimal", [False, True], ids=["200", "204"])
def test_o_u5_u6_deactivate_and_reactivate(okta, minimal):
    """O-U5/O-U6: path-less replace of ``active`` (Q3); 200 + user, or 204 when asked (Q20); never deleted."""
    user_id = create_okta_user(okta)
    headers = {"Prefer": "return=minimal"} if minimal else {}
    response = okta.patch(f"/Users/{user_id}", bind(O_U5), **headers)
    if minimal:
        assert response.status_code == 204 and response.get_data() == b""
        assert response.headers["ETag"] == 'W/"2"'
    else:
        assert response.status_code == 200 and response.get_json()["active"] is False
    fetched = okta.get(f"/Users/{user_id}")  # OKTA-CRUD: still readable after unassignment
    assert fetched.status_code == 200 and fetched.get_json()["active"] is False
    # ... and still found by the O-U1 lookup, so re-assignment links instead of creating (Q16).
    (found,) = assert_list_response(okta.get(O_U1), 1)
    assert found["id"] == user_id and found["active"] is False
    response = okta.patch(f"/Users/{user_id}", bind(O_U6), **headers)
    assert response.status_code == (204 if minimal else 200)
    body = okta.get(f"/Users/{user_id}").get_json()
    assert body["active"] is True and body["meta"]["version"] == 'W/"3"'
    assert body["name"] == {"givenName": "Test", "familyName": "User"}  # nothing else touched


def test_o_u7_password_sync(okta, db_session):
    """O-U7: a path-less password replace is stored hashed and never returned."""
    user_id = create_okta_user(okta)

    def stored_hash() -> str:
        db_session.rollback()  # a fresh snapshot: SQLite (WAL) keeps the old one inside a transaction
        return str(db_session.scalars(select(User.password_hash).where(User.id == uuid.UUID(user_id))).one())

    before = stored_hash()
    response = okta.patch(f"/Users/{user_id}", bind(O_U7))
    assert response.status_code == 200 and "password" not in response.get_json()
    after = stored_hash()
    assert after != before and "n3w-Secret" not in after
    assert response.get_json()["meta"]["version"] == 'W/"2"'


def test_import_pages_users(okta):
    """Import: ``startIndex``/``count`` pages with integer fields, stable order, until ``totalResults`` (Q14)."""
    ids = {create_okta_user(okta, f"import{i}@okta.local") for i in range(5)}
    seen: list[str] = []
    start = 1
    while True:
        response = okta.get(f"/Users?startIndex={start}&count=2")
        page = assert_list_response(response, 5)
        assert response.get_json()["startIndex"] == start
        seen += [r["id"] for r in page]
        if len(seen) >= response.get_json()["totalResults"] or not page:
            break
        start += len(page)
    assert len(seen) == 5 and set(seen) == ids
    assert [r["id"] for r in assert_list_response(okta.get("/Users?startIndex=1&count=100"), 5)] == seen


# --- §1.3 groups ("Push Groups") -------------------------------------------------------------------


def test_o_g1_push_group(okta):
    """O-G1: 201 and the documented Group body; a second push of the same name is 409 (Q19)."""
    response = okta.post("/Groups", bind(O_G1))
    assert response.status_code == 201
    body = response.get_json()
    assert body["schemas"][0] == GROUP and body["id"] and body["displayName"] == "Test SCIMv2"
    assert body["members"] == [] and body["meta"]["resourceType"] == "Group"
    assert "externalId" not in body
    assert_error(okta.post("/Groups", bind(O_G1)), 409, "uniqueness")


def test_o_g2_import_pages_groups(okta):
    """O-G2: groups import like users."""
    ids = {okta.post("/Groups", {"schemas": [GROUP], "displayName": f"g{i}"}).get_json()["id"] for i in range(3)}
    page = assert_list_response(okta.get("/Groups?startIndex=1&count=100"), 3)
    assert {g["id"] for g in page} == ids
    second = assert_list_response(okta.get("/Groups?startIndex=2&count=1"), 3)
    assert second[0]["id"] == page[1]["id"]


def test_okta_group_lifecycle(okta):
    """O-G1 → O-G3 → (O-G4 + O-G5) → (O-G4 + O-G6) → O-G7, membership checked after every step."""
    first = create_okta_user(okta, "test.user@okta.local")
    second = create_okta_user(okta, "other.user@okta.local")
    ids = {DOC_USER_ID: first, DOC_OTHER_ID: second}
    group_id = okta.post("/Groups", bind(O_G1)).get_json()["id"]
    ids[DOC_GROUP_ID] = group_id
    path = f"/Groups/{group_id}"

    # O-G3: "does it still exist?"
    assert okta.get(path).status_code == 200

    # Okta renames (O-G4) before every membership update, then removes-and-adds (O-G5).
    patched_group(okta, group_id, okta.patch(path, bind(O_G4, ids)))
    okta.patch(path, patch_body({"op": "add", "path": "members", "value": [{"value": second}]}))
    assert member_ids(okta.scim, group_id) == {second}
    patched_group(okta, group_id, okta.patch(path, bind(O_G4, ids)))
    assert patched_group(okta, group_id, okta.patch(path, bind(O_G5, ids)))["displayName"] == "Test SCIMv2"
    assert member_ids(okta.scim, group_id) == {first}

    # Full push (O-G6) replaces all members.
    patched_group(okta, group_id, okta.patch(path, bind(O_G4, ids)))
    patched_group(okta, group_id, okta.patch(path, bind(O_G6, ids)))
    assert member_ids(okta.scim, group_id) == {first, second}
    got = okta.get(path).get_json()
    assert {m["value"]: m.get("display") for m in got["members"]} == {
        first: "test.user@okta.local", second: "test.user@okta.local"}

    # O-G7: delete; then it is gone for good (Q21).
    assert okta.delete(path).status_code == 204
    assert_error(okta.get(path), 404)
    # The users themselves are untouched.
    assert okta.get(f"/Users/{first}").get_json()["groups"] == []


def test_o_g3_get_group_with_members(okta):
    """O-G3: the group with ``members`` of ``value``/``display``."""
    user_id = create_okta_user(okta)
    group = okta.post("/Groups", {"schemas": [GROUP], "displayName": "Test SCIMv2",
                                  "members": [{"value": user_id, "display": "test.user@okta.local"}]}).get_json()
    response = okta.get(f"/Groups/{group['id']}")
    assert response.status_code == 200
    (member,) = response.get_json()["members"]
    assert member["value"] == user_id and member["display"] == "test.user@okta.local"


def test_o_g4_rename_with_read_only_id(okta):
    """O-G4: the path-less value carries the read-only ``id`` (Q3); a repeated rename is a no-op (Q27)."""
    group_id = okta.post("/Groups", {"schemas": [GROUP], "displayName": "Old name"}).get_json()["id"]
    path = f"/Groups/{group_id}"
    body = patched_group(okta, group_id, okta.patch(path, bind(O_G4, {DOC_GROUP_ID: group_id})))
    assert body["id"] == group_id and body["displayName"] == "Test SCIMv2" and body["meta"]["version"] == 'W/"2"'
    for _ in range(3):  # Okta sends it again before each membership update
        again = patched_group(okta, group_id, okta.patch(path, bind(O_G4, {DOC_GROUP_ID: group_id})))
        assert again["meta"]["version"] == 'W/"2"'
    # A rename to the same name in another case is a change, not a conflict with itself.
    renamed = patched_group(okta, group_id, okta.patch(path, bind(O_G4.replace("Test SCIMv2", "TEST scimv2"),
                                                                  {DOC_GROUP_ID: group_id})))
    assert renamed["displayName"] == "TEST scimv2" and renamed["meta"]["version"] == 'W/"3"'


def test_o_g5_remove_by_filter_and_add_in_one_request(okta):
    """O-G5: the remove-by-filter and the add apply in order, in one transaction (Q8, Q9)."""
    first = create_okta_user(okta, "test.user@okta.local")
    second = create_okta_user(okta, "other.user@okta.local")
    third = create_okta_user(okta, "third.user@okta.local")
    group_id = okta.post("/Groups", {"schemas": [GROUP], "displayName": "Test SCIMv2",
                                     "members": [{"value": second}, {"value": third}]}).get_json()["id"]
    before = version_number(okta.get(f"/Groups/{group_id}").get_json()["meta"]["version"])
    response = okta.patch(f"/Groups/{group_id}", bind(O_G5, {DOC_USER_ID: first, DOC_OTHER_ID: second}))
    body = patched_group(okta, group_id, response)
    assert body["displayName"] == "Test SCIMv2"
    assert member_ids(okta.scim, group_id) == {first, third}
    assert version_number(body["meta"]["version"]) == before + 1  # one request, one version
    # Replaying the same request changes nothing: the member is already gone and already added.
    again = okta.patch(f"/Groups/{group_id}", bind(O_G5, {DOC_USER_ID: first, DOC_OTHER_ID: second}))
    assert version_number(patched_group(okta, group_id, again)["meta"]["version"]) == before + 1
    assert member_ids(okta.scim, group_id) == {first, third}


def test_o_g5_with_minimal_response(okta):
    """O-G5 with ``Prefer: return=minimal`` answers 204 and still applies (Q20)."""
    first = create_okta_user(okta, "test.user@okta.local")
    second = create_okta_user(okta, "other.user@okta.local")
    group_id = okta.post("/Groups", {"schemas": [GROUP], "displayName": "Test SCIMv2",
                                     "members": [{"value": second}]}).get_json()["id"]
    response = okta.patch(f"/Groups/{group_id}", bind(O_G5, {DOC_USER_ID: first, DOC_OTHER_ID: second}),
                          Prefer="return=minimal")
    assert response.status_code == 204 and response.get_data() == b""
    assert member_ids(okta.scim, group_id) == {first}


def test_o_g6_replace_sets_exact_membership(okta):
    """O-G6: ``replace`` on ``members`` makes the membership exactly the list (Q7)."""
    first = create_okta_user(okta, "test.user@okta.local")
    second = create_okta_user(okta, "other.user@okta.local")
    stale = create_okta_user(okta, "stale.user@okta.local")
    group_id = okta.post("/Groups", {"schemas": [GROUP], "displayName": "Test SCIMv2",
                                     "members": [{"value": stale}, {"value": first}]}).get_json()["id"]
    response = okta.patch(f"/Groups/{group_id}", bind(O_G6, {DOC_USER_ID: first, DOC_OTHER_ID: second}))
    body = patched_group(okta, group_id, response)
    assert {m["value"] for m in body["members"]} == {first, second}
    assert member_ids(okta.scim, group_id) == {first, second}
    # The same push again changes nothing (the version stays).
    version = body["meta"]["version"]
    again = okta.patch(f"/Groups/{group_id}", bind(O_G6, {DOC_USER_ID: first, DOC_OTHER_ID: second}))
    assert patched_group(okta, group_id, again)["meta"]["version"] == version


def test_o_g7_delete_group(okta):
    """O-G7: 204; after it GET and DELETE are 404 (Q21)."""
    group_id = okta.post("/Groups", bind(O_G1)).get_json()["id"]
    assert okta.delete(f"/Groups/{group_id}").status_code == 204
    assert_error(okta.get(f"/Groups/{group_id}"), 404)
    assert_error(okta.delete(f"/Groups/{group_id}"), 404)


def test_o_g8_put_group_aiw(okta):
    """O-G8: AIW apps rename and push membership with a full PUT (body shape inferred)."""
    first = create_okta_user(okta, "test.user@okta.local")
    second = create_okta_user(okta, "other.user@okta.local")
    group = okta.post("/Groups", bind(O_G1)).get_json()
    put = {**group, "displayName": "Test SCIMv2 renamed",
           "members": [{"value": first, "display": "test.user@okta.local"}, {"value": second}]}
    response = okta.put(f"/Groups/{group['id']}", put)
    assert response.status_code == 200
    body = response.get_json()
    assert body["displayName"] == "Test SCIMv2 renamed" and body["id"] == group["id"]
    assert {m["value"] for m in body["members"]} == {first, second}
    put["members"] = [{"value": second}]
    assert {m["value"] for m in okta.put(f"/Groups/{group['id']}", put).get_json()["members"]} == {second}


def test_deactivated_user_keeps_memberships(okta):
    """Deactivation (O-U5) keeps the user in its groups; reactivation finds them intact (Q16)."""
    user_id = create_okta_user(okta)
    group_id = okta.post("/Groups", {"schemas": [GROUP], "displayName": "Test SCIMv2",
                                     "members": [{"value": user_id}]}).get_json()["id"]
    okta.patch(f"/Users/{user_id}", bind(O_U5))
    assert member_ids(okta.scim, group_id) == {user_id}
    assert [g["value"] for g in okta.get(f"/Users/{user_id}").get_json()["groups"]] == [group_id]
    okta.patch(f"/Users/{user_id}", bind(O_U6))
    assert member_ids(okta.scim, group_id) == {user_id}
