"""Helpers for replaying identity-provider traffic through HTTP (``test_idp_*``, ``test_patch_http``).

Bodies in the tests are kept verbatim from ``/work/shared/reference/idp-behavior.md``; the ids they
contain belong to the document's servers, so :func:`bind` swaps them for the ids ours assigned.
"""

from __future__ import annotations

import json
from typing import Any

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def bind(verbatim: str, ids: dict[str, str] | None = None) -> Any:
    """Parse a verbatim JSON body, replacing the document's ids by ours (``{doc_id: our_id}``)."""
    for theirs, ours in (ids or {}).items():
        verbatim = verbatim.replace(theirs, ours)
    return json.loads(verbatim)


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    """Return a PatchOp request with *operations*."""
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def assert_list_response(response: Any, total: int) -> list[dict[str, Any]]:
    """Check a 200 ListResponse whose paging fields are JSON integers (Q14); return ``Resources``."""
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["schemas"] == [LIST_RESPONSE]
    for key in ("totalResults", "startIndex", "itemsPerPage"):
        assert type(body[key]) is int, (key, body[key])
    assert body["totalResults"] == total, body
    assert isinstance(body["Resources"], list) and body["itemsPerPage"] == len(body["Resources"])
    return list(body["Resources"])


def assert_error(response: Any, status: int, scim_type: str | None = None) -> dict[str, Any]:
    """Check a SCIM error response (RFC 7644 §3.12, Q17): Error schema, string status, a detail."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    body = response.get_json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert isinstance(body.get("detail"), str) and body["detail"]
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return dict(body)


def member_ids(scim: Any, group_id: str) -> set[str]:
    """Return the member ids of a group, read back through ``GET /Groups/{id}``."""
    response = scim.get(f"/Groups/{group_id}?attributes=members")
    assert response.status_code == 200, response.get_json()
    return {m["value"] for m in response.get_json().get("members", [])}


def version_of(scim: Any, path: str) -> str:
    """Return ``meta.version`` of a resource read through GET."""
    response = scim.get(path)
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["meta"]["version"])


def version_number(etag: str) -> int:
    """Return the integer of a weak ETag ``W/"12"``."""
    return int(etag.removeprefix("W/").strip('"'))
