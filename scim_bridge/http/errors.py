"""App-wide error rendering: SCIM error JSON under ``/scim/v2``, plain JSON elsewhere; never a traceback."""

from __future__ import annotations

import logging

from flask import Flask
from flask import Response
from flask import jsonify
from flask import request
from werkzeug.exceptions import HTTPException

from scim_bridge.http.context import SCIM_PREFIX
from scim_bridge.http.scim.responses import error_response
from scim_bridge.scim.errors import ScimError
from scim_bridge.scim.errors import TooLarge
from scim_bridge.storage.engine import is_disconnect
from scim_bridge.storage.engine import is_transient_conflict

log = logging.getLogger("scim_bridge.errors")


class _HttpScimError(ScimError):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status  # type: ignore[misc]


def init_app(app: Flask) -> None:
    """Register the error handlers."""
    app.register_error_handler(ScimError, _scim_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def _is_scim() -> bool:
    return request.path == SCIM_PREFIX or request.path.startswith(SCIM_PREFIX + "/")


def _scim_error(error: ScimError) -> Response:
    headers = getattr(error, "headers", None)
    if _is_scim():
        return error_response(error, headers)
    response = jsonify(error="error", error_description=error.detail)
    response.status_code = error.status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    detail = {
        404: "no such endpoint",
        405: f"method {request.method} is not allowed on this endpoint",
    }.get(status, error.description or error.name)
    if status == 413:
        scim_error: ScimError = TooLarge("the request body is larger than the configured limit")
    else:
        scim_error = _HttpScimError(status, detail)
    if _is_scim():
        response = error_response(scim_error)
    else:
        response = jsonify(error=error.name.lower().replace(" ", "_"), error_description=detail)
        response.status_code = status
    allow = error.get_response().headers.get("Allow") if status == 405 else None
    if allow:
        response.headers["Allow"] = allow
    return response


def _unexpected(error: Exception) -> Response:
    if is_disconnect(error):
        # The database went away mid-request (the transaction was rolled back and the pool reset):
        # a temporary condition, so 503 with Retry-After, which IdPs retry (RFC 7231 §6.6.4).
        log.warning("database connection lost on %s %s: %s", request.method, request.path, error.__class__.__name__)
        status, detail, headers = 503, "the database is temporarily unavailable; retry shortly", {"Retry-After": "1"}
    elif is_transient_conflict(error):
        # A deadlock between concurrent writes, or SQLite's lock not granted in time: the write was
        # rolled back whole and the same request, sent again, would most likely go through.
        log.warning("write conflict on %s %s: %s", request.method, request.path, error.__class__.__name__)
        detail = "the write conflicted with concurrent writes and was rolled back; retry shortly"
        status, headers = 503, {"Retry-After": "1"}
    else:
        log.exception("unhandled error on %s %s", request.method, request.path)
        status, detail, headers = 500, "internal server error", {}
    if _is_scim():
        response = error_response(_HttpScimError(status, detail))
    else:
        response = jsonify(error="temporarily_unavailable" if status == 503 else "server_error",
                           error_description=detail)
        response.status_code = status
    response.headers.update(headers)
    return response
