"""Pure SCIM 2.0 protocol layer (RFC 7643/7644): no Flask, SQLAlchemy or authlib in here."""
