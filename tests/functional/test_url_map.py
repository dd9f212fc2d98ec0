"""Walk every route of the app: nothing outside a short, documented list answers without a token.

Every other route declares the scope it needs (``view.required_scope``, set by ``require_oauth``).
A new route that forgets its protection fails here.
"""

from __future__ import annotations

import re
import uuid

import pytest

from scim_bridge.auth.tokens import KNOWN_SCOPES
from scim_bridge.http import oauth
from scim_bridge.http import ops
from scim_bridge.http.admin import console
from tests.functional.oauth_support import client_for

# Public: liveness/readiness, the RFC 8414 metadata, Flask's static files, and the admin console's sign-in page
# and its stylesheet (every other console page needs a signed-in session, checked below).
PUBLIC = {"ops.healthz", "ops.readyz", "oauth.metadata", "static", "admin_console.sign_in", "admin_console.static"}
# Client-authenticated (client_secret_basic / client_secret_post) instead of a bearer token.
CLIENT_AUTH = {"oauth.issue_token", "oauth.revoke_token", "oauth.introspect_token"}
ID = str(uuid.uuid4())


def test_allow_lists_match_the_code():
    declared = set(ops.PUBLIC_ENDPOINTS) | set(oauth.PUBLIC_ENDPOINTS) | set(console.PUBLIC_ENDPOINTS)
    assert declared | {"static"} == PUBLIC
    assert set(oauth.CLIENT_AUTH_ENDPOINTS) == CLIENT_AUTH


def concrete(rule: str) -> str:
    """Fill every URL variable with a plausible value."""
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: "User" if m.group(1) == "type_id" else ID, rule)


def routes(app):
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule, method


def test_every_route_declares_a_scope_or_is_allow_listed(app):
    undeclared = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if rule.endpoint in PUBLIC:
            assert getattr(view, "required_scope", None) is None, rule.endpoint
        elif rule.endpoint in CLIENT_AUTH:
            assert getattr(view, "client_authentication", None) == ["client_secret_basic", "client_secret_post"]
        elif getattr(view, "required_scope", None) not in KNOWN_SCOPES:
            undeclared.append(f"{rule.endpoint} {rule.rule}")
    assert undeclared == []


def test_nothing_else_answers_without_a_token(app, client):
    open_routes = []
    for rule, method in routes(app):
        if rule.endpoint in PUBLIC | CLIENT_AUTH or getattr(app.view_functions[rule.endpoint], "console_session", 0):
            continue  # console pages: a cookie session instead of a token (next test)
        response = client.open(concrete(rule.rule), method=method, data="{}",
                               headers={"Content-Type": "application/scim+json"})
        if response.status_code != 401 or "WWW-Authenticate" not in response.headers:
            open_routes.append((method, rule.rule, response.status_code))
    assert open_routes == []


@pytest.mark.parametrize("credentials", [{}, {"Authorization": "Bearer sbt_unknown"}])
def test_client_authenticated_routes_refuse_without_client_credentials(app, credentials):
    client = client_for(app)  # an address of its own: failures here must not slow other tests down
    for rule, method in routes(app):
        if rule.endpoint in CLIENT_AUTH:
            response = client.open(rule.rule, method=method, headers=credentials,
                                   data={"grant_type": "client_credentials", "token": "sbt_unknown"})
            assert response.status_code == 401 and response.get_json()["error"] == "invalid_client", rule.rule


def test_console_routes_need_a_signed_in_session(app, client):
    """Console pages (cookie session, not bearer tokens): GET redirects to sign-in, POST without CSRF is 403."""
    session_routes = [(rule, method) for rule, method in routes(app)
                      if getattr(app.view_functions[rule.endpoint], "console_session", False)]
    assert {rule.endpoint for rule, _method in session_routes} == {
        rule.endpoint for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("admin_console.") and rule.endpoint not in PUBLIC}
    for rule, method in session_routes:
        response = client.open(concrete(rule.rule), method=method)
        if method == "GET":
            assert response.status_code == 302 and response.headers["Location"].startswith("/admin/sign-in"), rule
        else:
            assert response.status_code == 403, rule
    assert client.post("/admin/sign-in", data={"token": "sbt_x"}).status_code == 403


def test_public_routes_are_few_and_answer(app, client):
    seen = set()
    for rule, method in routes(app):
        if rule.endpoint == "admin_console.sign_in" and method == "POST":
            continue  # needs a CSRF token (test above)
        if rule.endpoint in PUBLIC - {"static", "admin_console.static"}:
            seen.add(rule.endpoint)
            assert client.open(rule.rule, method=method).status_code == 200, rule.rule
    assert seen == PUBLIC - {"static", "admin_console.static"}
    assert client.get("/admin/static/admin.css").status_code == 200


def test_bearer_token_never_opens_client_authenticated_routes(app, token):
    """A SCIM bearer token is not a client credential."""
    response = client_for(app).post("/oauth/token", data={"grant_type": "client_credentials"},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
