"""Tenant isolation and access control as a matrix: every SCIM endpoint × method × credential state.

The routes come from the app's URL map, so a new endpoint cannot slip past: it fails
:func:`test_every_scim_route_is_in_the_matrix` until it gets a request builder here.

Credential states, all with tenant A's world set up next to tenant B's:

- ``own``: A's token on A's resources is served (the expected 2xx, or 409 for A's own duplicates;
  a 204 has no body).
- ``other``: A's token aimed at B's resources (ids, ``externalId``, names, member values, Bulk
  operations) gets exactly the answer a missing resource gets (same status, same error, ids
  aside), never 403, and B's data is unchanged.
- ``none``, ``expired``, ``revoked``: 401 with ``WWW-Authenticate``, and nothing changed.
- ``wrong_scope``: a valid token with every scope but the route's declared one: 403, nothing changed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta
from typing import Any

import pytest

from scim_bridge.app import create_app
from scim_bridge.auth import tokens
from scim_bridge.scim.schema import BULK_REQUEST_SCHEMA
from scim_bridge.settings import Settings
from scim_bridge.storage.base import utcnow
from tests.conftest import ScimClient
from tests.conftest import new_tenant
from tests.conftest import new_token
from tests.functional.oauth_support import client_for

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
STATES = ["own", "other", "none", "expired", "revoked", "wrong_scope"]


@dataclass
class Target:
    """The resources a request is aimed at: A's own, B's, or ones that exist nowhere."""

    user_id: str
    group_id: str
    user_name: str
    user_external_id: str
    group_name: str
    group_external_id: str

    @classmethod
    def missing(cls) -> Target:
        tag = uuid.uuid4().hex[:10]
        return cls(str(uuid.uuid4()), str(uuid.uuid4()), f"nobody-{tag}@example.com", f"ext-u-{tag}",
                   f"No Group {tag}", f"ext-g-{tag}")

    def placeholders(self) -> dict[str, str]:
        return {value: f"<{name}>" for name, value in vars(self).items()}


@dataclass
class Req:
    """One request of a matrix case and what A gets for it on its own resources."""

    method: str
    path: str
    body: Any = None
    own_status: int = 200
    own_total: int | None = None  # for list responses: how many of A's resources match
    own_bulk: list[int] = field(default_factory=list)  # for Bulk: each operation's status


def fresh() -> str:
    return uuid.uuid4().hex[:10]


def filters(t: Target, kind: str) -> list[str]:
    if kind == "Users":
        return [f'id eq "{t.user_id}"', f'externalId eq "{t.user_external_id}"', f'userName eq "{t.user_name}"']
    return [f'id eq "{t.group_id}"', f'externalId eq "{t.group_external_id}"', f'displayName eq "{t.group_name}"',
            f'members.value eq "{t.user_id}"']


def list_requests(kind: str) -> Callable[[Target, Target], list[Req]]:
    def build(mine: Target, t: Target) -> list[Req]:
        return [Req("GET", f"/{kind}?filter={flt}", own_total=1) for flt in filters(t, kind)]
    return build


def search_requests(kind: str) -> Callable[[Target, Target], list[Req]]:
    def build(mine: Target, t: Target) -> list[Req]:
        return [Req("POST", f"/{kind}/.search", {"schemas": [SEARCH], "filter": flt}, own_total=1)
                for flt in filters(t, kind)]
    return build


def root_search(mine: Target, t: Target) -> list[Req]:
    flt = f'id eq "{t.user_id}" or id eq "{t.group_id}"'
    return [Req("POST", "/.search", {"schemas": [SEARCH], "filter": flt}, own_total=2),
            Req("POST", "/.search", {"schemas": [SEARCH], "filter": f'externalId eq "{t.user_external_id}"'},
                own_total=1)]


def create_user(mine: Target, t: Target) -> list[Req]:
    # Another tenant's userName/externalId never collide with ours; our own do (409).
    return [Req("POST", "/Users", {"schemas": [USER], "userName": f"new-{fresh()}@example.com"}, 201),
            Req("POST", "/Users", {"schemas": [USER], "userName": t.user_name, "externalId": t.user_external_id},
                409)]


def create_group(mine: Target, t: Target) -> list[Req]:
    return [Req("POST", "/Groups", {"schemas": [GROUP], "displayName": f"G {fresh()}",
                                    "members": [{"value": t.user_id}]}, 201),
            Req("POST", "/Groups", {"schemas": [GROUP], "displayName": f"G {fresh()}",
                                    "members": [{"value": t.group_id, "type": "Group"}]}, 201),
            Req("POST", "/Groups", {"schemas": [GROUP], "displayName": t.group_name,
                                    "externalId": t.group_external_id}, 409)]


def get_item(kind: str) -> Callable[[Target, Target], list[Req]]:
    def build(mine: Target, t: Target) -> list[Req]:
        return [Req("GET", f"/{kind}/{t.user_id if kind == 'Users' else t.group_id}")]
    return build


def put_user(mine: Target, t: Target) -> list[Req]:
    return [Req("PUT", f"/Users/{t.user_id}", {"schemas": [USER], "userName": t.user_name, "active": False})]


def put_group(mine: Target, t: Target) -> list[Req]:
    return [Req("PUT", f"/Groups/{t.group_id}", {"schemas": [GROUP], "displayName": t.group_name}),
            # Our own group, with the target's user as member: a foreign member is an unknown member.
            Req("PUT", f"/Groups/{mine.group_id}", {"schemas": [GROUP], "displayName": mine.group_name,
                                                    "members": [{"value": t.user_id}]})]


def patch_user(mine: Target, t: Target) -> list[Req]:
    return [Req("PATCH", f"/Users/{t.user_id}",
                {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]})]


def patch_group(mine: Target, t: Target) -> list[Req]:
    def op(*operations: dict[str, Any]) -> dict[str, Any]:
        return {"schemas": [PATCH], "Operations": list(operations)}

    # A group PATCH answers 204 and the ETag (no Prefer header here); the group itself only when asked.
    return [Req("PATCH", f"/Groups/{t.group_id}", op({"op": "replace", "path": "displayName", "value": "Renamed"}),
                204),
            Req("PATCH", f"/Groups/{mine.group_id}", op({"op": "add", "path": "members",
                                                           "value": [{"value": t.user_id}]}), 204),
            Req("PATCH", f"/Groups/{mine.group_id}", op({"op": "add", "path": "members",
                                                           "value": [{"value": t.group_id}]}), 400),
            Req("PATCH", f"/Groups/{mine.group_id}", op({"op": "remove",
                                                           "path": f'members[value eq "{t.user_id}"]'}), 204)]


def delete_item(kind: str) -> Callable[[Target, Target], list[Req]]:
    def build(mine: Target, t: Target) -> list[Req]:
        return [Req("DELETE", f"/{kind}/{t.user_id if kind == 'Users' else t.group_id}", own_status=204)]
    return build


def bulk(mine: Target, t: Target) -> list[Req]:
    operations = [
        {"method": "PATCH", "path": f"/Users/{t.user_id}",
         "data": {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}},
        {"method": "PUT", "path": f"/Users/{t.user_id}", "data": {"schemas": [USER], "userName": t.user_name}},
        {"method": "POST", "path": "/Groups", "bulkId": "g1",
         "data": {"schemas": [GROUP], "displayName": f"B {fresh()}", "members": [{"value": t.user_id}]}},
        {"method": "PATCH", "path": f"/Groups/{mine.group_id}",
         "data": {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members",
                                                      "value": [{"value": t.user_id}]}]}},
        {"method": "POST", "path": "/Users", "bulkId": "u1",
         "data": {"schemas": [USER], "userName": t.user_name, "externalId": t.user_external_id}},
        {"method": "DELETE", "path": f"/Groups/{t.group_id}"},
    ]
    return [Req("POST", "/Bulk", {"schemas": [BULK_REQUEST_SCHEMA], "Operations": operations},
                own_bulk=[200, 200, 201, 200, 409, 204])]


def discovery(path: str) -> Callable[[Target, Target], list[Req]]:
    def build(mine: Target, t: Target) -> list[Req]:
        return [Req("GET", path)]
    return build


BUILDERS: dict[tuple[str, str], Callable[[Target, Target], list[Req]]] = {
    ("/scim/v2/Users", "GET"): list_requests("Users"),
    ("/scim/v2/Groups", "GET"): list_requests("Groups"),
    ("/scim/v2/Users/.search", "POST"): search_requests("Users"),
    ("/scim/v2/Groups/.search", "POST"): search_requests("Groups"),
    ("/scim/v2/.search", "POST"): root_search,
    ("/scim/v2/Users", "POST"): create_user,
    ("/scim/v2/Groups", "POST"): create_group,
    ("/scim/v2/Users/<resource_id>", "GET"): get_item("Users"),
    ("/scim/v2/Groups/<resource_id>", "GET"): get_item("Groups"),
    ("/scim/v2/Users/<resource_id>", "PUT"): put_user,
    ("/scim/v2/Groups/<resource_id>", "PUT"): put_group,
    ("/scim/v2/Users/<resource_id>", "PATCH"): patch_user,
    ("/scim/v2/Groups/<resource_id>", "PATCH"): patch_group,
    ("/scim/v2/Users/<resource_id>", "DELETE"): delete_item("Users"),
    ("/scim/v2/Groups/<resource_id>", "DELETE"): delete_item("Groups"),
    ("/scim/v2/Bulk", "POST"): bulk,
    ("/scim/v2/ServiceProviderConfig", "GET"): discovery("/ServiceProviderConfig"),
    ("/scim/v2/ResourceTypes", "GET"): discovery("/ResourceTypes"),
    ("/scim/v2/ResourceTypes/<type_id>", "GET"): discovery("/ResourceTypes/User"),
    ("/scim/v2/Schemas", "GET"): discovery("/Schemas"),
    ("/scim/v2/Schemas/<path:schema_id>", "GET"): discovery(f"/Schemas/{USER}"),
}


def _discover() -> dict[tuple[str, str], str]:
    """Return every SCIM (rule, method) of the app with the scope its view declares."""
    app = create_app(Settings(database_url="sqlite://"))
    found = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/scim/v2"):
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
                found[(rule.rule, method)] = getattr(app.view_functions[rule.endpoint], "required_scope", None)
    return found


ROUTES = _discover()
CASES = [(rule, method, state) for (rule, method) in sorted(ROUTES) if (rule, method) in BUILDERS for state in STATES]


def test_every_scim_route_is_in_the_matrix():
    assert sorted(set(ROUTES) - set(BUILDERS)) == []


# -- the world: tenant A (ours) and tenant B (theirs) ---------------------------------------------

@dataclass
class World:
    mine: Target
    theirs: Target
    a: ScimClient
    b: ScimClient


def populate(scim: ScimClient, tag: str) -> Target:
    user = scim.create_user(f"{tag}-{fresh()}@example.com", externalId=f"ext-u-{tag}-{fresh()}")
    group = scim.create_group(f"{tag} Group {fresh()}", [user["id"]], externalId=f"ext-g-{tag}-{fresh()}")
    return Target(user["id"], group["id"], user["userName"], user["externalId"], group["displayName"],
                  group["externalId"])


@pytest.fixture
def world(app, storage) -> World:
    http = client_for(app)
    a = ScimClient(http, new_token(storage, new_tenant(storage)))
    b = ScimClient(http, new_token(storage, new_tenant(storage)))
    return World(populate(a, "a"), populate(b, "b"), a, b)


def snapshot(scim: ScimClient) -> list[tuple[str, str]]:
    """Every resource of the token's tenant with its version."""
    out = []
    for kind in ("Users", "Groups"):
        body = scim.get(f"/{kind}?count=50").get_json()
        out += sorted((r["id"], r["meta"]["version"]) for r in body["Resources"])
    return out


def credential(state: str, storage, world: World, scope: str | None) -> str | None:
    tenant_id = tokens_tenant(storage, world.a.token)
    if state == "none":
        return None
    if state == "expired":
        return new_token(storage, tenant_id, expires_in=timedelta(seconds=1), now=utcnow() - timedelta(hours=2))
    if state == "wrong_scope":
        return new_token(storage, tenant_id, scope=" ".join(s for s in tokens.KNOWN_SCOPES if s != scope))
    token = new_token(storage, tenant_id)
    with storage.sessionmaker() as session, session.begin():
        tokens.revoke_token(session, tenant_id.id, tokens.find_token(session, token).id)
    return token


@dataclass
class _TenantRef:
    id: uuid.UUID


def tokens_tenant(storage, token: str) -> Any:
    with storage.sessionmaker() as session:
        return _TenantRef(tokens.find_token(session, token).tenant_id)


def send(scim: ScimClient, req: Req) -> Any:
    return scim.request(req.method, req.path, req.body)


def summary(response: Any, target: Target) -> Any:
    """What a client can observe of a response, with the target's own values masked."""
    text = response.get_data(as_text=True)
    for value, mask in target.placeholders().items():
        text = text.replace(value, mask)
    body = json.loads(text) if text else None
    if not isinstance(body, dict):
        return response.status_code, body
    if ERROR in body.get("schemas", []):
        return response.status_code, body.get("scimType"), body.get("detail")
    if "totalResults" in body:
        return response.status_code, body["totalResults"], len(body.get("Resources", []))
    if "Operations" in body:
        return response.status_code, [(op.get("method"), op.get("status"), (op.get("response") or {}).get("scimType"),
                                       (op.get("response") or {}).get("detail")) for op in body["Operations"]]
    return response.status_code, sorted(body)


@pytest.mark.parametrize(("rule", "method", "state"), CASES,
                         ids=[f"{m} {r.removeprefix('/scim/v2')} {s}" for r, m, s in CASES])
def test_matrix(storage, world: World, rule: str, method: str, state: str):
    build = BUILDERS[(rule, method)]
    if state == "own":
        for req in build(world.mine, world.mine):
            response = send(world.a, req)
            assert response.status_code == req.own_status, (req.path, response.get_json())
            if req.own_status == 204:
                assert response.get_data() == b"", req.path
            body = response.get_json(silent=True) or {}
            if req.own_total is not None:
                assert body["totalResults"] == req.own_total, req.path
            if req.own_bulk:
                assert [int(op["status"]) for op in body["Operations"]] == req.own_bulk, body
        return

    if state == "other":
        before = snapshot(world.b)
        missing = Target.missing()
        for theirs, nowhere in zip(build(world.mine, world.theirs), build(world.mine, missing), strict=True):
            seen_theirs, seen_missing = send(world.a, theirs), send(world.a, nowhere)
            assert seen_theirs.status_code != 403, theirs.path
            assert summary(seen_theirs, world.theirs) == summary(seen_missing, missing), theirs.path
        assert snapshot(world.b) == before
        return

    scim = ScimClient(world.a.client, credential(state, storage, world, ROUTES[(rule, method)]))
    before = snapshot(world.a)
    for req in build(world.mine, world.mine):
        response = send(scim, req)
        expected = 403 if state == "wrong_scope" else 401
        assert response.status_code == expected, (req.path, response.get_json())
        assert response.get_json()["status"] == str(expected)
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="scim-bridge"')
    assert snapshot(world.a) == before
