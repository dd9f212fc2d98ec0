"""Queries over users and their multi-valued attributes."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import ColumnElement
from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from scim_bridge.storage.models import Group
from scim_bridge.storage.models import GroupMember
from scim_bridge.storage.models import User
from scim_bridge.storage.models import UserValue
from scim_bridge.storage.repositories.common import chunked

Holder = tuple[uuid.UUID, str, str | None]
"""A user holding a unique value: (id, userName key, externalId)."""

# Statements of every write, built once (building and keying a statement costs about as much as
# running it): the parameters are bound per call.
_USER_FOR_UPDATE = (select(User).where(User.tenant_id == bindparam("tenant_id"), User.id == bindparam("id"))
                    .with_for_update())
_HOLDERS_OF_NAME = select(User.id, User.user_name_key, User.external_id).where(
    User.tenant_id == bindparam("tenant_id"), User.user_name_key == bindparam("key"))
_HOLDERS = select(User.id, User.user_name_key, User.external_id).where(
    User.tenant_id == bindparam("tenant_id"),
    or_(User.user_name_key == bindparam("key"), User.external_id == bindparam("external_id")))

_CONTENT = tuple(column.key for column in UserValue.__table__.columns if column.key not in ("id", "user_id"))
"""What a multi-valued attribute row says (everything but its identity and owner)."""


class UserRepository:
    """Tenant-scoped access to users."""

    def __init__(self, session: Session, tenant_id: uuid.UUID) -> None:
        self._session = session
        self._tenant_id = tenant_id

    def get(self, user_id: uuid.UUID) -> User | None:
        """Return the user *user_id* of this tenant, or ``None``."""
        stmt = select(User).where(User.tenant_id == self._tenant_id, User.id == user_id)
        return self._session.scalars(stmt).one_or_none()

    def get_for_update(self, user_id: uuid.UUID) -> User | None:
        """Return the user *user_id*, locked for the rest of the transaction on PostgreSQL."""
        return self._session.scalars(_USER_FOR_UPDATE, {"tenant_id": self._tenant_id, "id": user_id}).one_or_none()

    def id_by_user_name(self, user_name: str) -> uuid.UUID | None:
        """Return the id of the user whose userName matches case-insensitively."""
        stmt = select(User.id).where(User.tenant_id == self._tenant_id, User.user_name_key == user_name.lower())
        return self._session.scalars(stmt).one_or_none()

    def id_by_external_id(self, external_id: str) -> uuid.UUID | None:
        """Return the id of the user with this externalId (caseExact)."""
        stmt = select(User.id).where(User.tenant_id == self._tenant_id, User.external_id == external_id)
        return self._session.scalars(stmt).one_or_none()

    def holders_of(self, user_name: str, external_id: str | None) -> list[Holder]:
        """Return (id, userName key, externalId) of users holding this userName or externalId."""
        params = {"tenant_id": self._tenant_id, "key": user_name.lower(), "external_id": external_id}
        stmt = _HOLDERS_OF_NAME if external_id is None else _HOLDERS
        return [(row[0], row[1], row[2]) for row in self._session.execute(stmt, params)]

    def holders_of_many(self, user_name_keys: Sequence[str], external_ids: Sequence[str]) -> list[Holder]:
        """Return the users holding any of these userName keys (lowered) or externalIds, in one query per 500."""
        found: dict[uuid.UUID, Holder] = {}
        for names, externals in _pairs_of_chunks(list(user_name_keys), list(external_ids)):
            condition = or_(User.user_name_key.in_(names), User.external_id.in_(externals))
            stmt = select(User.id, User.user_name_key, User.external_id).where(User.tenant_id == self._tenant_id,
                                                                                 condition)
            for row in self._session.execute(stmt):
                found[row[0]] = (row[0], row[1], row[2])
        return list(found.values())

    def existing_ids(self, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Return which of *ids* are users of this tenant."""
        found: set[uuid.UUID] = set()
        for batch in chunked(dict.fromkeys(ids)):
            stmt = select(User.id).where(User.tenant_id == self._tenant_id, User.id.in_(batch))
            found.update(self._session.scalars(stmt))
        return found

    def count(self, where: ColumnElement[bool] | None) -> int:
        """Count the tenant's users matching *where*."""
        stmt = select(func.count()).select_from(User).where(User.tenant_id == self._tenant_id)
        if where is not None:
            stmt = stmt.where(where)
        return int(self._session.scalar(stmt) or 0)

    def page(self, where: ColumnElement[bool] | None, order_by: Sequence[ColumnElement[object]],
             offset: int, limit: int) -> list[User]:
        """Return one page of the tenant's users matching *where*."""
        stmt = select(User).where(User.tenant_id == self._tenant_id)
        if where is not None:
            stmt = stmt.where(where)
        stmt = stmt.order_by(*order_by).offset(offset).limit(limit)
        return list(self._session.scalars(stmt))

    def values_of(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[UserValue]]:
        """Return the multi-valued attribute rows of several users in one query."""
        grouped: dict[uuid.UUID, list[UserValue]] = defaultdict(list)
        if not user_ids:
            return grouped
        stmt = (select(UserValue)
                # By user only: the ids come from tenant-scoped rows, and a tenant_id predicate here
                # makes SQLite (no statistics) walk the tenant's whole (tenant_id, ...) index instead.
                .where(UserValue.user_id.in_(user_ids))
                .order_by(UserValue.user_id, UserValue.attribute, UserValue.position))
        for row in self._session.scalars(stmt):
            grouped[row.user_id].append(row)
        return grouped

    def groups_of(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[tuple[uuid.UUID, str]]]:
        """Return the direct groups (id, displayName) of several users in one query."""
        grouped: dict[uuid.UUID, list[tuple[uuid.UUID, str]]] = defaultdict(list)
        if not user_ids:
            return grouped
        stmt = (select(GroupMember.user_id, Group.id, Group.display_name)
                .join(Group, Group.id == GroupMember.group_id)
                .where(GroupMember.tenant_id == self._tenant_id, GroupMember.user_id.in_(user_ids))
                .order_by(Group.display_name_key, Group.id))
        for user_id, group_id, display in self._session.execute(stmt):
            grouped[user_id].append((group_id, display))
        return grouped

    def replace_values(self, user: User, rows: list[UserValue]) -> None:
        """Replace every multi-valued attribute row of *user* with *rows*."""
        self._session.execute(delete(UserValue).where(UserValue.user_id == user.id))
        self.add_values(user, rows)

    def replace_values_if_changed(self, user: User, current: list[UserValue], rows: list[UserValue]) -> list[UserValue]:
        """Replace the multi-valued rows of *user* (*current*, as read) by *rows* unless they say the same.

        Return the rows the user has afterwards: *current* when nothing changed (no statement), else *rows*.
        """
        if sorted(map(_content, current)) == sorted(map(_content, rows)):
            return current
        self.replace_values(user, rows)
        return rows

    def add_values(self, user: User, rows: list[UserValue]) -> None:
        """Stage the multi-valued attribute rows of a user that has none yet."""
        for row in rows:
            row.user_id = user.id
        self._session.add_all(rows)

    def insert_values(self, rows: list[UserValue]) -> None:
        """Insert the rows of users already flushed with one statement (ids are not read back).

        The rows stay out of the session: Bulk, which writes this way, never reads them again.
        """
        if rows:
            self._session.execute(insert(UserValue.__table__),
                                  [{key: getattr(row, key) for key in _CONTENT + ("user_id",)} for row in rows])

    def add(self, user: User) -> None:
        """Stage a new user."""
        self._session.add(user)

    def delete(self, user: User) -> None:
        """Delete *user*; memberships and values go with it (ON DELETE CASCADE)."""
        self._session.execute(delete(GroupMember).where(GroupMember.user_id == user.id))
        self._session.execute(delete(UserValue).where(UserValue.user_id == user.id))
        self._session.delete(user)


def _content(row: UserValue) -> tuple[str, ...]:
    return tuple(repr(getattr(row, key)) for key in _CONTENT)


def _pairs_of_chunks(first: list[str], second: list[str], size: int = 500) -> list[tuple[list[str], list[str]]]:
    """Split two lists into aligned chunks, so that one query never binds more than 2 x *size* values."""
    count = max(len(first), len(second), 1)
    return [(first[i:i + size], second[i:i + size]) for i in range(0, count, size)]
