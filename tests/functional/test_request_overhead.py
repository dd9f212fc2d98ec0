"""Per-request work skipped on the hot paths, without changing what a request sees.

- Only the console has a cookie session: other paths get Flask's null session (no serializer, no
  cookie read, never a Set-Cookie), and the console still signs in.
- The SCIM base URL is built once per scheme and host; each host still gets its own.
- ``attributes``/``excludedAttributes`` lists are parsed once; callers get a list of their own.
"""

from __future__ import annotations

import pytest
from flask.sessions import NullSession
from flask.sessions import SecureCookieSession

from scim_bridge.scim.errors import InvalidValue
from scim_bridge.scim.filter.parser import parse_attribute_list


@pytest.mark.parametrize("path", ["/scim/v2/Users", "/oauth/token", "/admin-api/x", "/administrator", "/"])
def test_paths_outside_the_console_get_the_null_session(app, path):
    with app.test_request_context(path, headers={"Cookie": "scim_bridge_console=whatever"}):
        from flask import request
        opened = app.session_interface.open_session(app, request)
    assert isinstance(opened, NullSession)


@pytest.mark.parametrize("path", ["/admin", "/admin/", "/admin/sign-in", "/admin/orgs"])
def test_console_paths_get_the_signed_cookie_session(app, path):
    with app.test_request_context(path):
        from flask import request
        opened = app.session_interface.open_session(app, request)
    assert isinstance(opened, SecureCookieSession)
    assert not isinstance(opened, NullSession)


def test_scim_answers_set_no_cookie_even_when_sent_one(scim):
    scim.client.set_cookie("scim_bridge_console", "forged", path="/")
    response = scim.get("/ServiceProviderConfig")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_locations_follow_each_host(scim):
    created = scim.create_user("hosts@example.com")
    first = scim.get(f"/Users/{created['id']}", headers={"Host": "a.example"}).get_json()
    second = scim.get(f"/Users/{created['id']}", headers={"Host": "b.example:8080"}).get_json()
    assert first["meta"]["location"] == f"http://a.example/scim/v2/Users/{created['id']}"
    assert second["meta"]["location"] == f"http://b.example:8080/scim/v2/Users/{created['id']}"


def test_attribute_lists_parse_once_and_hand_out_fresh_lists():
    first = parse_attribute_list("userName,emails.value")
    first.append("mutated")
    second = parse_attribute_list("userName,emails.value")
    assert "mutated" not in second
    assert [str(p) for p in second] == ["userName", "emails.value"]
    assert second is not first


def test_a_bad_attribute_list_fails_every_time():
    for _ in range(2):
        with pytest.raises(InvalidValue):
            parse_attribute_list("userName,,")
