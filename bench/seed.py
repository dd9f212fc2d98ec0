"""Seed the service through its API: users (through /Bulk when it exists), plain groups, large groups.

Users go in batches of ~1,000 POST operations per /Bulk request (RFC 7644 §3.7) over several
connections; without /Bulk, one POST /Users per user over the same connections. Large groups are
created empty and then filled by PATCH ``add members`` in batches of ~5,000 values, asking for a
minimal answer so that no request renders the growing member list.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import as_completed
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from bench.api import BULK_SCHEMA
from bench.api import GROUP_SCHEMA
from bench.api import Api
from bench.api import endpoint_missing
from bench.api import patch_body
from bench.api import user_body

MINIMAL = {"Prefer": "return=minimal"}


@dataclass
class Capabilities:
    """Which endpoints under construction the service has."""

    bulk: bool
    bulk_max_operations: int
    bulk_max_payload: int
    oauth_token: bool


def probe(api: Api) -> Capabilities:
    """Find out whether /Bulk and /oauth/token exist (404/405 = missing) and /Bulk's limits."""
    config = api.scim("GET", "/ServiceProviderConfig").body or {}
    bulk_conf = config.get("bulk") or {}
    reply = api.scim("POST", "/Bulk", {"schemas": [BULK_SCHEMA], "Operations": []})
    bulk = not endpoint_missing(reply)
    token = not endpoint_missing(api.token_request("probe", "probe"))
    return Capabilities(bulk=bulk, bulk_max_operations=int(bulk_conf.get("maxOperations") or 1000),
                        bulk_max_payload=int(bulk_conf.get("maxPayloadSize") or 1_048_576), oauth_token=token)


@dataclass
class SeedReport:
    """What seeding did and how fast."""

    method: str
    users: int = 0
    user_errors: int = 0
    user_seconds: float = 0.0
    groups: int = 0
    group_seconds: float = 0.0
    big_groups: dict[int, dict[str, Any]] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON values."""
        return {
            "method": self.method, "users": self.users, "user_errors": self.user_errors,
            "user_seconds": round(self.user_seconds, 1),
            "users_per_second": round(self.users / self.user_seconds, 1) if self.user_seconds else None,
            "projected_minutes_for_1m_users": round(1_000_000 / (self.users / self.user_seconds) / 60, 1)
            if self.users and self.user_seconds else None,
            "groups": self.groups, "group_seconds": round(self.group_seconds, 1),
            "big_groups": {str(k): v for k, v in self.big_groups.items()},
            "error_samples": self.error_samples[:10],
        }


def _progress(label: str, done: int, total: int, started: float) -> None:
    elapsed = time.monotonic() - started
    rate = done / elapsed if elapsed else 0
    print(f"  {label}: {done:,}/{total:,} ({rate:,.0f}/s, {elapsed:,.0f} s)", file=sys.stderr, flush=True)


def seed_users(api: Api, count: int, caps: Capabilities, *, connections: int, batch: int,
               deadline: float, report: SeedReport,
               on_progress: Callable[[int], None] | None = None) -> list[str | None]:
    """Create users 0..count-1 and return their ids (``None`` where creation failed).

    *on_progress* is called with the number of users sent so far after each batch (in this thread).
    """
    ids: list[str | None] = [None] * count
    started = time.monotonic()
    if caps.bulk:
        # Keep each request under the advertised operation count and payload size (~400 bytes a user).
        size = max(1, min(batch, caps.bulk_max_operations, caps.bulk_max_payload // 600))
        chunks = [range(i, min(i + size, count)) for i in range(0, count, size)]
        work = _bulk_users
    else:
        chunks = [range(i, min(i + 50, count)) for i in range(0, count, 50)]
        work = _post_users
    done, last = 0, started
    with ThreadPoolExecutor(max_workers=connections) as pool:
        futures = [pool.submit(work, api, chunk, ids, deadline, report) for chunk in chunks]
        for future in as_completed(futures):
            done += future.result()
            if on_progress is not None:
                on_progress(done)
            if time.monotonic() - last > 10:
                last = time.monotonic()
                _progress("users", done, count, started)
    report.user_seconds = time.monotonic() - started
    report.users = sum(1 for i in ids if i is not None)
    report.user_errors = count - report.users
    _progress("users", report.users, count, started)
    return ids


def _bulk_users(api: Api, chunk: range, ids: list[str | None], deadline: float, report: SeedReport) -> int:
    if time.monotonic() > deadline:
        return 0
    operations = [{"method": "POST", "path": "/Users", "bulkId": f"u{i}", "data": user_body(i)} for i in chunk]
    reply = api.scim("POST", "/Bulk", {"schemas": [BULK_SCHEMA], "Operations": operations})
    if reply.status != 200 or not isinstance(reply.body, dict):
        report.error_samples.append(f"Bulk -> {reply.status}: {str(reply.body)[:200]}")
        return len(chunk)
    for op in reply.body.get("Operations") or []:
        bulk_id, status = str(op.get("bulkId") or ""), str(op.get("status") or "")
        location = op.get("location") or ""
        if bulk_id.startswith("u") and status.startswith("2") and location:
            ids[int(bulk_id[1:])] = location.rstrip("/").rsplit("/", 1)[-1]
        elif len(report.error_samples) < 10:
            report.error_samples.append(f"Bulk op {bulk_id} -> {status}: {str(op.get('response'))[:200]}")
    return len(chunk)


def _post_users(api: Api, chunk: range, ids: list[str | None], deadline: float, report: SeedReport) -> int:
    for i in chunk:
        if time.monotonic() > deadline:
            break
        reply = api.scim("POST", "/Users", user_body(i))
        if reply.status == 201:
            ids[i] = reply.body["id"]
        elif len(report.error_samples) < 10:
            report.error_samples.append(f"POST /Users {i} -> {reply.status}: {str(reply.body)[:200]}")
    return len(chunk)


def seed_plain_groups(api: Api, count: int, user_ids: list[str], *, members_each: int, connections: int,
                      deadline: float, report: SeedReport) -> list[str]:
    """Create *count* groups with a few random members each; return their ids."""
    started = time.monotonic()
    rng = random.Random(7)

    def create(j: int) -> str | None:
        if time.monotonic() > deadline:
            return None
        members = [{"value": m} for m in rng.sample(user_ids, min(members_each, len(user_ids)))]
        body = {"schemas": [GROUP_SCHEMA], "displayName": f"bench-group-{j:05d}", "members": members}
        reply = api.scim("POST", "/Groups?excludedAttributes=members", body)
        if reply.status != 201:
            report.error_samples.append(f"POST /Groups {j} -> {reply.status}: {str(reply.body)[:200]}")
            return None
        return str(reply.body["id"])

    with ThreadPoolExecutor(max_workers=connections) as pool:
        created = [g for g in pool.map(create, range(count)) if g is not None]
    report.groups = len(created)
    report.group_seconds = time.monotonic() - started
    return created


def seed_big_group(api: Api, size: int, member_ids: list[str], *, batch: int, deadline: float,
                   report: SeedReport) -> str | None:
    """Create group ``bench-<size>`` and add *member_ids* by PATCH in batches; return its id."""
    started = time.monotonic()
    reply = api.scim("POST", "/Groups?excludedAttributes=members",
                     {"schemas": [GROUP_SCHEMA], "displayName": f"bench-{size}"})
    if reply.status != 201:
        report.error_samples.append(f"POST /Groups bench-{size} -> {reply.status}: {str(reply.body)[:200]}")
        return None
    group_id = str(reply.body["id"])
    added, errors, slowest = 0, 0, 0.0
    for i in range(0, len(member_ids), batch):
        if time.monotonic() > deadline:
            break
        values = [{"value": m} for m in member_ids[i:i + batch]]
        body = patch_body({"op": "add", "path": "members", "value": values})
        reply = api.scim("PATCH", f"/Groups/{group_id}?excludedAttributes=members", body, MINIMAL)
        slowest = max(slowest, reply.seconds)
        if reply.status in (200, 204):
            added += len(values)
        else:
            errors += 1
            report.error_samples.append(f"PATCH add to bench-{size} -> {reply.status}: {str(reply.body)[:200]}")
    seconds = time.monotonic() - started
    report.big_groups[size] = {"id": group_id, "members_added": added, "patch_errors": errors,
                               "seconds": round(seconds, 1), "batch": batch,
                               "members_per_second": round(added / seconds, 1) if seconds else None,
                               "slowest_patch_s": round(slowest, 3)}
    _progress(f"group bench-{size}", added, size, started)
    return group_id
