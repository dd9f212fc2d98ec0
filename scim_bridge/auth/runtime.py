"""What the auth package reads from the running app and request: settings, request id, remote address."""

from __future__ import annotations

from flask import Flask
from flask import current_app
from flask import g
from flask import has_request_context
from flask import request

from scim_bridge.settings import EXTENSION_KEY
from scim_bridge.settings import Settings


def bind_settings(app: Flask, settings: Settings) -> None:
    """Keep *settings* on *app* unless the app factory already did (per app, so several apps may coexist)."""
    app.extensions.setdefault(EXTENSION_KEY, settings)


def auth_settings() -> Settings:
    """Return the settings of the running app."""
    settings: Settings = current_app.extensions.get(EXTENSION_KEY) or Settings()
    return settings


def request_id() -> str | None:
    """Return the current request id (set on ``g`` by the request log, which auth may not import)."""
    return (g.get("request_id") or None) if has_request_context() else None


def remote_addr() -> str:
    """Return the client address (after ``ProxyFix`` when ``trusted_proxy_hops`` is set)."""
    return (request.remote_addr or "unknown") if has_request_context() else "unknown"
