"""The admin API (issue 6 §4): auth, scope and tenant checks, org management, report, plans, logs, OpenAPI."""

from __future__ import annotations

import io
import json

import pytest

from tests.conftest import new_tenant
from tests.conftest import new_token
from tests.functional.admin_support import API
from tests.functional.admin_support import AdminApi

# -- credentials -----------------------------------------------------------------------------------


def test_every_route_needs_an_admin_token(admin_tenancy, app):
    a = admin_tenancy("t-link")
    scim_token = new_token(a.t.storage, a.tenant)  # scim:read scim:write
    routes = [(rule.rule, sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}))
              for rule in a.t.app.url_map.iter_rules() if rule.endpoint.startswith("admin_api.")]
    assert len(routes) >= 14
    for rule, methods in routes:
        path = rule.replace(API, "").replace("<org>", "x").replace("<user>", "x").replace("<plan>", "x")
        for method in methods:
            response = AdminApi(a.t.app.test_client(), None).open(method, path)
            assert response.status_code == 401, (method, rule)
            assert response.headers["WWW-Authenticate"].startswith('Bearer realm="scim-bridge"')
            assert response.get_json()["error"] == "invalid_token"
            response = AdminApi(a.t.app.test_client(), scim_token).open(method, path)
            assert response.status_code == 403 and response.get_json()["error"] == "insufficient_scope", rule


def test_tenant_comes_from_the_credential(admin_tenancy):
    a, b = admin_tenancy("t-link"), admin_tenancy("t-link")
    created = a.api.post("/orgs", {"orgId": "A-1", "name": "Only A"}).get_json()
    assert b.api.get("/orgs").get_json()["total"] == 0
    for method, path in (("GET", f"/orgs/{created['id']}"), ("PATCH", f"/orgs/{created['id']}"),
                         ("DELETE", f"/orgs/{created['id']}"), ("GET", f"/orgs/{created['id']}/members")):
        response = b.api.open(method, path, {"name": "stolen"} if method == "PATCH" else None)
        assert response.status_code == 404 and response.get_json()["error"] == "not_found", (method, path)
    assert b.api.post(f"/orgs/{created['id']}/members", {"user": "x"}).status_code == 404
    assert a.api.get(f"/orgs/{created['id']}").get_json()["name"] == "Only A"


# -- orgs ------------------------------------------------------------------------------------------


def test_org_lifecycle_through_the_api(admin_tenancy):
    a = admin_tenancy("t-link")
    alice = a.user("alice")
    team = a.group("Team", None, (alice["id"],))
    response = a.api.post("/orgs", {"orgId": "4711", "name": "ACME"})
    assert response.status_code == 201
    org = response.get_json()
    assert {k: org[k] for k in ("orgId", "name", "source", "memberCount", "orphaned", "nameLocked", "deletable",
                                "version")} == {"orgId": "4711", "name": "ACME", "source": "manual", "memberCount": 0,
                                                "orphaned": False, "nameLocked": True, "deletable": True,
                                                "version": 1}
    duplicate = a.api.post("/orgs", {"orgId": "4711", "name": "Again"})
    assert duplicate.status_code == 409 and duplicate.get_json()["error"] == "conflict"
    invalid = a.api.post("/orgs", {"orgId": "", "name": 5})
    assert invalid.status_code == 400 and set(invalid.get_json()["details"]["fields"]) == {"orgId", "name"}
    assert a.api.post("/orgs", raw="nope", content_type="text/plain").status_code == 400

    edited = a.api.patch(f"/orgs/{org['id']}", {"orgId": "4712", "name": "ACME GmbH", "version": 1})
    assert edited.status_code == 200 and (edited.get_json()["orgId"], edited.get_json()["version"]) == ("4712", 3)
    stale = a.api.patch(f"/orgs/{org['id']}", {"name": "x", "version": 1})
    assert stale.status_code == 409 and "changed since you loaded it" in stale.get_json()["error_description"]
    rekeyed = [e for e in a.t.events() if e["type"] == "org.rekeyed"]
    assert [(e["before"], e["after"]) for e in rekeyed] == [({"org_id": "4711"}, {"org_id": "4712"})]

    linked = a.api.put(f"/orgs/{org['id']}/group", {"group": team["id"]})
    assert linked.status_code == 200 and linked.get_json()["groupName"] == "Team"
    assert linked.get_json()["memberCount"] == 1 and linked.get_json()["deletable"] is False
    assert a.api.delete(f"/orgs/{org['id']}").get_json()["error"] == "refused"
    bob = a.user("bob")
    assert a.api.post(f"/orgs/{org['id']}/members", {"user": "BOB"}).status_code == 201
    members = a.api.get(f"/orgs/{org['id']}/members").get_json()
    assert [(m["userName"], m["sources"]) for m in members["items"]] == [("alice", ["idp"]), ("bob", ["manual"])]
    refused = a.api.delete(f"/orgs/{org['id']}/members/{alice['id']}")
    assert refused.status_code == 409 and "through group 'Team'" in refused.get_json()["error_description"]
    assert a.api.delete(f"/orgs/{org['id']}/members/{bob['id']}").status_code == 204
    assert a.api.delete(f"/orgs/{org['id']}/group").get_json()["groupId"] is None
    assert a.api.delete(f"/orgs/{org['id']}").status_code == 204
    assert a.api.get(f"/orgs/{org['id']}").status_code == 404


def test_lists_are_paged(admin_tenancy):
    a = admin_tenancy("t-link")
    for i in range(5):
        a.api.post("/orgs", {"orgId": f"P-{i}", "name": f"Paged {i}"})
    first = a.api.get("/orgs?limit=2").get_json()
    assert ([o["orgId"] for o in first["items"]], first["total"], first["nextOffset"]) == (["P-0", "P-1"], 5, 2)
    last = a.api.get("/orgs?limit=2&offset=4").get_json()
    assert ([o["orgId"] for o in last["items"]], last["nextOffset"]) == (["P-4"], None)
    assert a.api.get("/orgs?q=paged%203").get_json()["total"] == 1
    assert a.api.get("/orgs?source=manual&orphaned=false&linked=false").get_json()["total"] == 5
    for bad in ("limit=0", "limit=51", "offset=-1", "limit=x", "source=x", "orphaned=maybe"):
        response = a.api.get(f"/orgs?{bad}")
        assert response.status_code == 400 and response.get_json()["error"] == "invalid_request", bad
    a.user("u1")
    a.user("u2")
    users = a.api.get("/users?limit=1").get_json()
    assert (users["total"], users["nextOffset"], users["items"][0]["userName"]) == (2, 1, "u1")
    one = a.api.get("/users/u2").get_json()
    assert one["variables"]["role"] == "Viewer" and one["memberships"] == []


def test_export_csv_and_json(admin_tenancy):
    a = admin_tenancy("t-link")
    a.api.post("/orgs", {"orgId": "E-1", "name": "Exported"})
    csv_response = a.api.get("/orgs/export?format=csv")
    assert csv_response.mimetype == "text/csv"
    assert csv_response.get_data(as_text=True).splitlines()[1].startswith("E-1,Exported,manual,")
    assert [o["orgId"] for o in a.api.get("/orgs/export").get_json()] == ["E-1"]


# -- reconciliation --------------------------------------------------------------------------------


def test_report_and_one_click_action(admin_tenancy):
    a = admin_tenancy("generic")
    a.group("ACME")  # no externalId: no org
    org = a.api.post("/orgs", {"orgId": "4711", "name": "ACME"}).get_json()
    report = a.api.get("/reconcile/report").get_json()
    assert report["profile"] == "generic" and report["counts"]["link_candidates"] == 1
    assert report["total"] == sum(report["counts"].values()) == 2  # + the unmapped group (no_org_id)
    (section,) = [s for s in report["sections"] if s["kind"] == "link_candidates"]
    suggestion = section["items"][0]["suggestion"]
    assert suggestion["action"] == "link" and suggestion["params"]["org"] == org["id"]
    assert a.api.get("/orgs?conflict=true").get_json()["items"][0]["conflicts"] == ["link_candidates"]
    done = a.api.post("/reconcile/actions", {"action": suggestion["action"], "params": suggestion["params"]})
    assert done.status_code == 200 and done.get_json()["message"] == "linked 'ACME' to group 'ACME'"
    assert a.api.get("/reconcile/report").get_json()["total"] == 0
    assert a.api.post("/reconcile/actions", {"action": "explode"}).status_code == 400


def test_plans_upload_dry_run_apply_and_stale(admin_tenancy):
    a = admin_tenancy("t-link")
    a.api.post("/orgs", {"orgId": "4711", "name": "Old name"})
    made = a.api.post("/reconcile/plans?name=iam.csv", raw="org_id,name\n4711,New name\n4712,Created\n",
                      content_type="text/csv")
    assert made.status_code == 201
    plan = made.get_json()
    assert (plan["status"], plan["sourceName"], plan["sourceFormat"], plan["entryCount"]) == (
        "planned", "iam.csv", "csv", 2)
    assert [(line["action"], line["status"]) for line in plan["lines"]] == [("create", "pending"),
                                                                            ("rename", "pending")]
    listed = a.api.get("/reconcile/plans").get_json()
    assert listed["total"] == 1 and "lines" not in listed["items"][0]
    applied = a.api.post(f"/reconcile/plans/{plan['id']}/apply")
    assert applied.status_code == 200 and applied.get_json()["status"] == "applied"
    assert a.api.get(f"/reconcile/plans/{plan['id']}").get_json()["outcome"] == "applied 2 change(s)"
    again = a.api.post(f"/reconcile/plans/{plan['id']}/apply")
    assert again.status_code == 409 and again.get_json()["error"] == "conflict"

    upload = {"file": (io.BytesIO(json.dumps([{"orgId": "4712", "name": "Renamed"}]).encode()), "iam.json")}
    multipart = a.t.app.test_client().post(f"{API}/reconcile/plans", data=upload, content_type="multipart/form-data",
                                           headers={"Authorization": f"Bearer {a.api.token}"})
    assert multipart.status_code == 201 and multipart.get_json()["sourceFormat"] == "json"
    a.api.patch(f"/orgs/{a.org_pk('4712')}", {"name": "Changed meanwhile"})
    stale = a.api.post(f"/reconcile/plans/{multipart.get_json()['id']}/apply")
    assert stale.status_code == 409 and stale.get_json()["error"] == "stale_plan"
    assert stale.get_json()["details"]["plan"]["status"] == "refused"
    bad = a.api.post("/reconcile/plans", raw="4711,\n", content_type="text/csv")
    assert bad.status_code == 400 and "line 1" in bad.get_json()["error_description"]
    assert a.api.post("/reconcile/plans", raw=b"", content_type="text/csv").status_code == 400
    assert a.api.get("/reconcile/plans/not-a-plan").status_code == 404


# -- logs ------------------------------------------------------------------------------------------


def test_events_and_audit(admin_tenancy):
    a = admin_tenancy("t-link")
    for i in range(3):
        a.api.post("/orgs", {"orgId": f"L-{i}", "name": f"Logged {i}"})
    page = a.api.get("/events?limit=2").get_json()
    assert [e["type"] for e in page["items"]] == ["org.created", "org.created"]
    rest = a.api.get(f"/events?after={page['nextCursor']}").get_json()
    assert [e["after"]["org_id"] for e in rest["items"]] == ["L-2"] and rest["nextCursor"] > page["nextCursor"]
    assert a.api.get(f"/events?after={rest['nextCursor']}").get_json() == {"items": [],
                                                                          "nextCursor": rest["nextCursor"]}
    audit = a.api.get("/audit?action=org&limit=2").get_json()
    assert [e["action"] for e in audit["items"]] == ["org.create", "org.create"]
    assert audit["items"][0]["client"].startswith("token:") and audit["nextBefore"] is not None
    older = a.api.get(f"/audit?action=org&before={audit['nextBefore']}").get_json()
    assert len(older["items"]) == 1 and older["nextBefore"] is None


def test_openapi_document(admin_tenancy):
    a = admin_tenancy("t-link")
    doc = a.api.get("/openapi.json").get_json()
    assert doc["openapi"] == "3.0.3" and doc["servers"] == [{"url": API}]
    routes = {rule.rule[len(API):].replace("<", "{").replace(">", "}")
              for rule in a.t.app.url_map.iter_rules() if rule.endpoint.startswith("admin_api.")}
    assert set(doc["paths"]) == routes
    org = doc["components"]["schemas"]["Org"]["properties"]
    assert {"orgId", "memberCount", "nameLocked", "lastModified"} <= set(org)
    create = doc["paths"]["/orgs"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OrgCreate"}
    assert create["responses"]["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"}
    upload = doc["paths"]["/reconcile/plans"]["post"]["requestBody"]["content"]
    assert {"text/csv", "multipart/form-data"} <= set(upload)
    assert doc["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["scopes"] == {
        "admin": "the admin API and console"}


@pytest.mark.parametrize("scope", ["admin", "admin scim:read"])
def test_admin_scope_alongside_other_scopes(admin_tenancy, storage, scope):
    a = admin_tenancy("t-link")
    token = new_token(storage, a.tenant, scope=scope)
    assert AdminApi(a.t.app.test_client(), token).get("/orgs").status_code == 200
    other = new_token(storage, new_tenant(storage), scope="admin")
    assert AdminApi(a.t.app.test_client(), other).get("/orgs").get_json()["total"] == 0
