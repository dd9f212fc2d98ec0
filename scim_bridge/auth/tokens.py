"""Bearer tokens: minting, hashing and lookup. Only SHA-256 digests are ever stored.

Tokens carry 256 bits of randomness, so a fast hash is enough (no password-style stretching);
lookup is by digest through a unique index, so there is no secret comparison in Python at all.
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

from scim_bridge.storage.base import utcnow
from scim_bridge.storage.models import AccessToken

TOKEN_PREFIX = "sbt_"
SCIM_READ = "scim:read"
SCIM_WRITE = "scim:write"
ADMIN = "admin"
KNOWN_SCOPES = (SCIM_READ, SCIM_WRITE, ADMIN)
DEFAULT_SCOPE = f"{SCIM_READ} {SCIM_WRITE}"


class TokenError(ValueError):
    """A token request is invalid (unknown scope, bad expiry)."""


def hash_token(token: str) -> str:
    """Return the hex SHA-256 digest under which *token* is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def normalize_scope(scope: str) -> str:
    """Return *scope* as a sorted, de-duplicated, space-separated string of known scopes."""
    parts = sorted(set(scope.split()))
    if not parts:
        raise TokenError("at least one scope is required")
    unknown = [p for p in parts if p not in KNOWN_SCOPES]
    if unknown:
        raise TokenError(f"unknown scope(s): {', '.join(unknown)} (known: {', '.join(KNOWN_SCOPES)})")
    return " ".join(parts)


@dataclass(frozen=True, slots=True)
class MintedToken:
    """A freshly minted token: the secret (shown once) and its stored record."""

    token: str
    record: AccessToken


def mint_token(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    scope: str = DEFAULT_SCOPE,
    expires_in: timedelta | None = None,
    kind: str = "static",
    client_id: str | None = None,
    description: str | None = None,
    now: datetime | None = None,
) -> MintedToken:
    """Create and store a token for *tenant_id*; return the secret once."""
    if expires_in is not None and expires_in <= timedelta(0):
        raise TokenError("expiry must be in the future")
    issued = now or utcnow()
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = AccessToken(
        tenant_id=tenant_id,
        client_id=client_id,
        kind=kind,
        description=description,
        token_hash=hash_token(secret),
        token_prefix=secret[: len(TOKEN_PREFIX) + 6],
        scope=normalize_scope(scope),
        issued_at=issued,
        expires_at=issued + expires_in if expires_in is not None else None,
    )
    session.add(record)
    session.flush()
    return MintedToken(secret, record)


def find_token(session: Session, token: str) -> AccessToken | None:
    """Return the stored record of *token* (by digest), whatever its state."""
    return session.scalars(select(AccessToken).where(AccessToken.token_hash == hash_token(token))).one_or_none()


def list_tokens(session: Session, tenant_id: uuid.UUID) -> list[AccessToken]:
    """Return every token record of a tenant, newest first."""
    stmt = select(AccessToken).where(AccessToken.tenant_id == tenant_id).order_by(AccessToken.issued_at.desc())
    return list(session.scalars(stmt))


def revoke_token(session: Session, tenant_id: uuid.UUID, token_id: uuid.UUID) -> AccessToken | None:
    """Revoke the token *token_id* of *tenant_id*; return it, or ``None`` if there is no such token."""
    record = session.scalars(
        select(AccessToken).where(AccessToken.tenant_id == tenant_id, AccessToken.id == token_id)
    ).one_or_none()
    if record is not None and record.revoked_at is None:
        record.revoked_at = utcnow()
        session.flush()
    return record


def is_active(record: AccessToken, now: datetime | None = None) -> bool:
    """Tell whether *record* is neither revoked nor expired."""
    moment = now or utcnow()
    return record.revoked_at is None and (record.expires_at is None or record.expires_at > moment)
