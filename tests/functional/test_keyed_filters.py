"""``userName eq`` and ``externalId eq`` on page one: a prebuilt statement, the same answers.

IdPs send one of these before every create (Entra: both; Okta: userName). The keyed path must
answer exactly what the general filter path answers, which the same filter written so that it
takes the general path (``or`` of itself) shows, on both databases.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.fixture
def people(scim):
    alice = scim.create_user("Alice.Smith@Example.com", externalId="EXT-Alice", displayName="Alice",
                             emails=[{"value": "alice@example.com", "primary": True}])
    bob = scim.create_user("bob@example.com", externalId="ext-bob")
    scim.create_group("readers", [alice["id"]])
    return alice, bob


def listed(scim, expression: str, extra: str = "") -> dict:
    response = scim.get(f"/Users?filter={quote(expression, safe='')}{extra}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def general(scim, expression: str, extra: str = "") -> dict:
    """The same filter through the general path (an 'or' with itself is not a keyed lookup)."""
    return listed(scim, f"({expression}) or ({expression})", extra)


@pytest.mark.parametrize("expression", [
    'userName eq "alice.smith@example.com"',
    'userName eq "ALICE.SMITH@EXAMPLE.COM"',
    'USERNAME eq "Alice.Smith@Example.com"',
    f'{CORE}:userName eq "alice.smith@example.com"',
    'externalId eq "EXT-Alice"',
    'externalid eq "EXT-Alice"',
    'externalId eq "ext-alice"',
    'userName eq "nobody@example.com"',
    'externalId eq ""',
])
def test_keyed_lookups_answer_as_the_general_filter(scim, people, expression):
    fast = listed(scim, expression)
    slow = general(scim, expression)
    assert fast == slow
    assert fast["totalResults"] == len(fast["Resources"])


def test_user_name_is_case_insensitive_and_external_id_case_exact(scim, people):
    alice, _ = people
    assert [u["id"] for u in listed(scim, 'userName eq "ALICE.smith@example.COM"')["Resources"]] == [alice["id"]]
    assert listed(scim, 'externalId eq "ext-alice"')["totalResults"] == 0
    found = listed(scim, 'externalId eq "EXT-Alice"')
    assert found["totalResults"] == 1 and found["startIndex"] == 1 and found["itemsPerPage"] == 1
    # The whole resource, groups included, as GET answers it.
    assert found["Resources"][0] == scim.get(f"/Users/{alice['id']}").get_json()


@pytest.mark.parametrize("extra", ["&attributes=userName", "&excludedAttributes=groups,emails", "&count=1",
                                   "&attributes=emails.value", "&count=0", "&startIndex=2"])
def test_paging_and_projection_as_the_general_filter(scim, people, extra):
    expression = 'userName eq "alice.smith@example.com"'
    assert listed(scim, expression, extra) == general(scim, expression, extra)


def test_other_tenants_users_are_not_found(scim, other_scim, people):
    assert listed(other_scim, 'userName eq "alice.smith@example.com"')["totalResults"] == 0
    assert listed(other_scim, 'externalId eq "EXT-Alice"')["totalResults"] == 0


def test_non_string_values_still_get_the_general_error(scim, people):
    response = scim.get(f"/Users?filter={quote('userName eq 42', safe='')}")
    assert response.status_code == 400
    assert response.get_json()["scimType"] == "invalidFilter"
