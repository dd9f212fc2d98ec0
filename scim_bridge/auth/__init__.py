"""Authentication and authorization: bearer-token protection, the OAuth 2.0 server, clients, limits."""

from __future__ import annotations

import logging

from flask import Flask

from scim_bridge.auth import protector
from scim_bridge.auth import server
from scim_bridge.auth.protector import TokenContext
from scim_bridge.auth.protector import current_context
from scim_bridge.auth.protector import require_oauth
from scim_bridge.auth.runtime import bind_settings
from scim_bridge.settings import Settings

__all__ = ["TokenContext", "current_context", "init_app", "require_oauth"]


def init_app(app: Flask, settings: Settings | None = None) -> None:
    """Register the bearer-token validator and the authorization server on *app*."""
    bind_settings(app, settings or Settings())
    protector.init_app(app)
    server.init_app(app)
    # authlib logs issued tokens and claimed client ids at DEBUG: never let those through.
    # An explicit level on the "authlib" logger wins over any root level (even a test's DEBUG).
    authlib_log = logging.getLogger("authlib")
    if authlib_log.level < logging.INFO:
        authlib_log.setLevel(logging.INFO)
