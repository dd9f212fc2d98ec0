"""``attributes`` / ``excludedAttributes`` (RFC 7644 §3.4.2.5) and ``returned`` rules (RFC 7643 §7)."""

from __future__ import annotations

from dataclasses import dataclass
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

    @classmethod
    def build(cls, resource_type: s.ResourceType, attributes: list[AttrPath] | None,
              excluded: list[AttrPath] | None) -> Projection:
        """Resolve the requested paths; unknown attributes are ignored as RFC 7644 §3.4.2.5 allows."""
        return cls(resource_type, _resolve_all(resource_type, attributes), _resolve_all(resource_type, excluded),
                   restricted=bool(attributes))

    def wants(self, attr_name: str, schema_urn: str | None = None) -> bool:
        """Tell whether the response includes top-level attribute *attr_name* (to skip loading it)."""
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
        rt = self.resource_type
        out: dict[str, Any] = {}
        for key, value in resource.items():
            if key == "schemas":
                out[key] = value
                continue
            ext = rt.extension(key) if key.startswith("urn:") else None
            if ext is not None:
                kept = self._apply_object(ext.id, ext, value)
                if kept:
                    out[key] = kept
                continue
            attr = rt.schema.get(key) or _common(key)
            if attr is None:
                out[key] = value
                continue
            kept_value = self._apply_attr(rt.schema.id, attr, value)
            if kept_value is not _DROP:
                out[key] = kept_value
        return out

    def _apply_object(self, urn: str, owner: s.Schema, value: dict[str, Any]) -> dict[str, Any]:
        kept: dict[str, Any] = {}
        for key, item in value.items():
            attr = owner.get(key)
            if attr is None:
                continue
            kept_value = self._apply_attr(urn, attr, item)
            if kept_value is not _DROP:
                kept[key] = kept_value
        return kept

    def _apply_attr(self, urn: str, attr: s.Attribute, value: Any) -> Any:
        if isinstance(value, RenderedArray):
            # Text cannot be trimmed: it is only built when wants_whole() holds, so keep it or drop it all.
            return value if self._keep(urn, attr, None) else _DROP
        if not attr.sub_attributes or not isinstance(value, dict | list):
            return value if self._keep(urn, attr, None) else _DROP
        if not self._keep(urn, attr, None) and not self._any_sub_included(urn, attr):
            return _DROP

        def trim(element: Any) -> Any:
            if not isinstance(element, dict):
                return element
            trimmed = {}
            for k, v in element.items():
                sub = attr.sub(k)
                if sub is None or self._keep(urn, attr, sub):
                    trimmed[k] = v
            return trimmed

        if isinstance(value, list):
            return [trim(v) for v in value]
        result = trim(value)
        return result if result else _DROP

    def _any_sub_included(self, urn: str, attr: s.Attribute) -> bool:
        return any(u == urn and a == attr.name and sub is not None for u, a, sub in self.include)


_DROP = object()


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
