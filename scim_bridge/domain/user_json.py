"""Users rendered as JSON by the database, for list pages with the default projection.

A list page of 100 users spent ~80 % of its time in Python building, projecting and encoding one
dict per user (~50-90 µs a user). Here the database renders each user's attributes, values,
groups and ``meta`` as JSON texts in the page's own statement, and :func:`compose` splices them
into the resource's text: no dict, UUID or datetime object is made per user.

The text parses to exactly what :func:`scim_bridge.domain.mapping.to_scim_user` followed by the
default projection makes (same keys in the same order, same values), which
``tests/functional/test_rendered_users.py`` checks on both databases. Only the default projection
is rendered this way: ``attributes``/``excludedAttributes`` trim sub-attributes, which text cannot.
The Infinity extension (org membership views) still comes from its own query and is encoded here.

Order inside a multi-valued attribute and of ``groups``: an aggregate ``ORDER BY`` on PostgreSQL;
SQLite 3.40 aggregates take no ``ORDER BY``, so they read their rows in order from an index
(values: ``GROUP BY`` over ``ix_user_values_user_order``) or from an ordered, LIMITed subquery
(groups), which ``tests/functional/test_rendered_users.py`` and ``test_query_plans.py`` check.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from functools import lru_cache
from typing import Any
from typing import NamedTuple

from sqlalchemy import ColumnElement
from sqlalchemy import Integer
from sqlalchemy import Select
from sqlalchemy import String
from sqlalchemy import bindparam
from sqlalchemy import case
from sqlalchemy import cast
from sqlalchemy import func
from sqlalchemy import literal_column
from sqlalchemy import null
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import type_coerce
from sqlalchemy.dialects.postgresql import aggregate_order_by

from scim_bridge.domain.mapping import ADDRESS_COLUMNS
from scim_bridge.domain.mapping import ENTERPRISE_COLUMNS
from scim_bridge.domain.mapping import MANAGER_COLUMNS
from scim_bridge.domain.mapping import MULTI_VALUED
from scim_bridge.domain.mapping import NAME_COLUMNS
from scim_bridge.domain.mapping import USER_COLUMNS
from scim_bridge.domain.mapping import VALUE_COLUMNS
from scim_bridge.domain.mapping import infinity_user
from scim_bridge.scim import schema as s
from scim_bridge.storage.models import Group
from scim_bridge.storage.models import GroupMember
from scim_bridge.storage.models import User
from scim_bridge.storage.models import UserValue
from scim_bridge.storage.prepared import PreparedRead
from scim_bridge.storage.repositories.orgs import UserOrgView
from scim_bridge.storage.scim_sql import order_by_clause
from scim_bridge.storage.scim_sql import uuid_text

_users = User.__table__
_values = UserValue.__table__
_members = GroupMember.__table__
_groups = Group.__table__

BASE_URL = "base_url"
"""The bind parameter carrying the SCIM base URL (``meta.location``, ``groups.$ref``)."""


def _lit(value: str, type_: Any = String) -> ColumnElement[Any]:
    """A constant written into the statement (not a bind parameter: the statement has ~70 of them)."""
    return literal_column("'" + value.replace("'", "''") + "'", type_)


class RenderedUser(NamedTuple):
    """The JSON pieces of one user, as the database rendered them (column order of :func:`columns`)."""

    id: str
    """The user's id, as text (no UUID object per user: the Infinity extension is asked for rarely)."""
    head: str
    """``{"id": …, "userName": …, …, "name": {…}}``: the core single-valued attributes."""
    values: str | None
    """``{"addresses": […], "emails": […], …}``: the multi-valued attributes present (``None`` on
    PostgreSQL and ``{}`` on SQLite when there are none)."""
    groups: str | None
    """The ``groups`` array, or ``None`` without memberships."""
    enterprise: str | None
    """The enterprise extension object, or ``None`` when it has no value."""
    iam_org_id: str | None
    meta: str
    version: int
    """For the ETag of a single read."""

    @property
    def key(self) -> uuid.UUID:
        """Return the user's id as a UUID (to look up its Infinity extension)."""
        return uuid.UUID(self.id)


class _Json:
    """The JSON functions of one database."""

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"

    def object(self, pairs: dict[str, Any]) -> ColumnElement[Any]:
        """A JSON object of *pairs*, its null members left out (recursively), in *pairs* order."""
        args: list[Any] = []
        for key, value in pairs.items():
            args += [_lit(key, String), value]
        if self.postgres:
            # json (not jsonb) keeps the key order; stripping also re-serializes it compactly.
            return func.json_strip_nulls(func.json_build_object(*args))
        # An RFC 7396 merge patch onto {} drops the members whose value is null.
        return func.json_patch(_lit("{}", String), func.json_object(*args))

    def when_any(self, columns: Sequence[Any], value: ColumnElement[Any]) -> ColumnElement[Any]:
        """*value* when one of *columns* is not NULL, else NULL (an object with no member is left out)."""
        chosen = case((or_(*(c.is_not(None) for c in columns)), value), else_=null())
        # SQLite: json() marks the CASE's text as JSON, so that an enclosing object nests it.
        return chosen if self.postgres else func.json(chosen)

    def boolean(self, column: Any) -> ColumnElement[Any]:
        """A boolean column as JSON true/false (SQLite stores 0/1); NULL stays NULL."""
        if self.postgres:
            return type_coerce(column, column.type)
        return func.json(case((column.is_(None), null()), (column == literal_column("1"), _lit("true")),
                              else_=_lit("false", String)))

    def text(self, expr: ColumnElement[Any]) -> ColumnElement[str]:
        """The JSON value as text (psycopg would decode a json column)."""
        return cast(expr, String) if self.postgres else type_coerce(expr, String)

    def timestamp(self, column: Any) -> ColumnElement[str]:
        """A UTC timestamp as ``datetime.isoformat()`` with ``Z``: microseconds only when not zero."""
        if self.postgres:
            utc = column.op("AT TIME ZONE")(_lit("UTC", String))
            whole = func.to_char(utc, _lit('YYYY-MM-DD"T"HH24:MI:SS', String))
            micros = cast(func.date_part(_lit("microseconds"), column), Integer) % literal_column("1000000")
            fraction = case((micros == literal_column("0"), _lit("")),
                            else_=func.to_char(utc, _lit(".US", String)))
            return whole + fraction + _lit("Z", String)
        # SQLAlchemy stores "YYYY-MM-DD HH:MM:SS.ffffff" (naive UTC) on SQLite; ".000000" can only be
        # the fraction, and isoformat() leaves a zero fraction out.
        shown = func.replace(type_coerce(column, String), _lit(".000000"), _lit(""))
        return func.replace(shown, _lit(" "), _lit("T")) + _lit("Z")

    def array(self, element: ColumnElement[Any], from_: Any, where: Sequence[ColumnElement[bool]],
              order_by: Sequence[Any]) -> ColumnElement[Any]:
        """The JSON array of *element* over the rows of *from_* matching *where*, in *order_by* order, or NULL."""
        if self.postgres:
            return (select(func.json_agg(aggregate_order_by(element, *order_by)))
                    .select_from(from_).where(*where).scalar_subquery())
        # SQLite 3.40 aggregates take no ORDER BY. A subquery with ORDER BY and LIMIT keeps its order
        # (the LIMIT makes it mean something) and runs as a co-routine that the aggregate reads row by
        # row; the parity tests check the order. (A window frame guarantees it too, at 1.4x the time.)
        ordered = (select(element.label("element")).select_from(from_).where(*where).correlate(_users)
                   .order_by(*order_by).limit(literal_column("-1")).subquery("ordered"))
        return select(func.json_group_array(func.json(ordered.c.element))).scalar_subquery()


def _values_object(j: _Json) -> ColumnElement[Any]:
    """``{"attribute": [element, …], …}`` of the user's multi-valued attributes, attributes by name."""
    v = _values.c
    address_columns = _returned(ADDRESS_COLUMNS, s.USER_SCHEMA, "addresses")
    # One element shape serves every other attribute: they must all return the same sub-attributes.
    plain_columns, = {tuple(_returned(VALUE_COLUMNS, s.USER_SCHEMA, attribute).items())
                      for attribute in MULTI_VALUED if attribute != "addresses"}
    address = j.object({attr: (j.boolean(v[col]) if col == "primary" else v[col])
                        for attr, col in address_columns.items()})
    plain = j.object({attr: (j.boolean(v[col]) if col == "primary" else v[col]) for attr, col in plain_columns})
    element = case((v.attribute == _lit("addresses", String), address), else_=plain)
    if j.postgres:
        per_attribute = (select(v.attribute.label("attribute"),
                                func.json_agg(aggregate_order_by(element, v.position)).label("elements"))
                         .where(v.user_id == _users.c.id)
                         .group_by(v.attribute)
                         .correlate(_users)
                         .subquery("per_attribute"))
        # json_object_agg(key, value ORDER BY key): aggregate_order_by takes one argument only.
        ordered_elements = per_attribute.c.elements.op("ORDER BY")(per_attribute.c.attribute)
        return select(func.json_object_agg(per_attribute.c.attribute, ordered_elements)).scalar_subquery()
    # The index (user_id, attribute, position) hands GROUP BY attribute the rows in that order with
    # no sort, so each group's aggregate reads its elements in position order (the parity tests check
    # it; test_query_plans checks the plan). A window function guarantees it too, at 2.7x the time.
    per_attribute = (select(v.attribute.label("attribute"),
                            func.json_group_array(func.json(element)).label("elements"))
                     .where(v.user_id == _users.c.id)
                     .group_by(v.attribute)
                     .correlate(_users)
                     .subquery("per_attribute"))
    return (select(func.json_group_object(per_attribute.c.attribute, func.json(per_attribute.c.elements)))
            .scalar_subquery())


def _groups_array(j: _Json, base_url: Any) -> ColumnElement[Any]:
    """The user's direct groups, by displayName then id (as the list query orders them)."""
    gid = uuid_text(_groups.c.id)
    element = (func.json_build_object if j.postgres else func.json_object)(
        _lit("value", String), gid,
        _lit("$ref", String), base_url + _lit("/Groups/", String) + gid,
        _lit("display", String), _groups.c.display_name,
        _lit("type", String), _lit("direct", String))
    return j.array(element, _members.join(_groups, _groups.c.id == _members.c.group_id),
                   (_members.c.user_id == _users.c.id, _members.c.tenant_id == _users.c.tenant_id),
                   (_groups.c.display_name_key, _groups.c.id))


def _returned(columns: dict[str, str], urn: str, parent: str | None = None) -> dict[str, str]:
    """Keep the attributes the default projection returns (not ``returned: never/request``), as it would.

    *columns* maps attribute names to columns: top-level attributes of schema *urn*, or the
    sub-attributes of its attribute *parent*. Names the schema does not declare are kept.
    """
    resource = s.USER_RESOURCE
    schema = resource.schema if urn == resource.schema.id else resource.extension(urn)
    assert schema is not None
    owner = schema.get(parent) if parent is not None else None
    kept = {}
    for name, column in columns.items():
        attr = owner.sub(name) if owner is not None else schema.get(name)
        if attr is None or attr.returned not in ("never", "request"):
            kept[name] = column
    return kept


@lru_cache(maxsize=4)
def columns(dialect: str) -> tuple[ColumnElement[Any], ...]:
    """The columns of :class:`RenderedUser` over ``users``, for *dialect*; bind ``base_url``."""
    j = _Json(dialect)
    u = _users.c
    base_url = bindparam(BASE_URL, type_=String())
    core = s.USER_SCHEMA
    name_columns = _returned(NAME_COLUMNS, core, "name")
    name = j.when_any([u[c] for c in name_columns.values()],
                      j.object({attr: u[c] for attr, c in name_columns.items()}))
    head = j.object({"id": uuid_text(u.id),
                     **{attr: (j.boolean(u[c]) if attr == "active" else u[c])
                        for attr, c in _returned(USER_COLUMNS, core).items()},
                     "name": name})
    # manager.displayName is returned on request only. (It is only ever set with manager.value.)
    manager_columns = _returned(MANAGER_COLUMNS, s.ENTERPRISE_USER_SCHEMA, "manager")
    manager = j.when_any([u[c] for c in manager_columns.values()],
                         j.object({attr: u[c] for attr, c in manager_columns.items()}))
    enterprise_plain = _returned(ENTERPRISE_COLUMNS, s.ENTERPRISE_USER_SCHEMA)
    enterprise_columns = [u[c] for c in (*enterprise_plain.values(), *manager_columns.values())]
    enterprise = j.when_any(enterprise_columns,
                            j.object({**{attr: u[c] for attr, c in enterprise_plain.items()}, "manager": manager}))
    meta = j.object({"resourceType": _lit("User", String),
                     "created": j.timestamp(u.created),
                     "lastModified": j.timestamp(u.last_modified),
                     "location": base_url + _lit("/Users/", String) + uuid_text(u.id),
                     "version": _lit('W/"', String) + cast(u.version, String) + _lit('"', String)})
    return (uuid_text(u.id).label("id"), j.text(head).label("head"), j.text(_values_object(j)).label("values_json"),
            j.text(_groups_array(j, base_url)).label("groups_json"), j.text(enterprise).label("enterprise"),
            u.iam_org_id, j.text(meta).label("meta"), u.version)


@lru_cache(maxsize=4)
def statement(dialect: str) -> Select[Any]:
    """``SELECT`` the :class:`RenderedUser` columns ``FROM users`` (add WHERE, ORDER BY, paging)."""
    return select(*columns(dialect))


@lru_cache(maxsize=4)
def one_user(dialect: str) -> PreparedRead:
    """The user ``id`` of tenant ``tenant_id``, compiled once (GET /Users/{id})."""
    return PreparedRead(statement(dialect).where(_users.c.tenant_id == bindparam("tenant_id"),
                                                 _users.c.id == bindparam("id")))


@lru_cache(maxsize=8)
def by_unique(dialect: str, column: str) -> PreparedRead:
    """The user of tenant ``tenant_id`` whose unique *column* is ``key``, compiled once (keyed filters)."""
    return PreparedRead(statement(dialect).where(_users.c.tenant_id == bindparam("tenant_id"),
                                                 _users.c[column] == bindparam("key")))


@lru_cache(maxsize=4)
def unfiltered_page(dialect: str) -> PreparedRead:
    """A page of the tenant's users in the default order (no filter, no ``sortBy``), compiled once.

    The page an IdP reads most (and the benchmark's); building, cache-keying and compiling the
    statement per request would cost ~0.5 ms. Bind ``tenant_id``, ``offset``, ``limit``, ``base_url``.
    """
    order = order_by_clause(s.USER_RESOURCE, None, descending=False)
    tenant = bindparam("tenant_id", type_=_users.c.tenant_id.type)
    return PreparedRead(statement(dialect).where(_users.c.tenant_id == tenant)
                        .order_by(*order)
                        .offset(bindparam("offset", type_=Integer()))
                        .limit(bindparam("limit", type_=Integer())))


_SCHEMAS = {(enterprise, infinity): json.dumps([s.USER_SCHEMA, *([s.ENTERPRISE_USER_SCHEMA] if enterprise else []),
                                                *([s.INFINITY_USER_SCHEMA] if infinity else [])])
            for enterprise in (False, True) for infinity in (False, True)}
_ENTERPRISE_KEY = json.dumps(s.ENTERPRISE_USER_SCHEMA)
_INFINITY_KEY = json.dumps(s.INFINITY_USER_SCHEMA)


def compose(user: RenderedUser, org: UserOrgView | None) -> str:
    """Return the user's resource text from its rendered pieces and its Infinity view."""
    infinity = infinity_user(org) if org is not None else {}
    if user.iam_org_id is not None:
        infinity = {"iamOrgId": user.iam_org_id, **infinity}
    parts = ['{"schemas":', _SCHEMAS[user.enterprise is not None, bool(infinity)], ",", user.head[1:-1]]
    if user.values is not None and user.values != "{}":  # SQLite aggregates no row to {}, PostgreSQL to NULL
        parts += [",", user.values[1:-1]]
    parts += [',"groups":', user.groups if user.groups is not None else "[]"]
    if user.enterprise is not None:
        parts += [",", _ENTERPRISE_KEY, ":", user.enterprise]
    if infinity:
        parts += [",", _INFINITY_KEY, ":", json.dumps(infinity, ensure_ascii=False, separators=(",", ":"))]
    parts += [',"meta":', user.meta, "}"]
    return "".join(parts)
