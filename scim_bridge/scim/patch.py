"""The PATCH engine (RFC 7644 §3.5.2) over plain resource dicts.

:func:`parse_patch_request` validates the PatchOp envelope; :func:`apply_patch` applies the
operations, in order, to a deep copy of a resource in canonical wire form (as produced by
:func:`scim_bridge.scim.resource.normalize`, plus ``id``/``meta``/``schemas``). It is all or
nothing: the first error raises and nothing is returned.

Group membership is never loaded (a group may have 100,000 members): every operation on
``members`` is turned into a :class:`MemberChange`, in order, for the caller to apply in storage.

Decisions where the RFC is silent or identity providers deviate from it (see
``idp-behavior.md`` §4 in the shared reference for the quirk numbers):

* ``op`` is case-insensitive (Q1); boolean strings ``"True"``/``"false"`` become booleans (Q2).
* ``add`` on a single-valued attribute is a replace (Q25); ``add`` on a multi-valued one appends,
  skipping exact duplicates. ``add``/``replace`` on a complex attribute merge sub-attributes (§3.5.2.3).
* ``add``/``replace`` through a value filter that matches nothing creates the element from the
  filter's ``eq`` conditions (Entra, Q24) instead of failing with ``noTarget``; a filter that has no
  such conditions (``or``, ``co``…) still fails with ``noTarget``. Filtered writes merge into the
  matching elements.
* Making an element ``primary`` clears ``primary`` on its siblings (RFC 7643 §2.4).
* ``null`` on ``replace`` removes the target; ``null`` on ``add`` does nothing.
* ``remove`` without a path fails with ``noTarget`` (§3.5.2.2); removing something absent, or
  through a filter that matches nothing, does nothing.
* A path naming an unknown attribute fails with ``invalidPath``; an unknown key inside a value
  object fails with ``invalidSyntax`` (as :func:`normalize` does). With ``ignore_unknown`` the
  operation (or the key) is dropped instead. Keys under an extension URN this server does not
  implement are always dropped (Q10).
* A path that targets a readOnly or immutable attribute (``id``, ``meta``, ``groups``, any
  ``members`` sub-attribute) fails with ``mutability``; readOnly keys in a path-less value object
  are ignored instead (RFC 7643 §2.2: Okta sends ``id``, Q3/Q11).
* Unqualified names that are not core attributes are looked up in the extensions (Entra sends
  ``"path": "manager"``); a one-element list is accepted for a single-valued attribute (Entra's
  manager body), and a bare id for ``manager``.
* Members: ``remove members`` without a value (or with ``null``) is ``remove_all`` (Q6); with a
  value list it removes exactly those ids (Q5); ``remove members[value eq "a" or value eq "b"]`` is
  a ``remove`` of those ids; any other member filter is ``remove_where`` with the filter rewritten
  to canonical, member-relative paths. A member filter on add/replace is ``invalidPath``. In a
  path-less value, ``"members": null`` is ignored rather than clearing the group.
* ``remove`` with a value on another multi-valued attribute removes the elements that carry all
  the given sub-attribute values (the same leniency as for members).
* Removing or nulling a required attribute (``userName``, Group ``displayName``) fails with
  ``invalidValue``; so does removing ``password`` (a client must not believe it cleared one).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from typing import Any
from typing import Final
from typing import Literal

from scim_bridge.scim import schema as s
from scim_bridge.scim.errors import InvalidPath
from scim_bridge.scim.errors import InvalidSyntax
from scim_bridge.scim.errors import InvalidValue
from scim_bridge.scim.errors import Mutability
from scim_bridge.scim.errors import NoTarget
from scim_bridge.scim.errors import ScimError
from scim_bridge.scim.filter.ast import And
from scim_bridge.scim.filter.ast import AttrPath
from scim_bridge.scim.filter.ast import Compare
from scim_bridge.scim.filter.ast import Filter
from scim_bridge.scim.filter.ast import Not
from scim_bridge.scim.filter.ast import Or
from scim_bridge.scim.filter.ast import PatchPath
from scim_bridge.scim.filter.ast import Present
from scim_bridge.scim.filter.ast import parse_datetime
from scim_bridge.scim.filter.parser import parse_path
from scim_bridge.scim.resource import Options
from scim_bridge.scim.resource import check_single
from scim_bridge.scim.resource import check_value
from scim_bridge.scim.resource import coerce_boolean

OpName = Literal["add", "remove", "replace"]
MemberOp = Literal["add", "remove", "replace", "remove_all", "remove_where"]

_OPS: Final = ("add", "remove", "replace")
_READ_ONLY: Final = "readOnly"
_IMMUTABLE: Final = "immutable"
_STRING_TYPES: Final = (s.STRING, s.REFERENCE, s.BINARY, s.DATETIME)
_MEMBER_TYPES: Final = {"user": "User", "group": "Group"}
# Keys of member objects that carry no membership information (Q9): display names are ours to compute.


class _Missing:
    """The type of :data:`MISSING`."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""``Operation.value`` when the operation has no ``value`` member (distinct from JSON ``null``)."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One PatchOp operation (RFC 7644 §3.5.2): ``op`` lower-case, ``path`` as sent (``None``: none)."""

    op: OpName
    path: str | None = None
    value: Any = MISSING

    @property
    def has_value(self) -> bool:
        """Tell whether the operation carried a ``value`` member (even ``null``)."""
        return self.value is not MISSING


@dataclass(frozen=True, slots=True)
class MemberChange:
    """One change to a group's membership, to be applied in order by the caller.

    ``add``/``remove``/``replace`` carry normalised member objects ``{"value", "type"?, "$ref"?}``
    (unique by ``value``); ``remove_all`` carries nothing; ``remove_where`` carries the
    ``members[...]`` filter (paths relative to a member: ``value``, ``type``, ``display``, ``$ref``).
    """

    op: MemberOp
    values: tuple[dict[str, Any], ...] = ()
    filter: Filter | None = None

    @property
    def ids(self) -> tuple[str, ...]:
        """Return the member ids of ``values``, in order."""
        return tuple(member["value"] for member in self.values)


@dataclass(frozen=True, slots=True)
class PatchResult:
    """What a PATCH did.

    ``resource`` is the new resource (without ``members`` for groups, never with ``password``);
    ``changed_attributes`` holds canonical top-level names that changed (``"name"``, ``"emails"``),
    URN-qualified names for extension attributes (``"urn:…:enterprise:2.0:User:department"``),
    ``"members"`` when there are member changes and ``"password"`` when a password was set.
    ``password`` is the new cleartext password, for the caller to hash.
    """

    resource: dict[str, Any]
    member_changes: tuple[MemberChange, ...] = ()
    changed_attributes: frozenset[str] = frozenset()
    password: str | None = None


# ---------------------------------------------------------------------------------------------
# The envelope


def parse_patch_request(body: Any) -> list[Operation]:
    """Validate a PatchOp request body (RFC 7644 §3.5.2) and return its operations."""
    if not isinstance(body, dict):
        raise InvalidSyntax("the PATCH body must be a JSON object")
    schemas = _get(body, "schemas")
    if not isinstance(schemas, list) or not any(
            isinstance(urn, str) and urn.lower() == s.PATCH_OP_SCHEMA.lower() for urn in schemas):
        raise InvalidSyntax(f"'schemas' must be a list containing '{s.PATCH_OP_SCHEMA}'")
    operations = _get(body, "Operations")
    if not isinstance(operations, list) or not operations:
        raise InvalidSyntax("'Operations' must be a non-empty list of operations")
    return [_parse_operation(item, index) for index, item in enumerate(operations)]


def _parse_operation(item: Any, index: int) -> Operation:
    """Validate one element of ``Operations``."""
    where = f"Operations[{index}]"
    if not isinstance(item, dict):
        raise InvalidSyntax(f"{where} must be an object")
    op = _get(item, "op")
    if not isinstance(op, str) or op.lower() not in _OPS:
        raise InvalidSyntax(f"{where}.op must be one of add, remove, replace (got {op!r})")
    path = _get(item, "path")
    if path is not None and not isinstance(path, str):
        raise InvalidPath(f"{where}.path must be a string")
    path = path.strip() if path and path.strip() else None
    if path is not None and not _is_schema_urn(path):
        _parse(path)  # report a malformed path before anything is applied
    value = _get(item, "value", MISSING)
    if op.lower() != "remove" and value is MISSING:
        raise InvalidValue(f"{where}: 'value' is required for {op.lower()}")
    return Operation(op.lower(), path, value)  # type: ignore[arg-type]


def _get(mapping: dict[str, Any], key: str, default: Any = None) -> Any:
    """Return ``mapping[key]`` with *key* matched case-insensitively (RFC 7643 §2.1)."""
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    return next((v for k, v in mapping.items() if isinstance(k, str) and k.lower() == lowered), default)


def _is_schema_urn(text: str) -> bool:
    """Tell whether *text* is a known schema URN (a path naming a whole extension)."""
    return any(schema.id.lower() == text.lower() for schema in s.SCHEMAS)


def _parse(text: str) -> PatchPath:
    """Parse a PATCH path, reporting every syntax problem as ``invalidPath``."""
    try:
        return parse_path(text)
    except InvalidPath:
        raise
    except (ScimError, ValueError) as err:
        raise InvalidPath(f"invalid path '{text}': {getattr(err, 'detail', err)}") from err


def single_member_change(operations: list[Operation]) -> bool:
    """Tell, before anything is read, whether *operations* only add or remove one and the same member.

    What an IdP sends for one membership change (Okta, Entra: ``add`` ``members`` with one value,
    ``remove`` ``members[value eq "…"]`` or with one value). Such a PATCH touches one membership
    row and the group's version, nothing else of the group, which lets the group service take the
    group's write lock last instead of first (``GroupService.patch``). Anything else (another
    attribute, ``replace``, several members, a filter other than ``value eq``, a malformed value)
    answers ``False``: the caller takes the ordinary path, where the operations are validated.
    """
    named: set[str] = set()
    for operation in operations:
        if operation.op not in ("add", "remove"):
            return False
        if operation.path is None:
            value = operation.value
            if (operation.op != "add" or not isinstance(value, dict) or len(value) != 1
                    or next(iter(value)).lower() != "members"):
                return False
            ids = _named_members(next(iter(value.values())))
        else:
            try:
                parsed = _parse(operation.path)
            except ScimError:
                return False
            path = parsed.path
            if (path.attr.lower() != "members" or path.sub is not None or parsed.sub_attr is not None
                    or (path.schema is not None and path.schema.lower() != s.GROUP_SCHEMA.lower())):
                return False
            if parsed.filter is not None:
                ids = _member_ids(parsed.filter) if operation.op == "remove" and not operation.has_value else None
            else:
                ids = _named_members(operation.value)
        if not ids:
            return False
        named.update(ids)
    return len(named) == 1


def _named_members(value: Any) -> list[str] | None:
    """Return the ids of a member value (a list of ``{"value": id}``, one such object or a bare id)."""
    items = value if isinstance(value, list) else [value]
    ids = [item if isinstance(item, str) else item.get("value") if isinstance(item, dict) else None
           for item in items]
    return None if not ids or any(not isinstance(i, str) for i in ids) else ids  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Applying operations


@dataclass(frozen=True, slots=True)
class _Target:
    """Where an operation applies: an attribute (and sub-attribute / value filter) of *owner*."""

    owner: s.Schema
    attr: s.Attribute | None  # None: the whole extension object *owner*
    sub: s.Attribute | None = None
    filter: Filter | None = None
    text: str = ""


@dataclass(slots=True)
class _State:
    """The working copy and what has been collected so far."""

    resource_type: s.ResourceType
    resource: dict[str, Any]
    options: Options
    members: list[MemberChange] = field(default_factory=list)
    password: str | None = None


def apply_patch(resource: dict[str, Any], operations: list[Operation], resource_type: s.ResourceType, *,
                ignore_unknown: bool = False) -> PatchResult:
    """Apply *operations* in order to a copy of *resource* (RFC 7644 §3.5.2); all or nothing."""
    before = copy.deepcopy(resource)
    working = copy.deepcopy(resource)
    working.pop("password", None)  # returned "never" (RFC 7643 §4.1.1): it lives in PatchResult only
    state = _State(resource_type, working, Options(ignore_unknown=ignore_unknown))
    for number, operation in enumerate(operations, start=1):
        try:
            _apply_operation(state, operation)
            _check_required(state, before)
        except ScimError as err:
            path = operation.path or "(no path)"
            raise type(err)(f"operation {number} ({operation.op} {path}): {err.detail}") from err
    _tidy(state, before)
    return PatchResult(
        resource=state.resource,
        member_changes=tuple(state.members),
        changed_attributes=frozenset(_changed(state, before)),
        password=state.password,
    )


def _apply_operation(state: _State, operation: Operation) -> None:
    """Apply one operation to the working copy."""
    op = operation.op.lower() if isinstance(operation.op, str) else operation.op
    if op not in _OPS:
        raise InvalidSyntax(f"op must be one of add, remove, replace (got {operation.op!r})")
    if op != "remove" and not operation.has_value:
        raise InvalidValue(f"'value' is required for {op}")
    if operation.path is None:
        if op == "remove":
            raise NoTarget("remove needs a 'path' (RFC 7644 §3.5.2.2)")
        _apply_pathless(state, op, operation.value)
        return
    target = _resolve_path(state, operation.path)
    if target is None:
        return  # unknown attribute, ignored on request
    _check_mutability(state, target)
    _apply_target(state, op, target, operation.value)


def _apply_pathless(state: _State, op: str, value: Any) -> None:
    """Apply a path-less add/replace: each key of *value* is a target (RFC 7644 §3.5.2.1, Q3)."""
    if not isinstance(value, dict):
        raise InvalidValue("without a 'path', 'value' must be an object of attributes")
    for key, item in value.items():
        if key.lower() == state.resource_type.schema.id.lower() and isinstance(item, dict):
            _apply_pathless(state, op, item)  # core attributes nested under the core schema URN
            continue
        target = _resolve_key(state, key)
        if target is None:
            continue
        if _is_members(state, target) and item is None:
            continue  # a path-less value never clears membership implicitly
        _check_mutability(state, target)
        _apply_target(state, op, target, item)


def _apply_target(state: _State, op: str, target: _Target, value: Any) -> None:
    """Dispatch one operation on a resolved target."""
    if target.attr is None:
        _apply_extension(state, op, target.owner, value)
    elif _is_members(state, target):
        _apply_members(state, op, target, value)
    elif _is_password(state, target):
        _apply_password(state, op, value)
    elif op == "remove":
        _remove(state, target, value)
    elif value is None:
        if op == "replace":  # null means unassigned (RFC 7643 §2.5)
            _remove(state, target, MISSING)
    else:
        _write(state, op, target, value)


def _apply_extension(state: _State, op: str, extension: s.Schema, value: Any) -> None:
    """Add/replace/remove a whole extension object; add and replace merge its attributes."""
    if op == "remove" or value is None:
        if op != "add":
            state.resource.pop(extension.id, None)
        return
    if not isinstance(value, dict):
        raise InvalidValue(f"'{extension.id}' must be an object of {extension.name} attributes")
    for key, item in value.items():
        if key.lower() == "schemas":
            continue  # clients serialising the extension as a model send its "schemas" too
        target = _resolve_key(state, key, extension)
        if target is not None:
            _check_mutability(state, target)
            _apply_target(state, op, target, item)


# ---------------------------------------------------------------------------------------------
# Resolving paths and keys


def _resolve_path(state: _State, text: str) -> _Target | None:
    """Resolve a ``path`` (RFC 7644 §3.5.2 ``PATH``); ``None`` when unknown and ignored."""
    rt = state.resource_type
    extension = rt.extension(text)
    if extension is not None:
        return _Target(extension, None, text=text)
    parsed = _parse(text)
    if parsed.path.sub is not None and parsed.sub_attr is not None:
        raise InvalidPath(f"'{text}' names two sub-attributes")
    target = _lookup(rt, parsed.path.schema, parsed.path.attr, parsed.path.sub or parsed.sub_attr)
    if target is None:
        if state.options.ignore_unknown:
            return None
        raise InvalidPath(f"'{text}' does not name a {rt.name} attribute")
    target = replace(target, text=text)
    if parsed.filter is None:
        return target
    assert target.attr is not None
    if not target.attr.multi_valued or target.attr.type != s.COMPLEX:
        raise NoTarget(f"'{text}': a value filter needs a multi-valued complex attribute")
    unknown = _check_filter(parsed.filter, target.attr)
    if unknown is not None:
        if state.options.ignore_unknown:
            return None
        raise InvalidPath(f"'{text}': '{target.attr.name}' has no sub-attribute '{unknown}'")
    return replace(target, filter=parsed.filter)


def _resolve_key(state: _State, key: str, owner: s.Schema | None = None) -> _Target | None:
    """Resolve a key of a path-less value object (plain, dotted or URN-qualified, Q3).

    ``None`` means "skip": ``schemas``, readOnly keys (RFC 7643 §2.2), unimplemented extension
    URNs (Q10), or unknown names when ``ignore_unknown``. *owner* is set inside an extension object.
    """
    rt = state.resource_type
    if owner is None:
        if key.lower() == "schemas":
            return None
        extension = rt.extension(key)
        if extension is not None:
            return _Target(extension, None, text=key)
        if "[" in key:
            return _resolve_path(state, key)
    urn = owner.id if owner is not None else None
    name = key
    if owner is None and key.lower().startswith("urn:"):
        urn, _, name = key.rpartition(":")
        if _schema(rt, urn) is None:
            return None
    attr, _, sub = name.partition(".")
    target = _lookup(rt, urn, attr, sub or None)
    if target is None:
        if state.options.ignore_unknown:
            return None
        where = f"{owner.id}:{key}" if owner is not None else key
        raise InvalidSyntax(f"unknown attribute '{where}' for {rt.name}")
    if _read_only(target):
        return None
    return replace(target, text=key)


def _lookup(rt: s.ResourceType, urn: str | None, attr: str, sub: str | None) -> _Target | None:
    """Find ``[urn:]attr[.sub]``; an unqualified non-core name is looked up in the extensions."""
    resolved = s.resolve(rt, urn, attr, sub)
    if resolved is None and urn is None:
        for extension, _required in rt.extensions:
            if (resolved := s.resolve(rt, extension.id, attr, sub)) is not None:
                break
    if resolved is None:
        return None
    owner = _schema(rt, resolved.schema)
    assert owner is not None
    return _Target(owner, resolved.attribute, resolved.sub)


def _schema(rt: s.ResourceType, urn: str) -> s.Schema | None:
    """Return the core schema or the extension called *urn*."""
    if urn.lower() == rt.schema.id.lower():
        return rt.schema
    return rt.extension(urn)


def _read_only(target: _Target) -> bool:
    """Tell whether the target is readOnly (itself or its parent)."""
    if target.attr is None:
        return False
    return target.attr.mutability == _READ_ONLY or (target.sub is not None and target.sub.mutability == _READ_ONLY)


def _check_mutability(state: _State, target: _Target) -> None:
    """Refuse to touch readOnly and immutable attributes (RFC 7644 §3.5.2, ``mutability``)."""
    if target.attr is None:
        return
    if _is_members(state, target) and target.sub is not None:
        raise Mutability(f"'{target.text}': member sub-attributes cannot be changed; add or remove the member")
    leaf = target.sub or target.attr
    if _read_only(target) or leaf.mutability == _IMMUTABLE:
        mutability = _READ_ONLY if _read_only(target) else leaf.mutability
        raise Mutability(f"'{target.text}' is {mutability} and cannot be changed")


def _is_members(state: _State, target: _Target) -> bool:
    """Tell whether the target is the Group ``members`` attribute."""
    return (target.attr is not None and target.owner is state.resource_type.schema
            and target.attr.name == "members")


def _is_password(state: _State, target: _Target) -> bool:
    """Tell whether the target is the User ``password`` attribute."""
    return (target.attr is not None and target.owner is state.resource_type.schema
            and target.attr.name == "password")


# ---------------------------------------------------------------------------------------------
# add / replace


def _write(state: _State, op: str, target: _Target, value: Any) -> None:
    """Add or replace a non-null *value* at *target* (RFC 7644 §3.5.2.1, §3.5.2.3)."""
    assert target.attr is not None
    container = _container(state, target.owner, create=True)
    assert container is not None
    attr, sub = target.attr, target.sub
    if target.filter is not None:
        _write_filtered(state, op, container, target, value)
    elif attr.multi_valued and sub is None:
        _write_list(state, op, container, attr, value)
    elif attr.multi_valued and sub is not None:
        _write_sub_of_all(state, container, attr, sub, value)
    elif sub is not None:
        parent = container.setdefault(attr.name, {})
        parent[sub.name] = check_single(sub, _one(value, target.text), target.text, state.options)
    elif attr.type == s.COMPLEX:
        _merge_complex(state, op, container, attr, value)
    else:  # single-valued: add is a replace (Q25)
        container[attr.name] = check_single(attr, _one(value, attr.name), attr.name, state.options)


def _write_list(state: _State, op: str, container: dict[str, Any], attr: s.Attribute, value: Any) -> None:
    """Replace a multi-valued attribute, or append to it skipping exact duplicates."""
    items = check_value(attr, value, attr.name, state.options)
    if op == "replace":
        _set_or_drop(container, attr.name, items)
        return
    current = container.setdefault(attr.name, [])
    added = []
    for item in items:
        if item not in current:
            current.append(item)
            added.append(item)
    _settle_primary(current, added)
    _set_or_drop(container, attr.name, current)


def _write_sub_of_all(state: _State, container: dict[str, Any], attr: s.Attribute, sub: s.Attribute,
                      value: Any) -> None:
    """Set ``attr.sub`` on every element; create one element when there are none."""
    where = f"{attr.name}.{sub.name}"
    checked = check_single(sub, _one(value, where), where, state.options)
    items = container.setdefault(attr.name, [])
    if not items:
        items.append({})
    for item in items:
        if isinstance(item, dict):
            item[sub.name] = checked
    _settle_primary(items, items)


def _write_filtered(state: _State, op: str, container: dict[str, Any], target: _Target, value: Any) -> None:
    """Write into the elements matching the value filter, creating one if none match (Q24)."""
    assert target.attr is not None and target.filter is not None
    attr, sub = target.attr, target.sub
    items = container.setdefault(attr.name, [])
    matched = [item for item in items if isinstance(item, dict) and _matches(target.filter, item, attr)]
    if not matched:
        created = _element_from_filter(target.filter, attr, state.options)
        if created is None:
            raise NoTarget(f"no '{attr.name}' element matches '{target.text}', and its filter has no "
                           "'eq' conditions to create one from")
        items.append(created)
        matched = [created]
    if sub is not None:
        checked = check_single(sub, _one(value, target.text), target.text, state.options)
        for item in matched:
            item[sub.name] = checked
    else:
        element = _one(value, target.text)
        update = check_single(attr, element, target.text, state.options)
        cleared = _null_subs(attr, element) if op == "replace" else []
        for item in matched:
            item.update(update)
            for name in cleared:
                item.pop(name, None)
    _settle_primary(items, matched)
    _set_or_drop(container, attr.name, [item for item in items if item != {}])


def _merge_complex(state: _State, op: str, container: dict[str, Any], attr: s.Attribute, value: Any) -> None:
    """Merge sub-attributes into a single-valued complex attribute (RFC 7644 §3.5.2.3)."""
    value = _one(value, attr.name)
    if not isinstance(value, dict) and attr.sub("value") is not None:
        value = {"value": value}  # a bare id for a reference such as manager
    checked = check_single(attr, value, attr.name, state.options)
    merged = {**(container.get(attr.name) or {}), **checked}
    if op == "replace":
        for name in _null_subs(attr, value):
            merged.pop(name, None)
    _set_or_drop(container, attr.name, merged)


def _null_subs(attr: s.Attribute, value: Any) -> list[str]:
    """Return the canonical names of sub-attributes that *value* sets to ``null``."""
    if not isinstance(value, dict):
        return []
    return [sub.name for key, item in value.items() if item is None and (sub := attr.sub(key)) is not None]


def _settle_primary(items: list[Any], preferred: list[Any]) -> None:
    """Keep at most one ``primary: true`` (RFC 7643 §2.4), favouring the elements just written."""
    winner = next((i for i in preferred if isinstance(i, dict) and i.get("primary") is True), None)
    if winner is None:
        return
    for item in items:
        if item is not winner and isinstance(item, dict) and item.get("primary") is True:
            item["primary"] = False


def _element_from_filter(expr: Filter, attr: s.Attribute, options: Options) -> dict[str, Any] | None:
    """Build a new element from the ``eq`` conditions of a value filter (Q24); ``None`` if it has none."""
    if isinstance(expr, Compare) and expr.op == "eq" and expr.value is not None:
        sub = _filter_sub(attr, expr.path)
        assert sub is not None
        return {sub.name: check_single(sub, expr.value, f"{attr.name}.{sub.name}", options)}
    if isinstance(expr, And):
        left = _element_from_filter(expr.left, attr, options)
        right = _element_from_filter(expr.right, attr, options)
        if left is None or right is None or any(k in left and left[k] != v for k, v in right.items()):
            return None
        return {**left, **right}
    return None


def _one(value: Any, where: str) -> Any:
    """Return the value for a single-valued target; a one-element list is accepted (Entra manager)."""
    if isinstance(value, list):
        if len(value) != 1:
            raise InvalidValue(f"'{where}' is single-valued; got a list of {len(value)}")
        return value[0]
    return value


# ---------------------------------------------------------------------------------------------
# remove


def _remove(state: _State, target: _Target, value: Any) -> None:
    """Remove the target (RFC 7644 §3.5.2.2); removing something absent does nothing."""
    assert target.attr is not None
    container = _container(state, target.owner, create=False)
    if container is None:
        return
    attr, sub = target.attr, target.sub
    if target.filter is not None:
        items = container.get(attr.name) or []
        matched = [item for item in items if isinstance(item, dict) and _matches(target.filter, item, attr)]
        if sub is None:
            items = [item for item in items if not any(item is m for m in matched)]
        else:
            for item in matched:
                item.pop(sub.name, None)
        _set_or_drop(container, attr.name, [item for item in items if item != {}])
    elif attr.multi_valued and sub is None:
        if value is MISSING or value is None:
            container.pop(attr.name, None)
        else:
            _remove_values(state, container, attr, value)
    elif attr.multi_valued and sub is not None:
        items = container.get(attr.name) or []
        for item in items:
            if isinstance(item, dict):
                item.pop(sub.name, None)
        _set_or_drop(container, attr.name, [item for item in items if item != {}])
    elif sub is not None:
        parent = container.get(attr.name)
        if isinstance(parent, dict):
            parent.pop(sub.name, None)
            _set_or_drop(container, attr.name, parent)
    else:
        container.pop(attr.name, None)


def _remove_values(state: _State, container: dict[str, Any], attr: s.Attribute, value: Any) -> None:
    """Remove the elements that match one of the given element objects (a lenient extension)."""
    wanted = [w for w in check_value(attr, value, attr.name, state.options) if isinstance(w, dict) and w]
    items = container.get(attr.name) or []
    kept = [item for item in items if not any(_contains(attr, item, w) for w in wanted)]
    _set_or_drop(container, attr.name, kept)


def _contains(attr: s.Attribute, item: Any, wanted: dict[str, Any]) -> bool:
    """Tell whether element *item* has every sub-attribute value of *wanted*."""
    if not isinstance(item, dict):
        return False
    for key, expected in wanted.items():
        sub = attr.sub(key)
        if sub is None or not _equal(sub, item.get(sub.name), expected):
            return False
    return True


# ---------------------------------------------------------------------------------------------
# members and password


def _apply_members(state: _State, op: str, target: _Target, value: Any) -> None:
    """Turn an operation on ``members`` into a :class:`MemberChange` (Q5–Q7, Q9)."""
    changes = state.members
    if target.filter is not None:
        if op != "remove":
            raise InvalidPath(f"'{target.text}': a filter on members is only supported by remove")
        assert target.attr is not None
        relative = _relative_filter(target.filter, target.attr)
        ids = _member_ids(relative)
        if ids is None:
            changes.append(MemberChange("remove_where", filter=relative))
        else:
            changes.append(MemberChange("remove", tuple({"value": i} for i in dict.fromkeys(ids))))
        return
    if value is MISSING or value is None:
        if op != "add":  # remove without value (Q6) or replace with null
            changes.append(MemberChange("remove_all"))
        return
    members = _members(value, state.options)
    if op == "replace":
        changes.append(MemberChange("replace", members))
    elif members:
        changes.append(MemberChange("add" if op == "add" else "remove", members))


def _member_ids(expr: Filter) -> list[str] | None:
    """Return the ids of a ``value eq "…" [or value eq "…"]…`` filter; ``None`` for any other filter."""
    if isinstance(expr, Or):
        left, right = _member_ids(expr.left), _member_ids(expr.right)
        return None if left is None or right is None else left + right
    if (isinstance(expr, Compare) and expr.op == "eq" and expr.path.attr.lower() == "value"
            and expr.path.sub is None and isinstance(expr.value, str)):
        return [expr.value]
    return None


def _members(value: Any, options: Options) -> tuple[dict[str, Any], ...]:
    """Normalise a member list (or a single member), unique by ``value``, keeping the first."""
    items = value if isinstance(value, list) else [value]
    unique: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(items):
        if item is not None:
            member = _member(item, f"members[{index}]", options)
            unique.setdefault(member["value"], member)
    return tuple(unique.values())


def _member(item: Any, where: str, options: Options) -> dict[str, Any]:
    """Normalise one member object to ``{"value", "type"?, "$ref"?, "display"?}`` (RFC 7643 §4.2, Q9)."""
    if isinstance(item, str):
        item = {"value": item}  # a bare value is the "value" sub-attribute (RFC 7643 §2.4)
    if not isinstance(item, dict):
        raise InvalidValue(f"'{where}' must be an object with a 'value'")
    member: dict[str, Any] = {}
    for key, raw in item.items():
        lowered = key.lower()
        if raw is None and lowered != "value":
            continue
        if lowered == "value":
            if not isinstance(raw, str) or not raw.strip():
                raise InvalidValue(f"'{where}.value' must be a non-empty string (the member id)")
            member["value"] = raw
        elif lowered == "type":
            if not isinstance(raw, str) or raw.lower() not in _MEMBER_TYPES:
                raise InvalidValue(f"'{where}.type' must be 'User' or 'Group'")
            member["type"] = _MEMBER_TYPES[raw.lower()]
        elif lowered == "$ref":
            if not isinstance(raw, str):
                raise InvalidValue(f"'{where}.$ref' must be a string")
            member["$ref"] = raw
        elif lowered in ("display", "displayname"):
            # Kept as the client sent it (Okta sends "display", Entra "displayName", Q9).
            if not isinstance(raw, str):
                raise InvalidValue(f"'{where}.display' must be a string")
            member["display"] = raw
        elif lowered == "operation":
            # SCIM 1.1 "operation": "delete" would silently turn a removal into an add here.
            raise InvalidValue(f"'{where}.operation' is not SCIM 2.0; use an op 'remove' on members")
        elif not options.ignore_unknown:
            raise InvalidSyntax(f"unknown member attribute '{where}.{key}'")
    if "value" not in member:
        raise InvalidValue(f"'{where}' has no 'value' (the member id)")
    return member


def _apply_password(state: _State, op: str, value: Any) -> None:
    """Record a new cleartext password; it never enters the resource (``returned: never``)."""
    if op == "remove" or value is None:
        raise InvalidValue("password cannot be removed; set a new one instead")
    password = _one(value, "password")
    if not isinstance(password, str) or not password:
        raise InvalidValue("'password' must be a non-empty string")
    state.password = password


# ---------------------------------------------------------------------------------------------
# value filters, evaluated in Python over one resource's own elements (RFC 7644 §3.4.2.2)


def _check_filter(expr: Filter, attr: s.Attribute) -> str | None:
    """Validate a value filter against *attr*; return the first unknown sub-attribute name."""
    if isinstance(expr, And | Or):
        return _check_filter(expr.left, attr) or _check_filter(expr.right, attr)
    if isinstance(expr, Not):
        return _check_filter(expr.expr, attr)
    if not isinstance(expr, Compare | Present):
        raise InvalidPath(f"a value filter on '{attr.name}' cannot contain another value filter")
    sub = _filter_sub(attr, expr.path)
    if sub is None:
        return str(expr.path)
    if isinstance(expr, Compare):
        _check_comparison(sub, expr)
    return None


def _check_comparison(sub: s.Attribute, expr: Compare) -> None:
    """Refuse comparisons that make no sense for the sub-attribute's type."""
    if sub.type == s.BOOLEAN:
        if expr.op not in ("eq", "ne"):
            raise InvalidPath(f"'{sub.name}' is a boolean: only eq and ne apply, not {expr.op}")
        if expr.value is not None:
            try:
                coerce_boolean(expr.value, sub.name)
            except InvalidValue as err:
                raise InvalidPath(f"'{sub.name}' is a boolean; cannot compare it with {expr.value!r}") from err
    elif expr.op in ("co", "sw", "ew") and sub.type not in _STRING_TYPES:
        raise InvalidPath(f"'{expr.op}' needs a string attribute; '{sub.name}' is {sub.type}")


def _relative_filter(expr: Filter, attr: s.Attribute) -> Filter:
    """Return *expr* with every path canonical and relative to an element (``TYPE`` -> ``type``)."""
    if isinstance(expr, And | Or):
        return type(expr)(_relative_filter(expr.left, attr), _relative_filter(expr.right, attr))
    if isinstance(expr, Not):
        return Not(_relative_filter(expr.expr, attr))
    if isinstance(expr, Compare | Present) and (sub := _filter_sub(attr, expr.path)) is not None:
        return replace(expr, path=AttrPath(None, sub.name))
    return expr


def _filter_sub(attr: s.Attribute, path: AttrPath) -> s.Attribute | None:
    """Return the sub-attribute a path inside ``attr[...]`` names (``type`` or ``emails.type``)."""
    if path.sub is None:
        return attr.sub(path.attr)
    if path.attr.lower() == attr.name.lower():
        return attr.sub(path.sub)
    return None


def _matches(expr: Filter, element: dict[str, Any], attr: s.Attribute) -> bool:
    """Tell whether *element* of multi-valued *attr* satisfies the value filter *expr*."""
    if isinstance(expr, And):
        return _matches(expr.left, element, attr) and _matches(expr.right, element, attr)
    if isinstance(expr, Or):
        return _matches(expr.left, element, attr) or _matches(expr.right, element, attr)
    if isinstance(expr, Not):
        return not _matches(expr.expr, element, attr)
    if not isinstance(expr, Compare | Present):
        return False
    sub = _filter_sub(attr, expr.path)
    if sub is None:
        return False
    actual = element.get(sub.name)
    if isinstance(expr, Present):
        return actual is not None and actual not in ("", [], {})
    return _compare(sub, actual, expr.op, expr.value)


def _compare(sub: s.Attribute, actual: Any, op: str, literal: Any) -> bool:
    """Evaluate ``actual op literal`` with the sub-attribute's type and caseExact rules."""
    if sub.type == s.BOOLEAN and isinstance(literal, str):
        literal = coerce_boolean(literal, sub.name)
    if op in ("eq", "ne"):
        return _equal(sub, actual, literal) is (op == "eq")
    if actual is None or literal is None:
        return False
    if op in ("co", "sw", "ew"):
        if not isinstance(actual, str) or not isinstance(literal, str):
            return False
        a, b = _fold(sub, actual), _fold(sub, literal)
        return b in a if op == "co" else a.startswith(b) if op == "sw" else a.endswith(b)
    left, right = _orderable(sub, actual), _orderable(sub, literal)
    if left is None or right is None or type(left) is not type(right):
        return False
    try:
        return {"gt": left > right, "ge": left >= right, "lt": left < right, "le": left <= right}[op]
    except TypeError:  # naive vs aware datetimes
        return False


def _equal(sub: s.Attribute, actual: Any, expected: Any) -> bool:
    """Compare two values of *sub* for equality (strings honour caseExact, RFC 7643 §2.2)."""
    if actual is None or expected is None:
        return actual is None and expected is None
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual is expected
    if isinstance(actual, str) and isinstance(expected, str):
        if sub.type == s.DATETIME:
            left, right = parse_datetime(actual), parse_datetime(expected)
            if left is not None and right is not None:
                return left == right
        return _fold(sub, actual) == _fold(sub, expected)
    return bool(actual == expected)


def _fold(sub: s.Attribute, text: str) -> str:
    """Return *text* as compared for *sub*: as is when caseExact, else case-folded."""
    return text if sub.case_exact else text.casefold()


def _orderable(sub: s.Attribute, value: Any) -> Any:
    """Return a value comparable with gt/ge/lt/le, or ``None`` (booleans are not ordered)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return parse_datetime(value) if sub.type == s.DATETIME else _fold(sub, value)
    return None


# ---------------------------------------------------------------------------------------------
# bookkeeping


def _container(state: _State, owner: s.Schema, *, create: bool) -> dict[str, Any] | None:
    """Return the dict holding *owner*'s attributes: the resource, or its extension object."""
    if owner is state.resource_type.schema:
        return state.resource
    if create:
        return state.resource.setdefault(owner.id, {})  # type: ignore[no-any-return]
    found = state.resource.get(owner.id)
    return found if isinstance(found, dict) else None


def _set_or_drop(container: dict[str, Any], name: str, value: Any) -> None:
    """Store *value*, or drop the attribute when it is empty (unassigned, RFC 7643 §2.5)."""
    if value in ([], {}, None):
        container.pop(name, None)
    else:
        container[name] = value


def _check_required(state: _State, before: dict[str, Any]) -> None:
    """Refuse to unassign a required attribute (RFC 7643 §7 ``required``)."""
    for attr in state.resource_type.schema.attributes:
        if attr.required and attr.name in before and attr.name not in state.resource:
            raise InvalidValue(f"'{attr.name}' is required and cannot be removed")


def _tidy(state: _State, before: dict[str, Any]) -> None:
    """Drop emptied extension objects and keep ``schemas`` in step with the extensions present."""
    resource = state.resource
    for extension, _required in state.resource_type.extensions:
        if extension.id in resource and not resource[extension.id]:
            del resource[extension.id]
        schemas = resource.get("schemas")
        if not isinstance(schemas, list):
            continue
        listed = [urn for urn in schemas if isinstance(urn, str) and urn.lower() == extension.id.lower()]
        if extension.id in resource and not listed:
            schemas.append(extension.id)
        elif extension.id in before and extension.id not in resource:
            resource["schemas"] = [urn for urn in schemas if urn not in listed]


def _changed(state: _State, before: dict[str, Any]) -> set[str]:
    """Return the names of the attributes whose values differ from *before*."""
    after = state.resource
    extension_ids = {extension.id for extension, _required in state.resource_type.extensions}
    changed: set[str] = set()
    for key in before.keys() | after.keys():
        if key in ("schemas", "password"):
            continue
        old, new = before.get(key), after.get(key)
        if key in extension_ids:
            old, new = old or {}, new or {}
            changed |= {f"{key}:{name}" for name in old.keys() | new.keys() if old.get(name) != new.get(name)}
        elif old != new:
            changed.add(key)
    if state.members:
        changed.add("members")
    if state.password is not None:
        changed.add("password")
    return changed


# ---------------------------------------------------------------------------------------------
# value filters for other pure consumers (mapping profiles read attributes through SCIM paths)


def check_value_filter(expr: Filter, attr: s.Attribute) -> None:
    """Raise InvalidPath unless *expr* is a valid value filter over the elements of *attr*."""
    unknown = _check_filter(expr, attr)
    if unknown is not None:
        raise InvalidPath(f"'{unknown}' is not a sub-attribute of '{attr.name}'")


def element_matches(expr: Filter, element: dict[str, Any], attr: s.Attribute) -> bool:
    """Tell whether one element of multi-valued *attr* satisfies the value filter *expr* (RFC 7644 §3.4.2.2)."""
    return _matches(_relative_filter(expr, attr), element, attr)
