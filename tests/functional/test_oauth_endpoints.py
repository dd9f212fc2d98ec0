"""Revocation (RFC 7009), introspection (RFC 7662) and server metadata (RFC 8414)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from scim_bridge.auth import tokens
from scim_bridge.storage.base import utcnow
from tests.conftest import new_tenant
from tests.conftest import new_token
from tests.functional.oauth_support import INTROSPECT
from tests.functional.oauth_support import METADATA
from tests.functional.oauth_support import REVOKE
from tests.functional.oauth_support import Creds
from tests.functional.oauth_support import app_with
from tests.functional.oauth_support import basic
from tests.functional.oauth_support import bearer
from tests.functional.oauth_support import client_for
from tests.functional.oauth_support import issue_token
from tests.functional.oauth_support import new_client
from tests.functional.test_oauth_token import assert_oauth_error
from tests.functional.test_oauth_token import invalid_client


@pytest.fixture
def http(app):
    return client_for(app)


@pytest.fixture
def creds(storage, tenant):
    return new_client(storage, tenant, introspect=True)


def works(http, token: str) -> bool:
    status = http.get("/scim/v2/Users", headers=bearer(token)).status_code
    assert status in (200, 401)
    return status == 200


# -- revocation (RFC 7009) ------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["basic", "post"])
def test_revoke_own_token(http, creds, method):
    token = issue_token(http, creds)
    auth = {"headers": basic(creds)} if method == "basic" else {}
    data = {"token": token} if method == "basic" else {"token": token, "client_id": creds.client_id,
                                                         "client_secret": creds.secret}
    response = http.post(REVOKE, data=data, **auth)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert not works(http, token)
    # Revoking again (or an unknown token) is still 200 (RFC 7009 §2.2).
    assert http.post(REVOKE, data=data, **auth).status_code == 200


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "something_else"])
def test_token_type_hint_is_ignored(http, creds, hint):
    """RFC 7009 §2.1: the server may ignore the hint; there is one kind of token anyway."""
    token = issue_token(http, creds)
    assert http.post(REVOKE, data={"token": token, "token_type_hint": hint}, headers=basic(creds)).status_code == 200
    assert not works(http, token)


def test_revoke_unknown_token_is_200(http, creds):
    assert http.post(REVOKE, data={"token": "sbt_never-issued"}, headers=basic(creds)).status_code == 200


def test_another_tenants_token_is_unknown_not_revoked(http, storage, creds):
    other = new_client(storage, new_tenant(storage))
    theirs = issue_token(http, other)
    assert http.post(REVOKE, data={"token": theirs}, headers=basic(creds)).status_code == 200
    assert works(http, theirs)


def test_same_tenant_other_clients_token_is_invalid_grant(http, storage, tenant, creds):
    sibling = new_client(storage, tenant)
    for token in (issue_token(http, sibling), new_token(storage, tenant)):
        response = http.post(REVOKE, data={"token": token}, headers=basic(creds))
        assert_oauth_error(response, 400, "invalid_grant")
        assert works(http, token)


def test_revoke_requires_the_token_parameter(http, creds):
    assert_oauth_error(http.post(REVOKE, data={}, headers=basic(creds)), 400, "invalid_request")


def test_revoke_requires_client_authentication(http, creds):
    token = issue_token(http, creds)
    invalid_client(http.post(REVOKE, data={"token": token}))
    invalid_client(http.post(REVOKE, data={"token": token}, headers=basic(Creds(creds.client_id, "sbs_wrong"))))
    assert works(http, token)


def test_a_token_cannot_revoke_itself_as_a_bearer(http, creds):
    """Revocation authenticates the client, not a bearer token."""
    token = issue_token(http, creds)
    invalid_client(http.post(REVOKE, data={"token": token}, headers=bearer(token)))
    assert works(http, token)


# -- introspection (RFC 7662) ---------------------------------------------------------------------

@pytest.mark.parametrize("method", ["basic", "post"])
def test_introspect_active_issued_token(http, creds, method):
    token = issue_token(http, creds, scope="scim:read")
    data = {"token": token}
    kwargs = {"headers": basic(creds)}
    if method == "post":
        data.update(client_id=creds.client_id, client_secret=creds.secret)
        kwargs = {}
    response = http.post(INTROSPECT, data=data, **kwargs)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["active"] is True and body["scope"] == "scim:read" and body["token_type"] == "Bearer"
    assert body["client_id"] == creds.client_id and body["sub"] == creds.client_id
    assert body["exp"] - body["iat"] == 3600
    assert token not in response.get_data(as_text=True)


def test_introspect_static_token_of_own_tenant(http, storage, tenant, creds):
    token = new_token(storage, tenant, scope="scim:read")
    body = http.post(INTROSPECT, data={"token": token}, headers=basic(creds)).get_json()
    assert body["active"] is True and "client_id" not in body and "exp" not in body
    assert body["sub"].startswith("token:")


@pytest.mark.parametrize("state", ["revoked", "expired", "unknown", "other_tenant"])
def test_introspect_inactive_tokens(http, storage, tenant, creds, state):
    if state == "other_tenant":
        token = issue_token(http, new_client(storage, new_tenant(storage)))
    elif state == "unknown":
        token = "sbt_never-issued"
    else:
        token = issue_token(http, creds)
        with storage.sessionmaker() as session, session.begin():
            record = tokens.find_token(session, token)
            if state == "revoked":
                record.revoked_at = utcnow()
            else:
                record.expires_at = utcnow() - timedelta(seconds=1)
    response = http.post(INTROSPECT, data={"token": token}, headers=basic(creds))
    assert response.status_code == 200 and response.get_json() == {"active": False}


def test_introspect_needs_permission(http, storage, tenant):
    plain = new_client(storage, tenant)
    token = issue_token(http, plain)
    response = http.post(INTROSPECT, data={"token": token}, headers=basic(plain))
    assert_oauth_error(response, 400, "unauthorized_client")


def test_introspect_requires_client_authentication(http, creds):
    token = issue_token(http, creds)
    invalid_client(http.post(INTROSPECT, data={"token": token}))
    invalid_client(http.post(INTROSPECT, data={"token": token}, headers=bearer(token)))


def test_introspect_requires_the_token_parameter(http, creds):
    assert_oauth_error(http.post(INTROSPECT, data={}, headers=basic(creds)), 400, "invalid_request")


# -- metadata (RFC 8414) --------------------------------------------------------------------------

def test_metadata_is_public_and_complete(settings, storage):
    http = client_for(app_with(settings, storage, base_url="https://scim.example.com/"))
    response = http.get(METADATA)
    assert response.status_code == 200
    body = response.get_json()
    assert body["issuer"] == "https://scim.example.com"
    assert body["token_endpoint"] == "https://scim.example.com/oauth/token"
    assert body["revocation_endpoint"] == "https://scim.example.com/oauth/revoke"
    assert body["introspection_endpoint"] == "https://scim.example.com/oauth/introspect"
    assert body["grant_types_supported"] == ["client_credentials"]
    assert body["scopes_supported"] == ["scim:read", "scim:write", "admin"]
    for key in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        assert body[f"{key}_auth_methods_supported"] == ["client_secret_basic", "client_secret_post"]
    metadata = AuthorizationServerMetadata(body)
    for key in AuthorizationServerMetadata.REGISTRY_KEYS:
        if key != "response_types_supported":  # REQUIRED, but empty: there is no authorization endpoint
            getattr(metadata, f"validate_{key}")()
    assert body["response_types_supported"] == []


def test_metadata_issuer_defaults_to_the_request_host(http):
    body = http.get(METADATA, base_url="https://idp-facing.example.org").get_json()
    assert body["issuer"] == "https://idp-facing.example.org"
    assert body["token_endpoint"] == "https://idp-facing.example.org/oauth/token"
