"""Mapping profiles as typed, frozen data: what a pushed SCIM Group means in Infinity.

A profile (one ``mappings/<name>.toml`` file, read by :mod:`.loader`) decides, for one tenant:
which groups become organizations and with which ``org_id`` and name, what happens on org_id
collisions, IdP re-keys and group deletion, whether a user has one org or several, which groups
grant which Infinity role, and how a SCIM User maps onto the Infinity user fields and variables.

Everything here is pure: it works on SCIM resource dicts (canonical attribute names, extension
attributes nested under their schema URN) and plain values, never on rows or sessions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Literal

from scim_bridge.scim import schema as s
from scim_bridge.scim.errors import InvalidValue
from scim_bridge.scim.filter.ast import Filter
from scim_bridge.scim.patch import element_matches

GroupSelection = Literal["all", "matching"]
OnExisting = Literal["link", "reject"]
OnChange = Literal["follow", "keep"]
OnDelete = Literal["detach", "delete"]
MembershipMode = Literal["single", "multi"]
TieBreak = Literal["current", "org_id"]
Normalization = Literal["strip", "upper", "lower"]
MissingOrgId = Literal["skip", "reject"]


class MappingError(ValueError):
    """A profile is invalid: *file*, the dotted *key* inside it, and what is wrong (*reason*)."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        super().__init__(f"{file}: {key}: {reason}" if key else f"{file}: {reason}")
        self.file = file
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Pattern:
    """A regular expression as written in the profile (kept for messages) and compiled."""

    text: str
    regex: re.Pattern[str] = field(compare=False)

    def search(self, value: str | None) -> bool:
        """Tell whether the pattern matches anywhere in *value* (``None`` never matches)."""
        return value is not None and self.regex.search(value) is not None


@dataclass(frozen=True, slots=True)
class ScimPath:
    """A SCIM attribute path (RFC 7644 §3.5.2 ``PATH``) resolved against a resource type at load time.

    ``emails[type eq "work"].value`` reads the ``value`` of the matching element (the primary one
    when several match, else the first); a multi-valued attribute named without a sub-attribute
    reads ``value``; ``urn:…:User:department`` reads an extension attribute.
    """

    text: str
    schema: str
    attribute: s.Attribute = field(compare=False)
    sub: str | None = None
    filter: Filter | None = field(default=None, compare=False)
    core: bool = True

    def extract(self, resource: dict[str, Any]) -> str | None:
        """Return the value at this path in *resource* as text, or ``None`` when absent or empty."""
        container = resource if self.core else resource.get(self.schema)
        if not isinstance(container, dict):
            return None
        value = container.get(self.attribute.name)
        if self.attribute.multi_valued:
            elements = [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []
            if self.filter is not None:
                elements = [e for e in elements if element_matches(self.filter, e, self.attribute)]
            # The primary element wins (RFC 7643 §2.4), then document order.
            elements.sort(key=lambda e: e.get("primary") is not True)
            for element in elements:
                text = _text(element.get(self.sub or "value"))
                if text is not None:
                    return text
            return None
        if self.sub is not None:
            value = value.get(self.sub) if isinstance(value, dict) else None
        return _text(value)


def first_value(paths: Sequence[ScimPath], resource: dict[str, Any]) -> str | None:
    """Return the value of the first of *paths* that has one in *resource*."""
    for path in paths:
        value = path.extract(resource)
        if value is not None:
            return value
    return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text if text.strip() else None


# -- organizations -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrgIdRule:
    """Where a mapped group's org_id comes from: a SCIM path, or a named capture over displayName."""

    path: ScimPath | None = None
    display_name_regex: Pattern | None = None
    normalize: tuple[Normalization, ...] = ()
    validate: Pattern | None = None
    when_missing: MissingOrgId = "skip"

    def source(self) -> str:
        """Describe the source for messages (``externalId``, ``displayName =~ /…/``)."""
        if self.display_name_regex is not None:
            return f"displayName =~ /{self.display_name_regex.text}/"
        return self.path.text if self.path is not None else "externalId"

    def raw(self, group: dict[str, Any]) -> str | None:
        """Return the org_id of *group* before normalisation, or ``None`` when the source is empty."""
        if self.display_name_regex is not None:
            match = self.display_name_regex.regex.search(str(group.get("displayName") or ""))
            return match.group("org_id") if match is not None and match.group("org_id") else None
        return self.path.extract(group) if self.path is not None else None

    def derive(self, group: dict[str, Any]) -> str | None:
        """Return the normalised org_id of *group*, ``None`` when it has none; 400 when it is invalid."""
        value = self.raw(group)
        for step in self.normalize:
            if value is None:
                break
            value = value.strip() if step == "strip" else value.upper() if step == "upper" else value.lower()
        if not value:
            return None
        if self.validate is not None and not self.validate.regex.fullmatch(value):
            raise InvalidValue(f"org_id '{value}' (from {self.source()}) does not match the pattern "
                               f"/{self.validate.text}/ of the tenant's mapping profile")
        return value


@dataclass(frozen=True, slots=True)
class OrgNameRule:
    """How an org's name follows its group's displayName."""

    strip_prefix: Pattern | None = None
    idp_renames_override_admin: bool = False

    def derive(self, display_name: str) -> str:
        """Return the org name for *display_name*, without the prefix (never empty)."""
        if self.strip_prefix is not None:
            match = self.strip_prefix.regex.match(display_name)
            if match is not None and display_name[match.end():].strip():
                return display_name[match.end():].strip()
        return display_name


@dataclass(frozen=True, slots=True)
class OrgDecision:
    """What a mapped group stands for: the org_id and the org name it should have."""

    org_id: str
    name: str


@dataclass(frozen=True, slots=True)
class OrgRules:
    """Which groups become orgs, with which org_id and name, and what happens on conflicts."""

    groups: GroupSelection = "all"
    display_name_pattern: Pattern | None = None
    external_id_pattern: Pattern | None = None
    org_id: OrgIdRule = field(default_factory=OrgIdRule)
    name: OrgNameRule = field(default_factory=OrgNameRule)
    on_existing_org_id: OnExisting = "link"
    on_org_id_change: OnChange = "follow"
    on_group_delete: OnDelete = "detach"

    def selects(self, display_name: str | None, external_id: str | None) -> bool:
        """Tell whether a group with these names is one the profile maps (patterns must all match)."""
        if self.groups == "all":
            return True
        checks = [(self.display_name_pattern, display_name), (self.external_id_pattern, external_id)]
        return all(p.search(value) for p, value in checks if p is not None)


# -- membership and roles ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrgCandidate:
    """An org a user could belong to, as precedence rules see it. ``key`` is opaque to the profile."""

    key: Any
    org_id: str
    name: str


@dataclass(frozen=True, slots=True)
class PrecedenceRule:
    """One precedence rule: an org whose org_id (and/or name) matches ranks above those that do not."""

    org_id: Pattern | None = None
    org_name: Pattern | None = None

    def matches(self, candidate: OrgCandidate) -> bool:
        """Tell whether *candidate* satisfies every pattern of the rule."""
        checks = [(self.org_id, candidate.org_id), (self.org_name, candidate.name)]
        return all(p.search(value) for p, value in checks if p is not None)


@dataclass(frozen=True, slots=True)
class MembershipRules:
    """``single``: one org per user, picked by precedence; ``multi``: every mapped group's org."""

    mode: MembershipMode = "multi"
    precedence: tuple[PrecedenceRule, ...] = ()
    tie_break: TieBreak = "current"

    def rank(self, candidate: OrgCandidate) -> int:
        """Return the index of the first precedence rule *candidate* matches (lower wins)."""
        for index, rule in enumerate(self.precedence):
            if rule.matches(candidate):
                return index
        return len(self.precedence)

    def pick_primary(self, candidates: Iterable[OrgCandidate], current: Any = None) -> OrgCandidate | None:
        """Return the primary org among *candidates*: best precedence rank, then the tie-break.

        ``tie_break = "current"`` keeps the user's current primary (*current*, a candidate key) when
        it ties for the best rank, so that joining another group does not flip a user's org; ties
        otherwise go to the lowest org_id (code-point order), which is deterministic.
        """
        ordered = sorted(candidates, key=lambda c: (self.rank(c), c.org_id))
        if not ordered:
            return None
        best = self.rank(ordered[0])
        if self.tie_break == "current":
            for candidate in ordered:
                if self.rank(candidate) != best:
                    break
                if candidate.key == current:
                    return candidate
        return ordered[0]


@dataclass(frozen=True, slots=True)
class RoleRule:
    """Members (transitively) of a group whose displayName / externalId match get *role*."""

    role: str
    display_name: Pattern | None = None
    external_id: Pattern | None = None

    def matches(self, display_name: str | None, external_id: str | None) -> bool:
        """Tell whether a group with these names grants the rule's role."""
        checks = [(self.display_name, display_name), (self.external_id, external_id)]
        return all(p.search(value) for p, value in checks if p is not None)


@dataclass(frozen=True, slots=True)
class RoleRules:
    """Role-granting groups, the precedence among roles, and the default role."""

    default: str = "Viewer"
    precedence: tuple[str, ...] = ("Owner", "Admin", "Editor", "Viewer")
    rules: tuple[RoleRule, ...] = ()

    def granted_by(self, display_name: str | None, external_id: str | None) -> tuple[str, ...]:
        """Return the roles a group with these names grants (empty: not a role group)."""
        return tuple(rule.role for rule in self.rules if rule.matches(display_name, external_id))

    def resolve(self, granted: Iterable[str]) -> str:
        """Return the highest-precedence role of *granted*, or the default role when none."""
        roles = set(granted)
        for role in self.precedence:
            if role in roles:
                return role
        return self.default


# -- users ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserFields:
    """How a SCIM User maps onto Infinity's user fields: each field is the first path with a value."""

    email: tuple[ScimPath, ...] = ()
    first_name: tuple[ScimPath, ...] = ()
    last_name: tuple[ScimPath, ...] = ()
    department: tuple[ScimPath, ...] = ()
    extra: tuple[tuple[str, tuple[ScimPath, ...]], ...] = ()

    def extract(self, user: dict[str, Any]) -> dict[str, Any]:
        """Return the Infinity-facing fields of *user* (a SCIM User dict), extras included."""
        fields: dict[str, Any] = {
            "user_name": user.get("userName"),
            "email": first_value(self.email, user),
            "first_name": first_value(self.first_name, user),
            "last_name": first_value(self.last_name, user),
            "department": first_value(self.department, user),
            "active": user.get("active") is not False,
        }
        for name, paths in self.extra:
            fields[name] = first_value(paths, user)
        return fields

    def extra_names(self) -> tuple[str, ...]:
        """Return the names of the extra fields, in profile order."""
        return tuple(name for name, _paths in self.extra)


# -- the profile ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profile:
    """One mapping profile (``mappings/<name>.toml``), selected per tenant."""

    name: str
    file: str
    description: str = ""
    orgs: OrgRules = field(default_factory=OrgRules)
    membership: MembershipRules = field(default_factory=MembershipRules)
    roles: RoleRules = field(default_factory=RoleRules)
    user: UserFields = field(default_factory=UserFields)

    def decide(self, group: dict[str, Any]) -> OrgDecision | None:
        """Return the org a SCIM Group dict maps onto, or ``None`` when the profile does not map it.

        Role-granting groups are never orgs. A selected group whose org_id source is empty is not
        an org under ``when_missing = "skip"`` and is refused (400) under ``"reject"``; an org_id
        that fails the profile's ``validate`` pattern is refused (400).
        """
        display_name = group.get("displayName")
        external_id = group.get("externalId")
        if self.roles.granted_by(display_name, external_id):
            return None
        if not self.orgs.selects(display_name, external_id):
            return None
        org_id = self.orgs.org_id.derive(group)
        if org_id is None:
            if self.orgs.org_id.when_missing == "reject":
                raise InvalidValue(f"group '{display_name}' maps onto an Infinity organization under profile "
                                   f"'{self.name}', but its org_id ({self.orgs.org_id.source()}) is empty")
            return None
        return OrgDecision(org_id, self.orgs.name.derive(str(display_name or org_id)))

    def variables(self, fields: dict[str, Any], org_id: str | None, org_name: str | None,
                  org_ids: Sequence[str], role: str | None) -> dict[str, Any]:
        """Return the variables an Infinity workspace uses for row-level access and automation."""
        variables: dict[str, Any] = {
            "org_id": org_id,
            "org_name": org_name,
            "org_ids": list(org_ids),
            "role": role,
            "department": fields.get("department"),
        }
        for name in self.user.extra_names():
            variables.setdefault(name, fields.get(name))
        return variables
