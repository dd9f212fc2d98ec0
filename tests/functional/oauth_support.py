"""Helpers for the OAuth, limits, audit and isolation tests: clients, token requests, audit reads."""

from __future__ import annotations

import base64
import random
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from scim_bridge.app import create_app
from scim_bridge.auth import tokens
from scim_bridge.auth.clients import ClientService
from scim_bridge.domain import audit
from scim_bridge.settings import Settings
from scim_bridge.storage.models import AuditEvent
from scim_bridge.storage.models import Tenant
from scim_bridge.storage.session import Storage

TOKEN = "/oauth/token"
REVOKE = "/oauth/revoke"
INTROSPECT = "/oauth/introspect"
METADATA = "/.well-known/oauth-authorization-server"


@dataclass(frozen=True)
class Creds:
    """An OAuth client's id and secret."""

    client_id: str
    secret: str


def new_client(storage: Storage, tenant: Tenant, scope: str = tokens.DEFAULT_SCOPE, *, introspect: bool = False,
               name: str | None = None) -> Creds:
    """Register a client of *tenant* and return its credentials."""
    with storage.sessionmaker() as session, session.begin():
        issued = ClientService(session, "test").create(tenant.id, name or f"client-{uuid.uuid4().hex[:8]}", scope,
                                                       can_introspect=introspect)
        return Creds(issued.client.client_id, issued.secret)


def basic(creds: Creds) -> dict[str, str]:
    """Return the ``client_secret_basic`` header (RFC 6749 §2.3.1: form-encode, then Base64)."""
    raw = f"{quote(creds.client_id, safe='')}:{quote(creds.secret, safe='')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def random_addr() -> str:
    """Return a remote address of the test's own, so per-address counters do not leak between tests."""
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def client_for(app: Flask, addr: str | None = None) -> FlaskClient:
    """Return a test client whose requests come from *addr* (a random one by default)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = addr or random_addr()
    return client


def request_token(client: FlaskClient, creds: Creds, method: str = "basic", **form: str) -> Any:
    """POST to the token endpoint with the client credentials grant (overridable through *form*)."""
    data = {"grant_type": "client_credentials", **form}
    if method == "basic":
        return client.post(TOKEN, data=data, headers=basic(creds))
    return client.post(TOKEN, data={**data, "client_id": creds.client_id, "client_secret": creds.secret})


def issue_token(client: FlaskClient, creds: Creds, **form: str) -> str:
    """Get an access token for *creds* and return it (asserting success)."""
    response = request_token(client, creds, **form)
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    """Return the Authorization header for a bearer token."""
    return {"Authorization": f"Bearer {token}"}


def audit_events(storage: Storage, tenant_id: uuid.UUID | None = None, action: str | None = None,
                 **where: Any) -> list[dict[str, Any]]:
    """Return audit events (of a tenant, or without one when *tenant_id* is None), oldest first."""
    with storage.sessionmaker() as session:
        stmt = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id if tenant_id else
                                        AuditEvent.tenant_id.is_(None))
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        for key, value in where.items():
            stmt = stmt.where(getattr(AuditEvent, key) == value)
        return [audit.to_dict(e) for e in session.scalars(stmt.order_by(AuditEvent.id))]


def app_with(settings: Settings, storage: Storage, **changes: Any) -> Flask:
    """Build another app on the same database with some settings changed."""
    application = create_app(settings.replace(**changes), storage=storage)
    application.config["TESTING"] = True
    return application
