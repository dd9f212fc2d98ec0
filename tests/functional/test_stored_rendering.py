"""Users keep their default rendering on their row, written with them (``user_json.stored_rendering``).

Every write of a user's attributes (POST, PUT, PATCH, Bulk) stores the JSON texts of its core and
multi-valued attributes and of its enterprise extension, for the version it writes. GET and list
pages with the default projection read those texts while they are the current version's and of the
code's format; any other user (written before, by a path that did not store them, or in an older
format) is rendered by the database from its columns, so a stale text is never served.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy import update

from scim_bridge.domain import user_json
from scim_bridge.storage.models import User
from scim_bridge.storage.models import UserValue
from tests.functional.test_bulk import bulk
from tests.functional.test_read_views import RICH
from tests.functional.test_rendered_users import ENTERPRISE
from tests.functional.test_rendered_users import ODD
from tests.functional.test_rendered_users import forget_stored_renderings

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _row(storage, user_id: str) -> User:
    with storage.sessionmaker() as session:
        user = session.get(User, uuid.UUID(user_id))
        assert user is not None
        session.expunge(user)
        return user


def _assert_stored_for_current_version(storage, user_id: str) -> User:
    row = _row(storage, user_id)
    assert row.rendered is not None
    assert (row.rendered_version, row.rendered_format) == (row.version, user_json.RENDERED_FORMAT)
    return row


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a == b
    assert json.dumps(a) == json.dumps(b)  # same key order at every level


def _read_both_ways(scim, storage, user_id: str) -> dict[str, Any]:
    """GET the user from its stored texts, then rendered by the database, and check they agree."""
    stored = scim.get(f"/Users/{user_id}").get_json()
    forget_stored_renderings(storage, [user_id])
    by_database = scim.get(f"/Users/{user_id}").get_json()
    _same(stored, by_database)
    return stored


def test_every_write_stores_the_rendering_of_the_version_it_writes(scim, storage):
    created = scim.create_user("zoë@example.com", **RICH)
    row = _assert_stored_for_current_version(storage, created["id"])
    assert row.version == 1 and row.rendered_enterprise is not None
    _same(_read_both_ways(scim, storage, created["id"]), {**created, "groups": []})

    replaced = scim.put(f"/Users/{created['id']}", {"userName": "zoë@example.com", "displayName": "Zoë",
                                                     "emails": [{"value": "new@example.com"}]})
    assert replaced.status_code == 200
    row = _assert_stored_for_current_version(storage, created["id"])
    assert row.version == 2 and row.rendered_enterprise is None
    assert _read_both_ways(scim, storage, created["id"])["emails"] == [{"value": "new@example.com"}]

    patched = scim.patch(f"/Users/{created['id']}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "active", "value": False},
        {"op": "add", "path": f"{ENTERPRISE}:department", "value": "Ops"}]})
    assert patched.status_code == 200
    row = _assert_stored_for_current_version(storage, created["id"])
    assert row.version == 3 and json.loads(row.rendered_enterprise) == {"department": "Ops"}
    read = _read_both_ways(scim, storage, created["id"])
    assert read["active"] is False and read[ENTERPRISE] == {"department": "Ops"}
    _same(read, patched.get_json())


def test_a_patch_that_changes_nothing_keeps_the_stored_rendering(scim, storage):
    user = scim.create_user("same@example.com", displayName="Same")
    before = _assert_stored_for_current_version(storage, user["id"])
    response = scim.patch(f"/Users/{user['id']}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "displayName", "value": "Same"}]})
    assert response.status_code == 200
    after = _assert_stored_for_current_version(storage, user["id"])
    assert (after.version, after.rendered) == (before.version, before.rendered)


def test_bulk_creates_store_their_rendering(scim, storage):
    operations = [{"method": "POST", "path": "/Users", "bulkId": f"u{n}",
                   "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                            "userName": f"bulk{n}@example.com",
                            "emails": [{"value": f"bulk{n}@example.com", "primary": True}]}} for n in range(3)]
    response = bulk(scim, operations)
    assert response.status_code == 200, response.get_json()
    for result in response.get_json()["Operations"]:
        user_id = result["location"].rsplit("/", 1)[1]
        _assert_stored_for_current_version(storage, user_id)
        assert _read_both_ways(scim, storage, user_id)["emails"] == [
            {"value": f"bulk{result['bulkId'][1:]}@example.com", "primary": True}]


def _plant(storage, user_id: str, **values: Any) -> None:
    with storage.sessionmaker() as session, session.begin():
        session.execute(update(User).where(User.id == uuid.UUID(user_id)).values(**values))


def test_reads_use_the_stored_texts(scim, storage):
    user = scim.create_user("plain@example.com")
    # A marker no rendering of the columns would make: only a read of the stored text shows it.
    _plant(storage, user["id"], rendered=',"userName":"plain@example.com","displayName":"from the stored text"')
    assert scim.get(f"/Users/{user['id']}").get_json()["displayName"] == "from the stored text"
    listed = scim.get('/Users?filter=userName eq "plain@example.com"').get_json()["Resources"]
    assert listed[0]["displayName"] == "from the stored text"
    page = scim.get("/Users?count=100").get_json()["Resources"]
    assert next(r for r in page if r["id"] == user["id"])["displayName"] == "from the stored text"


@pytest.mark.parametrize("stale", [
    # A write that changed the row without storing its rendering (the version moved on).
    {"display_name": "Changed in SQL", "version": 2},
    # Texts of another format (an older release): never read, whatever they say.
    {"display_name": "Changed in SQL", "rendered_format": user_json.RENDERED_FORMAT + 1},
])
def test_a_stale_stored_rendering_is_never_served(scim, storage, stale):
    user = scim.create_user("stale@example.com", displayName="Before")
    _plant(storage, user["id"], **stale)
    single = scim.get(f"/Users/{user['id']}").get_json()
    assert single["displayName"] == "Changed in SQL"
    page = scim.get("/Users?count=100").get_json()["Resources"]
    _same(next(r for r in page if r["id"] == user["id"]), single)
    python = scim.get(f"/Users/{user['id']}?excludedAttributes=password").get_json()
    _same(single, python)


def test_the_stored_texts_are_pinned():
    # What a stored rendering holds is a format: if this changes, bump user_json.RENDERED_FORMAT so
    # that rows written by the previous code are rendered by the database instead of served as stored.
    user = User(id=uuid.UUID(int=1), tenant_id=uuid.UUID(int=2), user_name="pin@example.com",
                user_name_key="pin@example.com", external_id="ext-1", display_name="Pin \"Ü\"", active=True,
                name_given_name="Pin", name_family_name="Ned", department="R&D", manager_value="boss",
                manager_display_name="The Boss", iam_org_id="ORG-1", version=1,
                created=datetime(2026, 1, 1, tzinfo=UTC), last_modified=datetime(2026, 1, 2, tzinfo=UTC))
    values = [UserValue(attribute="emails", position=1, value="b@example.com", type="home"),
              UserValue(attribute="emails", position=0, value="a@example.com", type="work", primary=True),
              UserValue(attribute="addresses", position=0, locality="Köln", country="DE")]
    rendered, enterprise = user_json.stored_rendering(user, values)
    assert rendered == (',"userName":"pin@example.com","externalId":"ext-1","displayName":"Pin \\"Ü\\""'
                        ',"active":true,"name":{"familyName":"Ned","givenName":"Pin"}'
                        ',"addresses":[{"locality":"Köln","country":"DE"}]'
                        ',"emails":[{"value":"a@example.com","type":"work","primary":true},'
                        '{"value":"b@example.com","type":"home"}]')
    assert enterprise == '{"department":"R&D","manager":{"value":"boss"}}'
    assert user_json.RENDERED_FORMAT == 1


def test_users_written_before_the_stored_rendering_are_rendered_by_the_database(scim, storage):
    user = scim.create_user("old@example.com", **RICH)
    with storage.sessionmaker() as session, session.begin():
        session.execute(update(User).where(User.id == uuid.UUID(user["id"])).values(
            rendered=None, rendered_enterprise=None, rendered_version=None, rendered_format=None))
    single = scim.get(f"/Users/{user['id']}").get_json()
    _same(single, {**user, "groups": []})
    with storage.sessionmaker() as session:  # reads write nothing
        assert session.scalar(select(User.rendered).where(User.id == uuid.UUID(user["id"]))) is None


@pytest.mark.parametrize("attrs", [RICH, ODD, {}], ids=["rich", "odd", "bare"])
def test_a_create_answers_with_its_stored_rendering_as_python_renders_it(scim, attrs):
    created = scim.post("/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                   "userName": "new@example.com", **attrs})
    assert created.status_code == 201
    python = scim.get(f"/Users/{created.get_json()['id']}?excludedAttributes=password").get_json()
    _same(created.get_json(), python)
    assert created.headers["ETag"] == 'W/"1"' and created.headers["Location"] == python["meta"]["location"]
    # A projection asked for on the create is applied as before (rendered in Python).
    projected = scim.post("/Users?attributes=userName", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                                         "userName": "projected@example.com", **attrs})
    assert set(projected.get_json()) == {"schemas", "id", "userName"}
