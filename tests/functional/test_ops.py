"""Health, readiness, request ids and the JSON request log."""

from __future__ import annotations

import json
import logging

from scim_bridge.app import create_app
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
