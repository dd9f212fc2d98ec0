"""Mapping profiles: declarative rules (``mappings/*.toml``) for what pushed SCIM Groups mean in Infinity.

Pure like :mod:`scim_bridge.scim`: no Flask, no SQLAlchemy, no storage.
"""
