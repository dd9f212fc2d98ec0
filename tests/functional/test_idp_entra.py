"""Microsoft Entra ID provisioning replayed through HTTP (idp-behavior.md §2), on every backend.

Bodies are verbatim from MS-TUT / MS-COMPAT (the document's ids swapped for ours by
:func:`replay.bind`); §2.4's ``aadOptscim062020`` before/after bodies are replayed side by side and
must reach the same state. Each test asserts what Entra relies on.

Where each quirk of idp-behavior.md §4 is covered (Okta-specific ones also in ``test_idp_okta.py``):

====  ========================================================================================
Q1    ``Add``/``Replace``/``Remove`` in every Entra body; ``test_flag_*`` replays both spellings
Q2    ``test_flag_disable_user`` (``"False"``), ``test_validator_string_booleans`` (``"true"`` primary)
Q3    ``test_flag_replace_multiple_attributes`` (path-less value, dotted and URN-qualified keys)
Q4    ``test_value_filter_paths`` (all five paths), ``test_e_u4_…``, ``test_flag_remove_member``
Q5    ``test_e_g6_remove_listed_members_only``
Q6    ``test_remove_members_without_value_removes_all``
Q7    ``test_validator_replace_members_on_empty_group``
Q8    ``test_e_u4_…`` (two ops), ``test_validator_remove_add_replace_same_attribute``
Q9    ``test_member_object_shapes`` (value; +display; +``$ref: null``; ``displayName``; no type)
Q10   ``test_e_g2_create_group`` (ADSCIM URI), ``test_e_u2_example_2_…`` (``…enterprise:2.0User``),
      ``test_microsoft_entra_extension_is_ignored``
Q11   ``test_e_u2_create_user`` (``meta``, ``roles: []``), ``test_e_u2_example_2_…`` (explicit nulls),
      ``test_unknown_attributes_per_tenant``
Q12   ``test_e_u1_match_then_create`` (case-insensitive userName filter),
      ``test_e_g1_group_lookup`` (case-insensitive displayName filter)
Q13   ``test_e_u1b_unquoted_external_id``, ``test_e_u8_manager_check_query`` (unquoted, ``and``,
      ``attributes=id``; the unqualified ``manager`` of that old query is NOT tolerated, see there),
      ``test_filter_encodings`` (``+``, raw ``"``, ``%40``, excludedAttributes first)
Q14   ``test_test_connection``, ``test_e_u1_…``
Q15   ``test_e_g1_group_lookup`` (list), ``test_e_g3_get_without_members`` (single)
Q16   ``test_deprovisioning_keeps_memberships``
Q17   ``test_e_u3_get_and_404``
Q18   ``test_idp_okta.py::test_spec_errors``
Q19   ``test_e_g2_create_group`` (duplicate displayName, any case)
Q20   ``test_group_lifecycle`` and :func:`patched_group` (a group PATCH is 204 without ``Prefer``, as Entra
      asks, and with ``Prefer: return=minimal``); user PATCHes answer 200 with the user
Q21   ``test_e_u7_delete_user``, ``test_group_lifecycle``
Q22   ``test_validator_manager_pointing_nowhere``
Q23   ``test_validator_free_text_locale_and_timezone``
Q24   ``test_laravel_issue_patch`` (``addresses[type eq "work"].formatted`` creates the address)
Q25   ``test_flag_add_single_valued`` (a second ``Add`` replaces)
Q26   ``test_unknown_query_parameters``
Q27   ``test_idp_okta.py::test_o_g4_rename_with_read_only_id``
====  ========================================================================================
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import ScimClient
from tests.conftest import new_tenant
from tests.conftest import new_token
from tests.functional.replay import ENTERPRISE
from tests.functional.replay import GROUP
from tests.functional.replay import USER
from tests.functional.replay import assert_error
from tests.functional.replay import assert_list_response
from tests.functional.replay import bind
from tests.functional.replay import member_ids
from tests.functional.replay import patch_body
from tests.functional.replay import version_of

ENTRA_HEADERS = {"Content-Type": "application/scim+json", "Accept": "application/scim+json"}
MS_ENTRA_EXTENSION = "urn:ietf:params:scim:schemas:extension:Microsoft:Entra:2.0:User"

E_U2 = """{
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
    "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
    "userName": "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
    "active": true,
    "emails": [{"primary": true, "type": "work",
                "value": "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"}],
    "meta": {"resourceType": "User"},
    "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
    "roles": []
}"""

# MS-TUT "Example 2": the document quotes the malformed URN, the nulls, displayName and externalId
# verbatim; userName/emails/name complete the body as in the same tutorial.
E_U2_EXAMPLE_2 = """{
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
    "externalId": "jyoung",
    "userName": "jyoung@testuser.com",
    "active": true,
    "addresses": null,
    "displayName": "Joy Young",
    "emails": [{"type": "work", "value": "jyoung@Contoso.com", "primary": true}],
    "meta": {"resourceType": "User"},
    "name": {"familyName": "Young", "givenName": "Joy"},
    "phoneNumbers": null,
    "preferredLanguage": null,
    "title": null,
    "department": null,
    "manager": null
}"""

E_U4 = """{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [
        {"op": "Replace", "path": "emails[type eq \\"work\\"].value", "value": "updatedEmail@microsoft.com"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}
    ]
}"""

E_U5 = """{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"userName",
"value":"5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"}]}"""

E_U6 = """{"Operations":[{"op":"Replace","path":"active","value":false}],
"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}"""

E_U8 = """{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"manager",
"value":[{"$ref":"http://.../scim/Users/00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
"value":"00aa00aa-bb11-cc22-dd33-44ee44ee44ee"}]}]}"""

# limosa-io/laravel-scim-server#34 (domain elided in the document: a stand-in is used).
LARAVEL_34 = """{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
{"op":"Replace","path":"emails[type eq \\"work\\"].value","value":"AdeleV2@contoso.onmicrosoft.com"},
{"op":"Replace","path":"addresses[type eq \\"work\\"].formatted","value":"18/2111"},
{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"Retail"}]}"""

E_G2 = """{
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
    "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
    "displayName": "displayName",
    "meta": {"resourceType": "Group"}
}"""

E_G4 = """{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace",
"path":"displayName","value":"1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}]}"""

E_G5 = """{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
 "Operations": [{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]}]}"""

E_G6 = """{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
 "Operations": [{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]}]}"""

# §2.4: the four request types aadOptscim062020 changes, without the flag and with it.
FLAG_DISABLE = {
    "AzureAdScimPatch2017": """{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations":[{"op":"Replace","path":"active","value":"False"}]}""",
    "aadOptscim062020": """{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations":[{"op":"replace","path":"active","value":false}]}""",
}
FLAG_ADD_NICKNAME = {
    "AzureAdScimPatch2017": """{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations":[{"op":"Add","path":"nickName","value":"Babs"}]}""",
    "aadOptscim062020": """{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations":[{"op":"add","path":"nickName","value":"Babs"}]}""",
}
FLAG_REPLACE_MULTIPLE = {
    "AzureAdScimPatch2017": """{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
     {"op":"Replace","path":"displayName","value":"Pvlo"},
     {"op":"Replace","path":"emails[type eq \\"work\\"].value","value":"TestBcwqnm@test.microsoft.com"},
     {"op":"Replace","path":"name.givenName","value":"Gtfd"},
     {"op":"Replace","path":"name.familyName","value":"Pkqf"},
     {"op":"Replace","path":"externalId","value":"Eqpj"},
     {"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
      "value":"Eqpj"}]}""",
    "aadOptscim062020": """{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
     {"op":"replace","path":"emails[type eq \\"work\\"].value","value":"TestMhvaes@test.microsoft.com"},
     {"op":"replace","value":{"displayName":"Bjfe","name.givenName":"Kkom","name.familyName":"Unua",
       "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"Aklq"}}]}""",
}
FLAG_REMOVE_MEMBER = {
    "AzureAdScimPatch2017": """{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations":[{"op":"Remove","path":"members","value":[{"value":"u1091"}]}]}""",
    "aadOptscim062020": """{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations":[{"op":"remove","path":"members[value eq \\"7f4bc1a3-285e-48ae-8202-5accb43efb0e\\"]"}]}""",
}
FLAGS = ["AzureAdScimPatch2017", "aadOptscim062020"]


class Entra:
    """Send requests the way the Entra provisioning service does."""

    def __init__(self, scim: ScimClient) -> None:
        self.scim = scim

    def get(self, path: str, **kwargs: Any) -> Any:
        """GET."""
        return self.scim.get(path, headers=ENTRA_HEADERS, **kwargs)

    def post(self, path: str, body: Any) -> Any:
        """POST."""
        return self.scim.post(path, body, headers=ENTRA_HEADERS)

    def patch(self, path: str, body: Any, **headers: str) -> Any:
        """PATCH."""
        return self.scim.patch(path, body, headers={**ENTRA_HEADERS, **headers})

    def delete(self, path: str) -> Any:
        """DELETE."""
        return self.scim.delete(path, headers=ENTRA_HEADERS)

    def create_user(self, user_name: str | None = None, **attrs: Any) -> dict[str, Any]:
        """POST the E-U2 body (with a fresh userName/externalId unless given) and return the User."""
        body = bind(E_U2)
        body["userName"] = user_name or f"Test_User_{uuid.uuid4()}"
        body["externalId"] = str(uuid.uuid4())
        body.update(attrs)
        response = self.post("/Users", body)
        assert response.status_code == 201, response.get_json()
        return dict(response.get_json())

    def create_group(self, display_name: str, members: list[str] | None = None) -> dict[str, Any]:
        """POST the E-G2 body (created empty, as Entra does) and add *members* with E-G5 bodies."""
        body = bind(E_G2)
        body["displayName"] = display_name
        body["externalId"] = str(uuid.uuid4())
        response = self.post("/Groups", body)
        assert response.status_code == 201, response.get_json()
        group = dict(response.get_json())
        for member in members or []:
            patched_group(self, group["id"],
                          self.patch(f"/Groups/{group['id']}", bind(E_G5, {"f648f8d5ea4e4cd38e9c": member})))
        return group


def patched_group(entra: Entra, group_id: str, response: Any) -> dict[str, Any]:
    """Check a group PATCH's answer and return the group as a GET reads it afterwards.

    Entra sends no ``Prefer`` header and expects ``204`` for group PATCH (E-G4..E-G6: a body
    listing every member "isn't advisable"), so the answer is 204 with the new version as ETag and
    no body; what the PATCH did is read back through ``GET /Groups/{id}``.
    """
    assert response.status_code == 204, (response.status_code, response.get_data(as_text=True))
    assert response.get_data() == b""
    etag = response.headers.get("ETag")
    assert etag, dict(response.headers)
    got = entra.get(f"/Groups/{group_id}")
    assert got.status_code == 200, got.get_json()
    body = dict(got.get_json())
    assert body["meta"]["version"] == etag  # the ETag is the version the PATCH produced
    return body


@pytest.fixture
def entra(scim: ScimClient) -> Entra:
    """Return a client that speaks like Entra, for a fresh tenant."""
    return Entra(scim)


# --- §2.0 connection test ---------------------------------------------------------------------------


def test_test_connection(entra):
    """Test Connection: a random-GUID user and group lookup are 200 empty ListResponses (Q14)."""
    guid = str(uuid.uuid4())
    assert assert_list_response(entra.get(f'/Users?filter=userName eq "{guid}"'), 0) == []
    assert assert_list_response(entra.get(f'/Groups?excludedAttributes=members&filter=displayName eq "{guid}"'),
                                0) == []
    assert assert_list_response(entra.get("/Users?startIndex=1&count=1"), 0) == []


# --- §2.1 user lifecycle ---------------------------------------------------------------------------


def test_e_u1_match_then_create(entra):
    """E-U1: 0 results ⇒ POST (E-U2); then the lookup finds it, in any case (Q12, Q14)."""
    lookup = '/Users?filter=userName eq "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee"'
    empty = entra.get(lookup)
    assert_list_response(empty, 0)
    assert empty.get_json()["Resources"] == [] and empty.get_json()["startIndex"] == 1
    created = entra.post("/Users", bind(E_U2)).get_json()
    (found,) = assert_list_response(entra.get(lookup), 1)
    assert found["id"] == created["id"]
    (found,) = assert_list_response(entra.get(lookup.replace("Test_User", "TEST_USER").replace("aa00", "AA00")), 1)
    assert found["id"] == created["id"]


def test_e_u1b_unquoted_external_id(entra):
    """E-U1b: ``externalId eq jyoung`` (unquoted, as in MS-TUT) is read as the string (Q13)."""
    assert_list_response(entra.get("/Users?filter=externalId eq jyoung"), 0)
    created = entra.post("/Users", bind(E_U2_EXAMPLE_2)).get_json()
    (found,) = assert_list_response(entra.get("/Users?filter=externalId eq jyoung"), 1)
    assert found["id"] == created["id"]
    # externalId is caseExact (RFC 7643 §3.1): another case is another id.
    assert_list_response(entra.get("/Users?filter=externalId eq JYOUNG"), 0)


def test_e_u2_create_user(entra):
    """E-U2: 201 + id; ``meta`` and ``roles: []`` in the body are accepted (Q11)."""
    response = entra.post("/Users", bind(E_U2))
    assert response.status_code == 201
    body = response.get_json()
    sent = bind(E_U2)
    assert body["id"] and body["userName"] == sent["userName"] and body["externalId"] == sent["externalId"]
    assert body["active"] is True and body["emails"] == sent["emails"] and body["name"] == sent["name"]
    assert "roles" not in body  # an empty list is "unassigned" (RFC 7643 §2.5)
    assert body["schemas"][0] == USER


def test_e_u2_example_2_malformed_urn_and_nulls(entra):
    """Example 2: the malformed ``…enterprise:2.0User`` URN and explicit ``null``s are tolerated (Q10, Q11)."""
    response = entra.post("/Users", bind(E_U2_EXAMPLE_2))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["displayName"] == "Joy Young" and body["externalId"] == "jyoung"
    for absent in ("addresses", "phoneNumbers", "preferredLanguage", "title", ENTERPRISE):
        assert absent not in body, absent
    assert "urn:ietf:params:scim:schemas:extension:enterprise:2.0User" not in body["schemas"]


def test_microsoft_entra_extension_is_ignored(entra):
    """VAL-REC2 lists ``urn:…:extension:Microsoft:Entra:2.0:User``; an unimplemented extension is ignored (Q10)."""
    body = bind(E_U2)
    body["schemas"].append(MS_ENTRA_EXTENSION)
    body[MS_ENTRA_EXTENSION] = {"employeeHireDate": "2024-01-01T00:00:00Z"}
    response = entra.post("/Users", body)
    assert response.status_code == 201, response.get_json()
    assert MS_ENTRA_EXTENSION not in response.get_json()


def test_unknown_attributes_per_tenant(client, storage):
    """Unknown attributes (OneLogin templates, Q11) are a 400 by default and dropped when the tenant opts in."""
    body = {**bind(E_U2), "prefferedLanguage": "en"}
    strict = Entra(ScimClient(client, new_token(storage, new_tenant(storage))))
    assert_error(strict.post("/Users", body), 400, "invalidSyntax")
    lenient = Entra(ScimClient(client, new_token(storage, new_tenant(storage, ignore_unknown_attributes=True))))
    response = lenient.post("/Users", body)
    assert response.status_code == 201 and "prefferedLanguage" not in response.get_json()
    user_id = response.get_json()["id"]
    patched = lenient.patch(f"/Users/{user_id}", patch_body({"op": "replace", "value": {"prefferedLanguage": "x",
                                                                                         "title": "T"}}))
    assert patched.status_code == 200 and patched.get_json()["title"] == "T"


def test_e_u3_get_and_404(entra):
    """E-U3: 200 User; an unknown id is a 404 whose ``status`` is the string "404" (Q17)."""
    user = entra.create_user()
    assert entra.get(f"/Users/{user['id']}").get_json() == user
    body = assert_error(entra.get("/Users/5d48a0a8e9f04aa38008"), 404)
    assert set(body) >= {"schemas", "status", "detail"}


def test_e_u4_multi_valued_and_sub_attribute(entra):
    """E-U4: a filtered email value and ``name.familyName`` in one PATCH, applied in order (Q1, Q4, Q8)."""
    user = entra.create_user()
    response = entra.patch(f"/Users/{user['id']}", bind(E_U4))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["emails"] == [{"primary": True, "type": "work", "value": "updatedEmail@microsoft.com"}]
    assert body["name"] == {"formatted": "givenName familyName", "familyName": "updatedFamilyName",
                            "givenName": "givenName"}
    assert body["meta"]["version"] == 'W/"2"'
    assert entra.get(f"/Users/{user['id']}").get_json() == body


def test_e_u5_replace_user_name(entra):
    """E-U5: ``Replace`` of ``userName``; the new name is found by filter."""
    user = entra.create_user()
    response = entra.patch(f"/Users/{user['id']}", bind(E_U5))
    assert response.status_code == 200
    assert response.get_json()["userName"] == "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    (found,) = assert_list_response(
        entra.get('/Users?filter=userName eq "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"'), 1)
    assert found["id"] == user["id"]


def test_e_u6_disable(entra):
    """E-U6 (tutorial body): ``active`` false; the user is still returned (MS-TUT)."""
    user = entra.create_user()
    response = entra.patch(f"/Users/{user['id']}", bind(E_U6))
    assert response.status_code == 200 and response.get_json()["active"] is False
    assert entra.get(f"/Users/{user['id']}").get_json()["active"] is False
    (found,) = assert_list_response(entra.get(f'/Users?filter=userName eq "{user["userName"]}"'), 1)
    assert found["active"] is False


def test_e_u7_delete_user(entra):
    """E-U7: 204; then GET and DELETE are 404 (Q21); memberships go with the user."""
    user = entra.create_user()
    group = entra.create_group("with-deleted-user", [user["id"]])
    assert entra.delete(f"/Users/{user['id']}").status_code == 204
    assert_error(entra.get(f"/Users/{user['id']}"), 404)
    assert_error(entra.delete(f"/Users/{user['id']}"), 404)
    assert member_ids(entra.scim, group["id"]) == set()


def test_e_u8_manager(entra):
    """E-U8: ``Add`` on ``manager`` with a one-element list of ``$ref``/``value``."""
    manager = entra.create_user()
    user = entra.create_user()
    body = bind(E_U8, {"00aa00aa-bb11-cc22-dd33-44ee44ee44ee": manager["id"]})
    response = entra.patch(f"/Users/{user['id']}", body)
    assert response.status_code == 200, response.get_json()
    stored = response.get_json()[ENTERPRISE]["manager"]
    assert stored["value"] == manager["id"]
    assert ENTERPRISE in response.get_json()["schemas"]


def test_e_u8_manager_check_query(entra):
    """E-U8's pre-check: unquoted GUIDs, ``and``, ``attributes=id`` (Q13).

    Unquoted values are tolerated. The pre-2019 MS-TUT query names ``manager`` without its
    extension URN; filters require the URN for extension attributes (a decision pinned by
    ``test_filter_sql.py``), so that verbatim query is a clean 400 ``invalidFilter`` while the
    qualified form, still unquoted, works.
    """
    manager = entra.create_user()
    user = entra.create_user()
    verbatim = ("/Users?filter=id eq 54D382A4-2050-4C03-94D1-E769F1D15682 and manager eq "
                "2819c223-7f76-453a-919d-413861904646&attributes=id")
    assert "manager" in assert_error(entra.get(verbatim), 400, "invalidFilter")["detail"]
    query = f"/Users?filter=id eq {user['id'].upper()} and {ENTERPRISE}:manager eq {manager['id']}&attributes=id"
    assert_list_response(entra.get(query), 0)
    entra.patch(f"/Users/{user['id']}", bind(E_U8, {"00aa00aa-bb11-cc22-dd33-44ee44ee44ee": manager["id"]}))
    (found,) = assert_list_response(entra.get(query), 1)
    assert found["id"] == user["id"] and set(found) == {"schemas", "id"}  # attributes=id: nothing else


def test_laravel_issue_patch(entra):
    """laravel-scim-server#34: ``Replace`` through a filter with no match creates the element (Q24), URN path."""
    user = entra.create_user()
    response = entra.patch(f"/Users/{user['id']}", bind(LARAVEL_34))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["emails"] == [{"primary": True, "type": "work", "value": "AdeleV2@contoso.onmicrosoft.com"}]
    assert body["addresses"] == [{"type": "work", "formatted": "18/2111"}]
    assert body[ENTERPRISE]["department"] == "Retail"
    # The first time it was an Add; afterwards Entra sends Replace on the same path.
    again = entra.patch(f"/Users/{user['id']}", patch_body(
        {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Wholesale"}))
    assert again.get_json()[ENTERPRISE]["department"] == "Wholesale"


# --- §2.2 group lifecycle ----------------------------------------------------------------------------


def test_e_g1_group_lookup(entra):
    """E-G1: lookup by displayName without members: 0, then 1 after E-G2, in any case (Q12, Q15)."""
    lookup = '/Groups?excludedAttributes=members&filter=displayName eq "displayName"'
    assert_list_response(entra.get(lookup), 0)
    user = entra.create_user()
    created = entra.post("/Groups", bind(E_G2)).get_json()
    entra.patch(f"/Groups/{created['id']}", bind(E_G5, {"f648f8d5ea4e4cd38e9c": user["id"]}))
    (found,) = assert_list_response(entra.get(lookup), 1)
    assert found["id"] == created["id"] and found["displayName"] == "displayName"
    assert found["externalId"] == "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"
    assert found["schemas"][0] == GROUP and "meta" in found and "members" not in found
    (found,) = assert_list_response(entra.get(lookup.replace('"displayName"', '"DISPLAYNAME"')), 1)
    assert found["id"] == created["id"]


def test_e_g2_create_group(entra):
    """E-G2: 201 with ``members: []``; the Microsoft schema URI is ignored (Q10); duplicates are 409 (Q19)."""
    response = entra.post("/Groups", bind(E_G2))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["schemas"][0] == GROUP and body["id"]
    assert "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group" not in body["schemas"]
    assert body["externalId"] == "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"
    assert body["displayName"] == "displayName" and body["members"] == []
    duplicate = bind(E_G2)
    duplicate["displayName"] = "DisplayName"
    duplicate["externalId"] = str(uuid.uuid4())
    assert_error(entra.post("/Groups", duplicate), 409, "uniqueness")


def test_e_g3_get_without_members(entra):
    """E-G3: ``excludedAttributes=members`` on one group (Q15)."""
    user = entra.create_user()
    group = entra.create_group("displayName", [user["id"]])
    response = entra.get(f"/Groups/{group['id']}?excludedAttributes=members")
    assert response.status_code == 200
    body = response.get_json()
    assert "members" not in body and body["displayName"] == "displayName" and body["id"] == group["id"]


def test_group_lifecycle(entra):
    """E-G1 → E-G2 → E-G4 → E-G5 → E-G6 → E-G7, membership checked after each step (Q20, Q21)."""
    alice, bob, carol = (entra.create_user() for _ in range(3))
    assert_list_response(entra.get('/Groups?excludedAttributes=members&filter=displayName eq "displayName"'), 0)
    group = entra.post("/Groups", bind(E_G2)).get_json()
    path = f"/Groups/{group['id']}"
    assert member_ids(entra.scim, group["id"]) == set()

    body = patched_group(entra, group["id"], entra.patch(path, bind(E_G4)))  # Entra sends no Prefer: 204
    assert body["displayName"] == "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"

    for user in (alice, bob, carol):
        response = entra.patch(path, bind(E_G5, {"f648f8d5ea4e4cd38e9c": user["id"]}), Prefer="return=minimal")
        assert response.status_code == 204
    assert member_ids(entra.scim, group["id"]) == {alice["id"], bob["id"], carol["id"]}

    patched_group(entra, group["id"], entra.patch(path, bind(E_G6, {"f648f8d5ea4e4cd38e9c": bob["id"]})))
    assert member_ids(entra.scim, group["id"]) == {alice["id"], carol["id"]}

    assert entra.delete(path).status_code == 204
    assert_error(entra.get(path), 404)
    assert_error(entra.patch(path, bind(E_G4)), 404)
    assert_error(entra.delete(path), 404)
    assert "groups" in entra.get(f"/Users/{alice['id']}").get_json()
    assert entra.get(f"/Users/{alice['id']}").get_json()["groups"] == []


def test_multiple_memberships_in_one_patch(entra):
    """Gallery checklist: several members added (and removed) by one PATCH."""
    users = [entra.create_user()["id"] for _ in range(4)]
    group = entra.create_group("multi")
    value = [{"$ref": None, "value": u} for u in users]
    body = patched_group(entra, group["id"], entra.patch(
        f"/Groups/{group['id']}", patch_body({"op": "Add", "path": "members", "value": value})))
    assert member_ids(entra.scim, group["id"]) == set(users)
    assert body["meta"]["version"] == 'W/"2"'  # one PATCH, one version
    patched_group(entra, group["id"], entra.patch(
        f"/Groups/{group['id']}", patch_body({"op": "Remove", "path": "members", "value": value[:3]})))
    assert member_ids(entra.scim, group["id"]) == {users[3]}


def test_e_g6_remove_listed_members_only(entra):
    """E-G6: ``Remove`` with a value list removes exactly those members, never all (Q5)."""
    users = [entra.create_user()["id"] for _ in range(3)]
    group = entra.create_group("remove-some", users)
    patched_group(entra, group["id"], entra.patch(f"/Groups/{group['id']}",
                                                  bind(E_G6, {"f648f8d5ea4e4cd38e9c": users[0]})))
    assert member_ids(entra.scim, group["id"]) == set(users[1:])


def test_remove_members_without_value_removes_all(entra):
    """MS-POSTMAN / RFC 7644 §3.5.2.2: ``remove`` of ``members`` without a value empties the group (Q6)."""
    users = [entra.create_user()["id"] for _ in range(3)]
    group = entra.create_group("remove-all", users)
    body = patched_group(entra, group["id"],
                         entra.patch(f"/Groups/{group['id']}", patch_body({"op": "remove", "path": "members"})))
    assert body["members"] == []
    assert member_ids(entra.scim, group["id"]) == set()
    assert all(entra.get(f"/Users/{u}").status_code == 200 for u in users)


@pytest.mark.parametrize("shape", ["value", "value+display", "value+$ref null", "value+displayName",
                                   "value+type"])
def test_member_object_shapes(entra, shape):
    """Member objects as the IdPs send them (Q9)."""
    user = entra.create_user()
    member: dict[str, Any] = {"value": user["id"]}
    if shape == "value+display":
        member["display"] = "Test User"
    elif shape == "value+$ref null":
        member["$ref"] = None
    elif shape == "value+displayName":
        member["displayName"] = "Test User"
    elif shape == "value+type":
        member["type"] = "User"
    group = entra.create_group("shapes")
    body = patched_group(entra, group["id"], entra.patch(
        f"/Groups/{group['id']}", patch_body({"op": "add", "path": "members", "value": [member]})))
    (rendered,) = body["members"]
    assert rendered["value"] == user["id"] and rendered["type"] == "User"
    assert rendered["$ref"].endswith(f"/Users/{user['id']}")
    if "display" in shape.lower():
        assert rendered["display"] == "Test User"


# --- §2.3 deprovisioning ----------------------------------------------------------------------------


def test_deprovisioning_keeps_memberships(entra):
    """Soft delete ⇒ ``active=false``; the user stays readable, filterable and in its groups (Q16)."""
    user = entra.create_user()
    group = entra.create_group("kept", [user["id"]])
    entra.patch(f"/Users/{user['id']}", bind(FLAG_DISABLE["AzureAdScimPatch2017"]))
    body = entra.get(f"/Users/{user['id']}").get_json()
    assert body["active"] is False and [g["value"] for g in body["groups"]] == [group["id"]]
    (found,) = assert_list_response(entra.get("/Users?filter=active eq false"), 1)
    assert found["id"] == user["id"]
    assert member_ids(entra.scim, group["id"]) == {user["id"]}
    entra.patch(f"/Users/{user['id']}", patch_body({"op": "Replace", "path": "active", "value": "True"}))
    assert entra.get(f"/Users/{user['id']}").get_json()["active"] is True
    assert member_ids(entra.scim, group["id"]) == {user["id"]}


# --- §2.4 aadOptscim062020: before and after --------------------------------------------------------


@pytest.mark.parametrize("flag", FLAGS)
def test_flag_disable_user(entra, flag):
    """§2.4 (1): ``"False"`` (string, ``Replace``) and ``false`` (``replace``) both disable, as a boolean (Q2)."""
    user = entra.create_user()
    response = entra.patch(f"/Users/{user['id']}", bind(FLAG_DISABLE[flag]))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["active"] is False
    assert entra.get(f"/Users/{user['id']}").get_json()["active"] is False


@pytest.mark.parametrize("flag", FLAGS)
def test_flag_add_single_valued(entra, flag):
    """§2.4 (2): ``Add``/``add`` of ``nickName``; an add on a single-valued attribute replaces it (Q25)."""
    user = entra.create_user()
    response = entra.patch(f"/Users/{user['id']}", bind(FLAG_ADD_NICKNAME[flag]))
    assert response.status_code == 200 and response.get_json()["nickName"] == "Babs"
    again = entra.patch(f"/Users/{user['id']}", bind(FLAG_ADD_NICKNAME[flag].replace("Babs", "Barbara")))
    assert again.get_json()["nickName"] == "Barbara"
    # The same Add once more is not a change.
    version = again.get_json()["meta"]["version"]
    assert entra.patch(f"/Users/{user['id']}", bind(FLAG_ADD_NICKNAME[flag].replace("Babs", "Barbara"))
                       ).get_json()["meta"]["version"] == version


@pytest.mark.parametrize("flag", FLAGS)
def test_flag_replace_multiple_attributes(entra, flag):
    """§2.4 (3): one op per attribute, or a path-less value with dotted and URN-qualified keys (Q3)."""
    user = entra.create_user()
    response = entra.patch(f"/Users/{user['id']}", bind(FLAG_REPLACE_MULTIPLE[flag]))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    if flag == "AzureAdScimPatch2017":
        expected = {"displayName": "Pvlo", "email": "TestBcwqnm@test.microsoft.com", "given": "Gtfd",
                    "family": "Pkqf", "employeeNumber": "Eqpj"}
        assert body["externalId"] == "Eqpj"
    else:
        expected = {"displayName": "Bjfe", "email": "TestMhvaes@test.microsoft.com", "given": "Kkom",
                    "family": "Unua", "employeeNumber": "Aklq"}
        assert body["externalId"] == user["externalId"]
    assert body["displayName"] == expected["displayName"]
    assert body["emails"] == [{"primary": True, "type": "work", "value": expected["email"]}]
    assert body["name"]["givenName"] == expected["given"] and body["name"]["familyName"] == expected["family"]
    assert body["name"]["formatted"] == "givenName familyName"  # untouched sub-attribute kept
    assert body[ENTERPRISE] == {"employeeNumber": expected["employeeNumber"]}
    assert ENTERPRISE in body["schemas"]
    assert body["meta"]["version"] == 'W/"2"'  # one PATCH, one version
    assert entra.get(f"/Users/{user['id']}").get_json() == body


@pytest.mark.parametrize("flag", FLAGS)
def test_flag_remove_member(entra, flag):
    """§2.4 (4): ``Remove`` with a value list, or ``remove`` through ``members[value eq …]``: same result (Q4, Q5)."""
    keep, leave = entra.create_user()["id"], entra.create_user()["id"]
    group = entra.create_group("flagged", [keep, leave])
    body = bind(FLAG_REMOVE_MEMBER[flag], {"u1091": leave, "7f4bc1a3-285e-48ae-8202-5accb43efb0e": leave})
    patched_group(entra, group["id"], entra.patch(f"/Groups/{group['id']}", body))
    assert member_ids(entra.scim, group["id"]) == {keep}
    # Removing a member that is already gone is not an error, and not a change.
    version = version_of(entra.scim, f"/Groups/{group['id']}")
    patched_group(entra, group["id"], entra.patch(f"/Groups/{group['id']}", body))
    assert version_of(entra.scim, f"/Groups/{group['id']}") == version


# --- validator recordings (VAL-REC1/2, MS-VAL) --------------------------------------------------------


def test_value_filter_paths(entra):
    """The value-filter paths Okta, MS-TUT and the validator send (Q4), including element creation."""
    user = entra.create_user(phoneNumbers=[{"value": "555-0100", "type": "work", "primary": True}],
                             addresses=[{"type": "work", "formatted": "old", "primary": True}])
    path = f"/Users/{user['id']}"
    ops = [
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "w@example.com"},
        {"op": "replace", "path": "emails[primary eq true].value", "value": "primary@example.com"},
        {"op": "replace", "path": 'addresses[type eq "work"].formatted', "value": "18/2111"},
        {"op": "replace", "path": "phoneNumbers[primary eq true].value", "value": "555-0199"},
    ]
    response = entra.patch(path, patch_body(*ops))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["emails"] == [{"primary": True, "type": "work", "value": "primary@example.com"}]
    assert body["addresses"] == [{"type": "work", "formatted": "18/2111", "primary": True}]
    assert body["phoneNumbers"] == [{"value": "555-0199", "type": "work", "primary": True}]
    # A filter that matches nothing creates the element from its eq conditions (Q24).
    created = entra.patch(path, patch_body({"op": "Replace", "path": 'phoneNumbers[type eq "mobile"].value',
                                            "value": "555-0123"})).get_json()
    assert {"type": "mobile", "value": "555-0123"} in created["phoneNumbers"]


def test_validator_string_booleans(entra):
    """The validator sends ``"primary": "true"``; booleans come back as JSON booleans (Q2)."""
    user = entra.create_user()
    response = entra.patch(f"/Users/{user['id']}", patch_body(
        {"op": "add", "path": "phoneNumbers", "value": [{"value": "555-0142", "type": "work", "primary": "true"}]}))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["phoneNumbers"] == [{"value": "555-0142", "type": "work", "primary": True}]
    created = entra.post("/Users", {"schemas": [USER], "userName": "strbool", "active": "False",
                                    "emails": [{"value": "s@example.com", "primary": "True"}]})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["active"] is False and created.get_json()["emails"][0]["primary"] is True


def test_validator_remove_add_replace_same_attribute(entra):
    """VAL-REC1: remove → add → replace on one attribute in one PATCH, applied in order (Q8)."""
    user = entra.create_user(title="Old")
    response = entra.patch(f"/Users/{user['id']}", patch_body(
        {"op": "remove", "path": "title"},
        {"op": "add", "path": "title", "value": "Added"},
        {"op": "replace", "path": "title", "value": "Replaced"}))
    assert response.status_code == 200 and response.get_json()["title"] == "Replaced"
    assert response.get_json()["meta"]["version"] == 'W/"2"'


def test_validator_replace_members_on_empty_group(entra):
    """VAL-REC1 uses ``replace`` on ``members`` to fill an empty group (Q7)."""
    users = [entra.create_user()["id"] for _ in range(2)]
    group = entra.create_group("filled-by-replace")
    patched_group(entra, group["id"], entra.patch(f"/Groups/{group['id']}", patch_body(
        {"op": "replace", "path": "members", "value": [{"value": u} for u in users]})))
    assert member_ids(entra.scim, group["id"]) == set(users)


def test_validator_manager_pointing_nowhere(entra):
    """VAL-REC2: ``manager.value`` is a random string; it is stored as sent (Q22)."""
    user = entra.create_user()
    response = entra.patch(f"/Users/{user['id']}", patch_body(
        {"op": "add", "path": f"{ENTERPRISE}:manager", "value": {"value": "TQCXWBNTZYIJ"}}))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()[ENTERPRISE]["manager"] == {"value": "TQCXWBNTZYIJ"}


def test_validator_free_text_locale_and_timezone(entra):
    """MS-VAL / VAL-REC1: random IANA zones, BCP 47 tags and free-text locales are stored verbatim (Q23)."""
    user = entra.create_user(locale="YUFQUHXUYXJK", timezone="Pacific/Chatham", preferredLanguage="sr-Latn-RS")
    assert (user["locale"], user["timezone"], user["preferredLanguage"]) == (
        "YUFQUHXUYXJK", "Pacific/Chatham", "sr-Latn-RS")
    response = entra.patch(f"/Users/{user['id']}", patch_body(
        {"op": "Replace", "path": "locale", "value": "ZZQQ"}, {"op": "Replace", "path": "timezone",
                                                              "value": "America/Argentina/ComodRivadavia"}))
    assert response.get_json()["locale"] == "ZZQQ"
    assert response.get_json()["timezone"] == "America/Argentina/ComodRivadavia"


def test_filter_encodings(entra):
    """``+`` for space with raw quotes (validator), ``%40``, ``excludedAttributes`` before ``filter`` (Q13)."""
    user = entra.create_user("Test_User_enc@example.com")
    group = entra.create_group("Encoded Group", [user["id"]])
    for query in ('filter=userName+eq+"Test_User_enc@example.com"',
                  "filter=userName%20eq%20%22test_user_enc%40example.com%22",
                  'attributes=id&filter=userName eq "TEST_USER_ENC@EXAMPLE.COM"'):
        (found,) = assert_list_response(entra.get("/Users", query_string=query), 1)
        assert found["id"] == user["id"]
    (found,) = assert_list_response(entra.get(
        "/Groups", query_string='excludedAttributes=members&filter=displayName+eq+"encoded+group"'), 1)
    assert found["id"] == group["id"] and "members" not in found


def test_unknown_query_parameters(entra):
    """The ``aadOptscim062020`` flag (or any unknown parameter) in a URL is no error (Q26)."""
    user = entra.create_user()
    assert entra.get("/Users?aadOptscim062020").status_code == 200
    assert entra.get(f'/Users?aadOptscim062020&filter=userName eq "{user["userName"]}"').get_json()[
        "totalResults"] == 1
    assert entra.get(f"/Users/{user['id']}?aadOptscim062020=1&foo=bar").status_code == 200
    response = entra.patch(f"/Users/{user['id']}?aadOptscim062020", bind(FLAG_DISABLE["aadOptscim062020"]))
    assert response.status_code == 200 and response.get_json()["active"] is False
