"""Health, readiness, request ids and the JSON request log."""

from __future__ import annotations

import io
import json
import logging

import pytest

from scim_bridge.app import create_app
from scim_bridge.http import request_log
from scim_bridge.settings import Settings


def test_healthz_and_readyz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    body = client.get("/readyz").get_json()
    assert body["status"] == "ok" and body["migrations"] == "head"


def test_readyz_reports_pending_migrations(tmp_path):
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503 and response.get_json()["migrations"] == "pending"


def test_request_id_round_trip(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["X-Request-ID"]
    assert generated and " " not in generated


def test_one_json_log_line_per_request(scim, caplog):
    caplog.set_level(logging.INFO, logger="scim_bridge.access")
    logger = logging.getLogger("scim_bridge")
    logger.addHandler(caplog.handler)
    try:
        scim.get('/Users?filter=userName eq "secret@example.com"', headers={"X-Request-ID": "req-1"})
    finally:
        logger.removeHandler(caplog.handler)
    records = [r for r in caplog.records if r.name == "scim_bridge.access"]
    assert len(records) == 1
    fields = records[0].fields
    assert fields["method"] == "GET" and fields["path"] == "/scim/v2/Users" and fields["status"] == 200
    assert fields["request_id"] == "req-1" and fields["tenant"].startswith("t-")
    assert fields["duration_ms"] >= 0
    rendered = json.dumps(fields)
    assert "secret@example.com" not in rendered and scim.token not in rendered


@pytest.mark.parametrize("fields", [
    {"method": "GET", "path": "/scim/v2/Users/x", "status": 200, "duration_ms": 0.25, "tenant": "t-1",
     "client": "token:abc", "request_id": "r", "auth_error": None},
    {"method": "DELETE", "path": '/scim/v2/Users/é"\\\n\t\u2028\x7f\x01', "status": 401, "duration_ms": None,
     "tenant": None, "client": None, "request_id": "", "auth_error": "invalid_token"},
    {"method": "GET", "path": "/", "status": 429, "duration_ms": 12.0, "tenant": "ünï", "client": "c",
     "request_id": "x" * 128, "auth_error": "rate_limited"},
    {"method": "GET", "path": "/", "status": 200, "duration_ms": 1e-05, "tenant": "t", "client": "c",
     "request_id": "r", "auth_error": True},
])
def test_the_access_line_is_what_the_json_formatter_writes(fields, monkeypatch):
    """The direct write (the default logging set-up) and the formatter give the same text, to the character."""
    moment = 1_796_000_000.123456
    monkeypatch.setattr(request_log.time, "time", lambda: moment)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(request_log.JsonFormatter())
    request_log._write_line(handler, fields)
    record = request_log.access_log.makeRecord(request_log.access_log.name, logging.INFO, __file__, 0, "request",
                                               (), None, extra={"fields": fields})
    record.created = moment
    assert stream.getvalue() == handler.format(record) + "\n"
    assert json.loads(stream.getvalue()) == {"time": handler.formatter.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
                                             "level": "INFO", "logger": "scim_bridge.access",
                                             "message": "request", **fields}


def default_logging(monkeypatch):
    """Logging as init_app sets it up: the JSON handler alone (pytest adds its capture handlers as a test starts)."""
    logger = logging.getLogger("scim_bridge")
    ours = [h for h in logger.handlers if getattr(h, "_scim_bridge", False)]
    monkeypatch.setattr(logger, "handlers", ours)
    return logger


def test_the_default_set_up_writes_access_lines_directly(scim, monkeypatch):
    """With logging as init_app sets it up, the line is written without a LogRecord; any change goes through logging."""
    default_logging(monkeypatch)
    handler = request_log._sole_handler()
    assert handler is not None and getattr(handler, "_scim_bridge", False)
    stream = io.StringIO()
    monkeypatch.setattr(handler, "stream", stream)
    made = []
    monkeypatch.setattr(logging.Logger, "makeRecord", lambda *a, **k: made.append(a) or (_ for _ in ()).throw(
        AssertionError("no LogRecord expected")))
    scim.get("/Users", headers={"X-Request-ID": "direct-1"})
    monkeypatch.undo()
    [line] = stream.getvalue().splitlines()
    parsed = json.loads(line)
    assert parsed["request_id"] == "direct-1" and parsed["status"] == 200 and parsed["path"] == "/scim/v2/Users"
    assert not made


def test_a_changed_logging_set_up_goes_through_logging(app, monkeypatch, caplog):
    logger = default_logging(monkeypatch)
    assert request_log._sole_handler() is not None
    logger.addHandler(caplog.handler)
    try:
        assert request_log._sole_handler() is None  # another handler
    finally:
        logger.removeHandler(caplog.handler)
    filtered = logging.Filter("nothing")
    request_log.access_log.addFilter(filtered)
    try:
        assert request_log._sole_handler() is None  # a filter
    finally:
        request_log.access_log.removeFilter(filtered)
    logger.propagate = True
    try:
        assert request_log._sole_handler() is None  # the root logger's handlers would see it too
    finally:
        logger.propagate = False
    assert request_log._sole_handler() is not None
