"""The ``scim-bridge`` CLI through click's runner, against the backend's database."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner

from scim_bridge.cli import main


@pytest.fixture
def run(database_url, monkeypatch):
    monkeypatch.setenv("SCIM_BRIDGE_DATABASE_URL", database_url)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_tenant_token_lifecycle(run, client):
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    result = run("tenant", "create", slug, "--name", "CLI Workspace")
    assert result.exit_code == 0, result.output
    again = run("tenant", "create", slug)
    assert again.exit_code == 1 and "already exists" in again.output
    assert run("tenant", "create", slug, "--if-missing").exit_code == 0

    created = run("token", "create", "--tenant", slug, "--scope", "scim:read", "--expires-in", "7")
    assert created.exit_code == 0, created.output
    secret = created.output.strip().splitlines()[-1]
    assert secret.startswith("sbt_")
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/scim/v2/Users", headers=headers).status_code == 200

    listed = run("token", "list", "--tenant", slug, "--json")
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert len(rows) == 1 and rows[0]["scope"] == "scim:read" and rows[0]["state"] == "active"
    assert secret not in listed.output and secret not in run("token", "list", "--tenant", slug).output

    assert run("token", "revoke", "--tenant", slug, rows[0]["id"]).exit_code == 0
    assert client.get("/scim/v2/Users", headers=headers).status_code == 401
    rows = [json.loads(line) for line in run("token", "list", "--tenant", slug, "--json").output.splitlines()]
    assert rows[0]["state"] == "revoked"


@pytest.mark.parametrize("args", [
    ("token", "create", "--tenant", "no-such-tenant"),
    ("token", "list", "--tenant", "no-such-tenant"),
    ("tenant", "create", "Bad Slug!"),
    ("token", "revoke", "--tenant", "default", "not-a-uuid"),
])
def test_refusals_exit_1_with_message(run, args):
    result = run(*args)
    assert result.exit_code == 1 and "Error:" in result.output


def test_bad_scope_refused(run):
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    run("tenant", "create", slug)
    result = run("token", "create", "--tenant", slug, "--scope", "root")
    assert result.exit_code == 1 and "unknown scope" in result.output


def test_usage_error_exit_2(run):
    assert run("token", "create").exit_code == 2


def test_db_current_and_bootstrap(run):
    assert "(head)" in run("db", "current").output
    result = run("bootstrap", "--tenant", f"boot-{uuid.uuid4().hex[:6]}")
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert lines[0] == "SCIM base URL: http://127.0.0.1:8000/scim/v2" and lines[-1].startswith("sbt_")


def test_tenant_setting(run):
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    run("tenant", "create", slug)
    assert run("tenant", "set", slug, "ignore_unknown_attributes", "true").exit_code == 0
    rows = [json.loads(line) for line in run("tenant", "list", "--json").output.splitlines()]
    assert next(r for r in rows if r["slug"] == slug)["settings"] == {"ignore_unknown_attributes": True}
