"""Queries over users and their multi-valued attributes."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace
from typing import Any
from typing import NamedTuple

from sqlalchemy import ColumnElement
from sqlalchemy import Row
from sqlalchemy import Select
from sqlalchemy import Uuid
from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.orm import Session

from scim_bridge.storage.models import Group
from scim_bridge.storage.models import GroupMember
from scim_bridge.storage.models import User
from scim_bridge.storage.models import UserCount
from scim_bridge.storage.models import UserValue
from scim_bridge.storage.prepared import BoundRows
from scim_bridge.storage.prepared import Conflict
from scim_bridge.storage.prepared import PreparedInsert
from scim_bridge.storage.prepared import PreparedRead
from scim_bridge.storage.repositories.common import chunked
from scim_bridge.storage.repositories.common import dialect_name
from scim_bridge.storage.repositories.common import unindexed

_users = User.__table__
_values = UserValue.__table__
_members = GroupMember.__table__
_groups = Group.__table__

# The hot reads, built once: constructing a statement costs more than running it, and plain Core rows
# (attribute access by column name, like the mapped objects) skip the ORM's identity map. Rows read this
# way are views for rendering, never modified; writes load mapped objects.
_VALUES = (select(_values)
           # By user only: the ids come from tenant-scoped rows, and a tenant_id predicate here
           # makes SQLite (no statistics) walk the tenant's whole (tenant_id, ...) index instead.
           .where(_values.c.user_id.in_(bindparam("ids", expanding=True)))
           .order_by(_values.c.user_id, _values.c.attribute, _values.c.position))
_GROUPS_OF = (select(_members.c.user_id, _groups.c.id, _groups.c.display_name)
              .join_from(_members, _groups, _groups.c.id == _members.c.group_id)
              .where(_members.c.tenant_id == bindparam("tenant_id"),
                     _members.c.user_id.in_(bindparam("ids", expanding=True)))
              .order_by(_groups.c.display_name_key, _groups.c.id))


# The columns of a user_values row carried in the JSON of a combined read, in this order.
VALUE_FIELDS = ("attribute", "position", "value", "display", "type", "primary", "formatted", "street_address",
                "locality", "region", "postal_code", "country")


class ValueView(NamedTuple):
    """One ``user_values`` row read back from JSON (same field names as the table's columns)."""

    attribute: str
    position: int
    value: str | None
    display: str | None
    type: str | None
    primary: bool | None
    formatted: str | None
    street_address: str | None
    locality: str | None
    region: str | None
    postal_code: str | None
    country: str | None


@dataclass(frozen=True, slots=True)
class UserReadView:
    """A user row with its multi-valued attributes and direct groups, from one statement."""

    row: SimpleNamespace
    """The user's columns, by name (read-only)."""
    values: list[ValueView] | None
    """``None`` when they were not read (not projected)."""
    groups: list[tuple[uuid.UUID, str]] | None
    """(id, displayName) in displayName order; ``None`` when not read."""

    @property
    def id(self) -> uuid.UUID:
        """Return the user's id."""
        user_id: uuid.UUID = self.row.id
        return user_id

    @property
    def version(self) -> int:
        """Return the user's version (its ETag)."""
        version: int = self.row.version
        return version


def _json_list(raw: Any) -> list[Any]:
    """Decode an aggregated JSON array: text on SQLite, already decoded on PostgreSQL, NULL when empty."""
    if raw is None:
        return []
    return json.loads(raw) if isinstance(raw, str | bytes) else list(raw)


def _aggregate(dialect: str, *columns: ColumnElement[Any]) -> tuple[Any, Any]:
    """Return (aggregate, element) SQL functions building a JSON array of arrays on *dialect*."""
    if dialect == "postgresql":
        return func.json_agg, func.json_build_array(*columns)
    return func.json_group_array, func.json_array(*columns)


@lru_cache(maxsize=16)
def _read_statement(dialect: str, with_values: bool, with_groups: bool) -> Select[Any]:
    """The user columns plus, as JSON arrays, their values and groups: one statement, built once."""
    columns: list[Any] = [_users]
    if with_values:
        agg, element = _aggregate(dialect, *(_values.c[name] for name in VALUE_FIELDS))
        columns.append(select(agg(element)).where(_values.c.user_id == _users.c.id)
                       .scalar_subquery().label("values_json"))
    if with_groups:
        agg, element = _aggregate(dialect, _groups.c.id, _groups.c.display_name, _groups.c.display_name_key)
        columns.append(select(agg(element))
                       .select_from(_members.join(_groups, _groups.c.id == _members.c.group_id))
                       .where(_members.c.user_id == _users.c.id, _members.c.tenant_id == _users.c.tenant_id)
                       .scalar_subquery().label("groups_json"))
    return select(*columns)


@lru_cache(maxsize=16)
def _read_one_statement(dialect: str, with_values: bool, with_groups: bool) -> PreparedRead:
    return PreparedRead(_read_statement(dialect, with_values, with_groups).where(
        _users.c.tenant_id == bindparam("tenant_id"), _users.c.id == bindparam("id")))


@lru_cache(maxsize=16)
def _read_by_unique_statement(dialect: str, with_values: bool, with_groups: bool, column: str) -> PreparedRead:
    # On the (tenant_id, column) unique index.
    return PreparedRead(_read_statement(dialect, with_values, with_groups).where(
        _users.c.tenant_id == bindparam("tenant_id"), _users.c[column] == bindparam("key")))


UNIQUE_COLUMNS = ("user_name_key", "external_id")
"""The users' columns unique per tenant that keyed filters read by (``userName``, ``externalId``)."""


def build_statements(dialect: str) -> None:
    """Build the prepared reads of users for *dialect* that requests would otherwise build on first use."""
    for with_values in (False, True):
        for with_groups in (False, True):
            _read_one_statement(dialect, with_values, with_groups)
            for column in UNIQUE_COLUMNS:
                _read_by_unique_statement(dialect, with_values, with_groups, column)


def _read_view(fields: Mapping[str, Any], with_values: bool, with_groups: bool) -> UserReadView:
    values = groups = None
    if with_values:
        values = []
        for item in _json_list(fields["values_json"]):
            if item[5] is not None:  # primary: 0/1 in SQLite's JSON
                item[5] = bool(item[5])
            values.append(ValueView(*item))
        values.sort(key=_value_order)
    if with_groups:
        # (displayName key, id) as the list query orders them; the id's text sorts as the UUID does.
        found = sorted(_json_list(fields["groups_json"]), key=_group_order)
        groups = [(uuid.UUID(g[0]), g[1]) for g in found]
    # Attribute access on a plain namespace is several times cheaper than on a Row, and rendering
    # reads every column.
    return UserReadView(SimpleNamespace(**{name: fields[name] for name in _USER_COLUMNS}), values, groups)


def _value_order(value: ValueView) -> tuple[str, int]:
    return value.attribute, value.position


def _group_order(group: list[Any]) -> tuple[str, str]:
    return group[2], group[0]


_USER_COLUMNS = tuple(column.name for column in _users.columns)
_USER_ATTRIBUTE_COLUMNS = tuple((attr.key, attr.columns[0]) for attr in sa_inspect(User).column_attrs)
_INSERT_USER = PreparedInsert(_users)
_USER_IDS_IN = select(_users.c.id).where(unindexed(_users.c.tenant_id) == bindparam("tenant_id"),
                                         _users.c.id.in_(bindparam("ids", expanding=True)))
_INSERT_VALUES = PreparedInsert(UserValue.__table__)


Holder = tuple[uuid.UUID, str, str | None]
"""A user holding a unique value: (id, userName key, externalId)."""

# Statements of every write, built once (building and keying a statement costs about as much as
# running it): the parameters are bound per call.
_USER_FOR_UPDATE = (select(User).where(User.tenant_id == bindparam("tenant_id"), User.id == bindparam("id"))
                    .with_for_update())
# Prepared: a create on SQLite checks uniqueness before its write transaction, so the check reads
# on the request's lease (no ORM execution, no transaction for the write to commit first); inside
# a write (PUT, PATCH, Bulk) it runs in the transaction as before.
_HOLDERS_OF_NAME = PreparedRead(select(User.id, User.user_name_key, User.external_id).where(
    User.tenant_id == bindparam("tenant_id"), User.user_name_key == bindparam("key")))
_HOLDERS = PreparedRead(select(User.id, User.user_name_key, User.external_id).where(
    User.tenant_id == bindparam("tenant_id"),
    or_(User.user_name_key == bindparam("key"), User.external_id == bindparam("external_id"))))

_counts = UserCount.__table__
_COUNTED = PreparedRead(select(func.coalesce(func.sum(_counts.c.delta), 0), func.count())
                        .where(_counts.c.tenant_id == bindparam("tenant_id")))
FOLD_COUNTS_AFTER = 256
"""How many ``user_counts`` rows of a tenant a reader sums before folding them into one."""
# One statement: the rows it deletes are the rows it sums. Rows another fold has locked are skipped,
# not waited for: concurrent readers fold disjoint sets and never wait on each other (waiting
# DELETEs of the same rows deadlocked under load), and writers only write their own transaction's
# row, which no fold sees before it commits.
_FOLD_COUNTS = text(
    "WITH folded AS (DELETE FROM user_counts WHERE id IN "
    "(SELECT id FROM user_counts WHERE tenant_id = :tenant_id FOR UPDATE SKIP LOCKED) RETURNING delta) "
    "INSERT INTO user_counts (tenant_id, delta) SELECT :tenant_id, sum(delta) FROM folded HAVING count(*) > 0"
).bindparams(bindparam("tenant_id", type_=Uuid()))

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

    def read(self, user_id: uuid.UUID, *, with_values: bool, with_groups: bool) -> UserReadView | None:
        """Return the user *user_id* with its values and groups (as asked) in one statement, or ``None``."""
        prepared = _read_one_statement(dialect_name(self._session), with_values, with_groups)
        row = prepared.one_or_none(self._session, {"tenant_id": self._tenant_id, "id": user_id})
        return _read_view(prepared.mapping(row), with_values, with_groups) if row is not None else None

    def read_page(self, where: ColumnElement[bool] | None, order_by: Sequence[ColumnElement[object]],
                  offset: int, limit: int, *, with_values: bool, with_groups: bool) -> list[UserReadView]:
        """Return one page of the tenant's users matching *where*, each with its values and groups."""
        stmt = _read_statement(dialect_name(self._session), with_values, with_groups)
        return [_read_view(row._mapping, with_values, with_groups)
                for row in self.select_page(stmt, where, order_by, offset, limit, {})]

    def select_page(self, stmt: Select[Any], where: ColumnElement[bool] | None,
                    order_by: Sequence[ColumnElement[object]], offset: int, limit: int,
                    params: Mapping[str, Any]) -> Sequence[Row[Any]]:
        """Run *stmt* (a ``SELECT … FROM users``) over one page of the tenant's users matching *where*.

        :meth:`read_page` selects read views this way; ``domain.user_json`` users rendered as JSON.
        """
        stmt = stmt.where(_users.c.tenant_id == self._tenant_id)
        if where is not None:
            stmt = stmt.where(where)
        stmt = stmt.order_by(*order_by).offset(offset).limit(limit)
        return self._session.connection().execute(stmt, dict(params)).all()

    def prepared_rows(self, prepared: PreparedRead, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run *prepared*, a statement over the tenant's users, binding ``tenant_id`` to this tenant."""
        return prepared.all(self._session, {**params, "tenant_id": self._tenant_id})

    def read_by_unique(self, column: str, key: str, *, with_values: bool, with_groups: bool) -> list[UserReadView]:
        """Return the user (none or one) whose unique *column* (``user_name_key``, ``external_id``) is *key*."""
        prepared = _read_by_unique_statement(dialect_name(self._session), with_values, with_groups, column)
        row = prepared.one_or_none(self._session, {"tenant_id": self._tenant_id, "key": key})
        return [_read_view(prepared.mapping(row), with_values, with_groups)] if row is not None else []

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
        prepared = _HOLDERS_OF_NAME if external_id is None else _HOLDERS
        return [(row[0], row[1], row[2]) for row in prepared.all(self._session, params)]

    def holders_of_many(self, user_name_keys: Sequence[str], external_ids: Sequence[str]) -> list[Holder]:
        """Return the users holding any of these userName keys (lowered) or externalIds, in one query per 500."""
        found: dict[uuid.UUID, Holder] = {}
        # One query per kind, each on its unique (tenant_id, key) index: SQLite, without statistics,
        # ran "name IN (…) OR externalId IN (…)" as a walk over all the tenant's users, which made
        # seeding through /Bulk quadratic (2,300 users/s at 20,000 users, 500/s at 400,000).
        columns = (User.id, User.user_name_key, User.external_id)
        statements = [select(*columns).where(User.tenant_id == self._tenant_id, User.user_name_key.in_(batch))
                      for batch in chunked(dict.fromkeys(user_name_keys))]
        statements += [select(*columns).where(User.tenant_id == self._tenant_id, User.external_id.in_(batch))
                       for batch in chunked(dict.fromkeys(external_ids))]
        for stmt in statements:
            for row in self._session.execute(stmt):
                found[row[0]] = (row[0], row[1], row[2])
        return list(found.values())

    def existing_ids(self, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Return which of *ids* are users of this tenant."""
        found: set[uuid.UUID] = set()
        for batch in chunked(dict.fromkeys(ids)):
            found.update(self._session.scalars(_USER_IDS_IN, {"tenant_id": self._tenant_id, "ids": batch}))
        return found

    def count(self, where: ColumnElement[bool] | None) -> int:
        """Count the tenant's users matching *where* (all of them: from the counts the triggers keep)."""
        if where is None:
            return self.count_all()
        stmt = select(func.count()).select_from(User).where(User.tenant_id == self._tenant_id, where)
        return int(self._session.scalar(stmt) or 0)

    def count_all(self) -> int:
        """Return how many users the tenant has: the sum of its ``user_counts`` deltas (see :class:`UserCount`).

        Past :data:`FOLD_COUNTS_AFTER` rows (PostgreSQL appends one per writing statement), the
        rows are folded into one in a short transaction of its own, which waits on nothing.
        """
        found = _COUNTED.one_or_none(self._session, {"tenant_id": self._tenant_id})
        total, rows = found if found is not None else (0, 0)
        if rows > FOLD_COUNTS_AFTER and dialect_name(self._session) == "postgresql":
            engine = self._session.get_bind().engine
            with engine.execution_options(isolation_level="READ COMMITTED").begin() as connection:
                connection.execute(_FOLD_COUNTS, {"tenant_id": self._tenant_id})
        return int(total or 0)

    def values_of(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Row[Any]]]:
        """Return the multi-valued attribute rows of several users in one query (read-only rows)."""
        grouped: dict[uuid.UUID, list[Row[Any]]] = defaultdict(list)
        if not user_ids:
            return grouped
        for row in self._session.connection().execute(_VALUES, {"ids": list(user_ids)}):
            grouped[row.user_id].append(row)
        return grouped

    def groups_of(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[tuple[uuid.UUID, str]]]:
        """Return the direct groups (id, displayName) of several users in one query."""
        grouped: dict[uuid.UUID, list[tuple[uuid.UUID, str]]] = defaultdict(list)
        if not user_ids:
            return grouped
        params = {"tenant_id": self._tenant_id, "ids": list(user_ids)}
        for user_id, group_id, display in self._session.connection().execute(_GROUPS_OF, params):
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
        """Insert the rows of users already written, with one statement (ids are not read back).

        The rows stay out of the session: a create keeps them for its answer, Bulk never reads them again.
        """
        _INSERT_VALUES.run(self._session, [_value_row(row) for row in rows])

    def add(self, user: User) -> None:
        """Stage a new user."""
        self._session.add(user)

    def bind_new(self, user: User, values: list[UserValue]) -> NewUserRows:
        """Build the INSERTs of a new user and its values without sending them (see :meth:`insert_new`).

        Only the attributes that were set are sent (the others take their column defaults, as a
        flush would give them). *values* are given the user's id.
        """
        for row in values:
            row.user_id = user.id
        state = user.__dict__
        dialect = self._session.get_bind().dialect
        return NewUserRows(
            _INSERT_USER.bind(dialect, [{column.key: state[attr] for attr, column in _USER_ATTRIBUTE_COLUMNS
                                         if attr in state}]),
            _INSERT_VALUES.bind(dialect, [_value_row(row) for row in values]))

    def insert_new(self, rows: NewUserRows, *, conflict: Conflict | None = None) -> None:
        """Insert a new user bound by :meth:`bind_new` with one plain INSERT; the user stays out of the session.

        A taken userName or externalId (the unique constraints) raises ``IntegrityError``, or
        what *conflict* makes of it (also when the INSERT is queued and sent later).
        """
        _INSERT_USER.send(self._session, rows.user, conflict=conflict)

    def insert_new_values(self, rows: NewUserRows) -> None:
        """Insert the values bound by :meth:`bind_new` (after :meth:`insert_new`), with one statement."""
        _INSERT_VALUES.send(self._session, rows.values)

    def delete(self, user: User) -> None:
        """Delete *user*; memberships and values go with it (ON DELETE CASCADE)."""
        self._session.execute(delete(GroupMember).where(GroupMember.user_id == user.id))
        self._session.execute(delete(UserValue).where(UserValue.user_id == user.id))
        self._session.delete(user)


@dataclass(frozen=True, slots=True)
class NewUserRows:
    """The bound INSERTs of a new user and of its multi-valued rows (:meth:`UserRepository.bind_new`)."""

    user: BoundRows
    values: BoundRows


def _value_row(row: UserValue) -> dict[str, Any]:
    return {key: getattr(row, key) for key in _CONTENT + ("user_id",)}


def _content(row: UserValue) -> tuple[str, ...]:
    return tuple(repr(getattr(row, key)) for key in _CONTENT)
