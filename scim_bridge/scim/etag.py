"""Weak ETags from resource versions, and matching of ``If-Match`` / ``If-None-Match`` (RFC 7644 §3.14)."""

from __future__ import annotations

from scim_bridge.scim.errors import PreconditionFailed


def weak_etag(version: int) -> str:
    """Return the weak ETag of a resource version; it is also ``meta.version``."""
    return f'W/"{version}"'


def etag_matches(header: str, version: int) -> bool:
    """Tell whether a comma-separated ETag list names *version* (``*``, ``W/"v"`` or ``"v"``)."""
    tags = {tag.strip() for tag in header.split(",")}
    current = weak_etag(version)
    return "*" in tags or current in tags or current.removeprefix("W/") in tags


def require_match(if_match: str | None, version: int) -> None:
    """Raise 412 ``preconditionFailed`` when an ``If-Match`` header does not name *version*."""
    if if_match is not None and not etag_matches(if_match, version):
        raise PreconditionFailed(f"resource version is {weak_etag(version)}, not {if_match}")
