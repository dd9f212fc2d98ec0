"""Client secrets and scope narrowing, without an app or a database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scim_bridge.auth.clients import check_secret
from scim_bridge.auth.clients import hash_secret
from scim_bridge.auth.clients import looks_like_client_id
from scim_bridge.auth.server import Client
from scim_bridge.storage.base import utcnow
from scim_bridge.storage.models import OAuthClient


def client(scope: str = "scim:read scim:write", **fields) -> OAuthClient:
    return OAuthClient(client_id="sbc_abcdefghijkl", name="x", scope=scope, secret_hash=hash_secret("sbs_current"),
                       **fields)


def test_current_secret_only():
    row = client()
    assert check_secret(row, "sbs_current")
    assert not check_secret(row, "sbs_other") and not check_secret(row, "")


def test_previous_secret_during_grace_only():
    now = utcnow()
    row = client(previous_secret_hash=hash_secret("sbs_old"), previous_secret_expires_at=now + timedelta(seconds=5))
    assert check_secret(row, "sbs_old", now) and check_secret(row, "sbs_current", now)
    assert not check_secret(row, "sbs_old", now + timedelta(seconds=5))


def test_secrets_are_stored_as_sha256():
    digest = hash_secret("sbs_current")
    assert len(digest) == 64 and "sbs_current" not in digest


@pytest.mark.parametrize(("requested", "granted"), [
    (None, "scim:read scim:write"),
    ("", "scim:read scim:write"),
    ("scim:write", "scim:write"),
    ("scim:write scim:write admin", "scim:write"),
    ("admin", None),
])
def test_scope_is_narrowed(requested, granted):
    assert Client(client()).get_allowed_scope(requested) == granted


def test_only_client_credentials_and_secret_methods():
    c = Client(client())
    assert c.check_grant_type("client_credentials") and not c.check_grant_type("password")
    assert c.check_endpoint_auth_method("client_secret_post", "token")
    assert not c.check_endpoint_auth_method("none", "token")
    assert not c.check_redirect_uri("https://example.com") and not c.check_response_type("code")


@pytest.mark.parametrize(("value", "ok"), [("sbc_abcdefghijkl", True), ("sbs_abcdefghijkl", False),
                                           ("sbc_short", False), ("", False), (None, False)])
def test_client_id_shape(value, ok):
    assert looks_like_client_id(value) is ok
