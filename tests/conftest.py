"""Shared fixtures.

Every database-backed test runs on SQLite and, when ``SCIM_BRIDGE_TEST_POSTGRES_URL`` is set, on
PostgreSQL too. Each backend gets one freshly migrated database per test session (per xdist
worker); tests isolate themselves by creating their own tenant, which is exactly the isolation
the product guarantees, so the app can commit normally.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from scim_bridge.app import create_app
from scim_bridge.auth import tokens
from scim_bridge.domain.tenants import TenantService
from scim_bridge.settings import Settings
from scim_bridge.storage import migrations
from scim_bridge.storage.models import Tenant
from scim_bridge.storage.session import Storage

POSTGRES_URL = os.environ.get("SCIM_BRIDGE_TEST_POSTGRES_URL", "").strip()
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])
if os.environ.get("SCIM_BRIDGE_TEST_REQUIRE_POSTGRES") and not POSTGRES_URL:
    # CI sets this: a run that silently skipped PostgreSQL would prove nothing about production.
    raise pytest.UsageError("SCIM_BRIDGE_TEST_REQUIRE_POSTGRES is set but SCIM_BRIDGE_TEST_POSTGRES_URL is not")
SCIM = "/scim/v2"


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _postgres_admin_url(base_url: str) -> Any:
    url = make_url(base_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def _postgres_database(base_url: str) -> str:
    """Create an empty database for this test process and return its URL.

    The name carries the xdist worker and the process id, so concurrent runs on one server
    (several developers, or CI next to a developer) never drop each other's database.
    """
    url = _postgres_admin_url(base_url)
    name = f"scim_bridge_test_{_worker()}_{os.getpid()}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _drop_postgres_database(base_url: str, database_url: str) -> None:
    admin = create_engine(_postgres_admin_url(base_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(database_url).database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Return the URL of a freshly migrated database for one backend (dropped afterwards)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    else:
        url = _postgres_database(POSTGRES_URL)
    migrations.upgrade(url)
    yield url
    if request.param == "postgresql":
        _drop_postgres_database(POSTGRES_URL, url)


@pytest.fixture(scope="session")
def storage(database_url: str) -> Iterator[Storage]:
    """Return the storage (engine + sessionmaker) of the test database."""
    built = Storage.build(database_url)
    yield built
    built.engine.dispose()


@pytest.fixture(scope="session")
def engine(storage: Storage) -> Engine:
    """Return the engine of the migrated test database."""
    return storage.engine


@pytest.fixture
def db_session(storage: Storage) -> Iterator[Session]:
    """Return a session on the test database (call ``expire_all()`` before re-reading)."""
    with storage.sessionmaker() as session:
        yield session


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    """Return the settings of the app under test."""
    return Settings(database_url=database_url, secret_key="test", max_page_size=50, default_page_size=20)


@pytest.fixture(scope="session")
def app(settings: Settings, storage: Storage) -> Flask:
    """Return the app under test, on the backend's database."""
    application = create_app(settings, storage=storage)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Return a test client without credentials."""
    return app.test_client()


def new_tenant(storage: Storage, profile: str = "generic", **settings: Any) -> Tenant:
    """Create a tenant with a unique slug and mapping profile *profile*."""
    with storage.sessionmaker() as session, session.begin():
        tenant = TenantService(session).create(f"t-{uuid.uuid4().hex[:12]}", settings=settings or None,
                                               profile=profile)
    return tenant


def new_token(storage: Storage, tenant: Tenant, scope: str = tokens.DEFAULT_SCOPE, **kwargs: Any) -> str:
    """Mint a token for *tenant* and return the secret."""
    with storage.sessionmaker() as session, session.begin():
        return tokens.mint_token(session, tenant.id, scope=scope, **kwargs).token


@pytest.fixture
def tenant(storage: Storage) -> Tenant:
    """Return a fresh tenant of its own."""
    return new_tenant(storage)


@pytest.fixture
def token(storage: Storage, tenant: Tenant) -> str:
    """Return a read/write token of ``tenant``."""
    return new_token(storage, tenant)


@dataclass
class ScimClient:
    """A test client speaking SCIM JSON with a bearer token."""

    client: FlaskClient
    token: str | None

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        out = {"Accept": "application/scim+json"}
        if self.token:
            out["Authorization"] = f"Bearer {self.token}"
        out.update(headers or {})
        return out

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                **kwargs: Any) -> Any:
        """Send a request to ``/scim/v2`` + *path*."""
        data = None if body is None else (body if isinstance(body, str | bytes) else json.dumps(body))
        hdrs = self._headers(headers)
        if data is not None:
            hdrs.setdefault("Content-Type", "application/scim+json")
        return self.client.open(SCIM + path, method=method, data=data, headers=hdrs, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        """GET."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        """POST."""
        return self.request("POST", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        """PUT."""
        return self.request("PUT", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        """PATCH."""
        return self.request("PATCH", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        """DELETE."""
        return self.request("DELETE", path, **kwargs)

    def create_user(self, user_name: str, **attrs: Any) -> dict[str, Any]:
        """Create a user and return its body (asserting 201)."""
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name, **attrs}
        response = self.post("/Users", body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def create_group(self, display_name: str, members: list[str] | None = None, **attrs: Any) -> dict[str, Any]:
        """Create a group with member ids and return its body (asserting 201)."""
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": display_name,
                "members": [{"value": m} for m in members or []], **attrs}
        response = self.post("/Groups", body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()


@pytest.fixture
def scim(client: FlaskClient, token: str) -> ScimClient:
    """Return a SCIM client authenticated for ``tenant``."""
    return ScimClient(client, token)


@pytest.fixture
def other_scim(client: FlaskClient, storage: Storage) -> ScimClient:
    """Return a SCIM client of a second, unrelated tenant."""
    return ScimClient(client, new_token(storage, new_tenant(storage)))


@dataclass
class LiveServer:
    """A real gunicorn serving the app on the test database."""

    url: str
    process: Any


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


LIVE_SERVER_APPLICATION = "scim-bridge-live-server"
"""The PostgreSQL ``application_name`` of the live server's connections (tests that kill the test
app's connections leave them alone: the server lives for the whole session)."""


@pytest.fixture(scope="session")
def live_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Serve the app with gunicorn (production config, 3 workers) on the backend's database."""
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    from sqlalchemy.engine import make_url

    root = Path(__file__).resolve().parent.parent
    port = free_port()
    log = (tmp_path_factory.mktemp("gunicorn") / "gunicorn.log").open("w")
    served = make_url(database_url)
    if served.get_backend_name() == "postgresql":
        served = served.update_query_dict({"application_name": LIVE_SERVER_APPLICATION})
    env = {**os.environ, "SCIM_BRIDGE_DATABASE_URL": served.render_as_string(hide_password=False),
           "GUNICORN_WORKERS": "3", "SCIM_BRIDGE_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"gunicorn did not start; see {log.name}")
        time.sleep(0.2)
    yield LiveServer(url, process)
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()
