"""SCIM response helpers: media type, error bodies, ETags."""

from __future__ import annotations

import json
from typing import Any

from flask import Response

from scim_bridge.scim.errors import ScimError

SCIM_MEDIA_TYPE = "application/scim+json"


def scim_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Render *body* as ``application/scim+json``."""
    response = Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")), status=status, mimetype=SCIM_MEDIA_TYPE
    )
    response.content_type = f"{SCIM_MEDIA_TYPE}; charset=utf-8"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def error_response(error: ScimError, headers: dict[str, str] | None = None) -> Response:
    """Render a :class:`ScimError` as an RFC 7644 §3.12 error response."""
    return scim_response(error.to_body(), error.status, headers)
