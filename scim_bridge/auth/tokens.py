"""Bearer tokens: minting, hashing and lookup. Only SHA-256 digests are ever stored.

Tokens carry 256 bits of randomness, so a fast hash is enough (no password-style stretching);
lookup is by digest through a unique index, so there is no secret comparison in Python at all.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import BindParameter
from sqlalchemy import Select
from sqlalchemy import Table
from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.sql.visitors import replacement_traverse

from scim_bridge.storage.base import utcnow
from scim_bridge.storage.models import AccessToken
from scim_bridge.storage.models import OAuthClient
from scim_bridge.storage.models import Tenant
from scim_bridge.storage.prepared import PlannedRead
from scim_bridge.storage.prepared import PreparedRead
from scim_bridge.storage.prepared import read_ahead

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
    secret = generate_secret()
    record = store_token(session, tenant_id, secret, scope=scope, expires_in=expires_in, kind=kind,
                         client_id=client_id, description=description, now=now)
    return MintedToken(secret, record)


def generate_secret() -> str:
    """Return a new random token (256 bits of entropy, ``sbt_`` prefix)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def store_token(
    session: Session,
    tenant_id: uuid.UUID,
    secret: str,
    *,
    scope: str = DEFAULT_SCOPE,
    expires_in: timedelta | None = None,
    kind: str = "static",
    client_id: str | None = None,
    description: str | None = None,
    now: datetime | None = None,
) -> AccessToken:
    """Store the digest of an already generated *secret* (the OAuth server generates its own)."""
    if expires_in is not None and expires_in <= timedelta(0):
        raise TokenError("expiry must be in the future")
    issued = now or utcnow()
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
    return record


def find_token(session: Session, token: str) -> AccessToken | None:
    """Return the stored record of *token* (by digest), whatever its state."""
    return session.scalars(select(AccessToken).where(AccessToken.token_hash == hash_token(token))).one_or_none()


@dataclass(frozen=True, slots=True)
class TokenLookup:
    """A token record with its tenant, and whether the client it was issued to may still use it."""

    record: AccessToken
    tenant: Tenant
    client_usable: bool


def lookup_token(session: Session, token: str) -> TokenLookup | None:
    """Return *token*'s record, tenant and client state in one indexed query, or ``None`` when unknown."""
    stmt = (
        select(AccessToken, Tenant, OAuthClient.id, OAuthClient.disabled_at)
        .join(Tenant, Tenant.id == AccessToken.tenant_id)
        .outerjoin(OAuthClient, OAuthClient.client_id == AccessToken.client_id)
        .where(AccessToken.token_hash == hash_token(token))
    )
    row = session.execute(stmt).one_or_none()
    if row is None:
        return None
    record, tenant, client_row_id, client_disabled_at = row
    # A token issued to a client dies with it: deleted or disabled clients' tokens are refused.
    usable = record.client_id is None or (client_row_id is not None and client_disabled_at is None)
    return TokenLookup(record, tenant, usable)


@dataclass(frozen=True, slots=True)
class BearerGrant:
    """What a presented bearer token grants, read in one query for every protected request."""

    token_id: uuid.UUID
    client_id: str | None
    scope: str
    expires_at: datetime | None
    revoked: bool
    tenant_id: uuid.UUID
    tenant_slug: str
    tenant_settings: dict[str, Any]
    tenant_profile: str
    along_rows: list[tuple[Any, ...]] | None = None
    """The rows of the read made along with the grant (:class:`PlannedRead`), when one was."""


_tokens = AccessToken.__table__
_tenants = Tenant.__table__
_clients = OAuthClient.__table__
_GRANT_COLUMNS = (_tokens.c.id, _tokens.c.client_id, _tokens.c.scope, _tokens.c.expires_at, _tokens.c.revoked_at,
                  _tenants.c.id, _tenants.c.slug, _tenants.c.settings, _tenants.c.profile,
                  _clients.c.id, _clients.c.disabled_at)
_GRANT_FROM = (_tokens.join(_tenants, _tenants.c.id == _tokens.c.tenant_id)
               .outerjoin(_clients, _clients.c.client_id == _tokens.c.client_id))
_TOKEN_HASH = bindparam("token_hash")
# Built and compiled once: this runs on every SCIM request, on the request's read lease.
_GRANT = PreparedRead(
    select(*_GRANT_COLUMNS).select_from(_GRANT_FROM).where(_tokens.c.token_hash == _TOKEN_HASH),
    # The same grant is read by every request of a credential: its row is processed once
    # (authenticate_bearer copies the tenant's settings before anyone can change them).
    memo_rows=256,
)


def authenticate_bearer(session: Session, token: str, along: PlannedRead | None = None) -> BearerGrant | None:
    """Return what *token* grants (token, tenant and client state in one indexed query), or ``None``.

    With *along*, the same statement also reads *along*'s rows in the token's tenant (so that a
    GET is one round trip to the database, not two), whatever the token's state: they come back
    as the grant's ``along_rows``, for the caller to hand to the request
    (:func:`keep_rows_read_along`) once it has accepted the token.
    """
    if along is None:
        row = _GRANT.one_or_none(session, {"token_hash": hash_token(token)})
        return _grant(row) if row is not None else None
    joined = grant_joined(along.prepared)
    rows = joined.all(session, {**along.params, "token_hash": hash_token(token)})
    if not rows:
        return None
    width = len(_GRANT_COLUMNS)
    # The last column is the resource table's key: NULL when the token's tenant has no such row.
    return _grant(rows[0][:width], [row[width:-1] for row in rows if row[-1] is not None])


def keep_rows_read_along(session: Session, along: PlannedRead, tenant_id: uuid.UUID,
                         rows: list[tuple[Any, ...]]) -> None:
    """Let *session*'s next run of *along* in *tenant_id* (the accepted token's) return *rows* without reading."""
    read_ahead(session, along.prepared, along.params_in(tenant_id), rows)


def grant_joined(resource: PreparedRead) -> PreparedRead:
    """Return the grant's statement with *resource*'s rows outer-joined to it in the token's tenant (built once).

    ``SELECT grant…, resource…, resource_key FROM access_tokens JOIN tenants … LEFT JOIN clients …
    LEFT JOIN <table> ON <resource's WHERE, tenant_id = access_tokens.tenant_id> WHERE token_hash = …``:
    *resource* must select from one table by its WHERE alone (no ORDER BY, GROUP BY, LIMIT) and
    bind the tenant as ``tenant_id`` there and nowhere else.
    """
    joined = _JOINED.get(resource)
    if joined is None:
        joined = _JOINED[resource] = PreparedRead(_joined_statement(resource.statement), memo_rows=256,
                                                  memo_columns=len(_GRANT_COLUMNS))
    return joined


_JOINED: weakref.WeakKeyDictionary[PreparedRead, PreparedRead] = weakref.WeakKeyDictionary()


def _joined_statement(statement: Select[Any]) -> Select[Any]:
    froms = statement.get_final_froms()
    if (len(froms) != 1 or not isinstance(froms[0], Table) or statement.whereclause is None
            or statement._order_by_clauses or statement._group_by_clauses or statement._limit_clause is not None
            or statement._offset_clause is not None or statement._distinct):
        raise ValueError("a read along with the grant selects rows of one table by its WHERE clause alone")
    table = froms[0]
    bound: list[BindParameter[Any]] = []

    def tenant_of_token(element: Any) -> Any:
        if isinstance(element, BindParameter) and element.key == "tenant_id":
            bound.append(element)
            return _tokens.c.tenant_id
        return None

    on = replacement_traverse(statement.whereclause, {}, tenant_of_token)
    (key,) = table.primary_key.columns
    joined = (select(*_GRANT_COLUMNS, *statement.selected_columns, key.label("read_along_key"))
              .select_from(_GRANT_FROM.outerjoin(table, on))
              .where(_tokens.c.token_hash == _TOKEN_HASH))
    if not bound or "tenant_id" in joined.compile().binds:
        raise ValueError("a read along with the grant binds the tenant as tenant_id in its WHERE clause only")
    return joined


def _grant(row: Sequence[Any], along_rows: list[tuple[Any, ...]] | None = None) -> BearerGrant:
    (token_id, client_id, scope, expires_at, revoked_at, tenant_id, slug, settings, profile,
     client_row_id, client_disabled_at) = row
    # A token issued to a client dies with it: deleted or disabled clients' tokens are refused.
    client_usable = client_id is None or (client_row_id is not None and client_disabled_at is None)
    return BearerGrant(token_id, client_id, scope, expires_at, revoked_at is not None or not client_usable,
                       tenant_id, slug, dict(settings or {}), profile, along_rows)


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


def revoke_client_tokens(session: Session, client_id: str) -> int:
    """Revoke every still-valid token issued to OAuth client *client_id*; return how many."""
    now = utcnow()
    stmt = (
        update(AccessToken)
        .where(AccessToken.client_id == client_id, AccessToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(session.execute(stmt).rowcount or 0)


def is_active(record: AccessToken, now: datetime | None = None) -> bool:
    """Tell whether *record* is neither revoked nor expired."""
    moment = now or utcnow()
    return record.revoked_at is None and (record.expires_at is None or record.expires_at > moment)
