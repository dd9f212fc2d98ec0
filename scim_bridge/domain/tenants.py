"""Tenants: the isolation boundary (one Infinity workspace each)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from scim_bridge.storage.models import Tenant

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class TenantError(ValueError):
    """A tenant operation was refused (clear message for the CLI and admin API)."""


class TenantService:
    """Create and look up tenants."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def create(self, slug: str, name: str | None = None, settings: dict[str, Any] | None = None) -> Tenant:
        """Create a tenant; an existing slug is an error."""
        if not SLUG.match(slug):
            raise TenantError(f"invalid tenant slug {slug!r}: use 1-63 lower-case letters, digits and '-'")
        if self.by_slug(slug) is not None:
            raise TenantError(f"tenant {slug!r} already exists")
        tenant = Tenant(slug=slug, name=name or slug, settings=settings or {})
        self._session.add(tenant)
        self._session.flush()
        return tenant

    def by_slug(self, slug: str) -> Tenant | None:
        """Return the tenant with *slug*, or ``None``."""
        return self._session.scalars(select(Tenant).where(Tenant.slug == slug)).one_or_none()

    def require(self, slug: str) -> Tenant:
        """Return the tenant with *slug* or raise :class:`TenantError`."""
        tenant = self.by_slug(slug)
        if tenant is None:
            raise TenantError(f"no tenant {slug!r} (create it with `scim-bridge tenant create {slug}`)")
        return tenant

    def all(self) -> list[Tenant]:
        """Return every tenant, by slug."""
        return list(self._session.scalars(select(Tenant).order_by(Tenant.slug)))

    def set_setting(self, slug: str, key: str, value: Any) -> Tenant:
        """Set one per-tenant setting."""
        tenant = self.require(slug)
        tenant.settings = {**(tenant.settings or {}), key: value}
        self._session.flush()
        return tenant
