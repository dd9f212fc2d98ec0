"""With org mapping on, a PATCH that adds or removes one member still costs the same statements on a
mapped group of 10 members and on one of 10,000: org memberships, roles and events are recomputed
only for the user the change touched.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy import insert
from sqlalchemy import text

from scim_bridge.storage.models import GroupMember
from scim_bridge.storage.models import User
from tests.functional.orgs_support import INF_USER
from tests.functional.orgs_support import PATCH_OP

SIZES = (10, 10_000)


def seed(storage, tenant_id: uuid.UUID, group_id: str, count: int, prefix: str) -> list[str]:
    """Insert *count* users and make them members of the group with Core executemany."""
    now = datetime.now(UTC)
    ids = [uuid.uuid4() for _ in range(count)]
    with storage.engine.begin() as conn:
        conn.execute(insert(User.__table__), [
            {"id": uid, "tenant_id": tenant_id, "user_name": f"{prefix}{n}", "user_name_key": f"{prefix}{n}",
             "active": True, "version": 1, "created": now, "last_modified": now} for n, uid in enumerate(ids)])
        conn.execute(insert(GroupMember.__table__), [
            {"tenant_id": tenant_id, "group_id": uuid.UUID(group_id), "user_id": uid, "created": now} for uid in ids])
    if storage.engine.dialect.name == "postgresql":
        with storage.engine.connect() as conn:
            conn.execute(text("ANALYZE users"))
            conn.execute(text("ANALYZE group_members"))
            conn.commit()
    return [str(uid) for uid in ids]


@contextmanager
def capture(engine) -> Iterator[list[str]]:
    """Collect the statements sent through *engine* (the rate limiter's left out, with the transaction
    they open: it writes in batches and prunes at random)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "rate_limit_counters" in statement:
            if seen and seen[-1] == "BEGIN IMMEDIATE":
                seen.pop()
            return
        seen.append(" ".join(statement.split()))

    event.listen(engine, "after_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "after_cursor_execute", record)


@pytest.fixture(scope="module")
def mapped_groups(orgs_app, storage):
    """Per size, a mapped group (an org) with that many members, a plain user outside it and a team."""
    from tests.conftest import ScimClient
    from tests.conftest import new_tenant
    from tests.conftest import new_token

    tenant = new_tenant(storage, profile="t-link")
    scim = ScimClient(orgs_app.test_client(), new_token(storage, tenant))
    groups = {}
    for size in SIZES:
        group = scim.create_group(f"mapped-{size}", externalId=f"ORG-{size}")
        members = seed(storage, tenant.id, group["id"], size, f"m{size}-")
        outsiders = [scim.create_user(f"out{size}-{n}")["id"] for n in range(3)]
        team = scim.create_group(f"team-{size}", [scim.create_user(f"team{size}")["id"]])
        groups[size] = {"id": group["id"], "members": members, "outsiders": outsiders, "team": team["id"],
                        "scim": scim}
    return groups


def patch(group: dict[str, Any], operation: dict[str, Any]) -> Any:
    return group["scim"].patch(f"/Groups/{group['id']}", {"schemas": [PATCH_OP], "Operations": [operation]},
                               headers={"Prefer": "return=minimal"})


CHANGES = {
    "add-user": lambda g: {"op": "add", "path": "members", "value": [{"value": g["outsiders"].pop()}]},
    "remove-by-filter": lambda g: {"op": "remove", "path": f'members[value eq "{g["members"].pop()}"]'},
    "remove-by-value": lambda g: {"op": "Remove", "path": "members", "value": [{"value": g["members"].pop()}]},
    "add-nested-group": lambda g: {"op": "add", "path": "members", "value": [{"value": g["team"]}]},
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_statement_count_with_mapping(mapped_groups, engine, change):
    captured = {}
    for size, group in mapped_groups.items():
        with capture(engine) as seen:
            response = patch(group, CHANGES[change](group))
        assert response.status_code == 204, response.get_data(as_text=True)
        captured[size] = seen
    small, big = captured[SIZES[0]], captured[SIZES[1]]
    assert any("org_memberships" in s for s in small), "the org sync ran"
    assert any("INSERT INTO events" in s for s in small), "events were appended"
    assert len(small) == len(big), "\n".join(f"{a!r}\n  vs {b!r}" for a, b in zip(small, big, strict=False))
    assert small == big


def test_the_touched_user_got_the_org(mapped_groups):
    group = mapped_groups[SIZES[1]]
    user = group["outsiders"][0]
    patch(group, {"op": "add", "path": "members", "value": [{"value": user}]})
    body = group["scim"].get(f"/Users/{user}?attributes={INF_USER}").get_json()
    assert f"ORG-{SIZES[1]}" in body[INF_USER]["orgIds"]


def _request(base: str, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    import json
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}/scim/v2{path}", data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.mark.slow
def test_concurrent_single_mode_adds_end_with_one_org(live_server, storage):
    """8 workers add the same user to 8 org groups at once (okta: single mode): one org wins, none leaks."""
    import threading

    from tests.conftest import new_tenant
    from tests.conftest import new_token

    token = new_token(storage, new_tenant(storage, profile="okta"))
    status, user = _request(live_server.url, token, "POST", "/Users", {"userName": "race@x.test"})
    assert status == 201
    groups = []
    for n in range(8):
        status, group = _request(live_server.url, token, "POST", "/Groups", {"displayName": f"ORG-{n + 1} Race {n}"})
        assert status == 201
        groups.append(group["id"])
    errors: list[Any] = []

    def add(group_id: str) -> None:
        status, body = _request(live_server.url, token, "PATCH", f"/Groups/{group_id}?excludedAttributes=members", {
            "schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": [{"value": user["id"]}]}]})
        if status != 200:
            errors.append((status, body))

    threads = [threading.Thread(target=add, args=(gid,)) for gid in groups]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    status, body = _request(live_server.url, token, "GET", f"/Users/{user['id']}?attributes={INF_USER}")
    view = body[INF_USER]
    assert len(view["orgIds"]) == 1 and view["orgId"] == view["orgIds"][0] and view["primaryOrgConflict"] is True


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_membership_patch_builds_none_of_its_statements(mapped_groups, monkeypatch, change):
    # The membership change and the org sync run statements built once at import (parameters
    # bound per call): building them per request (aliases, recursive CTEs, their column
    # proxies) cost about half of a group PATCH's CPU.
    import scim_bridge.storage.repositories.common as common_module
    import scim_bridge.storage.repositories.groups as groups_module
    import scim_bridge.storage.repositories.orgs as orgs_module
    import scim_bridge.storage.repositories.users as users_module

    group = mapped_groups[SIZES[0]]
    operation = CHANGES[change](group)
    patch(group, {"op": "replace", "path": "displayName", "value": f"warm-{change}"})  # per-dialect caches

    def built(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a statement was built during the request")

    for module in (groups_module, orgs_module, users_module, common_module):
        for name in ("select", "aliased", "delete", "insert", "update"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, built)
    response = patch(group, operation)
    assert response.status_code == 204, response.get_data(as_text=True)
