"""SCIM filter and attribute-path parsing (RFC 7644 §3.4.2.2 and §3.5.2)."""
