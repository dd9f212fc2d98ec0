"""List pages with the default projection are rendered by the database (``domain/user_json.py``).

Every user on such a page must be exactly what GET /Users/{id} renders in Python: the same keys in
the same order with the same values, for every kind of value (text needing escapes, non-ASCII,
booleans true/false/absent, several values per attribute in their order, addresses, groups in
displayName order, the enterprise extension with and without a manager, iamOrgId, timestamps with
and without microseconds), through both statements (the prepared unfiltered page and a filtered or
sorted one), on both databases, for users read from the texts their last write stored and for
users the database renders from their columns.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC
from datetime import datetime

import pytest
from sqlalchemy import update

from scim_bridge.storage.models import User
from tests.functional.test_read_views import RICH

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
INFINITY = "urn:scim-bridge:params:scim:schemas:extension:infinity:2.0:User"

ODD = {
    "displayName": "tab\tnew\nline \u0001 nul-free \u2028 \U0001f600 back\\slash \"q\" </script>",
    "nickName": "",
    "title": "Ünïcödé",
    "active": False,
    "name": {"familyName": "Only"},
    "emails": [{"value": "b@x.example", "primary": False}, {"value": "a@x.example", "type": "work"},
               {"value": "c@x.example", "type": "other", "primary": True}],
    "ims": [{"value": "im1", "type": "xmpp"}],
    "photos": [{"value": "https://x.example/p.png", "type": "photo"}],
    "entitlements": [{"value": "e1", "display": "E one"}],
    "addresses": [{"formatted": "A\nB", "type": "home"}, {"locality": "Köln", "country": "DE"}],
    ENTERPRISE: {"manager": {"value": "boss-id", "displayName": "The Boss"}},
    INFINITY: {"iamOrgId": "ORG-9"},
}


def _listed(scim, query: str = "") -> dict[str, dict]:
    response = scim.get(f"/Users?count=100{query}")
    assert response.status_code == 200, response.get_json()
    return {r["id"]: r for r in response.get_json()["Resources"]}


def _assert_same(listed: dict, single: dict) -> None:
    assert listed == single
    assert json.dumps(listed) == json.dumps(single)  # same key order, at every level


def forget_stored_renderings(storage, user_ids) -> None:
    """Make users look written before their rendering was stored: the database renders them from columns."""
    with storage.sessionmaker() as session, session.begin():
        session.execute(update(User).where(User.id.in_([uuid.UUID(i) for i in user_ids])).values(rendered_version=None))


@pytest.fixture(params=["stored", "by the database"])
def population(request, scim, storage):
    # Every test runs twice: users read from the texts their writes stored, and users the
    # database renders from their columns (written before the stored rendering, or of another format).
    rich = scim.create_user("zoë@example.com", **RICH)
    odd = scim.create_user("odd@example.com", **ODD)
    bare = scim.create_user("bare@example.com")
    inactive = scim.create_user("inactive@example.com", active=False,
                                **{ENTERPRISE: {"department": "Ops"}})
    for name in ("beta", "Alpha", "gamma", "alpha two"):
        scim.create_group(name, [rich["id"], odd["id"]])
    # A created time with no fraction of a second: isoformat() leaves the microseconds out.
    with storage.sessionmaker() as session, session.begin():
        user = session.get(User, uuid.UUID(bare["id"]))
        assert user is not None
        user.created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        user.last_modified = datetime(2026, 1, 2, 3, 4, 5, 120, tzinfo=UTC)
    if request.param == "by the database":
        forget_stored_renderings(storage, [u["id"] for u in (rich, odd, bare, inactive)])
    return [rich, odd, bare, inactive]


def test_unfiltered_page_equals_single_reads(scim, population):
    page = _listed(scim)
    assert set(page) == {u["id"] for u in population}
    for user_id, resource in page.items():
        _assert_same(resource, scim.get(f"/Users/{user_id}").get_json())
    odd = next(r for r in page.values() if r["userName"] == "odd@example.com")
    assert [e["value"] for e in odd["emails"]] == ["b@x.example", "a@x.example", "c@x.example"]
    assert [e.get("primary") for e in odd["emails"]] == [False, None, True]
    assert [g["display"] for g in odd["groups"]] == ["Alpha", "alpha two", "beta", "gamma"]
    assert odd["active"] is False and odd["nickName"] == "" and odd["displayName"] == ODD["displayName"]
    assert odd["schemas"][1:] == [ENTERPRISE, INFINITY] and odd[INFINITY] == {"iamOrgId": "ORG-9"}
    bare = next(r for r in page.values() if r["userName"] == "bare@example.com")
    assert bare["meta"]["created"] == "2026-01-02T03:04:05Z"
    assert bare["meta"]["lastModified"] == "2026-01-02T03:04:05.000120Z"
    assert bare["groups"] == [] and "emails" not in bare and "name" not in bare
    assert bare["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User"]


@pytest.mark.parametrize("query", [
    "&filter=userName sw \"\"",
    "&sortBy=userName&sortOrder=descending",
    "&filter=active eq false",
    "&startIndex=2&count=2",
])
def test_filtered_sorted_and_offset_pages_equal_single_reads(scim, population, query):
    listed = scim.get(f"/Users?{query.lstrip('&')}").get_json()
    assert listed["Resources"], listed
    for resource in listed["Resources"]:
        _assert_same(resource, scim.get(f"/Users/{resource['id']}").get_json())


def test_page_order_and_totals_are_unchanged(scim, population):
    ids = [r["id"] for r in scim.get("/Users?sortBy=userName").get_json()["Resources"]]
    assert ids == [u["id"] for u in sorted(population, key=lambda u: u["userName"].lower())]
    second = scim.get("/Users?startIndex=3&count=1").get_json()
    everything = [r["id"] for r in scim.get("/Users").get_json()["Resources"]]
    assert second["totalResults"] == 4 and second["itemsPerPage"] == 1
    assert [r["id"] for r in second["Resources"]] == everything[2:3]


def test_projected_pages_still_render_in_python(scim, population):
    # attributes/excludedAttributes can trim sub-attributes, which text cannot: those pages take the
    # Python path, and agree with single reads under the same projection.
    for query in ("attributes=emails.value", "excludedAttributes=groups,meta"):
        listed = scim.get(f"/Users?{query}").get_json()["Resources"]
        for resource in listed:
            _assert_same(resource, scim.get(f"/Users/{resource['id']}?{query}").get_json())


def test_tenants_never_see_each_others_rendered_users(scim, other_scim, population):
    other_scim.create_user("other@example.com")
    assert {r["userName"] for r in _listed(other_scim).values()} == {"other@example.com"}
    assert "other@example.com" not in {r["userName"] for r in _listed(scim).values()}


def test_org_extension_on_a_profiled_tenant_equals_single_reads(tenancy):
    t = tenancy("okta")
    alice = t.scim.create_user("alice@acme.test", name={"givenName": "Alice", "familyName": "Smith"},
                               emails=[{"value": "alice@acme.test", "primary": True}],
                               **{INFINITY: {"iamOrgId": "4711"}})
    bob = t.scim.create_user("bob@acme.test")
    t.scim.create_group("ORG-4711 ACME Berlin", [alice["id"], bob["id"]])
    for query in ("", f"&attributes={INFINITY},userName", "&filter=userName eq \"bob@acme.test\""):
        listed = t.scim.get(f"/Users?count=10{query}").get_json()["Resources"]
        assert listed
        for resource in listed:
            single = t.scim.get(f"/Users/{resource['id']}{'?' + query.lstrip('&') if 'attributes' in query else ''}")
            _assert_same(resource, single.get_json())


def test_request_only_attributes_stay_out_of_the_default_rendering(scim):
    # manager.displayName is computed from the referenced user and returned on request only.
    boss = scim.create_user("boss@example.com", displayName="The Boss")
    worker = scim.create_user("worker@example.com", **{ENTERPRISE: {"manager": {"value": boss["id"]}}})
    single = scim.get(f"/Users/{worker['id']}").get_json()
    assert single[ENTERPRISE] == {"manager": {"value": boss["id"]}}
    for query in ("", "&filter=userName eq \"worker@example.com\"", "&filter=userName sw \"w\""):
        listed = [r for r in scim.get(f"/Users?count=10{query}").get_json()["Resources"] if r["id"] == worker["id"]]
        _assert_same(listed[0], single)
    asked = scim.get(f"/Users/{worker['id']}?attributes={ENTERPRISE}:manager.displayName").get_json()
    assert asked[ENTERPRISE]["manager"] == {"displayName": "The Boss"}


def test_single_reads_and_keyed_filters_are_rendered_the_same_way(scim, population):
    # GET /Users/{id} and userName/externalId eq with the default projection are rendered by the
    # database too; with a projection they are rendered in Python. Both agree.
    for user in population:
        text = scim.get(f"/Users/{user['id']}")
        assert text.status_code == 200 and text.headers["ETag"] == f'W/"{text.get_json()["meta"]["version"][3:-1]}"'
        python = scim.get(f"/Users/{user['id']}?excludedAttributes=password").get_json()
        _assert_same(text.get_json(), python)
        keyed = scim.get(f'/Users?filter=userName eq "{user["userName"].upper()}"').get_json()
        assert keyed["totalResults"] == 1
        _assert_same(keyed["Resources"][0], python)
    missing = scim.get("/Users/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and missing.get_json()["status"] == "404"
    etag = scim.get(f"/Users/{population[0]['id']}").headers["ETag"]
    assert scim.get(f"/Users/{population[0]['id']}", headers={"If-None-Match": etag}).status_code == 304
