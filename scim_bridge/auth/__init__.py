"""Bearer-token protection of the SCIM endpoints (authlib resource protection)."""

from __future__ import annotations

from scim_bridge.auth.protector import TokenContext
from scim_bridge.auth.protector import current_context
from scim_bridge.auth.protector import init_app
from scim_bridge.auth.protector import require_oauth

__all__ = ["TokenContext", "current_context", "init_app", "require_oauth"]
