"""``scim-bridge tenant … --profile``, ``mappings check``, ``org …``, ``user variables`` and ``events``."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner

from scim_bridge.cli import main
from scim_bridge.domain.tenants import TenantService
from tests.conftest import ScimClient
from tests.conftest import new_token
from tests.functional.orgs_support import GROUP
from tests.functional.orgs_support import SHIPPED


@pytest.fixture
def run(database_url, monkeypatch):
    monkeypatch.setenv("SCIM_BRIDGE_DATABASE_URL", database_url)
    monkeypatch.delenv("SCIM_BRIDGE_MAPPINGS_DIR", raising=False)
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):
        return runner.invoke(main, list(args), catch_exceptions=False, env=env)

    return invoke


def slug() -> str:
    return f"cli-{uuid.uuid4().hex[:8]}"


def scim_for(app, storage, tenant_slug: str) -> ScimClient:
    with storage.sessionmaker() as session:
        tenant = TenantService(session).require(tenant_slug)
    return ScimClient(app.test_client(), new_token(storage, tenant))


def test_tenant_profiles(run):
    name = slug()
    created = run("tenant", "create", name, "--profile", "entra")
    assert created.exit_code == 0 and "mapping profile entra" in created.output
    rows = [json.loads(line) for line in run("tenant", "list", "--json").output.splitlines()]
    assert next(r for r in rows if r["slug"] == name)["profile"] == "entra"
    assert run("tenant", "set-profile", name, "okta").exit_code == 0
    rows = [json.loads(line) for line in run("tenant", "list", "--json").output.splitlines()]
    assert next(r for r in rows if r["slug"] == name)["profile"] == "okta"
    refused = run("tenant", "set-profile", name, "nope")
    assert refused.exit_code == 1 and "unknown mapping profile 'nope'" in refused.output
    refused = run("tenant", "create", slug(), "--profile", "nope")
    assert refused.exit_code == 1 and "entra, generic, okta" in refused.output
    default = slug()
    run("tenant", "create", default)
    rows = [json.loads(line) for line in run("tenant", "list", "--json").output.splitlines()]
    assert next(r for r in rows if r["slug"] == default)["profile"] == "generic"


def test_mappings_check(run, tmp_path):
    result = run("mappings", "check")
    assert result.exit_code == 0
    assert [line.split(" (")[0] for line in result.output.splitlines()] == [
        f"ok: {SHIPPED / name}" for name in ("entra.toml", "generic.toml", "okta.toml")]
    broken = tmp_path / "broken.toml"
    broken.write_text("[orgs.org_id]\npath = 'emails.value'\n", encoding="utf-8")
    result = run("mappings", "check", str(SHIPPED / "okta.toml"), str(broken))
    assert result.exit_code == 1
    assert f"ok: {SHIPPED / 'okta.toml'}" in result.stdout
    assert result.stderr.strip() == (f"error: {broken}: orgs.org_id.path: 'emails.value': unknown attribute for "
                                     "resource type Group")
    # The directory setting is honoured, and an invalid profile there stops every command that needs one.
    result = run("tenant", "create", slug(), env={"SCIM_BRIDGE_MAPPINGS_DIR": str(tmp_path)})
    assert result.exit_code == 1 and "orgs.org_id.path" in result.output


def test_orgs_variables_and_events(run, app, storage):
    name = slug()
    assert run("tenant", "create", name, "--profile", "generic").exit_code == 0
    scim = scim_for(app, storage, name)
    user = scim.create_user("vera@x.test", name={"givenName": "Vera", "familyName": "V"},
                            **{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Ops"}})
    assert run("org", "create", "--tenant", name, "4711", "ACME").exit_code == 0
    assert run("org", "create", "--tenant", name, "4711", "Again").exit_code == 1
    group = scim.post("/Groups", {"schemas": [GROUP], "displayName": "acme", "externalId": "4711"})
    assert group.status_code == 409  # generic: on_existing_org_id = "reject"
    assert run("org", "delete", "--tenant", name, "4711").exit_code == 0
    group = scim.create_group("acme", [user["id"]], externalId="4711")
    result = run("user", "variables", "--tenant", name, "VERA@x.test")
    assert result.exit_code == 0
    assert json.loads(result.output) == {"org_id": "4711", "org_name": "acme", "org_ids": ["4711"],
                                         "role": "Viewer", "department": "Ops", "active": True}
    assert run("user", "variables", "--tenant", name, "nobody").exit_code == 1

    assert run("org", "rename", "--tenant", name, "4711", "ACME GmbH").exit_code == 0
    assert run("org", "set-id", "--tenant", name, "4711", "4712").exit_code == 0
    orgs = [json.loads(line) for line in run("org", "list", "--tenant", name, "--json").output.splitlines()]
    assert [(o["org_id"], o["name"], o["source"], o["group"], o["name_locked"]) for o in orgs] == [
        ("4712", "ACME GmbH", "idp", group["id"], True)]

    events = [json.loads(line) for line in run("events", "--tenant", name).output.splitlines()]
    assert [e["type"] for e in events] == [
        "user.provisioned", "org.created", "org.deleted", "org.created", "membership.added",
        "user.primary_org_changed", "org.renamed", "org.rekeyed"]
    assert events[1]["after"]["source"] == "manual" and events[3]["after"]["source"] == "idp"
    assert events[-1]["before"] == {"org_id": "4711"} and events[-1]["after"] == {"org_id": "4712"}
    assert [e["cursor"] for e in events] == sorted(e["cursor"] for e in events)
    assert {"cursor", "type", "subject", "before", "after", "request_id", "occurred_at"} == set(events[0])
    after = run("events", "--tenant", name, "--after", str(events[-3]["cursor"]), "--limit", "1")
    (only,) = [json.loads(line) for line in after.output.splitlines()]
    assert only["cursor"] == events[-2]["cursor"]
    assert run("events", "--tenant", "no-such-tenant").exit_code == 1


def test_set_profile_then_resync(run, app, storage):
    """Groups pushed under one profile are re-read under another; users from before mapping get a state."""
    from datetime import UTC
    from datetime import datetime

    from sqlalchemy import insert

    from scim_bridge.storage.models import GroupMember
    from scim_bridge.storage.models import User

    name = slug()
    run("tenant", "create", name)  # generic: a group without externalId is a plain group
    scim = scim_for(app, storage, name)
    alice = scim.create_user("alice@x.test", emails=[{"value": "alice@work.test", "type": "work"}])
    group = scim.create_group("ORG-5 Five", [alice["id"]])
    with storage.sessionmaker() as session:
        tenant_id = TenantService(session).require(name).id
    legacy = uuid.uuid4()
    with storage.engine.begin() as conn:  # a user and membership from before org mapping existed
        now = datetime.now(UTC)
        conn.execute(insert(User.__table__), [{"id": legacy, "tenant_id": tenant_id, "user_name": "old@x.test",
                                               "user_name_key": "old@x.test", "active": True, "version": 1,
                                               "created": now, "last_modified": now}])
        conn.execute(insert(GroupMember.__table__), [{"tenant_id": tenant_id, "group_id": uuid.UUID(group["id"]),
                                                      "user_id": legacy, "created": now}])
    assert json.loads(run("user", "variables", "--tenant", name, "alice@x.test").output)["org_id"] is None
    assert run("tenant", "set-profile", name, "okta").exit_code == 0
    assert run("org", "resync", "--tenant", name).exit_code == 0
    orgs = [json.loads(line) for line in run("org", "list", "--tenant", name, "--json").output.splitlines()]
    assert [(o["org_id"], o["name"], o["group"]) for o in orgs] == [("5", "Five", group["id"])]
    assert json.loads(run("user", "variables", "--tenant", name, "alice@x.test").output)["org_id"] == "5"
    old = json.loads(run("user", "variables", "--tenant", name, "old@x.test").output)
    assert old["org_id"] == "5" and old["role"] == "Viewer"
    events = [json.loads(line) for line in run("events", "--tenant", name).output.splitlines()]
    added = [e for e in events if e["type"] == "membership.added"]
    assert {e["after"]["user_name"] for e in added} == {"alice@x.test", "old@x.test"}
    assert {e["after"]["email"] for e in added} == {"alice@work.test", "old@x.test"}
    assert run("org", "resync", "--tenant", name).exit_code == 0  # idempotent: no new events
    assert len(run("events", "--tenant", name).output.splitlines()) == len(events)
