"""Read and validate mapping profiles (``mappings/*.toml``) into :class:`~.model.Profile`.

TOML is read with the standard library (``tomllib``). Every problem is a
:class:`~.model.MappingError` naming the file, the dotted key and what is wrong; unknown keys are
errors too, so a typo never silently falls back to a default. SCIM paths are parsed and resolved
against the resource types here, so a bad path fails when the server starts, not on a request.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from typing import TypeVar
from typing import cast

from scim_bridge.mappings.model import MappingError
from scim_bridge.mappings.model import MembershipRules
from scim_bridge.mappings.model import OrgIdRule
from scim_bridge.mappings.model import OrgNameRule
from scim_bridge.mappings.model import OrgRules
from scim_bridge.mappings.model import Pattern
from scim_bridge.mappings.model import PrecedenceRule
from scim_bridge.mappings.model import Profile
from scim_bridge.mappings.model import RoleRule
from scim_bridge.mappings.model import RoleRules
from scim_bridge.mappings.model import ScimPath
from scim_bridge.mappings.model import UserFields
from scim_bridge.scim import schema as s
from scim_bridge.scim.errors import ScimError
from scim_bridge.scim.filter.parser import parse_path
from scim_bridge.scim.patch import check_value_filter

PROFILE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DEFAULT_USER_FIELDS = {
    "email": ['emails[type eq "work" and primary eq true].value', 'emails[type eq "work"].value',
              "emails[primary eq true].value", "userName"],
    "first_name": ["name.givenName"],
    "last_name": ["name.familyName"],
    "department": [f"{s.ENTERPRISE_USER_SCHEMA}:department", f"{s.ENTERPRISE_USER_SCHEMA}:organization"],
}
# Variables every profile has; extra user fields may not reuse these names.
RESERVED_FIELDS = frozenset({"org_id", "org_name", "org_ids", "role", "department", "email", "first_name",
                             "last_name", "user_name", "active"})
# Attributes of the Group extension that are derived from the org itself: reading an org_id
# from them would be circular.
_DERIVED_GROUP_ATTRIBUTES = frozenset({"orgid", "orgname", "managed", "orphaned"})

T = TypeVar("T")


def load_profiles(directory: Path) -> dict[str, Profile]:
    """Load every ``*.toml`` profile in *directory*, by name; raise MappingError on the first problem."""
    if not directory.is_dir():
        raise MappingError(str(directory), "", "the mappings directory does not exist")
    profiles: dict[str, Profile] = {}
    for path in sorted(directory.glob("*.toml")):
        profile = load_profile(path)
        profiles[profile.name] = profile
    if not profiles:
        raise MappingError(str(directory), "", "no mapping profile (*.toml) found")
    return profiles


def check_files(paths: Iterable[Path]) -> list[MappingError]:
    """Validate each file; return one error per invalid file (empty when all are valid)."""
    errors: list[MappingError] = []
    for path in paths:
        try:
            load_profile(path)
        except MappingError as exc:
            errors.append(exc)
    return errors


def load_profile(path: Path) -> Profile:
    """Read one profile file; its name is the file name without ``.toml``."""
    file = str(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise MappingError(file, "", f"cannot read the file: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(file, "", f"not valid TOML: {exc}") from exc
    name = path.stem
    if not PROFILE_NAME.match(name):
        raise MappingError(file, "", f"the profile name {name!r} (the file name) must be lower-case letters, "
                                     "digits, '-' or '_'")
    return parse_profile(data, name, file)


def parse_profile(data: dict[str, Any], name: str, file: str = "<profile>") -> Profile:
    """Build a profile from parsed TOML *data*; raise MappingError naming *file* and the key."""
    reader = _Reader(file)
    table = reader.table(data, "", {"description", "orgs", "membership", "roles", "user"})
    roles = _roles(reader, reader.table(table.get("roles", {}), "roles",
                                        {"default", "precedence", "rules"}))
    return Profile(
        name=name,
        file=file,
        description=reader.string(table, "", "description", ""),
        orgs=_orgs(reader, reader.table(table.get("orgs", {}), "orgs", {
            "groups", "display_name_pattern", "external_id_pattern", "on_existing_org_id", "on_org_id_change",
            "on_group_delete", "org_id", "name"})),
        membership=_membership(reader, reader.table(table.get("membership", {}), "membership",
                                                    {"mode", "precedence", "tie_break"})),
        roles=roles,
        user=_user(reader, reader.table(table.get("user", {}), "user",
                                        {"email", "first_name", "last_name", "department", "extra"})),
    )


def _orgs(reader: _Reader, table: dict[str, Any]) -> OrgRules:
    groups = reader.choice(table, "orgs", "groups", ("all", "matching"), "all")
    display = reader.pattern(table, "orgs", "display_name_pattern")
    external = reader.pattern(table, "orgs", "external_id_pattern")
    if groups == "all" and (display or external):
        key = "orgs.display_name_pattern" if display else "orgs.external_id_pattern"
        raise reader.error(key, 'patterns only apply with groups = "matching"')
    if groups == "matching" and not (display or external):
        raise reader.error("orgs.groups", 'groups = "matching" needs display_name_pattern and/or '
                                          "external_id_pattern")
    org_id_table = reader.table(table.get("org_id", {}), "orgs.org_id",
                                {"path", "display_name_regex", "normalize", "validate", "when_missing"})
    name_table = reader.table(table.get("name", {}), "orgs.name", {"strip_prefix", "idp_renames_override_admin"})
    return OrgRules(
        groups=cast(Any, groups),
        display_name_pattern=display,
        external_id_pattern=external,
        org_id=_org_id(reader, org_id_table),
        name=OrgNameRule(
            strip_prefix=reader.pattern(name_table, "orgs.name", "strip_prefix"),
            idp_renames_override_admin=reader.boolean(name_table, "orgs.name", "idp_renames_override_admin", False),
        ),
        on_existing_org_id=cast(Any, reader.choice(table, "orgs", "on_existing_org_id", ("link", "reject"), "link")),
        on_org_id_change=cast(Any, reader.choice(table, "orgs", "on_org_id_change", ("follow", "keep"), "follow")),
        on_group_delete=cast(Any, reader.choice(table, "orgs", "on_group_delete", ("detach", "delete"), "detach")),
    )


def _org_id(reader: _Reader, table: dict[str, Any]) -> OrgIdRule:
    where = "orgs.org_id"
    regex = reader.pattern(table, where, "display_name_regex")
    if regex is not None and "path" in table:
        raise reader.error(f"{where}.display_name_regex", "give either path or display_name_regex, not both")
    if regex is not None and "org_id" not in regex.regex.groupindex:
        raise reader.error(f"{where}.display_name_regex", "the pattern needs a named group (?P<org_id>...)")
    path = None
    if regex is None:
        path = reader.path(s.GROUP_RESOURCE, reader.string(table, where, "path", "externalId"), f"{where}.path")
        if path.schema == s.INFINITY_GROUP_SCHEMA and path.attribute.name.lower() in _DERIVED_GROUP_ATTRIBUTES:
            raise reader.error(f"{where}.path", f"'{path.text}' is derived from the org itself; read the org_id "
                                                "from an attribute the identity provider sends (e.g. iamOrgId)")
        if path.attribute.name == "members":
            raise reader.error(f"{where}.path", "members cannot hold an org_id")
    normalize = reader.string_list(table, where, "normalize", [])
    for step in normalize:
        if step not in ("strip", "upper", "lower"):
            raise reader.error(f"{where}.normalize", f"unknown step {step!r}; use strip, upper or lower")
    if "upper" in normalize and "lower" in normalize:
        raise reader.error(f"{where}.normalize", "upper and lower contradict each other")
    return OrgIdRule(
        path=path,
        display_name_regex=regex,
        normalize=tuple(cast(Any, normalize)),
        validate=reader.pattern(table, where, "validate"),
        when_missing=cast(Any, reader.choice(table, where, "when_missing", ("skip", "reject"), "skip")),
    )


def _membership(reader: _Reader, table: dict[str, Any]) -> MembershipRules:
    rules: list[PrecedenceRule] = []
    for index, item in enumerate(reader.list(table, "membership", "precedence")):
        key = f"membership.precedence[{index}]"
        rule_table = reader.table(item, key, {"org_id", "org_name"})
        rule = PrecedenceRule(org_id=reader.pattern(rule_table, key, "org_id"),
                              org_name=reader.pattern(rule_table, key, "org_name"))
        if rule.org_id is None and rule.org_name is None:
            raise reader.error(key, "a precedence rule needs org_id and/or org_name (a pattern)")
        rules.append(rule)
    return MembershipRules(
        mode=cast(Any, reader.choice(table, "membership", "mode", ("single", "multi"), "multi")),
        precedence=tuple(rules),
        tie_break=cast(Any, reader.choice(table, "membership", "tie_break", ("current", "org_id"), "current")),
    )


def _roles(reader: _Reader, table: dict[str, Any]) -> RoleRules:
    precedence = reader.string_list(table, "roles", "precedence", ["Owner", "Admin", "Editor", "Viewer"])
    if not precedence:
        raise reader.error("roles.precedence", "list at least one role")
    if len(set(precedence)) != len(precedence) or not all(r.strip() for r in precedence):
        raise reader.error("roles.precedence", "roles must be non-empty and listed once")
    default = reader.string(table, "roles", "default", "Viewer")
    if not default.strip():
        raise reader.error("roles.default", "the default role cannot be empty")
    rules: list[RoleRule] = []
    for index, item in enumerate(reader.list(table, "roles", "rules")):
        key = f"roles.rules[{index}]"
        rule_table = reader.table(item, key, {"role", "display_name", "external_id"})
        if "role" not in rule_table:
            raise reader.error(f"{key}.role", "missing: which role the group grants")
        role = reader.string(rule_table, key, "role", "")
        if role not in precedence:
            raise reader.error(f"{key}.role", f"role {role!r} is not listed in roles.precedence")
        rule = RoleRule(role=role, display_name=reader.pattern(rule_table, key, "display_name"),
                        external_id=reader.pattern(rule_table, key, "external_id"))
        if rule.display_name is None and rule.external_id is None:
            raise reader.error(key, "a role rule needs display_name and/or external_id (a pattern)")
        rules.append(rule)
    return RoleRules(default=default, precedence=tuple(precedence), rules=tuple(rules))


def _user(reader: _Reader, table: dict[str, Any]) -> UserFields:
    def paths(key: str) -> tuple[ScimPath, ...]:
        raw = table.get(key, DEFAULT_USER_FIELDS[key])
        texts = [raw] if isinstance(raw, str) else raw
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise reader.error(f"user.{key}", "expected a SCIM path or a non-empty list of SCIM paths")
        return tuple(reader.path(s.USER_RESOURCE, text, f"user.{key}") for text in texts)

    extra_table = reader.table(table.get("extra", {}), "user.extra", None)
    extra: list[tuple[str, tuple[ScimPath, ...]]] = []
    for name, raw in extra_table.items():
        key = f"user.extra.{name}"
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
            raise reader.error(key, "a variable name is lower-case letters, digits and '_'")
        if name in RESERVED_FIELDS:
            raise reader.error(key, f"{name!r} is a built-in field; choose another name")
        texts = [raw] if isinstance(raw, str) else raw
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise reader.error(key, "expected a SCIM path or a non-empty list of SCIM paths")
        extra.append((name, tuple(reader.path(s.USER_RESOURCE, text, key) for text in texts)))
    return UserFields(email=paths("email"), first_name=paths("first_name"), last_name=paths("last_name"),
                      department=paths("department"), extra=tuple(extra))


class _Reader:
    """Typed accessors that raise MappingError with the file and the dotted key."""

    def __init__(self, file: str) -> None:
        self.file = file

    def error(self, key: str, reason: str) -> MappingError:
        """Return a MappingError for *key* of this file."""
        return MappingError(self.file, key, reason)

    def table(self, value: Any, where: str, allowed: set[str] | None) -> dict[str, Any]:
        """Return *value* as a table, refusing keys outside *allowed* (``None``: any key)."""
        if not isinstance(value, dict):
            raise self.error(where, "expected a table")
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    known = ", ".join(sorted(allowed))
                    raise self.error(_join(where, key), f"unknown key; expected one of: {known}")
        return value

    def _get(self, table: dict[str, Any], where: str, key: str, kind: type[T], label: str, default: T) -> T:
        if key not in table:
            return default
        value = table[key]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise self.error(_join(where, key), f"expected {label}, got {type(value).__name__}")
        return value

    def string(self, table: dict[str, Any], where: str, key: str, default: str) -> str:
        """Return a string value."""
        return self._get(table, where, key, str, "a string", default)

    def boolean(self, table: dict[str, Any], where: str, key: str, default: bool) -> bool:
        """Return a boolean value."""
        return self._get(table, where, key, bool, "true or false", default)

    def list(self, table: dict[str, Any], where: str, key: str) -> list[Any]:
        """Return a list value (empty when absent)."""
        return self._get(table, where, key, list, "a list", [])

    def string_list(self, table: dict[str, Any], where: str, key: str, default: list[str]) -> list[str]:
        """Return a list of strings; a single string is a one-element list."""
        value = table.get(key, default)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(_join(where, key), "expected a string or a list of strings")
        return value

    def choice(self, table: dict[str, Any], where: str, key: str, options: tuple[str, ...], default: str) -> str:
        """Return one of *options*."""
        value = self.string(table, where, key, default)
        if value not in options:
            raise self.error(_join(where, key), f"{value!r} is not one of: {', '.join(options)}")
        return value

    def pattern(self, table: dict[str, Any], where: str, key: str) -> Pattern | None:
        """Return a compiled regular expression (Python syntax), or ``None`` when absent."""
        text = self.string(table, where, key, "")
        if key not in table:
            return None
        if not text:
            raise self.error(_join(where, key), "the pattern is empty")
        try:
            return Pattern(text, re.compile(text))
        except re.error as exc:
            raise self.error(_join(where, key), f"invalid regular expression: {exc}") from exc

    def path(self, resource_type: s.ResourceType, text: str, key: str) -> ScimPath:
        """Parse and resolve a SCIM attribute path against *resource_type*."""
        return _resolve_path(resource_type, text, lambda reason: self.error(key, f"{text!r}: {reason}"))


def _resolve_path(resource_type: s.ResourceType, text: str,
                  fail: Callable[[str], MappingError]) -> ScimPath:
    try:
        parsed = parse_path(text)
    except ScimError as exc:
        raise fail(exc.detail) from None
    path = parsed.path
    resolved = s.resolve(resource_type, path.schema, path.attr, path.sub)
    if resolved is None:
        raise fail(f"unknown attribute for resource type {resource_type.name}")
    attribute = resolved.attribute
    sub = resolved.sub.name if resolved.sub is not None else None
    if parsed.sub_attr is not None:
        if sub is not None:
            raise fail("a sub-attribute is given twice")
        sub_def = attribute.sub(parsed.sub_attr)
        if sub_def is None:
            raise fail(f"'{parsed.sub_attr}' is not a sub-attribute of '{attribute.name}'")
        sub = sub_def.name
    if parsed.filter is not None:
        if not attribute.multi_valued or attribute.type != s.COMPLEX:
            raise fail("a value filter [...] applies only to a multi-valued complex attribute")
        try:
            check_value_filter(parsed.filter, attribute)
        except ScimError as exc:
            raise fail(exc.detail) from None
    if attribute.type == s.COMPLEX and sub is None:
        if attribute.sub("value") is None:
            raise fail(f"'{attribute.name}' is complex; name one of its sub-attributes")
        if not attribute.multi_valued:
            raise fail(f"'{attribute.name}' is complex; name one of its sub-attributes")
    if attribute.returned == "never" or attribute.mutability == "writeOnly":
        raise fail(f"'{attribute.name}' is never readable")
    if attribute.multi_valued and attribute.type != s.COMPLEX:
        raise fail(f"'{attribute.name}' holds several values; a field needs one")
    core = resolved.schema == resource_type.schema.id
    return ScimPath(text=text, schema=resolved.schema, attribute=attribute, sub=sub, filter=parsed.filter,
                    core=core)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
