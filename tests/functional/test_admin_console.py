"""The admin console through Flask's test client (issue 6 §6): sign-in, session hardening, CSRF, pages, actions.

The browser tests (tests/browser) drive the same pages in Chromium; these check the rules precisely.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from scim_bridge.auth import tokens
from scim_bridge.auth.clients import ClientService
from scim_bridge.domain import audit
from scim_bridge.storage.base import utcnow
from scim_bridge.storage.models import ConsoleSession
from tests.conftest import new_token

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(client, path="/admin/sign-in"):
    return CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def sign_in(client, **credential):
    return client.post("/admin/sign-in", data={"csrf_token": csrf(client), **credential})


@pytest.fixture
def console(admin_tenancy):
    """A tenant with an admin token, and a browser-like client signed in with it."""
    a = admin_tenancy("generic")
    client = a.t.app.test_client()
    response = sign_in(client, token=a.api.token)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/orgs"
    return a, client


def test_sign_in_page_and_cookie_flags(admin_tenancy):
    a = admin_tenancy("generic")
    client = a.t.app.test_client()
    page = client.get("/admin/sign-in")
    html = page.get_data(as_text=True)
    for field in ("token", "client_id", "client_secret"):
        assert f'<label for="{field}">' in html and f'id="{field}"' in html
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/admin" in cookie and "Secure" not in cookie
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"
    https = a.t.app.test_client().get("/admin/sign-in", base_url="https://admin.example.test")
    assert "Secure" in https.headers["Set-Cookie"]
    assert client.get("/admin/orgs").headers["Location"] == "/admin/sign-in?next=/admin/orgs"


def test_sign_in_refusals_are_uniform_and_audited(admin_tenancy, storage):
    a = admin_tenancy("generic")
    client = a.t.app.test_client()
    assert client.post("/admin/sign-in", data={"token": a.api.token}).status_code == 403  # no CSRF token
    scim_only = new_token(storage, a.tenant)
    for credential in ({"token": scim_only}, {"token": "sbt_nope"}, {"client_id": "sbc_nope", "client_secret": "x"},
                       {"token": new_token(storage, a.tenant, scope="admin", expires_in=timedelta(seconds=1),
                                           now=utcnow() - timedelta(hours=1))}):
        refused = sign_in(client, **credential)
        assert refused.status_code == 401
        assert "the credential is invalid, expired or revoked, or lacks the admin scope" in refused.get_data(
            as_text=True)
    with storage.sessionmaker() as session:
        rows = audit.query(session, audit.AuditFilter(a.tenant.id, action="console.sign_in"))
    assert {r.outcome for r in rows} == {"failure"} and len(rows) == 2  # unknown credentials have no tenant
    assert all("sbt_" not in (r.client or "") for r in rows)


def test_pages_render_for_a_signed_in_admin(console):
    a, client = console
    user = a.user("page-user")
    a.group("Pages", "P-1", (user["id"],))
    org_pk = a.org_pk("P-1")
    for path, text in (("/admin/orgs", "Add organization"), (f"/admin/orgs/{org_pk}", "page-user"),
                       ("/admin/reconcile", "Plan from your IAM org list"), ("/admin/users", "page-user"),
                       (f"/admin/users/{user['id']}", "$org_id"), ("/admin/events", "org.created"),
                       ("/admin/audit", "console.sign_in"), ("/admin/orgs?q=zzz", "No organizations")):
        response = client.get(path)
        assert response.status_code == 200, path
        assert text in response.get_data(as_text=True), path
    assert client.get("/admin/").headers["Location"] == "/admin/orgs"
    assert client.get("/admin/orgs/not-an-org").status_code == 404


def test_forms_need_the_csrf_token(console):
    a, client = console
    token = csrf(client, "/admin/orgs")
    forged = client.post("/admin/orgs", data={"org_id": "F-1", "name": "Forged"})
    assert forged.status_code == 403 and "CSRF" in forged.get_data(as_text=True)
    wrong = client.post("/admin/orgs", data={"org_id": "F-1", "name": "Forged", "csrf_token": token + "x"})
    assert wrong.status_code == 403 and a.orgs() == {}
    made = client.post("/admin/orgs", data={"org_id": "F-1", "name": "Real", "csrf_token": token})
    assert made.status_code == 302 and a.orgs()["F-1"]["name"] == "Real"
    assert "Created organization F-1 (Real)." in client.get("/admin/orgs").get_data(as_text=True)
    again = client.post("/admin/orgs", data={"org_id": "F-1", "name": "Twice", "csrf_token": token})
    assert again.status_code == 302
    assert "already used by organization" in client.get("/admin/orgs").get_data(as_text=True)


def test_org_page_actions(console):
    a, client = console
    user = a.user("act-user")
    a.group("Act team", None, (user["id"],))
    token = csrf(client, "/admin/orgs")
    client.post("/admin/orgs", data={"org_id": "A-1", "name": "Act", "csrf_token": token})
    pk = a.org_pk("A-1")
    for action, data in (("edit", {"org_id": "A-2", "name": "Acting", "version": "1"}), ("link", {"group": "act team"}),
                         ("assign", {"user": "act-user"}), ("unassign", {"user": user["id"]}), ("unlink", {})):
        response = client.post(f"/admin/orgs/{pk}/{action}", data={"csrf_token": token, **data})
        assert response.status_code == 302 and response.headers["Location"] == f"/admin/orgs/{pk}", action
        page = client.get(f"/admin/orgs/{pk}").get_data(as_text=True)
        assert 'class="flash ok"' in page, (action, page)
    rekeyed = [e for e in a.t.events() if e["type"] == "org.rekeyed"]
    assert [(e["before"], e["after"]) for e in rekeyed] == [({"org_id": "A-1"}, {"org_id": "A-2"})]
    deleted = client.post(f"/admin/orgs/{pk}/delete", data={"csrf_token": token})
    assert deleted.headers["Location"] == "/admin/orgs" and a.orgs() == {}
    with a.t.storage.sessionmaker() as session:
        actors = {r.client for r in audit.query(session, audit.AuditFilter(a.tenant.id, action="org"))}
    assert len(actors) == 1 and next(iter(actors)).startswith("console:token:")


def test_reconcile_page_one_click_and_plan(console):
    a, client = console
    a.group("Berlin")
    token = csrf(client, "/admin/orgs")
    client.post("/admin/orgs", data={"org_id": "4711", "name": "Berlin", "csrf_token": token})
    page = client.get("/admin/reconcile").get_data(as_text=True)
    assert "share the name" in page and "Link &#39;Berlin&#39; to group &#39;Berlin&#39;" in page
    done = client.post("/admin/reconcile/act", data={"csrf_token": token, "action": "link",
                                                     "p_org": a.org_pk("4711"), "p_group": "Berlin"})
    assert done.status_code == 302 and a.orgs()["4711"]["group"] is not None
    upload = client.post("/admin/reconcile/plans", data={
        "csrf_token": token, "file": (io.BytesIO(b"org_id,name\n4711,Berlin HQ\n4712,Paris\n"), "iam.csv")},
        content_type="multipart/form-data")
    assert upload.status_code == 302
    preview = client.get(upload.headers["Location"]).get_data(as_text=True)
    assert "Dry run" in preview and "Berlin → Berlin HQ" in preview and "Apply 2 change(s)" in preview
    applied = client.post(upload.headers["Location"] + "/apply", data={"csrf_token": token})
    assert applied.status_code == 302
    assert "applied 2 change(s)" in client.get(upload.headers["Location"]).get_data(as_text=True)
    assert set(a.orgs()) == {"4711", "4712"}
    bad = client.post("/admin/reconcile/plans", data={"csrf_token": token, "text": "4711,\n"})
    assert bad.headers["Location"] == "/admin/reconcile"
    assert "line 1" in client.get("/admin/reconcile").get_data(as_text=True)


def test_sign_out_kills_the_cookie_for_good(console):
    a, client = console
    token = csrf(client, "/admin/orgs")
    stolen = client.get_cookie("scim_bridge_console", path="/admin").value
    out = client.post("/admin/sign-out", data={"csrf_token": token})
    assert out.headers["Location"] == "/admin/sign-in"
    assert client.get("/admin/orgs").status_code == 302
    replay = a.t.app.test_client()
    replay.set_cookie("scim_bridge_console", stolen, path="/admin")
    assert replay.get("/admin/orgs").headers["Location"].startswith("/admin/sign-in")


def test_revoked_token_expired_or_idle_session_signs_out(console, storage):
    a, client = console
    assert client.get("/admin/orgs").status_code == 200
    with storage.sessionmaker() as session, session.begin():
        record = tokens.find_token(session, a.api.token)
        tokens.revoke_token(session, a.tenant.id, record.id)
    response = client.get("/admin/orgs")
    assert response.status_code == 302
    assert "Your session ended" in client.get("/admin/sign-in").get_data(as_text=True)
    # Idle and absolute expiry.
    for field in ("last_seen", "expires_at"):
        fresh = a.t.app.test_client()
        assert sign_in(fresh, token=new_token(storage, a.tenant, scope="admin")).status_code == 302
        with storage.sessionmaker() as session, session.begin():
            row = session.scalars(select(ConsoleSession).where(ConsoleSession.tenant_id == a.tenant.id,
                                                               ConsoleSession.ended_at.is_(None))).one()
            setattr(row, field, utcnow() - timedelta(hours=9))
        assert fresh.get("/admin/orgs").status_code == 302, field


def test_oauth_client_sign_in_ends_when_the_secret_rotates(admin_tenancy, storage):
    a = admin_tenancy("generic")
    with storage.sessionmaker() as session, session.begin():
        issued = ClientService(session, "test").create(a.tenant.id, "console", "admin")
        client_id, secret = issued.client.client_id, issued.secret
        no_admin = ClientService(session, "test").create(a.tenant.id, "scim only", "scim:read")
    client = a.t.app.test_client()
    assert sign_in(client, client_id=no_admin.client.client_id, client_secret=no_admin.secret).status_code == 401
    assert sign_in(client, client_id=client_id, client_secret="wrong").status_code == 401
    assert sign_in(client, client_id=client_id, client_secret=secret).status_code == 302
    assert client.get("/admin/orgs").status_code == 200
    with storage.sessionmaker() as session, session.begin():
        ClientService(session, "test").rotate_secret(a.tenant.id, client_id, timedelta(hours=1))
    assert client.get("/admin/orgs").status_code == 302


def test_next_only_goes_inside_the_console(admin_tenancy):
    a = admin_tenancy("generic")
    for target, expected in (("/admin/users", "/admin/users"), ("https://evil.test/admin/x", "/admin/orgs"),
                             ("//evil.test/admin/", "/admin/orgs"), ("/scim/v2/Users", "/admin/orgs")):
        client = a.t.app.test_client()
        response = client.post("/admin/sign-in", data={"csrf_token": csrf(client), "token": a.api.token,
                                                       "next": target})
        assert response.headers["Location"] == expected, target
