"""Splicing a database-rendered user (domain/user_json.compose): the text is the resource's JSON."""

from __future__ import annotations

import json
import uuid

from scim_bridge.domain.user_json import RenderedUser
from scim_bridge.domain.user_json import compose
from scim_bridge.scim import schema as s
from scim_bridge.storage.repositories.orgs import UserOrgView

ID = "0b3a9c4e-1f2d-4e5f-8a7b-6c5d4e3f2a1b"
BASE = "https://idp.example/scim/v2"


def _user(**pieces: object) -> RenderedUser:
    fields = {"id": ID, "head": ',"userName":"a"', "values": None, "groups": None, "enterprise": None,
              "iam_org_id": None, "created": "2026-01-02T03:04:05Z", "last_modified": "2026-01-02T03:04:05.123456Z",
              "version": 2, **pieces}
    return RenderedUser(**fields)  # type: ignore[arg-type]


def test_minimal_user_has_core_schema_empty_groups_and_meta_last():
    body = json.loads(compose(_user(), None, BASE))
    assert list(body) == ["schemas", "id", "userName", "groups", "meta"]
    assert body["schemas"] == [s.USER_SCHEMA] and body["id"] == ID and body["groups"] == []
    assert body["meta"] == {"resourceType": "User", "created": "2026-01-02T03:04:05Z",
                            "lastModified": "2026-01-02T03:04:05.123456Z", "location": f"{BASE}/Users/{ID}",
                            "version": 'W/"2"'}


def test_location_escapes_the_base_url():
    base = 'https://idp.example/sc"im\\v2/ü'
    assert json.loads(compose(_user(), None, base))["meta"]["location"] == f"{base}/Users/{ID}"


def test_values_enterprise_and_infinity_are_spliced_in_rendering_order():
    org = UserOrgView("4711", ("4711", "4712"), "Viewer", False)
    text = compose(_user(values=',"emails":[{"value":"a@x"}]', groups='[{"value":"g"}]',
                         enterprise='{"department":"R&D"}', iam_org_id='ORG "1"'), org, BASE)
    body = json.loads(text)
    assert list(body) == ["schemas", "id", "userName", "emails", "groups", s.ENTERPRISE_USER_SCHEMA,
                          s.INFINITY_USER_SCHEMA, "meta"]
    assert body["schemas"] == [s.USER_SCHEMA, s.ENTERPRISE_USER_SCHEMA, s.INFINITY_USER_SCHEMA]
    assert body[s.INFINITY_USER_SCHEMA] == {"iamOrgId": 'ORG "1"', "orgId": "4711", "orgIds": ["4711", "4712"],
                                           "role": "Viewer", "primaryOrgConflict": False}


def test_key_is_the_uuid_of_the_id():
    assert _user().key == uuid.UUID(ID)
