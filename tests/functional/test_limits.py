"""Abuse limits: per-credential and per-address rate limits (429), body size (413), failed-auth delay."""

from __future__ import annotations

import io
import json
import time

import pytest
from sqlalchemy import select

from scim_bridge.app import create_app
from scim_bridge.auth import ratelimit
from scim_bridge.auth import server
from scim_bridge.storage.models import RateLimitCounter
from scim_bridge.storage.session import Storage
from tests.conftest import new_token
from tests.functional.oauth_support import TOKEN
from tests.functional.oauth_support import Creds
from tests.functional.oauth_support import app_with
from tests.functional.oauth_support import basic
from tests.functional.oauth_support import bearer
from tests.functional.oauth_support import client_for
from tests.functional.oauth_support import issue_token
from tests.functional.oauth_support import new_client
from tests.functional.oauth_support import random_addr
from tests.functional.oauth_support import request_token
from tests.functional.test_oauth_token import assert_oauth_error

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch):
    """Pin the counters' clock mid-window (of the minute and of the failure window): no test straddles one."""
    now = time.time()
    monkeypatch.setattr(ratelimit, "clock", lambda: now - now % 900 + 450)


def assert_scim_429(response) -> None:
    assert response.status_code == 429, response.get_data(as_text=True)
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.mimetype == "application/scim+json"
    body = response.get_json()
    assert body["schemas"] == [ERROR] and body["status"] == "429"


def assert_oauth_429(response) -> None:
    assert_oauth_error(response, 429, "slow_down")
    assert 1 <= int(response.headers["Retry-After"]) <= 60


# -- the counter itself ---------------------------------------------------------------------------

def test_fixed_window_counter(storage):
    key = f"test:{random_addr()}"
    start = 1_800_000_000 - 1_800_000_000 % 60  # the start of a window
    with storage.sessionmaker() as session, session.begin():
        decisions = [ratelimit.hit(session, key, 2, 60, now=start + 10 + i) for i in range(3)]
        assert [d.allowed for d in decisions] == [True, True, False]
        assert [d.count for d in decisions] == [1, 2, 3]
        assert decisions[-1].retry_after == 60 - 12
        assert ratelimit.peek(session, key, 60, now=start + 30) == 3
        # The next window starts again at one, and an older clock does not reset a newer window.
        assert ratelimit.hit(session, key, 2, 60, now=start + 61).count == 1
        assert ratelimit.hit(session, key, 2, 60, now=start + 59).count == 2
        assert ratelimit.peek(session, key, 60, now=start + 200) == 0
        assert ratelimit.hit(session, key, 0, 60).allowed  # 0 disables


def test_prune_drops_old_windows(storage):
    key = f"test:{random_addr()}"
    with storage.sessionmaker() as session, session.begin():
        ratelimit.hit(session, key, 5, 60, now=1_000_000)
        assert ratelimit.prune(session, 1_000_100) >= 1
        assert session.get(RateLimitCounter, key) is None


# -- SCIM: per credential, shared by every process ------------------------------------------------

@pytest.fixture
def limited(settings, storage):
    return app_with(settings, storage, rate_limit_per_minute=3, token_rate_limit_per_minute=3)


def test_scim_requests_are_limited_per_credential(limited, storage, tenant):
    http = client_for(limited)
    token, other = new_token(storage, tenant), new_token(storage, tenant)
    for _ in range(3):
        assert http.get("/scim/v2/Users", headers=bearer(token)).status_code == 200
    assert_scim_429(http.get("/scim/v2/Users", headers=bearer(token)))
    assert_scim_429(http.post("/scim/v2/Users", data=json.dumps({"userName": "x"}),
                              headers={**bearer(token), "Content-Type": "application/scim+json"}))
    assert http.get("/scim/v2/Users", headers=bearer(other)).status_code == 200


def test_tokens_of_one_client_share_its_limit(limited, storage, tenant):
    http = client_for(limited)
    creds = new_client(storage, tenant)
    first, second = issue_token(http, creds), issue_token(client_for(limited), creds)
    assert http.get("/scim/v2/Users", headers=bearer(first)).status_code == 200
    assert http.get("/scim/v2/Users", headers=bearer(second)).status_code == 200
    assert http.get("/scim/v2/Users", headers=bearer(first)).status_code == 200
    assert_scim_429(http.get("/scim/v2/Users", headers=bearer(second)))


def test_limit_is_shared_by_separate_processes(settings, database_url, limited, storage, tenant):
    """Two apps with their own engines and pools (as two gunicorn workers) count in the same row."""
    token = new_token(storage, tenant)
    other_storage = Storage.build(database_url)
    try:
        other = create_app(settings.replace(rate_limit_per_minute=3), storage=other_storage)
        for http in (client_for(limited), client_for(other), client_for(limited)):
            assert http.get("/scim/v2/Users", headers=bearer(token)).status_code == 200
        assert_scim_429(client_for(other).get("/scim/v2/Users", headers=bearer(token)))
    finally:
        other_storage.engine.dispose()


def test_rejected_tokens_are_limited_per_address(limited):
    http = client_for(limited)
    for _ in range(3):
        assert http.get("/scim/v2/Users", headers=bearer("sbt_guess")).status_code == 401
    assert_scim_429(http.get("/scim/v2/Users", headers=bearer("sbt_guess")))
    assert client_for(limited).get("/scim/v2/Users", headers=bearer("sbt_guess")).status_code == 401


def test_wrong_scope_counts_against_the_credential(limited, storage, tenant):
    http = client_for(limited)
    token = new_token(storage, tenant, scope="scim:read")
    body = json.dumps({"userName": "nope"})
    for _ in range(3):
        response = http.post("/scim/v2/Users", data=body, headers={**bearer(token), "Content-Type": "application/json"})
        assert response.status_code == 403
    assert_scim_429(http.get("/scim/v2/Users", headers=bearer(token)))


def test_zero_disables_the_scim_limit(settings, storage, tenant):
    http = client_for(app_with(settings, storage, rate_limit_per_minute=0))
    token = new_token(storage, tenant)
    for _ in range(5):
        assert http.get("/scim/v2/Users", headers=bearer(token)).status_code == 200


# -- token endpoint: per address before authentication, per client after --------------------------

def test_token_endpoint_is_limited_per_address(limited, storage, tenant):
    creds = new_client(storage, tenant)
    http = client_for(limited)
    for _ in range(3):
        assert request_token(http, Creds(creds.client_id, "sbs_wrong")).status_code == 401
    assert_oauth_429(request_token(http, creds))
    assert request_token(client_for(limited), creds).status_code == 200


def test_token_endpoint_is_limited_per_client(limited, storage, tenant):
    creds = new_client(storage, tenant)
    for _ in range(3):
        assert request_token(client_for(limited), creds).status_code == 200
    assert_oauth_429(request_token(client_for(limited), creds))
    assert request_token(client_for(limited), new_client(storage, tenant)).status_code == 200


@pytest.mark.parametrize("path", ["/oauth/revoke", "/oauth/introspect"])
def test_revocation_and_introspection_are_limited_too(limited, storage, tenant, path):
    creds = new_client(storage, tenant, introspect=True)
    http = client_for(limited)
    for _ in range(3):
        assert http.post(path, data={"token": "sbt_x"}, headers=basic(creds)).status_code == 200
    assert_oauth_429(http.post(path, data={"token": "sbt_x"}, headers=basic(creds)))


# -- body size (413) ------------------------------------------------------------------------------

def test_scim_body_over_the_limit_is_413_scim(settings, storage, tenant):
    http = client_for(app_with(settings, storage, max_request_bytes=2_000))
    body = json.dumps({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "big",
                       "displayName": "x" * 5_000})
    response = http.post("/scim/v2/Users", data=body,
                         headers={**bearer(new_token(storage, tenant)), "Content-Type": "application/scim+json"})
    assert response.status_code == 413 and response.mimetype == "application/scim+json"
    assert response.get_json()["status"] == "413" and response.get_json()["scimType"] == "tooLarge"


def test_oauth_body_over_the_app_limit_is_413_oauth(settings, storage, tenant):
    http = client_for(app_with(settings, storage, max_request_bytes=1_000))
    creds = new_client(storage, tenant)
    response = request_token(http, creds, pad="x" * 2_000)
    assert_oauth_error(response, 413, "invalid_request")


def test_oauth_chunked_body_is_capped(app):
    """A body without Content-Length (chunked) is cut at the cap while it is read."""
    body = b"grant_type=client_credentials&pad=" + b"x" * 40_000
    response = client_for(app).post(TOKEN, input_stream=io.BytesIO(body),
                                    content_type="application/x-www-form-urlencoded",
                                    environ_overrides={"wsgi.input_terminated": True})
    assert_oauth_error(response, 413, "invalid_request")


# -- failed client authentication is slowed down ---------------------------------------------------

@pytest.fixture
def sleeps(monkeypatch):
    recorded: list[float] = []
    monkeypatch.setattr(server, "sleep", recorded.append)
    return recorded


@pytest.fixture
def delaying(settings, storage):
    return app_with(settings, storage, failed_auth_delay_ms=10, failed_auth_max_delay_ms=40)


def test_repeated_failures_from_an_address_are_slowed_down(delaying, storage, tenant, sleeps):
    creds = new_client(storage, tenant)
    wrong = Creds("sbc_unknownclient00000", "sbs_wrong")
    http = client_for(delaying)
    for _ in range(7):
        assert request_token(http, wrong).status_code == 401
    # Three free failures, then 10 ms doubling per failure, capped at 40 ms.
    assert sleeps == [0.01, 0.02, 0.04, 0.04]
    # The delay also applies to a right secret from that address; a fresh address is not delayed.
    assert request_token(http, creds).status_code == 200
    assert sleeps[-1] == 0.04
    sleeps.clear()
    assert request_token(client_for(delaying), creds).status_code == 200
    assert sleeps == []


def test_failures_for_a_client_slow_it_down_from_any_address(delaying, storage, tenant, sleeps):
    creds = new_client(storage, tenant)
    wrong = Creds(creds.client_id, "sbs_wrong")
    for _ in range(4):
        assert request_token(client_for(delaying), wrong, "post").status_code == 401
    assert sleeps == [0.01]
    assert request_token(client_for(delaying), creds).status_code == 200
    assert sleeps == [0.01, 0.02]
    with storage.sessionmaker() as session:
        counters = session.scalars(select(RateLimitCounter.key).where(
            RateLimitCounter.key == f"authfail:client:{creds.client_id}")).all()
    assert counters  # the state is in the database, shared by every process


def test_delay_really_waits(settings, storage, tenant):
    http = client_for(app_with(settings, storage, failed_auth_delay_ms=60, failed_auth_max_delay_ms=60))
    wrong = Creds("sbc_unknownclient00000", "sbs_wrong")
    for _ in range(3):
        request_token(http, wrong)
    started = time.perf_counter()
    assert request_token(http, wrong).status_code == 401
    assert time.perf_counter() - started >= 0.06


def test_zero_disables_the_delay(settings, storage, sleeps):
    http = client_for(app_with(settings, storage, failed_auth_delay_ms=0))
    for _ in range(6):
        request_token(http, Creds("sbc_unknownclient00000", "sbs_wrong"))
    assert sleeps == []
