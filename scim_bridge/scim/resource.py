"""Validate and canonicalise client-supplied resources against the schema (RFC 7643 §2).

Attribute names are case-insensitive (RFC 7643 §2.1), which marshmallow's fixed ``data_key``
cannot express, so resource bodies are checked here against the same :mod:`schema` definitions
that ``/Schemas`` publishes. The output is a plain dict with canonical attribute names; extension
attributes nest under their schema URN, as in the wire format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scim_bridge.scim import schema as s
from scim_bridge.scim.errors import InvalidSyntax
from scim_bridge.scim.errors import InvalidValue
from scim_bridge.scim.filter.ast import parse_datetime

READ_ONLY = "readOnly"

# Sub-attributes that identity providers are known to send on member objects without being
# part of the schema (Entra's "displayName" instead of "display", RFC 7644 examples with "type").
_TOLERATED_MEMBER_KEYS = {"operation"}


@dataclass(frozen=True, slots=True)
class Options:
    """How strictly to read a body."""

    ignore_unknown: bool = False
    """Drop attributes the schema does not define instead of failing with 400."""


def normalize(body: Any, resource_type: s.ResourceType, options: Options = Options()) -> dict[str, Any]:
    """Return *body* as a canonical resource dict, or raise a 400 SCIM error.

    readOnly attributes (``id``, ``meta``, ``groups``) are dropped, as RFC 7643 §2.2 lets a
    service provider ignore them; ``null`` means "unassigned" and is dropped too.
    """
    if not isinstance(body, dict):
        raise InvalidSyntax("the request body must be a JSON object")
    result: dict[str, Any] = {}
    schemas = body.get("schemas")
    for key, value in body.items():
        lowered = key.lower()
        if lowered == "schemas":
            continue
        extension = resource_type.extension(key)
        if extension is not None:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise InvalidValue(f"'{key}' must be an object of {extension.name} attributes")
            ext_values = _normalize_object(value, extension, options, prefix=extension.id + ":")
            if ext_values:
                result.setdefault(extension.id, {}).update(ext_values)
            continue
        if lowered.startswith("urn:"):
            # A URN-qualified attribute: a core/extension attribute spelled with its schema, or an
            # extension we do not implement (Entra's Microsoft extension): the latter is ignored.
            urn, _, attr_name = key.rpartition(":")
            qualified = _qualified(resource_type, urn)
            if qualified is None:
                continue
            _store(result, resource_type, qualified, attr_name, value, options)
            continue
        _store(result, resource_type, resource_type.schema, key, value, options)
    required = [a.name for a in resource_type.schema.attributes if a.required and a.name not in result]
    if required:
        raise InvalidValue(f"missing required attribute(s): {', '.join(required)}")
    if schemas is not None and not isinstance(schemas, list):
        raise InvalidSyntax("'schemas' must be a list of schema URNs")
    return result


def _qualified(resource_type: s.ResourceType, urn: str) -> s.Schema | None:
    if urn.lower() == resource_type.schema.id.lower():
        return resource_type.schema
    return resource_type.extension(urn)


def _store(result: dict[str, Any], resource_type: s.ResourceType, owner: s.Schema, key: str, value: Any,
           options: Options) -> None:
    lowered = key.lower()
    if owner is resource_type.schema:
        if lowered in ("id", "meta"):
            return
        if lowered == "externalid":
            if value is not None:
                result[s.EXTERNAL_ID.name] = check_value(s.EXTERNAL_ID, value, "externalId")
            return
    attr = owner.get(key)
    if attr is None:
        # null asserts nothing (unassigned, RFC 7643 §2.5): Entra's create body sends the enterprise
        # "department": null and "manager": null unqualified at the top level (idp-behavior Q11).
        if options.ignore_unknown or value is None:
            return
        raise InvalidSyntax(f"unknown attribute '{key}' for {owner.name}")
    if attr.mutability == READ_ONLY or value is None:
        return
    checked = check_value(attr, value, attr.name, options)
    if checked is None:
        return
    if owner is resource_type.schema:
        result[attr.name] = checked
    else:
        result.setdefault(owner.id, {})[attr.name] = checked


def _normalize_object(value: dict[str, Any], owner: s.Schema, options: Options, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        attr = owner.get(key)
        if attr is None:
            if options.ignore_unknown:
                continue
            raise InvalidSyntax(f"unknown attribute '{prefix}{key}'")
        if attr.mutability == READ_ONLY or item is None:
            continue
        checked = check_value(attr, item, prefix + attr.name, options)
        if checked is not None:
            out[attr.name] = checked
    return out


def check_value(attr: s.Attribute, value: Any, where: str, options: Options = Options()) -> Any:
    """Return *value* checked and coerced for *attr* (boolean strings become booleans)."""
    if attr.multi_valued:
        if isinstance(value, dict):
            value = [value]  # a single object where a list is expected: read as a one-element list
        if not isinstance(value, list):
            raise InvalidValue(f"'{where}' is multi-valued and must be a list")
        items = [check_single(attr, item, f"{where}[{i}]", options) for i, item in enumerate(value)
                 if item is not None]
        items = [i for i in items if i not in (None, {})]
        return _one_primary(items)
    return check_single(attr, value, where, options)


def check_single(attr: s.Attribute, value: Any, where: str, options: Options = Options()) -> Any:
    """Check one (non-list) value of *attr*."""
    if attr.type == s.COMPLEX:
        if not isinstance(value, dict):
            if attr.multi_valued and not isinstance(value, list | dict):
                # RFC 7643 §2.4: a bare value is the "value" sub-attribute.
                value = {"value": value}
            else:
                raise InvalidValue(f"'{where}' must be an object")
        out: dict[str, Any] = {}
        for key, item in value.items():
            sub = attr.sub(key)
            if sub is None and attr.name == "members" and key.lower() == "displayname":
                sub = attr.sub("display")  # Entra sends "displayName" on members (Q9)
            if sub is None:
                if options.ignore_unknown or (attr.name == "members" and key.lower() in _TOLERATED_MEMBER_KEYS):
                    continue
                raise InvalidSyntax(f"unknown sub-attribute '{where}.{key}'")
            if item is None:
                continue
            out[sub.name] = check_single(sub, item, f"{where}.{sub.name}", options)
        return out
    if attr.type == s.BOOLEAN:
        return coerce_boolean(value, where)
    if attr.type in (s.INTEGER, s.DECIMAL):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidValue(f"'{where}' must be a number")
        if attr.type == s.INTEGER and not float(value).is_integer():
            raise InvalidValue(f"'{where}' must be an integer")
        return value
    if attr.type == s.DATETIME:
        if not isinstance(value, str) or parse_datetime(value) is None:
            raise InvalidValue(f"'{where}' must be an xsd:dateTime string")
        return value
    if not isinstance(value, str):
        raise InvalidValue(f"'{where}' must be a string")
    return value


def coerce_boolean(value: Any, where: str) -> bool:
    """Return *value* as a boolean; accept ``"True"``/``"false"`` strings as identity providers send them."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidValue(f"'{where}' must be a boolean")


def _one_primary(items: list[Any]) -> list[Any]:
    """Keep at most one ``primary: true`` (RFC 7643 §2.4): the first one wins."""
    seen = False
    for item in items:
        if isinstance(item, dict) and item.get("primary") is True:
            if seen:
                item["primary"] = False
            seen = True
    return items
