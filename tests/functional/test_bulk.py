"""``POST /Bulk`` (RFC 7644 §3.7) through HTTP: bulkId references, versions, failOnErrors, savepoints, limits."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import pytest

from scim_bridge.app import create_app
from scim_bridge.domain import audit
from scim_bridge.scim.schema import BULK_REQUEST_SCHEMA
from scim_bridge.scim.schema import BULK_RESPONSE_SCHEMA
from scim_bridge.scim.schema import GROUP_SCHEMA
from scim_bridge.scim.schema import PATCH_OP_SCHEMA
from scim_bridge.scim.schema import USER_SCHEMA
from tests.conftest import ScimClient
from tests.conftest import new_token


def bulk(scim: ScimClient, operations: list[dict[str, Any]], **extra: Any) -> Any:
    """POST a BulkRequest and return the response."""
    return scim.post("/Bulk", {"schemas": [BULK_REQUEST_SCHEMA], "Operations": operations, **extra})


def ops_of(response: Any) -> list[dict[str, Any]]:
    """Return the Operations of a 200 BulkResponse."""
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["schemas"] == [BULK_RESPONSE_SCHEMA]
    return body["Operations"]


def new_user(bulk_id: str, user_name: str, **attrs: Any) -> dict[str, Any]:
    """Return a POST /Users operation."""
    return {"method": "POST", "path": "/Users", "bulkId": bulk_id,
            "data": {"schemas": [USER_SCHEMA], "userName": user_name, **attrs}}


def new_group(bulk_id: str, name: str, members: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """Return a POST /Groups operation with member values (ids or ``bulkId:x``)."""
    return {"method": "POST", "path": "/Groups", "bulkId": bulk_id,
            "data": {"schemas": [GROUP_SCHEMA], "displayName": name, "members": [{"value": m} for m in members]}}


def patch_op(*operations: dict[str, Any]) -> dict[str, Any]:
    """Return a PatchOp body."""
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}


def id_of(result: dict[str, Any]) -> str:
    """Return the resource id from an operation result's location."""
    return str(result["location"].rsplit("/", 1)[1])


def member_ids(scim: ScimClient, group_id: str) -> set[str]:
    """Return the member ids of a group."""
    return {m["value"] for m in scim.get(f"/Groups/{group_id}").get_json().get("members", [])}


def count(scim: ScimClient, endpoint: str, flt: str) -> int:
    """Count the resources matching *flt*."""
    return int(scim.get(endpoint, query_string={"filter": flt, "count": 0}).get_json()["totalResults"])


def test_creates_users_and_a_group_that_refers_to_them(scim):
    response = bulk(scim, [new_user("u1", "alice"), new_user("u2", "bob"),
                           new_group("g1", "team", ["bulkId:u1", "bulkId:u2"])])
    assert response.mimetype == "application/scim+json"
    results = ops_of(response)
    assert [(r["method"], r["bulkId"], r["status"]) for r in results] == [
        ("POST", "u1", "201"), ("POST", "u2", "201"), ("POST", "g1", "201")]
    alice, bob, team = (id_of(r) for r in results)
    assert results[0]["location"] == f"http://localhost/scim/v2/Users/{alice}"
    assert results[2]["location"] == f"http://localhost/scim/v2/Groups/{team}"
    assert all(r["version"] == 'W/"1"' and "response" not in r for r in results)
    assert scim.get(f"/Users/{alice}").get_json()["userName"] == "alice"
    assert member_ids(scim, team) == {alice, bob}


def test_forward_references_wait_for_the_post_that_defines_them(scim):
    """A group (and a PATCH of it) listed before the users they name run once the users exist."""
    response = bulk(scim, [
        {"method": "PATCH", "path": "/Groups/bulkId:g1",
         "data": patch_op({"op": "add", "path": "members", "value": [{"value": "bulkId:u2"}]})},
        new_group("g1", "early", ["bulkId:u1"]),
        new_user("u1", "carol"),
        new_user("u2", "dave"),
    ])
    results = ops_of(response)
    assert [r["status"] for r in results] == ["200", "201", "201", "201"]  # request order
    group = id_of(results[1])
    assert results[0]["location"].endswith(f"/Groups/{group}") and results[0]["version"] == 'W/"2"'
    assert member_ids(scim, group) == {id_of(results[2]), id_of(results[3])}


def test_bulk_ids_in_patch_filters_and_values_are_resolved(scim):
    created = ops_of(bulk(scim, [new_user("u1", "erin"), new_user("u2", "frank"),
                                 new_group("g1", "pair", ["bulkId:u1", "bulkId:u2"])]))
    group, frank = id_of(created[2]), id_of(created[1])
    results = ops_of(bulk(scim, [
        new_user("u3", "gina"),
        {"method": "PATCH", "path": f"/Groups/{group}", "data": patch_op(
            {"op": "remove", "path": f'members[value eq "{id_of(created[0])}"]'},
            {"op": "add", "path": "members", "value": [{"value": "bulkId:u3"}]})},
        {"method": "PATCH", "path": f"/Groups/{group}", "data": patch_op(
            {"op": "remove", "path": 'members[value eq "bulkId:u3"]'})},
    ]))
    assert [r["status"] for r in results] == ["201", "200", "200"]
    assert member_ids(scim, group) == {frank}


def test_circular_references_fail_with_409(scim):
    response = bulk(scim, [
        new_group("a", "cycle-a", ["bulkId:b"]),
        new_group("b", "cycle-b", ["bulkId:a"]),
        new_group("self", "cycle-self", ["bulkId:self"]),
        new_group("c", "after-cycle", ["bulkId:a"]),
        new_user("ok", "unaffected"),
    ])
    results = ops_of(response)
    assert [r["status"] for r in results] == ["409", "409", "409", "409", "201"]
    assert results[0]["response"]["status"] == "409"
    assert "circular" in results[0]["response"]["detail"]
    assert "location" not in results[0]
    assert count(scim, "/Groups", 'displayName sw "cycle-"') == 0
    assert count(scim, "/Users", 'userName eq "unaffected"') == 1


def test_unknown_bulk_id_fails_that_operation_with_400(scim):
    results = ops_of(bulk(scim, [new_group("g", "orphans", ["bulkId:nobody"]), new_user("u", "someone"),
                                 {"method": "DELETE", "path": "/Users/bulkId:ghost"}]))
    assert [r["status"] for r in results] == ["400", "201", "400"]
    assert results[0]["response"]["scimType"] == "invalidValue" and "nobody" in results[0]["response"]["detail"]
    assert count(scim, "/Groups", 'displayName eq "orphans"') == 0


def test_reference_to_a_failed_post_fails_with_409(scim):
    scim.create_user("taken")
    results = ops_of(bulk(scim, [new_user("u1", "taken"), new_group("g", "depends", ["bulkId:u1"])]))
    assert [r["status"] for r in results] == ["409", "409"]
    assert results[0]["response"]["scimType"] == "uniqueness"
    assert "failed" in results[1]["response"]["detail"]


def test_put_patch_delete_honour_version(scim):
    first, second, third = (scim.create_user(n) for n in ("v1", "v2", "v3"))
    results = ops_of(bulk(scim, [
        {"method": "PUT", "path": f"/Users/{first['id']}", "version": 'W/"1"',
         "data": {"schemas": [USER_SCHEMA], "userName": "v1", "displayName": "Replaced"}},
        {"method": "PATCH", "path": f"/Users/{second['id']}", "version": 'W/"7"',
         "data": patch_op({"op": "replace", "path": "displayName", "value": "Stale"})},
        {"method": "PATCH", "path": f"/Users/{second['id']}", "version": 'W/"1"',
         "data": patch_op({"op": "replace", "path": "displayName", "value": "Patched"})},
        {"method": "DELETE", "path": f"/Users/{third['id']}", "version": 'W/"9"'},
        {"method": "DELETE", "path": f"/Users/{third['id']}", "version": 'W/"1"'},
    ]))
    assert [r["status"] for r in results] == ["200", "412", "200", "412", "204"]
    assert results[0]["version"] == 'W/"2"' and results[2]["version"] == 'W/"2"'
    assert results[1]["response"]["scimType"] == "preconditionFailed"
    assert results[1]["location"].endswith(f"/Users/{second['id']}")  # location even on failure (not POST)
    assert "version" not in results[4] and results[4]["location"].endswith(f"/Users/{third['id']}")
    assert scim.get(f"/Users/{first['id']}").get_json()["displayName"] == "Replaced"
    assert scim.get(f"/Users/{second['id']}").get_json()["displayName"] == "Patched"
    assert scim.get(f"/Users/{third['id']}").status_code == 404


def test_fail_on_errors_stops_processing(scim):
    scim.create_user("dup")
    response = bulk(scim, [new_user("a", "first"), new_user("b", "dup"), new_user("c", "never")], failOnErrors=1)
    results = ops_of(response)
    assert [(r["bulkId"], r["status"]) for r in results] == [("a", "201"), ("b", "409")]
    assert count(scim, "/Users", 'userName eq "first"') == 1  # what ran before the stop is kept
    assert count(scim, "/Users", 'userName eq "never"') == 0


def test_fail_on_errors_counts_errors(scim):
    operations = [new_user("a", "dup2"), new_user("b", "dup2"), new_user("c", "dup2"), new_user("d", "dup2"),
                  new_user("e", "fine")]
    results = ops_of(bulk(scim, operations, failOnErrors=2))
    assert [r["status"] for r in results] == ["201", "409", "409"]
    assert count(scim, "/Users", 'userName eq "fine"') == 0


def test_without_fail_on_errors_every_operation_runs(scim):
    results = ops_of(bulk(scim, [new_user("a", "same"), new_user("b", "same"), new_user("c", "other")]))
    assert [r["status"] for r in results] == ["201", "409", "201"]


def test_failed_operation_leaves_nothing_while_the_others_persist(scim):
    """The group PATCH adds a member, renames, then fails: its savepoint undoes all of it."""
    member = scim.create_user("member")
    group = scim.create_group("stable")
    missing = str(uuid.uuid4())
    results = ops_of(bulk(scim, [
        new_user("before", "kept-before"),
        {"method": "PATCH", "path": f"/Groups/{group['id']}", "data": patch_op(
            {"op": "replace", "path": "displayName", "value": "renamed"},
            {"op": "add", "path": "members", "value": [{"value": member["id"]}]},
            {"op": "add", "path": "members", "value": [{"value": missing}]})},
        new_user("after", "kept-after"),
    ]))
    assert [r["status"] for r in results] == ["201", "400", "201"]
    after = scim.get(f"/Groups/{group['id']}").get_json()
    assert after["displayName"] == "stable" and after.get("members", []) == []
    assert after["meta"]["version"] == group["meta"]["version"]
    assert count(scim, "/Users", 'userName sw "kept-"') == 2


def test_lower_case_methods_and_attribute_names_are_accepted(scim):
    response = scim.post("/Bulk", {"SCHEMAS": [BULK_REQUEST_SCHEMA], "operations": [
        {"METHOD": "post", "Path": "/Users", "BULKID": "x", "Data": {"userName": "lower"}}]})
    assert [(r["method"], r["status"]) for r in ops_of(response)] == [("POST", "201")]


def test_empty_bulk_request(scim):
    assert ops_of(bulk(scim, [])) == []


@pytest.mark.parametrize("body", [
    "not json",
    [],
    {"Operations": []},
    {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []},
    {"schemas": [BULK_REQUEST_SCHEMA]},
    {"schemas": [BULK_REQUEST_SCHEMA], "Operations": {"method": "POST"}},
    {"schemas": [BULK_REQUEST_SCHEMA], "Operations": ["POST /Users"]},
    {"schemas": [BULK_REQUEST_SCHEMA], "Operations": [{"method": "POST", "bulkId": "x", "data": {}}]},
    {"schemas": [BULK_REQUEST_SCHEMA], "Operations": [{"method": "POST", "path": "/Users", "data": {}}]},
    {"schemas": [BULK_REQUEST_SCHEMA], "Operations": [{"method": "POST", "path": "/Users", "bulkId": "x"}]},
    {"schemas": [BULK_REQUEST_SCHEMA], "Operations": [{"method": "PUT", "path": "/Users/x"}]},
    {"schemas": [BULK_REQUEST_SCHEMA], "Operations": [{"method": "DELETE", "path": "/Users/x", "version": 1}]},
    {"schemas": [BULK_REQUEST_SCHEMA], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": 7, "data": {"userName": "numeric-bulk-id"}}]},
    {"schemas": [BULK_REQUEST_SCHEMA], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "x", "data": {"userName": "twice-1"}},
        {"method": "POST", "path": "/Users", "bulkId": "x", "data": {"userName": "twice-2"}}]},
    {"schemas": [BULK_REQUEST_SCHEMA], "Operations": [], "failOnErrors": 0},
    {"schemas": [BULK_REQUEST_SCHEMA], "Operations": [], "failOnErrors": "1"},
    {"schemas": [BULK_REQUEST_SCHEMA], "Operations": [], "failOnErrors": True},
])
def test_bad_envelope_is_400_invalid_syntax(scim, body):
    response = scim.post("/Bulk", body)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()
    assert error["status"] == "400" and error["scimType"] == "invalidSyntax"
    assert error["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert count(scim, "/Users", 'userName sw "twice-"') == 0


@pytest.mark.parametrize("method", ["GET", "HEAD-ish", "", None])
def test_unsupported_operation_method_is_400(scim, method):
    response = bulk(scim, [new_user("ok", "not-run"), {"method": method, "path": "/Users", "data": {}}])
    assert response.status_code == 400 and response.get_json()["scimType"] == "invalidSyntax"
    assert "Operations[1].method" in response.get_json()["detail"]
    assert count(scim, "/Users", 'userName eq "not-run"') == 0  # validated before anything runs


def test_wrong_http_method_on_bulk_is_405(scim):
    response = scim.get("/Bulk")
    assert response.status_code == 405 and response.get_json()["status"] == "405"


def test_method_that_does_not_fit_the_path_is_405_in_the_operation(scim):
    user = scim.create_user("target")
    results = ops_of(bulk(scim, [
        {"method": "POST", "path": f"/Users/{user['id']}", "bulkId": "x", "data": {"userName": "nope"}},
        {"method": "PUT", "path": "/Users", "data": {"userName": "nope"}},
        {"method": "DELETE", "path": "/Groups"},
    ]))
    assert [r["status"] for r in results] == ["405", "405", "405"]
    assert results[0]["response"]["status"] == "405"


@pytest.mark.parametrize("path", ["/Nope", "/Users/a/b", "Users", "/Users/", "/users", "/Schemas"])
def test_unknown_endpoint_is_404_in_the_operation(scim, path):
    results = ops_of(bulk(scim, [{"method": "POST", "path": path, "bulkId": "x", "data": {"userName": "p"}},
                                 new_user("y", "still-created")]))
    assert [r["status"] for r in results] == ["404", "201"]


def test_unknown_resource_is_404_in_the_operation(scim):
    missing = str(uuid.uuid4())
    results = ops_of(bulk(scim, [
        {"method": "PUT", "path": f"/Users/{missing}", "data": {"userName": "ghost"}},
        {"method": "PATCH", "path": f"/Groups/{missing}",
         "data": patch_op({"op": "replace", "path": "displayName", "value": "x"})},
        {"method": "DELETE", "path": "/Users/not-a-uuid"},
    ]))
    assert [r["status"] for r in results] == ["404", "404", "404"]
    assert results[0]["location"].endswith(f"/Users/{missing}")
    assert results[0]["response"] == {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                                      "status": "404", "detail": f"User {missing} not found"}


def test_other_tenants_resources_are_404(scim, other_scim):
    foreign_user = other_scim.create_user("foreign")
    foreign_group = other_scim.create_group("foreign-group", [foreign_user["id"]])
    results = ops_of(bulk(scim, [
        {"method": "PUT", "path": f"/Users/{foreign_user['id']}", "data": {"userName": "hijacked"}},
        {"method": "PATCH", "path": f"/Groups/{foreign_group['id']}",
         "data": patch_op({"op": "remove", "path": "members"})},
        {"method": "DELETE", "path": f"/Users/{foreign_user['id']}"},
        new_group("g", "mine", [foreign_user["id"]]),
    ]))
    assert [r["status"] for r in results] == ["404", "404", "404", "400"]
    assert other_scim.get(f"/Users/{foreign_user['id']}").get_json()["userName"] == "foreign"
    assert member_ids(other_scim, foreign_group["id"]) == {foreign_user["id"]}


def _client_with(settings, storage, tenant, **changes):
    app = create_app(settings.replace(**changes), storage=storage)
    return ScimClient(app.test_client(), new_token(storage, tenant))


def test_more_than_max_operations_is_413(settings, storage, tenant, scim):
    limited = _client_with(settings, storage, tenant, bulk_max_operations=2)
    response = bulk(limited, [new_user(f"u{i}", f"too-many-{i}") for i in range(3)])
    assert response.status_code == 413
    error = response.get_json()
    assert error["status"] == "413" and error["scimType"] == "tooLarge" and "maxOperations" in error["detail"]
    assert count(scim, "/Users", 'userName sw "too-many-"') == 0
    assert [r["status"] for r in ops_of(bulk(limited, [new_user("u", "too-many-ok")] * 1))] == ["201"]


def test_payload_over_max_payload_size_is_413(settings, storage, tenant, scim):
    limited = _client_with(settings, storage, tenant, bulk_max_payload_bytes=400)
    operations = [new_user(f"u{i}", f"too-big-{i}") for i in range(5)]
    assert len(json.dumps({"schemas": [BULK_REQUEST_SCHEMA], "Operations": operations})) > 400
    response = bulk(limited, operations)
    assert response.status_code == 413
    error = response.get_json()
    assert error["status"] == "413" and error["scimType"] == "tooLarge" and "maxPayloadSize" in error["detail"]
    assert count(scim, "/Users", 'userName sw "too-big-"') == 0
    assert ops_of(bulk(limited, operations[:1]))[0]["status"] == "201"


def test_payload_size_is_checked_without_content_length(settings, storage, tenant, scim):
    """A chunked body (no Content-Length, as gunicorn passes it on) is measured after reading."""
    limited = _client_with(settings, storage, tenant, bulk_max_payload_bytes=100)
    body = json.dumps({"schemas": [BULK_REQUEST_SCHEMA], "Operations": [new_user("u", "chunked-too-big")]})
    response = limited.client.post("/scim/v2/Bulk", input_stream=io.BytesIO(body.encode()),
                                   environ_overrides={"wsgi.input_terminated": True},
                                   headers={"Authorization": f"Bearer {limited.token}",
                                            "Content-Type": "application/scim+json",
                                            "Transfer-Encoding": "chunked"})
    assert response.status_code == 413 and response.get_json()["scimType"] == "tooLarge"
    assert count(scim, "/Users", 'userName eq "chunked-too-big"') == 0


def test_payload_limit_advertised_is_capped_by_the_request_limit(settings, storage, tenant):
    capped = _client_with(settings, storage, tenant, bulk_max_payload_bytes=10**9)
    body = capped.get("/ServiceProviderConfig").get_json()
    assert body["bulk"]["maxPayloadSize"] == settings.max_request_bytes


def test_bulk_requires_a_write_token(client, storage, tenant):
    body = json.dumps({"schemas": [BULK_REQUEST_SCHEMA], "Operations": [new_user("u", "unauthorized")]})
    response = client.post("/scim/v2/Bulk", data=body, content_type="application/scim+json")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    reader = ScimClient(client, new_token(storage, tenant, scope="scim:read"))
    response = reader.post("/Bulk", json.loads(body))
    assert response.status_code == 403 and response.get_json()["status"] == "403"
    assert count(reader, "/Users", 'userName eq "unauthorized"') == 0


def test_each_operation_is_audited(scim, tenant, storage):
    """One record per operation, as single writes are audited; they commit with the bulk request."""
    missing = str(uuid.uuid4())
    results = ops_of(bulk(scim, [new_user("a", "audited"), {"method": "DELETE", "path": f"/Users/{missing}"},
                                 new_group("g", "audited-group", ["bulkId:a"]),
                                 {"method": "PATCH", "path": "/Groups/bulkId:nope", "data": patch_op()}]))
    assert [r["status"] for r in results] == ["201", "404", "201", "400"]
    with storage.sessionmaker() as session:
        events = audit.query(session, audit.AuditFilter(tenant.id))
    got = sorted((e.action, e.outcome, e.status, e.detail, e.resource_id) for e in events)
    assert got == sorted([
        ("user.create", "success", None, None, id_of(results[0])),
        ("user.delete", "failure", 404, "NotFound", missing),
        ("group.create", "success", None, None, id_of(results[2])),
        ("group.patch", "failure", 400, "invalidValue", None),
    ])
    assert len({e.request_id for e in events}) == 1 and all(e.client.startswith("token:") for e in events)


def test_many_operations_with_scattered_failures(scim, tenant, storage):
    """Operations share savepoints in groups; a failure re-runs its group one savepoint each."""
    scim.create_user("taken-0005")
    scim.create_user("taken-0150")
    names = [f"taken-{i:04d}" if i in (5, 150) else f"many-{i:04d}" for i in range(300)]
    names[299] = "many-0298"  # duplicates an earlier operation of the same request
    operations = [new_user(f"u{i}", name) for i, name in enumerate(names)]
    operations.append(new_group("g", "many", [f"bulkId:u{i}" for i in range(300)]))
    results = ops_of(bulk(scim, operations))
    failed = [i for i, r in enumerate(results) if r["status"] != "201"]
    assert failed == [5, 150, 299, 300]  # the group names three users whose POST failed
    assert results[300]["status"] == "409"
    assert count(scim, "/Users", 'userName sw "many-"') == 297
    with storage.sessionmaker() as session:
        events = audit.query(session, audit.AuditFilter(tenant.id, action="user.create"), limit=1000)
    assert len(events) == 300 + 2  # one per operation (none left by a rolled-back group) + the two setups
    assert sum(e.outcome == "failure" for e in events) == 3


def test_fail_on_errors_in_a_large_request(scim):
    scim.create_user("large-0100")
    operations = [new_user(f"u{i}", f"large-{i:04d}") for i in range(200)]
    results = ops_of(bulk(scim, operations, failOnErrors=1))
    assert len(results) == 101 and results[-1]["status"] == "409"
    assert all(r["status"] == "201" for r in results[:100])
    assert count(scim, "/Users", 'userName sw "large-"') == 101  # 100 created + the one set up
