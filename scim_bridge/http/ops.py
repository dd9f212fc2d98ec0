"""Operational endpoints without a token: liveness and readiness."""

from __future__ import annotations

import logging

from flask import Blueprint
from flask import jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from scim_bridge.storage import migrations
from scim_bridge.storage.session import get_storage

bp = Blueprint("ops", __name__)
log = logging.getLogger("scim_bridge.ops")
PUBLIC_ENDPOINTS = ("ops.healthz", "ops.readyz")


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Report that the process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Report whether the database is reachable and migrated to head."""
    engine = get_storage().engine
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        at_head = migrations.is_at_head(engine)
    except SQLAlchemyError as exc:
        log.warning("readiness check failed: %s", exc.__class__.__name__)
        return jsonify(status="unavailable", database="unreachable"), 503
    if not at_head:
        return jsonify(status="unavailable", database="reachable", migrations="pending"), 503
    return jsonify(status="ok", database="reachable", migrations="head")
