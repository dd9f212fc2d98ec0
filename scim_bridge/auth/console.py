"""Admin console sessions: sign in with an admin credential, re-checked on every request.

An admin signs in with either an admin-scope bearer token (``sbt_…``) or an OAuth client id and
secret whose client may use the ``admin`` scope. The browser then holds only a random session id
(in Flask's signed, HttpOnly cookie); the database keeps its SHA-256 with the tenant, the
credential it was opened with, and its expiry. Every request re-checks that credential, so
revoking the token, disabling the client, removing its ``admin`` scope or rotating its secret
signs the console out at once, on every worker. Sign-out ends the row: a copied cookie is dead.

Every sign-in (success or failure) and sign-out is audited; a failure never says which part of the
credential was wrong, and never stores what was typed.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from scim_bridge.auth.clients import check_secret
from scim_bridge.auth.clients import find_client
from scim_bridge.auth.tokens import ADMIN
from scim_bridge.auth.tokens import is_active
from scim_bridge.auth.tokens import lookup_token
from scim_bridge.domain import audit
from scim_bridge.storage.base import utcnow
from scim_bridge.storage.models import AccessToken
from scim_bridge.storage.models import ConsoleSession
from scim_bridge.storage.models import OAuthClient
from scim_bridge.storage.models import Tenant

TOKEN = "token"
CLIENT = "client"
SIGN_IN = "console.sign_in"
SIGN_OUT = "console.sign_out"
# last_seen is written at most this often (a page view should not always be a write).
TOUCH_EVERY = timedelta(seconds=30)


class ConsoleAuthError(ValueError):
    """Sign-in refused; one message whatever was wrong. Carries what may be audited (identifiers only)."""

    def __init__(self, message: str, tenant_id: uuid.UUID | None = None, claimed: str | None = None) -> None:
        super().__init__(message)
        self.tenant_id = tenant_id
        self.claimed = claimed


@dataclass(frozen=True, slots=True)
class ConsoleIdentity:
    """Who is signed in: tenant, credential, and the actor name used in the audit log."""

    session_key: str
    tenant_id: uuid.UUID
    tenant_slug: str
    tenant_name: str
    tenant_profile: str
    credential_kind: str
    credential_ref: str
    actor: str
    expires_at: datetime


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _has_admin(scope: str) -> bool:
    return ADMIN in scope.split()


def sign_in(session: Session, token: str | None, client_id: str | None, client_secret: str | None,
            lifetime: timedelta, request_id: str | None = None, remote_addr: str | None = None,
            ) -> tuple[str, ConsoleIdentity]:
    """Check an admin credential and open a session; return the raw session id (for the cookie)."""
    now = utcnow()
    expires = now + lifetime
    kind, ref, check, tenant, actor_ref = None, None, None, None, None
    if client_id:
        client = find_client(session, client_id.strip())
        if (client is not None and client.disabled_at is None and _has_admin(client.scope)
                and check_secret(client, client_secret or "", now)):
            kind, ref, check, actor_ref = CLIENT, client.client_id, client.secret_hash, client.client_id
            tenant = session.get(Tenant, client.tenant_id)
        _fail_unless(tenant, client.tenant_id if client else None, client.client_id if client else None)
    elif token:
        found = lookup_token(session, token.strip())
        if (found is not None and found.client_usable and is_active(found.record, now)
                and _has_admin(found.record.scope)):
            kind, ref, actor_ref = TOKEN, str(found.record.id), f"token:{found.record.id}"
            tenant = found.tenant
            if found.record.expires_at is not None:
                expires = min(expires, found.record.expires_at)
        _fail_unless(tenant, found.tenant.id if found else None, f"token:{found.record.id}" if found else None)
    else:
        raise ConsoleAuthError("enter an admin token, or a client id and secret")
    assert tenant is not None and kind is not None and ref is not None
    raw = secrets.token_urlsafe(32)
    actor = f"console:{actor_ref}"
    session.add(ConsoleSession(id=_digest(raw), tenant_id=tenant.id, credential_kind=kind, credential_ref=ref,
                               credential_check=_digest(check) if check else None, actor=actor, created=now,
                               last_seen=now, expires_at=expires))
    audit.record(session, SIGN_IN, audit.SUCCESS, tenant_id=tenant.id, client=actor, resource_type="console",
                 detail=f"signed in with a {kind}", request_id=request_id, remote_addr=remote_addr)
    session.flush()
    return raw, ConsoleIdentity(_digest(raw), tenant.id, tenant.slug, tenant.name, tenant.profile, kind, ref, actor,
                                expires)


def _fail_unless(tenant: Tenant | None, claimed_tenant: uuid.UUID | None, claimed: str | None) -> None:
    if tenant is None:
        raise ConsoleAuthError("sign-in failed: the credential is invalid, expired or revoked, or lacks the admin "
                               "scope", claimed_tenant, claimed)


def record_failure(session: Session, error: ConsoleAuthError, request_id: str | None = None,
                   remote_addr: str | None = None) -> None:
    """Audit a refused sign-in (in a transaction of its own: the sign-in's rolled back)."""
    # Only identifiers of real credentials are stored, never what was typed (it may be a secret).
    audit.record(session, SIGN_IN, audit.FAILURE, tenant_id=error.tenant_id,
                 client=f"console:{error.claimed}" if error.claimed else None, resource_type="console", status=401,
                 detail="invalid, expired or revoked credential, or no admin scope", request_id=request_id,
                 remote_addr=remote_addr)


def resume(session: Session, raw: str, idle_timeout: timedelta) -> ConsoleIdentity | None:
    """Return the identity of session *raw*, or ``None`` (and end it) when it or its credential is dead."""
    row = session.get(ConsoleSession, _digest(raw))
    if row is None or row.ended_at is not None:
        return None
    now = utcnow()
    tenant = session.get(Tenant, row.tenant_id)
    if tenant is None or row.expires_at <= now or row.last_seen + idle_timeout <= now or not _credential_ok(
            session, row, now):
        row.ended_at = now
        session.flush()
        return None
    if now - row.last_seen >= TOUCH_EVERY:
        row.last_seen = now
        session.flush()
    return ConsoleIdentity(row.id, tenant.id, tenant.slug, tenant.name, tenant.profile, row.credential_kind,
                           row.credential_ref, row.actor, row.expires_at)


def _credential_ok(session: Session, row: ConsoleSession, now: datetime) -> bool:
    if row.credential_kind == TOKEN:
        record = session.get(AccessToken, uuid.UUID(row.credential_ref))
        if record is None or record.tenant_id != row.tenant_id or not is_active(record, now):
            return False
        if record.client_id is not None:
            client = session.scalars(select(OAuthClient).where(OAuthClient.client_id == record.client_id)).first()
            if client is None or client.disabled_at is not None:
                return False
        return _has_admin(record.scope)
    client = session.scalars(select(OAuthClient).where(OAuthClient.client_id == row.credential_ref)).first()
    return (client is not None and client.tenant_id == row.tenant_id and client.disabled_at is None
            and _has_admin(client.scope) and _digest(client.secret_hash) == row.credential_check)


def sign_out(session: Session, raw: str, request_id: str | None = None, remote_addr: str | None = None) -> None:
    """End session *raw* (idempotent) and audit it."""
    row = session.get(ConsoleSession, _digest(raw))
    if row is None or row.ended_at is not None:
        return
    row.ended_at = utcnow()
    audit.record(session, SIGN_OUT, audit.SUCCESS, tenant_id=row.tenant_id, client=row.actor, resource_type="console",
                 request_id=request_id, remote_addr=remote_addr)
    session.flush()
