"""Queries over organizations, org memberships, resolved user state, group nesting and the event log.

Group nesting is walked with recursive CTEs (``UNION``, so a cycle cannot loop forever) on both
SQLite and PostgreSQL; every walk starts from the rows a change touched, never from the tenant.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CTE
from sqlalchemy import Insert
from sqlalchemy import Select
from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import true
from sqlalchemy.orm import Session
from sqlalchemy.orm import aliased

from scim_bridge.storage.base import utcnow
from scim_bridge.storage.models import ChangeEvent
from scim_bridge.storage.models import Group
from scim_bridge.storage.models import GroupMember
from scim_bridge.storage.models import Org
from scim_bridge.storage.models import OrgMembership
from scim_bridge.storage.models import Tenant
from scim_bridge.storage.models import User
from scim_bridge.storage.models import UserOrgState
from scim_bridge.storage.prepared import BoundRows
from scim_bridge.storage.prepared import PreparedCommand
from scim_bridge.storage.prepared import PreparedInsert
from scim_bridge.storage.repositories.common import chunked
from scim_bridge.storage.repositories.common import dialect_name
from scim_bridge.storage.repositories.common import unindexed


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """A group reached by a nesting walk, with the org it is linked to (if any)."""

    group_id: uuid.UUID
    display_name: str
    external_id: str | None
    org_pk: uuid.UUID | None = None
    org_id: str | None = None
    org_name: str | None = None
    orphaned: bool = False

    @property
    def active_org(self) -> bool:
        """Tell whether the group currently gives an org (linked and not orphaned)."""
        return self.org_pk is not None and not self.orphaned


@dataclass(frozen=True, slots=True)
class MembershipRow:
    """One org membership of a user, with the org's current org_id and name."""

    id: int
    user_id: uuid.UUID
    org_pk: uuid.UUID
    source: str
    org_id: str
    org_name: str


@dataclass(frozen=True, slots=True)
class UserOrgView:
    """What the SCIM User extension shows: primary org_id, every org_id, role, conflict flag."""

    org_id: str | None
    org_ids: tuple[str, ...]
    role: str | None
    conflict: bool


class OrgRepository:
    """Tenant-scoped access to orgs and everything derived from them."""

    def __init__(self, session: Session, tenant_id: uuid.UUID) -> None:
        self._session = session
        self._tenant_id = tenant_id

    # -- orgs ------------------------------------------------------------------------------------

    def get(self, org_pk: uuid.UUID) -> Org | None:
        """Return the org with primary key *org_pk*, or ``None``."""
        stmt = select(Org).where(Org.tenant_id == self._tenant_id, Org.id == org_pk)
        return self._session.scalars(stmt).one_or_none()

    def by_org_id(self, org_id: str, for_update: bool = False) -> Org | None:
        """Return the org whose org_id is exactly *org_id* (case-sensitive), or ``None``."""
        stmt = select(Org).where(Org.tenant_id == self._tenant_id, Org.org_id == org_id)
        if for_update:
            stmt = stmt.with_for_update()
        return self._session.scalars(stmt).one_or_none()

    def by_group(self, group_id: uuid.UUID, for_update: bool = False) -> Org | None:
        """Return the org linked to group *group_id*, or ``None``."""
        stmt = select(Org).where(Org.tenant_id == self._tenant_id, Org.group_id == group_id)
        if for_update:
            stmt = stmt.with_for_update()
        return self._session.scalars(stmt).one_or_none()

    def by_groups(self, group_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Org]:
        """Return the orgs linked to several groups, in one query."""
        if not group_ids:
            return {}
        found: dict[uuid.UUID, Org] = {}
        for batch in chunked(group_ids):
            stmt = select(Org).where(Org.tenant_id == self._tenant_id, Org.group_id.in_(batch))
            found.update({org.group_id: org for org in self._session.scalars(stmt) if org.group_id is not None})
        return found

    def all(self) -> list[Org]:
        """Return every org of the tenant, by org_id."""
        return list(self._session.scalars(select(Org).where(Org.tenant_id == self._tenant_id)
                                          .order_by(Org.org_id)))

    def all_groups(self) -> list[Group]:
        """Return every group of the tenant (admin resync only)."""
        return list(self._session.scalars(select(Group).where(Group.tenant_id == self._tenant_id)
                                          .order_by(Group.created, Group.id)))

    def all_user_ids(self) -> list[uuid.UUID]:
        """Return the id of every user of the tenant (admin resync only)."""
        return list(self._session.scalars(select(User.id).where(User.tenant_id == self._tenant_id)
                                          .order_by(User.created, User.id)))

    def group_names(self, group_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        """Return the displayName of several groups."""
        if not group_ids:
            return {}
        stmt = select(Group.id, Group.display_name).where(unindexed(Group.tenant_id) == self._tenant_id,
                                                         Group.id.in_(list(group_ids)))
        return {gid: name for gid, name in self._session.execute(stmt)}

    def add(self, org: Org) -> None:
        """Stage a new org."""
        self._session.add(org)

    def delete(self, org: Org) -> None:
        """Delete *org*; its memberships go with it, users' primary org is unset."""
        self._session.execute(delete(OrgMembership).where(OrgMembership.org_pk == org.id))
        self._session.delete(org)

    def member_user_ids(self, org_pk: uuid.UUID) -> list[uuid.UUID]:
        """Return the users with any membership of the org (admin operations only)."""
        stmt = select(OrgMembership.user_id).where(OrgMembership.org_pk == org_pk).distinct()
        return list(self._session.scalars(stmt))

    def users_with_primary(self, org_pk: uuid.UUID) -> list[uuid.UUID]:
        """Return the users whose primary org is *org_pk*."""
        stmt = select(UserOrgState.user_id).where(UserOrgState.primary_org_pk == org_pk)
        return list(self._session.scalars(stmt))

    # -- nesting walks -----------------------------------------------------------------------------

    def groups_above_users(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[GroupInfo]]:
        """Return, per user, every group the user is in directly or through nested groups.

        A recursive CTE walks upward from the users' own memberships; its cost is the number of
        groups above these users, whatever the size of those groups.
        """
        result: dict[uuid.UUID, list[GroupInfo]] = defaultdict(list)
        for batch in chunked(dict.fromkeys(user_ids)):
            for row in self._session.execute(_GROUPS_ABOVE_USERS, {"tenant_id": self._tenant_id, "ids": batch}):
                result[row[0]].append(_info(row[1:]))
        return result

    def group_shared_with_groups_above(self, group_id: uuid.UUID) -> tuple[Group | None, list[GroupInfo]]:
        """Return the group with :meth:`groups_above_group` of it, in one statement (what a one-member
        PATCH reads first), the group locked ``FOR KEY SHARE`` until commit.

        The lock keeps the group from being deleted, or locked ``FOR UPDATE``, meanwhile, while other
        writers holding the same lock go on; one that then changes the group does it with
        ``GroupRepository.bump``, which takes the write lock then (see ``GroupService.patch``).
        """
        group: Group | None = None
        above: list[GroupInfo] = []
        for row in self._session.execute(_GROUP_SHARED_WITH_ABOVE, {"tenant_id": self._tenant_id, "id": group_id,
                                                                    "group_id": group_id}):
            group = row[0]
            if row[1] is not None:
                above.append(_info(row[2:]))
        return group, above

    def groups_above_group(self, group_id: uuid.UUID) -> list[GroupInfo]:
        """Return the group itself and every group that contains it, directly or transitively."""
        rows = self._session.execute(_GROUPS_ABOVE_GROUP, {"tenant_id": self._tenant_id, "group_id": group_id})
        return [_info(row[1:]) for row in rows]

    def users_below_groups(self, group_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Return the users inside *group_ids*, directly or through nested groups (walking down)."""
        found: set[uuid.UUID] = set()
        for batch in chunked(dict.fromkeys(group_ids)):
            rows = self._session.scalars(_USERS_BELOW_GROUPS, {"tenant_id": self._tenant_id, "ids": batch})
            found.update(uid for uid in rows if uid is not None)
        return found

    def reaches(self, start_group_ids: Sequence[uuid.UUID], target: uuid.UUID) -> bool:
        """Tell whether *target* is one of *start_group_ids* or nested (transitively) inside one."""
        for batch in chunked(dict.fromkeys(start_group_ids)):
            params = {"tenant_id": self._tenant_id, "ids": batch, "target": target}
            if self._session.scalar(_REACHES, params) is not None:
                return True
        return False

    # -- memberships and state ---------------------------------------------------------------------

    def memberships_of(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[MembershipRow]]:
        """Return every org membership (any source) of several users, with org_id and name."""
        result: dict[uuid.UUID, list[MembershipRow]] = defaultdict(list)
        for batch in chunked(dict.fromkeys(user_ids)):
            for row in self._session.execute(_MEMBERSHIPS_OF, {"tenant_id": self._tenant_id, "ids": batch}):
                result[row[1]].append(MembershipRow(*row))
        return result

    def add_memberships(self, rows: Sequence[tuple[uuid.UUID, uuid.UUID, str]]) -> None:
        """Insert memberships ``(user_id, org_pk, source)`` in one statement."""
        if not rows:
            return
        now = utcnow()
        self._session.execute(_ADD_MEMBERSHIPS, [
            {"tenant_id": self._tenant_id, "user_id": user_id, "org_pk": org_pk, "source": source, "created": now}
            for user_id, org_pk, source in rows])

    def remove_memberships(self, ids: Sequence[int]) -> None:
        """Delete memberships by id."""
        for batch in chunked(dict.fromkeys(ids)):
            self._session.execute(_REMOVE_MEMBERSHIPS, {"ids": batch})

    def remove_user_memberships(self, user_id: uuid.UUID) -> None:
        """Delete every membership of one user."""
        self._session.execute(delete(OrgMembership).where(OrgMembership.user_id == user_id))

    def states(self, user_ids: Sequence[uuid.UUID], for_update: bool = False) -> dict[uuid.UUID, UserOrgState]:
        """Return the resolved state rows of several users, in one query per 1,000.

        *for_update* locks them (PostgreSQL) in user id order, so concurrent recomputations of the
        same users queue instead of deadlocking, and each sees what the other committed.
        """
        found: dict[uuid.UUID, UserOrgState] = {}
        stmt = _STATES_FOR_UPDATE if for_update else _STATES
        for batch in chunked(sorted(set(user_ids))):
            found.update({state.user_id: state
                          for state in self._session.scalars(stmt, {"tenant_id": self._tenant_id, "ids": batch})})
        return found

    def add_state(self, state: UserOrgState) -> None:
        """Stage a new state row."""
        self._session.add(state)

    def bind_state(self, row: dict[str, Any]) -> BoundRows:
        """Build the INSERT of a new state row (column key → value) without sending it (see :meth:`insert_state`)."""
        return _INSERT_STATE.bind(self._session.get_bind().dialect, [row])

    def insert_state(self, row: BoundRows) -> None:
        """Insert a state row bound by :meth:`bind_state` with one plain INSERT now.

        For a user just inserted the same way (a single create): the ORM's flush of one new row
        cost a quarter of the time a create holds the write lock.
        """
        _INSERT_STATE.send(self._session, row)

    def views_of(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, UserOrgView]:
        """Return the SCIM extension view of several users in one query (state + memberships + orgs)."""
        rows: dict[uuid.UUID, tuple[str | None, bool, uuid.UUID | None, dict[uuid.UUID, str]]] = {}
        if not user_ids:
            return {}
        membership = aliased(OrgMembership)
        org = aliased(Org)
        stmt = (select(UserOrgState.user_id, UserOrgState.role, UserOrgState.primary_org_conflict,
                       UserOrgState.primary_org_pk, org.id, org.org_id)
                .outerjoin(membership, membership.user_id == UserOrgState.user_id)
                .outerjoin(org, org.id == membership.org_pk)
                .where(UserOrgState.tenant_id == self._tenant_id, UserOrgState.user_id.in_(list(user_ids))))
        for user_id, role, conflict, primary, org_pk, org_id in self._session.execute(stmt):
            entry = rows.setdefault(user_id, (role, bool(conflict), primary, {}))
            if org_pk is not None:
                entry[3][org_pk] = org_id
        views: dict[uuid.UUID, UserOrgView] = {}
        for user_id, (role, conflict, primary, orgs) in rows.items():
            views[user_id] = UserOrgView(orgs.get(primary) if primary is not None else None,
                                         tuple(sorted(set(orgs.values()))), role, conflict)
        return views

    # -- events ------------------------------------------------------------------------------------

    def lock_tenant(self) -> None:
        """Serialise event appends of this tenant until commit (PostgreSQL; SQLite locks the database).

        ``FOR NO KEY UPDATE`` does not block the foreign-key checks of concurrent inserts, only other
        appenders, so event ids commit in id order and the cursor is safe to poll.
        """
        if dialect_name(self._session) == "sqlite":
            return  # the write transaction (BEGIN IMMEDIATE) already holds the database's write lock
        _LOCK_TENANT.run(self._session, {"tenant_id": self._tenant_id})

    def append_events(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert event rows in one statement (the tenant's append lock already held: :meth:`lock_tenant`)."""
        # The table, not the entity: a plain INSERT, without the ORM's bulk-insert machinery.
        _INSERT_EVENTS.run(self._session, [{"tenant_id": self._tenant_id, **row} for row in rows])

    def lock_and_append_events(self, rows: Sequence[dict[str, Any]]) -> None:
        """Take the tenant's append lock (:meth:`lock_tenant`) and insert event rows after it.

        On PostgreSQL a single event (most writes append one) goes in the same statement as the
        lock: ``WITH tenant_lock AS (SELECT … FOR NO KEY UPDATE) INSERT … SELECT … FROM
        tenant_lock``. Its id is drawn when the row is built, after the lock row was returned, so
        ids still commit in id order; the lock is then held for one round trip fewer (the INSERT
        and the COMMIT instead of the lock, the INSERT and the COMMIT).
        """
        if len(rows) != 1 or dialect_name(self._session) == "sqlite":
            self.lock_tenant()
            self.append_events(rows)
            return
        if _INSERT_EVENT_LOCKING.run(self._session, [{"tenant_id": self._tenant_id, **rows[0]}]) != 1:
            # The tenant row is gone (the FK would have refused the plain INSERT): never lose an event quietly.
            raise LookupError(f"tenant {self._tenant_id} not found: its change event was not written")

    def events_after(self, cursor: int, limit: int) -> list[ChangeEvent]:
        """Return up to *limit* events with an id above *cursor*, oldest first."""
        stmt = (select(ChangeEvent).where(ChangeEvent.tenant_id == self._tenant_id, ChangeEvent.id > cursor)
                .order_by(ChangeEvent.id).limit(limit))
        return list(self._session.scalars(stmt))


_INSERT_STATE = PreparedInsert(UserOrgState.__table__)
_INSERT_EVENTS = PreparedInsert(ChangeEvent.__table__)

# The org sync's statements, built once: building them per call (aliases, recursive CTEs and their
# column proxies) cost about half of a group PATCH's CPU. Lists of ids are expanding parameters.
_TENANT = bindparam("tenant_id")
_IDS = bindparam("ids", expanding=True)


def _group_info(walk: CTE, first: Any) -> Select[Any]:
    return (
        select(first, Group.id, Group.display_name, Group.external_id, Org.id, Org.org_id, Org.name, Org.orphaned)
        .select_from(walk)
        .join(Group, Group.id == walk.c.group_id)
        .outerjoin(Org, Org.group_id == Group.id)
        .where(Group.tenant_id == _TENANT)
    )


def _groups_above_users() -> Select[Any]:
    start = select(GroupMember.user_id.label("user_id"), GroupMember.group_id.label("group_id")).where(
        unindexed(GroupMember.tenant_id) == _TENANT, GroupMember.user_id.in_(_IDS))
    up = start.cte("up", recursive=True)
    parent = aliased(GroupMember)
    up = up.union(select(up.c.user_id, parent.group_id).select_from(up)
                  .join(parent, parent.member_group_id == up.c.group_id))
    return _group_info(up, up.c.user_id)


def _groups_above_group() -> Select[Any]:
    start = select(Group.id.label("group_id")).where(Group.tenant_id == _TENANT, Group.id == bindparam("group_id"))
    up = start.cte("up_group", recursive=True)
    parent = aliased(GroupMember)
    up = up.union(select(parent.group_id).select_from(up).join(parent, parent.member_group_id == up.c.group_id))
    return _group_info(up, up.c.group_id)


def _down() -> CTE:
    """The groups ``ids`` and every group nested in them, transitively (a recursive CTE)."""
    start = select(Group.id.label("group_id")).where(unindexed(Group.tenant_id) == _TENANT, Group.id.in_(_IDS))
    down = start.cte("down", recursive=True)
    child = aliased(GroupMember)
    return down.union(select(child.member_group_id).select_from(down).join(child, child.group_id == down.c.group_id)
                      .where(child.member_group_id.is_not(None)))


def _users_below_groups() -> Select[Any]:
    down = _down()
    return (select(GroupMember.user_id).join(down, GroupMember.group_id == down.c.group_id)
            .where(GroupMember.user_id.is_not(None)).distinct())


def _reaches() -> Select[Any]:
    down = _down()
    return select(down.c.group_id).where(down.c.group_id == bindparam("target")).limit(1)


_GROUPS_ABOVE_USERS = _groups_above_users()
_GROUPS_ABOVE_GROUP = _groups_above_group()
_USERS_BELOW_GROUPS = _users_below_groups()
_ABOVE = _GROUPS_ABOVE_GROUP.subquery("above")
# The group (locked; only its own row: OF groups) and one row per group above it, itself included.
_GROUP_SHARED_WITH_ABOVE = (
    select(Group, *_ABOVE.c).outerjoin(_ABOVE, true())
    .where(Group.tenant_id == _TENANT, Group.id == bindparam("id"))
    .with_for_update(read=True, key_share=True, of=Group))
_REACHES = _reaches()
_MEMBERSHIPS_OF = (select(OrgMembership.id, OrgMembership.user_id, OrgMembership.org_pk, OrgMembership.source,
                          Org.org_id, Org.name)
                   .join(Org, Org.id == OrgMembership.org_pk)
                   .where(OrgMembership.tenant_id == _TENANT, OrgMembership.user_id.in_(_IDS)))
_STATES = select(UserOrgState).where(UserOrgState.tenant_id == _TENANT, UserOrgState.user_id.in_(_IDS))
# populate_existing: rows already in the session are refreshed with what the lock saw.
_STATES_FOR_UPDATE = (_STATES.order_by(UserOrgState.user_id).with_for_update()
                      .execution_options(populate_existing=True))
# Plain statements on the table: memberships are never loaded as ORM objects to keep in sync.
_ADD_MEMBERSHIPS = insert(OrgMembership.__table__)
_REMOVE_MEMBERSHIPS = delete(OrgMembership.__table__).where(OrgMembership.__table__.c.id.in_(_IDS))

# Built once: every write that appends events runs it.
_LOCK_TENANT = PreparedCommand(select(Tenant.id).where(Tenant.id == bindparam("tenant_id"))
                               .with_for_update(key_share=True))


def _event_insert_locking() -> Insert:
    """Return the INSERT of one event that takes the tenant's append lock first (PostgreSQL).

    See :meth:`OrgRepository.lock_and_append_events`.
    """
    table = ChangeEvent.__table__
    locked = (select(Tenant.id.label("tenant_id")).where(Tenant.id == bindparam("tenant_id"))
              .with_for_update(key_share=True).cte("tenant_lock"))
    columns = [column for column in table.columns if column is not table.autoincrement_column]
    values = [locked.c.tenant_id if column.key == "tenant_id" else bindparam(column.key, type_=column.type)
              for column in columns]
    return insert(table).from_select([column.key for column in columns], select(*values).select_from(locked))


_INSERT_EVENT_LOCKING = PreparedInsert(ChangeEvent.__table__, _event_insert_locking())


def _info(row: Sequence[Any]) -> GroupInfo:
    group_id, display_name, external_id, org_pk, org_id, org_name, orphaned = row
    return GroupInfo(group_id, display_name, external_id, org_pk, org_id, org_name, bool(orphaned))
