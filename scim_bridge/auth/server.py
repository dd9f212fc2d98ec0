"""The OAuth 2.0 authorization server (authlib): client credentials, revocation, introspection, metadata.

- Token endpoint: ``client_credentials`` grant only (RFC 6749 §4.4), client authentication by
  ``client_secret_basic`` or ``client_secret_post`` (RFC 6749 §2.3.1). Issued tokens are our
  ``sbt_`` bearer tokens, stored hashed in the same table as admin-minted ones, so the resource
  protector validates both the same way.
- Revocation (RFC 7009) and introspection (RFC 7662) authenticate the client the same way.
- Abuse limits: every request to these endpoints counts against its remote address, every
  authenticated one against its client, and failed client authentications make later attempts
  from the same address or for the same client wait (all state in the database).

Storage comes in through the request session (:func:`get_session`); the HTTP layer wraps each
request in one unit of work, so an issued token and its audit record commit together, and so does
the audit record of a failed authentication (authlib turns that failure into a response).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Request
from authlib.oauth2.rfc6749 import ClientCredentialsGrant
from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc6749 import InvalidGrantError
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import InvalidScopeError
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749 import TokenMixin
from authlib.oauth2.rfc6749 import UnauthorizedClientError
from authlib.oauth2.rfc6749 import UnsupportedGrantTypeError
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Flask
from flask import request as flask_request
from werkzeug.datastructures import MultiDict

from scim_bridge.auth import ratelimit
from scim_bridge.auth import tokens
from scim_bridge.auth.clients import check_secret
from scim_bridge.auth.clients import find_client
from scim_bridge.auth.clients import looks_like_client_id
from scim_bridge.auth.runtime import auth_settings
from scim_bridge.auth.runtime import remote_addr
from scim_bridge.auth.runtime import request_id
from scim_bridge.domain import audit
from scim_bridge.storage.base import utcnow
from scim_bridge.storage.models import AccessToken
from scim_bridge.storage.models import OAuthClient
from scim_bridge.storage.session import get_session

REALM = "scim-bridge"
AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
GRANT_TYPES = [ClientCredentialsGrant.GRANT_TYPE]
TOKEN_PATH = "/oauth/token"
REVOCATION_PATH = "/oauth/revoke"
INTROSPECTION_PATH = "/oauth/introspect"
METADATA_PATH = "/.well-known/oauth-authorization-server"
# A form with a client id, a secret and a scope is tiny; refuse anything much larger early.
MAX_FORM_BYTES = 16 * 1024
# Failed client authentications that cost nothing; every further one doubles the delay.
FREE_FAILURES = 3

# Seconds to wait; tests replace it to observe delays without waiting.
sleep: Callable[[float], None] = time.sleep


# -- errors ---------------------------------------------------------------------------------------

class ClientAuthenticationFailed(InvalidClientError):
    """``invalid_client`` (RFC 6749 §5.2): always 401 with a ``Basic`` challenge, and one description.

    The same answer for an unknown client, a wrong secret and a disabled client, so that the
    endpoint tells an attacker nothing about which client ids exist.
    """

    status_code = 401
    description = "client authentication failed"

    def get_headers(self) -> list[tuple[str, str]]:
        """Return the JSON headers plus the RFC 6749 §5.2 / RFC 7617 challenge."""
        return [*super(InvalidClientError, self).get_headers(),
                ("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"')]


class SlowDown(OAuth2Error):
    """Too many requests: 429 (RFC 6585 §4) with ``Retry-After``; ``slow_down`` is RFC 8628 §3.5's code."""

    error = "slow_down"
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(description="too many requests; retry later")
        self.retry_after = retry_after

    def get_headers(self) -> list[tuple[str, str]]:
        """Return the JSON headers plus ``Retry-After``."""
        return [*super().get_headers(), ("Retry-After", str(self.retry_after))]


class TooLarge(OAuth2Error):
    """A request body over :data:`MAX_FORM_BYTES` (413, in RFC 6749 §5.2 error form)."""

    error = "invalid_request"
    status_code = 413
    description = "the request body is too large"


# -- client and token adapters (authlib mixins over our rows) -------------------------------------

class Client(ClientMixin):  # type: ignore[misc]
    """An :class:`OAuthClient` row as authlib's client (RFC 6749 §2)."""

    def __init__(self, row: OAuthClient) -> None:
        self.row = row

    @property
    def client_id(self) -> str:
        """Return the public client identifier."""
        return self.row.client_id

    def get_client_id(self) -> str:
        """Return the client identifier."""
        return self.row.client_id

    def get_default_redirect_uri(self) -> None:
        """No redirects: only the client credentials grant exists."""
        return None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """Narrow the requested *scope* to the client's; all of it when none is requested (RFC 6749 §3.3)."""
        allowed = set(self.row.scope.split())
        if not scope:
            return self.row.scope
        granted = sorted(set(scope_to_list(scope)) & allowed)
        return " ".join(granted) or None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """No redirect URI is ever valid."""
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        """Compare in constant time with the current secret, or the previous one during its grace period."""
        return check_secret(self.row, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Accept ``client_secret_basic`` and ``client_secret_post`` at every endpoint."""
        return method in AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        """No authorization endpoint, so no response type."""
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        """Only ``client_credentials``."""
        return grant_type in GRANT_TYPES


class Token(TokenMixin):  # type: ignore[misc]
    """An :class:`AccessToken` row as authlib's token, for revocation and introspection."""

    def __init__(self, row: AccessToken) -> None:
        self.row = row

    def check_client(self, client: Client) -> bool:
        """Tell whether the token was issued to *client*."""
        return self.row.client_id is not None and self.row.client_id == client.client_id

    def get_scope(self) -> str:
        """Return the token's scopes."""
        return self.row.scope

    def get_expires_in(self) -> int:
        """Return the lifetime in seconds (0 when it never expires)."""
        if self.row.expires_at is None:
            return 0
        return int((self.row.expires_at - self.row.issued_at).total_seconds())

    def is_expired(self) -> bool:
        """Tell whether the token is past its expiry."""
        return self.row.expires_at is not None and self.row.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        """Tell whether the token was revoked."""
        return self.row.revoked_at is not None


# -- storage callables ----------------------------------------------------------------------------

def query_client(client_id: str) -> Client | None:
    """Return the enabled client *client_id*, or ``None`` (authlib then answers ``invalid_client``)."""
    row = find_client(get_session(), client_id)
    if row is None or row.disabled_at is not None:
        return None
    return Client(row)


def save_token(token: dict[str, Any], request: OAuth2Request) -> None:
    """Store an issued token's digest (never the token) and audit the issuance."""
    client: Client = request.client
    session = get_session()
    record = tokens.store_token(session, client.row.tenant_id, token["access_token"], scope=token["scope"],
                                kind="issued", client_id=client.client_id,
                                expires_in=timedelta(seconds=int(token["expires_in"])),
                                description=f"client_credentials for {client.row.name}"[:255])
    audit.record(session, audit.TOKEN_ISSUE, audit.SUCCESS, tenant_id=client.row.tenant_id, client=client.client_id,
                 resource_type="token", resource_id=str(record.id), detail=f"scope '{record.scope}'",
                 request_id=request_id(), remote_addr=remote_addr())


def _token_lifetime(client: Client, grant_type: str) -> int:
    return auth_settings().oauth_token_lifetime_seconds


def _generate_access_token(**_: Any) -> str:
    return tokens.generate_secret()


# -- the server -----------------------------------------------------------------------------------

class FormOnlyRequest(FlaskOAuth2Request):  # type: ignore[misc]
    """An OAuth request whose parameters come from the body only (RFC 6749 §3.2, §4.4.2), never the URL."""

    def __init__(self) -> None:
        super().__init__(flask_request)
        self.payload = _FormPayload(flask_request)


class _FormPayload(FlaskOAuth2Payload):  # type: ignore[misc]
    @property
    def data(self) -> MultiDict[str, str]:
        return flask_request.form


class ScimAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """authlib's Flask server with our client authentication rules, limits and audit."""

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        """Read parameters from the form body only."""
        return FormOnlyRequest()

    def validate_requested_scope(self, scope: str | None) -> None:
        """Refuse scopes this server does not know (RFC 6749 §5.2 ``invalid_scope``).

        An empty ``scope`` counts as omitted (RFC 6749 §3.2) and gets the client's full scope.
        """
        if scope and any(s not in tokens.KNOWN_SCOPES for s in scope_to_list(scope)):
            raise InvalidScopeError("the requested scope is unknown")

    def create_token_response(self, request: Any = None) -> Any:
        """Answer a token request; a missing ``grant_type`` is ``invalid_request`` (RFC 6749 §4.4.2)."""
        if not flask_request.form.get("grant_type"):
            return self.handle_error_response(None, InvalidRequestError("the 'grant_type' parameter is required"))
        return super().create_token_response(request)

    def handle_error_response(self, request: OAuth2Request | None, error: OAuth2Error) -> Any:
        """Render an RFC 6749 §5.2 error; ``unsupported_grant_type`` gets a description that echoes nothing."""
        if isinstance(error, UnsupportedGrantTypeError):
            error.description = "only grant_type=client_credentials is supported"
        return super().handle_error_response(request, error)

    def authenticate_client(self, request: OAuth2Request, methods: list[str], endpoint: str = "token") -> Client:
        """Authenticate the client (RFC 6749 §2.3.1); audit and count failures, rate-limit successes."""
        _refuse_mixed_authentication(request)
        try:
            client: Client = super().authenticate_client(request, methods, endpoint)
        except InvalidClientError:
            _record_failed_authentication(request)
            raise ClientAuthenticationFailed() from None
        limit = auth_settings().token_rate_limit_per_minute
        decision = ratelimit.hit(get_session(), f"oauth-client:{client.client_id}", limit)
        if not decision.allowed:
            raise SlowDown(decision.retry_after)
        return client


class ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    """RFC 6749 §4.4 with both secret-based client authentication methods."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS


def _require_token_param(request: OAuth2Request) -> None:
    """Require ``token``; ignore ``token_type_hint``, as RFC 7009 §2.1 and RFC 7662 §2.1 allow.

    There is one kind of token here, so every hint (even an unknown one) finds the same token.
    """
    if not request.form.get("token"):
        raise InvalidRequestError("the 'token' parameter is required")


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009 token revocation, for tokens the authenticated client was issued."""

    CLIENT_AUTH_METHODS = AUTH_METHODS

    def check_params(self, request: OAuth2Request, client: Client) -> None:
        """Require the token parameter."""
        _require_token_param(request)

    def authenticate_token(self, request: OAuth2Request, client: Client) -> Token | None:
        """Find the token; another tenant's token is as unknown as a missing one (200, nothing revoked).

        RFC 7009 §2.1: a token of the client's own tenant that was not issued to this client is
        refused with ``invalid_grant``; RFC 7009 §2.2: an unknown token is not an error.
        """
        self.check_params(request, client)
        row = tokens.find_token(get_session(), request.form["token"])
        if row is None or row.tenant_id != client.row.tenant_id:
            return None
        token = Token(row)
        if not token.check_client(client):
            raise InvalidGrantError("the token was not issued to this client")
        return token

    def revoke_token(self, token: Token, request: OAuth2Request) -> None:
        """Mark the token revoked (never delete it) and audit the revocation."""
        session = get_session()
        if token.row.revoked_at is None:
            token.row.revoked_at = utcnow()
        session.flush()
        audit.record(session, audit.TOKEN_REVOKE, audit.SUCCESS, tenant_id=token.row.tenant_id,
                     client=request.client.client_id, resource_type="token", resource_id=str(token.row.id),
                     detail="RFC 7009 revocation", request_id=request_id(), remote_addr=remote_addr())


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    """RFC 7662 token introspection, for clients allowed to introspect, within their tenant."""

    CLIENT_AUTH_METHODS = AUTH_METHODS

    def check_params(self, request: OAuth2Request, client: Client) -> None:
        """Require the token parameter."""
        _require_token_param(request)

    def authenticate_endpoint_client(self, request: OAuth2Request) -> Client:
        """Authenticate the client, then require its introspection permission (RFC 7662 §2.1)."""
        client: Client = super().authenticate_endpoint_client(request)
        if not client.row.can_introspect:
            raise UnauthorizedClientError("this client is not allowed to introspect tokens")
        return client

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        """Find the token by digest (the hint is ignored: there is one kind of token)."""
        row = tokens.find_token(get_session(), token_string)
        return Token(row) if row is not None else None

    def check_permission(self, token: Token, client: Client, request: OAuth2Request) -> bool:
        """Only tokens of the client's own tenant; others answer ``{"active": false}`` like unknown ones."""
        return token.row.tenant_id == client.row.tenant_id

    def introspect_token(self, token: Token) -> dict[str, Any]:
        """Describe an active token (RFC 7662 §2.2)."""
        row = token.row
        payload: dict[str, Any] = {
            "active": True,
            "scope": row.scope,
            "token_type": "Bearer",
            "iat": int(row.issued_at.timestamp()),
            "sub": row.client_id or f"token:{row.id}",
        }
        if row.client_id:
            payload["client_id"] = row.client_id
        if row.expires_at is not None:
            payload["exp"] = int(row.expires_at.timestamp())
        return payload


authorization = ScimAuthorizationServer()


def init_app(app: Flask) -> None:
    """Bind the authorization server to *app*; grants and endpoints are registered once."""
    authorization.init_app(app, query_client=query_client, save_token=save_token)
    # Our own generator (``sbt_`` tokens, configured lifetime) instead of authlib's default.
    authorization.register_token_generator(
        "default", BearerTokenGenerator(_generate_access_token, None, _token_lifetime))
    if not authorization._token_grants:
        authorization.register_grant(ClientCredentials)
        authorization.register_endpoint(Revocation)
        authorization.register_endpoint(Introspection)


def metadata(issuer: str) -> dict[str, Any]:
    """Return the authorization server metadata (RFC 8414 §2) for *issuer* (no trailing slash)."""
    return {
        "issuer": issuer,
        "token_endpoint": issuer + TOKEN_PATH,
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "grant_types_supported": GRANT_TYPES,
        # REQUIRED by RFC 8414 §2, but there is no authorization endpoint, hence no response type.
        "response_types_supported": [],
        "scopes_supported": list(tokens.KNOWN_SCOPES),
        "revocation_endpoint": issuer + REVOCATION_PATH,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint": issuer + INTROSPECTION_PATH,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "service_documentation": auth_settings().documentation_uri,
    }


# -- request checks, limits and the failed-authentication delay -----------------------------------

def check_form_request() -> None:
    """Refuse malformed requests to the client-authenticated endpoints (RFC 6749 §2.3.1, §3.2).

    Credentials in the URL, repeated parameters, and bodies that are not form-encoded are
    ``invalid_request``; an oversized body is 413.
    """
    limit = min(MAX_FORM_BYTES, flask_request.max_content_length or MAX_FORM_BYTES)
    if flask_request.content_length is not None and flask_request.content_length > limit:
        raise TooLarge()
    flask_request.max_content_length = limit  # also caps bodies sent without a Content-Length
    if any(name in flask_request.args for name in ("client_id", "client_secret")):
        raise InvalidRequestError("client credentials must not be sent in the URL")
    if flask_request.content_length and flask_request.mimetype != "application/x-www-form-urlencoded":
        raise InvalidRequestError("the body must be application/x-www-form-urlencoded")
    form = flask_request.form
    repeated = sorted(name for name in form if len(form.getlist(name)) > 1)
    if repeated:
        raise InvalidRequestError(f"parameters must not be repeated: {', '.join(repeated)}")


def limit_address() -> None:
    """Count the request against its remote address; raise :class:`SlowDown` beyond the limit."""
    limit = auth_settings().token_rate_limit_per_minute
    decision = ratelimit.hit(get_session(), f"oauth-addr:{remote_addr()}", limit)
    if not decision.allowed:
        raise SlowDown(decision.retry_after)


def delay_after_failures() -> float:
    """Wait before authenticating when the address or the claimed client failed repeatedly; return seconds.

    Reads the counters in a short read transaction that ends before waiting, so no lock is held.
    """
    cfg = auth_settings()
    if cfg.failed_auth_delay_ms <= 0:
        return 0.0
    session = get_session()
    window = cfg.failed_auth_window_seconds
    failures = ratelimit.peek(session, _failure_key("addr", remote_addr()), window)
    claimed = _claimed_client_id()
    if looks_like_client_id(claimed):
        failures = max(failures, ratelimit.peek(session, _failure_key("client", claimed), window))
    session.rollback()
    if failures < FREE_FAILURES:
        return 0.0
    delay_ms = min(cfg.failed_auth_max_delay_ms, cfg.failed_auth_delay_ms * 2 ** (failures - FREE_FAILURES))
    seconds = delay_ms / 1000
    sleep(seconds)
    return seconds


def _failure_key(kind: str, value: str) -> str:
    return f"authfail:{kind}:{value}"


def _claimed_client_id() -> str | None:
    """Return the client id the request claims (Basic header first, then the form), if any."""
    basic_id, _ = extract_basic_authorization(flask_request.headers)
    return basic_id or flask_request.form.get("client_id") or None


def _refuse_mixed_authentication(request: OAuth2Request) -> None:
    """RFC 6749 §2.3: a client MUST NOT use more than one authentication method in a request."""
    basic_id, basic_secret = extract_basic_authorization(request.headers)
    if basic_id is None:
        return
    form_id = request.form.get("client_id")
    if "client_secret" in request.form or (form_id and form_id != basic_id):
        raise InvalidRequestError("use exactly one client authentication method")


def _record_failed_authentication(request: OAuth2Request) -> None:
    """Count the failure (address and, for a real client, its id) and audit it, without the secret.

    A claimed client id is stored only when it names an existing client: an unknown "id" might be
    a secret pasted into the wrong field.
    """
    session = get_session()
    claimed = _claimed_client_id()
    row = find_client(session, claimed) if claimed else None
    if not claimed:
        reason = "no client credentials"
    elif row is None:
        reason = "unknown client"
    elif row.disabled_at is not None:
        reason = "client disabled"
    else:
        reason = "wrong client secret"
    window = auth_settings().failed_auth_window_seconds
    ratelimit.increment(session, _failure_key("addr", remote_addr()), window)
    if row is not None:
        ratelimit.increment(session, _failure_key("client", row.client_id), window)
    audit.record(session, audit.CLIENT_AUTH_FAILED, audit.FAILURE, tenant_id=row.tenant_id if row else None,
                 client=row.client_id if row else None, resource_type="oauth_client",
                 resource_id=row.client_id if row else None, status=401,
                 detail=f"{reason} at {flask_request.path}", request_id=request_id(), remote_addr=remote_addr())
