"""Queries over groups and their members. Membership changes cost O(changed members)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from functools import cache
from json.encoder import encode_basestring
from types import SimpleNamespace
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import Insert
from sqlalchemy import Select
from sqlalchemy import String
from sqlalchemy import bindparam
from sqlalchemy import case
from sqlalchemy import cast
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import type_coerce
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from scim_bridge.storage.base import utcnow
from scim_bridge.storage.engine import ensure_transaction
from scim_bridge.storage.models import Group
from scim_bridge.storage.models import GroupMember
from scim_bridge.storage.models import User
from scim_bridge.storage.prepared import PlannedRead
from scim_bridge.storage.prepared import PreparedRead
from scim_bridge.storage.repositories.common import chunked
from scim_bridge.storage.repositories.common import dialect_name
from scim_bridge.storage.repositories.common import ignoring_conflicts
from scim_bridge.storage.repositories.common import insert_ignoring_conflicts
from scim_bridge.storage.repositories.common import unindexed
from scim_bridge.storage.scim_sql import MEMBER_GROUP

# Built once (building a statement costs about as much as running it); parameters bound per call.
_GROUP_FOR_UPDATE = (select(Group).where(Group.tenant_id == bindparam("tenant_id"), Group.id == bindparam("id"))
                     .with_for_update())
_GROUPS = Group.__table__
# The version bump in one statement: the new version comes back with the row lock it takes.
_BUMP = (update(_GROUPS)
         .where(_GROUPS.c.tenant_id == bindparam("b_tenant_id"), _GROUPS.c.id == bindparam("b_id"))
         .values(version=_GROUPS.c.version + 1, last_modified=bindparam("b_now"))
         .returning(_GROUPS.c.version, _GROUPS.c.last_modified))
_MEMBERS = GroupMember.__table__
_MEMBER_IDS = bindparam("ids", expanding=True)
_GROUP_IDS_IN = select(Group.id).where(unindexed(Group.tenant_id) == bindparam("tenant_id"), Group.id.in_(_MEMBER_IDS))
# A plain DELETE of the table's rows (no ORM objects of memberships are ever loaded to keep in sync).
# Removals say who went (the org sync needs it) from the DELETE itself: RETURNING these.
_WENT = (_MEMBERS.c.user_id, _MEMBERS.c.member_group_id)
_REMOVE_MEMBERS = delete(_MEMBERS).where(
    _MEMBERS.c.group_id == bindparam("group_id"),
    or_(_MEMBERS.c.user_id.in_(_MEMBER_IDS), _MEMBERS.c.member_group_id.in_(_MEMBER_IDS))
).returning(*_WENT)
_REMOVE_ALL_MEMBERS = delete(_MEMBERS).where(_MEMBERS.c.group_id == bindparam("group_id")).returning(*_WENT)
# A user added by id in one statement: nothing is inserted unless the id is a user of the tenant.
_USERS = User.__table__
_USER_AS_MEMBER = (
    select(_USERS.c.tenant_id, bindparam("group_id", type_=_MEMBERS.c.group_id.type), _USERS.c.id,
           bindparam("display", type_=_MEMBERS.c.display.type), bindparam("created", type_=_MEMBERS.c.created.type))
    .where(_USERS.c.tenant_id == bindparam("tenant_id"), _USERS.c.id == bindparam("user_id")))
_MEMBERS_SPLIT = (select(GroupMember.user_id, GroupMember.member_group_id)
                  .outerjoin(User, User.id == GroupMember.user_id)
                  .outerjoin(MEMBER_GROUP, MEMBER_GROUP.id == GroupMember.member_group_id)
                  .where(GroupMember.group_id == bindparam("group_id")))
# What a GET reads: the group's columns (members come later, and only when projected).
_GROUP_ROW = PreparedRead(select(Group.__table__).where(Group.__table__.c.tenant_id == bindparam("tenant_id"),
                                                        Group.__table__.c.id == bindparam("id")))


class GroupRepository:
    """Tenant-scoped access to groups and memberships."""

    def __init__(self, session: Session, tenant_id: uuid.UUID) -> None:
        self._session = session
        self._tenant_id = tenant_id

    def read(self, group_id: uuid.UUID) -> SimpleNamespace | None:
        """Return the columns of the group *group_id* of this tenant by name (a read-only view), or ``None``."""
        rows = self.row_read(group_id).rows(self._session, self._tenant_id)
        return SimpleNamespace(**_GROUP_ROW.mapping(rows[0])) if rows else None

    @staticmethod
    def row_read(group_id: uuid.UUID) -> PlannedRead:
        """How :meth:`read` reads the group *group_id* (known before the tenant is, to be read along the token)."""
        return PlannedRead(_GROUP_ROW, {"id": group_id})

    def get_for_update(self, group_id: uuid.UUID) -> Group | None:
        """Return the group, row-locked until commit on PostgreSQL (SQLite locks the database).

        (A one-member PATCH reads it ``FOR KEY SHARE`` instead: ``OrgRepository.group_shared_with_groups_above``.)
        """
        return self._session.scalars(_GROUP_FOR_UPDATE, {"tenant_id": self._tenant_id, "id": group_id}).one_or_none()

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
            found.update(self._session.scalars(_GROUP_IDS_IN, {"tenant_id": self._tenant_id, "ids": batch}))
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

    def rendered_members(self, group_ids: Sequence[uuid.UUID], base_url: str) -> dict[uuid.UUID, list[str]]:
        """Return the members of several groups as JSON texts, in member order, without building dicts.

        Each text is byte for byte what ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))``
        makes of the member dict ``mapping.to_scim_group`` builds (``value``, ``$ref``, ``type``, then
        ``display`` when there is one). PostgreSQL renders them in SQL; on SQLite, whose string
        concatenation measured about twice as slow as Python's, they are formatted here from the raw
        columns. Either way no UUID object or dict is made per member (that cost ~25 µs a member).
        """
        result: dict[uuid.UUID, list[str]] = {gid: [] for gid in group_ids}
        if not group_ids:
            return result
        postgres = dialect_name(self._session) == "postgresql"
        # The base URL is escaped once, as json.dumps escapes it; ids and types need no escaping.
        ref = json.dumps(f"{base_url}/", ensure_ascii=False)[:-1]
        stmt = _rendered_members_pg(group_ids, ref) if postgres else _raw_members_sqlite(group_ids)
        by_text = {(str(gid) if postgres else gid.hex): result[gid] for gid in group_ids}
        # Core rows, no ORM row wrapping. No yield_per on PostgreSQL: its server-side cursor added
        # ~20 ms to every call, even for 1,000 members (measured); SQLite just fetches in batches.
        connection = self._session.connection()
        if postgres:
            for group_text, member in connection.execute(stmt):
                by_text[group_text].append(member)
        else:
            for group_hex, user_hex, group_member_hex, display in connection.execute(
                    stmt.execution_options(yield_per=5000)):
                by_text[group_hex].append(_member_json(ref, user_hex, group_member_hex, display))
        return result

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

    def add_user_member(self, group_id: uuid.UUID, user_id: uuid.UUID, display: str | None) -> bool:
        """Add the user *user_id* of this tenant to the group in one statement; ``False`` when nothing
        was added (already a member, or no such user: the caller looks further)."""
        return self._session.execute(_add_user_member(dialect_name(self._session)), {
            "tenant_id": self._tenant_id, "group_id": group_id, "user_id": user_id, "display": display,
            "created": utcnow()}).first() is not None

    def remove_members(self, group_id: uuid.UUID,
                       member_ids: Sequence[uuid.UUID]) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
        """Remove the given members (users or groups); return the (user ids, group ids) that went."""
        users: set[uuid.UUID] = set()
        groups: set[uuid.UUID] = set()
        for batch in chunked(dict.fromkeys(member_ids)):
            _split(self._session.execute(_REMOVE_MEMBERS, {"group_id": group_id, "ids": batch}), users, groups)
        return users, groups

    def remove_all_members(self, group_id: uuid.UUID) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
        """Remove every member of the group; return the (user ids, group ids) that went."""
        return _split(self._session.execute(_REMOVE_ALL_MEMBERS, {"group_id": group_id}), set(), set())

    def remove_members_where(self, group_id: uuid.UUID,
                             where: ColumnElement[bool]) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
        """Remove the members matching *where* (from ``scim_sql.compile_member_filter``), selected in SQL;
        return the (user ids, group ids) that went."""
        matching = _MEMBERS_SPLIT.with_only_columns(GroupMember.id).where(where)
        statement = delete(_MEMBERS).where(_MEMBERS.c.id.in_(matching)).returning(*_WENT)
        return _split(self._session.execute(statement, {"group_id": group_id}), set(), set())

    def member_ids(self, group_id: uuid.UUID) -> set[uuid.UUID]:
        """Return the ids of every member of the group (used only by full replacement)."""
        stmt = select(func.coalesce(GroupMember.user_id, GroupMember.member_group_id)).where(
            GroupMember.group_id == group_id)
        return set(self._session.scalars(stmt))

    def split_members(self, group_id: uuid.UUID) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
        """Return the (user ids, group ids) of every member of the group (for a full replacement).

        (Removals say who went from their DELETE: :meth:`remove_members` and the like.)
        """
        return _split(self._session.execute(_MEMBERS_SPLIT, {"group_id": group_id}), set(), set())

    def bump(self, group: Group) -> None:
        """Increment the version and set lastModified in SQL, and give *group* the values written.

        Atomic (``version = version + 1``): writers that read the group ``FOR KEY SHARE`` bump it
        one after another, each seeing the others' increments. The row lock this takes is held
        until commit: bump last.
        """
        version, last_modified = self._session.execute(
            _BUMP, {"b_tenant_id": self._tenant_id, "b_id": group.id, "b_now": utcnow()}).one()
        set_committed_value(group, "version", version)
        set_committed_value(group, "last_modified", last_modified)

    def add(self, group: Group) -> None:
        """Stage a new group."""
        self._session.add(group)

    def delete(self, group: Group) -> None:
        """Delete *group* and every membership row that names it."""
        self._session.execute(delete(GroupMember).where(
            or_(GroupMember.group_id == group.id, GroupMember.member_group_id == group.id)))
        self._session.delete(group)


@cache
def _add_user_member(dialect: str) -> Insert:
    """The one-statement add of a user by id (:meth:`GroupRepository.add_user_member`), built once per dialect."""
    return ignoring_conflicts(dialect, _MEMBERS, ("group_id", "user_id")).from_select(
        ["tenant_id", "group_id", "user_id", "display", "created"], _USER_AS_MEMBER)


def _split(rows: Any, users: set[uuid.UUID], groups: set[uuid.UUID]) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """Add (user id, member group id) *rows* to *users* and *groups*; return both."""
    for user_id, member_group_id in rows:
        if user_id is not None:
            users.add(user_id)
        elif member_group_id is not None:
            groups.add(member_group_id)
    return users, groups


def _rendered_members_pg(group_ids: Sequence[uuid.UUID], ref: str) -> Select[Any]:
    """Select (group id text, member JSON text) rendered by PostgreSQL, in member order."""
    member_id = cast(func.coalesce(GroupMember.user_id, GroupMember.member_group_id), String)  # uuid::text
    is_user = GroupMember.user_id.is_not(None)
    # to_json(text) escapes as json.dumps(ensure_ascii=False) does: " and \, \b \f \n \r \t, the other
    # control characters as lowercase \u00xx, and nothing else.
    display = case((GroupMember.display.is_(None), literal("", String)),
                   else_=literal(',"display":', String) + cast(func.to_json(GroupMember.display), String))
    rendered = (
        literal('{"value":"', String) + member_id + literal('","$ref":' + ref, String)
        + case((is_user, literal("Users/", String)), else_=literal("Groups/", String)) + member_id
        + case((is_user, literal('","type":"User"', String)), else_=literal('","type":"Group"', String))
        + display + literal("}", String)
    )
    return (select(cast(GroupMember.group_id, String), rendered)
            # By group only, as in _member_rows.
            .where(GroupMember.group_id.in_(group_ids))
            .order_by(GroupMember.group_id, GroupMember.id))


def _raw_members_sqlite(group_ids: Sequence[uuid.UUID]) -> Select[Any]:
    """Select the raw columns of the members, in member order (ids as SQLite stores them: 32 hex digits)."""
    return (select(type_coerce(GroupMember.group_id, String), type_coerce(GroupMember.user_id, String),
                   type_coerce(GroupMember.member_group_id, String), GroupMember.display)
            # By group only, as in _member_rows.
            .where(GroupMember.group_id.in_(group_ids))
            .order_by(GroupMember.group_id, GroupMember.id))


def _member_json(ref: str, user_hex: str | None, group_hex: str | None, display: str | None) -> str:
    """Format one member from SQLite's raw columns (see ``GroupRepository.rendered_members``)."""
    if user_hex is not None:
        mid = f"{user_hex[:8]}-{user_hex[8:12]}-{user_hex[12:16]}-{user_hex[16:20]}-{user_hex[20:]}"
        text = f'{{"value":"{mid}","$ref":{ref}Users/{mid}","type":"User"'
    else:
        assert group_hex is not None  # the one_member check constraint
        mid = f"{group_hex[:8]}-{group_hex[8:12]}-{group_hex[12:16]}-{group_hex[16:20]}-{group_hex[20:]}"
        text = f'{{"value":"{mid}","$ref":{ref}Groups/{mid}","type":"Group"'
    # encode_basestring is what json.dumps(ensure_ascii=False) uses for every str.
    return text + "}" if display is None else f'{text},"display":{encode_basestring(display)}}}'
