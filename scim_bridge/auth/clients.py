"""OAuth 2.0 clients (RFC 6749 §2): creation, secret rotation, disabling, deletion.

Client secrets are 256-bit random strings, so they are stored as a plain SHA-256 digest: a slow
password hash (scrypt, argon2) only helps against guessing low-entropy secrets, which these are
not, and it would turn the token endpoint into a CPU-exhaustion target. Secrets are compared with
:func:`hmac.compare_digest`. Every change is recorded in the audit log by the service itself, so
that the CLI and the admin API cannot forget to.
"""

from __future__ import annotations

import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from scim_bridge.auth.tokens import TokenError
from scim_bridge.auth.tokens import hash_token
from scim_bridge.auth.tokens import normalize_scope
from scim_bridge.auth.tokens import revoke_client_tokens
from scim_bridge.domain import audit
from scim_bridge.storage.base import utcnow
from scim_bridge.storage.models import OAuthClient

CLIENT_ID_PREFIX = "sbc_"
SECRET_PREFIX = "sbs_"
CLIENT_ID_SHAPE = re.compile(r"^sbc_[A-Za-z0-9_\-]{8,60}$")


class ClientError(ValueError):
    """A client operation was refused (clear message for the CLI and admin API)."""


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    """A client and its new secret (shown once)."""

    client: OAuthClient
    secret: str


def hash_secret(secret: str) -> str:
    """Return the hex SHA-256 digest under which a client secret is stored."""
    return hash_token(secret)


def check_secret(client: OAuthClient, secret: str, now: datetime | None = None) -> bool:
    """Tell whether *secret* is the client's current secret, or its previous one within the grace period."""
    digest = hash_secret(secret)
    current = hmac.compare_digest(digest, client.secret_hash)
    previous = False
    if client.previous_secret_hash and client.previous_secret_expires_at is not None:
        in_grace = client.previous_secret_expires_at > (now or utcnow())
        previous = hmac.compare_digest(digest, client.previous_secret_hash) and in_grace
    return current or previous


def looks_like_client_id(value: str | None) -> bool:
    """Tell whether *value* has the shape of our client ids (so it is safe to store and log)."""
    return bool(value) and CLIENT_ID_SHAPE.match(value or "") is not None


class ClientService:
    """OAuth clients of every tenant. Services flush; the unit of work commits."""

    def __init__(self, session: Session, actor: str, request_id: str | None = None) -> None:
        self._session = session
        self._actor = actor
        self._request_id = request_id

    def create(self, tenant_id: uuid.UUID, name: str, scope: str, *, can_introspect: bool = False) -> IssuedSecret:
        """Register a client of *tenant_id* allowed *scope*; return it with its secret."""
        name = name.strip()
        if not name or len(name) > 255:
            raise ClientError("a client name of 1-255 characters is required")
        try:
            scope = normalize_scope(scope)
        except TokenError as exc:
            raise ClientError(str(exc)) from exc
        if self._session.scalars(
            select(OAuthClient.id).where(OAuthClient.tenant_id == tenant_id, OAuthClient.name == name)
        ).first() is not None:
            raise ClientError(f"the tenant already has a client named {name!r}")
        secret = _new_secret()
        client = OAuthClient(tenant_id=tenant_id, client_id=CLIENT_ID_PREFIX + secrets.token_urlsafe(16), name=name,
                             scope=scope, can_introspect=can_introspect, secret_hash=hash_secret(secret))
        self._session.add(client)
        self._session.flush()
        self._audit(client, audit.CLIENT_CREATE, f"scope '{scope}'" + (", may introspect" if can_introspect else ""))
        return IssuedSecret(client, secret)

    def list(self, tenant_id: uuid.UUID) -> list[OAuthClient]:
        """Return the clients of a tenant, by name."""
        stmt = select(OAuthClient).where(OAuthClient.tenant_id == tenant_id).order_by(OAuthClient.name)
        return list(self._session.scalars(stmt))

    def require(self, tenant_id: uuid.UUID, client_id: str) -> OAuthClient:
        """Return client *client_id* of *tenant_id*, or raise :class:`ClientError`."""
        client = self._session.scalars(
            select(OAuthClient).where(OAuthClient.tenant_id == tenant_id, OAuthClient.client_id == client_id)
        ).one_or_none()
        if client is None:
            raise ClientError(f"the tenant has no client {client_id!r} (see `scim-bridge client list`)")
        return client

    def rotate_secret(self, tenant_id: uuid.UUID, client_id: str, grace: timedelta) -> IssuedSecret:
        """Give the client a new secret; the old one keeps working for *grace*."""
        if grace < timedelta(0):
            raise ClientError("the grace period cannot be negative")
        client = self.require(tenant_id, client_id)
        now = utcnow()
        secret = _new_secret()
        if grace > timedelta(0):
            client.previous_secret_hash = client.secret_hash
            client.previous_secret_expires_at = now + grace
        else:
            client.previous_secret_hash = None
            client.previous_secret_expires_at = None
        client.secret_hash = hash_secret(secret)
        client.secret_rotated_at = now
        self._session.flush()
        self._audit(client, audit.CLIENT_ROTATE_SECRET, f"grace {int(grace.total_seconds())}s")
        return IssuedSecret(client, secret)

    def disable(self, tenant_id: uuid.UUID, client_id: str) -> int:
        """Stop the client from getting tokens and revoke the ones it has; return how many."""
        client = self.require(tenant_id, client_id)
        if client.disabled_at is None:
            client.disabled_at = utcnow()
        revoked = revoke_client_tokens(self._session, client.client_id)
        self._session.flush()
        self._audit(client, audit.CLIENT_DISABLE, f"{revoked} token(s) revoked")
        return revoked

    def enable(self, tenant_id: uuid.UUID, client_id: str) -> OAuthClient:
        """Let a disabled client get tokens again (its revoked tokens stay revoked)."""
        client = self.require(tenant_id, client_id)
        client.disabled_at = None
        self._session.flush()
        self._audit(client, audit.CLIENT_ENABLE, None)
        return client

    def delete(self, tenant_id: uuid.UUID, client_id: str) -> int:
        """Delete the client and revoke its tokens; return how many were revoked."""
        client = self.require(tenant_id, client_id)
        revoked = revoke_client_tokens(self._session, client.client_id)
        self._audit(client, audit.CLIENT_DELETE, f"{revoked} token(s) revoked")
        self._session.delete(client)
        self._session.flush()
        return revoked

    def _audit(self, client: OAuthClient, action: str, detail: str | None) -> None:
        audit.record(self._session, action, audit.SUCCESS, tenant_id=client.tenant_id, client=self._actor,
                     resource_type="oauth_client", resource_id=client.client_id, detail=detail,
                     request_id=self._request_id)


def find_client(session: Session, client_id: str) -> OAuthClient | None:
    """Return the client with *client_id* in any tenant (for client authentication), or ``None``."""
    if not looks_like_client_id(client_id):
        return None
    return session.scalars(select(OAuthClient).where(OAuthClient.client_id == client_id)).one_or_none()


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)
