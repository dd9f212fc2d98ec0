"""Typed models. Every row carries ``tenant_id``; every query is scoped by it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from scim_bridge.storage.base import Base
from scim_bridge.storage.base import BigIntPK
from scim_bridge.storage.base import utcnow


class Tenant(Base):
    """An Infinity workspace: the isolation boundary."""

    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """A SCIM User (RFC 7643 §4.1) with the enterprise extension (§4.3) as columns.

    Single-valued attributes are columns so that filters compile to plain, indexable SQL;
    multi-valued attributes live in :class:`UserValue`.
    """

    __tablename__ = "users"
    __table_args__ = (
        # userName is caseExact=false (RFC 7643 §4.1.1): uniqueness is on the lowered key.
        UniqueConstraint("tenant_id", "user_name_key"),
        UniqueConstraint("tenant_id", "external_id"),
        Index("ix_users_tenant_created", "tenant_id", "created", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_name: Mapped[str] = mapped_column(String(512))
    user_name_key: Mapped[str] = mapped_column(String(512))
    external_id: Mapped[str | None] = mapped_column(String(512))
    display_name: Mapped[str | None] = mapped_column(String(512))
    nick_name: Mapped[str | None] = mapped_column(String(255))
    profile_url: Mapped[str | None] = mapped_column(String(2048))
    title: Mapped[str | None] = mapped_column(String(255))
    user_type: Mapped[str | None] = mapped_column(String(255))
    preferred_language: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(64))
    timezone: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool | None] = mapped_column(default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))

    name_formatted: Mapped[str | None] = mapped_column(String(512))
    name_family_name: Mapped[str | None] = mapped_column(String(255))
    name_given_name: Mapped[str | None] = mapped_column(String(255))
    name_middle_name: Mapped[str | None] = mapped_column(String(255))
    name_honorific_prefix: Mapped[str | None] = mapped_column(String(64))
    name_honorific_suffix: Mapped[str | None] = mapped_column(String(64))

    # urn:ietf:params:scim:schemas:extension:enterprise:2.0:User
    employee_number: Mapped[str | None] = mapped_column(String(255))
    cost_center: Mapped[str | None] = mapped_column(String(255))
    organization: Mapped[str | None] = mapped_column(String(255))
    division: Mapped[str | None] = mapped_column(String(255))
    department: Mapped[str | None] = mapped_column(String(255))
    manager_value: Mapped[str | None] = mapped_column(String(255))
    manager_ref: Mapped[str | None] = mapped_column(String(2048))
    manager_display_name: Mapped[str | None] = mapped_column(String(512))

    version: Mapped[int] = mapped_column(default=1)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    last_modified: Mapped[datetime] = mapped_column(default=utcnow)


class UserValue(Base):
    """One element of a multi-valued User attribute (emails, phoneNumbers, addresses, ...)."""

    __tablename__ = "user_values"
    __table_args__ = (
        Index("ix_user_values_lookup", "tenant_id", "attribute", "value_key"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    attribute: Mapped[str] = mapped_column(String(32))
    position: Mapped[int] = mapped_column(default=0)
    value: Mapped[str | None] = mapped_column(String(4096))
    value_key: Mapped[str | None] = mapped_column(String(4096))
    display: Mapped[str | None] = mapped_column(String(512))
    type: Mapped[str | None] = mapped_column(String(64))
    primary: Mapped[bool | None]
    formatted: Mapped[str | None] = mapped_column(String(1024))
    street_address: Mapped[str | None] = mapped_column(String(512))
    locality: Mapped[str | None] = mapped_column(String(255))
    region: Mapped[str | None] = mapped_column(String(255))
    postal_code: Mapped[str | None] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(64))


class Group(Base):
    """A SCIM Group (RFC 7643 §4.2); later mapped onto an Infinity organization through ``org_id``."""

    __tablename__ = "groups"
    __table_args__ = (
        UniqueConstraint("tenant_id", "display_name_key"),
        UniqueConstraint("tenant_id", "external_id"),
        Index("ix_groups_tenant_created", "tenant_id", "created", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    display_name: Mapped[str] = mapped_column(String(512))
    display_name_key: Mapped[str] = mapped_column(String(512))
    external_id: Mapped[str | None] = mapped_column(String(512))
    org_id: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(default=1)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    last_modified: Mapped[datetime] = mapped_column(default=utcnow)


class GroupMember(Base):
    """One member of a group: a user or a group. A row per member, unique per group and member."""

    __tablename__ = "group_members"
    __table_args__ = (
        UniqueConstraint("group_id", "user_id"),
        UniqueConstraint("group_id", "member_group_id"),
        CheckConstraint("(user_id IS NULL) <> (member_group_id IS NULL)", name="one_member"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    member_group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), index=True
    )
    # members' sub-attributes are immutable (RFC 7643 §4.2): display is kept as the client sent it.
    display: Mapped[str | None] = mapped_column(String(512))
    created: Mapped[datetime] = mapped_column(default=utcnow)


class AccessToken(Base):
    """A bearer token: admin-minted (``kind='static'``) or issued by the OAuth server (``'issued'``).

    Only the SHA-256 of the token is stored; the token itself is shown once.
    """

    __tablename__ = "access_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="static")
    description: Mapped[str | None] = mapped_column(String(255))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(255))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
