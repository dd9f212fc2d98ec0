"""Load benchmark: scim-bridge under gunicorn against the bare Flask ceiling of the same stack.

``python -m bench.run --users N --duration S --concurrency C [--ops ...] [--database-url URL] [--profile]``

It migrates a fresh database (a SQLite file under bench/results/, or a dedicated PostgreSQL
database ``scim_bridge_bench`` on the server of ``--database-url``/``SCIM_BRIDGE_DATABASE_URL``),
creates a tenant and a token with the CLI, starts the service and the ceiling app under the
production gunicorn settings, seeds through the API, then measures each operation at a fixed
concurrency for a fixed time, alternating ceiling and service (A B A B) so that machine noise hits
both. It prints a Markdown table and writes bench/results/<timestamp>.json. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench import load
from bench import seed
from bench.api import Api
from bench.api import patch_body
from bench.api import user_body
from bench.api import user_name
from bench.load import Req
from bench.server import HOST
from bench.server import ROOT
from bench.server import Server
from bench.server import free_port
from bench.server import install_signal_handlers
from bench.server import rss_by_worker

RESULTS = ROOT / "bench" / "results"
PG_BENCH_DB = "scim_bridge_bench"
"""Prefix of the benchmark database: each run creates ``scim_bridge_bench_<timestamp>_<pid>`` (two runs on one
server never share or drop each other's database)."""
SCIM_JSON = (("Content-Type", "application/scim+json"),)
# Ratios to the ceiling that issue 7 asks for (op name -> minimum).
TARGETS = {
    "get_user": 0.5, "filter_username": 0.4, "filter_externalid": 0.4, "list_users": 0.1,
    "get_group_nomembers": 0.4, "create_user": 0.15,
    "group_add_member_100000": 0.1, "group_remove_member_100000": 0.1,
}
SAMPLE = 10_000  # distinct users the read operations pick from (random order)


# -- the database ---------------------------------------------------------------------------------

@dataclass
class Database:
    """A fresh database for one run, and how to measure and drop it."""

    url: str
    backend: str
    path: Path | None = None
    admin_url: str | None = None

    @classmethod
    def prepare(cls, given: str | None, stamp: str) -> Database:
        """Create an empty SQLite file under bench/results/, or a fresh ``scim_bridge_bench`` on PostgreSQL."""
        if not given or given.startswith("sqlite"):
            path = RESULTS / f"bench-{stamp}.db"
            return cls(f"sqlite:///{path}", "sqlite", path=path)
        from sqlalchemy import create_engine
        from sqlalchemy import text
        from sqlalchemy.engine import make_url

        url = make_url(given)
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        admin_url = url.render_as_string(hide_password=False)
        name = f"{PG_BENCH_DB}_{stamp.lower()}_{os.getpid()}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return cls(url.set(database=name).render_as_string(hide_password=False), "postgresql",
                   admin_url=admin_url)

    def _scalar(self, sql: str, **params: Any) -> Any:
        from sqlalchemy import create_engine
        from sqlalchemy import text

        engine = create_engine(self.url)
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql), params).scalar()
        finally:
            engine.dispose()

    def version(self) -> str:
        """Return the database server version."""
        if self.backend == "sqlite":
            return f"SQLite {sqlite3.sqlite_version}"
        return str(self._scalar("select version()")).split(" on ")[0]

    def size_mb(self) -> float:
        """Return the database size (SQLite: file + WAL; PostgreSQL: pg_database_size)."""
        if self.backend == "sqlite":
            assert self.path is not None
            total = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
        else:
            total = int(self._scalar("select pg_database_size(current_database())"))
        return round(total / 1024 / 1024, 1)

    def member_count(self, group_id: str) -> int | None:
        """Return the member rows of a group, read directly (``None`` if the schema is not as expected)."""
        try:
            from sqlalchemy import create_engine
            from sqlalchemy import func
            from sqlalchemy import select

            from scim_bridge.storage.models import GroupMember

            engine = create_engine(self.url)
            try:
                with engine.connect() as conn:
                    stmt = select(func.count()).select_from(GroupMember).where(
                        GroupMember.group_id == uuid.UUID(group_id))
                    return int(conn.execute(stmt).scalar() or 0)
            finally:
                engine.dispose()
        except Exception:  # informational only
            return None

    def analyze(self, vacuum: bool = False) -> str:
        """Refresh the planner statistics, as autovacuum would in production.

        With *vacuum* (after seeding, on PostgreSQL) ``VACUUM (ANALYZE)``: autovacuum also vacuums
        tables that only grew (``autovacuum_vacuum_insert_threshold``, PostgreSQL 13+), which sets
        the visibility map that index-only scans (the list's ``count(*)``) rely on. Without it, a
        server with autovacuum off measures heap visits production would not make.
        """
        from sqlalchemy import create_engine
        from sqlalchemy import text

        command = "VACUUM (ANALYZE)" if vacuum and self.backend == "postgresql" else "ANALYZE"
        engine = create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(command))
        finally:
            engine.dispose()
        return f"{command} run after seeding ({self.statistics_note()})"

    def statistics_note(self) -> str:
        """Say whether the database gathers planner statistics by itself."""
        if self.backend == "sqlite":
            return "SQLite: no statistics unless ANALYZE runs; the service never runs it"
        return f"PostgreSQL autovacuum = {self._scalar('show autovacuum')}"

    def drop(self) -> None:
        """Remove the database (the SQLite files, or the PostgreSQL database)."""
        if self.backend == "sqlite":
            assert self.path is not None
            for suffix in ("", "-wal", "-shm", "-writers.lock"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            return
        from sqlalchemy import create_engine
        from sqlalchemy import text
        from sqlalchemy.engine import make_url

        admin = create_engine(self.admin_url or "", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(self.url).database}" WITH (FORCE)'))
        admin.dispose()


# -- setup through the CLI ------------------------------------------------------------------------

def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``scim-bridge ARGS`` with *env* (bounded)."""
    cmd = [sys.executable, "-c", "from scim_bridge.cli import main; main()", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def service_env(database_url: str, args: argparse.Namespace) -> dict[str, str]:
    """Return the service's environment: production defaults except where the benchmark must differ."""
    env = {**os.environ, "SCIM_BRIDGE_DATABASE_URL": database_url,
           # One JSON line per request would write gigabytes at this request rate.
           "SCIM_BRIDGE_LOG_LEVEL": args.log_level,
           # The default per-credential limit (6,000/min) would answer 429 within a second.
           "SCIM_BRIDGE_RATE_LIMIT_PER_MINUTE": str(args.rate_limit_per_minute),
           "SCIM_BRIDGE_TOKEN_RATE_LIMIT_PER_MINUTE": str(args.rate_limit_per_minute),
           # Plain HTTP on the loopback: production terminates TLS in front (authlib insists on https).
           "AUTHLIB_INSECURE_TRANSPORT": "1"}
    env.pop("SCIM_BRIDGE_CONFIG", None)
    return env


# -- operations -----------------------------------------------------------------------------------

@dataclass
class Ctx:
    """What seeding produced, for building request files."""

    users: list[tuple[int, str]]          # (seed index, id) of every user that exists
    sample: list[tuple[int, str]]         # up to SAMPLE of them, shuffled
    big_groups: dict[int, str]            # size -> id
    plain_groups: list[str]
    client: dict[str, str] | None
    lines: int                            # request-file lines for operations that must not repeat
    run_id: str
    consumed: dict[str, int] = field(default_factory=dict)  # op -> lines used by service rounds
    add_pools: dict[int, list[str]] = field(default_factory=dict)


@dataclass
class Op:
    """One measured operation."""

    name: str
    label: str
    build: Callable[[Ctx], list[Req]]
    needs: str | None = None              # "oauth" or "group:<size>"
    stateful: bool = False                # continue the request file across service rounds


def _get_user(ctx: Ctx) -> list[Req]:
    return [Req("GET", f"/scim/v2/Users/{uid}") for _, uid in ctx.sample]


def _filter(attr: str, value: Callable[[int], str]) -> Callable[[Ctx], list[Req]]:
    def build(ctx: Ctx) -> list[Req]:
        return [Req("GET", "/scim/v2/Users?filter=" + quote(f'{attr} eq "{value(i)}"', safe=""))
                for i, _ in ctx.sample]
    return build


def _list_users(ctx: Ctx) -> list[Req]:
    return [Req("GET", "/scim/v2/Users?startIndex=1&count=100")]


def _get_group_nomembers(ctx: Ctx) -> list[Req]:
    ids = list(ctx.big_groups.values()) or ctx.plain_groups[:100]
    return [Req("GET", f"/scim/v2/Groups/{gid}?excludedAttributes=members") for gid in ids]


def _get_group_members(size: int) -> Callable[[Ctx], list[Req]]:
    def build(ctx: Ctx) -> list[Req]:
        return [Req("GET", f"/scim/v2/Groups/{ctx.big_groups[size]}")]
    return build


def _create_user(ctx: Ctx) -> list[Req]:
    out = []
    for k in range(ctx.lines):
        body = user_body(10_000_000 + k)
        body["userName"] = f"new-{ctx.run_id}-{k}@bench.example"
        body["externalId"] = f"new-{ctx.run_id}-{k}"
        body["emails"][0]["value"] = body["userName"]
        out.append(Req("POST", "/scim/v2/Users", _dump(body), SCIM_JSON))
    return out


def _put_user(ctx: Ctx) -> list[Req]:
    out = []
    for n, (i, uid) in enumerate(ctx.sample):
        body = user_body(i)
        body["displayName"] = f"Replaced {n}"
        out.append(Req("PUT", f"/scim/v2/Users/{uid}", _dump(body), SCIM_JSON))
    return out


def _patch_active(ctx: Ctx) -> list[Req]:
    rng = random.Random(11)
    return [Req("PATCH", f"/scim/v2/Users/{uid}",
                _dump(patch_body({"op": "replace", "path": "active", "value": rng.random() < 0.5})), SCIM_JSON)
            for _, uid in ctx.sample]


def _add_pool(ctx: Ctx, size: int) -> list[str]:
    """Users that are not members of group *size* (members are the first *size* users), shuffled."""
    if size not in ctx.add_pools:
        pool = [uid for _, uid in ctx.users[size:]]
        random.Random(size).shuffle(pool)
        ctx.add_pools[size] = pool[:ctx.lines]
    return ctx.add_pools[size]


def _group_add(size: int) -> Callable[[Ctx], list[Req]]:
    def build(ctx: Ctx) -> list[Req]:
        gid = ctx.big_groups[size]
        return [Req("PATCH", f"/scim/v2/Groups/{gid}",
                    _dump(patch_body({"op": "add", "path": "members", "value": [{"value": uid}]})), SCIM_JSON)
                for uid in _add_pool(ctx, size)]
    return build


def _group_add_representation(size: int) -> Callable[[Ctx], list[Req]]:
    def build(ctx: Ctx) -> list[Req]:
        # The same PATCH asking for the group in the answer (RFC 7240 "return=representation"): 200
        # with every member, what a group PATCH answered by default before it answered 204. Takes
        # users from the other end of the pool than the plain add.
        gid = ctx.big_groups[size]
        return [Req("PATCH", f"/scim/v2/Groups/{gid}",
                    _dump(patch_body({"op": "add", "path": "members", "value": [{"value": uid}]})),
                    (*SCIM_JSON, ("Prefer", "return=representation")))
                for uid in reversed(_add_pool(ctx, size))]
    return build


def _group_remove(size: int) -> Callable[[Ctx], list[Req]]:
    def build(ctx: Ctx) -> list[Req]:
        # First the users the add operation put in, then original members: every removal is real.
        gid = ctx.big_groups[size]
        added = _add_pool(ctx, size)[:ctx.consumed.get(f"group_add_member_{size}", 0)]
        originals = [uid for _, uid in ctx.users[:size]]
        random.Random(-size).shuffle(originals)
        return [Req("PATCH", f"/scim/v2/Groups/{gid}",
                    _dump(patch_body({"op": "remove", "path": f'members[value eq "{uid}"]'})), SCIM_JSON)
                for uid in (added + originals)[:max(ctx.lines, 1)]]
    return build


def _token(ctx: Ctx) -> list[Req]:
    assert ctx.client is not None
    basic = base64.b64encode(f"{ctx.client['client_id']}:{ctx.client['client_secret']}".encode()).decode()
    headers = (("Authorization", f"Basic {basic}"), ("Content-Type", "application/x-www-form-urlencoded"),
               ("Accept", "application/json"))
    return [Req("POST", "/oauth/token", "grant_type=client_credentials&scope=scim%3Aread", headers)]


def _dump(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))


def all_ops(sizes: list[int]) -> list[Op]:
    """Return every operation, in the order they run (adds before removes on the same group)."""
    ops = [
        Op("get_user", "GET a user", _get_user),
        Op("filter_username", "filter userName eq", _filter("userName", user_name)),
        Op("filter_externalid", "filter externalId eq", _filter("externalId", lambda i: f"ext-{i:07d}")),
        Op("list_users", "list 100 users", _list_users),
        Op("get_group_nomembers", "GET group, excludedAttributes=members", _get_group_nomembers),
        Op("get_group_members_10000", "GET 10,000-member group with members", _get_group_members(10_000),
           needs="group:10000"),
        Op("create_user", "create a user", _create_user, stateful=True),
        Op("put_user", "PUT a user", _put_user),
        Op("patch_user_active", "PATCH a user's active", _patch_active),
    ]
    for size in sizes:
        ops.append(Op(f"group_add_member_{size}", f"PATCH add 1 member, {size:,}-member group",
                      _group_add(size), needs=f"group:{size}", stateful=True))
        ops.append(Op(f"group_remove_member_{size}", f"PATCH remove 1 member, {size:,}-member group",
                      _group_remove(size), needs=f"group:{size}", stateful=True))
        ops.append(Op(f"group_add_member_representation_{size}",
                      f"PATCH add 1 member, {size:,}-member group, Prefer: return=representation",
                      _group_add_representation(size), needs=f"group:{size}", stateful=True))
    ops.append(Op("token", "token endpoint (client credentials)", _token, needs="oauth"))
    return ops


# -- measuring ------------------------------------------------------------------------------------

@dataclass
class Bench:
    """Everything one run needs to drive load."""

    args: argparse.Namespace
    generator: str
    service: Server
    ceiling: Server
    headers: dict[str, str]
    work: Path

    def load(self, server: Server, op: Op, request_file: Path, offset: int) -> load.Result:
        """Run one load run of *op* against *server*."""
        return load.run(self.generator, server.url, request_file, duration=self.args.duration,
                        concurrency=self.args.concurrency, offset=offset, headers=self.headers,
                        timeout_s=self.args.timeout)


def measure(bench: Bench, op: Op, ctx: Ctx, db: Database) -> dict[str, Any]:
    """Alternate ceiling (A) and service (B) runs of *op*; return rounds, summary and flags."""
    request_file = load.write_requests(bench.work / f"{op.name}.requests", op.build(ctx))
    record: dict[str, Any] = {"name": op.name, "label": op.label, "status": "ok", "rounds": [], "flags": []}
    group_size = int(op.needs.split(":")[1]) if op.needs and op.needs.startswith("group:") else None
    if group_size and op.name.startswith("group_"):
        record["members_before"] = db.member_count(ctx.big_groups[group_size])
    if op.name == "get_group_members_10000":
        record["single_request"] = single_large_get(bench, ctx.big_groups[10_000])
    for _ in range(bench.args.rounds):
        a = bench.load(bench.ceiling, op, request_file, 0)
        ceiling_drain = bench.ceiling.wait_idle()
        offset = ctx.consumed.get(op.name, 0) if op.stateful else 0
        b = bench.load(bench.service, op, request_file, offset)
        if op.stateful:
            ctx.consumed[op.name] = offset + b.used
        # Slow requests still running when wrk stops must not eat into the next run.
        service_drain = bench.service.wait_idle()
        ratio = b.rps / a.rps if a.rps else 0.0
        record["rounds"].append({"ceiling": a.to_dict(), "service": b.to_dict(), "ratio": round(ratio, 4),
                                 "loadavg_1m": round(os.getloadavg()[0], 2),
                                 "drain_s": {"ceiling": ceiling_drain, "service": service_drain}})
        print(f"    {op.name}: ceiling {a.rps:,.0f}/s  service {b.rps:,.1f}/s  ratio {ratio:.3f}"
              f"  p50 {b.p50_ms:.1f} ms  p99 {b.p99_ms:.1f} ms  non-2xx {b.non2xx}", file=sys.stderr, flush=True)
    if group_size and op.name.startswith("group_"):
        record["members_after"] = db.member_count(ctx.big_groups[group_size])
    if op.stateful and ctx.consumed.get(op.name, 0) > len(request_file.read_text().splitlines()):
        record["flags"].append("request file wrapped: later requests repeated earlier ones")
    record["summary"] = summarize(record["rounds"])
    if record["summary"]["non2xx"]:
        record["flags"].append(f"ERRORS: {record['summary']['non2xx']} non-2xx answers "
                               f"({record['summary']['service_codes']})")
    if any(r["service"]["requests"] == 0 for r in record["rounds"]):
        record["flags"].append("a service round completed no request within the duration")
    if any(r["service"]["socket_errors"] for r in record["rounds"]):
        record["flags"].append("socket errors or timeouts (see rounds)")
    return record


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine the rounds: mean req/s, median p50, worst p99, mean and range of the per-pair ratios."""
    svc = [r["service"] for r in rounds]
    ceil = [r["ceiling"] for r in rounds]
    ratios = [r["ratio"] for r in rounds]
    codes: Counter[str] = Counter()
    for s in svc:
        codes.update({k: v for k, v in s["codes"].items() if not k.startswith("2")})
    return {
        "service_rps": round(statistics.mean(s["rps"] for s in svc), 1),
        "service_p50_ms": round(statistics.median(s["p50_ms"] for s in svc), 2),
        "service_p99_ms": round(max(s["p99_ms"] for s in svc), 2),
        "ceiling_rps": round(statistics.mean(c["rps"] for c in ceil), 1),
        "ceiling_p50_ms": round(statistics.median(c["p50_ms"] for c in ceil), 2),
        "ratio": round(statistics.mean(ratios), 4), "ratio_min": min(ratios), "ratio_max": max(ratios),
        "non2xx": sum(s["non2xx"] for s in svc), "service_codes": dict(codes),
        "ceiling_non2xx": sum(c["non2xx"] for c in ceil),
    }


def single_large_get(bench: Bench, group_id: str) -> dict[str, Any]:
    """Time single GETs of the 10,000-member group and the RSS growth of the worker that served them."""
    assert bench.service.process is not None
    api = Api(HOST, bench.service.port, bench.headers["Authorization"].split(" ", 1)[1], timeout=bench.args.timeout)
    before = rss_by_worker(bench.service.process.pid)
    timings, sizes, statuses = [], [], []
    for _ in range(3):
        reply = api.scim("GET", f"/Groups/{group_id}")
        timings.append(round(reply.seconds, 3))
        sizes.append(reply.size)
        statuses.append(reply.status)
    api.close()
    after = rss_by_worker(bench.service.process.pid)
    growth = [after[p] - before[p] for p in after if p in before]
    members = len((reply.body or {}).get("members") or []) if isinstance(reply.body, dict) else None
    return {"seconds": timings, "statuses": statuses, "response_bytes": sizes[-1], "members": members,
            "rss_growth_mb": round(max(growth, default=0) / 1024, 1)}


# -- profiling ------------------------------------------------------------------------------------

def ensure_py_spy() -> str | None:
    """Return the py-spy executable, installing it into the running virtualenv if missing."""
    candidates = [Path(sys.executable).parent / "py-spy", shutil.which("py-spy")]
    for c in candidates:
        if c and Path(c).exists():
            return str(c)
    print("  installing py-spy into the virtualenv (--profile)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "py-spy"], check=False, timeout=600)
    found = Path(sys.executable).parent / "py-spy"
    return str(found) if found.exists() else None


def profile(bench: Bench, op: Op, ctx: Ctx, stamp: str) -> dict[str, Any]:
    """Sample every service worker with py-spy during one extra service run of *op*."""
    py_spy = ensure_py_spy()
    if py_spy is None:
        return {"op": op.name, "error": "py-spy could not be installed"}
    assert bench.service.process is not None
    out = RESULTS / f"{stamp}-profile-{op.name}.txt"
    request_file = bench.work / f"{op.name}.requests"
    if not request_file.exists():
        load.write_requests(request_file, op.build(ctx))
    spy = subprocess.Popen([py_spy, "record", "--pid", str(bench.service.process.pid), "--subprocesses",
                            "--rate", "200", "--duration", str(int(bench.args.duration) + 1), "--format", "raw",
                            "--output", str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1.0)  # let py-spy attach before the load starts
    offset = ctx.consumed.get(op.name, 0) if op.stateful else 0
    result = bench.load(bench.service, op, request_file, offset)
    if op.stateful:
        ctx.consumed[op.name] = offset + result.used
    bench.service.wait_idle()
    try:
        spy_out, _ = spy.communicate(timeout=bench.args.duration + 60)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy_out, _ = spy.communicate()
    if not out.exists():
        return {"op": op.name, "error": f"py-spy produced nothing: {spy_out.strip()[-500:]}"}
    return {"op": op.name, "file": str(out.relative_to(ROOT)), "rps_while_profiled": round(result.rps, 1),
            **top_functions(out)}


def top_functions(collapsed: Path, limit: int = 15) -> dict[str, Any]:
    """Summarize collapsed stacks: the functions with most samples, inclusive (ours) and self (all)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # --subprocesses puts a "process PID:command" frame at the root of each stack.
        frames = [_frame_name(f) for f in stack.split(";") if not f.startswith("process ")]
        if not frames:
            continue
        total += count
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
    if not total:
        return {"samples": 0}

    def pct(counter: Counter[str], keep: Callable[[str], bool]) -> list[list[Any]]:
        return [[name, round(100 * n / total, 1)] for name, n in counter.most_common() if keep(name)][:limit]

    return {"samples": total,
            "inclusive_scim_bridge": pct(inclusive, lambda n: "scim_bridge/" in n),
            "self_all": pct(own, lambda n: True)}


def _frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (file path relative to site-packages or the repo)``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})"


# -- reporting ------------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    """Return facts about this machine."""
    model = ""
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as fh:
        mem_kb = int(fh.readline().split()[1])
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "scim_bridge"], cwd=ROOT, capture_output=True,
                               text=True, timeout=10).stdout.strip()
        tree = f"{head}{' + uncommitted changes in scim_bridge/' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        tree = "unknown"
    return {"cpus": load.cpu_count(), "cpu_model": model, "tree": tree, "memory_gb": round(mem_kb / 1024 / 1024, 1),
            "python": platform.python_version(), "kernel": platform.release(),
            "loadavg": os.getloadavg()}


def markdown(report: dict[str, Any]) -> str:
    """Render the results as Markdown."""
    lines = [f"### {report['database']['backend']}, {report['args']['users']:,} users, "
             f"{report['started'][:16].replace('T', ' ')} UTC",
             "",
             f"{report['machine']['cpus']} CPUs ({report['machine']['cpu_model']}), "
             f"{report['database']['version']}, gunicorn {report['gunicorn']['workers']} sync workers, "
             f"load generator {report['generator']}, concurrency {report['args']['concurrency']}, "
             f"{report['args']['duration']} s per run, {report['args']['rounds']} rounds A/B; "
             f"statistics: {report.get('statistics', 'not recorded')}; "
             f"load average at start {report['machine']['loadavg'][0]:.2f}; "
             f"tree {report['machine'].get('tree', 'unknown')}.",
             "",
             "| operation | req/s | p50 ms | p99 ms | ceiling req/s | ratio (range) | target | non-2xx |",
             "|---|---:|---:|---:|---:|---:|---|---:|"]
    for op in report["ops"]:
        if op["status"] != "ok":
            lines.append(f"| {op['label']} | {op['status']} | | | | | | |")
            continue
        s = op["summary"]
        target = TARGETS.get(op["name"])
        verdict = "" if target is None else f"≥ {target} {'met' if s['ratio'] >= target else '**missed**'}"
        lines.append(f"| {op['label']} | {s['service_rps']:,.1f} | {s['service_p50_ms']:,.1f} | "
                     f"{s['service_p99_ms']:,.1f} | {s['ceiling_rps']:,.0f} | {s['ratio']:.3f} "
                     f"({s['ratio_min']:.3f}–{s['ratio_max']:.3f}) | {verdict} | "
                     f"{s['non2xx'] or 0}{' ⚠' if s['non2xx'] else ''} |")
    lines.append("")
    seed_info = report["seed"]
    lines.append(f"Seeding ({seed_info['method']}): {seed_info['users']:,} users in {seed_info['user_seconds']:,} s "
                 f"= {seed_info['users_per_second'] or 0:,} users/s (1,000,000 would take "
                 f"{seed_info['projected_minutes_for_1m_users'] or '?'} min); {seed_info['groups']} plain groups.")
    for size, info in seed_info["big_groups"].items():
        lines.append(f"Group of {int(size):,}: {info['members_added']:,} members added in {info['seconds']} s "
                     f"({info['members_per_second']:,} members/s, slowest PATCH of {info['batch']:,} "
                     f"{info['slowest_patch_s']} s).")
    mem = report["memory"]
    lines.append(f"Peak RSS per worker: service {mem['service_peak_mb']} MB (after seeding "
                 f"{mem['service_peak_after_seed_mb']} MB; {mem['service_workers_seen']} worker processes seen), "
                 f"ceiling {mem['ceiling_peak_mb']} MB. Database size: {report['database']['size_mb']} MB.")
    for op in report["ops"]:
        if "single_request" in op:
            sr = op["single_request"]
            lines.append(f"Single GET of the 10,000-member group: {sr['seconds']} s, {sr['response_bytes']:,} bytes, "
                         f"worker RSS growth {sr['rss_growth_mb']} MB.")
    flagged = [(op["label"], f) for op in report["ops"] for f in op.get("flags", [])]
    for label, flag in flagged:
        lines.append(f"- **{label}**: {flag}")
    for check in report["target_checks"]:
        lines.append(f"- target: {check}")
    return "\n".join(lines)


def target_checks(report: dict[str, Any]) -> list[str]:
    """Return the targets of issue 7 that are not plain ratios, evaluated."""
    out = []
    by_name = {op["name"]: op for op in report["ops"] if op["status"] == "ok"}
    for kind in ("add", "remove"):
        small, big = by_name.get(f"group_{kind}_member_1000"), by_name.get(f"group_{kind}_member_100000")
        if small and big:
            base = small["summary"]["service_rps"]
            rel = big["summary"]["service_rps"] / base if base else 0
            out.append(f"PATCH {kind} on 100,000 vs 1,000 members: {rel:.2f} of the 1,000-member rate "
                       f"(≥ 0.80 wanted) {'met' if rel >= 0.8 else 'missed'}")
    single = by_name.get("get_group_members_10000", {}).get("single_request")
    if single:
        ok = max(single["seconds"]) < 1 and single["rss_growth_mb"] < 50
        out.append(f"GET 10,000-member group: worst {max(single['seconds'])} s (< 1 s), RSS growth "
                   f"{single['rss_growth_mb']} MB (< 50 MB) {'met' if ok else 'missed'}")
    rate = report["seed"]["users_per_second"]
    if rate:
        minutes = 1_000_000 / rate / 60
        out.append(f"seeding 1,000,000 users: ~{minutes:.0f} min at the measured rate via {report['seed']['method']} "
                   f"(< 30 min wanted) {'met' if minutes < 30 else 'missed'}")
    return out


# -- main -----------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=20_000, help="users to seed (default 20,000; up to 1,000,000)")
    p.add_argument("--groups", type=int, default=100, help="plain groups (10 members each) to seed")
    p.add_argument("--group-sizes", default="1000,10000,100000",
                   help="large groups to seed; sizes above --users are skipped")
    p.add_argument("--duration", type=float, default=10, help="seconds per load run")
    p.add_argument("--concurrency", type=int, default=8, help="connections per load run")
    p.add_argument("--rounds", type=int, default=2, help="A/B round pairs per operation (at least 2)")
    p.add_argument("--ops", default="", help="comma-separated operation names or prefixes (default: all)")
    p.add_argument("--database-url", default=os.environ.get("SCIM_BRIDGE_DATABASE_URL", ""),
                   help="PostgreSQL server to use (a database scim_bridge_bench is created on it); "
                        "default: a fresh SQLite file under bench/results/")
    p.add_argument("--profile", action="store_true", help="py-spy the service during one extra run of some ops")
    p.add_argument("--profile-ops", default="",
                   help="ops to profile (default: those that missed their target, at most 4)")
    p.add_argument("--python-client", action="store_true", help="use the Python load generator even if wrk exists")
    p.add_argument("--timeout", type=int, default=60, help="per-request timeout in seconds (Okta gives up at 60)")
    p.add_argument("--seed-connections", type=int, default=2,
                   help="parallel connections while seeding (/Bulk requests of one tenant run one at a time: "
                        "more would only queue, past the 55 s worker timeout)")
    p.add_argument("--seed-with", choices=("auto", "post"), default="auto",
                   help="auto: /Bulk when the service has it; post: parallel POST /Users regardless")
    p.add_argument("--bulk-batch", type=int, default=1000, help="operations per /Bulk request")
    p.add_argument("--patch-batch", type=int, default=5000, help="members per PATCH while filling large groups")
    p.add_argument("--seed-timeout", type=float, default=7200, help="give up seeding after this many seconds")
    p.add_argument("--log-level", default="WARNING", help="service log level (INFO logs one line per request)")
    p.add_argument("--rate-limit-per-minute", type=int, default=100_000_000,
                   help="service rate limits: counted as in production, but high enough never to be reached "
                        "(the service's own default, 6,000, would answer 429 within seconds); 0 turns counting off")
    p.add_argument("--analyze", choices=("auto", "yes", "no"), default="auto",
                   help="ANALYZE after seeding (auto: on PostgreSQL, whose production autovacuum would; "
                        "not on SQLite, where the service never does)")
    p.add_argument("--keep-db", action="store_true", help="keep the benchmark database afterwards")
    args = p.parse_args(argv)
    args.rounds = max(2, args.rounds)
    # Load and data stay on this machine: refuse a database server elsewhere.
    if args.database_url and not args.database_url.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        host = make_url(args.database_url).host or "127.0.0.1"
        if host not in ("127.0.0.1", "localhost", "::1"):
            p.error(f"the benchmark only uses a database on this machine, not {host}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status (1 when an operation answered non-2xx)."""
    args = parse_args(argv)
    install_signal_handlers()
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    generator = "wrk" if load.wrk_available() and not args.python_client else "python"
    work = RESULTS / f"{stamp}-requests"
    work.mkdir()
    print(f"bench {stamp}: {args.users:,} users, {args.duration} s x {args.rounds} rounds, concurrency "
          f"{args.concurrency}, generator {generator}", file=sys.stderr, flush=True)

    db = Database.prepare(args.database_url or None, stamp)
    env = service_env(db.url, args)
    for step in (("db", "upgrade"), ("tenant", "create", "bench", "--name", "Benchmark")):
        done = cli(env, *step)
        if done.returncode != 0:
            raise SystemExit(f"scim-bridge {' '.join(step)} failed: {done.stderr.strip()}")
    minted = cli(env, "token", "create", "--tenant", "bench", "--scope", "scim:read scim:write",
                 "--description", "benchmark")
    if minted.returncode != 0:
        raise SystemExit(f"scim-bridge token create failed: {minted.stderr.strip()}")
    token = minted.stdout.strip().splitlines()[-1]
    client = None
    made = cli(env, "client", "create", "--tenant", "bench", "--name", "benchmark", "--scope", "scim:read scim:write")
    if made.returncode == 0:
        try:
            client = json.loads(made.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            client = None

    service = Server("service", "wsgi:app", "gunicorn.conf.py", free_port(), env, RESULTS / f"{stamp}-service.log")
    ceiling = Server("ceiling", "bench.ceiling:app", "bench/gunicorn_ceiling.conf.py", free_port(), dict(os.environ),
                     RESULTS / f"{stamp}-ceiling.log")
    report: dict[str, Any] = {"started": started.isoformat(), "args": vars(args) | {"database_url": db.backend},
                              "generator": generator, "machine": machine(), "ops": []}
    exit_status = 0
    try:
        service.start("/readyz")
        ceiling.start("/")
        report["gunicorn"] = {"workers": len(service.workers()), "ceiling_workers": len(ceiling.workers()),
                              "config": "gunicorn.conf.py (production settings)"}
        # Seeding requests are large (1,000 users per /Bulk, queued behind each other): a long timeout.
        api = Api(HOST, service.port, token, timeout=max(args.timeout, 900))
        caps = seed.probe(api)
        if args.seed_with == "post":
            caps.bulk = False
        report["endpoints"] = {"bulk": caps.bulk, "oauth_token": caps.oauth_token, "client_cli": client is not None}
        print(f"  endpoints: /Bulk {'present' if caps.bulk else 'missing'}, /oauth/token "
              f"{'present' if caps.oauth_token else 'missing'}", file=sys.stderr, flush=True)

        # -- seed
        deadline = time.monotonic() + args.seed_timeout
        seeded = seed.SeedReport("POST /Bulk" if caps.bulk else "parallel POST /Users (no /Bulk)")
        analyze = args.analyze == "yes" or (args.analyze == "auto" and db.backend == "postgresql")
        next_analyze = [1000]

        def keep_statistics(done: int) -> None:
            # What autovacuum does while a table grows (it is off on some servers, e.g. this test one):
            # without statistics the planner reads all of the tenant's rows for each uniqueness check.
            if analyze and done >= next_analyze[0]:
                db.analyze()
                next_analyze[0] = done * 2

        ids = seed.seed_users(api, args.users, caps, connections=args.seed_connections, batch=args.bulk_batch,
                              deadline=deadline, report=seeded, on_progress=keep_statistics)
        users = [(i, uid) for i, uid in enumerate(ids) if uid is not None]
        plain = seed.seed_plain_groups(api, args.groups, [u for _, u in users[:SAMPLE]], members_each=10,
                                       connections=args.seed_connections, deadline=deadline, report=seeded)
        sizes = [int(s) for s in args.group_sizes.split(",") if s.strip()]
        big: dict[int, str] = {}
        for size in sizes:
            if size > len(users):
                continue
            gid = seed.seed_big_group(api, size, [u for _, u in users[:size]], batch=args.patch_batch,
                                      deadline=deadline, report=seeded)
            if gid is not None:
                big[size] = gid
        api.close()
        report["seed"] = seeded.to_dict()
        if analyze:
            report["statistics"] = db.analyze(vacuum=True) + ", and ANALYZE during it each time the user count doubled"
        else:
            report["statistics"] = db.statistics_note()
        assert service.memory is not None and ceiling.memory is not None
        peak_after_seed = service.memory.peak_mb

        # -- measure
        rng = random.Random(5)
        sample = rng.sample(users, min(SAMPLE, len(users)))
        lines = int(min(200_000, max(20_000, args.duration * args.rounds * 2_000)))
        ctx = Ctx(users, sample, big, plain, client, lines, uuid.uuid4().hex[:8])
        bench = Bench(args, generator, service, ceiling,
                      {"Authorization": f"Bearer {token}", "Accept": "application/scim+json"}, work)
        wanted = [w.strip() for w in args.ops.split(",") if w.strip()]
        for op in all_ops(sizes):
            if wanted and not any(op.name == w or op.name.startswith(w) for w in wanted):
                continue
            if op.needs == "oauth" and not (caps.oauth_token and client):
                status = "unavailable (endpoint missing)" if not caps.oauth_token else "unavailable (no client CLI)"
                report["ops"].append({"name": op.name, "label": op.label, "status": status})
                continue
            if op.needs and op.needs.startswith("group:") and int(op.needs.split(":")[1]) not in big:
                report["ops"].append({"name": op.name, "label": op.label,
                                      "status": f"skipped (needs --users ≥ {int(op.needs.split(':')[1]):,})"})
                continue
            if op.name.startswith("group_add_member") and not _add_pool(ctx, int(op.needs.split(":")[1])):
                report["ops"].append({"name": op.name, "label": op.label,
                                      "status": "skipped (no user outside the group: needs --users > size)"})
                continue
            print(f"  op {op.name}", file=sys.stderr, flush=True)
            try:
                report["ops"].append(measure(bench, op, ctx, db))
            except (OSError, RuntimeError, ValueError, subprocess.SubprocessError) as exc:
                # One broken operation must not cost the measurements of the others.
                report["ops"].append({"name": op.name, "label": op.label, "status": f"error: {exc}"[:300]})
                print(f"    {op.name} failed: {exc}", file=sys.stderr, flush=True)

        report["memory"] = {"service_peak_mb": service.memory.peak_mb, "service_peak_after_seed_mb": peak_after_seed,
                            "service_workers_seen": service.memory.workers_seen,
                            "ceiling_peak_mb": ceiling.memory.peak_mb}
        report["database"] = {"backend": db.backend, "version": db.version(), "size_mb": db.size_mb()}
        report["target_checks"] = target_checks(report)

        # -- profile
        if args.profile:
            by_name = {op.name: op for op in all_ops(sizes)}
            chosen = [w.strip() for w in args.profile_ops.split(",") if w.strip()]
            if not chosen:
                chosen = [o["name"] for o in report["ops"] if o["status"] == "ok" and o["name"] in TARGETS
                          and o["summary"]["ratio"] < TARGETS[o["name"]]][:4]
            report["profiles"] = []
            for name in chosen:
                if name in by_name and any(o["name"] == name and o["status"] == "ok" for o in report["ops"]):
                    print(f"  profiling {name}", file=sys.stderr, flush=True)
                    report["profiles"].append(profile(bench, by_name[name], ctx, stamp))
    finally:
        service.stop()
        ceiling.stop()
        shutil.rmtree(work, ignore_errors=True)
        report.setdefault("database", {"backend": db.backend})
        if not args.keep_db:
            try:
                db.drop()
            except Exception as exc:  # reported, never hides the run's own error
                print(f"could not drop the benchmark database: {exc}", file=sys.stderr)
        report["finished"] = datetime.now(UTC).isoformat()
        report["machine_loadavg_end"] = os.getloadavg()
        out = RESULTS / f"{stamp}.json"
        out.write_text(json.dumps(report, indent=2, default=str))
        print(f"results: {out.relative_to(ROOT)}", file=sys.stderr)

    print(markdown(report))
    for p in report.get("profiles", []):
        print(f"\nProfile of {p['op']} ({p.get('file', p.get('error'))}):")
        for name, share in p.get("inclusive_scim_bridge", [])[:10]:
            print(f"  {share:5.1f}%  {name}")
        print("  self time:")
        for name, share in p.get("self_all", [])[:10]:
            print(f"  {share:5.1f}%  {name}")
    if any(op.get("summary", {}).get("non2xx") for op in report["ops"]):
        exit_status = 1
    return exit_status


if __name__ == "__main__":
    sys.exit(main())
