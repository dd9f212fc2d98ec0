"""Helpers for the admin reconciliation tests (issue 6): an admin API client and service access."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient

from scim_bridge.admin.orgs_admin import OrgAdmin
from scim_bridge.admin.plans import PlanService
from scim_bridge.admin.plans import parse_iam_orgs
from scim_bridge.admin.reconcile import ReconcileService
from scim_bridge.storage.models import Tenant
from tests.conftest import new_token
from tests.functional.orgs_support import GROUP
from tests.functional.orgs_support import Tenancy

API = "/admin/api/v1"


@dataclass
class AdminApi:
    """A test client of the admin API with a bearer token."""

    client: FlaskClient
    token: str | None

    def open(self, method: str, path: str, body: Any = None, raw: bytes | str | None = None,
             content_type: str | None = None, **kwargs: Any) -> Any:
        """Send a request to the admin API."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(kwargs.pop("headers", {}))
        if body is not None:
            raw, content_type = json.dumps(body), "application/json"
        return self.client.open(API + path, method=method, data=raw, content_type=content_type, headers=headers,
                                **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        """GET."""
        return self.open("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        """POST."""
        return self.open("POST", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        """PATCH."""
        return self.open("PATCH", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        """PUT."""
        return self.open("PUT", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        """DELETE."""
        return self.open("DELETE", path, **kwargs)


@dataclass
class AdminTenancy:
    """A tenant (with its SCIM client) plus admin access through the services and the API."""

    t: Tenancy
    api: AdminApi

    @property
    def tenant(self) -> Tenant:
        """Return the tenant."""
        return self.t.tenant

    def group(self, name: str, external_id: str | None = None, members: tuple[str, ...] = (),
              **extra: Any) -> dict[str, Any]:
        """Create a group through SCIM (asserting 201)."""
        body = {"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in members], **extra}
        if external_id is not None:
            body["externalId"] = external_id
        response = self.t.scim.post("/Groups", body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def user(self, user_name: str) -> dict[str, Any]:
        """Create a user through SCIM."""
        return self.t.scim.create_user(user_name)

    def admin(self, action: Callable[[OrgAdmin], Any]) -> Any:
        """Run *action* with an :class:`OrgAdmin` in a committed transaction."""
        with self.t.storage.sessionmaker() as session, session.begin():
            return action(OrgAdmin(session, self.tenant.id, self.profile(), "test"))

    def profile(self) -> Any:
        """Return the tenant's current mapping profile (re-read: tests switch profiles)."""
        with self.t.storage.sessionmaker() as session:
            name = session.get(Tenant, self.tenant.id).profile  # type: ignore[union-attr]
        return self.t.app.extensions["scim_bridge.mappings"][name]

    def set_profile(self, name: str) -> None:
        """Switch the tenant's mapping profile (as ``tenant set-profile`` does)."""
        with self.t.storage.sessionmaker() as session, session.begin():
            session.get(Tenant, self.tenant.id).profile = name  # type: ignore[union-attr]

    def report(self) -> Any:
        """Return the reconciliation report."""
        with self.t.storage.sessionmaker() as session:
            return ReconcileService(session, self.tenant.id, self.profile()).report()

    def findings(self, kind: str) -> list[Any]:
        """Return the findings of one kind."""
        return self.report().findings[kind]

    def plan(self, text: str, fmt: str | None = None) -> Any:
        """Make a plan from an IAM list; return (plan, lines)."""
        kind, entries = parse_iam_orgs(text, fmt)
        with self.t.storage.sessionmaker() as session, session.begin():
            service = PlanService(session, self.tenant.id, self.profile(), "test")
            plan = service.make(entries, "test.csv", kind)
            return plan, service.lines(plan)

    def apply(self, plan_id: Any) -> Any:
        """Apply a plan; return (plan, lines)."""
        with self.t.storage.sessionmaker() as session, session.begin():
            service = PlanService(session, self.tenant.id, self.profile(), "test")
            plan = service.apply(plan_id)
            return plan, service.lines(plan)

    def orgs(self) -> dict[str, dict[str, Any]]:
        """Return the tenant's orgs by org_id."""
        return self.t.orgs()

    def org_pk(self, org_id: str) -> str:
        """Return the id of the org with *org_id*."""
        return str(self.admin(lambda a: a.by_org_id(org_id).id))


@pytest.fixture
def admin_tenancy(tenancy: Callable[[str], Tenancy]) -> Callable[[str], AdminTenancy]:
    """Return a factory of fresh tenants under a profile, with an admin-scope API client."""

    def make(profile: str = "t-link") -> AdminTenancy:
        t = tenancy(profile)
        return AdminTenancy(t, AdminApi(t.app.test_client(), new_token(t.storage, t.tenant, scope="admin")))

    return make
