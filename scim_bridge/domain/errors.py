"""Domain errors are SCIM errors: services raise them, the SCIM blueprint renders them."""

from scim_bridge.scim.errors import InvalidValue
from scim_bridge.scim.errors import NotFound
from scim_bridge.scim.errors import PreconditionFailed
from scim_bridge.scim.errors import Uniqueness

__all__ = ["InvalidValue", "NotFound", "PreconditionFailed", "Uniqueness"]
