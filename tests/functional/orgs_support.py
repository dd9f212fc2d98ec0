"""Helpers for the Infinity-organization tests: an app with extra test profiles, and a tenant handle.

The fixtures are registered for ``tests/functional`` by its ``conftest.py``. Every tenant gets its own
profile, token and event log.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from scim_bridge.app import create_app
from scim_bridge.domain.events import read_events
from scim_bridge.domain.orgs import OrgService
from scim_bridge.mappings.model import Profile
from scim_bridge.settings import Settings
from scim_bridge.storage.models import Tenant
from scim_bridge.storage.session import Storage
from tests.conftest import ScimClient
from tests.conftest import new_tenant
from tests.conftest import new_token

SHIPPED = Path(__file__).resolve().parents[2] / "mappings"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
INF_GROUP = "urn:scim-bridge:params:scim:schemas:extension:infinity:2.0:Group"
INF_USER = "urn:scim-bridge:params:scim:schemas:extension:infinity:2.0:User"

_BASE = """
[orgs]
groups = "all"
on_existing_org_id = "{on_existing}"
on_org_id_change = "{on_change}"
on_group_delete = "{on_delete}"
[orgs.org_id]
{org_id}
[orgs.name]
idp_renames_override_admin = {override}
[membership]
mode = "{mode}"
precedence = {precedence}
tie_break = "{tie_break}"
[roles]
default = "Viewer"
precedence = ["Owner", "Admin", "Editor", "Viewer", "Analyst"]
[[roles.rules]]
display_name = '^Infinity Admins$'
role = "Admin"
[[roles.rules]]
external_id = '^role-editor$'
role = "Editor"
[[roles.rules]]
display_name = '^Analysts$'
role = "Analyst"
[user.extra]
employee_number = "{enterprise}:employeeNumber"
"""


def _profile(on_existing: str = "link", on_change: str = "follow", on_delete: str = "detach",
             org_id: str = 'path = "externalId"', override: str = "false", mode: str = "multi",
             precedence: str = "[]", tie_break: str = "org_id") -> str:
    return _BASE.format(on_existing=on_existing, on_change=on_change, on_delete=on_delete, org_id=org_id,
                        override=override, mode=mode, precedence=precedence, tie_break=tie_break,
                        enterprise=ENTERPRISE)


# Test profiles, next to the shipped okta / entra / generic ones.
TEST_PROFILES = {
    "t-link": _profile(),
    "t-reject": _profile(on_existing="reject"),
    "t-keep": _profile(on_change="keep"),
    "t-delete": _profile(on_delete="delete"),
    "t-override": _profile(override="true"),
    "t-single": _profile(mode="single", precedence="[{ org_id = '^HQ-' }]", tie_break="current"),
    "t-iam": _profile(org_id=f'path = "{INF_GROUP}:iamOrgId"\nwhen_missing = "skip"'),
}


@pytest.fixture(scope="session")
def orgs_app(settings: Settings, storage: Storage, tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """Return an app whose mappings directory holds the shipped profiles plus :data:`TEST_PROFILES`."""
    directory = tmp_path_factory.mktemp("mappings")
    for path in SHIPPED.glob("*.toml"):
        shutil.copy(path, directory / path.name)
    for name, text in TEST_PROFILES.items():
        (directory / f"{name}.toml").write_text(text, encoding="utf-8")
    application = create_app(settings.replace(mappings_dir=str(directory)), storage=storage)
    application.config["TESTING"] = True
    return application


@dataclass
class Tenancy:
    """One tenant under one profile: its SCIM client, and read access to its orgs, variables and events."""

    app: Flask
    storage: Storage
    tenant: Tenant
    scim: ScimClient

    @property
    def profile(self) -> Profile:
        """Return the tenant's mapping profile."""
        profile: Profile = self.app.extensions["scim_bridge.mappings"][self.tenant.profile]
        return profile

    def admin(self, action: Callable[[OrgService], Any]) -> Any:
        """Run *action* with the admin OrgService in a committed transaction."""
        with self.storage.sessionmaker() as session, session.begin():
            return action(OrgService(session, self.tenant.id, self.profile))

    def orgs(self) -> dict[str, dict[str, Any]]:
        """Return the tenant's orgs by org_id."""
        return self.admin(lambda service: {
            org.org_id: {"name": org.name, "source": org.source, "group": str(org.group_id) if org.group_id else None,
                         "orphaned": org.orphaned, "name_locked": org.name_locked}
            for org in service.list()})

    def variables(self, user_name: str) -> dict[str, Any]:
        """Return the resolved variables of a user."""
        result: dict[str, Any] = self.admin(lambda service: service.variables(user_name))
        return result

    def events(self, after: int = 0) -> list[dict[str, Any]]:
        """Return the tenant's events after *after*."""
        with self.storage.sessionmaker() as session:
            return read_events(session, self.tenant.id, after, 10_000)

    def cursor(self) -> int:
        """Return the cursor of the latest event (0 when none)."""
        events = self.events()
        return events[-1]["cursor"] if events else 0

    def types(self, after: int = 0) -> list[str]:
        """Return the types of the events after *after*, in order."""
        return [e["type"] for e in self.events(after)]

    def user(self, user_id: str) -> dict[str, Any]:
        """Return the Infinity User extension of a user (through SCIM)."""
        # The computed attributes are returned on request only (returned: "request").
        body = self.scim.get(f"/Users/{user_id}?attributes={INF_USER}").get_json()
        return body.get(INF_USER, {})

    def group_ext(self, group_id: str) -> dict[str, Any]:
        """Return the Infinity Group extension of a group (through SCIM)."""
        body = self.scim.get(f"/Groups/{group_id}?attributes={INF_GROUP}").get_json()
        return body.get(INF_GROUP, {})

    def patch_group(self, group_id: str, *operations: dict[str, Any], **kwargs: Any) -> Any:
        """PATCH a group with *operations*."""
        return self.scim.patch(f"/Groups/{group_id}", {"schemas": [PATCH_OP], "Operations": list(operations)},
                               **kwargs)

    def add_members(self, group_id: str, *member_ids: str) -> Any:
        """Add members to a group (Entra's E-G5 shape); assert success."""
        response = self.patch_group(group_id, {"op": "Add", "path": "members",
                                               "value": [{"$ref": None, "value": m} for m in member_ids]})
        assert response.status_code in (200, 204), response.get_json()
        return response

    def remove_members(self, group_id: str, *member_ids: str) -> Any:
        """Remove members from a group (Entra's E-G6 shape); assert success."""
        response = self.patch_group(group_id, {"op": "Remove", "path": "members",
                                               "value": [{"$ref": None, "value": m} for m in member_ids]})
        assert response.status_code in (200, 204), response.get_json()
        return response


@pytest.fixture
def tenancy(orgs_app: Flask, storage: Storage) -> Callable[[str], Tenancy]:
    """Return a factory of fresh tenants under a given profile."""

    def make(profile: str) -> Tenancy:
        tenant = new_tenant(storage, profile=profile)
        return Tenancy(orgs_app, storage, tenant, ScimClient(orgs_app.test_client(), new_token(storage, tenant)))

    return make


def guid() -> str:
    """Return a fresh lower-case GUID (an Entra objectId)."""
    return str(uuid.uuid4())
