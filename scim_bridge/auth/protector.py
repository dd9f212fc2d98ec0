"""authlib ``ResourceProtector`` that validates hashed bearer tokens and reports SCIM errors.

Every lookup goes to the database, so a revoked or expired token stops working on every
gunicorn instance at the next request (no per-process token cache).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import NoReturn

from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.integrations.flask_oauth2 import current_token
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6750 import BearerTokenValidator
from flask import Flask
from flask import g

from scim_bridge.auth.tokens import find_token
from scim_bridge.scim.errors import ScimError
from scim_bridge.storage.base import utcnow
from scim_bridge.storage.models import Tenant
from scim_bridge.storage.session import get_session

REALM = "scim-bridge"


@dataclass(frozen=True, slots=True)
class TokenContext:
    """What a validated token grants: its tenant, client and scopes (authlib's token object)."""

    token_id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_slug: str
    tenant_settings: dict[str, Any]
    client_id: str | None
    scope: str
    expires_at: datetime | None
    revoked: bool

    def get_scope(self) -> str:
        """Return the space-separated scopes (authlib TokenMixin)."""
        return self.scope

    def is_expired(self) -> bool:
        """Tell whether the token is past its expiry (authlib TokenMixin)."""
        return self.expires_at is not None and self.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        """Tell whether the token was revoked (authlib TokenMixin)."""
        return self.revoked


class HashedTokenValidator(BearerTokenValidator):
    """Look tokens up by SHA-256 digest, joined with their tenant in one query."""

    def authenticate_token(self, token_string: str) -> TokenContext | None:
        """Return the context of *token_string*, or ``None`` when it is unknown."""
        session = get_session()
        record = find_token(session, token_string)
        if record is None:
            return None
        tenant = session.get(Tenant, record.tenant_id)
        if tenant is None:
            return None
        return TokenContext(
            token_id=record.id,
            tenant_id=tenant.id,
            tenant_slug=tenant.slug,
            tenant_settings=dict(tenant.settings or {}),
            client_id=record.client_id,
            scope=record.scope,
            expires_at=record.expires_at,
            revoked=record.revoked_at is not None,
        )


class ScimAuthError(ScimError):
    """An authentication or authorization failure, rendered as a SCIM error with OAuth headers."""

    def __init__(self, detail: str, status: int, headers: dict[str, str]) -> None:
        super().__init__(detail)
        self.status = status  # type: ignore[misc]
        self.headers = headers


class ScimResourceProtector(ResourceProtector):
    """Resource protector whose failures become SCIM error responses (RFC 6750 §3 headers kept)."""

    def raise_error_response(self, error: OAuth2Error) -> NoReturn:
        """Raise a :class:`ScimAuthError` carrying the status and ``WWW-Authenticate`` header."""
        headers: dict[str, str] = {}
        status = error.status_code or 401
        code = error.error or ""
        if status == 401:
            # RFC 6750 §3: no error code when the request carried no credentials at all.
            challenge = f'Bearer realm="{REALM}"'
            if code not in ("missing_authorization", "unsupported_token_type"):
                challenge += f', error="{code or "invalid_token"}"'
            headers["WWW-Authenticate"] = challenge
        elif code == "insufficient_scope":
            headers["WWW-Authenticate"] = f'Bearer realm="{REALM}", error="insufficient_scope"'
        description = {
            "missing_authorization": "Authorization header with a Bearer token is required",
            "unsupported_token_type": "only Bearer tokens are supported",
            "invalid_token": "the access token is invalid, expired or revoked",
            "insufficient_scope": "the access token lacks the scope this request needs",
        }.get(code, error.description or code or "unauthorized")
        g.auth_failure = error.error
        raise ScimAuthError(description, status, headers)


require_oauth = ScimResourceProtector()


def init_app(app: Flask) -> None:
    """Register the bearer-token validator."""
    if not require_oauth._token_validators:
        require_oauth.register_token_validator(HashedTokenValidator(realm=REALM))


def current_context() -> TokenContext:
    """Return the validated token context of the current request."""
    token: TokenContext = current_token._get_current_object()
    return token


def current_token_or_none() -> TokenContext | None:
    """Return the validated token context, or ``None`` outside an authenticated request."""
    token = g.get("authlib_server_oauth2_token")
    return token if isinstance(token, TokenContext) else None
