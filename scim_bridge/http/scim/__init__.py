"""The SCIM 2.0 blueprint (``/scim/v2``)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("scim", __name__, url_prefix="/scim/v2")

from scim_bridge.http.scim import bulk  # noqa: E402,F401
from scim_bridge.http.scim import discovery  # noqa: E402,F401  (registers routes)
from scim_bridge.http.scim import endpoints  # noqa: E402,F401
from scim_bridge.http.scim import errors  # noqa: E402,F401
from scim_bridge.http.scim import search  # noqa: E402,F401
