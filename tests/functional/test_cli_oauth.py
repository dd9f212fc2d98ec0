"""``scim-bridge client …`` and ``scim-bridge audit tail`` through click's runner."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner

from scim_bridge.cli import main
from tests.functional.oauth_support import INTROSPECT
from tests.functional.oauth_support import Creds
from tests.functional.oauth_support import basic
from tests.functional.oauth_support import bearer
from tests.functional.oauth_support import client_for
from tests.functional.oauth_support import issue_token
from tests.functional.oauth_support import request_token


@pytest.fixture
def run(database_url, monkeypatch):
    monkeypatch.setenv("SCIM_BRIDGE_DATABASE_URL", database_url)
    monkeypatch.delenv("SCIM_BRIDGE_CLIENT_SECRET_GRACE_SECONDS", raising=False)
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):
        return runner.invoke(main, list(args), catch_exceptions=False, env=env)

    return invoke


@pytest.fixture
def slug(run):
    name = f"cli-{uuid.uuid4().hex[:8]}"
    assert run("tenant", "create", name).exit_code == 0
    return name


@pytest.fixture
def http(app):
    return client_for(app)


def create(run, slug, *extra: str) -> Creds:
    result = run("client", "create", "--tenant", slug, "--name", f"idp-{uuid.uuid4().hex[:6]}", *extra)
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert set(created) == {"client_id", "client_secret"}
    return Creds(created["client_id"], created["client_secret"])


def listed(run, slug) -> list[dict]:
    return [json.loads(line) for line in run("client", "list", "--tenant", slug, "--json").stdout.splitlines()]


def test_create_prints_json_and_the_client_works(run, slug, http):
    creds = create(run, slug, "--scope", "scim:read scim:write")
    assert creds.client_id.startswith("sbc_") and creds.secret.startswith("sbs_")
    token = issue_token(http, creds)
    assert http.get("/scim/v2/Users", headers=bearer(token)).status_code == 200
    rows = listed(run, slug)
    assert len(rows) == 1 and rows[0]["client_id"] == creds.client_id and rows[0]["state"] == "active"
    assert rows[0]["scope"] == "scim:read scim:write" and rows[0]["introspect"] is False
    text = run("client", "list", "--tenant", slug).stdout
    assert creds.client_id in text and creds.secret not in text and creds.secret not in json.dumps(rows)


def test_introspect_flag(run, slug, http):
    plain, inspector = create(run, slug), create(run, slug, "--introspect")
    token = issue_token(http, plain)
    assert http.post(INTROSPECT, data={"token": token}, headers=basic(plain)).status_code == 400
    response = http.post(INTROSPECT, data={"token": token}, headers=basic(inspector))
    assert response.get_json()["active"] is True
    assert {r["client_id"]: r["introspect"] for r in listed(run, slug)}[inspector.client_id] is True


def test_rotate_secret_without_grace(run, slug, http):
    creds = create(run, slug)
    result = run("client", "rotate-secret", "--tenant", slug, creds.client_id)
    assert result.exit_code == 0, result.output
    rotated = json.loads(result.stdout)
    assert rotated["client_id"] == creds.client_id and rotated["previous_secret_valid_until"] is None
    assert request_token(http, creds).status_code == 401
    assert request_token(http, Creds(creds.client_id, rotated["client_secret"])).status_code == 200


@pytest.mark.parametrize("how", ["option", "setting"])
def test_rotate_secret_with_grace(run, slug, http, how):
    creds = create(run, slug)
    if how == "option":
        result = run("client", "rotate-secret", "--tenant", slug, "--grace", "300", creds.client_id)
    else:
        result = run("client", "rotate-secret", "--tenant", slug, creds.client_id,
                     env={"SCIM_BRIDGE_CLIENT_SECRET_GRACE_SECONDS": "300"})
    rotated = json.loads(result.stdout)
    assert rotated["previous_secret_valid_until"] is not None
    assert request_token(http, creds).status_code == 200
    assert request_token(http, Creds(creds.client_id, rotated["client_secret"])).status_code == 200
    assert listed(run, slug)[0]["previous_secret_valid_until"] == rotated["previous_secret_valid_until"]


def test_disable_enable_delete(run, slug, http):
    creds = create(run, slug)
    token = issue_token(http, creds)
    result = run("client", "disable", "--tenant", slug, creds.client_id)
    assert result.exit_code == 0 and "revoked 1 token(s)" in result.output
    assert listed(run, slug)[0]["state"] == "disabled"
    assert request_token(http, creds).status_code == 401
    assert http.get("/scim/v2/Users", headers=bearer(token)).status_code == 401
    assert run("client", "enable", "--tenant", slug, creds.client_id).exit_code == 0
    token = issue_token(http, creds)
    result = run("client", "delete", "--tenant", slug, creds.client_id)
    assert result.exit_code == 0 and "revoked 1 token(s)" in result.output
    assert listed(run, slug) == []
    assert http.get("/scim/v2/Users", headers=bearer(token)).status_code == 401
    assert request_token(http, creds).status_code == 401


def test_client_of_another_tenant_is_not_found(run, slug):
    creds = create(run, slug)
    other = f"cli-{uuid.uuid4().hex[:8]}"
    run("tenant", "create", other)
    for command in ("disable", "enable", "delete", "rotate-secret"):
        result = run("client", command, "--tenant", other, creds.client_id)
        assert result.exit_code == 1 and "has no client" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (("client", "create", "--tenant", "no-such-tenant", "--name", "x"), "no tenant"),
    (("client", "list", "--tenant", "no-such-tenant"), "no tenant"),
    (("client", "create", "--tenant", "{slug}", "--name", "x", "--scope", "root"), "unknown scope"),
    (("client", "create", "--tenant", "{slug}", "--name", " "), "name"),
    (("client", "disable", "--tenant", "{slug}", "sbc_nope"), "has no client"),
    (("audit", "tail", "--tenant", "no-such-tenant"), "no tenant"),
])
def test_refusals_exit_1(run, slug, args, message):
    result = run(*(a.replace("{slug}", slug) for a in args))
    assert result.exit_code == 1 and "Error:" in result.output and message in result.output


def test_duplicate_name_is_refused(run, slug):
    assert run("client", "create", "--tenant", slug, "--name", "okta").exit_code == 0
    result = run("client", "create", "--tenant", slug, "--name", "okta")
    assert result.exit_code == 1 and "already has a client named" in result.output


@pytest.mark.parametrize("args", [
    ("client", "create", "--tenant", "x"),
    ("client", "rotate-secret", "--tenant", "x", "--grace", "-1", "sbc_x"),
    ("audit", "tail"),
])
def test_usage_errors_exit_2(run, args):
    assert run(*args).exit_code == 2


def test_audit_tail(run, slug, http):
    creds = create(run, slug)
    token = issue_token(http, creds)
    http.post("/scim/v2/Users", data=json.dumps({"userName": "tailed@example.com"}),
              headers={**bearer(token), "Content-Type": "application/scim+json"})
    request_token(http, Creds(creds.client_id, "sbs_wrong"))
    static = run("token", "create", "--tenant", slug).stdout.strip().splitlines()[-1]
    result = run("audit", "tail", "--tenant", slug, "--json")
    assert result.exit_code == 0
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["action"] for e in events] == ["client.create", "token.issue", "user.create", "client.auth_failed",
                                            "token.create"]
    assert events[0]["client"] == "cli" and events[2]["client"] == creds.client_id
    assert all(e["request_id"] for e in events[1:4])
    assert [json.loads(line)["action"] for line in
            run("audit", "tail", "--tenant", slug, "--json", "-n", "2").stdout.splitlines()] == [
        "client.auth_failed", "token.create"]
    only = run("audit", "tail", "--tenant", slug, "--action", "client").stdout.splitlines()
    assert len(only) == 2 and all("\tclient." in line for line in only)
    text = run("audit", "tail", "--tenant", slug).stdout
    for secret in (creds.secret, token, static):
        assert secret not in text and secret not in result.stdout
