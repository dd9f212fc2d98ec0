"""OAuth 2.0 endpoints: token (RFC 6749 §4.4), revocation (RFC 7009), introspection (RFC 7662), metadata (RFC 8414).

Errors here use the RFC 6749 §5.2 JSON body (``error``, ``error_description``), not SCIM's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from authlib.oauth2 import OAuth2Error
from flask import Blueprint
from flask import Response
from flask import jsonify
from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from scim_bridge.auth import server
from scim_bridge.auth.server import authorization
from scim_bridge.http import context
from scim_bridge.storage.session import unit_of_work

bp = Blueprint("oauth", __name__)
# Reachable without a bearer token: the metadata is public, the others authenticate the client.
PUBLIC_ENDPOINTS = ("oauth.metadata",)
CLIENT_AUTH_ENDPOINTS = ("oauth.issue_token", "oauth.revoke_token", "oauth.introspect_token")


def client_authenticated(view: Callable[[], Response]) -> Callable[[], Response]:
    """Run an endpoint that authenticates the client: checks, address limit, failure delay, one transaction."""

    @functools.wraps(view)
    def wrapper() -> Response:
        server.check_form_request()
        server.delay_after_failures()
        with unit_of_work():
            server.limit_address()
            return view()

    wrapper.client_authentication = server.AUTH_METHODS  # type: ignore[attr-defined]
    return wrapper


@bp.post(server.TOKEN_PATH)
@client_authenticated
def issue_token() -> Response:
    """Issue an access token for the client credentials grant (RFC 6749 §4.4)."""
    response: Response = authorization.create_token_response()
    return response


@bp.post(server.REVOCATION_PATH)
@client_authenticated
def revoke_token() -> Response:
    """Revoke a token issued to the client (RFC 7009 §2)."""
    response: Response = authorization.create_endpoint_response(server.Revocation.ENDPOINT_NAME)
    return response


@bp.post(server.INTROSPECTION_PATH)
@client_authenticated
def introspect_token() -> Response:
    """Describe a token of the client's tenant (RFC 7662 §2)."""
    response: Response = authorization.create_endpoint_response(server.Introspection.ENDPOINT_NAME)
    return response


@bp.get(server.METADATA_PATH)
def metadata() -> Response:
    """Publish the authorization server metadata (RFC 8414 §3)."""
    issuer = context.settings().base_url.rstrip("/") or request.host_url.rstrip("/")
    return jsonify(server.metadata(issuer))


@bp.errorhandler(OAuth2Error)
def handle_oauth_error(error: OAuth2Error) -> Response:
    """Render errors raised outside authlib's own handling (checks, limits) as RFC 6749 §5.2 bodies."""
    response: Response = authorization.handle_error_response(None, error)
    return response


@bp.errorhandler(RequestEntityTooLarge)
def handle_too_large(_error: RequestEntityTooLarge) -> Response:
    """Answer 413 in OAuth error form."""
    return handle_oauth_error(server.TooLarge())
