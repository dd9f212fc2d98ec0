"""Parse list/search parameters (RFC 7644 §3.4.2, §3.4.3) and request bodies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import request
from marshmallow import EXCLUDE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields

from scim_bridge.domain.query import ListQuery
from scim_bridge.http.context import settings
from scim_bridge.scim import schema as s
from scim_bridge.scim.errors import InvalidSyntax
from scim_bridge.scim.errors import InvalidValue
from scim_bridge.scim.filter.ast import AttrPath
from scim_bridge.scim.filter.parser import parse_attribute_list
from scim_bridge.scim.filter.parser import parse_filter


def read_json() -> Any:
    """Return the request body as JSON (any or no Content-Type); 400 ``invalidSyntax`` when it is not JSON."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise InvalidSyntax("the request body is empty; a JSON object is required")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidSyntax(f"the request body is not valid JSON: {exc}") from exc


class _CommaList(fields.Field):
    """A list of attribute names given as a JSON array or a comma-separated string."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ",".join(value)
        raise ValidationError("must be a list of attribute names")


class SearchRequestSchema(Schema):
    """The body of ``POST /.search`` (RFC 7644 §3.4.3)."""

    class Meta:
        unknown = EXCLUDE

    schemas = fields.List(fields.String())
    attributes = _CommaList(load_default=None)
    excluded_attributes = _CommaList(data_key="excludedAttributes", load_default=None)
    filter = fields.String(load_default=None, allow_none=True)
    sort_by = fields.String(data_key="sortBy", load_default=None, allow_none=True)
    sort_order = fields.String(data_key="sortOrder", load_default=None, allow_none=True)
    start_index = fields.Raw(data_key="startIndex", load_default=None)
    count = fields.Raw(load_default=None)


def list_query_from_args() -> ListQuery:
    """Build a :class:`ListQuery` from the query string of a GET."""
    args = request.args
    return build_query(args.get("filter"), args.get("sortBy"), args.get("sortOrder"), args.get("startIndex"),
                       args.get("count"), args.get("attributes"), args.get("excludedAttributes"))


def list_query_from_body() -> ListQuery:
    """Build a :class:`ListQuery` from a SearchRequest body."""
    body = read_json()
    if not isinstance(body, dict):
        raise InvalidSyntax("the SearchRequest must be a JSON object")
    try:
        data = SearchRequestSchema().load(body)
    except ValidationError as exc:
        raise InvalidValue(f"invalid SearchRequest: {summarize(exc.messages)}") from exc
    if data.get("schemas") is not None and s.SEARCH_REQUEST_SCHEMA not in data["schemas"]:
        raise InvalidSyntax(f"'schemas' must contain {s.SEARCH_REQUEST_SCHEMA}")
    return build_query(data["filter"], data["sort_by"], data["sort_order"], data["start_index"], data["count"],
                       data["attributes"], data["excluded_attributes"])


def projection_args() -> tuple[list[AttrPath], list[AttrPath]]:
    """Return the ``attributes`` and ``excludedAttributes`` of the query string."""
    return _attrs(request.args.get("attributes")), _attrs(request.args.get("excludedAttributes"))


def build_query(filter_text: str | None, sort_by: str | None, sort_order: str | None, start_index: Any,
                count: Any, attributes: str | None, excluded: str | None) -> ListQuery:
    """Validate and clamp raw list parameters."""
    cfg = settings()
    parsed_filter = parse_filter(filter_text) if filter_text and filter_text.strip() else None
    sort_path = None
    if sort_by and sort_by.strip():
        paths = parse_attribute_list(sort_by)
        if len(paths) != 1:
            raise InvalidValue("sortBy takes exactly one attribute")
        sort_path = paths[0]
    order = (sort_order or "ascending").strip().lower()
    if order not in ("ascending", "descending"):
        raise InvalidValue("sortOrder must be 'ascending' or 'descending'")
    # RFC 7644 §3.4.2.4: startIndex < 1 is read as 1; a negative count as 0; above the maximum is
    # clamped to it. Non-numeric values are read as absent (the defaults).
    start = _int_or(start_index, 1)
    size = _int_or(count, cfg.default_page_size)
    return ListQuery(
        filter=parsed_filter,
        sort_by=sort_path,
        descending=order == "descending",
        start_index=max(start, 1),
        count=min(max(size, 0), cfg.max_page_size),
        attributes=_attrs(attributes),
        excluded_attributes=_attrs(excluded),
    )


def _attrs(text: str | None) -> list[AttrPath]:
    return parse_attribute_list(text) if text and text.strip() else []


def _int_or(value: Any, default: int) -> int:
    if value is None or isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        return default


def summarize(messages: Any) -> str:
    """Flatten marshmallow error messages into one line."""
    if isinstance(messages, dict):
        return "; ".join(f"{k}: {summarize(v)}" for k, v in messages.items())
    if isinstance(messages, list):
        return ", ".join(summarize(m) for m in messages)
    return str(messages)
