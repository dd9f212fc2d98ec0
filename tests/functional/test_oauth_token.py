"""The token endpoint: client credentials grant (RFC 6749 §4.4), client authentication, every error."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from sqlalchemy import update

from scim_bridge.auth import tokens
from scim_bridge.auth.clients import ClientService
from scim_bridge.storage.base import utcnow
from scim_bridge.storage.models import OAuthClient
from tests.conftest import new_tenant
from tests.conftest import new_token
from tests.functional.oauth_support import TOKEN
from tests.functional.oauth_support import Creds
from tests.functional.oauth_support import app_with
from tests.functional.oauth_support import basic
from tests.functional.oauth_support import bearer
from tests.functional.oauth_support import client_for
from tests.functional.oauth_support import issue_token
from tests.functional.oauth_support import new_client
from tests.functional.oauth_support import request_token

USER = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "oauth-user@example.com"}


@pytest.fixture
def http(app):
    return client_for(app)


@pytest.fixture
def creds(storage, tenant):
    return new_client(storage, tenant)


def assert_oauth_error(response, status: int, error: str) -> dict:
    """RFC 6749 §5.2: JSON body with ``error``, never cached."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == error and body.get("error_description")
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Pragma"] == "no-cache"
    return body


@pytest.mark.parametrize("method", ["basic", "post"])
def test_client_credentials_token_works_on_scim(http, storage, tenant, creds, method):
    response = request_token(http, creds, method)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "scim:read scim:write" and "refresh_token" not in body
    assert body["access_token"].startswith(tokens.TOKEN_PREFIX)
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Pragma"] == "no-cache"

    listed = http.get("/scim/v2/Users", headers=bearer(body["access_token"]))
    assert listed.status_code == 200 and listed.get_json()["totalResults"] == 0
    created = http.post("/scim/v2/Users", data=json.dumps(USER),
                        headers={**bearer(body["access_token"]), "Content-Type": "application/scim+json"})
    assert created.status_code == 201

    with storage.sessionmaker() as session:
        record = tokens.find_token(session, body["access_token"])
        assert record.kind == "issued" and record.client_id == creds.client_id and record.tenant_id == tenant.id
        assert record.token_hash == tokens.hash_token(body["access_token"])
        assert timedelta(seconds=3590) < record.expires_at - record.issued_at <= timedelta(seconds=3600)


@pytest.mark.parametrize(("client_scope", "requested", "granted"), [
    ("scim:read scim:write", None, "scim:read scim:write"),
    ("scim:read scim:write", "", "scim:read scim:write"),  # RFC 6749 §3.2: empty means omitted
    ("scim:read scim:write", "scim:read", "scim:read"),
    ("scim:read", "scim:read scim:write", "scim:read"),
    ("scim:read", "scim:read admin", "scim:read"),
    ("admin scim:read scim:write", "admin", "admin"),
])
def test_requested_scope_is_narrowed_to_the_clients(http, storage, tenant, client_scope, requested, granted):
    creds = new_client(storage, tenant, client_scope)
    form = {} if requested is None else {"scope": requested}
    response = request_token(http, creds, **form)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["scope"] == granted


def test_narrowed_token_is_limited_to_its_scope(http, creds):
    token = issue_token(http, creds, scope="scim:read")
    assert http.get("/scim/v2/Users", headers=bearer(token)).status_code == 200
    response = http.post("/scim/v2/Users", data=json.dumps(USER),
                         headers={**bearer(token), "Content-Type": "application/scim+json"})
    assert response.status_code == 403


@pytest.mark.parametrize(("client_scope", "requested"), [
    ("scim:read", "admin"),              # nothing left after narrowing
    ("scim:read scim:write", "scim:everything"),  # unknown scope
    ("scim:read", "scim:read root"),
])
def test_invalid_scope(http, storage, tenant, client_scope, requested):
    creds = new_client(storage, tenant, client_scope)
    assert_oauth_error(request_token(http, creds, scope=requested), 400, "invalid_scope")


def test_token_lifetime_is_configurable(settings, storage, creds):
    http = client_for(app_with(settings, storage, oauth_token_lifetime_seconds=120))
    assert request_token(http, creds).get_json()["expires_in"] == 120


def test_expired_issued_token_stops_working(http, storage, creds):
    token = issue_token(http, creds)
    with storage.sessionmaker() as session, session.begin():
        tokens.find_token(session, token).expires_at = utcnow() - timedelta(seconds=1)
    assert http.get("/scim/v2/Users", headers=bearer(token)).status_code == 401


# -- client authentication failures (RFC 6749 §5.2 invalid_client) -------------------------------

def invalid_client(response) -> dict:
    body = assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"] == 'Basic realm="scim-bridge", charset="UTF-8"'
    return body


@pytest.mark.parametrize("method", ["basic", "post"])
def test_wrong_secret(http, creds, method):
    invalid_client(request_token(http, Creds(creds.client_id, "sbs_wrong"), method))


@pytest.mark.parametrize("method", ["basic", "post"])
def test_unknown_client_looks_like_a_wrong_secret(http, creds, method):
    wrong_secret = invalid_client(request_token(http, Creds(creds.client_id, "sbs_wrong"), method))
    unknown = invalid_client(request_token(http, Creds("sbc_doesnotexist00000", "sbs_wrong"), method))
    assert wrong_secret == unknown


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Basic !!!not-base64"},
    {"Authorization": "Basic " + base64.b64encode(b"only-an-id").decode()},
    {"Authorization": "Bearer sbt_not-a-client-credential"},
])
def test_missing_or_malformed_client_credentials(http, headers):
    invalid_client(http.post(TOKEN, data={"grant_type": "client_credentials"}, headers=headers))


def test_client_id_without_secret_is_refused(http, creds):
    invalid_client(http.post(TOKEN, data={"grant_type": "client_credentials", "client_id": creds.client_id}))


def test_disabled_client_cannot_get_tokens_and_its_tokens_stop(http, storage, tenant, creds):
    token = issue_token(http, creds)
    with storage.sessionmaker() as session, session.begin():
        assert ClientService(session, "test").disable(tenant.id, creds.client_id) == 1
    invalid_client(request_token(http, creds))
    assert http.get("/scim/v2/Users", headers=bearer(token)).status_code == 401
    with storage.sessionmaker() as session, session.begin():
        ClientService(session, "test").enable(tenant.id, creds.client_id)
    assert http.get("/scim/v2/Users", headers=bearer(token)).status_code == 401  # revoked stays revoked
    assert http.get("/scim/v2/Users", headers=bearer(issue_token(http, creds))).status_code == 200


def test_disabled_client_tokens_stop_even_if_not_revoked(http, storage, creds):
    """A token is checked against its client on every request, not only at revocation time."""
    token = issue_token(http, creds)
    with storage.sessionmaker() as session, session.begin():
        session.execute(update(OAuthClient).where(OAuthClient.client_id == creds.client_id)
                        .values(disabled_at=utcnow()))
    assert http.get("/scim/v2/Users", headers=bearer(token)).status_code == 401


def test_deleted_client_cannot_authenticate_and_its_tokens_are_revoked(http, storage, tenant, creds):
    token = issue_token(http, creds)
    with storage.sessionmaker() as session, session.begin():
        assert ClientService(session, "test").delete(tenant.id, creds.client_id) == 1
        assert tokens.find_token(session, token).revoked_at is not None
    invalid_client(request_token(http, creds))
    assert http.get("/scim/v2/Users", headers=bearer(token)).status_code == 401


# -- secret rotation ------------------------------------------------------------------------------

def rotate(storage, tenant, creds, grace_seconds: int) -> Creds:
    with storage.sessionmaker() as session, session.begin():
        issued = ClientService(session, "test").rotate_secret(tenant.id, creds.client_id,
                                                              timedelta(seconds=grace_seconds))
        return Creds(creds.client_id, issued.secret)


def test_rotation_without_grace_retires_the_old_secret_at_once(http, storage, tenant, creds):
    rotated = rotate(storage, tenant, creds, 0)
    invalid_client(request_token(http, creds))
    assert request_token(http, rotated).status_code == 200


def test_rotation_with_grace_keeps_the_old_secret_until_it_ends(http, storage, tenant, creds):
    rotated = rotate(storage, tenant, creds, 600)
    assert request_token(http, creds).status_code == 200
    assert request_token(http, rotated, "post").status_code == 200
    with storage.sessionmaker() as session, session.begin():
        session.execute(update(OAuthClient).where(OAuthClient.client_id == creds.client_id)
                        .values(previous_secret_expires_at=utcnow() - timedelta(seconds=1)))
    invalid_client(request_token(http, creds))
    assert request_token(http, rotated).status_code == 200


def test_second_rotation_retires_the_first_secret(http, storage, tenant, creds):
    second = rotate(storage, tenant, creds, 600)
    third = rotate(storage, tenant, second, 600)
    invalid_client(request_token(http, creds))
    assert request_token(http, second).status_code == 200 and request_token(http, third).status_code == 200


# -- malformed requests (RFC 6749 §5.2 invalid_request, unsupported_grant_type) -------------------

@pytest.mark.parametrize("grant_type", ["password", "authorization_code", "refresh_token",
                                        "urn:ietf:params:oauth:grant-type:jwt-bearer"])
def test_unsupported_grant_type(http, creds, grant_type):
    assert_oauth_error(request_token(http, creds, grant_type=grant_type), 400, "unsupported_grant_type")


@pytest.mark.parametrize("grant_type", [None, ""])
def test_missing_grant_type(http, creds, grant_type):
    data = {} if grant_type is None else {"grant_type": grant_type}
    assert_oauth_error(http.post(TOKEN, data=data, headers=basic(creds)), 400, "invalid_request")


def test_two_authentication_methods_at_once(http, creds):
    """RFC 6749 §2.3: a client MUST NOT use more than one authentication method per request."""
    response = http.post(TOKEN, data={"grant_type": "client_credentials", "client_id": creds.client_id,
                                      "client_secret": creds.secret}, headers=basic(creds))
    assert_oauth_error(response, 400, "invalid_request")


def test_basic_and_a_different_form_client_id(http, storage, tenant, creds):
    other = new_client(storage, tenant)
    response = http.post(TOKEN, data={"grant_type": "client_credentials", "client_id": other.client_id},
                         headers=basic(creds))
    assert_oauth_error(response, 400, "invalid_request")


def test_credentials_in_the_url_are_refused(http, creds):
    """RFC 6749 §2.3.1: client credentials MUST NOT be included in the request URI."""
    response = http.post(f"{TOKEN}?client_id={creds.client_id}&client_secret={creds.secret}",
                         data={"grant_type": "client_credentials"})
    body = assert_oauth_error(response, 400, "invalid_request")
    assert creds.secret not in json.dumps(body)


def test_parameters_in_the_url_are_ignored(http, creds):
    """Only the form body counts (RFC 6749 §4.4.2): a query-string grant_type is not read."""
    response = http.post(f"{TOKEN}?grant_type=client_credentials", headers=basic(creds))
    assert_oauth_error(response, 400, "invalid_request")


def test_json_body_is_refused(http, creds):
    response = http.post(TOKEN, data=json.dumps({"grant_type": "client_credentials"}),
                         headers={**basic(creds), "Content-Type": "application/json"})
    assert_oauth_error(response, 400, "invalid_request")


def test_repeated_parameter_is_refused(http, creds):
    """RFC 6749 §3.2: parameters MUST NOT be included more than once."""
    response = http.post(TOKEN, data="grant_type=client_credentials&scope=scim:read&scope=scim:write",
                         headers={**basic(creds), "Content-Type": "application/x-www-form-urlencoded"})
    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_token_endpoint_is_post_only(http, method):
    assert http.open(TOKEN, method=method).status_code == 405


def test_oversized_body_is_413_in_oauth_form(http, creds):
    response = http.post(TOKEN, data={"grant_type": "client_credentials", "pad": "x" * 20_000},
                         headers=basic(creds))
    assert_oauth_error(response, 413, "invalid_request")


def test_static_tokens_and_issued_tokens_share_one_table(http, storage, tenant, creds):
    issued = issue_token(http, creds)
    static = new_token(storage, tenant)
    with storage.sessionmaker() as session:
        kinds = {t.kind for t in tokens.list_tokens(session, tenant.id)}
    assert kinds == {"issued", "static"}
    for token in (issued, static):
        assert http.get("/scim/v2/Users", headers=bearer(token)).status_code == 200


def test_clients_of_two_tenants_get_tokens_of_their_own_tenant(http, storage, tenant, creds):
    other = new_client(storage, new_tenant(storage))
    mine, theirs = issue_token(http, creds), issue_token(http, other)
    created = http.post("/scim/v2/Users", data=json.dumps(USER),
                        headers={**bearer(mine), "Content-Type": "application/scim+json"})
    assert created.status_code == 201
    user_id = created.get_json()["id"]
    assert http.get(f"/scim/v2/Users/{user_id}", headers=bearer(theirs)).status_code == 404
    assert http.get("/scim/v2/Users", headers=bearer(theirs)).get_json()["totalResults"] == 0
