"""Group membership at scale, on every backend.

* A PATCH that adds or removes one member costs the same SQL statements on a group of 10 members
  and on one of 10,000 (members are never loaded; each change is O(changed members)).
* A group of 100,000 members stays usable through HTTP (PATCH add/remove, GET and filter without
  members). Durations are printed (``-s``) and recorded as junit properties, not asserted.
* Concurrent PATCHes against one group through a real gunicorn (3 workers) lose nothing: every
  add lands and ``meta.version`` counts every change.

Big groups are seeded with Core ``executemany`` inserts, never through HTTP.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import Engine
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import text

from scim_bridge.storage.models import GroupMember
from scim_bridge.storage.models import User
from scim_bridge.storage.session import Storage
from tests.conftest import LiveServer
from tests.conftest import ScimClient
from tests.conftest import new_tenant
from tests.conftest import new_token
from tests.functional.replay import PATCH_OP
from tests.functional.replay import assert_list_response
from tests.functional.replay import patch_body

BATCH = 10_000


# --- seeding --------------------------------------------------------------------------------------------


def seed_users(storage: Storage, tenant_id: uuid.UUID, count: int, prefix: str) -> list[uuid.UUID]:
    """Insert *count* bare users with Core executemany, in batches; return their ids."""
    now = datetime.now(UTC)
    ids = [uuid.uuid4() for _ in range(count)]
    with storage.engine.begin() as conn:
        for start in range(0, count, BATCH):
            conn.execute(insert(User.__table__), [
                {"id": uid, "tenant_id": tenant_id, "user_name": f"{prefix}{start + n}@scale.test",
                 "user_name_key": f"{prefix}{start + n}@scale.test", "active": True, "version": 1,
                 "created": now, "last_modified": now}
                for n, uid in enumerate(ids[start:start + BATCH])])
    analyze(storage, "users")
    return ids


def analyze(storage: Storage, table: str) -> None:
    """Refresh PostgreSQL's statistics after a bulk load, as any bulk loader must.

    Without it the planner keeps the empty-table estimates until autovacuum comes by, and plans the
    foreign-key check of every ``group_members`` row against ``users`` as a scan of the whole
    ``ix_users_tenant_created`` index: seeding 100,000 members then took ~400 s instead of ~5 s.
    """
    if storage.engine.dialect.name == "postgresql":
        with storage.engine.connect() as conn:
            conn.execute(text(f"ANALYZE {table}"))
            conn.commit()


def seed_members(storage: Storage, tenant_id: uuid.UUID, group_id: str, user_ids: list[uuid.UUID]) -> None:
    """Make *user_ids* members of the group with Core executemany (the group's version is left alone)."""
    now = datetime.now(UTC)
    gid = uuid.UUID(group_id)
    with storage.engine.begin() as conn:
        for start in range(0, len(user_ids), BATCH):
            conn.execute(insert(GroupMember.__table__), [
                {"tenant_id": tenant_id, "group_id": gid, "user_id": uid, "created": now}
                for uid in user_ids[start:start + BATCH]])
    analyze(storage, "group_members")


def count_members(storage: Storage, group_id: str) -> int:
    """Count the membership rows of a group in SQL."""
    with storage.sessionmaker() as session:
        stmt = select(func.count()).select_from(GroupMember).where(GroupMember.group_id == uuid.UUID(group_id))
        return int(session.scalar(stmt) or 0)


def tenant_client(app: Flask, storage: Storage) -> tuple[uuid.UUID, ScimClient]:
    """Return a fresh tenant and a SCIM test client for it."""
    tenant = new_tenant(storage)
    return tenant.id, ScimClient(app.test_client(), new_token(storage, tenant))


# --- statement counting ----------------------------------------------------------------------------------


@dataclass
class Capture:
    """SQL statements seen during a block, and how many rows each SELECT returned (-1: unknown)."""

    statements: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        """Return the rows returned by SELECTs, where the driver reports it (psycopg; not sqlite3)."""
        return sum(n for s, n in zip(self.statements, self.rows, strict=True) if s.startswith("SELECT") and n > 0)

    def member_reads(self) -> list[str]:
        """Return the statements that read membership rows."""
        return [s for s in self.statements if s.startswith("SELECT") and "group_members" in s]


@contextmanager
def capture(engine: Engine) -> Iterator[Capture]:
    """Collect the SQL statements sent through *engine* (``after_cursor_execute``).

    The rate limiter's statements are left out, with the transaction they open: they are per
    request, not per group, but the limiter writes in batches (every 1% of the limit) and prunes
    old counters at random (1 % of new windows), which would make counts flaky.
    """
    seen = Capture()

    def record(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if "rate_limit_counters" in statement:
            if seen.statements and seen.statements[-1] == "BEGIN IMMEDIATE":  # the counter's own transaction
                seen.statements.pop()
                seen.rows.pop()
            return
        seen.statements.append(" ".join(statement.split()))
        seen.rows.append(cursor.rowcount if isinstance(cursor.rowcount, int) else -1)

    event.listen(engine, "after_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "after_cursor_execute", record)


@pytest.fixture(scope="module")
def sized_groups(app: Flask, storage: Storage) -> dict[int, dict[str, Any]]:
    """Return, per size (10 and 10,000), a group of that many members plus users who are not members."""
    tenant_id, scim = tenant_client(app, storage)
    groups: dict[int, dict[str, Any]] = {}
    for size in (10, 10_000):
        group = scim.create_group(f"sized-{size}")
        seeded = seed_users(storage, tenant_id, size + 10, f"s{size}-")
        seed_members(storage, tenant_id, group["id"], seeded[:size])
        groups[size] = {"id": group["id"], "members": [str(u) for u in seeded[:size]],
                        "outsiders": [str(u) for u in seeded[size:]], "scim": scim}
    assert count_members(storage, groups[10_000]["id"]) == 10_000
    return groups


MINIMAL = ({"Prefer": "return=minimal"}, "")
EXCLUDED = ({}, "?excludedAttributes=members")


@pytest.mark.slow
@pytest.mark.parametrize("response_form", [MINIMAL, EXCLUDED], ids=["prefer-minimal", "excluded-members"])
@pytest.mark.parametrize("change", ["add", "remove-by-filter", "remove-by-value"])
def test_statement_count_does_not_depend_on_group_size(sized_groups, engine, change, response_form):
    """Adding or removing one member sends the same statements at 10 and 10,000 members.

    On PostgreSQL the rows returned by every SELECT are counted too, and must not grow with the
    group either (so no statement reads the whole membership).
    """
    headers, query = response_form
    captured: dict[int, Capture] = {}
    for size, group in sized_groups.items():
        if change == "add":
            user = group["outsiders"].pop()
            body = patch_body({"op": "add", "path": "members", "value": [{"value": user}]})
        elif change == "remove-by-filter":
            user = group["members"].pop()
            body = patch_body({"op": "remove", "path": f'members[value eq "{user}"]'})
        else:
            user = group["members"].pop()
            body = patch_body({"op": "Remove", "path": "members", "value": [{"$ref": None, "value": user}]})
        with capture(engine) as seen:
            response = group["scim"].patch(f"/Groups/{group['id']}{query}", body, headers=headers)
        assert response.status_code == (204 if headers else 200), response.get_data(as_text=True)
        assert "members" not in (response.get_json() or {})
        captured[size] = seen
    small, big = captured[10], captured[10_000]
    print(f"\n{change} ({query or 'Prefer: return=minimal'}): {len(small.statements)} statements at 10 members, "
          f"{len(big.statements)} at 10,000; rows read {small.rows_read} / {big.rows_read}")
    assert len(small.statements) == len(big.statements), "\n".join(
        f"{a!r}\n  vs {b!r}" for a, b in zip(small.statements, big.statements, strict=False))
    assert small.statements == big.statements
    assert small.rows_read == big.rows_read


@pytest.mark.slow
def test_full_response_reads_members_once(sized_groups, engine, storage):
    """Asked for the whole group, the PATCH response lists every member, read with exactly one more query.

    A group PATCH answers 204 by default; ``Prefer: return=representation`` (RFC 7240) asks for the
    group, members included, without a projection.
    """
    for group in sized_groups.values():
        excluded_user, full_user = group["outsiders"].pop(), group["outsiders"].pop()
        with capture(engine) as excluded:
            response = group["scim"].patch(f"/Groups/{group['id']}?excludedAttributes=members", patch_body(
                {"op": "add", "path": "members", "value": [{"value": excluded_user}]}))
        assert response.status_code == 200 and "members" not in response.get_json()
        with capture(engine) as full:
            response = group["scim"].patch(f"/Groups/{group['id']}", patch_body(
                {"op": "add", "path": "members", "value": [{"value": full_user}]}),
                headers={"Prefer": "return=representation"})
        assert response.status_code == 200
        rendered = {m["value"] for m in response.get_json()["members"]}
        assert {excluded_user, full_user} <= rendered
        assert len(rendered) == count_members(storage, group["id"])
        assert excluded.member_reads() == []
        assert len(full.member_reads()) == 1, full.member_reads()
        assert len(full.statements) == len(excluded.statements) + 1


# --- 100,000 members ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_group_of_100k_members(app, storage, record_property):
    """Seed 100,000 users in one group; add, remove and read it through HTTP without PUT."""
    timings: dict[str, float] = {}

    @contextmanager
    def timed(name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        timings[name] = round(time.perf_counter() - started, 3)

    tenant_id, scim = tenant_client(app, storage)
    group = scim.create_group("Everyone 100k")
    with timed("seed 100k users"):
        user_ids = seed_users(storage, tenant_id, 100_002, "big-")
    with timed("seed 100k memberships"):
        seed_members(storage, tenant_id, group["id"], user_ids[:100_000])
    newcomer, leaver, outsider = str(user_ids[100_000]), str(user_ids[0]), str(user_ids[100_001])
    path = f"/Groups/{group['id']}"

    with timed("PATCH add (excludedAttributes=members)"):
        response = scim.patch(f"{path}?excludedAttributes=members", patch_body(
            {"op": "add", "path": "members", "value": [{"value": newcomer}]}))
    assert response.status_code == 200 and "members" not in response.get_json()
    assert response.get_json()["meta"]["version"] == 'W/"2"'

    with timed("PATCH remove by filter (Prefer: return=minimal)"):
        response = scim.patch(path, patch_body({"op": "remove", "path": f'members[value eq "{leaver}"]'}),
                              headers={"Prefer": "return=minimal"})
    assert response.status_code == 204 and response.headers["ETag"] == 'W/"3"'

    with timed("PATCH Entra add+remove by value (Prefer: return=minimal)"):
        response = scim.patch(path, patch_body(
            {"op": "Add", "path": "members", "value": [{"$ref": None, "value": outsider}]},
            {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": str(user_ids[1])}]}),
            headers={"Prefer": "return=minimal"})
    assert response.status_code == 204 and response.headers["ETag"] == 'W/"4"'

    with timed("PATCH rename (excludedAttributes=members)"):
        response = scim.patch(f"{path}?excludedAttributes=members", patch_body(
            {"op": "replace", "path": "displayName", "value": "Everyone 100k"}))
    assert response.status_code == 200 and response.get_json()["meta"]["version"] == 'W/"4"'  # no change

    with timed("GET excludedAttributes=members"):
        response = scim.get(f"{path}?excludedAttributes=members")
    assert response.status_code == 200 and "members" not in response.get_json()
    assert response.get_json()["displayName"] == "Everyone 100k"

    with timed("GET filter displayName, excludedAttributes=members"):
        response = scim.get('/Groups?filter=displayName eq "everyone 100K"&excludedAttributes=members')
    (found,) = assert_list_response(response, 1)
    assert found["id"] == group["id"] and "members" not in found

    with timed("GET user (groups of one member)"):
        response = scim.get(f"/Users/{newcomer}")
    assert [g["value"] for g in response.get_json()["groups"]] == [group["id"]]

    with timed("GET full group (100k members rendered)"):
        response = scim.get(path)
    members = {m["value"] for m in response.get_json()["members"]}
    assert len(members) == 100_000 and newcomer in members and outsider in members
    assert leaver not in members and str(user_ids[1]) not in members
    assert count_members(storage, group["id"]) == 100_000

    backend = storage.engine.dialect.name
    print(f"\n100k members on {backend}:")
    for name, seconds in timings.items():
        print(f"  {name:<58} {seconds:8.3f} s")
        record_property(f"{backend}: {name}", seconds)


# --- concurrency through gunicorn --------------------------------------------------------------------------


class HttpScim:
    """A minimal keep-alive SCIM client over ``http.client`` for one thread."""

    def __init__(self, base_url: str, token: str) -> None:
        parts = urlsplit(base_url)
        self._conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/scim+json",
                         "Content-Type": "application/scim+json"}

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        """Send one request and read the whole response (the connection reopens if the server closed it)."""
        data = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):
            try:
                self._conn.request(method, "/scim/v2" + path, body=data, headers={**self._headers, **(headers or {})})
                response = self._conn.getresponse()
                raw = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server may close a kept-alive connection between requests: retry once on a new
                # one. Member adds/removes are idempotent, so even a replayed request changes nothing.
                self._conn.close()
                if attempt == 2:
                    raise
        return response.status, dict(response.getheaders()), json.loads(raw) if raw else None

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


def run_threads(workers: list[Callable[[], None]]) -> list[BaseException]:
    """Start every worker at once (behind a barrier); return the exceptions they raised."""
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def wrap(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                barrier.wait()
                work()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)
        return run

    threads = [threading.Thread(target=wrap(w)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    return errors


@pytest.fixture
def live_tenant(live_server: LiveServer, storage: Storage) -> tuple[uuid.UUID, str]:
    """Return a tenant and a token for requests to the live server."""
    tenant = new_tenant(storage)
    return tenant.id, new_token(storage, tenant)


THREADS, PER_THREAD = 8, 25


@pytest.mark.slow
def test_concurrent_adds_lose_nothing(live_server, live_tenant, storage):
    """8 threads × 25 PATCH-adds (distinct users) on one group: 200 members, version 1 + 200."""
    tenant_id, token = live_tenant
    setup = HttpScim(live_server.url, token)
    status, _headers, group = setup.request("POST", "/Groups", {"displayName": "Contended", "members": []})
    assert status == 201, group
    users = [str(u) for u in seed_users(storage, tenant_id, THREADS * PER_THREAD, "conc-")]
    statuses: list[int] = []

    def worker(index: int) -> Callable[[], None]:
        def work() -> None:
            client = HttpScim(live_server.url, token)
            # Half the threads answer like Entra wants (204), half return the group without members.
            headers, query = ({"Prefer": "return=minimal"}, "") if index % 2 else ({}, "?excludedAttributes=members")
            try:
                for user in users[index * PER_THREAD:(index + 1) * PER_THREAD]:
                    status, _h, body = client.request("PATCH", f"/Groups/{group['id']}{query}", patch_body(
                        {"op": "add", "path": "members", "value": [{"value": user}]}), headers)
                    statuses.append(status)
                    assert status in (200, 204), (status, body)
            finally:
                client.close()
        return work

    started = time.perf_counter()
    errors = run_threads([worker(i) for i in range(THREADS)])
    elapsed = time.perf_counter() - started
    assert not errors, errors[:3]
    assert len(statuses) == THREADS * PER_THREAD
    status, _headers, final = setup.request("GET", f"/Groups/{group['id']}")
    setup.close()
    assert status == 200
    assert {m["value"] for m in final["members"]} == set(users)
    assert len(final["members"]) == THREADS * PER_THREAD
    assert final["meta"]["version"] == f'W/"{1 + THREADS * PER_THREAD}"'
    print(f"\n{storage.engine.dialect.name}: {THREADS}x{PER_THREAD} concurrent PATCH-adds in {elapsed:.2f} s "
          f"({THREADS * PER_THREAD / elapsed:.0f} req/s); final version {final['meta']['version']}")


@pytest.mark.slow
def test_concurrent_adds_and_removes_stay_consistent(live_server, live_tenant, storage):
    """Concurrent adds and removes on disjoint users end with exactly the expected members and version."""
    tenant_id, token = live_tenant
    kept, leaving, joining = (
        [str(u) for u in seed_users(storage, tenant_id, n, f"mix{k}-")] for k, n in ((0, 20), (1, 100), (2, 100)))
    setup = HttpScim(live_server.url, token)
    status, _headers, group = setup.request("POST", "/Groups", {"displayName": "Mixed", "members": [
        {"value": u} for u in kept + leaving]})
    assert status == 201, group
    path = f"/Groups/{group['id']}"

    def worker(index: int) -> Callable[[], None]:
        # Even threads add 25 users each; odd threads remove 25 (by filter, Okta-style, or by value, Entra-style).
        chunk = slice((index // 2) * 25, (index // 2 + 1) * 25)

        def work() -> None:
            client = HttpScim(live_server.url, token)
            try:
                for user in (joining if index % 2 == 0 else leaving)[chunk]:
                    if index % 2 == 0:
                        op = {"op": "add", "path": "members", "value": [{"value": user}]}
                    elif index % 4 == 1:
                        op = {"op": "remove", "path": f'members[value eq "{user}"]'}
                    else:
                        op = {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": user}]}
                    status, _h, body = client.request("PATCH", path, {"schemas": [PATCH_OP], "Operations": [op]},
                                                      {"Prefer": "return=minimal"})
                    assert status == 204, (status, body)
            finally:
                client.close()
        return work

    errors = run_threads([worker(i) for i in range(8)])
    assert not errors, errors[:3]
    status, _headers, final = setup.request("GET", path)
    setup.close()
    assert status == 200
    assert {m["value"] for m in final["members"]} == set(kept) | set(joining)
    assert final["meta"]["version"] == f'W/"{1 + 200}"'
