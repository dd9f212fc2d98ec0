"""``Projection.wants_whole`` and RenderedArray under ``apply`` (RFC 7644 §3.4.2.5)."""

from __future__ import annotations

import pytest

from scim_bridge.scim import schema as s
from scim_bridge.scim.filter.parser import parse_attribute_list
from scim_bridge.scim.projection import Projection
from scim_bridge.scim.rendered import RenderedArray


def projection(attributes: str | None = None, excluded: str | None = None) -> Projection:
    """Build a Group projection from query-string values."""
    return Projection.build(s.GROUP_RESOURCE, parse_attribute_list(attributes) if attributes else None,
                            parse_attribute_list(excluded) if excluded else None)


@pytest.mark.parametrize(("attributes", "excluded", "whole"), [
    (None, None, True),
    ("members", None, True),
    ("displayName,members", None, True),
    ("urn:ietf:params:scim:schemas:core:2.0:Group:members", None, True),
    (None, "displayName", True),
    (None, "members", False),
    (None, "members.display", False),
    ("members.value", None, False),
    ("members.value,members.$ref,members.type,members.display", None, True),
    ("displayName", None, False),
])
def test_wants_whole_members(attributes, excluded, whole):
    assert projection(attributes, excluded).wants_whole("members") is whole


def test_wants_whole_unknown_attribute_is_false():
    assert projection().wants_whole("nope") is False


def test_apply_keeps_or_drops_a_rendered_array_whole():
    members = RenderedArray(['{"value":"1"}'])
    resource = {"schemas": [s.GROUP_SCHEMA], "id": "g", "displayName": "G", "members": members}
    assert projection().apply(resource)["members"] is members
    assert "members" not in projection(excluded="members").apply(resource)
    assert "members" not in projection("displayName").apply(resource)


def user_projection(attributes: str | None = None, excluded: str | None = None) -> Projection:
    """Build a User projection from query-string values."""
    return Projection.build(s.USER_RESOURCE, parse_attribute_list(attributes) if attributes else None,
                            parse_attribute_list(excluded) if excluded else None)


@pytest.mark.parametrize(("attributes", "excluded", "name", "urn", "wanted"), [
    (None, None, "emails", None, True),
    (None, None, "password", None, False),  # returned: never
    (None, "emails", "emails", None, False),
    ("userName", None, "emails", None, False),
    ("emails,name", None, "emails", None, True),
    (None, None, "orgId", s.INFINITY_USER_SCHEMA, False),  # returned: request
    (f"{s.INFINITY_USER_SCHEMA}:orgId", None, "orgId", s.INFINITY_USER_SCHEMA, True),
    (None, None, "nope", None, False),
    (None, None, "emails", "urn:example:unknown", False),
])
def test_wants_answers_the_same_when_asked_again(attributes, excluded, name, urn, wanted):
    """Answers are kept per projection (the default one is shared by every request): the same each time."""
    built = user_projection(attributes, excluded)
    assert [built.wants(name, urn) for _ in range(3)] == [wanted] * 3


def test_wants_keeps_an_attribute_and_its_extension_namesake_apart():
    built = user_projection(f"{s.INFINITY_USER_SCHEMA}:orgId")
    assert built.wants("orgId", s.INFINITY_USER_SCHEMA) is True
    assert built.wants("orgId") is False  # no core attribute of that name
    assert built.wants("orgId", s.INFINITY_USER_SCHEMA) is True


def test_the_default_projection_is_shared_and_answers_as_a_fresh_one():
    shared = user_projection()
    assert user_projection() is shared
    fresh = Projection(s.USER_RESOURCE)
    for name in ("userName", "emails", "groups", "password", "meta", "nope"):
        assert shared.wants(name) is fresh.wants(name), name
