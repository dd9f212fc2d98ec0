"""Typed models. Every row carries ``tenant_id``; every query is scoped by it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import Text
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
    # The mapping profile (a file name in mappings/, without .toml) that says what groups mean.
    profile: Mapped[str] = mapped_column(String(64), default="generic", server_default="generic")
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
    # The Infinity User extension's writable ``iamOrgId``, as the identity provider pushed it.
    iam_org_id: Mapped[str | None] = mapped_column(String(255))

    version: Mapped[int] = mapped_column(default=1)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    last_modified: Mapped[datetime] = mapped_column(default=utcnow)

    # The user's default rendering, written with the user (domain/user_json.py, "stored rendering"):
    # its core attributes and multi-valued attributes as JSON members, its enterprise extension as
    # a JSON object (NULL without one). Read only while rendered_version is the user's version and
    # rendered_format the code's format; otherwise the database renders the user from its columns.
    rendered: Mapped[str | None] = mapped_column(Text)
    rendered_enterprise: Mapped[str | None] = mapped_column(Text)
    rendered_version: Mapped[int | None]
    rendered_format: Mapped[int | None]


class UserValue(Base):
    """One element of a multi-valued User attribute (emails, phoneNumbers, addresses, ...)."""

    __tablename__ = "user_values"
    __table_args__ = (
        Index("ix_user_values_lookup", "tenant_id", "attribute", "value_key"),
        # A user's values in rendering order (attribute, then position), without a sort: SQLite's
        # GROUP BY attribute then reads them in position order (domain/user_json.py).
        Index("ix_user_values_user_order", "user_id", "attribute", "position"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
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
    """A SCIM Group (RFC 7643 §4.2); the tenant's mapping profile may map it onto an :class:`Org`."""

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
    # The Infinity extension's writable ``iamOrgId``: the IAM org ID exactly as the IdP pushed it,
    # an input a profile may derive the org's org_id from. The org's own org_id lives in ``orgs``.
    iam_org_id: Mapped[str | None] = mapped_column(String(255))
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
        # A user's groups (its ``groups`` attribute, on every user of a list page) from the index
        # alone: the membership rows themselves are never read for it (migration 0007).
        Index("ix_group_members_user_groups", "user_id", "tenant_id", "group_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
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


class OAuthClient(Base):
    """An OAuth 2.0 client of one tenant (RFC 6749 §2), authenticated by a secret stored only as a digest.

    A rotated secret keeps working until ``previous_secret_expires_at`` (the rotation grace period).
    """

    __tablename__ = "oauth_clients"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    scope: Mapped[str] = mapped_column(String(255))
    can_introspect: Mapped[bool] = mapped_column(default=False)
    secret_hash: Mapped[str] = mapped_column(String(64))
    previous_secret_hash: Mapped[str | None] = mapped_column(String(64))
    previous_secret_expires_at: Mapped[datetime | None]
    secret_rotated_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    created: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """One audited action: a write or a credential event. Never holds a secret or a token."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_tenant_time", "tenant_id", "occurred_at", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The audit trail outlives the tenant row it describes.
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenants.id", ondelete="SET NULL"))
    client: Mapped[str | None] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str | None] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(String(16))
    status: Mapped[int | None]
    detail: Mapped[str | None] = mapped_column(String(255))
    request_id: Mapped[str | None] = mapped_column(String(128))
    remote_addr: Mapped[str | None] = mapped_column(String(64))


class RateLimitCounter(Base):
    """A fixed-window request counter, shared by every process through the database (one row per key)."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[int]
    count: Mapped[int]


class Org(Base):
    """An Infinity organization: a name and an ``org_id`` (the IAM org ID), unique per tenant, editable.

    ``source`` is how it came to be: ``idp`` (created from a pushed group) or ``manual`` (an admin).
    ``group_id`` links it to at most one SCIM group, and a group links to at most one org (both
    unique). ``name_locked``: an admin edited the name, so IdP renames leave it alone unless the
    profile says otherwise. ``orphaned``: its group was deleted or stopped mapping and the profile
    detached it; it is then nobody's org through the IdP.
    """

    __tablename__ = "orgs"
    __table_args__ = (
        # Case-sensitive on both databases (PostgreSQL's default collation and SQLite's BINARY).
        UniqueConstraint("tenant_id", "org_id"),
        UniqueConstraint("group_id"),
        CheckConstraint("source IN ('idp', 'manual')", name="source"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    org_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(512))
    source: Mapped[str] = mapped_column(String(16))
    group_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("groups.id", ondelete="SET NULL"))
    name_locked: Mapped[bool] = mapped_column(default=False)
    orphaned: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column(default=1)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    last_modified: Mapped[datetime] = mapped_column(default=utcnow)


class OrgMembership(Base):
    """A user in an org, as Infinity sees it: ``source`` ``idp`` (derived from groups) or ``manual``.

    ``org_pk`` references ``orgs.id``; ``org_id`` always means the IAM org ID string. IdP-derived
    rows are maintained by the org sync (in ``single`` mode: only the user's primary org).
    """

    __tablename__ = "org_memberships"
    __table_args__ = (
        UniqueConstraint("org_pk", "user_id", "source"),
        CheckConstraint("source IN ('idp', 'manual')", name="source"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    org_pk: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(16))
    created: Mapped[datetime] = mapped_column(default=utcnow)


class UserOrgState(Base):
    """What a user resolves to in Infinity: primary org, role, conflict flag, mapped user fields.

    Recomputed by the org sync only for the users a change touches. ``user_fields`` is the last
    Infinity-facing snapshot of the user (email, names, department, active, extras), kept so that
    events carry before/after values.
    """

    __tablename__ = "user_org_state"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    primary_org_pk: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orgs.id", ondelete="SET NULL"),
                                                              index=True)
    role: Mapped[str | None] = mapped_column(String(64))
    primary_org_conflict: Mapped[bool] = mapped_column(default=False)
    user_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated: Mapped[datetime] = mapped_column(default=utcnow)


class UserCount(Base):
    """How many users a tenant has, as deltas whose sum is the count (``totalResults`` of ``GET /Users``).

    ``count(*)`` walks every user of the tenant: 90 ms of SQLite and 175 ms of PostgreSQL CPU at
    1,000,000 users, on every full page of a list. The triggers of migration 0005 keep these rows
    instead, in the transaction of each insert or delete on ``users`` (so a rolled-back write
    counts nothing). SQLite, whose writers are serialised anyway, updates one row per tenant in
    place; PostgreSQL keeps one row per writing transaction (its statements add to it), so that
    concurrent writers never wait on each other's counter (nor deadlock with the tenant's event
    lock), and the reader folds many rows back into one (``UserRepository.count_all``).
    """

    __tablename__ = "user_counts"
    __table_args__ = (Index("ix_user_counts_tenant_id", "tenant_id", "id"), UniqueConstraint("tenant_id", "txid"))

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    delta: Mapped[int] = mapped_column(BigInteger)
    txid: Mapped[int | None] = mapped_column(BigInteger)
    """PostgreSQL: the writing transaction (``txid_current()``), whose statements add to one row."""


class ChangeEvent(Base):
    """One change to Infinity-facing state, in a per-tenant log; ``id`` is the monotonic cursor.

    Appended in the transaction of the change (with the tenant row locked on PostgreSQL, so ids
    commit in order and a reader polling ``id > cursor`` never skips one).
    """

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_tenant_cursor", "tenant_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    request_id: Mapped[str | None] = mapped_column(String(128))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReconcilePlan(Base):
    """A reconciliation plan made from an enterprise's IAM org list (issue 6), kept with its outcome.

    ``state_hash`` fingerprints the tenant's orgs and groups when the plan was made: applying is
    refused once it no longer matches (the data changed since the dry run the admin saw).
    ``status``: ``planned`` (a dry run), ``applied``, ``refused`` (stale) or ``failed`` (rolled back).
    """

    __tablename__ = "reconcile_plans"
    __table_args__ = (
        Index("ix_reconcile_plans_tenant_created", "tenant_id", "created"),
        CheckConstraint("status IN ('planned', 'applied', 'refused', 'failed')", name="status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    created: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))
    source_name: Mapped[str | None] = mapped_column(String(255))
    source_format: Mapped[str] = mapped_column(String(8))
    entry_count: Mapped[int] = mapped_column(default=0)
    state_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="planned")
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    notes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    applied_at: Mapped[datetime | None]
    applied_by: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str | None] = mapped_column(String(1024))


class ReconcilePlanLine(Base):
    """One action of a plan (create, rename, rekey, link, unlink) with its reason and outcome.

    Org and group references are plain ids, not foreign keys: a plan is history and outlives them.
    """

    __tablename__ = "reconcile_plan_lines"
    __table_args__ = (UniqueConstraint("plan_id", "position"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reconcile_plans.id", ondelete="CASCADE"))
    position: Mapped[int]
    action: Mapped[str] = mapped_column(String(16))
    org_pk: Mapped[uuid.UUID | None]
    org_id: Mapped[str | None] = mapped_column(String(255))
    new_org_id: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(512))
    new_name: Mapped[str | None] = mapped_column(String(512))
    group_id: Mapped[uuid.UUID | None]
    group_name: Mapped[str | None] = mapped_column(String(512))
    reason: Mapped[str] = mapped_column(String(1024))
    status: Mapped[str] = mapped_column(String(16), default="pending")


class ConsoleSession(Base):
    """A signed-in admin console session; the browser holds only a random id, stored here as SHA-256.

    The credential it was opened with (an admin-scope token, or an OAuth client with the admin
    scope) is re-checked on every request: revoked, expired, disabled or re-keyed means signed out.
    """

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    credential_kind: Mapped[str] = mapped_column(String(16))
    credential_ref: Mapped[str] = mapped_column(String(64))
    credential_check: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(128))
    created: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
