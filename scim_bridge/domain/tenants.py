"""Tenants: the isolation boundary (one Infinity workspace each)."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from scim_bridge.storage.models import Tenant

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
DEFAULT_PROFILE = "generic"


class TenantError(ValueError):
    """A tenant operation was refused (clear message for the CLI and admin API)."""


class TenantService:
    """Create and look up tenants.

    *profiles* are the names of the loaded mapping profiles; when given, a tenant's profile must be one.
    """

    def __init__(self, session: Session, profiles: Collection[str] | None = None) -> None:
        self._session = session
        self._profiles = profiles

    def create(self, slug: str, name: str | None = None, settings: dict[str, Any] | None = None,
               profile: str = DEFAULT_PROFILE) -> Tenant:
        """Create a tenant with mapping profile *profile*; an existing slug is an error."""
        if not SLUG.match(slug):
            raise TenantError(f"invalid tenant slug {slug!r}: use 1-63 lower-case letters, digits and '-'")
        if self.by_slug(slug) is not None:
            raise TenantError(f"tenant {slug!r} already exists")
        self._check_profile(profile)
        tenant = Tenant(slug=slug, name=name or slug, settings=settings or {}, profile=profile)
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

    def set_profile(self, slug: str, profile: str) -> Tenant:
        """Select the mapping profile of a tenant; it applies to the changes that follow."""
        tenant = self.require(slug)
        self._check_profile(profile)
        tenant.profile = profile
        self._session.flush()
        return tenant

    def _check_profile(self, profile: str) -> None:
        if self._profiles is not None and profile not in self._profiles:
            known = ", ".join(sorted(self._profiles)) or "none"
            raise TenantError(f"unknown mapping profile {profile!r} (loaded: {known})")

    def set_setting(self, slug: str, key: str, value: Any) -> Tenant:
        """Set one per-tenant setting."""
        tenant = self.require(slug)
        tenant.settings = {**(tenant.settings or {}), key: value}
        self._session.flush()
        return tenant
