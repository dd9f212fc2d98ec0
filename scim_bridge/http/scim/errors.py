"""SCIM-specific request checks on the blueprint (rendering lives in :mod:`scim_bridge.http.errors`)."""

from __future__ import annotations

from flask import request

from scim_bridge.http.scim import bp
from scim_bridge.scim.errors import UnsupportedMediaType

_ACCEPTED_TYPES = ("application/scim+json", "application/json", "text/json", "")


@bp.before_request
def _check_content_type() -> None:
    """Accept SCIM JSON, plain JSON or no Content-Type on bodies (RFC 7644 §3.1); refuse others."""
    if request.method in ("POST", "PUT", "PATCH") and request.content_length not in (None, 0):
        mimetype = (request.mimetype or "").lower()
        if mimetype not in _ACCEPTED_TYPES:
            raise UnsupportedMediaType(f"unsupported Content-Type '{mimetype}'; use application/scim+json")
