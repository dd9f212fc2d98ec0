"""The ``scim-bridge`` command line: database, tenants and tokens. Non-interactive, script-friendly.

Exit codes: 0 success, 1 refused (message on stderr), 2 usage error.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import click
from flask import Flask

from scim_bridge.auth import tokens
from scim_bridge.domain.tenants import TenantError
from scim_bridge.domain.tenants import TenantService
from scim_bridge.settings import Settings
from scim_bridge.settings import SettingsError
from scim_bridge.storage import migrations
from scim_bridge.storage.session import Storage
from scim_bridge.storage.session import cli_unit_of_work

TENANT_SETTINGS = {"ignore_unknown_attributes": bool}


class Context:
    """Settings and storage, built on first use (``--help`` needs neither)."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._storage: Storage | None = None

    @property
    def settings(self) -> Settings:
        """Return the settings from the environment."""
        if self._settings is None:
            try:
                self._settings = Settings.from_env()
            except SettingsError as exc:
                raise click.ClickException(str(exc)) from exc
        return self._settings

    @property
    def storage(self) -> Storage:
        """Return the storage for the configured database."""
        if self._storage is None:
            self._storage = Storage.build(self.settings.database_url,
                                          busy_timeout_ms=self.settings.sqlite_busy_timeout_ms)
        return self._storage


pass_ctx = click.make_pass_decorator(Context, ensure=True)


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
@pass_ctx
def tenant_create(ctx: Context, slug: str, name: str | None, if_missing: bool) -> None:
    """Create tenant SLUG."""
    with cli_unit_of_work(ctx.storage) as session:
        service = TenantService(session)
        if if_missing and service.by_slug(slug) is not None:
            click.echo(f"tenant {slug} already exists")
            return
        try:
            created = service.create(slug, name)
        except TenantError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"created tenant {created.slug} ({created.id})")


@tenant.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_ctx
def tenant_list(ctx: Context, as_json: bool) -> None:
    """List tenants."""
    with cli_unit_of_work(ctx.storage) as session:
        for t in TenantService(session).all():
            row = {"slug": t.slug, "name": t.name, "id": str(t.id), "settings": t.settings}
            click.echo(json.dumps(row) if as_json else f"{t.slug}\t{t.name}\t{t.id}")


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
    with cli_unit_of_work(ctx.storage) as session:
        try:
            tenant_row = TenantService(session).require(slug)
            minted = tokens.mint_token(session, tenant_row.id, scope=scope, description=description,
                                       expires_in=timedelta(days=expires_in) if expires_in else None)
        except (TenantError, tokens.TokenError) as exc:
            raise click.ClickException(str(exc)) from exc
        expiry = minted.record.expires_at.isoformat() if minted.record.expires_at else "never"
        click.echo(f"token {minted.record.id} for tenant {slug}, scope '{minted.record.scope}', expires {expiry}")
    click.echo(minted.token)


@token.command("list")
@click.option("--tenant", "slug", required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_ctx
def token_list(ctx: Context, slug: str, as_json: bool) -> None:
    """List a tenant's tokens (never the secrets)."""
    with cli_unit_of_work(ctx.storage) as session:
        try:
            tenant_row = TenantService(session).require(slug)
        except TenantError as exc:
            raise click.ClickException(str(exc)) from exc
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
    with cli_unit_of_work(ctx.storage) as session:
        try:
            tenant_row = TenantService(session).require(slug)
        except TenantError as exc:
            raise click.ClickException(str(exc)) from exc
        record = tokens.revoke_token(session, tenant_row.id, parsed)
        if record is None:
            raise click.ClickException(f"tenant {slug} has no token {token_id}")
    click.echo(f"revoked token {token_id}")


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
    click.echo(f"SCIM base URL: {base_url.rstrip('/')}/scim/v2")
    click.echo(f"Tenant: {slug}")
    click.echo("Bearer token (valid 30 days):")
    click.echo(minted.token)


def register(app: Flask) -> None:
    """Expose the same commands under ``flask --app wsgi``."""
    for command in (db, tenant, token, bootstrap):
        app.cli.add_command(command)
