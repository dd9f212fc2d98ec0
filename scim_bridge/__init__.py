"""scim-bridge: a SCIM 2.0 service that maps identity-provider groups onto Infinity organizations."""

__version__ = "0.1.0"
