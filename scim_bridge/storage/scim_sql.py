"""Compile SCIM filters (RFC 7644 §3.4.2.2) and ``sortBy`` (§3.4.2.3) to SQLAlchemy expressions.

This module is the only bridge between :mod:`scim_bridge.scim.filter.ast` and SQL. Everything is
evaluated by the database (SQLite and PostgreSQL alike); no row is ever loaded to be filtered in
Python. The returned expressions are meant for a ``select()`` whose FROM is the ``User`` or
``Group`` entity itself (not an alias): sub-queries correlate to it.

Semantics a caller can rely on:

* Attribute names resolve case-insensitively through :func:`scim_bridge.scim.schema.resolve`;
  an unknown attribute, a type mismatch or an unsupported operator raises ``InvalidFilter``
  (400 ``invalidFilter``, RFC 7644 §3.12).
* Every comparison is two-valued: a missing (NULL) attribute makes ``eq``/``co``/``gt``/... false,
  never SQL NULL, so ``not (title eq "a")`` matches users without a title (RFC 7644 §3.4.2.2: a
  comparison with an absent attribute is false, and ``not`` negates it).
* ``ne`` is ``not eq``: it matches resources where the attribute is absent. On a multi-valued
  attribute it means "no element equals" (``NOT EXISTS`` of an equal element).
* ``eq null`` is "not present" and ``ne null`` is "present", exactly as ``pr`` (NULL and, for
  strings, the empty string count as absent).
* ``id`` (and ``members.value`` / ``groups.value``): ``eq`` matches only the canonical
  ``8-4-4-4-12`` hex form, in any letter case; any other value matches nothing (``ne``: everything).
  ``co``/``sw``/``ew``/``gt``/... compare the lower-case hyphenated text form of the UUID.
* ``meta.version`` compares with the ETag text ``W/"<n>"`` (``eq``/``ne`` only);
  ``meta.resourceType`` is a constant; ``meta.location``, ``password``, ``groups.$ref`` and
  ``members.$ref`` (all derived or secret) cannot be filtered or sorted on.
* A complex attribute named without a sub-attribute compares its ``value`` sub-attribute
  (``emails co "x"``, ``manager eq "id"``); one without ``value`` (``name``, ``addresses``) is
  an error. ``attr[...]`` also works on a single-valued complex attribute (``name[...]``).
* ``groups`` of a user are its direct memberships (``type`` is always ``"direct"``).
* String ``gt``/``ge``/``lt``/``le`` and ``sortBy`` use code-point order on both databases
  (``COLLATE "C"`` on PostgreSQL), so they cannot use a locale-collated index there.
"""

from __future__ import annotations

import operator
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from typing import Protocol

from sqlalchemy import ColumnElement
from sqlalchemy import String
from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import false
from sqlalchemy import func
from sqlalchemy import inspect
from sqlalchemy import literal
from sqlalchemy import literal_column
from sqlalchemy import not_
from sqlalchemy import nulls_first
from sqlalchemy import nulls_last
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import FromClause
from sqlalchemy.sql.functions import FunctionElement

from scim_bridge.scim import schema
from scim_bridge.scim.errors import InvalidFilter
from scim_bridge.scim.errors import InvalidValue
from scim_bridge.scim.errors import ScimError
from scim_bridge.scim.filter.ast import COMPARE_OPERATORS
from scim_bridge.scim.filter.ast import And
from scim_bridge.scim.filter.ast import AttrPath
from scim_bridge.scim.filter.ast import Compare
from scim_bridge.scim.filter.ast import Filter
from scim_bridge.scim.filter.ast import Literal
from scim_bridge.scim.filter.ast import Not
from scim_bridge.scim.filter.ast import Or
from scim_bridge.scim.filter.ast import Present
from scim_bridge.scim.filter.ast import ValuePath
from scim_bridge.scim.filter.ast import parse_datetime
from scim_bridge.storage.models import Group
from scim_bridge.storage.models import GroupMember
from scim_bridge.storage.models import Org
from scim_bridge.storage.models import OrgMembership
from scim_bridge.storage.models import User
from scim_bridge.storage.models import UserOrgState
from scim_bridge.storage.models import UserValue

__all__ = ["MAX_LOGICAL_DEPTH", "MEMBER_GROUP", "compile_filter", "compile_member_filter", "order_by_clause"]

_STRING_TYPES = (schema.STRING, schema.REFERENCE, schema.BINARY)
_ORDERING = {"gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le}
_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_WEAK_ETAG = re.compile(r'W/"([0-9]{1,9})"')
_LIKE_ESCAPE = "/"


# -- the UUID text form, portably --------------------------------------------------------------


class _UuidText(FunctionElement[str]):
    """The canonical text form (lower-case, hyphenated) of a ``Uuid`` column, on every database."""

    type = String()
    name = "uuid_text"
    inherit_cache = True


@compiles(_UuidText)
def _uuid_text_native(element: _UuidText, compiler: SQLCompiler, **kw: Any) -> str:
    # PostgreSQL's uuid -> text cast yields exactly the canonical form.
    return f"CAST({compiler.process(element.clauses, **kw)} AS VARCHAR)"


@compiles(_UuidText, "sqlite")
def _uuid_text_sqlite(element: _UuidText, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLAlchemy stores a Uuid on SQLite as 32 lower-case hex digits without hyphens.
    hex_digits = compiler.process(element.clauses, **kw)
    parts = [f"substr({hex_digits}, {start}, {length})" for start, length in ((1, 8), (9, 4), (13, 4), (17, 4),
                                                                               (21, 12))]
    return "(" + " || '-' || ".join(parts) + ")"


def uuid_text(expr: Any) -> ColumnElement[str]:
    """Return the canonical text form (lower-case, hyphenated) of the ``Uuid`` expression *expr*."""
    return _UuidText(expr)


class _CodePointOrder(FunctionElement[str]):
    """A string expression that orders by Unicode code point, on every database.

    RFC 7644 §3.4.2.3 asks for "Unicode alphabetic sort order, with no specific locale implied";
    SQLite's default BINARY collation is exactly that, while PostgreSQL would otherwise use the
    database's locale (en_US sorts "ä" next to "a"). Used for gt/ge/lt/le and sortBy on strings.
    """

    type = String()
    name = "code_point_order"
    inherit_cache = True


@compiles(_CodePointOrder)
def _code_point_order_default(element: _CodePointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(_CodePointOrder, "postgresql")
def _code_point_order_postgresql(element: _CodePointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    # The "C" collation compares bytes, and UTF-8 byte order is code point order.
    return f'({compiler.process(element.clauses, **kw)}) COLLATE "C"'


# -- how attributes map onto columns ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Column:
    """Where a single value lives in SQL and how to compare it.

    ``key`` is a copy lower-cased in Python (``str.lower``) and indexed, used instead of
    ``lower(expr)`` when the attribute is caseExact=false. ``kind`` selects special handling:
    ``uuid`` (a Uuid column), ``version`` (the ETag), ``constant`` (``value`` is the only value),
    ``unfilterable`` (``value`` is the reason).
    """

    expr: Any
    key: Any = None
    kind: str = "plain"
    value: str | None = None
    nullable: bool | None = None  # None: ask the column; expressions (coalesce, case) must say


def _unfilterable(reason: str) -> _Column:
    return _Column(None, kind="unfilterable", value=reason)


@dataclass(frozen=True, slots=True)
class _Field:
    """A column together with the attribute definition it holds and its name for messages."""

    column: _Column
    definition: schema.Attribute
    label: str


@dataclass(frozen=True, slots=True)
class _Elements:
    """The rows that hold the elements of one multi-valued attribute, correlated to the resource."""

    source: FromClause
    where: tuple[ColumnElement[bool], ...]
    columns: dict[str, _Column]
    order: tuple[Any, ...]
    outer: Any

    def exists(self, condition: ColumnElement[bool] | None = None) -> ColumnElement[bool]:
        """Return ``EXISTS`` an element (satisfying *condition*, all on the same element row)."""
        conditions = [*self.where] if condition is None else [*self.where, condition]
        return select(literal_column("1")).select_from(self.source).where(*conditions).correlate(self.outer).exists()

    def first(self, expr: Any) -> Any:
        """Return *expr* of the primary element, else of the first one (RFC 7644 §3.4.2.3)."""
        stmt = select(expr).select_from(self.source).where(*self.where).order_by(*self.order).limit(1)
        return stmt.correlate(self.outer).scalar_subquery()


def _user_values(attribute: str) -> Callable[[], _Elements]:
    """Elements of a multi-valued User attribute stored in ``user_values`` (one row each)."""

    def build() -> _Elements:
        uv = aliased(UserValue)
        columns = {
            "value": _Column(uv.value, key=uv.value_key),
            "display": _Column(uv.display),
            "type": _Column(uv.type),
            "primary": _Column(uv.primary),
            "formatted": _Column(uv.formatted),
            "streetaddress": _Column(uv.street_address),
            "locality": _Column(uv.locality),
            "region": _Column(uv.region),
            "postalcode": _Column(uv.postal_code),
            "country": _Column(uv.country),
        }
        # tenant_id is redundant with user_id, but lets PostgreSQL use ix_user_values_lookup.
        where = (uv.user_id == User.id, uv.tenant_id == User.tenant_id, uv.attribute == attribute)
        # "The primary value, if any, or else the first" (RFC 7644 §3.4.2.3): primary rows first.
        return _Elements(_from(uv), where, columns, (uv.primary.desc(), uv.position, uv.id), User)

    return build


def _from(entity: Any) -> FromClause:
    """Return the selectable (aliased table) behind an aliased entity."""
    selectable: FromClause = inspect(entity).selectable
    return selectable


def _user_groups() -> _Elements:
    """Elements of ``groups`` on a User: its direct memberships."""
    gm = aliased(GroupMember)
    g = aliased(Group)
    columns = {
        "value": _Column(g.id, kind="uuid"),
        "display": _Column(g.display_name, key=g.display_name_key),
        "type": _Column(None, kind="constant", value="direct"),
        "$ref": _unfilterable("it is derived from the request URL; filter on groups.value instead"),
    }
    source = _from(gm).join(_from(g), g.id == gm.group_id)
    # "First" in the order the repository renders them: by displayName.
    return _Elements(source, (gm.user_id == User.id,), columns, (g.display_name_key, g.id), User)


def _member_columns(gm: Any) -> dict[str, _Column]:
    """Sub-attributes of one ``members`` element: a group_members row."""
    return {
        "value": _Column(func.coalesce(gm.user_id, gm.member_group_id), kind="uuid", nullable=False),
        # Stored as rendered (RFC 7643 §4.2: the client's display, kept), so it filters as shown.
        "display": _Column(gm.display),
        "type": _Column(case((gm.user_id.is_not(None), "User"), else_="Group"), nullable=False),
        "$ref": _unfilterable("it is derived from the request URL; filter on members.value instead"),
    }


def _group_members() -> _Elements:
    """Elements of ``members`` on a Group: users and groups, one ``group_members`` row each."""
    gm = aliased(GroupMember)
    # "First" in the order the repository renders them: insertion order.
    return _Elements(_from(gm), (gm.group_id == Group.id,), _member_columns(gm), (gm.id,), Group)


@dataclass(frozen=True, slots=True)
class _Mapping:
    """Everything the compiler needs to know about one resource type's tables."""

    columns: dict[tuple[str, str], _Column]
    multi: dict[str, Callable[[], _Elements]]
    tiebreak: tuple[Any, ...] = ()


def _meta(entity: Any, resource_type: str) -> dict[str, _Column]:
    return {
        "id": _Column(entity.id, kind="uuid"),
        "externalid": _Column(entity.external_id),
        "meta.created": _Column(entity.created),
        "meta.lastmodified": _Column(entity.last_modified),
        "meta.version": _Column(entity.version, kind="version"),
        "meta.resourcetype": _Column(None, kind="constant", value=resource_type),
        "meta.location": _unfilterable("it is derived from the request URL; filter on id instead"),
    }


_CORE_USER = schema.USER_SCHEMA.lower()
_ENTERPRISE = schema.ENTERPRISE_USER_SCHEMA.lower()
_CORE_GROUP = schema.GROUP_SCHEMA.lower()
_INFINITY_USER = schema.INFINITY_USER_SCHEMA.lower()
_INFINITY_GROUP = schema.INFINITY_GROUP_SCHEMA.lower()


def _user_state(column: Any) -> _Column:
    """A column of the user's resolved org state (``user_org_state``), correlated to the user."""
    return _Column(select(column).where(UserOrgState.user_id == User.id).correlate(User).scalar_subquery(),
                   nullable=True)


def _user_primary_org_id() -> _Column:
    """The org_id of the user's primary org (``urn:…:infinity:2.0:User:orgId``)."""
    stmt = (select(Org.org_id).join(UserOrgState, UserOrgState.primary_org_pk == Org.id)
            .where(UserOrgState.user_id == User.id).correlate(User))
    return _Column(stmt.scalar_subquery(), nullable=True)


def _user_org_ids() -> _Elements:
    """Elements of ``orgIds`` on a User: the org_id of each org membership (any source)."""
    membership = aliased(OrgMembership)
    org = aliased(Org)
    column = _Column(org.org_id)
    source = _from(membership).join(_from(org), org.id == membership.org_pk)
    return _Elements(source, (membership.user_id == User.id,), {"value": column, "orgids": column},
                     (org.org_id,), User)


def _group_org(column: Any) -> _Column:
    """A column of the org linked to the group, correlated to the group."""
    return _Column(select(column).where(Org.group_id == Group.id).correlate(Group).scalar_subquery(), nullable=True)

_USER = _Mapping(
    columns={
        **{(_CORE_USER, name): column for name, column in _meta(User, "User").items()},
        (_CORE_USER, "username"): _Column(User.user_name, key=User.user_name_key),
        (_CORE_USER, "displayname"): _Column(User.display_name),
        (_CORE_USER, "nickname"): _Column(User.nick_name),
        (_CORE_USER, "profileurl"): _Column(User.profile_url),
        (_CORE_USER, "title"): _Column(User.title),
        (_CORE_USER, "usertype"): _Column(User.user_type),
        (_CORE_USER, "preferredlanguage"): _Column(User.preferred_language),
        (_CORE_USER, "locale"): _Column(User.locale),
        (_CORE_USER, "timezone"): _Column(User.timezone),
        (_CORE_USER, "active"): _Column(User.active),
        (_CORE_USER, "password"): _unfilterable("it is write-only (returned=never)"),
        (_CORE_USER, "name.formatted"): _Column(User.name_formatted),
        (_CORE_USER, "name.familyname"): _Column(User.name_family_name),
        (_CORE_USER, "name.givenname"): _Column(User.name_given_name),
        (_CORE_USER, "name.middlename"): _Column(User.name_middle_name),
        (_CORE_USER, "name.honorificprefix"): _Column(User.name_honorific_prefix),
        (_CORE_USER, "name.honorificsuffix"): _Column(User.name_honorific_suffix),
        (_ENTERPRISE, "employeenumber"): _Column(User.employee_number),
        (_ENTERPRISE, "costcenter"): _Column(User.cost_center),
        (_ENTERPRISE, "organization"): _Column(User.organization),
        (_ENTERPRISE, "division"): _Column(User.division),
        (_ENTERPRISE, "department"): _Column(User.department),
        (_ENTERPRISE, "manager.value"): _Column(User.manager_value),
        (_ENTERPRISE, "manager.$ref"): _Column(User.manager_ref),
        (_ENTERPRISE, "manager.displayname"): _Column(User.manager_display_name),
        (_INFINITY_USER, "iamorgid"): _Column(User.iam_org_id),
        (_INFINITY_USER, "orgid"): _user_primary_org_id(),
        (_INFINITY_USER, "role"): _user_state(UserOrgState.role),
        (_INFINITY_USER, "primaryorgconflict"): _user_state(UserOrgState.primary_org_conflict),
    },
    multi={
        **{
            name.lower(): _user_values(name)
            for name in ("emails", "phoneNumbers", "ims", "photos", "addresses", "entitlements", "roles",
                         "x509Certificates")
        },
        "groups": _user_groups,
        "orgids": _user_org_ids,
    },
    tiebreak=(User.created, User.id),
)

_GROUP = _Mapping(
    columns={
        **{(_CORE_GROUP, name): column for name, column in _meta(Group, "Group").items()},
        (_CORE_GROUP, "displayname"): _Column(Group.display_name, key=Group.display_name_key),
        (_INFINITY_GROUP, "iamorgid"): _Column(Group.iam_org_id),
        (_INFINITY_GROUP, "orgid"): _group_org(Org.org_id),
        (_INFINITY_GROUP, "orgname"): _group_org(Org.name),
        (_INFINITY_GROUP, "managed"): _group_org(case((Org.source == "idp", True), else_=False)),
        (_INFINITY_GROUP, "orphaned"): _group_org(Org.orphaned),
    },
    multi={"members": _group_members},
    tiebreak=(Group.created, Group.id),
)

_MAPPINGS = {"User": _USER, "Group": _GROUP}


def _mapping(resource_type: schema.ResourceType) -> _Mapping:
    try:
        return _MAPPINGS[resource_type.id]
    except KeyError:
        raise ValueError(f"no SQL mapping for resource type {resource_type.id!r}") from None


# -- resolution: from an AttrPath to what it denotes ----------------------------------------------


@dataclass(frozen=True, slots=True)
class _Multi:
    """A multi-valued attribute, optionally narrowed to one sub-attribute (``emails.type``)."""

    definition: schema.Attribute
    sub: schema.Attribute | None
    elements: Callable[[], _Elements]
    label: str


@dataclass(frozen=True, slots=True)
class _Complex:
    """A single-valued complex attribute named without a sub-attribute (``name``, ``manager``)."""

    definition: schema.Attribute
    fields: tuple[_Field, ...]
    label: str

    def value_field(self) -> _Field | None:
        """Return the ``value`` sub-attribute, which stands for the attribute in comparisons."""
        return next((f for f in self.fields if f.definition.name == "value"), None)


_Target = _Field | _Multi | _Complex


class _Scope(Protocol):
    """Resolves the attribute paths of a filter, at the resource level or inside ``[...]``."""

    nested: bool

    def target(self, path: AttrPath) -> _Target:
        """Return what *path* denotes here (raise InvalidFilter if nothing)."""
        ...


class _ResourceScope:
    """Paths at the top level of a filter: ``[urn:]attr[.sub]`` of the resource type."""

    nested = False

    def __init__(self, resource_type: schema.ResourceType, mapping: _Mapping,
                 error: type[ScimError] = InvalidFilter, what: str = "filter") -> None:
        self._resource_type = resource_type
        self._mapping = mapping
        self.error = error
        self.what = what

    def target(self, path: AttrPath) -> _Target:
        resolved = schema.resolve(self._resource_type, path.schema, path.attr, path.sub)
        if resolved is None:
            raise self.error(f"Invalid {self.what}: unknown attribute '{path}' for resource type "
                             f"{self._resource_type.name}")
        attribute, label = resolved.attribute, str(path)
        if attribute.multi_valued:
            build = self._mapping.multi.get(attribute.name.lower())
            if build is None:  # pragma: no cover - every multi-valued schema attribute is mapped
                raise self.error(f"Invalid {self.what}: '{label}' is not supported")
            return _Multi(attribute, resolved.sub, build, label)
        owner = resolved.schema.lower()
        if attribute.type == schema.COMPLEX and resolved.sub is None:
            fields = tuple(self._field(owner, attribute, sub, f"{label}.{sub.name}")
                           for sub in attribute.sub_attributes)
            return _Complex(attribute, fields, label)
        return self._field(owner, attribute, resolved.sub, label)

    def _field(self, owner: str, attribute: schema.Attribute, sub: schema.Attribute | None,
               label: str) -> _Field:
        dotted = f"{attribute.name}.{sub.name}" if sub else attribute.name
        column = self._mapping.columns.get((owner, dotted.lower())) or _unfilterable("it is not stored")
        return _Field(column, sub or attribute, label)


class _ElementScope:
    """Paths inside a value filter ``attr[...]``: sub-attribute names of one element."""

    nested = True

    def __init__(self, parent: schema.Attribute, columns: dict[str, _Column], label: str) -> None:
        self._parent = parent
        self._columns = columns
        self._label = label

    def target(self, path: AttrPath) -> _Target:
        if path.schema is not None or path.sub is not None:
            example = self._parent.sub_attributes[0].name
            raise InvalidFilter(f"Invalid filter: inside '{self._label}[...]' name a sub-attribute of "
                                f"'{self._parent.name}' such as '{example}', not '{path}'")
        sub = self._parent.sub(path.attr)
        if sub is None:
            raise InvalidFilter(f"Invalid filter: unknown attribute '{self._label}.{path.attr}'")
        column = self._columns.get(sub.name.lower()) or _unfilterable("it is not stored")
        return _Field(column, sub, f"{self._label}.{path.attr}")


# -- filters -------------------------------------------------------------------------------------


def compile_filter(resource_type: schema.ResourceType, node: Filter) -> ColumnElement[bool]:
    """Compile a filter AST into a WHERE clause for *resource_type* (RFC 7644 §3.4.2.2).

    Raise InvalidFilter for an unknown attribute, a type mismatch, an unsupported comparison or a
    filter whose and/or alternate more than MAX_LOGICAL_DEPTH levels deep.
    """
    scope = _ResourceScope(resource_type, _mapping(resource_type))
    try:
        return _compile(node, scope)
    except RecursionError:
        # The parser bounds nesting; this guards ASTs built elsewhere.
        raise InvalidFilter("Invalid filter: it is nested too deeply") from None


# How deeply "and" and "or" may alternate (each level is one parenthesised SQL group; a value
# filter's EXISTS counts as one). SQLite's parser has a fixed stack (100 entries up to 3.45) and
# fails with "parser stack overflow" at about 30 such levels; real filters use two or three.
MAX_LOGICAL_DEPTH = 20


def _compile(node: Filter, scope: _Scope, negate: bool = False, parent: bool | None = None,
             level: int = 0) -> ColumnElement[bool]:
    """Compile *node*, with ``not`` pushed down to the comparisons (negation normal form).

    De Morgan keeps the SQL free of nested ``NOT (NOT (...))``; every leaf is two-valued, so
    negating a leaf is exact. *parent* is True/False when inside an AND/OR group, for counting
    how deeply the groups alternate.
    """
    while isinstance(node, Not):
        node, negate = node.expr, not negate
    if isinstance(node, And | Or):
        conjunction = isinstance(node, And) != negate  # not (a and b) == (not a) or (not b)
        if conjunction != parent:
            level += 1
            if level > MAX_LOGICAL_DEPTH:
                raise InvalidFilter(f"Invalid filter: 'and' and 'or' alternate more than {MAX_LOGICAL_DEPTH} "
                                    "levels deep; simplify the filter")
        parts = [_compile(child, scope, negate, conjunction, level) for child in _operands(node)]
        return and_(*parts) if conjunction else or_(*parts)
    if isinstance(node, ValuePath):
        return _value_path(node, scope, negate, parent, level)
    if isinstance(node, Compare):
        condition = _compare(scope.target(node.path), node.op, node.value)
    elif isinstance(node, Present):
        condition = _present(scope.target(node.path))
    else:
        raise TypeError(f"not a filter node: {node!r}")
    return not_(condition) if negate else condition


def _operands(node: And | Or) -> list[Filter]:
    """Flatten a chain of the same operator without recursion (``a and b and c`` -> [a, b, c])."""
    kind = type(node)
    operands: list[Filter] = []
    stack: list[Filter] = [node]
    while stack:
        current = stack.pop()
        if type(current) is kind:
            stack.append(current.right)  # type: ignore[union-attr]
            stack.append(current.left)  # type: ignore[union-attr]
        else:
            operands.append(current)
    return operands


def _value_path(node: ValuePath, scope: _Scope, negate: bool, parent: bool | None,
                level: int) -> ColumnElement[bool]:
    """Compile ``attr[filter]``: every condition inside must hold for the SAME element."""
    if scope.nested:
        raise InvalidFilter(f"Invalid filter: value filters cannot be nested ('{node.path}[...]' inside '[...]')")
    target = scope.target(node.path)
    if isinstance(target, _Multi) and target.sub is None:
        elements = target.elements()
        inner = _ElementScope(target.definition, elements.columns, target.label)
        # The EXISTS sub-query is one more level of SQL nesting; negation stays outside it.
        exists = elements.exists(_compile(node.filter, inner, False, None, level + 1))
        return not_(exists) if negate else exists
    if isinstance(target, _Complex):
        # A single-valued complex attribute has one "element": the conditions apply to its columns.
        columns = {f.definition.name.lower(): f.column for f in target.fields}
        return _compile(node.filter, _ElementScope(target.definition, columns, target.label), negate, parent, level)
    raise InvalidFilter(f"Invalid filter: '{node.path}' is not a complex attribute, so it takes no value "
                        "filter '[...]'")


def _compare(target: _Target, op: str, value: Literal) -> ColumnElement[bool]:
    op = op.lower()
    if op not in COMPARE_OPERATORS:
        raise InvalidFilter(f"Invalid filter: unknown operator '{op}'")
    if isinstance(target, _Field):
        return _compare_field(target, op, value)
    if isinstance(target, _Complex):
        value_field = target.value_field()
        if value_field is None:
            example = target.definition.sub_attributes[0].name
            raise InvalidFilter(f"Invalid filter: '{target.label}' is a complex attribute; compare one of its "
                                f"sub-attributes, such as '{target.label}.{example}'")
        return _compare_field(value_field, op, value)
    # Multi-valued: "emails co x" compares the "value" sub-attribute (RFC 7644 §3.4.2.2, "If the
    # specified attribute in a filter expression is a multi-valued attribute ... matches if any
    # of the values ... match"), on any one element.
    sub = target.sub or target.definition.sub("value") or _simple(target.definition)
    if sub is None:
        example = target.definition.sub_attributes[0].name
        raise InvalidFilter(f"Invalid filter: '{target.label}' has no 'value' sub-attribute; compare one of its "
                            f"sub-attributes, such as '{target.label}.{example}'")
    elements = target.elements()
    label = target.label if target.sub or sub is target.definition else f"{target.label}.value"
    element = _Field(elements.columns.get(sub.name.lower()) or _unfilterable("it is not stored"), sub, label)
    if value is None:
        _check_null_operator(element, op)
        present = elements.exists(_present_field(element))
        return not_(present) if op == "eq" else present
    if op == "ne":
        # RFC 7644 leaves "ne" on a multi-valued attribute open ("some element differs" or "no
        # element equals"). We choose "no element equals": NOT EXISTS(an equal element). It keeps
        # "x ne v" identical to "not (x eq v)", and a user without any email matches.
        return not_(elements.exists(_compare_field(element, "eq", value)))
    return elements.exists(_compare_field(element, op, value))


def _simple(definition: schema.Attribute) -> schema.Attribute | None:
    """A multi-valued attribute of simple values (``orgIds``) compares its elements themselves."""
    return definition if not definition.sub_attributes else None


def _check_null_operator(field: _Field, op: str) -> None:
    if op not in ("eq", "ne"):
        raise InvalidFilter(f"Invalid filter: '{field.label} {op} null' is not supported; only eq and ne "
                            "compare with null")


def _compare_field(field: _Field, op: str, value: Literal) -> ColumnElement[bool]:
    """Compare one value; the result is never SQL NULL, so ``not`` and ``ne`` stay correct."""
    if field.column.kind == "unfilterable":
        raise InvalidFilter(f"Invalid filter: '{field.label}' cannot be used in a filter: {field.column.value}")
    if value is None:
        _check_null_operator(field, op)
        present = _present_field(field)
        return not_(present) if op == "eq" else present
    if op == "ne":
        return not_(_positive(field, "eq", value, shown="ne"))
    return _positive(field, op, value, shown=op)


def _positive(field: _Field, op: str, value: str | int | float | bool, shown: str) -> ColumnElement[bool]:
    column, definition, label = field.column, field.definition, field.label
    if column.kind == "constant":
        return _constant(field, op, value, shown)
    if column.kind == "version":
        return _version(field, op, value, shown)
    if column.kind == "uuid":
        return _uuid(field, op, value)
    if definition.type == schema.BOOLEAN:
        return _boolean(field, op, value, shown)
    if definition.type == schema.DATETIME:
        return _datetime(field, op, value, shown)
    if definition.type in _STRING_TYPES:
        return _string(field, op, value)
    raise InvalidFilter(  # pragma: no cover - no decimal/integer attribute is stored
        f"Invalid filter: '{label}' has type {definition.type}, which filters do not support"
    )


def _string(field: _Field, op: str, value: str | int | float | bool) -> ColumnElement[bool]:
    """Compare a string: caseExact=false through the lowered key or lower() on both sides."""
    if not isinstance(value, str):
        raise InvalidFilter(f"Invalid filter: '{field.label}' is a string attribute; compare it with a string, "
                            f"not {_json(value)}")
    expr = field.column.expr
    lower_in_sql = False
    if field.definition.case_exact:
        lhs, text = expr, value
    elif field.column.key is not None:
        # Lowered in Python when stored, so lower the literal the same way; the index applies.
        lhs, text = field.column.key, value.lower()
    else:
        # lower() on both sides, so that the database folds both the same way (on SQLite the
        # connection's lower() is Python's str.lower, see storage/engine.py).
        lhs, text, lower_in_sql = func.lower(expr, type_=String()), value, True
    if op in ("co", "sw", "ew"):
        condition = _like(lhs, op, text, lower_in_sql)
    else:
        rhs: Any = literal(text, String())
        if lower_in_sql:
            rhs = func.lower(rhs, type_=String())
        condition = (lhs == rhs) if op == "eq" else _ORDERING[op](_CodePointOrder(lhs), rhs)
    return _guard(field.column, condition)


def _like(lhs: Any, op: str, text: str, lower_in_sql: bool) -> ColumnElement[bool]:
    """``co``/``sw``/``ew`` as LIKE with ``%``, ``_`` and the escape character escaped in *text*.

    LIKE is case-sensitive on both databases (PostgreSQL always; SQLite through
    ``case_sensitive_like``), so case-insensitivity comes only from the lowering done by the caller.
    """
    escaped = text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2).replace("%", _LIKE_ESCAPE + "%")
    escaped = escaped.replace("_", _LIKE_ESCAPE + "_")
    pattern: Any = literal(escaped, String())
    if lower_in_sql:
        pattern = func.lower(pattern, type_=String())
    if op == "co":
        return lhs.contains(pattern, escape=_LIKE_ESCAPE)  # type: ignore[no-any-return]
    if op == "sw":
        return lhs.startswith(pattern, escape=_LIKE_ESCAPE)  # type: ignore[no-any-return]
    return lhs.endswith(pattern, escape=_LIKE_ESCAPE)  # type: ignore[no-any-return]


def _boolean(field: _Field, op: str, value: str | int | float | bool, shown: str) -> ColumnElement[bool]:
    if op != "eq":
        raise InvalidFilter(f"Invalid filter: '{field.label}' is a boolean; only eq, ne and pr apply to it, "
                            f"not {shown}")
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        # Some clients quote booleans ("True"); the meaning is not in doubt.
        value = value.strip().lower() == "true"
    if not isinstance(value, bool):
        raise InvalidFilter(f"Invalid filter: '{field.label}' is a boolean; compare it with true or false, "
                            f"not {_json(value)}")
    expr = field.column.expr
    return _guard(field.column, expr == value)


def _datetime(field: _Field, op: str, value: str | int | float | bool, shown: str) -> ColumnElement[bool]:
    if op in ("co", "sw", "ew"):
        raise InvalidFilter(f"Invalid filter: '{field.label}' is a dateTime; {shown} applies only to strings")
    moment = parse_datetime(value) if isinstance(value, str) else None
    if moment is None:
        raise InvalidFilter(f"Invalid filter: '{field.label}' is a dateTime; {_json(value)} is not an "
                            'RFC 3339 date-time such as "2011-05-13T04:42:34Z"')
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # xsd:dateTime without an offset: read as UTC
    expr = field.column.expr
    return _guard(field.column, (expr == moment) if op == "eq" else _ORDERING[op](expr, moment))


def _uuid(field: _Field, op: str, value: str | int | float | bool) -> ColumnElement[bool]:
    """Compare a Uuid column: ``eq`` natively (index), other operators on the canonical text."""
    if not isinstance(value, str):
        raise InvalidFilter(f"Invalid filter: '{field.label}' is a string attribute; compare it with a string, "
                            f"not {_json(value)}")
    expr = field.column.expr
    if op == "eq":
        if not _CANONICAL_UUID.fullmatch(value):
            return false()  # no id has another form; "ne" (its negation) then matches everything
        return _guard(field.column, expr == uuid.UUID(value))
    text = _UuidText(expr)
    if op in ("co", "sw", "ew"):
        return _guard(field.column, _like(text, op, value.lower(), False))
    return _guard(field.column, _ORDERING[op](_CodePointOrder(text), literal(value.lower(), String())))


def _version(field: _Field, op: str, value: str | int | float | bool, shown: str) -> ColumnElement[bool]:
    """Compare ``meta.version`` with the weak ETag ``W/"<n>"`` it is rendered as."""
    if op != "eq":
        raise InvalidFilter(f"Invalid filter: '{field.label}' supports only eq, ne and pr, not {shown}")
    if not isinstance(value, str):
        raise InvalidFilter(f"Invalid filter: '{field.label}' is a string such as 'W/\"3\"', not {_json(value)}")
    match = _WEAK_ETAG.fullmatch(value.strip())
    if match is None:
        return false()
    return field.column.expr == int(match.group(1))  # type: ignore[no-any-return]


def _constant(field: _Field, op: str, value: str | int | float | bool, shown: str) -> ColumnElement[bool]:
    """Compare an attribute whose value is the same on every row (``meta.resourceType``)."""
    if not isinstance(value, str):
        raise InvalidFilter(f"Invalid filter: '{field.label}' is a string attribute; compare it with a string, "
                            f"not {_json(value)}")
    actual = field.column.value or ""
    if not field.definition.case_exact:
        actual, value = actual.lower(), value.lower()
    checks: dict[str, Callable[[str, str], bool]] = {
        "eq": operator.eq, "co": operator.contains, "sw": str.startswith, "ew": str.endswith, **_ORDERING,
    }
    return true() if checks[op](actual, value) else false()


def _present(target: _Target) -> ColumnElement[bool]:
    """Compile ``pr``: a value that is neither null nor empty (RFC 7644 §3.4.2.2, Table 3)."""
    if isinstance(target, _Field):
        return _present_field(target)
    if isinstance(target, _Complex):
        parts = [_present_field(f) for f in target.fields if f.column.kind != "unfilterable"]
        return or_(*parts) if parts else false()
    elements = target.elements()
    if target.sub is None:
        return elements.exists()
    column = elements.columns.get(target.sub.name.lower()) or _unfilterable("it is not stored")
    return elements.exists(_present_field(_Field(column, target.sub, target.label)))


def _present_field(field: _Field) -> ColumnElement[bool]:
    column = field.column
    if column.kind == "unfilterable":
        raise InvalidFilter(f"Invalid filter: '{field.label}' cannot be used in a filter: {column.value}")
    if column.kind in ("constant", "version"):
        return true()
    expr = column.expr
    if column.kind == "plain" and field.definition.type in _STRING_TYPES:
        return _guard(column, expr != "")
    return expr.is_not(None) if _nullable(column) else true()  # type: ignore[no-any-return]


def _guard(column: _Column, condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """Make *condition* false, not NULL, where the column is NULL (SQL three-valued logic)."""
    return and_(column.expr.is_not(None), condition) if _nullable(column) else condition


def _nullable(column: _Column) -> bool:
    if column.nullable is not None:
        return column.nullable
    expression = getattr(column.expr, "expression", column.expr)  # an ORM attribute -> its Column
    return getattr(expression, "nullable", True) is not False


def _json(value: Literal) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    return repr(value) if not isinstance(value, str) else f'"{value}"'


# An alias of groups for the member side of a group_members query. compile_member_filter only
# reads group_members columns, so joining it is optional (kept for callers that join it).
MEMBER_GROUP = aliased(Group, name="member_group")


def compile_member_filter(node: Filter) -> ColumnElement[bool]:
    """Compile the filter of a PATCH path ``members[...]`` (RFC 7644 §3.5.2) over member rows.

    Paths are relative to one member (``value``, ``display``, ``type``); the condition reads only
    ``GroupMember`` columns, so the query must select from ``GroupMember`` (un-aliased).
    Raise InvalidFilter as :func:`compile_filter` does.
    """
    members = schema.GROUP.get("members")
    assert members is not None
    scope = _ElementScope(members, _member_columns(GroupMember), "members")
    try:
        return _compile(node, scope)
    except RecursionError:
        raise InvalidFilter("Invalid filter: it is nested too deeply") from None


# -- sortBy --------------------------------------------------------------------------------------


def order_by_clause(resource_type: schema.ResourceType, path: AttrPath | None,
                    descending: bool) -> list[Any]:
    """Return ORDER BY terms for ``sortBy``/``sortOrder`` (RFC 7644 §3.4.2.3), stable for paging.

    A multi-valued attribute sorts by its primary value, else its first; caseExact=false strings
    sort case-insensitively; resources without a value come last ascending and first descending.
    ``created, id`` always follow as a tiebreaker; with *path* ``None`` they are all there is.
    Raise InvalidValue for an attribute that is unknown or cannot be sorted on.
    """
    mapping = _mapping(resource_type)
    tiebreak = list(mapping.tiebreak)
    if path is None:
        return tiebreak
    target = _ResourceScope(resource_type, mapping, InvalidValue, "sortBy").target(path)
    if isinstance(target, _Complex):
        value_field = target.value_field()
        if value_field is None:
            example = target.definition.sub_attributes[0].name
            raise InvalidValue(f"Invalid sortBy: '{target.label}' is a complex attribute; sort by one of its "
                               f"sub-attributes, such as '{target.label}.{example}'")
        key = _sort_key(value_field)
    elif isinstance(target, _Multi):
        sub = target.sub or target.definition.sub("value") or _simple(target.definition)
        if sub is None:
            example = target.definition.sub_attributes[0].name
            raise InvalidValue(f"Invalid sortBy: '{target.label}' has no 'value' sub-attribute; sort by one of "
                               f"its sub-attributes, such as '{target.label}.{example}'")
        elements = target.elements()
        column = elements.columns.get(sub.name.lower()) or _unfilterable("it is not stored")
        element_key = _sort_key(_Field(column, sub, target.label))
        key = None if element_key is None else elements.first(element_key)
    else:
        key = _sort_key(target)
    if key is None:
        return tiebreak
    return [nulls_first(key.desc()) if descending else nulls_last(key.asc()), *tiebreak]


def _sort_key(field: _Field) -> Any:
    """Return the expression to sort *field* by, or ``None`` when it is the same on every row."""
    column = field.column
    if column.kind == "unfilterable":
        raise InvalidValue(f"Invalid sortBy: '{field.label}' cannot be sorted on: {column.value}")
    if column.kind == "constant":
        return None
    if column.kind == "plain" and field.definition.type in _STRING_TYPES:
        if field.definition.case_exact:
            return _CodePointOrder(column.expr)
        # Case-insensitive Unicode order (§3.4.2.3): the stored lowered key, else lower().
        key = column.key if column.key is not None else func.lower(column.expr, type_=String())
        return _CodePointOrder(key)
    return column.expr
