"""Org management for admins: list, create, edit, delete, assign and unassign users, link and unlink groups.

Everything goes through :class:`~scim_bridge.domain.orgs.OrgSync` where Infinity-facing state
changes, so each change lands in the event log (``org.created``, ``org.rekeyed`` with before/after,
``membership.added`` with ``source = manual``, ...) in the same transaction, and members' primary
orgs are recomputed. Every write is also recorded in the audit log with the acting credential.

Rules that keep admins from cutting off access by accident:

* only orgs that no live group manages can be deleted (created by hand and unlinked, or orphaned);
* a membership the IdP gave (through a group) cannot be removed by hand: it follows the group;
* a manual membership is marked ``source = manual`` and survives every IdP sync;
* a group the mapping profile maps onto an org's own org_id cannot be unlinked from it (the next
  change pushed by the IdP would link it again, or be refused).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Any
from typing import Generic
from typing import TypeVar

from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from scim_bridge.admin.errors import Conflict
from scim_bridge.admin.errors import InvalidInput
from scim_bridge.admin.errors import NotFound
from scim_bridge.admin.errors import Refused
from scim_bridge.domain import audit
from scim_bridge.domain import events as ev
from scim_bridge.domain.mapping import to_scim_group
from scim_bridge.domain.orgs import IDP
from scim_bridge.domain.orgs import MANUAL
from scim_bridge.domain.orgs import OrgError
from scim_bridge.domain.orgs import OrgService
from scim_bridge.domain.orgs import OrgSync
from scim_bridge.mappings.model import Profile
from scim_bridge.scim.errors import ScimError
from scim_bridge.storage.base import utcnow
from scim_bridge.storage.models import Group
from scim_bridge.storage.models import Org
from scim_bridge.storage.models import OrgMembership
from scim_bridge.storage.models import User
from scim_bridge.storage.models import UserOrgState
from scim_bridge.storage.repositories.common import parse_id
from scim_bridge.storage.repositories.orgs import OrgRepository

T = TypeVar("T")
MAX_ORG_ID = 255
MAX_NAME = 512


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list: the items, the total matching, and where the page starts."""

    items: list[T]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        """Return the offset of the next page, or ``None`` on the last one."""
        following = self.offset + len(self.items)
        return following if following < self.total else None


@dataclass(frozen=True, slots=True)
class OrgQuery:
    """Which orgs to list: a search over name and org_id, filters, and the page."""

    search: str | None = None
    source: str | None = None
    orphaned: bool | None = None
    linked: bool | None = None
    conflict: bool | None = None
    offset: int = 0
    limit: int = 50


@dataclass(frozen=True, slots=True)
class OrgView:
    """An org as the admin sees it: identity, where it came from, its group, members and flags."""

    id: uuid.UUID
    org_id: str
    name: str
    source: str
    group_id: uuid.UUID | None
    group_name: str | None
    member_count: int
    manual_member_count: int
    orphaned: bool
    conflict: bool
    conflicts: tuple[str, ...]
    name_locked: bool
    version: int
    created: datetime
    last_modified: datetime

    @property
    def deletable(self) -> bool:
        """Tell whether the org may be deleted (no live group manages it)."""
        return self.orphaned or (self.source == MANUAL and self.group_id is None)


@dataclass(frozen=True, slots=True)
class MemberView:
    """One user of an org, with how they got there (``idp``, ``manual`` or both)."""

    user_id: uuid.UUID
    user_name: str
    display_name: str | None
    active: bool
    sources: tuple[str, ...]
    primary: bool


@dataclass(frozen=True, slots=True)
class UserView:
    """A user as Infinity sees them: primary org, every org, role, conflict flag."""

    id: uuid.UUID
    user_name: str
    display_name: str | None
    active: bool
    org_id: str | None
    org_name: str | None
    org_ids: tuple[str, ...]
    role: str | None
    primary_org_conflict: bool
    memberships: tuple[dict[str, Any], ...] = ()
    variables: dict[str, Any] = field(default_factory=dict)


class OrgAdmin:
    """Admin operations on the orgs and users of one tenant. Services flush; the unit of work commits.

    *actor* names who acts in the audit log (``cli``, an OAuth client id, ``token:<id>``,
    ``console:<…>``); with ``audited=False`` (a plan being applied) the caller audits once.
    """

    def __init__(self, session: Session, tenant_id: uuid.UUID, profile: Profile, actor: str,
                 request_id: str | None = None, *, audited: bool = True) -> None:
        self._session = session
        self._tenant_id = tenant_id
        self._profile = profile
        self._actor = actor
        self._request_id = request_id
        self._audited = audited
        self._orgs = OrgRepository(session, tenant_id)
        self._sync = OrgSync(session, tenant_id, profile, request_id)

    @property
    def profile(self) -> Profile:
        """Return the tenant's mapping profile."""
        return self._profile

    # -- reads ---------------------------------------------------------------------------------------

    def list(self, query: OrgQuery, conflicts: dict[uuid.UUID, list[str]] | None = None) -> Page[OrgView]:
        """Return one page of orgs by org_id; *conflicts* (org pk -> reasons) comes from the report."""
        conflicts = conflicts or {}
        stmt = select(Org).where(Org.tenant_id == self._tenant_id)
        if query.search:
            needle = query.search.strip().lower()
            stmt = stmt.where(or_(func.lower(Org.name).contains(needle, autoescape=True),
                                  func.lower(Org.org_id).contains(needle, autoescape=True)))
        if query.source:
            stmt = stmt.where(Org.source == query.source)
        if query.orphaned is not None:
            stmt = stmt.where(Org.orphaned.is_(query.orphaned))
        if query.linked is True:
            stmt = stmt.where(Org.group_id.is_not(None), Org.orphaned.is_(False))
        elif query.linked is False:
            stmt = stmt.where(or_(Org.group_id.is_(None), Org.orphaned.is_(True)))
        if query.conflict is True:
            stmt = stmt.where(Org.id.in_(list(conflicts) or [uuid.UUID(int=0)]))
        elif query.conflict is False and conflicts:
            stmt = stmt.where(Org.id.not_in(list(conflicts)))
        total = self._session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = list(self._session.scalars(stmt.order_by(Org.org_id, Org.id).offset(query.offset).limit(query.limit)))
        return Page(self._views(rows, conflicts), total, query.offset, query.limit)

    def all(self, conflicts: dict[uuid.UUID, list[str]] | None = None) -> list[OrgView]:
        """Return every org of the tenant, by org_id (exports)."""
        return self._views(self._orgs.all(), conflicts or {})

    def get(self, org_pk: uuid.UUID | str, conflicts: dict[uuid.UUID, list[str]] | None = None) -> OrgView:
        """Return one org by its id."""
        return self._views([self.require(org_pk)], conflicts or {})[0]

    def require(self, org_pk: uuid.UUID | str, for_update: bool = False) -> Org:
        """Return the org with id *org_pk* or raise :class:`NotFound`."""
        parsed = parse_id(org_pk)
        org = None
        if parsed is not None:
            stmt = select(Org).where(Org.tenant_id == self._tenant_id, Org.id == parsed)
            org = self._session.scalars(stmt.with_for_update() if for_update else stmt).one_or_none()
        if org is None:
            raise NotFound(f"no organization {org_pk}")
        return org

    def by_org_id(self, org_id: str) -> Org:
        """Return the org whose org_id is exactly *org_id* or raise :class:`NotFound`."""
        org = self._orgs.by_org_id(org_id, for_update=True)
        if org is None:
            raise NotFound(f"no organization with org_id {org_id!r}")
        return org

    def members(self, org_pk: uuid.UUID | str, offset: int = 0, limit: int = 50) -> Page[MemberView]:
        """Return one page of the org's members, by userName."""
        org = self.require(org_pk)
        users = (select(OrgMembership.user_id).where(OrgMembership.tenant_id == self._tenant_id,
                                                     OrgMembership.org_pk == org.id).distinct().subquery())
        total = self._session.scalar(select(func.count()).select_from(users)) or 0
        stmt = (select(User).join(users, users.c.user_id == User.id).order_by(User.user_name_key, User.id)
                .offset(offset).limit(limit))
        rows = list(self._session.scalars(stmt))
        sources: dict[uuid.UUID, set[str]] = {}
        for user_id, source in self._session.execute(
                select(OrgMembership.user_id, OrgMembership.source).where(
                    OrgMembership.org_pk == org.id, OrgMembership.user_id.in_([u.id for u in rows]))):
            sources.setdefault(user_id, set()).add(source)
        states = self._orgs.states([u.id for u in rows])
        items = [MemberView(u.id, u.user_name, u.display_name, u.active is not False,
                            tuple(sorted(sources.get(u.id, ()))),
                            states[u.id].primary_org_pk == org.id if u.id in states else False) for u in rows]
        return Page(items, total, offset, limit)

    def users(self, search: str | None = None, offset: int = 0, limit: int = 50) -> Page[UserView]:
        """Return one page of users by userName, with their org, role and conflict flag."""
        stmt = select(User).where(User.tenant_id == self._tenant_id)
        if search:
            needle = search.strip().lower()
            stmt = stmt.where(or_(User.user_name_key.contains(needle, autoescape=True),
                                  func.lower(User.display_name).contains(needle, autoescape=True)))
        total = self._session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = list(self._session.scalars(stmt.order_by(User.user_name_key, User.id).offset(offset).limit(limit)))
        views = self._orgs.views_of([u.id for u in rows])
        names = self._org_names([v.org_id for v in views.values() if v.org_id])
        items = []
        for user in rows:
            view = views.get(user.id)
            org_id = view.org_id if view else None
            items.append(UserView(user.id, user.user_name, user.display_name, user.active is not False, org_id,
                                  names.get(org_id) if org_id else None, view.org_ids if view else (),
                                  view.role if view else None, view.conflict if view else False))
        return Page(items, total, offset, limit)

    def user(self, user_ref: uuid.UUID | str) -> UserView:
        """Return one user with their memberships (and how each came) and their resolved variables."""
        user = self.require_user(user_ref)
        view = self._orgs.views_of([user.id]).get(user.id)
        rows = self._orgs.memberships_of([user.id]).get(user.id, [])
        state = self._orgs.states([user.id]).get(user.id)
        memberships = tuple(sorted(({"org": str(r.org_pk), "org_id": r.org_id, "org_name": r.org_name,
                                     "source": r.source,
                                     "primary": state is not None and state.primary_org_pk == r.org_pk}
                                    for r in rows), key=lambda m: (m["org_id"], m["source"])))
        try:
            variables = OrgService(self._session, self._tenant_id, self._profile).variables(user.user_name)
        except OrgError:
            variables = {}
        org_id = view.org_id if view else None
        return UserView(user.id, user.user_name, user.display_name, user.active is not False, org_id,
                        self._org_names([org_id]).get(org_id) if org_id else None, view.org_ids if view else (),
                        view.role if view else None, view.conflict if view else False, memberships, variables)

    def require_user(self, user_ref: uuid.UUID | str) -> User:
        """Return a user by id or userName (case-insensitive), or raise :class:`NotFound`."""
        parsed = parse_id(user_ref)
        user = None
        if parsed is not None:
            user = self._session.scalars(select(User).where(User.tenant_id == self._tenant_id,
                                                            User.id == parsed)).one_or_none()
        if user is None and isinstance(user_ref, str):
            user = self._session.scalars(select(User).where(User.tenant_id == self._tenant_id,
                                                            User.user_name_key == user_ref.lower())).one_or_none()
        if user is None:
            raise NotFound(f"no user {user_ref}")
        return user

    def require_group(self, group_ref: uuid.UUID | str) -> Group:
        """Return a group by id or displayName (case-insensitive), or raise :class:`NotFound`."""
        parsed = parse_id(group_ref)
        group = None
        if parsed is not None:
            group = self._session.scalars(select(Group).where(Group.tenant_id == self._tenant_id,
                                                              Group.id == parsed)).one_or_none()
        if group is None and isinstance(group_ref, str):
            group = self._session.scalars(select(Group).where(
                Group.tenant_id == self._tenant_id, Group.display_name_key == group_ref.lower())).one_or_none()
        if group is None:
            raise NotFound(f"no group {group_ref}")
        return group

    # -- writes --------------------------------------------------------------------------------------

    def create(self, org_id: str, name: str) -> Org:
        """Create an org by hand (``source = manual``): org_id unique and valid for the profile, name set."""
        org_id, name = self.check_org_id(org_id), self.check_name(name)
        if self._orgs.by_org_id(org_id) is not None:
            raise Conflict(f"org_id {org_id!r} is already used by organization "
                           f"{self._orgs.by_org_id(org_id).name!r}")  # type: ignore[union-attr]
        org = self._sync.create_manual(org_id, name)
        self._done("org.create", org, f"org_id '{org_id}'")
        return org

    def edit(self, org: Org, *, name: str | None = None, org_id: str | None = None,
             expected_version: int | None = None) -> Org:
        """Rename and/or re-key an org. A re-key is an ``org.rekeyed`` event with before/after."""
        if expected_version is not None and expected_version != org.version:
            raise Conflict(f"organization {org.org_id!r} changed since you loaded it (version {org.version}, "
                           f"not {expected_version}); reload and try again")
        changes = []
        if org_id is not None and org_id.strip() != org.org_id:
            new_id = self.check_org_id(org_id)
            old_id = org.org_id
            try:
                self._sync.rekey(org, new_id)
            except ScimError as exc:
                raise Conflict(exc.detail) from exc
            changes.append(f"org_id '{old_id}' -> '{new_id}'")
        if name is not None:
            new_name = self.check_name(name)
            if new_name != org.name:
                self._sync.append_event(ev.ORG_RENAMED, ev.org_subject(org.id), {"name": org.name},
                                        {"name": new_name, "org_id": org.org_id})
                changes.append("name")
                org.name = new_name
                self._touch(org)
            # An admin chose this name: IdP renames leave it alone (unless the profile says otherwise).
            org.name_locked = True
        if changes:
            self._done("org.edit", org, ", ".join(changes))
        else:
            self._flush()
        return org

    def delete(self, org: Org) -> None:
        """Delete an org that no live group manages; its manual memberships go with it (with events)."""
        if not (org.orphaned or (org.source == MANUAL and org.group_id is None)):
            group = self._group_name(org.group_id)
            if org.source == IDP:
                raise Refused(f"organization {org.name!r} ({org.org_id}) is managed by the identity provider "
                              f"through group {group!r}: it goes when the group is deleted in the IdP; only "
                              "organizations created by hand or orphaned can be deleted")
            raise Refused(f"organization {org.name!r} ({org.org_id}) is linked to group {group!r}: unlink it "
                          "first, then delete it")
        label = f"org_id '{org.org_id}'"
        self._sync.delete_org(org)
        self._sync.flush_events()
        self._session.flush()
        self._audit("org.delete", str(org.id), label)

    def assign(self, org: Org, user: User) -> None:
        """Put a user in an org by hand (``source = manual``); it survives IdP syncs."""
        rows = {r.source for r in self._orgs.memberships_of([user.id]).get(user.id, []) if r.org_pk == org.id}
        if MANUAL in rows:
            raise Conflict(f"{user.user_name} is already assigned to {org.name!r} by hand")
        self._orgs.add_memberships([(user.id, org.id, MANUAL)])
        fields = self._fields(user.id)
        self._sync.append_event(ev.MEMBERSHIP_ADDED, ev.user_subject(user.id), None, {
            "org": str(org.id), "org_id": org.org_id, "org_name": org.name, "source": MANUAL,
            "user_name": fields.get("user_name", user.user_name), "email": fields.get("email")})
        self._sync.recompute([user.id])
        self._done("org.assign", org, f"user {user.user_name}")

    def unassign(self, org: Org, user: User) -> None:
        """Remove a manual membership; a membership the IdP gave cannot be removed by hand."""
        rows = [r for r in self._orgs.memberships_of([user.id]).get(user.id, []) if r.org_pk == org.id]
        manual = [r for r in rows if r.source == MANUAL]
        if not manual:
            if rows or (org.group_id is not None and not org.orphaned
                        and user.id in self._orgs.users_below_groups([org.group_id])):
                raise Refused(f"{user.user_name} is in {org.name!r} through group "
                              f"{self._group_name(org.group_id)!r} of the identity provider: remove them from "
                              "that group in the IdP (memberships the IdP manages cannot be removed by hand)")
            raise NotFound(f"{user.user_name} is not a member of {org.name!r}")
        self._orgs.remove_memberships([r.id for r in manual])
        fields = self._fields(user.id)
        self._sync.append_event(ev.MEMBERSHIP_REMOVED, ev.user_subject(user.id), {
            "org": str(org.id), "org_id": org.org_id, "org_name": org.name, "source": MANUAL,
            "user_name": fields.get("user_name", user.user_name), "email": fields.get("email")}, None)
        self._sync.recompute([user.id])
        self._done("org.unassign", org, f"user {user.user_name}")

    def link(self, org: Org, group: Group) -> None:
        """Link an org to a SCIM group: the group's members (also nested) get the org through the IdP."""
        if org.group_id == group.id and not org.orphaned:
            raise Conflict(f"organization {org.name!r} is already linked to group {group.display_name!r}")
        other = self._orgs.by_group(group.id, for_update=True)
        if other is not None and other.id != org.id:
            state = "orphaned, " if other.orphaned else ""
            raise Conflict(f"group {group.display_name!r} is linked to organization {other.name!r} "
                           f"({state}org_id {other.org_id}): unlink it from that organization first")
        if org.group_id is not None and org.group_id != group.id and not org.orphaned:
            raise Conflict(f"organization {org.name!r} is linked to group {self._group_name(org.group_id)!r}: "
                           "unlink it first")
        before = {"group": str(org.group_id) if org.group_id else None, "orphaned": org.orphaned}
        org.group_id = group.id
        org.orphaned = False
        self._touch(org)
        self._session.flush()
        self._sync.append_event(ev.ORG_LINKED, ev.org_subject(org.id), before,
                                {"group": str(group.id), "orphaned": False, "org_id": org.org_id, "by": "admin"})
        self._sync.recompute(self._orgs.users_below_groups([group.id]))
        self._done("org.link", org, f"group {group.display_name}")

    def unlink(self, org: Org) -> Group:
        """Unlink an org from its group: the IdP memberships the group gave go; manual ones stay."""
        if org.group_id is None:
            raise Conflict(f"organization {org.name!r} is not linked to a group")
        group = self.require_group(org.group_id)
        decision = self.decide(group)
        if decision is not None and decision.org_id == org.org_id and not org.orphaned:
            raise Refused(f"the mapping profile '{self._profile.name}' maps group {group.display_name!r} onto "
                          f"org_id {org.org_id!r} ({self._profile.orgs.org_id.source()}): the next change the "
                          "identity provider pushes would link it again; change the group in the IdP, or re-key "
                          "the organization first")
        users = self._orgs.users_below_groups([group.id])
        before = {"group": str(group.id), "orphaned": org.orphaned}
        org.group_id = None
        # An org the IdP created has no other reason to exist: it is orphaned. A manual one is just manual.
        org.orphaned = org.source == IDP
        self._touch(org)
        self._session.flush()
        self._sync.append_event(ev.ORG_ORPHANED if org.orphaned else ev.ORG_LINKED, ev.org_subject(org.id), before,
                                {"group": None, "orphaned": org.orphaned, "org_id": org.org_id, "by": "admin"})
        self._sync.recompute(users)
        self._done("org.unlink", org, f"group {group.display_name}")
        return group

    # -- helpers -------------------------------------------------------------------------------------

    def decide(self, group: Group) -> Any:
        """Return the profile's decision for *group* (``None`` when it maps no org or is invalid)."""
        try:
            return self._profile.decide(to_scim_group(group, "", None))
        except ScimError:
            return None

    def check_org_id(self, org_id: str) -> str:
        """Return a cleaned org_id, or raise :class:`InvalidInput` (empty, too long, refused by the profile)."""
        value = (org_id or "").strip()
        if not value:
            raise InvalidInput("the org_id cannot be empty")
        if len(value) > MAX_ORG_ID or any(ord(c) < 32 for c in value):
            raise InvalidInput(f"the org_id must be 1-{MAX_ORG_ID} printable characters")
        pattern = self._profile.orgs.org_id.validate
        if pattern is not None and not pattern.regex.fullmatch(value):
            raise InvalidInput(f"org_id {value!r} does not match the pattern /{pattern.text}/ of mapping profile "
                               f"'{self._profile.name}'")
        return value

    @staticmethod
    def check_name(name: str) -> str:
        """Return a cleaned org name, or raise :class:`InvalidInput`."""
        value = (name or "").strip()
        if not value:
            raise InvalidInput("the name cannot be empty")
        if len(value) > MAX_NAME or any(ord(c) < 32 for c in value):
            raise InvalidInput(f"the name must be 1-{MAX_NAME} printable characters")
        return value

    def _views(self, rows: Sequence[Org], conflicts: dict[uuid.UUID, list[str]]) -> list[OrgView]:
        ids = [o.id for o in rows]
        counts: dict[uuid.UUID, int] = {}
        manual: dict[uuid.UUID, int] = {}
        if ids:
            stmt = (select(OrgMembership.org_pk, func.count(func.distinct(OrgMembership.user_id)))
                    .where(OrgMembership.org_pk.in_(ids)).group_by(OrgMembership.org_pk))
            counts = {pk: int(n) for pk, n in self._session.execute(stmt)}
            stmt = (select(OrgMembership.org_pk, func.count()).where(OrgMembership.org_pk.in_(ids),
                                                                     OrgMembership.source == MANUAL)
                    .group_by(OrgMembership.org_pk))
            manual = {pk: int(n) for pk, n in self._session.execute(stmt)}
        groups = self._orgs.group_names([o.group_id for o in rows if o.group_id is not None])
        return [OrgView(o.id, o.org_id, o.name, o.source, o.group_id, groups.get(o.group_id) if o.group_id else None,
                        counts.get(o.id, 0), manual.get(o.id, 0), o.orphaned, o.id in conflicts,
                        tuple(conflicts.get(o.id, ())), o.name_locked, o.version, o.created, o.last_modified)
                for o in rows]

    def _org_names(self, org_ids: Sequence[str | None]) -> dict[str, str]:
        wanted = [i for i in org_ids if i]
        if not wanted:
            return {}
        stmt = select(Org.org_id, Org.name).where(Org.tenant_id == self._tenant_id, Org.org_id.in_(wanted))
        return {org_id: name for org_id, name in self._session.execute(stmt)}

    def _group_name(self, group_id: uuid.UUID | None) -> str | None:
        if group_id is None:
            return None
        return self._orgs.group_names([group_id]).get(group_id)

    def _fields(self, user_id: uuid.UUID) -> dict[str, Any]:
        state = self._session.get(UserOrgState, user_id)
        return dict(state.user_fields or {}) if state is not None else {}

    def _touch(self, org: Org) -> None:
        org.version = (org.version or 1) + 1
        org.last_modified = utcnow()

    def _flush(self) -> None:
        self._sync.flush_events()
        self._session.flush()

    def _done(self, action: str, org: Org, detail: str) -> None:
        self._flush()
        self._audit(action, str(org.id), detail)

    def _audit(self, action: str, resource_id: str, detail: str | None) -> None:
        if self._audited:
            audit.record(self._session, action, audit.SUCCESS, tenant_id=self._tenant_id, client=self._actor,
                         resource_type="org", resource_id=resource_id, detail=detail, request_id=self._request_id)

