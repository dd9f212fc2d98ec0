"""``attributes`` / ``excludedAttributes`` (RFC 7644 §3.4.2.5) and ``returned`` rules (RFC 7643 §7)."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any

from scim_bridge.scim import schema as s
from scim_bridge.scim.errors import InvalidValue
from scim_bridge.scim.filter.ast import AttrPath
from scim_bridge.scim.rendered import RenderedArray


@dataclass(frozen=True, slots=True)
class Projection:
    """Which attributes a response carries. Paths are canonical ``(schema, attr, sub)`` triples."""

    resource_type: s.ResourceType
    include: frozenset[tuple[str, str, str | None]] = frozenset()
    exclude: frozenset[tuple[str, str, str | None]] = frozenset()
    restricted: bool = False
    """``attributes`` was given: only those (and ``returned: always``) are returned, even if none resolved."""
    _plans: dict[tuple[str, str], Any] = field(default_factory=dict, compare=False, hash=False, repr=False)
    """What to do with each key met so far, by (owner URN or "", key): decided once per projection,
    not once per resource (a list page applies the same projection to every resource)."""
    _wanted: dict[tuple[str, str | None], bool] = field(default_factory=dict, compare=False, hash=False, repr=False)
    """Answers of :meth:`wants` so far (the default projection is shared: asked on every request)."""

    @classmethod
    def build(cls, resource_type: s.ResourceType, attributes: list[AttrPath] | None,
              excluded: list[AttrPath] | None) -> Projection:
        """Resolve the requested paths; unknown attributes are ignored as RFC 7644 §3.4.2.5 allows.

        The default projection (neither parameter) is built once per resource type and shared, so
        its per-key plans are made once per process rather than once per request.
        """
        if not attributes and not excluded:
            default = _DEFAULTS.get(resource_type.name)
            if default is None or default.resource_type is not resource_type:
                default = _DEFAULTS[resource_type.name] = cls(resource_type)
            return default
        return cls(resource_type, _resolve_all(resource_type, attributes), _resolve_all(resource_type, excluded),
                   restricted=bool(attributes))

    @property
    def is_default(self) -> bool:
        """Tell whether this is the default projection (neither ``attributes`` nor ``excludedAttributes``)."""
        return not self.restricted and not self.include and not self.exclude

    def wants(self, attr_name: str, schema_urn: str | None = None) -> bool:
        """Tell whether the response includes top-level attribute *attr_name* (to skip loading it)."""
        found = self._wanted.get((attr_name, schema_urn))
        if found is None:
            found = self._wanted[(attr_name, schema_urn)] = self._decide_wants(attr_name, schema_urn)
        return found

    def _decide_wants(self, attr_name: str, schema_urn: str | None) -> bool:
        urn = schema_urn or self.resource_type.schema.id
        definition = (self.resource_type.schema if urn == self.resource_type.schema.id
                      else self.resource_type.extension(urn))
        attr = definition.get(attr_name) if definition else None
        if attr is None:
            return False
        return self._keep(urn, attr, None)

    def wants_whole(self, attr_name: str) -> bool:
        """Tell whether the response includes core attribute *attr_name* with all its sub-attributes.

        Then :meth:`apply` leaves its value as it is, so it may be rendered ahead (``RenderedArray``).
        """
        attr = self.resource_type.schema.get(attr_name)
        if attr is None or not self.wants(attr_name):
            return False
        return all(self._keep(self.resource_type.schema.id, attr, sub) for sub in attr.sub_attributes)

    def _keep(self, urn: str, attr: s.Attribute, sub: s.Attribute | None) -> bool:
        leaf = sub or attr
        if leaf.returned == "never":
            return False
        if attr.returned == "always" or (sub is not None and leaf.returned == "always"):
            return True
        if self.restricted:
            if sub is None:
                return any(u == urn and a == attr.name for u, a, _ in self.include)
            return (urn, attr.name, None) in self.include or (urn, attr.name, sub.name) in self.include
        if leaf.returned == "request":
            return False
        if (urn, attr.name, None) in self.exclude:
            return False
        return sub is None or (urn, attr.name, sub.name) not in self.exclude

    def apply(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Return *resource* with only the attributes this projection keeps."""
        out: dict[str, Any] = {}
        plans = self._plans
        for key, value in resource.items():
            plan = plans.get(("", key))
            if plan is None:
                plan = plans[("", key)] = self._plan_top(key)
            kept = _run(plan, value)
            if kept is not _DROP:
                out[key] = kept
        return out

    def _plan_top(self, key: str) -> Any:
        """Decide once what to do with top-level *key* of a resource."""
        rt = self.resource_type
        if key == "schemas":
            return _KEEP
        ext = rt.extension(key) if key.startswith("urn:") else None
        if ext is not None:
            return _Object(self, ext)
        attr = rt.schema.get(key) or _common(key)
        if attr is None:
            return _KEEP
        return self._plan_attr(rt.schema.id, attr)

    def _plan_attr(self, urn: str, attr: s.Attribute) -> Any:
        kept = self._keep(urn, attr, None)
        if not attr.sub_attributes:
            return _KEEP if kept else _DROP_PLAN
        if not kept and not self._any_sub_included(urn, attr):
            return _DROP_PLAN
        return _Trim(self, urn, attr, kept)

    def _any_sub_included(self, urn: str, attr: s.Attribute) -> bool:
        return any(u == urn and a == attr.name and sub is not None for u, a, sub in self.include)


_DEFAULTS: dict[str, Projection] = {}
_DROP = object()
_KEEP = "keep"
_DROP_PLAN = "drop"


class _Object:
    """An extension object: each of its keys planned once, like a resource's top level."""

    __slots__ = ("_projection", "_owner", "_plans")

    def __init__(self, projection: Projection, owner: s.Schema) -> None:
        self._projection, self._owner = projection, owner
        self._plans: dict[str, Any] = {}

    def run(self, value: Any) -> Any:
        if not isinstance(value, dict):
            return _DROP
        kept: dict[str, Any] = {}
        for key, item in value.items():
            plan = self._plans.get(key)
            if plan is None:
                attr = self._owner.get(key)
                plan = self._plans[key] = (self._projection._plan_attr(self._owner.id, attr) if attr is not None
                                           else _DROP_PLAN)
            result = _run(plan, item)
            if result is not _DROP:
                kept[key] = result
        return kept if kept else _DROP


class _Trim:
    """A complex attribute: keep the sub-attributes the projection keeps (RFC 7643 §2.4)."""

    __slots__ = ("_projection", "_urn", "_attr", "_kept", "_subs", "_identity")

    def __init__(self, projection: Projection, urn: str, attr: s.Attribute, kept: bool) -> None:
        self._projection, self._urn, self._attr, self._kept = projection, urn, attr, kept
        self._subs: dict[str, bool] = {}
        # When every declared sub-attribute is kept, trimming changes nothing (unknown keys are kept too).
        self._identity = all(projection._keep(urn, attr, sub) for sub in attr.sub_attributes)

    def _keeps(self, key: str) -> bool:
        decided = self._subs.get(key)
        if decided is None:
            sub = self._attr.sub(key)
            decided = self._subs[key] = sub is None or self._projection._keep(self._urn, self._attr, sub)
        return decided

    def trim(self, element: Any) -> Any:
        if not isinstance(element, dict) or self._identity:
            return element
        return {k: v for k, v in element.items() if self._keeps(k)}

    def run(self, value: Any) -> Any:
        if isinstance(value, RenderedArray):
            # Text cannot be trimmed: it is only built when wants_whole() holds, so keep it or drop it all.
            return value if self._kept else _DROP
        if isinstance(value, list):
            return [self.trim(v) for v in value]
        if not isinstance(value, dict):
            return value if self._kept else _DROP
        result = self.trim(value)
        return result if result else _DROP


def _run(plan: Any, value: Any) -> Any:
    if plan is _KEEP:
        return value
    if plan is _DROP_PLAN:
        return _DROP
    return plan.run(value)


def _common(name: str) -> s.Attribute | None:
    for attr in s.COMMON_ATTRIBUTES:
        if attr.name.lower() == name.lower():
            return attr
    return None


def _resolve_all(resource_type: s.ResourceType, paths: list[AttrPath] | None) -> frozenset[tuple[str, str, str | None]]:
    resolved: set[tuple[str, str, str | None]] = set()
    for path in paths or []:
        if path.schema and path.attr == "" :
            raise InvalidValue(f"invalid attribute '{path}'")
        hit = s.resolve(resource_type, path.schema, path.attr, path.sub)
        if hit is None:
            # A bare extension URN names the whole extension.
            ext = resource_type.extension(f"{path.schema}:{path.attr}" if path.schema else path.attr)
            if ext is not None:
                resolved.update((ext.id, a.name, None) for a in ext.attributes)
            continue
        resolved.add((hit.schema, hit.attribute.name, hit.sub.name if hit.sub else None))
    return frozenset(resolved)
