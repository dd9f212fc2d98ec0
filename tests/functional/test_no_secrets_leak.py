"""No secret, token or password ever appears in logs, audit records, counters or error messages.

One full flow (CLI client creation and rotation, tokens by both client authentication methods,
SCIM writes with passwords, failed authentications of every kind, introspection, revocation)
runs with every logger at DEBUG; then everything it left behind is searched for every secret.
"""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import func
from sqlalchemy import select

from scim_bridge.auth import server
from scim_bridge.cli import main
from scim_bridge.http.request_log import JsonFormatter
from scim_bridge.storage.models import AuditEvent
from scim_bridge.storage.models import RateLimitCounter
from tests.conftest import ScimClient
from tests.functional.oauth_support import INTROSPECT
from tests.functional.oauth_support import REVOKE
from tests.functional.oauth_support import TOKEN
from tests.functional.oauth_support import Creds
from tests.functional.oauth_support import basic
from tests.functional.oauth_support import bearer
from tests.functional.oauth_support import client_for
from tests.functional.oauth_support import request_token

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class Capture(logging.Handler):
    """Keep every record, rendered the way production renders it (JSON, with extra fields)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._json = JsonFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self._json.format(record))
        self.lines.append(repr(record.args))


@pytest.fixture
def captured():
    handler = Capture()
    loggers = [logging.getLogger(), logging.getLogger("scim_bridge"), logging.getLogger("authlib")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)
    logging.getLogger("scim_bridge").setLevel(logging.DEBUG)
    yield handler
    for log, level in zip(loggers, levels, strict=True):
        log.removeHandler(handler)
        log.setLevel(level)


def test_full_flow_leaks_nothing(app, storage, database_url, monkeypatch, captured):
    monkeypatch.setenv("SCIM_BRIDGE_DATABASE_URL", database_url)
    monkeypatch.setattr(server, "sleep", lambda _seconds: None)  # failed-auth delays: not waited for here
    runner = CliRunner()
    with storage.sessionmaker() as session:
        audit_start = session.scalar(select(func.coalesce(func.max(AuditEvent.id), 0)))
        counters_before = set(session.scalars(select(RateLimitCounter.key)))

    slug = f"leak-{uuid.uuid4().hex[:8]}"
    assert runner.invoke(main, ["tenant", "create", slug]).exit_code == 0
    created = json.loads(runner.invoke(main, ["client", "create", "--tenant", slug, "--name", "entra",
                                              "--introspect"]).stdout)
    first = Creds(created["client_id"], created["client_secret"])
    rotated = json.loads(runner.invoke(main, ["client", "rotate-secret", "--tenant", slug, "--grace", "60",
                                              first.client_id]).stdout)
    second = Creds(first.client_id, rotated["client_secret"])
    static = runner.invoke(main, ["token", "create", "--tenant", slug]).stdout.strip().splitlines()[-1]

    http = client_for(app)
    responses = []

    def keep(response):
        responses.append(response)
        return response

    token_basic = keep(request_token(http, second)).get_json()["access_token"]
    token_post = keep(request_token(http, first, "post")).get_json()["access_token"]  # old secret, in grace

    passwords = ["Corr3ct-Horse-Battery!", "n3w-Secret-Passw0rd?", "th1rd-Passw0rd#"]
    scim = ScimClient(http, token_basic)
    user = keep(scim.post("/Users", {"userName": "leak@example.com", "password": passwords[0]})).get_json()
    keep(scim.patch(f"/Users/{user['id']}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "value": {"password": passwords[1]}}]}))
    keep(scim.put(f"/Users/{user['id']}", {"userName": "leak@example.com", "password": passwords[2]}))
    keep(scim.post("/Users", {"userName": "leak@example.com", "password": passwords[0]}))  # 409
    keep(scim.post("/Users", {"userName": "bad", "password": 12345, "emails": "not-a-list"}))  # 400
    keep(ScimClient(http, static).get("/Users"))

    wrong = f"sbs_{uuid.uuid4().hex}"
    guessed_token = f"sbt_{uuid.uuid4().hex}"
    keep(request_token(http, Creds(first.client_id, wrong)))
    keep(request_token(http, Creds(first.client_id, wrong), "post"))
    keep(http.post(TOKEN, data={"grant_type": "client_credentials", "client_id": second.secret,
                                "client_secret": second.secret}))  # a secret pasted into the id field
    keep(http.post(f"{TOKEN}?client_secret={second.secret}", data={"grant_type": "client_credentials"}))
    keep(http.post(TOKEN, data={"grant_type": second.secret}, headers=basic(second)))
    keep(http.post(TOKEN, data={"grant_type": "client_credentials", "scope": second.secret}, headers=basic(second)))
    keep(http.get("/scim/v2/Users", headers=bearer(guessed_token)))
    keep(http.get("/scim/v2/Users", headers={"Authorization": f"Basic {second.secret}"}))
    keep(http.post(INTROSPECT, data={"token": token_basic}, headers=basic(second)))
    keep(http.post(REVOKE, data={"token": token_post}, headers=basic(second)))
    keep(http.post(REVOKE, data={"token": token_basic, "client_id": first.client_id, "client_secret": wrong}))
    keep(http.get("/scim/v2/Users", headers=bearer(token_post)))
    token_id = json.loads(runner.invoke(main, ["token", "list", "--tenant", slug, "--json"]).stdout.splitlines()[0])
    assert runner.invoke(main, ["token", "revoke", "--tenant", slug, token_id["id"]]).exit_code == 0
    tail = runner.invoke(main, ["audit", "tail", "--tenant", slug, "--json", "-n", "1000"]).stdout
    client_list = runner.invoke(main, ["client", "list", "--tenant", slug, "--json"]).stdout

    secrets = [first.secret, second.secret, wrong, static, token_basic, token_post, guessed_token, *passwords]
    with storage.sessionmaker() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.id > audit_start)).all()
        audit_dump = json.dumps([{c.name: str(getattr(e, c.name)) for c in AuditEvent.__table__.columns}
                                 for e in events])
        counter_keys = json.dumps(sorted(set(session.scalars(select(RateLimitCounter.key))) - counters_before))
    assert len(events) >= 15 and "client.auth_failed" in audit_dump and "token.rejected" in audit_dump
    error_text = "\n".join(
        f"{r.status_code} {r.get_data(as_text=True)} {r.headers.get('WWW-Authenticate', '')}"
        for r in responses if r.status_code >= 400 or r.request.path == INTROSPECT)
    assert sum(r.status_code >= 400 for r in responses) >= 10
    haystacks = {"logs": "\n".join(captured.lines), "audit table": audit_dump, "audit tail": tail,
                 "rate-limit keys": counter_keys, "error responses": error_text, "client list": client_list}
    assert len(captured.lines) > 20
    for where, text in haystacks.items():
        for secret in secrets:
            assert secret not in text, f"a secret appears in the {where}"
