"""The SCIM resource endpoints (RFC 7644 §3.2-§3.6), registered once per resource type.

Users and Groups share every route shape; what differs is the service behind them, so the
views are built by :func:`register_resource` instead of being written twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import Protocol

from flask import Blueprint
from flask import Response
from flask import g
from flask import request

from scim_bridge.auth import require_oauth
from scim_bridge.auth.tokens import SCIM_READ
from scim_bridge.auth.tokens import SCIM_WRITE
from scim_bridge.domain.query import ListQuery
from scim_bridge.domain.query import ListResult
from scim_bridge.http import context
from scim_bridge.http.audit import audited_write
from scim_bridge.http.scim.params import list_query_from_args
from scim_bridge.http.scim.params import list_query_from_body
from scim_bridge.http.scim.params import projection_args
from scim_bridge.http.scim.params import read_json
from scim_bridge.http.scim.responses import scim_response
from scim_bridge.scim.errors import ScimError
from scim_bridge.scim.etag import etag_matches
from scim_bridge.scim.etag import weak_etag
from scim_bridge.scim.projection import Projection
from scim_bridge.scim.rendered import RenderedObject
from scim_bridge.scim.schema import ResourceType
from scim_bridge.storage.prepared import PlannedRead
from scim_bridge.storage.session import get_storage


class ResourceService(Protocol):
    """What the views need of a resource service (UserService, GroupService)."""

    def list(self, query: ListQuery) -> ListResult: ...
    def get(self, resource_id: str, projection: Projection | None = None) -> dict[str, Any] | RenderedObject: ...
    def load(self, resource_id: str, projection: Projection | None = None) -> Any: ...
    def prepare_create(self, body: Any) -> Any: ...
    def create(self, body: Any) -> Any: ...
    def replace(self, resource_id: str, body: Any, if_match: str | None = None) -> Any: ...
    def patch(self, resource_id: str, body: Any, if_match: str | None = None) -> Any: ...
    def delete(self, resource_id: str, if_match: str | None = None) -> None: ...
    def render(self, row: Any, projection: Projection | None = None) -> dict[str, Any] | RenderedObject: ...
    def render_written(self, row: Any, projection: Projection | None = None) -> dict[str, Any] | RenderedObject: ...


@dataclass(frozen=True, slots=True)
class ReadPlans:
    """How a resource's service reads, known before the request's tenant is (``require_oauth``'s *along*).

    Each returns the read the service will make for a request (``None`` when it reads otherwise
    or nothing), which the token's own statement then reads along: a GET is one statement.
    """

    get: Callable[[str, Projection, str, str], PlannedRead | None]
    """(resource id, projection, SCIM base URL, dialect name) → what ``load`` reads."""
    list: Callable[[ListQuery, str, str], PlannedRead | None] | None = None
    """(query, SCIM base URL, dialect name) → what ``list`` reads, when it is one statement."""


def register_resource(bp: Blueprint, resource_type: ResourceType, service: Callable[[], ResourceService],
                      plans: ReadPlans | None = None, *, patch_answers_no_content: bool = False,
                      creates_together: bool = False) -> None:
    """Register list, search, get, create, replace, patch and delete for *resource_type*.

    With *plans*, a GET of one resource (and a list that is one statement) is read along with
    the token's grant. *patch_answers_no_content*: a PATCH answers 204 unless the client asks for
    the resource (see :func:`patch_returns_resource`). *creates_together*: a create's INSERTs
    (its audit record's included) go to PostgreSQL as one statement (see ``unit_of_work``); for
    a service whose create only inserts rows bound beforehand.
    """
    endpoint = resource_type.endpoint
    name = resource_type.name.lower()

    def projection() -> Projection:
        if not request.query_string:
            # Neither attributes nor excludedAttributes (most requests): the shared default,
            # without parsing an empty query string into a MultiDict.
            return Projection.build(resource_type, None, None)
        return Projection.build(resource_type, *projection_args())

    def list_query() -> ListQuery:
        # Parsed once per request: when reading along with the token, before the token is accepted.
        query: ListQuery | None = g.get("scim_list_query")
        if query is None:
            query = g.scim_list_query = list_query_from_args()
        return query

    def read_along(plan: Callable[[str, str], PlannedRead | None]) -> PlannedRead | None:
        # plan(SCIM base URL, dialect name), when this storage reads along with the token.
        storage = get_storage()
        if not storage.reads_along:
            return None
        try:
            return plan(context.scim_base_url(), storage.engine.dialect.name)
        except ScimError:
            return None  # a bad query: answered by the view once the token is accepted (401 comes first)

    def get_along() -> PlannedRead | None:
        assert plans is not None
        planner = plans.get
        # The request is read inside the plan: on SQLite (no reads along) nothing of it is.
        return read_along(lambda base_url, dialect: planner((request.view_args or {})["resource_id"], projection(),
                                                            base_url, dialect))

    def list_along() -> PlannedRead | None:
        assert plans is not None and plans.list is not None
        planner = plans.list
        return read_along(lambda base_url, dialect: planner(list_query(), base_url, dialect))

    @require_oauth(SCIM_READ, along=list_along if plans is not None and plans.list is not None else None)
    def list_resources() -> Response:
        return scim_response(service().list(list_query()).to_scim())

    @require_oauth(SCIM_READ)
    def search_resources() -> Response:
        return scim_response(service().list(list_query_from_body()).to_scim())

    def respond(svc: ResourceService, row: Any, wanted: Projection, status: int = 200) -> Response:
        # ETag and Location come from the row, so they are sent even when the projection drops meta.
        # The row was just written by *svc*, which renders it from what it wrote where it can.
        location = f"{context.scim_base_url()}{endpoint}/{row.id}" if status == 201 else None
        return resource_response(svc.render_written(row, wanted), status, etag=weak_etag(row.version),
                                 location=location)

    @require_oauth(SCIM_READ, along=get_along if plans is not None else None)
    def get_resource(resource_id: str) -> Response:
        svc, wanted = service(), projection()
        row = svc.load(resource_id, wanted)  # one read, for both the ETag check and the body
        return not_modified_or(row.version, lambda: respond(svc, row, wanted))

    @require_oauth(SCIM_WRITE)
    def create_resource() -> Response:
        body, wanted = read_json(), projection()
        svc = service()
        # The body is checked and the resource built before the write transaction, and the answer
        # rendered after it (from what the write holds in memory): neither needs the write's locks.
        with audited_write("create", resource_type.name, prepare=lambda: svc.prepare_create(body),
                           inserts_together=creates_together) as write:
            row = svc.create(write.prepared)
            write.resource_id = str(row.id)
        return respond(svc, row, wanted, 201)

    @require_oauth(SCIM_WRITE)
    def replace_resource(resource_id: str) -> Response:
        body, wanted = read_json(), projection()
        with audited_write("replace", resource_type.name, resource_id):
            svc = service()
            return respond(svc, svc.replace(resource_id, body, if_match()), wanted)

    @require_oauth(SCIM_WRITE)
    def patch_resource(resource_id: str) -> Response:
        body, wanted = read_json(), projection()
        with audited_write("patch", resource_type.name, resource_id):
            svc = service()
            row = svc.patch(resource_id, body, if_match())
            # RFC 7644 §3.5.2 lets PATCH answer 204 or 200 with the resource: see patch_returns_resource.
            if not patch_returns_resource(patch_answers_no_content):
                return Response(status=204, headers={"ETag": weak_etag(row.version)})
            return respond(svc, row, wanted)

    @require_oauth(SCIM_WRITE)
    def delete_resource(resource_id: str) -> Response:
        with audited_write("delete", resource_type.name, resource_id):
            service().delete(resource_id, if_match())
        return Response(status=204)

    item = f"{endpoint}/<resource_id>"
    for rule, view, methods, doc in (
        (endpoint, list_resources, ["GET"], f"List or filter {name}s."),
        (f"{endpoint}/.search", search_resources, ["POST"], f"Search {name}s with a SearchRequest."),
        (item, get_resource, ["GET"], f"Return one {name}."),
        (endpoint, create_resource, ["POST"], f"Create a {name}."),
        (item, replace_resource, ["PUT"], f"Replace a {name}."),
        (item, patch_resource, ["PATCH"], f"Modify a {name} with a PatchOp."),
        (item, delete_resource, ["DELETE"], f"Delete a {name}."),
    ):
        view.__doc__ = doc
        bp.add_url_rule(rule, endpoint=f"{view.__name__}_{name}", view_func=view, methods=methods)


def resource_response(body: dict[str, Any] | RenderedObject, status: int = 200, *, etag: str,
                      location: str | None = None) -> Response:
    """Render a resource with its ``ETag`` (and its ``Location`` on 201, RFC 7644 §3.3)."""
    headers = {"ETag": etag}
    if status == 201:
        if location is None:
            raise ValueError("a 201 answer needs the resource's Location")
        headers["Location"] = location
    return scim_response(body, status, headers)


def not_modified_or(version: int, build: Callable[[], Response]) -> Response:
    """Return 304 when ``If-None-Match`` names *version* (RFC 7644 §3.14), else ``build()``."""
    header = request.environ.get("HTTP_IF_NONE_MATCH")  # the header, without building a Headers view
    if header and etag_matches(header, version):
        return Response(status=304, headers={"ETag": weak_etag(version)})
    return build()


def preferred_return() -> str | None:
    """Return what ``Prefer: return=…`` asks for (RFC 7240 §4.2): ``minimal``, ``representation`` or None."""
    prefer = request.headers.get("Prefer")
    if not prefer:
        return None
    for part in prefer.split(","):
        name, _, value = part.partition("=")
        wanted = value.strip().strip('"').lower()
        if name.strip().lower() == "return" and wanted in ("minimal", "representation"):
            return wanted
    return None


def patch_returns_resource(no_content_by_default: bool) -> bool:
    """Tell whether a PATCH answers 200 with the resource (RFC 7644 §3.5.2) rather than 204 and the ETag.

    The client's ``Prefer: return=minimal`` or ``return=representation`` (RFC 7240) decides;
    without one, the tenant's ``patch_returns_no_content`` answers 204. Otherwise the resource
    type's default: users answer with the resource; groups (*no_content_by_default*) with 204,
    since the resource is the whole member list (14 MB for 100,000 members; Entra asks for 204,
    Okta takes either), unless the query names ``attributes`` or ``excludedAttributes`` (the
    client says what it wants back) or the tenant's ``group_patch_returns_resource`` is set.
    """
    wanted = preferred_return()
    if wanted is not None:
        return wanted == "representation"
    settings = context.tenant().tenant_settings
    if settings.get("patch_returns_no_content"):
        return False
    if not no_content_by_default:
        return True
    if "attributes" in request.args or "excludedAttributes" in request.args:
        return True
    return bool(settings.get("group_patch_returns_resource"))


def if_match() -> str | None:
    """Return the ``If-Match`` header, if any."""
    return request.headers.get("If-Match")
