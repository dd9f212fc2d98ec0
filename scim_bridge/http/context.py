"""Request-scoped helpers shared by the blueprints."""

from __future__ import annotations

from flask import current_app
from flask import request

from scim_bridge.auth import TokenContext
from scim_bridge.auth import current_context
from scim_bridge.scim.resource import Options
from scim_bridge.settings import Settings

SCIM_PREFIX = "/scim/v2"


def settings() -> Settings:
    """Return the running app's settings."""
    value: Settings = current_app.extensions["scim_bridge.settings"]
    return value


def scim_base_url() -> str:
    """Return the absolute SCIM base URL used in ``meta.location`` and ``$ref``."""
    configured = settings().base_url.rstrip("/")
    root = configured or request.host_url.rstrip("/")
    return root + SCIM_PREFIX


def tenant() -> TokenContext:
    """Return the tenant context of the validated token."""
    return current_context()


def resource_options() -> Options:
    """Return how strictly to read resource bodies for the current tenant."""
    return Options(ignore_unknown=bool(tenant().tenant_settings.get("ignore_unknown_attributes", False)))
