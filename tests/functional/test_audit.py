"""The audit log: SCIM writes and credential events, with tenant, client, action, resource, outcome, request id."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from scim_bridge.auth import tokens
from scim_bridge.auth.clients import ClientService
from scim_bridge.domain import audit
from scim_bridge.storage.base import utcnow
from tests.conftest import ScimClient
from tests.conftest import new_tenant
from tests.conftest import new_token
from tests.functional.oauth_support import REVOKE
from tests.functional.oauth_support import Creds
from tests.functional.oauth_support import audit_events
from tests.functional.oauth_support import basic
from tests.functional.oauth_support import bearer
from tests.functional.oauth_support import client_for
from tests.functional.oauth_support import issue_token
from tests.functional.oauth_support import new_client
from tests.functional.oauth_support import request_token

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def token_id(storage, token: str) -> str:
    with storage.sessionmaker() as session:
        return str(tokens.find_token(session, token).id)


def last(storage, tenant_id, action: str) -> dict:
    events = audit_events(storage, tenant_id, action)
    assert events, f"no {action} event"
    return events[-1]


@pytest.mark.parametrize("kind", ["User", "Group"])
def test_every_scim_write_is_audited(scim, storage, tenant, token, kind):
    rid = f"req-{uuid.uuid4().hex}"
    if kind == "User":
        created = scim.post("/Users", {"userName": "audited@example.com"}, headers={"X-Request-ID": rid})
        body_put, patch_op = {"userName": "audited@example.com", "active": False}, {"op": "replace", "path": "active",
                                                                                   "value": True}
    else:
        created = scim.post("/Groups", {"displayName": "Audited"}, headers={"X-Request-ID": rid})
        body_put, patch_op = {"displayName": "Audited 2"}, {"op": "replace", "path": "displayName", "value": "A3"}
    assert created.status_code == 201
    rid_of = {"create": rid}
    resource_id = created.get_json()["id"]
    path = f"/{kind}s/{resource_id}"
    for action, response in (
        ("replace", scim.put(path, body_put)),
        ("patch", scim.patch(path, {"schemas": [PATCH], "Operations": [patch_op]})),
        ("delete", scim.delete(path)),
    ):
        assert response.status_code in (200, 204), response.get_json()
        rid_of[action] = response.headers["X-Request-ID"]
    actor = f"token:{token_id(storage, token)}"
    for action in ("create", "replace", "patch", "delete"):
        event = last(storage, tenant.id, f"{kind.lower()}.{action}")
        assert event["outcome"] == "success" and event["resource_type"] == kind
        assert event["resource_id"] == resource_id and event["client"] == actor
        assert event["request_id"] == rid_of[action] and event["time"]


def test_issued_tokens_write_as_their_client(app, storage, tenant):
    http = client_for(app)
    creds = new_client(storage, tenant)
    client = ScimClient(http, issue_token(http, creds))
    user = client.create_user("by-client@example.com")
    event = last(storage, tenant.id, "user.create")
    assert event["client"] == creds.client_id and event["resource_id"] == user["id"]


def test_failed_writes_are_audited_although_rolled_back(scim, storage, tenant):
    scim.create_user("dup@example.com")
    conflict = scim.post("/Users", {"userName": "DUP@example.com"})
    assert conflict.status_code == 409
    missing = str(uuid.uuid4())
    assert scim.delete(f"/Users/{missing}").status_code == 404
    assert scim.put(f"/Groups/{missing}", {"displayName": "x"}).status_code == 404
    creates = audit_events(storage, tenant.id, "user.create")
    assert [e["outcome"] for e in creates] == ["success", "failure"]
    assert creates[-1]["status"] == 409 and creates[-1]["detail"] == "uniqueness"
    assert creates[-1]["request_id"] == conflict.headers["X-Request-ID"]
    deleted = last(storage, tenant.id, "user.delete")
    assert deleted["outcome"] == "failure" and deleted["status"] == 404 and deleted["resource_id"] == missing
    assert last(storage, tenant.id, "group.replace")["status"] == 404
    assert scim.get("/Users").get_json()["totalResults"] == 1  # the failed create left nothing behind


def test_reads_are_not_audited(scim, storage, tenant):
    user = scim.create_user("read-only@example.com")
    before = len(audit_events(storage, tenant.id))
    scim.get("/Users")
    scim.get(f"/Users/{user['id']}")
    scim.post("/Users/.search", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]})
    assert len(audit_events(storage, tenant.id)) == before


def test_client_lifecycle_is_audited(storage, tenant):
    with storage.sessionmaker() as session, session.begin():
        service = ClientService(session, "cli", request_id="rid-1")
        issued = service.create(tenant.id, "lifecycle", "scim:read", can_introspect=True)
        client_id = issued.client.client_id
        service.rotate_secret(tenant.id, client_id, timedelta(seconds=30))
        service.disable(tenant.id, client_id)
        service.enable(tenant.id, client_id)
        service.delete(tenant.id, client_id)
    events = audit_events(storage, tenant.id, resource_id=client_id)
    assert [e["action"] for e in events] == ["client.create", "client.rotate_secret", "client.disable",
                                            "client.enable", "client.delete"]
    assert all(e["client"] == "cli" and e["outcome"] == "success" and e["request_id"] == "rid-1" for e in events)
    assert events[0]["detail"] == "scope 'scim:read', may introspect"
    assert events[1]["detail"] == "grace 30s"


def test_token_issue_and_revocation_are_audited(app, storage, tenant):
    http = client_for(app)
    creds = new_client(storage, tenant)
    issued = request_token(http, creds, scope="scim:read")
    token = issued.get_json()["access_token"]
    tid = token_id(storage, token)
    event = last(storage, tenant.id, "token.issue")
    assert event["client"] == creds.client_id and event["resource_id"] == tid
    assert event["request_id"] == issued.headers["X-Request-ID"] and event["detail"] == "scope 'scim:read'"
    revoked = http.post(REVOKE, data={"token": token}, headers=basic(creds))
    event = last(storage, tenant.id, "token.revoke")
    assert event["resource_id"] == tid and event["request_id"] == revoked.headers["X-Request-ID"]


def test_failed_client_authentication_is_audited(app, storage, tenant):
    http = client_for(app, "10.9.8.7")
    creds = new_client(storage, tenant)
    response = request_token(http, Creds(creds.client_id, "sbs_wrong"))
    assert response.status_code == 401
    event = last(storage, tenant.id, "client.auth_failed")
    assert event["outcome"] == "failure" and event["status"] == 401 and event["client"] == creds.client_id
    assert event["detail"] == "wrong client secret at /oauth/token" and event["remote_addr"] == "10.9.8.7"
    assert event["request_id"] == response.headers["X-Request-ID"]


def test_failed_authentication_of_an_unknown_client_stores_no_claimed_id(app, storage):
    http = client_for(app)
    claimed = f"sbs_{uuid.uuid4().hex}"  # e.g. a secret pasted into the id field
    response = http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": claimed,
                                               "client_secret": "whatever"})
    assert response.status_code == 401
    events = audit_events(storage, None, "client.auth_failed", request_id=response.headers["X-Request-ID"])
    assert len(events) == 1 and events[0]["client"] is None and events[0]["detail"].startswith("unknown client")
    assert claimed not in json.dumps(events)


@pytest.mark.parametrize("state", ["expired", "revoked", "scope"])
def test_rejected_tokens_are_audited_against_their_tenant(client, storage, tenant, state):
    if state == "expired":
        token = new_token(storage, tenant, expires_in=timedelta(seconds=1), now=utcnow() - timedelta(hours=1))
    else:
        token = new_token(storage, tenant, scope="admin" if state == "scope" else tokens.DEFAULT_SCOPE)
    if state == "revoked":
        with storage.sessionmaker() as session, session.begin():
            tokens.revoke_token(session, tenant.id, tokens.find_token(session, token).id)
    response = client.get("/scim/v2/Users", headers=bearer(token))
    assert response.status_code == (403 if state == "scope" else 401)
    event = last(storage, tenant.id, "token.rejected")
    assert event["client"] == f"token:{token_id(storage, token)}" and event["outcome"] == "failure"
    assert event["detail"] == {"expired": "expired token", "revoked": "revoked token",
                               "scope": "insufficient scope for GET /scim/v2/Users"}[state]
    assert event["request_id"] == response.headers["X-Request-ID"]


def test_unknown_tokens_are_audited_without_tenant(client, storage):
    response = client.get("/scim/v2/Users", headers=bearer("sbt_unknownvalue"))
    events = audit_events(storage, None, "token.rejected", request_id=response.headers["X-Request-ID"])
    assert len(events) == 1 and events[0]["detail"] == "unknown token" and events[0]["client"] is None


def test_missing_authorization_is_not_audited(client, storage):
    response = client.get("/scim/v2/Users")
    assert response.status_code == 401
    assert audit_events(storage, None, request_id=response.headers["X-Request-ID"]) == []


def test_query_filters_and_tail(scim, storage, tenant):
    for i in range(3):
        scim.create_user(f"q{i}@example.com")
    group = scim.create_group("Q")
    scim.delete(f"/Groups/{group['id']}")
    other = new_tenant(storage)
    ScimClient(scim.client, new_token(storage, other)).create_user("elsewhere@example.com")
    with storage.sessionmaker() as session:
        assert [e.action for e in audit.tail(session, tenant.id, 2)] == ["group.create", "group.delete"]
        assert len(audit.query(session, audit.AuditFilter(tenant.id, action="user"))) == 3
        assert len(audit.query(session, audit.AuditFilter(tenant.id, action="group.delete"))) == 1
        assert len(audit.query(session, audit.AuditFilter(tenant.id, resource_type="Group"))) == 2
        page = audit.query(session, audit.AuditFilter(tenant.id), limit=2)
        rest = audit.query(session, audit.AuditFilter(tenant.id, before_id=page[-1].id))
        assert [e.action for e in page + rest].count("user.create") == 3 and len(page + rest) == 5
        assert audit.query(session, audit.AuditFilter(tenant.id, since=utcnow() + timedelta(minutes=1))) == []
        assert all(e.tenant_id == tenant.id for e in audit.query(session, audit.AuditFilter(tenant.id)))


def test_scrub_redacts_secret_shapes():
    assert audit.scrub("leaked sbt_abcdefghijkl and sbs_zyxwvutsrq here") == "leaked [redacted] and [redacted] here"
    assert audit.scrub("sbc_client-id stays") == "sbc_client-id stays"


def test_a_direct_record_stores_what_a_flushed_one_does(storage, tenant):
    """``record(direct=True)`` (every SCIM write's success) inserts the row without building an AuditEvent."""
    secret = "sbt_" + "x" * 20
    common = dict(tenant_id=tenant.id, client=f"token:{secret}", resource_type="User", resource_id="r-1",
                  status=201, detail=f"saw {secret}", request_id="req-1", remote_addr="203.0.113.9" * 8)
    with storage.sessionmaker() as session, session.begin():
        flushed = audit.record(session, "user.create", audit.SUCCESS, **common)
        assert isinstance(flushed, audit.AuditEvent)
        assert audit.record(session, "user.replace", audit.SUCCESS, direct=True, **common) is None
    with storage.sessionmaker() as session:
        first, second = audit.tail(session, tenant.id, 2)
    skip = {"id", "action", "occurred_at"}
    columns = [c.key for c in audit.AuditEvent.__table__.columns if c.key not in skip]
    assert (first.action, second.action) == ("user.create", "user.replace")
    assert {k: getattr(second, k) for k in columns} == {k: getattr(first, k) for k in columns}
    assert "[redacted]" in second.client and secret not in second.detail and len(second.remote_addr) == 64
    assert second.occurred_at >= first.occurred_at


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_a_write_to_an_id_with_a_nul_is_answered_and_audited(scim, storage, tenant, method):
    # PostgreSQL's text cannot hold NUL: the audit record keeps U+FFFD in its place.
    body = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    if method == "PUT":
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "nul@example.com"}
    answer = scim.request(method, "/Users/%00", body if method != "DELETE" else None)
    assert answer.status_code == 404, answer.get_json()
    action = {"PUT": "user.replace", "PATCH": "user.patch", "DELETE": "user.delete"}[method]
    event = last(storage, tenant.id, action)
    assert event["outcome"] == audit.FAILURE and event["status"] == 404
    assert event["resource_id"] == "\ufffd"


def test_scrub_replaces_nul_characters():
    assert audit.scrub("a\x00b") == "a\ufffdb"
