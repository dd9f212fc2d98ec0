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
