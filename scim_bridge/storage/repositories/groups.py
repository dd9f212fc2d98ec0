"""Queries over groups and their members. Membership changes cost O(changed members)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence

from sqlalchemy import ColumnElement
from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from scim_bridge.storage.base import utcnow
from scim_bridge.storage.models import Group
from scim_bridge.storage.models import GroupMember
from scim_bridge.storage.models import User
from scim_bridge.storage.repositories.common import chunked
from scim_bridge.storage.repositories.common import insert_ignoring_conflicts
from scim_bridge.storage.scim_sql import MEMBER_GROUP
from scim_bridge.storage.session import ensure_transaction


class GroupRepository:
    """Tenant-scoped access to groups and memberships."""

    def __init__(self, session: Session, tenant_id: uuid.UUID) -> None:
        self._session = session
        self._tenant_id = tenant_id

    def get(self, group_id: uuid.UUID) -> Group | None:
        """Return the group *group_id* of this tenant, or ``None``."""
        stmt = select(Group).where(Group.tenant_id == self._tenant_id, Group.id == group_id)
        return self._session.scalars(stmt).one_or_none()

    def get_for_update(self, group_id: uuid.UUID) -> Group | None:
        """Return the group, row-locked until commit on PostgreSQL (SQLite locks the database)."""
        stmt = select(Group).where(Group.tenant_id == self._tenant_id, Group.id == group_id).with_for_update()
        return self._session.scalars(stmt).one_or_none()

    def id_by_display_name(self, display_name: str) -> uuid.UUID | None:
        """Return the id of the group whose displayName matches case-insensitively."""
        stmt = select(Group.id).where(Group.tenant_id == self._tenant_id,
                                      Group.display_name_key == display_name.lower())
        return self._session.scalars(stmt).one_or_none()

    def id_by_external_id(self, external_id: str) -> uuid.UUID | None:
        """Return the id of the group with this externalId (caseExact)."""
        stmt = select(Group.id).where(Group.tenant_id == self._tenant_id, Group.external_id == external_id)
        return self._session.scalars(stmt).one_or_none()

    def existing_ids(self, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Return which of *ids* are groups of this tenant."""
        found: set[uuid.UUID] = set()
        for batch in chunked(dict.fromkeys(ids)):
            stmt = select(Group.id).where(Group.tenant_id == self._tenant_id, Group.id.in_(batch))
            found.update(self._session.scalars(stmt))
        return found

    def count(self, where: ColumnElement[bool] | None) -> int:
        """Count the tenant's groups matching *where*."""
        stmt = select(func.count()).select_from(Group).where(Group.tenant_id == self._tenant_id)
        if where is not None:
            stmt = stmt.where(where)
        return int(self._session.scalar(stmt) or 0)

    def page(self, where: ColumnElement[bool] | None, order_by: Sequence[ColumnElement[object]],
             offset: int, limit: int) -> list[Group]:
        """Return one page of the tenant's groups matching *where*."""
        stmt = select(Group).where(Group.tenant_id == self._tenant_id)
        if where is not None:
            stmt = stmt.where(where)
        stmt = stmt.order_by(*order_by).offset(offset).limit(limit)
        return list(self._session.scalars(stmt))

    def members_of(self, group_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[tuple[uuid.UUID, str, str | None]]]:
        """Return the members (id, type, display) of several groups in one query."""
        result: dict[uuid.UUID, list[tuple[uuid.UUID, str, str | None]]] = {gid: [] for gid in group_ids}
        for group_id, member_id, kind, display in self._member_rows(group_ids):
            result[group_id].append((member_id, kind, display))
        return result

    def iter_members(self, group_id: uuid.UUID) -> Iterator[tuple[uuid.UUID, str, str | None]]:
        """Yield the members of one group, streamed from one query."""
        for _group_id, member_id, kind, display in self._member_rows([group_id]):
            yield member_id, kind, display

    def _member_rows(self, group_ids: Sequence[uuid.UUID]) -> Iterator[tuple[uuid.UUID, uuid.UUID, str, str | None]]:
        if not group_ids:
            return
        stmt = (
            select(
                GroupMember.group_id,
                func.coalesce(GroupMember.user_id, GroupMember.member_group_id),
                case((GroupMember.user_id.is_not(None), "User"), else_="Group"),
                GroupMember.display,
            )
            # By group only: the ids come from tenant-scoped rows, and a tenant_id predicate here
            # makes SQLite (no statistics) scan every membership of the tenant instead of the group's.
            .where(GroupMember.group_id.in_(group_ids))
            .order_by(GroupMember.group_id, GroupMember.id)
        )
        ensure_transaction(self._session)  # PostgreSQL's server-side cursor needs one
        for row in self._session.execute(stmt.execution_options(yield_per=2000)):
            yield row[0], row[1], row[2], row[3]

    def add_members(self, group_id: uuid.UUID, user_ids: Sequence[uuid.UUID], group_ids: Sequence[uuid.UUID],
                    displays: Mapping[uuid.UUID, str] | None = None) -> int:
        """Add members, ignoring those already present; return how many were added."""
        now = utcnow()
        displays = displays or {}

        def rows(ids: Sequence[uuid.UUID], column: str) -> list[dict[str, object]]:
            return [{"tenant_id": self._tenant_id, "group_id": group_id, column: mid, "created": now,
                     "display": displays.get(mid)} for mid in dict.fromkeys(ids)]

        table = GroupMember.__table__
        added = insert_ignoring_conflicts(self._session, table, rows(user_ids, "user_id"),  # type: ignore[arg-type]
                                          ["group_id", "user_id"])
        added += insert_ignoring_conflicts(self._session, table,  # type: ignore[arg-type]
                                           rows(group_ids, "member_group_id"), ["group_id", "member_group_id"])
        return added

    def remove_members(self, group_id: uuid.UUID, member_ids: Sequence[uuid.UUID]) -> int:
        """Remove the given members (users or groups); return how many rows went."""
        removed = 0
        for batch in chunked(dict.fromkeys(member_ids)):
            stmt = delete(GroupMember).where(
                GroupMember.group_id == group_id,
                or_(GroupMember.user_id.in_(batch), GroupMember.member_group_id.in_(batch)),
            )
            removed += max(self._session.execute(stmt).rowcount or 0, 0)
        return removed

    def remove_all_members(self, group_id: uuid.UUID) -> int:
        """Remove every member of the group."""
        return max(self._session.execute(delete(GroupMember).where(GroupMember.group_id == group_id)).rowcount or 0, 0)

    def remove_members_where(self, group_id: uuid.UUID, where: ColumnElement[bool]) -> int:
        """Remove the members matching *where* (from ``scim_sql.compile_member_filter``), selected in SQL."""
        matching = (
            select(GroupMember.id)
            .outerjoin(User, User.id == GroupMember.user_id)
            .outerjoin(MEMBER_GROUP, MEMBER_GROUP.id == GroupMember.member_group_id)
            .where(GroupMember.group_id == group_id, where)
        )
        stmt = delete(GroupMember).where(GroupMember.id.in_(matching))
        return max(self._session.execute(stmt).rowcount or 0, 0)

    def member_ids(self, group_id: uuid.UUID) -> set[uuid.UUID]:
        """Return the ids of every member of the group (used only by full replacement)."""
        stmt = select(func.coalesce(GroupMember.user_id, GroupMember.member_group_id)).where(
            GroupMember.group_id == group_id)
        return set(self._session.scalars(stmt))

    def split_members(self, group_id: uuid.UUID, ids: Sequence[uuid.UUID] | None = None,
                      where: ColumnElement[bool] | None = None) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
        """Return the (user ids, group ids) among the group's members, narrowed to *ids* or *where*.

        With *ids* or *where* the cost is that of the matching rows (indexed); with neither, every member.
        """
        users: set[uuid.UUID] = set()
        groups: set[uuid.UUID] = set()
        base = (select(GroupMember.user_id, GroupMember.member_group_id)
                .outerjoin(User, User.id == GroupMember.user_id)
                .outerjoin(MEMBER_GROUP, MEMBER_GROUP.id == GroupMember.member_group_id)
                .where(GroupMember.group_id == group_id))
        if where is not None:
            base = base.where(where)
        statements = [base]
        if ids is not None:
            statements = [base.where(or_(GroupMember.user_id.in_(batch), GroupMember.member_group_id.in_(batch)))
                          for batch in chunked(dict.fromkeys(ids))]
        for stmt in statements:
            for user_id, member_group_id in self._session.execute(stmt):
                if user_id is not None:
                    users.add(user_id)
                elif member_group_id is not None:
                    groups.add(member_group_id)
        return users, groups

    def bump_version(self, group_id: uuid.UUID) -> None:
        """Increment the version atomically in SQL, so concurrent writers never lose an update."""
        self._session.execute(
            update(Group).where(Group.id == group_id)
            .values(version=Group.version + 1, last_modified=utcnow())
            .execution_options(synchronize_session=False)
        )

    def add(self, group: Group) -> None:
        """Stage a new group."""
        self._session.add(group)

    def delete(self, group: Group) -> None:
        """Delete *group* and every membership row that names it."""
        self._session.execute(delete(GroupMember).where(
            or_(GroupMember.group_id == group.id, GroupMember.member_group_id == group.id)))
        self._session.delete(group)
