"""A group PATCH that adds or removes one member takes the group's write lock last.

IdPs push membership one member at a time, many requests in a row to the same group. Holding
the group ``FOR UPDATE`` from its read to COMMIT serialized them on that row across a dozen round
trips; now such a PATCH reads the group ``FOR KEY SHARE``, changes the membership, runs the org
sync and bumps the version last (``GroupService.patch``). These tests pin which PATCHes take which
path, the order of the statements that carry the locks, and that concurrent PATCHes of one group
(both kinds) lose nothing and never fail.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.functional.orgs_support import INF_USER
from tests.functional.orgs_support import PATCH_OP
from tests.functional.test_orgs_scale import capture


@pytest.fixture
def mapped(orgs_app, storage):
    """A group linked to an org (profile t-link), a member, and users outside it."""
    from tests.conftest import ScimClient
    from tests.conftest import new_tenant
    from tests.conftest import new_token

    scim = ScimClient(orgs_app.test_client(), new_token(storage, new_tenant(storage, profile="t-link")))
    inside = scim.create_user("inside")["id"]
    group = scim.create_group("mapped", [inside], externalId="ORG-LOCK")
    outside = [scim.create_user(f"out{n}")["id"] for n in range(3)]
    return {"scim": scim, "id": group["id"], "inside": inside, "outside": outside}


def _patch(mapped: dict[str, Any], *operations: dict[str, Any], **headers: str) -> Any:
    return mapped["scim"].patch(f"/Groups/{mapped['id']}", {"schemas": [PATCH_OP], "Operations": list(operations)},
                                headers=headers)


def _group_reads(seen: list[str]) -> list[str]:
    return [s for s in seen if "SELECT groups.id, groups.tenant_id, groups.display_name, groups.display_name_key" in s]


def _version(mapped: dict[str, Any]) -> int:
    etag = mapped["scim"].get(f"/Groups/{mapped['id']}?excludedAttributes=members").headers["ETag"]
    return int(etag.removeprefix('W/"').removesuffix('"'))


def test_a_one_member_add_locks_the_group_last(mapped, engine):
    with capture(engine) as seen:
        response = _patch(mapped, {"op": "add", "path": "members", "value": [{"value": mapped["outside"][0]}]})
    assert response.status_code == 204, response.get_data(as_text=True)
    reads = _group_reads(seen)
    assert len(reads) == 1
    if engine.dialect.name == "postgresql":
        assert reads[0].endswith("FOR KEY SHARE OF groups"), reads[0]
    # The org sync's walk up from the group ("does an org or a role hang above it?") is read along.
    assert [s for s in seen if "up_group" in s] == reads
    bump = next(i for i, s in enumerate(seen) if s.startswith("UPDATE groups SET version=(groups.version + "))
    sync = [i for i, s in enumerate(seen) if "org_memberships" in s or "user_org_state" in s]
    events = [i for i, s in enumerate(seen) if s.startswith("INSERT INTO events")]
    assert sync and events, seen
    # The group's write lock after the org sync, before the tenant's event lock (taken with the events).
    assert max(sync) < bump < min(events), seen
    assert response.headers["ETag"] == 'W/"2"'  # created with its member (1), this change (2)
    assert _version(mapped) == 2


def test_a_one_member_remove_reads_who_went_from_its_delete(mapped, engine):
    with capture(engine) as seen:
        response = _patch(mapped, {"op": "remove", "path": f'members[value eq "{mapped["inside"]}"]'})
    assert response.status_code == 204, response.get_data(as_text=True)
    delete = [s for s in seen if s.startswith("DELETE FROM group_members")]
    assert len(delete) == 1 and delete[0].split(" RETURNING ")[1].replace("group_members.", "") == (
        "user_id, member_group_id"), delete
    assert not [s for s in seen if s.startswith("SELECT group_members.user_id, group_members.member_group_id")]
    body = mapped["scim"].get(f"/Users/{mapped['inside']}?attributes={INF_USER}").get_json()
    assert "ORG-LOCK" not in body[INF_USER].get("orgIds", []), "the org sync saw the member go"


def test_adding_a_member_twice_changes_nothing(mapped):
    user = mapped["outside"][0]
    assert _patch(mapped, {"op": "add", "path": "members", "value": [{"value": user}]}).status_code == 204
    again = _patch(mapped, {"op": "add", "path": "members", "value": [{"value": user}]})
    assert again.status_code == 204 and again.headers["ETag"] == 'W/"2"'


@pytest.mark.parametrize("case", ["rename", "If-Match", "two members", "replace members", "remove all"])
def test_other_patches_lock_the_group_first(mapped, engine, case):
    a, b = mapped["outside"][:2]
    operations, headers = {
        "rename": ([{"op": "replace", "path": "displayName", "value": "renamed"}], {}),
        "If-Match": ([{"op": "add", "path": "members", "value": [{"value": a}]}], {"If-Match": 'W/"1"'}),
        "two members": ([{"op": "add", "path": "members", "value": [{"value": a}, {"value": b}]}], {}),
        "replace members": ([{"op": "replace", "path": "members", "value": [{"value": a}]}], {}),
        "remove all": ([{"op": "remove", "path": "members"}], {}),
    }[case]
    with capture(engine) as seen:
        response = _patch(mapped, *operations, **headers)
    assert response.status_code == 204, response.get_data(as_text=True)
    reads = _group_reads(seen)
    if engine.dialect.name == "postgresql":
        assert reads[0].endswith("FOR UPDATE"), reads[0]
    assert not [s for s in seen if s.startswith("UPDATE groups SET version=(groups.version + ")]
    assert _version(mapped) == 2


def test_a_one_member_add_still_refuses_what_it_refused(mapped):
    group_id = mapped["id"]
    cases = [
        ([{"value": group_id}], "itself"),
        ([{"value": "2819c223-7f76-453a-919d-413861904646"}], "unknown member"),
        ([{"value": "not-a-uuid"}], "unknown member"),
        ([{"value": mapped["outside"][0], "type": "Group"}], "unknown member"),
    ]
    for value, words in cases:
        response = _patch(mapped, {"op": "add", "path": "members", "value": value})
        assert response.status_code == 400, response.get_data(as_text=True)
        assert words in response.get_json()["detail"]
    assert _version(mapped) == 1


def test_a_one_member_add_of_a_group_nests_it(mapped):
    scim = mapped["scim"]
    team = scim.create_group("team", [mapped["outside"][1]])
    response = _patch(mapped, {"op": "add", "path": "members", "value": [{"value": team["id"]}]})
    assert response.status_code == 204, response.get_data(as_text=True)
    body = scim.get(f"/Groups/{mapped['id']}").get_json()
    assert {"value": team["id"], "type": "Group"}.items() <= next(
        m for m in body["members"] if m["value"] == team["id"]).items()
    assert "ORG-LOCK" in scim.get(f"/Users/{mapped['outside'][1]}?attributes={INF_USER}").get_json()[INF_USER][
        "orgIds"], "the nested group's member reached the org"
    cycle = scim.patch(f"/Groups/{team['id']}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": mapped["id"]}]}]})
    assert cycle.status_code == 400 and "cycle" in cycle.get_json()["detail"]


def _request(base: str, token: str, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}/scim/v2{path}", data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/scim+json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), dict(exc.headers)


@pytest.mark.slow
def test_concurrent_patches_of_one_group_lose_nothing(live_server, storage):
    """6 threads add and remove one member each time while 2 rename the group and 1 adds with If-Match:
    no error, every change counted in the version, membership and orgs exactly as applied."""
    from tests.conftest import new_tenant
    from tests.conftest import new_token

    base, token = live_server.url, new_token(storage, new_tenant(storage, profile="okta"))

    def call(method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any, dict[str, str]]:
        return _request(base, token, method, path, body, headers)

    users = []
    for n in range(40):
        status, user, _ = call("POST", "/Users", {"userName": f"race{n}@x.test"})
        assert status == 201
        users.append(user["id"])
    initial = users[:20]
    status, group, _ = call("POST", "/Groups", {"displayName": "ORG-77 Lock race",
                                                "members": [{"value": u} for u in initial]})
    assert status == 201
    path = f"/Groups/{group['id']}"
    errors: list[Any] = []
    changes = [0]
    lock = threading.Lock()

    def record(status: int, body: Any, changed: bool) -> None:
        with lock:
            if status not in (200, 204):
                errors.append((status, body))
            elif changed:
                changes[0] += 1

    def members(worker: int) -> None:
        # Worker w removes initial members w, w+6, … and adds outsiders w, w+6, … one at a time.
        for n in range(worker, 20, 6):
            status, body, _ = call("PATCH", path, {"schemas": [PATCH_OP], "Operations": [
                {"op": "remove", "path": f'members[value eq "{initial[n]}"]'}]})
            record(status, body, True)
            status, body, _ = call("PATCH", path, {"schemas": [PATCH_OP], "Operations": [
                {"op": "add", "path": "members", "value": [{"value": users[20 + n]}]}]})
            record(status, body, True)

    def renames(worker: int) -> None:
        for n in range(5):
            status, body, _ = call("PATCH", path, {"schemas": [PATCH_OP], "Operations": [
                {"op": "replace", "path": "displayName", "value": f"ORG-77 Lock race {worker}-{n}"}]})
            record(status, body, True)

    def conditional() -> None:
        # If-Match takes the FOR UPDATE path: retried on 412 until it wins once.
        for _ in range(50):
            status, _, headers = call("GET", f"{path}?excludedAttributes=members")
            status, body, _ = call("PATCH", path, {"schemas": [PATCH_OP], "Operations": [
                {"op": "replace", "path": "displayName", "value": "ORG-77 Lock race conditional"}]},
                **{"If-Match": headers["ETag"]})
            if status != 412:
                record(status, body, True)
                return
        errors.append("If-Match never won")

    threads = ([threading.Thread(target=members, args=(w,)) for w in range(6)]
               + [threading.Thread(target=renames, args=(w,)) for w in range(2)]
               + [threading.Thread(target=conditional)])
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    status, body, headers = call("GET", path)
    assert status == 200
    assert headers["ETag"] == f'W/"{1 + changes[0]}"', "every change bumped the version once"
    assert sorted(m["value"] for m in body.get("members", [])) == sorted(users[20:])
    for n, user in enumerate(users):
        status, body, _ = call("GET", f"/Users/{user}?attributes={INF_USER}")
        assert body[INF_USER].get("orgIds", []) == (["77"] if n >= 20 else []), (n, body)


def test_without_a_mapping_profile_the_version_is_bumped_all_the_same(scim, storage, tenant):
    # GroupService without a profile (no org sync): the one-member path bumps the version alone.
    import uuid as uuid_module

    from scim_bridge.domain.groups import GroupService

    user = scim.create_user("plain")["id"]
    group = scim.create_group("plain group")
    with storage.sessionmaker() as session, session.begin():
        written = GroupService(session, tenant.id, "http://localhost/scim/v2").patch(group["id"], {
            "schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": [{"value": user}]}]})
        assert written.version == 2 and written.id == uuid_module.UUID(group["id"])
    body = scim.get(f"/Groups/{group['id']}").get_json()
    assert [m["value"] for m in body["members"]] == [user] and body["meta"]["version"] == 'W/"2"'
