"""SCIM response helpers: media type, error bodies, ETags."""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask import Response

from scim_bridge.scim.errors import ScimError
from scim_bridge.scim.rendered import RenderedArray
from scim_bridge.scim.rendered import RenderedObject

SCIM_MEDIA_TYPE = "application/scim+json"


def scim_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Render *body* as ``application/scim+json``."""
    return Response(dumps(body), status=status, headers=headers, content_type=_CONTENT_TYPE)


_CONTENT_TYPE = f"{SCIM_MEDIA_TYPE}; charset=utf-8"


def dumps(body: Any) -> str:
    """Serialize *body* as compact UTF-8 JSON, splicing in the text of every RenderedArray and RenderedObject.

    json.dumps cannot emit raw text, so each rendered value first becomes a placeholder string
    carrying a random nonce (no client-supplied value can equal it), which is then replaced by the
    value's text in one pass.
    """
    if isinstance(body, RenderedObject):
        return body.text  # a resource the database rendered whole (GET /Users/{id})
    spliced: list[RenderedArray | RenderedObject] = []
    placeholder = f"rendered:{uuid.uuid4().hex}"

    def default(value: Any) -> Any:
        if isinstance(value, RenderedArray | RenderedObject):
            spliced.append(value)
            return placeholder
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=default)
    if not spliced:
        return text
    # json.dumps calls default() in output order, so the n-th placeholder is the n-th rendered value.
    pieces = text.split(f'"{placeholder}"')
    out = [pieces[0]]
    for value, piece in zip(spliced, pieces[1:], strict=True):
        out.append(value.to_json())
        out.append(piece)
    return "".join(out)


def error_response(error: ScimError, headers: dict[str, str] | None = None) -> Response:
    """Render a :class:`ScimError` as an RFC 7644 §3.12 error response."""
    return scim_response(error.to_body(), error.status, headers)
