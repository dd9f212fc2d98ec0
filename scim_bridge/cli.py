"""The ``scim-bridge`` command line: database, tenants, tokens, OAuth clients, audit, mapping profiles, orgs,
variables and the event log. Non-interactive, script-friendly.

Exit codes: 0 success, 1 refused (message on stderr), 2 usage error.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import click
from flask import Flask
from sqlalchemy.orm import Session

from scim_bridge.admin import commands as admin_commands
from scim_bridge.auth import tokens
from scim_bridge.auth.clients import ClientError
from scim_bridge.auth.clients import ClientService
from scim_bridge.cli_context import Context
from scim_bridge.domain import audit
from scim_bridge.domain.events import read_events
from scim_bridge.domain.orgs import OrgError
from scim_bridge.domain.orgs import OrgService
from scim_bridge.domain.tenants import DEFAULT_PROFILE
from scim_bridge.domain.tenants import TenantError
from scim_bridge.domain.tenants import TenantService
from scim_bridge.mappings.loader import check_files
from scim_bridge.mappings.loader import load_profile
from scim_bridge.storage import migrations
from scim_bridge.storage.models import Tenant
from scim_bridge.storage.session import cli_unit_of_work

TENANT_SETTINGS = {"ignore_unknown_attributes": bool, "patch_returns_no_content": bool,
                   "group_patch_returns_resource": bool}
CLI_ACTOR = "cli"


pass_ctx = click.make_pass_decorator(Context, ensure=True)


@contextmanager
def tenant_unit(ctx: Context, slug: str, *refusals: type[Exception]) -> Iterator[tuple[Session, Tenant]]:
    """Run one transaction for tenant SLUG; a refusal becomes exit code 1 with its message."""
    with cli_unit_of_work(ctx.storage) as session:
        try:
            yield session, TenantService(session).require(slug)
        except (TenantError, *refusals) as exc:
            raise click.ClickException(str(exc)) from exc


@click.group()
def main() -> None:
    """scim-bridge: SCIM 2.0 for Infinity organizations."""


# -- db -------------------------------------------------------------------------------------------

@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_ctx
def db_upgrade(ctx: Context, revision: str) -> None:
    """Apply migrations up to REVISION."""
    migrations.upgrade(ctx.settings.database_url, revision)
    click.echo(f"database at {', '.join(sorted(migrations.current_revisions(ctx.storage.engine))) or 'base'}")


@db.command("downgrade")
@click.argument("revision")
@pass_ctx
def db_downgrade(ctx: Context, revision: str) -> None:
    """Revert migrations down to REVISION (``base`` empties the database)."""
    migrations.downgrade(ctx.settings.database_url, revision)
    click.echo(f"database at {', '.join(sorted(migrations.current_revisions(ctx.storage.engine))) or 'base'}")


@db.command("current")
@pass_ctx
def db_current(ctx: Context) -> None:
    """Print the applied revision and whether it is the head."""
    current = migrations.current_revisions(ctx.storage.engine)
    state = "head" if current == migrations.head_revisions() else "pending migrations"
    click.echo(f"{', '.join(sorted(current)) or 'base'} ({state})")


# -- tenants --------------------------------------------------------------------------------------

@main.group()
def tenant() -> None:
    """Tenants (Infinity workspaces)."""


@tenant.command("create")
@click.argument("slug")
@click.option("--name", help="Display name (default: the slug).")
@click.option("--if-missing", is_flag=True, help="Succeed quietly when the tenant already exists.")
@click.option("--profile", default=DEFAULT_PROFILE, show_default=True,
              help="Mapping profile (a file in the mappings directory, without .toml).")
@pass_ctx
def tenant_create(ctx: Context, slug: str, name: str | None, if_missing: bool, profile: str) -> None:
    """Create tenant SLUG."""
    with cli_unit_of_work(ctx.storage) as session:
        service = TenantService(session, ctx.profiles)
        if if_missing and service.by_slug(slug) is not None:
            click.echo(f"tenant {slug} already exists")
            return
        try:
            created = service.create(slug, name, profile=profile)
        except TenantError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"created tenant {created.slug} ({created.id}), mapping profile {created.profile}")


@tenant.command("set-profile")
@click.argument("slug")
@click.argument("profile")
@pass_ctx
def tenant_set_profile(ctx: Context, slug: str, profile: str) -> None:
    """Select mapping profile PROFILE for tenant SLUG (for changes that follow; ``org resync`` re-applies it)."""
    with cli_unit_of_work(ctx.storage) as session:
        try:
            TenantService(session, ctx.profiles).set_profile(slug, profile)
        except TenantError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"{slug}: profile = {profile}")


@tenant.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_ctx
def tenant_list(ctx: Context, as_json: bool) -> None:
    """List tenants."""
    with cli_unit_of_work(ctx.storage) as session:
        for t in TenantService(session).all():
            row = {"slug": t.slug, "name": t.name, "id": str(t.id), "profile": t.profile, "settings": t.settings}
            click.echo(json.dumps(row) if as_json else f"{t.slug}\t{t.name}\t{t.id}\t{t.profile}")


@tenant.command("set")
@click.argument("slug")
@click.argument("key", type=click.Choice(sorted(TENANT_SETTINGS)))
@click.argument("value")
@pass_ctx
def tenant_set(ctx: Context, slug: str, key: str, value: str) -> None:
    """Set a per-tenant setting (e.g. ``ignore_unknown_attributes true``)."""
    parsed = value.strip().lower() in ("1", "true", "yes", "on")
    with cli_unit_of_work(ctx.storage) as session:
        try:
            TenantService(session).set_setting(slug, key, parsed)
        except TenantError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"{slug}: {key} = {json.dumps(parsed)}")


# -- tokens ---------------------------------------------------------------------------------------

@main.group()
def token() -> None:
    """Bearer tokens (stored hashed; a secret is shown once)."""


@token.command("create")
@click.option("--tenant", "slug", required=True)
@click.option("--scope", default=tokens.DEFAULT_SCOPE, show_default=True)
@click.option("--expires-in", type=click.IntRange(min=1), help="Lifetime in days (default: no expiry).")
@click.option("--description", help="What the token is for (e.g. 'Okta production').")
@pass_ctx
def token_create(ctx: Context, slug: str, scope: str, expires_in: int | None, description: str | None) -> None:
    """Mint a token; the token alone is printed on the last line."""
    with tenant_unit(ctx, slug, tokens.TokenError) as (session, tenant_row):
        minted = tokens.mint_token(session, tenant_row.id, scope=scope, description=description,
                                   expires_in=timedelta(days=expires_in) if expires_in else None)
        audit.record(session, audit.TOKEN_CREATE, audit.SUCCESS, tenant_id=tenant_row.id, client=CLI_ACTOR,
                     resource_type="token", resource_id=str(minted.record.id), detail=f"scope '{minted.record.scope}'")
        expiry = minted.record.expires_at.isoformat() if minted.record.expires_at else "never"
        click.echo(f"token {minted.record.id} for tenant {slug}, scope '{minted.record.scope}', expires {expiry}")
    click.echo(minted.token)


@token.command("list")
@click.option("--tenant", "slug", required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_ctx
def token_list(ctx: Context, slug: str, as_json: bool) -> None:
    """List a tenant's tokens (never the secrets)."""
    with tenant_unit(ctx, slug) as (session, tenant_row):
        for t in tokens.list_tokens(session, tenant_row.id):
            state = "revoked" if t.revoked_at else ("active" if tokens.is_active(t) else "expired")
            row = {"id": str(t.id), "prefix": t.token_prefix, "kind": t.kind, "scope": t.scope, "state": state,
                   "issued_at": t.issued_at.isoformat(),
                   "expires_at": t.expires_at.isoformat() if t.expires_at else None,
                   "description": t.description}
            if as_json:
                click.echo(json.dumps(row))
            else:
                click.echo("\t".join(str(row[k] or "-") for k in ("id", "prefix", "scope", "state", "expires_at",
                                                                     "description")))


@token.command("revoke")
@click.option("--tenant", "slug", required=True)
@click.argument("token_id")
@pass_ctx
def token_revoke(ctx: Context, slug: str, token_id: str) -> None:
    """Revoke token TOKEN_ID (as shown by ``token list``); it stops working at once."""
    try:
        parsed = uuid.UUID(token_id)
    except ValueError as exc:
        raise click.ClickException(f"{token_id!r} is not a token id (see `scim-bridge token list`)") from exc
    with tenant_unit(ctx, slug) as (session, tenant_row):
        record = tokens.revoke_token(session, tenant_row.id, parsed)
        if record is None:
            raise click.ClickException(f"tenant {slug} has no token {token_id}")
        audit.record(session, audit.TOKEN_REVOKE, audit.SUCCESS, tenant_id=tenant_row.id, client=CLI_ACTOR,
                     resource_type="token", resource_id=token_id)
    click.echo(f"revoked token {token_id}")


# -- OAuth clients --------------------------------------------------------------------------------

@main.group()
def client() -> None:
    """OAuth 2.0 clients for the client credentials grant (secrets stored hashed, shown once)."""


@client.command("create")
@click.option("--tenant", "slug", required=True)
@click.option("--name", required=True, help="What the client is (e.g. 'Entra ID production'); unique per tenant.")
@click.option("--scope", default=tokens.DEFAULT_SCOPE, show_default=True, help="Scopes the client may request.")
@click.option("--introspect", is_flag=True, help="Allow the client to use /oauth/introspect.")
@pass_ctx
def client_create(ctx: Context, slug: str, name: str, scope: str, introspect: bool) -> None:
    """Register a client; print {"client_id", "client_secret"} as JSON (the secret is shown only now)."""
    with tenant_unit(ctx, slug, ClientError) as (session, tenant_row):
        issued = ClientService(session, CLI_ACTOR).create(tenant_row.id, name, scope, can_introspect=introspect)
    click.echo(json.dumps({"client_id": issued.client.client_id, "client_secret": issued.secret}))


@client.command("list")
@click.option("--tenant", "slug", required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_ctx
def client_list(ctx: Context, slug: str, as_json: bool) -> None:
    """List a tenant's clients (never their secrets)."""
    with tenant_unit(ctx, slug) as (session, tenant_row):
        for c in ClientService(session, CLI_ACTOR).list(tenant_row.id):
            row = {"client_id": c.client_id, "name": c.name, "scope": c.scope, "introspect": c.can_introspect,
                   "state": "disabled" if c.disabled_at else "active", "created": c.created.isoformat(),
                   "secret_rotated_at": c.secret_rotated_at.isoformat() if c.secret_rotated_at else None,
                   "previous_secret_valid_until": _iso(c.previous_secret_expires_at)}
            if as_json:
                click.echo(json.dumps(row))
            else:
                click.echo("\t".join(str(row[k]) for k in ("client_id", "name", "scope", "state")))


@client.command("rotate-secret")
@click.option("--tenant", "slug", required=True)
@click.option("--grace", type=click.IntRange(min=0),
              help="Seconds the old secret keeps working [default: SCIM_BRIDGE_CLIENT_SECRET_GRACE_SECONDS].")
@click.argument("client_id")
@pass_ctx
def client_rotate_secret(ctx: Context, slug: str, grace: int | None, client_id: str) -> None:
    """Give CLIENT_ID a new secret; print it as JSON with the end of the old one's grace period."""
    seconds = ctx.settings.client_secret_grace_seconds if grace is None else grace
    with tenant_unit(ctx, slug, ClientError) as (session, tenant_row):
        issued = ClientService(session, CLI_ACTOR).rotate_secret(tenant_row.id, client_id,
                                                                 timedelta(seconds=seconds))
    click.echo(json.dumps({"client_id": issued.client.client_id, "client_secret": issued.secret,
                           "previous_secret_valid_until": _iso(issued.client.previous_secret_expires_at)}))


@client.command("disable")
@click.option("--tenant", "slug", required=True)
@click.argument("client_id")
@pass_ctx
def client_disable(ctx: Context, slug: str, client_id: str) -> None:
    """Stop CLIENT_ID from getting tokens and revoke the ones it has."""
    with tenant_unit(ctx, slug, ClientError) as (session, tenant_row):
        revoked = ClientService(session, CLI_ACTOR).disable(tenant_row.id, client_id)
    click.echo(f"disabled client {client_id}; revoked {revoked} token(s)")


@client.command("enable")
@click.option("--tenant", "slug", required=True)
@click.argument("client_id")
@pass_ctx
def client_enable(ctx: Context, slug: str, client_id: str) -> None:
    """Let a disabled CLIENT_ID get tokens again."""
    with tenant_unit(ctx, slug, ClientError) as (session, tenant_row):
        ClientService(session, CLI_ACTOR).enable(tenant_row.id, client_id)
    click.echo(f"enabled client {client_id}")


@client.command("delete")
@click.option("--tenant", "slug", required=True)
@click.argument("client_id")
@pass_ctx
def client_delete(ctx: Context, slug: str, client_id: str) -> None:
    """Delete CLIENT_ID and revoke its tokens."""
    with tenant_unit(ctx, slug, ClientError) as (session, tenant_row):
        revoked = ClientService(session, CLI_ACTOR).delete(tenant_row.id, client_id)
    click.echo(f"deleted client {client_id}; revoked {revoked} token(s)")


# -- audit ----------------------------------------------------------------------------------------

@main.group("audit")
def audit_group() -> None:
    """The audit log (writes and credential events; never secrets)."""


@audit_group.command("tail")
@click.option("--tenant", "slug", required=True)
@click.option("-n", "--lines", "limit", type=click.IntRange(min=1, max=10_000), default=50, show_default=True)
@click.option("--action", help="Only this action, or this prefix (e.g. 'user', 'client.auth_failed').")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_ctx
def audit_tail(ctx: Context, slug: str, limit: int, action: str | None, as_json: bool) -> None:
    """Print a tenant's most recent audit events, oldest first."""
    with tenant_unit(ctx, slug) as (session, tenant_row):
        for event in audit.tail(session, tenant_row.id, limit, action):
            row = audit.to_dict(event)
            if as_json:
                click.echo(json.dumps(row))
            else:
                resource = "/".join(str(row[k]) for k in ("resource_type", "resource_id") if row[k])
                click.echo("\t".join(str(v or "-") for v in (row["time"], row["action"], row["outcome"],
                                                               row["client"], resource, row["request_id"],
                                                               row["detail"])))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# -- mapping profiles, orgs, variables, events ----------------------------------------------------

@main.group()
def mappings() -> None:
    """Mapping profiles (mappings/*.toml): what pushed groups mean in Infinity."""


@mappings.command("check")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@pass_ctx
def mappings_check(ctx: Context, files: tuple[Path, ...]) -> None:
    """Validate FILES (default: every profile in the mappings directory); name file, key and problem."""
    paths = list(files) or sorted(ctx.settings.mappings_path().glob("*.toml"))
    if not paths:
        raise click.ClickException(f"no mapping profile (*.toml) in {ctx.settings.mappings_path()}")
    errors = {error.file: error for error in check_files(paths)}
    for path in paths:
        if str(path) in errors:
            click.echo(f"error: {errors[str(path)]}", err=True)
        else:
            profile = load_profile(path)
            click.echo(f"ok: {path} (profile {profile.name}: {profile.orgs.groups} groups, "
                       f"org_id from {profile.orgs.org_id.source()}, {profile.membership.mode} membership)")
    if errors:
        sys.exit(1)


@main.group("org")
def org_group() -> None:
    """Infinity organizations of a tenant (admin operations; changes are logged as events)."""


def _org_service(ctx: Context, session: Session, slug: str) -> OrgService:
    """Return the org service of tenant *slug*, under its mapping profile."""
    try:
        tenant_row = TenantService(session).require(slug)
    except TenantError as exc:
        raise click.ClickException(str(exc)) from exc
    return OrgService(session, tenant_row.id, ctx.profile(tenant_row.profile))


@org_group.command("resync")
@click.option("--tenant", "slug", required=True)
@pass_ctx
def org_resync(ctx: Context, slug: str) -> None:
    """Re-apply the tenant's mapping profile to all its groups and users (after set-profile or an upgrade)."""
    with cli_unit_of_work(ctx.storage) as session:
        try:
            _org_service(ctx, session, slug).resync()
        except OrgError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"resynchronised tenant {slug}")


@main.group("user")
def user_group() -> None:
    """Users as Infinity sees them."""


@user_group.command("variables")
@click.option("--tenant", "slug", required=True)
@click.argument("user_name")
@pass_ctx
def user_variables(ctx: Context, slug: str, user_name: str) -> None:
    """Print the resolved variables of USER_NAME (org_id, org_name, org_ids, role, department, extras) as JSON."""
    with cli_unit_of_work(ctx.storage) as session:
        try:
            variables = _org_service(ctx, session, slug).variables(user_name)
        except OrgError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(variables, sort_keys=True))


@main.command("events")
@click.option("--tenant", "slug", required=True)
@click.option("--after", "cursor", type=click.IntRange(min=0), default=0, show_default=True,
              help="Only events after this cursor (the last one applied).")
@click.option("--limit", type=click.IntRange(min=1, max=100_000), default=1000, show_default=True)
@pass_ctx
def events_command(ctx: Context, slug: str, cursor: int, limit: int) -> None:
    """Print the tenant's change log after CURSOR as JSON lines, oldest first."""
    with tenant_unit(ctx, slug) as (session, tenant_row):
        for event in read_events(session, tenant_row.id, cursor, limit):
            click.echo(json.dumps(event))


# -- bootstrap (make run) -------------------------------------------------------------------------

@main.command("bootstrap")
@click.option("--tenant", "slug", default="default", show_default=True)
@click.option("--base-url", default="http://127.0.0.1:8000", show_default=True)
@pass_ctx
def bootstrap(ctx: Context, slug: str, base_url: str) -> None:
    """Migrate, ensure the tenant exists, and print the SCIM base URL and a fresh token."""
    migrations.upgrade(ctx.settings.database_url)
    with cli_unit_of_work(ctx.storage) as session:
        service = TenantService(session)
        tenant_row = service.by_slug(slug) or service.create(slug, "Default workspace")
        minted = tokens.mint_token(session, tenant_row.id, description="make run", expires_in=timedelta(days=30))
        audit.record(session, audit.TOKEN_CREATE, audit.SUCCESS, tenant_id=tenant_row.id, client=CLI_ACTOR,
                     resource_type="token", resource_id=str(minted.record.id), detail="bootstrap")
    click.echo(f"SCIM base URL: {base_url.rstrip('/')}/scim/v2")
    click.echo(f"Tenant: {slug}")
    click.echo("Bearer token (valid 30 days):")
    click.echo(minted.token)


# Org management and reconciliation (issue 6): ``org list|show|create|edit|delete|assign|unassign|link|unlink|
# export|import`` and ``reconcile``, from admin/commands.py (the same services as the admin API and console).
admin_commands.install(org_group, main)


def register(app: Flask) -> None:
    """Expose the same commands under ``flask --app wsgi``."""
    for command in (db, tenant, token, client, audit_group, mappings, org_group, user_group, events_command,
                    bootstrap, admin_commands.reconcile_group):
        app.cli.add_command(command)
