"""CLI parity with the admin API: ``scim-bridge org …`` and ``scim-bridge reconcile …``.

Human tables by default, ``--json`` for scripts (one object per line for lists, one document
otherwise), progress bars on stderr for imports and plan applications. The same services as the
admin API and the console do the work; commands only parse, call and print.

Exit codes scripts can rely on:

====  ==========================================================================
0     success (``reconcile report --check``: no findings)
1     refused: invalid input, a conflict, a rule (e.g. deleting an IdP-managed org), a failed plan
2     usage error (unknown option, missing argument)
3     not found: tenant, org, user, group or plan
4     stale plan: the data changed since the plan was made (make a new one)
5     ``reconcile report --check`` found something
====  ==========================================================================
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy.orm import Session

from scim_bridge import cli_context
from scim_bridge.admin.errors import AdminError
from scim_bridge.admin.errors import NotFound
from scim_bridge.admin.errors import StalePlan
from scim_bridge.admin.orgs_admin import OrgAdmin
from scim_bridge.admin.orgs_admin import OrgQuery
from scim_bridge.admin.orgs_admin import OrgView
from scim_bridge.admin.plans import PlanService
from scim_bridge.admin.plans import export_rows
from scim_bridge.admin.plans import parse_iam_orgs
from scim_bridge.admin.plans import to_csv
from scim_bridge.admin.reconcile import SECTIONS
from scim_bridge.admin.reconcile import ReconcileService
from scim_bridge.admin.schemas import ReportSchema
from scim_bridge.admin.schemas import report_dict
from scim_bridge.domain.tenants import TenantService
from scim_bridge.mappings.model import Profile
from scim_bridge.storage.models import ReconcilePlan
from scim_bridge.storage.models import Tenant
from scim_bridge.storage.session import cli_unit_of_work

ACTOR = "cli"
EXIT_FINDINGS = 5


class AdminCliError(click.ClickException):
    """A refused admin command, with the exit code of its kind of error."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@contextmanager
def tenant_session(slug: str) -> Iterator[tuple[Session, Tenant, Profile]]:
    """Open one transaction on tenant *slug*; map admin errors to their exit codes."""
    env = cli_context.current()
    try:
        with cli_unit_of_work(env.storage) as session:
            tenant = TenantService(session).by_slug(slug)
            if tenant is None:
                raise NotFound(f"no tenant {slug!r} (see `scim-bridge tenant list`)")
            yield session, tenant, env.profile(tenant.profile)
    except AdminError as exc:
        raise AdminCliError(exc.message, exc.exit_code) from exc


def _admin(session: Session, tenant: Tenant, profile: Profile) -> OrgAdmin:
    return OrgAdmin(session, tenant.id, profile, ACTOR)


def _conflicts(session: Session, tenant: Tenant, profile: Profile) -> dict[uuid.UUID, list[str]]:
    return ReconcileService(session, tenant.id, profile).report().org_conflicts()


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Render rows as an aligned plain-text table."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def org_json(view: OrgView) -> dict[str, Any]:
    """Return an org as the JSON line of ``org list --json`` (snake_case like the rest of the CLI)."""
    return _jsonable({"org_id": view.org_id, "name": view.name, "source": view.source, "group": view.group_id,
                      "group_name": view.group_name, "members": view.member_count, "orphaned": view.orphaned,
                      "conflict": view.conflict, "conflicts": list(view.conflicts), "name_locked": view.name_locked,
                      "deletable": view.deletable, "id": view.id, "version": view.version})


tenant_option = click.option("--tenant", "slug", required=True, help="Tenant slug.")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


# -- org -------------------------------------------------------------------------------------------

@click.command("list")
@tenant_option
@click.option("--search", "-q", help="Case-insensitive substring of the name or org_id.")
@click.option("--source", type=click.Choice(["idp", "manual"]))
@click.option("--orphaned/--not-orphaned", default=None, help="Only orphaned (or not orphaned) orgs.")
@click.option("--conflict", is_flag=True, default=None, help="Only orgs named by a conflicting report finding.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@json_option
def org_list(slug: str, search: str | None, source: str | None, orphaned: bool | None, conflict: bool | None,
             limit: int, offset: int, as_json: bool) -> None:
    """List the tenant's organizations by org_id."""
    with tenant_session(slug) as (session, tenant, profile):
        page = _admin(session, tenant, profile).list(OrgQuery(search, source, orphaned, None, conflict, offset, limit),
                                                     _conflicts(session, tenant, profile))
    if as_json:
        for view in page.items:
            click.echo(json.dumps(org_json(view)))
        return
    click.echo(table(["org_id", "name", "source", "group", "members", "flags"],
                     [(v.org_id, v.name, v.source, v.group_name, v.member_count, _flags(v)) for v in page.items]))
    more = f" (next: --offset {page.next_offset})" if page.next_offset is not None else ""
    click.echo(f"{len(page.items)} of {page.total} organization(s){more}", err=True)


def _flags(view: OrgView) -> str:
    flags = (["orphaned"] if view.orphaned else []) + (["conflict"] if view.conflict else [])
    return ",".join(flags + (["name-locked"] if view.name_locked and view.source == "idp" else []))


@click.command("show")
@tenant_option
@click.argument("org_id")
@json_option
def org_show(slug: str, org_id: str, as_json: bool) -> None:
    """Show organization ORG_ID with its members."""
    with tenant_session(slug) as (session, tenant, profile):
        admin = _admin(session, tenant, profile)
        org = admin.by_org_id(org_id)
        view = admin.get(org.id, _conflicts(session, tenant, profile))
        members = admin.members(org.id, 0, 100_000).items
    if as_json:
        body = org_json(view) | {"members": [_jsonable({"user_id": m.user_id, "user_name": m.user_name,
                                                        "sources": list(m.sources), "primary": m.primary})
                                             for m in members]}
        click.echo(json.dumps(body))
        return
    group = f"{view.group_name} ({view.group_id})" if view.group_id else "-"
    for label, value in (("org_id", view.org_id), ("name", view.name), ("source", view.source), ("group", group),
                         ("orphaned", view.orphaned), ("conflicts", ", ".join(view.conflicts) or "-"),
                         ("id", view.id), ("members", view.member_count)):
        click.echo(f"{label + ':':<11}{_cell(value)}")
    if members:
        click.echo(table(["user", "via", "primary"], [(m.user_name, "+".join(m.sources), m.primary) for m in members]))


@click.command("create")
@tenant_option
@click.argument("org_id")
@click.argument("name")
@json_option
def org_create(slug: str, org_id: str, name: str, as_json: bool) -> None:
    """Create organization ORG_ID called NAME by hand (a pushed group may link to it)."""
    with tenant_session(slug) as (session, tenant, profile):
        admin = _admin(session, tenant, profile)
        view = admin.get(admin.create(org_id, name).id)
    click.echo(json.dumps(org_json(view)) if as_json else f"created organization {view.org_id} ({view.name})")


@click.command("edit")
@tenant_option
@click.argument("org_id")
@click.option("--name", help="New name (IdP renames then leave it alone, per the profile).")
@click.option("--org-id", "new_org_id", help="New org_id (recorded as org.rekeyed with before/after).")
@json_option
def org_edit(slug: str, org_id: str, name: str | None, new_org_id: str | None, as_json: bool) -> None:
    """Rename and/or re-key organization ORG_ID."""
    if name is None and new_org_id is None:
        raise click.UsageError("give --name and/or --org-id")
    with tenant_session(slug) as (session, tenant, profile):
        admin = _admin(session, tenant, profile)
        org = admin.edit(admin.by_org_id(org_id), name=name, org_id=new_org_id)
        view = admin.get(org.id)
    click.echo(json.dumps(org_json(view)) if as_json else f"organization {org_id} is now {view.org_id} ({view.name})")


@click.command("rename", hidden=True)
@tenant_option
@click.argument("org_id")
@click.argument("name")
def org_rename(slug: str, org_id: str, name: str) -> None:
    """Rename organization ORG_ID (same as ``org edit ORG_ID --name NAME``)."""
    with tenant_session(slug) as (session, tenant, profile):
        admin = _admin(session, tenant, profile)
        admin.edit(admin.by_org_id(org_id), name=name)
    click.echo(f"renamed organization {org_id}")


@click.command("set-id", hidden=True)
@tenant_option
@click.argument("org_id")
@click.argument("new_org_id")
def org_set_id(slug: str, org_id: str, new_org_id: str) -> None:
    """Change the org_id (same as ``org edit ORG_ID --org-id NEW_ORG_ID``)."""
    with tenant_session(slug) as (session, tenant, profile):
        admin = _admin(session, tenant, profile)
        admin.edit(admin.by_org_id(org_id), org_id=new_org_id)
    click.echo(f"organization {org_id} is now {new_org_id}")


@click.command("delete")
@tenant_option
@click.argument("org_id")
def org_delete(slug: str, org_id: str) -> None:
    """Delete organization ORG_ID (only one created by hand and unlinked, or orphaned)."""
    with tenant_session(slug) as (session, tenant, profile):
        admin = _admin(session, tenant, profile)
        admin.delete(admin.by_org_id(org_id))
    click.echo(f"deleted organization {org_id}")


@click.command("assign")
@tenant_option
@click.argument("org_id")
@click.argument("user")
def org_assign(slug: str, org_id: str, user: str) -> None:
    """Put USER (userName or id) in organization ORG_ID by hand; IdP syncs leave it alone."""
    with tenant_session(slug) as (session, tenant, profile):
        admin = _admin(session, tenant, profile)
        row = admin.require_user(user)
        admin.assign(admin.by_org_id(org_id), row)
    click.echo(f"assigned {row.user_name} to {org_id} (manual)")


@click.command("unassign")
@tenant_option
@click.argument("org_id")
@click.argument("user")
def org_unassign(slug: str, org_id: str, user: str) -> None:
    """Remove USER's manual membership of ORG_ID (IdP memberships follow the groups)."""
    with tenant_session(slug) as (session, tenant, profile):
        admin = _admin(session, tenant, profile)
        row = admin.require_user(user)
        admin.unassign(admin.by_org_id(org_id), row)
    click.echo(f"removed {row.user_name} from {org_id}")


@click.command("link")
@tenant_option
@click.argument("org_id")
@click.argument("group")
def org_link(slug: str, org_id: str, group: str) -> None:
    """Link organization ORG_ID to SCIM group GROUP (displayName or id)."""
    with tenant_session(slug) as (session, tenant, profile):
        admin = _admin(session, tenant, profile)
        row = admin.require_group(group)
        admin.link(admin.by_org_id(org_id), row)
    click.echo(f"linked {org_id} to group {row.display_name}")


@click.command("unlink")
@tenant_option
@click.argument("org_id")
def org_unlink(slug: str, org_id: str) -> None:
    """Unlink organization ORG_ID from its group."""
    with tenant_session(slug) as (session, tenant, profile):
        admin = _admin(session, tenant, profile)
        group = admin.unlink(admin.by_org_id(org_id))
    click.echo(f"unlinked {org_id} from group {group.display_name}")


@click.command("export")
@tenant_option
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--output", "-o", type=click.File("w"), default="-", help="File to write (default: stdout).")
def org_export(slug: str, fmt: str, output: Any) -> None:
    """Export every organization (the CSV reads back with ``org import`` / ``reconcile plan``)."""
    with tenant_session(slug) as (session, tenant, profile):
        rows = export_rows(_admin(session, tenant, profile).all(_conflicts(session, tenant, profile)))
    output.write(to_csv(rows) if fmt == "csv" else json.dumps(rows, indent=2) + "\n")


@click.command("import")
@tenant_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), help="Default: from the file name or content.")
@click.option("--dry-run", is_flag=True, help="Make and print the plan only.")
@json_option
def org_import(slug: str, file: Path, fmt: str | None, dry_run: bool, as_json: bool) -> None:
    """Bring the orgs in line with an IAM list (CSV org_id,name or JSON): plan, then apply at once."""
    plan_id = _make_plan(slug, file, fmt, as_json and dry_run)
    if not dry_run:
        _apply_plan(slug, plan_id, as_json)


# -- reconcile -------------------------------------------------------------------------------------

@click.group("reconcile")
def reconcile_group() -> None:
    """Reconcile hand-made orgs with what the identity provider pushes (report, plans)."""


@reconcile_group.command("report")
@tenant_option
@json_option
@click.option("--check", is_flag=True, help=f"Exit with {EXIT_FINDINGS} when there is any finding.")
def reconcile_report(slug: str, as_json: bool, check: bool) -> None:
    """Print the reconciliation report: findings per kind, with counts and suggested actions."""
    with tenant_session(slug) as (session, tenant, profile):
        report = ReconcileService(session, tenant.id, profile).report()
    if as_json:
        click.echo(json.dumps(ReportSchema().dump(report_dict(report, SECTIONS))))
    else:
        click.echo(f"tenant {slug}, profile {report.profile}: {report.total} finding(s)")
        for kind, title in SECTIONS:
            items = report.findings[kind]
            click.echo(f"\n{title} [{kind}]: {len(items)}")
            for finding in items:
                click.echo(f"  - {finding.message}")
                click.echo(f"    suggested: {finding.suggestion.action}: {finding.suggestion.label}")
    if check and report.total:
        sys.exit(EXIT_FINDINGS)


@reconcile_group.command("plan")
@tenant_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), help="Default: from the file name or content.")
@json_option
def reconcile_plan(slug: str, file: Path, fmt: str | None, as_json: bool) -> None:
    """Make a plan from FILE (the IAM export, CSV org_id,name or JSON) and print it: a dry run."""
    _make_plan(slug, file, fmt, as_json)


@reconcile_group.command("apply")
@tenant_option
@click.argument("plan_id")
@json_option
def reconcile_apply(slug: str, plan_id: str, as_json: bool) -> None:
    """Apply plan PLAN_ID all or nothing; refused (exit 4) when the data changed since it was made."""
    _apply_plan(slug, plan_id, as_json)


@reconcile_group.command("show")
@tenant_option
@click.argument("plan_id")
@json_option
def reconcile_show(slug: str, plan_id: str, as_json: bool) -> None:
    """Show plan PLAN_ID with its lines and outcome."""
    with tenant_session(slug) as (session, tenant, profile):
        service = PlanService(session, tenant.id, profile, ACTOR)
        plan = service.get(plan_id)
        _print_plan(plan, service.lines(plan), as_json)


@reconcile_group.command("plans")
@tenant_option
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@json_option
def reconcile_plans(slug: str, limit: int, as_json: bool) -> None:
    """List the tenant's plans, newest first."""
    with tenant_session(slug) as (session, tenant, profile):
        plans = PlanService(session, tenant.id, profile, ACTOR).list(0, limit).items
        rows = [_plan_json(p) for p in plans]
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    click.echo(table(["plan", "created", "by", "source", "status", "changes"],
                     [(r["id"], r["created"][:19], r["created_by"], r["source_name"], r["status"],
                       sum(r["summary"].values())) for r in rows]))


def _make_plan(slug: str, file: Path, fmt: str | None, as_json: bool) -> str:
    try:
        content = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        raise AdminCliError(f"cannot read {file}: {exc.strerror}") from exc
    try:
        kind, entries = parse_iam_orgs(content, fmt, None if str(file) == "-" else file.name)
    except AdminError as exc:
        raise AdminCliError(exc.message, exc.exit_code) from exc
    with tenant_session(slug) as (session, tenant, profile):
        service = PlanService(session, tenant.id, profile, ACTOR)
        plan = service.make(entries, file.name if str(file) != "-" else "stdin", kind)
        _print_plan(plan, service.lines(plan), as_json, slug)
        return str(plan.id)


def _apply_plan(slug: str, plan_id: str, as_json: bool) -> None:
    with tenant_session(slug) as (session, tenant, profile):
        service = PlanService(session, tenant.id, profile, ACTOR)
        total = len(service.lines(service.get(plan_id)))
        with click.progressbar(length=total, label="applying", file=sys.stderr) as bar:
            plan = service.apply(plan_id, _advance(bar))
        lines = service.lines(plan)
        _print_plan(plan, lines, as_json)
    if plan.status == "refused":
        raise AdminCliError(plan.outcome or "stale plan", StalePlan.exit_code)
    if plan.status == "failed":
        raise AdminCliError(plan.outcome or "the plan failed")


def _advance(bar: Any) -> Callable[[int, int], None]:
    def advance(done: int, total: int) -> None:
        bar.update(done - bar.pos)

    return advance


def _plan_json(plan: ReconcilePlan, lines: list[Any] | None = None) -> dict[str, Any]:
    body = {"id": plan.id, "created": plan.created, "created_by": plan.created_by, "source_name": plan.source_name,
            "source_format": plan.source_format, "entries": plan.entry_count, "status": plan.status,
            "summary": plan.summary, "notes": (plan.notes or {}).get("notes", []), "applied_at": plan.applied_at,
            "applied_by": plan.applied_by, "outcome": plan.outcome}
    if lines is not None:
        body["lines"] = [{"position": line.position, "action": line.action, "org_id": line.org_id,
                          "new_org_id": line.new_org_id, "name": line.name, "new_name": line.new_name,
                          "group": line.group_name, "reason": line.reason, "status": line.status} for line in lines]
    result: dict[str, Any] = _jsonable(body)
    return result


def _print_plan(plan: ReconcilePlan, lines: list[Any], as_json: bool, slug: str = "<slug>") -> None:
    if as_json:
        click.echo(json.dumps(_plan_json(plan, lines)))
        return
    click.echo(f"plan {plan.id} ({plan.status}): {plan.entry_count} IAM entries, {len(lines)} change(s)")
    if lines:
        click.echo(table(["#", "action", "org", "change", "reason", "status"],
                         [(line.position, line.action, line.org_id or line.new_org_id, _change(line), line.reason,
                           line.status) for line in lines]))
    for note in (plan.notes or {}).get("notes", []):
        click.echo(f"note: {note}")
    if plan.outcome:
        click.echo(f"outcome: {plan.outcome}")
    elif plan.status == "planned":
        click.echo(f"dry run: apply with `scim-bridge reconcile apply --tenant {slug} {plan.id}`")


def _change(line: Any) -> str:
    if line.action == "rename":
        return f"{line.name!r} -> {line.new_name!r}"
    if line.action == "rekey":
        return f"{line.org_id} -> {line.new_org_id}"
    if line.action == "create":
        return repr(line.new_name)
    if line.action in ("link", "unlink"):
        return f"group {line.group_name!r}"
    return ""


ORG_COMMANDS = (org_list, org_show, org_create, org_edit, org_rename, org_set_id, org_delete, org_assign,
                org_unassign, org_link, org_unlink, org_export, org_import)


def install(org: click.Group, main: click.Group) -> None:
    """Attach the admin commands: every ``org`` subcommand above (replacing same-named ones), and ``reconcile``."""
    for command in ORG_COMMANDS:
        org.add_command(command)
    main.add_command(reconcile_group)
