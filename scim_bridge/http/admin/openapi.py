"""The OpenAPI 3 document of the admin API, built by apispec from the views' marshmallow schemas.

Each view declares its operation with :func:`operation` (summary, response schema, request body,
query parameters); :func:`document` walks the app's URL map, so every route of the blueprint is in
the document and nothing else is. apispec's MarshmallowPlugin turns the schemas into components,
camelCase ``data_key`` names included.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import current_app
from marshmallow import Schema

from scim_bridge import __version__
from scim_bridge.admin import schemas as sc

PARAMETERS: dict[str, dict[str, Any]] = {
    "offset": {"schema": {"type": "integer", "minimum": 0, "default": 0}, "description": "items to skip"},
    "limit": {"schema": {"type": "integer", "minimum": 1}, "description": "page size (capped by max_page_size)"},
    "q": {"schema": {"type": "string"}, "description": "search (case-insensitive substring)"},
    "source": {"schema": {"type": "string", "enum": ["idp", "manual"]}},
    "orphaned": {"schema": {"type": "boolean"}},
    "linked": {"schema": {"type": "boolean"}},
    "conflict": {"schema": {"type": "boolean"}},
    "format": {"schema": {"type": "string", "enum": ["csv", "json"]}},
    "name": {"schema": {"type": "string"}, "description": "a name for the uploaded list (its file name)"},
    "after": {"schema": {"type": "integer", "minimum": 0, "default": 0}, "description": "event cursor"},
    "before": {"schema": {"type": "integer", "minimum": 0}, "description": "audit events older than this id"},
    "action": {"schema": {"type": "string"}, "description": "an action or a prefix (org, plan, user, ...)"},
    "outcome": {"schema": {"type": "string", "enum": ["success", "failure"]}},
}
ERRORS = {"400": "invalid request", "401": "missing, invalid, expired or revoked token",
          "403": "the token lacks the admin scope", "404": "not found in the credential's tenant",
          "409": "conflict, refused, stale or failed plan"}


def operation(summary: str, response: type[Schema] | None, *, status: int = 200, body: type[Schema] | None = None,
              tag: str = "admin", params: list[str] | None = None, many: bool = False,
              content: tuple[str, ...] = ("application/json",), upload: bool = False,
              ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a view's OpenAPI operation (kept on the view as ``openapi``)."""

    def declare(view: Callable[..., Any]) -> Callable[..., Any]:
        view.openapi = {"summary": summary, "response": response, "status": status, "body": body,  # type: ignore
                        "tag": tag, "params": params or [], "many": many, "content": content, "upload": upload}
        return view

    return declare


def document(blueprint: str, prefix: str) -> dict[str, Any]:
    """Return the OpenAPI 3 document of the routes of *blueprint* (mounted at *prefix*)."""
    spec = APISpec(title="scim-bridge admin API", version=__version__, openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()],
                   info={"description": "Org management and IAM org ID reconciliation for one tenant (the "
                                        "credential's). Every route needs a bearer token with scope `admin`."},
                   servers=[{"url": prefix}])
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("oauth2", {"type": "oauth2", "flows": {"clientCredentials": {
        "tokenUrl": "/oauth/token", "scopes": {"admin": "the admin API and console"}}}})
    spec.components.schema("Error", schema=sc.ErrorSchema)
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(current_app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint.split(".")[0] != blueprint:
            continue
        meta = getattr(current_app.view_functions[rule.endpoint], "openapi", None)
        if meta is None:
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule[len(prefix):])
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(rule.endpoint, meta, list(rule.arguments))
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _operation(endpoint: str, meta: dict[str, Any], arguments: list[str]) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": endpoint.split(".", 1)[1], "summary": meta["summary"], "tags": [meta["tag"]],
                          "security": [{"bearer": []}, {"oauth2": ["admin"]}]}
    view_doc = current_app.view_functions[endpoint].__doc__
    if view_doc:
        op["description"] = view_doc.strip()
    parameters = [{"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
                  for name in sorted(arguments)]
    parameters += [{"in": "query", "name": name, **PARAMETERS[name]} for name in meta["params"]]
    if parameters:
        op["parameters"] = parameters
    if meta["body"] is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": meta["body"]}}}
    if meta["upload"]:
        op["requestBody"] = {"required": True, "content": {
            "text/csv": {"schema": {"type": "string"}, "example": "org_id,name\n4711,ACME Berlin\n"},
            "application/json": {"schema": {"type": "array", "items": sc.IamOrgSchema}},
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "file": {"type": "string", "format": "binary"}}}}}}
    responses: dict[str, Any] = {}
    status = str(meta["status"])
    if meta["response"] is None:
        responses[status] = {"description": "done" if status == "204" else "the document"}
    else:
        schema: Any = {"type": "array", "items": meta["response"]} if meta["many"] else meta["response"]
        content = {kind: {"schema": schema if kind.endswith("json") else {"type": "string"}}
                   for kind in meta["content"]}
        responses[status] = {"description": "success", "content": content}
    for code, text in ERRORS.items():
        responses[code] = {"description": text, "content": {"application/json": {"schema": "Error"}}}
    op["responses"] = responses
    return op
