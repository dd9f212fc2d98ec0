"""authlib ``ResourceProtector`` that validates hashed bearer tokens and reports SCIM errors.

Every lookup goes to the database, so a revoked or expired token stops working on every
gunicorn instance at the next request (no per-process token cache). Each accepted request counts
against its credential's rate limit; each rejected token is audited and counts against the
remote address, so that guessing tokens is both visible and slow.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
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
from flask import request

from scim_bridge.auth import ratelimit
from scim_bridge.auth.runtime import auth_settings
from scim_bridge.auth.runtime import remote_addr
from scim_bridge.auth.runtime import request_id
from scim_bridge.auth.tokens import authenticate_bearer
from scim_bridge.auth.tokens import keep_rows_read_along
from scim_bridge.domain import audit
from scim_bridge.scim.errors import ScimError
from scim_bridge.storage.base import utcnow
from scim_bridge.storage.prepared import PlannedRead
from scim_bridge.storage.session import get_session
from scim_bridge.storage.session import get_storage
from scim_bridge.storage.session import unit_of_work

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
    tenant_profile: str = "generic"
    """The tenant's mapping profile (a name in ``mappings/``)."""

    def get_scope(self) -> str:
        """Return the space-separated scopes (authlib TokenMixin)."""
        return self.scope

    def is_expired(self) -> bool:
        """Tell whether the token is past its expiry (authlib TokenMixin)."""
        return self.expires_at is not None and self.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        """Tell whether the token was revoked (authlib TokenMixin)."""
        return self.revoked

    @property
    def actor(self) -> str:
        """Return who acts with this token, for logs and audit: the OAuth client id, or ``token:<id>``."""
        return self.client_id or f"token:{self.token_id}"


class HashedTokenValidator(BearerTokenValidator):
    """Look tokens up by SHA-256 digest, joined with their tenant and client in one query."""

    def authenticate_token(self, token_string: str, along: PlannedRead | None = None) -> TokenContext | None:
        """Return the context of *token_string*, or ``None`` when it is unknown.

        With *along*, the same statement reads it in the token's tenant; its rows are kept on
        ``g.rows_read_along`` for :meth:`ScimResourceProtector.acquire_token` to hand to the
        request once the token is accepted.
        """
        grant = authenticate_bearer(get_session(), token_string, along)
        if grant is None:
            return None
        if along is not None:
            g.rows_read_along = grant.along_rows
        context = TokenContext(
            token_id=grant.token_id,
            tenant_id=grant.tenant_id,
            tenant_slug=grant.tenant_slug,
            tenant_settings=grant.tenant_settings,
            tenant_profile=grant.tenant_profile,
            client_id=grant.client_id,
            scope=grant.scope,
            expires_at=grant.expires_at,
            revoked=grant.revoked,
        )
        # Kept so that a refusal (expired, revoked, wrong scope) can be audited against its tenant.
        g.presented_token = context
        return context


class ScimAuthError(ScimError):
    """An authentication or authorization failure, rendered as a SCIM error with OAuth headers."""

    def __init__(self, detail: str, status: int, headers: dict[str, str]) -> None:
        super().__init__(detail)
        self.status = status  # type: ignore[misc]
        self.headers = headers


class RateLimited(ScimError):
    """Too many requests (RFC 6585 §4): 429 with ``Retry-After``."""

    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many requests; retry in {retry_after} s")
        self.headers = {"Retry-After": str(retry_after)}


class ScimResourceProtector(ResourceProtector):
    """Resource protector whose failures become SCIM error responses (RFC 6750 §3 headers kept).

    ``require_oauth(scope)`` also declares the scope on the view (``view.required_scope``), so a
    test can check that every route has one. ``require_oauth(scope, along=plan)``: *plan* returns
    the read the view will make once the token is accepted (or ``None``), which the token's own
    statement then reads along (one statement for a GET instead of two).
    """

    def __call__(self, scopes: Any = None, optional: bool = False,
                 along: Callable[[], PlannedRead | None] | None = None, **kwargs: Any) -> Any:
        """Protect a view with *scopes* and record them on it as ``required_scope``."""
        if callable(scopes):
            return self.__call__()(scopes)
        if along is not None:
            kwargs["along"] = along
        decorate = super().__call__(scopes, optional, **kwargs)

        def declare(view: Callable[..., Any]) -> Callable[..., Any]:
            protected = decorate(view)
            protected.required_scope = scopes
            return protected

        return declare

    def acquire_token(self, scopes: Any = None, along: Callable[[], PlannedRead | None] | None = None,
                      **kwargs: Any) -> TokenContext:
        """Validate the token, then count the request against its credential (429 beyond the limit).

        *along* (see the class) is planned before the token is read; the rows read along are
        handed to the request's session only once the token is accepted and counted.

        The steps are authlib's own (``parse_request_authorization``, the registered validator's
        ``authenticate_token`` and ``validate_token``, whose errors the decorator renders), called
        with Flask's request as it is: authlib's ``acquire_token`` first wraps it in a
        ``JsonRequest`` (payload, headers, absolute URL) that bearer validation never reads, and
        sends a ``token_authenticated`` signal that nothing here listens to.
        """
        required = [scopes] if isinstance(scopes, str) else scopes
        claims = {claim: [value] if isinstance(value, str) else value for claim, value in kwargs.items()}
        validator, token_string = self.parse_request_authorization(request)
        validator.validate_request(request)
        planned = along() if along is not None else None
        token: TokenContext = validator.authenticate_token(token_string, planned)
        validator.validate_token(token, required, request, **claims)
        g.authlib_server_oauth2_token = token
        decision = _count_accepted(f"cred:{token.actor}")
        if not decision.allowed:
            g.auth_failure = "rate_limited"
            raise RateLimited(decision.retry_after)
        if planned is not None:
            keep_rows_read_along(get_session(), planned, token.tenant_id, g.pop("rows_read_along"))
        return token

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
        if code in ("invalid_token", "insufficient_scope"):
            _refuse_presented_token(code)
        raise ScimAuthError(description, status, headers)


def _count(key: str) -> ratelimit.Decision:
    """Count one request for *key* in its own short transaction (none when limits are off)."""
    limit = auth_settings().rate_limit_per_minute
    if limit <= 0:
        return ratelimit.Decision(True, 0, 0)
    with unit_of_work() as session:
        return ratelimit.hit(session, key, limit)


def _count_accepted(key: str) -> ratelimit.Decision:
    """Count an accepted request for *key*: in batches far from the limit, exactly near it."""
    limit = auth_settings().rate_limit_per_minute
    if limit <= 0:
        return ratelimit.Decision(True, 0, 0)

    def flush(hits: int, moment: float) -> tuple[int, int]:
        with unit_of_work() as session:
            return ratelimit.increment(session, key, 60, moment, by=hits)

    return ratelimit.credentials.hit(get_storage().engine, key, limit, flush)


def _refuse_presented_token(code: str) -> None:
    """Count and audit a refused token (the request fails, so in a transaction of its own).

    An unknown or dead token counts against the remote address, a valid one with the wrong scope
    against its credential; past the limit the answer is 429 and nothing more is written.
    """
    presented: TokenContext | None = g.get("presented_token")
    if code == "insufficient_scope" and presented is not None:
        decision = _count(f"cred:{presented.actor}")
        detail = f"insufficient scope for {request.method} {request.path}"
    else:
        decision = _count(f"scim-addr:{remote_addr()}")
        if presented is None:
            detail = "unknown token"
        else:
            detail = "revoked token" if presented.revoked else "expired token"
    if not decision.allowed:
        g.auth_failure = "rate_limited"
        raise RateLimited(decision.retry_after)
    with unit_of_work() as session:
        audit.record(session, audit.TOKEN_REJECTED, audit.FAILURE,
                     tenant_id=presented.tenant_id if presented else None,
                     client=presented.actor if presented else None,
                     resource_type="token", resource_id=str(presented.token_id) if presented else None,
                     status=403 if code == "insufficient_scope" else 401, detail=detail,
                     request_id=request_id(), remote_addr=remote_addr())


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
