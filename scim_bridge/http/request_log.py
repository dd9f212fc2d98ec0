"""One JSON log line per request, and the ``X-Request-ID`` round trip."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
import time
from typing import Any

from flask import Flask
from flask import Response
from flask import g
from flask import request

from scim_bridge.auth.protector import current_token_or_none

access_log = logging.getLogger("scim_bridge.access")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class JsonFormatter(logging.Formatter):
    """Render records as one JSON object per line (request fields come from ``extra``)."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as JSON."""
        payload = {"time": self.formatTime(record, _TIME_FORMAT), "level": record.levelname,
                   "logger": record.name, "message": record.getMessage()}
        payload.update(getattr(record, "fields", {}))
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


def init_app(app: Flask, level: str) -> None:
    """Install the JSON handler and the per-request hooks."""
    root = logging.getLogger("scim_bridge")
    if not any(getattr(h, "_scim_bridge", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._scim_bridge = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(level.upper())
    app.before_request(_start)
    app.after_request(_finish)


def _start() -> None:
    g.request_started = time.perf_counter()
    incoming = request.environ.get("HTTP_X_REQUEST_ID")  # the header, without building a Headers view
    # 128 random bits as 32 hex digits (a third of the cost of uuid4().hex, same shape).
    g.request_id = incoming if incoming and _REQUEST_ID.match(incoming) else os.urandom(16).hex()


def request_id() -> str:
    """Return the id of the current request."""
    return str(g.get("request_id") or "")


def _finish(response: Response) -> Response:
    rid = request_id()
    if rid:
        response.headers["X-Request-ID"] = rid
    if not access_log.isEnabledFor(logging.INFO):
        return response  # the line would be dropped: do not build it
    started = g.get("request_started")
    duration_ms = round((time.perf_counter() - started) * 1000, 2) if started else None
    token = current_token_or_none()
    # The path only: query strings may carry filters with personal data.
    fields = {
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "duration_ms": duration_ms,
        "tenant": token.tenant_slug if token else None,
        "client": (token.client_id or f"token:{token.token_id}") if token else None,
        "request_id": rid,
        "auth_error": g.get("auth_failure"),
    }
    handler = _sole_handler()
    if handler is None:
        access_log.info("request", extra={"fields": fields})
    else:
        _write_line(handler, fields)
    return response


def _sole_handler() -> logging.StreamHandler[Any] | None:
    """Return the JSON handler when it is the only one an access record would reach, unfiltered.

    That is how :func:`init_app` sets logging up, and then :func:`_write_line` writes the line
    the handler would, without a ``LogRecord``. Any other set-up (a handler or filter added to
    these loggers, propagation turned back on, a level above INFO on the handler) goes through
    ``logging`` as usual.
    """
    if access_log.handlers or access_log.filters or access_log.disabled or not access_log.propagate:
        return None
    parent = access_log.parent
    if parent is None or parent.name != "scim_bridge" or parent.propagate or parent.filters or parent.disabled:
        return None
    handlers = parent.handlers
    if len(handlers) != 1:
        return None
    handler = handlers[0]
    if (not getattr(handler, "_scim_bridge", False) or handler.filters or handler.level > logging.INFO
            or type(handler.formatter) is not JsonFormatter or not isinstance(handler, logging.StreamHandler)):
        return None
    return handler


def _write_line(handler: logging.StreamHandler[Any], fields: dict[str, Any]) -> None:
    """Write the access line *handler* would write for *fields*, as its ``emit`` would.

    One line per request through ``logging`` cost ~18 % of a GET in-process (a ``LogRecord``,
    the caller's frame, the formatter's dict and ``json.dumps``, the handler's dispatch); this
    writes the same text (``tests/functional/test_ops.py`` compares them) for a fraction of it.
    """
    now = time.time()
    parts = [_PREFIX, _timestamp(now), _HEAD]
    for name, value in fields.items():
        parts += (", ", _KEYS.get(name) or _encode(name), ": ", _value(value))
    parts.append("}")
    parts.append(handler.terminator)
    try:
        handler.acquire()
        try:
            handler.stream.write("".join(parts))
            handler.flush()
        finally:
            handler.release()
    except Exception:  # noqa: BLE001 - as Handler.emit: logging must never fail the request
        handler.handleError(access_log.makeRecord(access_log.name, logging.INFO, __file__, 0, "request", (),
                                                  None, extra={"fields": fields}))


_encode = json.encoder.encode_basestring  # json.dumps(ensure_ascii=False)'s own string quoting
_PREFIX = '{"time": "'
_HEAD = '", "level": "INFO", "logger": ' + _encode(access_log.name) + ', "message": "request"'
_KEYS = {name: _encode(name) for name in ("method", "path", "status", "duration_ms", "tenant", "client",
                                          "request_id", "auth_error")}
_stamp: list[Any] = [None, ""]


def _timestamp(now: float) -> str:
    """``JsonFormatter``'s ``time`` for *now* (local time to the second), rendered once per second."""
    second = int(now)
    if _stamp[0] != second:
        _stamp[:] = [second, time.strftime(_TIME_FORMAT, time.localtime(now))]
    return str(_stamp[1])


def _value(value: Any) -> str:
    """*value* as ``json.dumps`` writes it."""
    kind = type(value)
    if kind is str:
        return _encode(value)
    if value is None:
        return "null"
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    return json.dumps(value, ensure_ascii=False)
