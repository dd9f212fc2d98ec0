"""The admin console in a real headless Chromium against gunicorn (issue 6 §6 acceptance).

One walk through an admin's reconciliation (sign in, add an org, edit its org_id, see a conflict
and fix it with one click, preview and apply a plan, the other pages, a narrow screen, sign out),
and the refusal of forged form posts. Screenshots of each page land in tests/artifacts/browser/.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import ScimClient
from tests.conftest import new_tenant
from tests.conftest import new_token

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture
def workspace(app, storage):
    """A fresh tenant with an admin token and a SCIM client (on the database gunicorn serves)."""
    tenant = new_tenant(storage)
    scim = ScimClient(app.test_client(), new_token(storage, tenant))
    return tenant, new_token(storage, tenant, scope="admin"), scim


def sign_in(page, live_server, token):
    page.goto(f"{live_server.url}/admin/orgs")
    assert page.url.startswith(f"{live_server.url}/admin/sign-in")
    page.get_by_label("Admin token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/admin/orgs")


def flash(page):
    return page.locator(".flash").first.inner_text()


def test_admin_reconciles_a_workspace_in_the_browser(page, live_server, workspace, shots):
    tenant, admin_token, scim = workspace
    base = live_server.url

    page.goto(f"{base}/admin/sign-in")
    shots(page, "01-sign-in")
    sign_in(page, live_server, admin_token)
    assert tenant.slug in page.locator("header").inner_text()

    # Add an organization, then edit its org_id.
    page.get_by_label("Organization name").fill("ACME")
    page.get_by_label("Organization ID").fill("4711")
    page.get_by_role("button", name="Add organization").click()
    assert flash(page) == "Created organization 4711 (ACME)."
    shots(page, "02-organizations")
    page.get_by_role("link", name="4711").click()
    page.get_by_label("Organization ID").fill("4712")
    page.get_by_role("button", name="Save").click()
    assert flash(page) == "Saved organization 4712 (ACME)."
    assert page.locator("h1 code").inner_text() == "4712"
    shots(page, "03-organization")

    # The identity provider pushes a group named like it, without an org_id: a conflict to reconcile.
    user = scim.create_user("jane@acme.test")
    scim.create_group("ACME", [user["id"]])
    page.get_by_role("link", name="Reconciliation").click()
    section = page.locator("#link_candidates")
    assert "manual organization 'ACME' (4712) and group 'ACME' share the name 'ACME'" in section.inner_text()
    shots(page, "04-reconciliation")
    page.get_by_role("button", name="Link 'ACME' to group 'ACME'").click()
    assert flash(page) == "linked 'ACME' to group 'ACME'."
    assert page.locator("#link_candidates").count() == 0

    # A plan from the IAM export: dry run first, then apply.
    page.get_by_label("or paste it").fill("org_id,name\n4712,ACME Corp\n9000,New Org\n")
    page.get_by_role("button", name="Preview plan").click()
    assert "Dry run" in page.locator("main").inner_text()
    rows = page.locator("tbody tr")
    assert rows.count() == 2 and "ACME → ACME Corp" in rows.nth(1).inner_text()
    shots(page, "05-plan-preview")
    page.get_by_role("button", name="Apply 2 change(s)").click()
    assert flash(page) == "applied 2 change(s)"
    shots(page, "06-plan-applied")

    # The other pages.
    page.get_by_role("link", name="Users").click()
    assert "jane@acme.test" in page.locator("table").inner_text() and "ACME Corp" in page.locator("table").inner_text()
    shots(page, "07-users")
    page.get_by_role("link", name="jane@acme.test").click()
    assert "$org_id" in page.locator("main").inner_text()
    shots(page, "08-user")
    page.get_by_role("link", name="Events").click()
    assert "org.rekeyed" in page.locator("table").inner_text()
    shots(page, "09-events")
    page.get_by_role("link", name="Audit").click()
    assert "plan.apply" in page.locator("table").inner_text()
    shots(page, "10-audit")

    # A narrow screen: nothing wider than the viewport but the tables' own scroll boxes.
    page.set_viewport_size({"width": 375, "height": 800})
    page.get_by_role("link", name="Organizations").click()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shots(page, "11-organizations-narrow")

    page.get_by_role("button", name="Sign out").click()
    assert flash(page) == "Signed out."
    page.goto(f"{base}/admin/reconcile")
    assert re.match(rf"{re.escape(base)}/admin/sign-in", page.url)


def test_forged_form_posts_are_refused(page, live_server, workspace, storage, shots):
    _tenant, admin_token, _scim = workspace
    sign_in(page, live_server, admin_token)
    # Same origin, the session cookie attached, but no CSRF token.
    response = page.request.post(f"{live_server.url}/admin/orgs", form={"org_id": "EVIL-1", "name": "Forged"})
    assert response.status == 403 and "CSRF" in response.text()
    # Another site's auto-submitted form.
    page.set_content(f'<form method="post" action="{live_server.url}/admin/orgs">'
                     '<input name="org_id" value="EVIL-2"><input name="name" value="Forged"></form>')
    with page.expect_navigation():
        page.evaluate("document.forms[0].submit()")
    assert "403" in page.locator("h1").inner_text()
    shots(page, "12-csrf-refused")
    page.goto(f"{live_server.url}/admin/orgs")
    assert "EVIL" not in page.locator("main").inner_text()
