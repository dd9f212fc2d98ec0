"""Bearer-token protection: missing, malformed, unknown, expired, revoked, wrong scope."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scim_bridge.auth import tokens
from tests.conftest import new_token

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "non-token",
                                    "Bearer sbt_unknown-token-value"])
def test_missing_or_bad_token_is_401(client, header):
    headers = {"Authorization": header} if header is not None else {}
    response = client.get("/scim/v2/Users", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.get_json()
    assert body["schemas"] == [ERROR] and body["status"] == "401" and body["detail"]
    assert response.mimetype == "application/scim+json"


@pytest.mark.parametrize("header", [None, "", "Basic dXNlcjpwYXNz", "non-token"])
def test_no_bearer_credentials_get_a_challenge_without_error_code(client, header):
    # RFC 6750 §3.1: no error code when the request carried no (bearer) credentials at all.
    headers = {"Authorization": header} if header is not None else {}
    response = client.get("/scim/v2/Users", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="scim-bridge"'


@pytest.mark.parametrize("header", ["Bearer sbt_unknown-token-value", "Bearer ", "Bearer"])
def test_a_bad_bearer_token_gets_invalid_token(client, header):
    response = client.get("/scim/v2/Users", headers={"Authorization": header})
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="scim-bridge"')
    if header.strip() != "Bearer":
        assert 'error="invalid_token"' in challenge


@pytest.mark.parametrize("scheme", ["Bearer {}", "bearer {}", "BEARER {}", "Bearer   {}"])
def test_the_bearer_scheme_is_case_insensitive_and_spacing_tolerant(client, token, scheme):
    # RFC 7235 §2.1: the auth-scheme is case-insensitive.
    response = client.get("/scim/v2/Users", headers={"Authorization": scheme.format(token)})
    assert response.status_code == 200


def test_the_validated_token_is_the_current_token(app, token):
    from scim_bridge.auth import current_context
    from scim_bridge.auth.protector import require_oauth

    with app.test_request_context("/scim/v2/Users", headers={"Authorization": f"Bearer {token}"}):
        granted = require_oauth.acquire_token("scim:read")
        assert current_context() is granted
        assert "scim:read" in granted.get_scope().split()


def test_expired_token_is_401(client, storage, tenant):
    from datetime import UTC
    from datetime import datetime

    token = new_token(storage, tenant, expires_in=timedelta(seconds=1),
                      now=datetime.now(UTC) - timedelta(hours=1))
    response = client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_revoked_token_stops_working_immediately(client, storage, tenant, token):
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/scim/v2/Users", headers=headers).status_code == 200
    with storage.sessionmaker() as session, session.begin():
        record = tokens.find_token(session, token)
        tokens.revoke_token(session, tenant.id, record.id)
    assert client.get("/scim/v2/Users", headers=headers).status_code == 401


@pytest.mark.parametrize(("scope", "method", "path", "status"), [
    ("scim:read", "GET", "/Users", 200),
    ("scim:read", "POST", "/Users", 403),
    ("scim:read", "POST", "/Users/.search", 200),
    ("scim:write", "GET", "/Users", 403),
    ("scim:write", "POST", "/Users", 201),
    ("admin", "GET", "/Users", 403),
    ("admin", "GET", "/ServiceProviderConfig", 403),
])
def test_scopes(client, storage, tenant, scope, method, path, status):
    token = new_token(storage, tenant, scope=scope)
    body = {"userName": f"scoped-{scope}"} if method == "POST" and path == "/Users" else None
    if path.endswith(".search"):
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}
    import json

    response = client.open(f"/scim/v2{path}", method=method, data=json.dumps(body) if body else None,
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"})
    assert response.status_code == status, response.get_json()
    if status == 403:
        assert response.get_json()["status"] == "403"


def test_token_is_stored_hashed(storage, tenant):
    with storage.sessionmaker() as session, session.begin():
        minted = tokens.mint_token(session, tenant.id)
        assert minted.record.token_hash == tokens.hash_token(minted.token)
        assert minted.token not in (minted.record.token_hash, minted.record.token_prefix)


def test_unknown_scope_refused(storage, tenant):
    with storage.sessionmaker() as session, pytest.raises(tokens.TokenError):
        tokens.mint_token(session, tenant.id, scope="scim:everything")


def test_every_scim_route_requires_a_token(app, client):
    """Walk the URL map: nothing under /scim/v2 answers without a token."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/scim/v2"):
            continue
        path = rule.rule.replace("<resource_id>", "00000000-0000-0000-0000-000000000000")
        path = path.replace("<type_id>", "User").replace("<path:schema_id>", "x")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method)
            assert response.status_code == 401, (method, path)
