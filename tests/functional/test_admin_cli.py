"""``scim-bridge org …`` and ``scim-bridge reconcile …`` through click's runner (issue 6 §5): output and exit codes."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner

from scim_bridge.cli import main
from scim_bridge.domain.tenants import TenantService
from tests.conftest import ScimClient
from tests.conftest import new_token


@pytest.fixture
def run(database_url, monkeypatch):
    monkeypatch.setenv("SCIM_BRIDGE_DATABASE_URL", database_url)
    monkeypatch.delenv("SCIM_BRIDGE_MAPPINGS_DIR", raising=False)
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None):
        return runner.invoke(main, list(args), catch_exceptions=False, input=stdin)

    return invoke


@pytest.fixture
def slug(run):
    name = f"adm-{uuid.uuid4().hex[:8]}"
    assert run("tenant", "create", name).exit_code == 0
    return name


def scim_for(app, storage, tenant_slug):
    with storage.sessionmaker() as session:
        tenant = TenantService(session).require(tenant_slug)
    return ScimClient(app.test_client(), new_token(storage, tenant))


def lines(result):
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_org_commands(run, slug, app, storage):
    scim = scim_for(app, storage, slug)
    user = scim.create_user("cli-user")
    group = scim.create_group("Team CLI", [user["id"]])
    assert run("org", "create", "--tenant", slug, "4711", "ACME").stdout == "created organization 4711 (ACME)\n"
    refused = run("org", "create", "--tenant", slug, "4711", "Again")
    assert refused.exit_code == 1 and "already used by organization 'ACME'" in refused.stderr
    edited = run("org", "edit", "--tenant", slug, "4711", "--org-id", "4712", "--name", "ACME GmbH", "--json")
    assert edited.exit_code == 0 and json.loads(edited.stdout)["org_id"] == "4712"
    assert run("org", "edit", "--tenant", slug, "4712").exit_code == 2  # nothing to change: usage error
    assert run("org", "link", "--tenant", slug, "4712", "team cli").stdout == "linked 4712 to group Team CLI\n"
    assert run("org", "assign", "--tenant", slug, "4712", "CLI-USER").exit_code == 0
    refused = run("org", "unassign", "--tenant", slug, "4712", "cli-user")
    assert refused.exit_code == 0  # the manual membership goes; the IdP one stays
    refused = run("org", "unassign", "--tenant", slug, "4712", "cli-user")
    assert refused.exit_code == 1 and "through group 'Team CLI'" in refused.stderr
    table = run("org", "list", "--tenant", slug)
    assert table.exit_code == 0 and table.stdout.splitlines()[0].split() == [
        "ORG_ID", "NAME", "SOURCE", "GROUP", "MEMBERS", "FLAGS"]
    assert table.stdout.splitlines()[1].split()[:6] == ["4712", "ACME", "GmbH", "manual", "Team", "CLI"]
    (row,) = lines(run("org", "list", "--tenant", slug, "--json"))
    assert (row["org_id"], row["group"], row["members"], row["source"]) == ("4712", group["id"], 1, "manual")
    shown = json.loads(run("org", "show", "--tenant", slug, "4712", "--json").stdout)
    assert [(m["user_name"], m["sources"]) for m in shown["members"]] == [("cli-user", ["idp"])]
    assert "cli-user" in run("org", "show", "--tenant", slug, "4712").stdout
    assert run("org", "delete", "--tenant", slug, "4712").exit_code == 1  # linked: unlink first
    assert run("org", "unlink", "--tenant", slug, "4712").exit_code == 0
    assert run("org", "delete", "--tenant", slug, "4712").exit_code == 0
    assert run("org", "show", "--tenant", slug, "4712").exit_code == 3
    assert run("org", "list", "--tenant", "no-such-tenant").exit_code == 3
    assert run("org", "assign", "--tenant", slug, "x", "nobody").exit_code == 3


def test_export_import_with_dry_run(run, slug, tmp_path):
    run("org", "create", "--tenant", slug, "1", "One (old)")
    source = tmp_path / "iam.csv"
    source.write_text("org_id,name\n1,One\n2,Two\n", encoding="utf-8")
    dry = run("org", "import", "--tenant", slug, str(source), "--dry-run", "--json")
    plan = json.loads(dry.stdout)
    assert plan["status"] == "planned" and [line["action"] for line in plan["lines"]] == ["create", "rename"]
    assert [r["name"] for r in lines(run("org", "list", "--tenant", slug, "--json"))] == ["One (old)"]
    applied = run("org", "import", "--tenant", slug, str(source))
    assert applied.exit_code == 0 and "outcome: applied 2 change(s)" in applied.stdout
    exported = run("org", "export", "--tenant", slug).stdout
    assert exported.splitlines()[1:] == ["1,One,manual,,,0,false,false", "2,Two,manual,,,0,false,false"]
    as_json = json.loads(run("org", "export", "--tenant", slug, "--format", "json").stdout)
    assert [o["org_id"] for o in as_json] == ["1", "2"]
    again = run("org", "import", "--tenant", slug, "-", "--json", stdin=exported)  # reads back: nothing to do
    assert again.exit_code == 0 and json.loads(again.stdout.splitlines()[-1])["lines"] == []
    bad = tmp_path / "bad.csv"
    bad.write_text("1,\n", encoding="utf-8")
    refused = run("org", "import", "--tenant", slug, str(bad))
    assert refused.exit_code == 1 and "line 1: org_id '1' has no name" in refused.stderr
    assert run("org", "import", "--tenant", slug, str(tmp_path / "missing.csv")).exit_code == 2


def test_reconcile_report_plan_apply_and_stale(run, slug, app, storage, tmp_path):
    scim = scim_for(app, storage, slug)
    scim.create_group("Plain")
    run("org", "create", "--tenant", slug, "9", "Plain")
    report = run("reconcile", "report", "--tenant", slug)
    assert report.exit_code == 0 and "Manual organizations that match a group not linked to them" in report.stdout
    assert "suggested: link: link 'Plain' to group 'Plain'" in report.stdout
    assert run("reconcile", "report", "--tenant", slug, "--check").exit_code == 5
    body = json.loads(run("reconcile", "report", "--tenant", slug, "--json").stdout)
    assert body["counts"]["link_candidates"] == 1 and body["counts"]["unmapped_groups"] == 1

    source = tmp_path / "iam.json"
    source.write_text(json.dumps([{"org_id": "9", "name": "Plain Org"}]), encoding="utf-8")
    made = run("reconcile", "plan", "--tenant", slug, str(source))
    assert made.exit_code == 0 and "rename" in made.stdout and "dry run: apply with" in made.stdout
    plan_id = made.stdout.split()[1]
    listed = lines(run("reconcile", "plans", "--tenant", slug, "--json"))
    assert [(p["id"], p["status"], p["source_name"]) for p in listed] == [(plan_id, "planned", "iam.json")]
    run("org", "edit", "--tenant", slug, "9", "--name", "Changed meanwhile")
    stale = run("reconcile", "apply", "--tenant", slug, plan_id)
    assert stale.exit_code == 4 and "changed since the plan was made" in stale.stderr
    assert json.loads(run("reconcile", "show", "--tenant", slug, plan_id, "--json").stdout)["status"] == "refused"
    fresh = json.loads(run("reconcile", "plan", "--tenant", slug, str(source), "--json").stdout)
    applied = run("reconcile", "apply", "--tenant", slug, fresh["id"], "--json")
    assert applied.exit_code == 0 and json.loads(applied.stdout)["status"] == "applied"
    assert run("reconcile", "apply", "--tenant", slug, fresh["id"]).exit_code == 1  # only once
    assert run("reconcile", "apply", "--tenant", slug, str(uuid.uuid4())).exit_code == 3
