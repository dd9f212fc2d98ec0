"""The admin API (``/admin/api/v1``): org management, the reconciliation report, plans, events, audit.

Every route needs a bearer token with the ``admin`` scope; the tenant is the credential's. Views
parse, call a service of :mod:`scim_bridge.admin`, and dump through :mod:`scim_bridge.admin.schemas`.
Errors are ``{"error", "error_description", "details"}`` JSON with the status of the
:class:`~scim_bridge.admin.errors.AdminError` (400, 404, 409), 401/403 for credentials. Every list
is paged (``offset``/``limit``, events by ``after`` cursor, audit by ``before`` id).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask import Response
from flask import jsonify
from flask import request
from marshmallow import Schema
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from scim_bridge.admin import schemas as sc
from scim_bridge.admin.errors import AdminError
from scim_bridge.admin.errors import InvalidInput
from scim_bridge.admin.orgs_admin import OrgAdmin
from scim_bridge.admin.orgs_admin import OrgQuery
from scim_bridge.admin.plans import PlanService
from scim_bridge.admin.plans import export_rows
from scim_bridge.admin.plans import parse_iam_orgs
from scim_bridge.admin.plans import to_csv
from scim_bridge.admin.reconcile import SECTIONS
from scim_bridge.admin.reconcile import ReconcileService
from scim_bridge.admin.reconcile import run_suggestion
from scim_bridge.auth import require_oauth
from scim_bridge.auth.tokens import ADMIN
from scim_bridge.domain import audit
from scim_bridge.domain.events import read_events
from scim_bridge.http import context
from scim_bridge.http.admin import openapi
from scim_bridge.scim.errors import ScimError
from scim_bridge.storage.session import get_session
from scim_bridge.storage.session import unit_of_work

PREFIX = "/admin/api/v1"
bp = Blueprint("admin_api", __name__, url_prefix=PREFIX)
operation = openapi.operation


# -- errors ----------------------------------------------------------------------------------------

def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    """Render the admin API's error body."""
    body: dict[str, Any] = {"error": code, "error_description": message}
    if details:
        body["details"] = details
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


@bp.errorhandler(AdminError)
def _admin_error(error: AdminError) -> Response:
    return error_response(error.status, error.code, error.message, error.details)


@bp.errorhandler(ValidationError)
def _validation_error(error: ValidationError) -> Response:
    messages = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
    return error_response(400, "invalid_request", "the request body is invalid", {"fields": messages})


@bp.errorhandler(ScimError)
def _auth_error(error: ScimError) -> Response:
    code = {401: "invalid_token", 403: "insufficient_scope", 429: "rate_limited"}.get(error.status, "error")
    return error_response(error.status, code, error.detail, headers=getattr(error, "headers", None))


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    return error_response(status, (error.name or "error").lower().replace(" ", "_"), error.description or "")


# -- helpers ---------------------------------------------------------------------------------------

def _admin(session: Any) -> OrgAdmin:
    token = context.tenant()
    return OrgAdmin(session, token.tenant_id, context.tenant_profile(), token.actor, context.current_request_id())


def _plans(session: Any) -> PlanService:
    token = context.tenant()
    return PlanService(session, token.tenant_id, context.tenant_profile(), token.actor, context.current_request_id())


def _reconcile(session: Any) -> ReconcileService:
    return ReconcileService(session, context.tenant().tenant_id, context.tenant_profile())


def _body(schema: type[Schema]) -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object")
    loaded: dict[str, Any] = schema().load(data)
    return loaded


def _int_arg(name: str, default: int, low: int, high: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer") from None
    if value < low or (high is not None and value > high):
        raise InvalidInput(f"{name} must be between {low} and {high}" if high else f"{name} must be >= {low}")
    return value


def _bool_arg(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise InvalidInput(f"{name} must be true or false")


def _paging() -> tuple[int, int]:
    settings = context.settings()
    return _int_arg("offset", 0, 0), _int_arg("limit", settings.default_page_size, 1, settings.max_page_size)


def _dump(schema: type[Schema], obj: Any, status: int = 200) -> Response:
    response = jsonify(schema().dump(obj))
    response.status_code = status
    return response


def _org_view(admin: OrgAdmin, session: Any, org_pk: Any) -> Any:
    return admin.get(org_pk, _reconcile(session).report().org_conflicts())


PAGING = ["offset", "limit"]


# -- orgs ------------------------------------------------------------------------------------------

@bp.get("/orgs")
@require_oauth(ADMIN)
@operation("List organizations", sc.OrgPageSchema, tag="orgs", params=PAGING + ["q", "source", "orphaned", "linked",
                                                                           "conflict"])
def list_orgs() -> Response:
    """Search by name or org_id; filter by source, orphaned, linked, conflict."""
    offset, limit = _paging()
    source = request.args.get("source") or None
    if source not in (None, "idp", "manual"):
        raise InvalidInput("source must be idp or manual")
    query = OrgQuery(request.args.get("q") or None, source, _bool_arg("orphaned"), _bool_arg("linked"),
                     _bool_arg("conflict"), offset, limit)
    session = get_session()
    page = _admin(session).list(query, _reconcile(session).report().org_conflicts())
    return _dump(sc.OrgPageSchema, sc.page_dict(page))


@bp.post("/orgs")
@require_oauth(ADMIN)
@operation("Create an organization by hand", sc.OrgSchema, status=201, body=sc.OrgCreateSchema, tag="orgs")
def create_org() -> Response:
    """The org_id must be unique and accepted by the tenant's mapping profile."""
    data = _body(sc.OrgCreateSchema)
    with unit_of_work() as session:
        admin = _admin(session)
        org = admin.create(data["org_id"], data["name"])
        view = _org_view(admin, session, org.id)
    return _dump(sc.OrgSchema, view, 201)


@bp.get("/orgs/export")
@require_oauth(ADMIN)
@operation("Export every organization (CSV or JSON)", sc.OrgSchema, many=True, tag="orgs", params=["format"],
           content=("application/json", "text/csv"))
def export_orgs() -> Response:
    """``?format=csv`` returns ``org_id,name,...`` (it reads back as an IAM list); JSON by default."""
    fmt = (request.args.get("format") or "json").lower()
    if fmt not in ("csv", "json"):
        raise InvalidInput("format must be csv or json")
    session = get_session()
    views = _admin(session).all(_reconcile(session).report().org_conflicts())
    if fmt == "csv":
        return Response(to_csv(export_rows(views)), mimetype="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="orgs.csv"'})
    return jsonify(sc.OrgSchema(many=True).dump(views))


@bp.get("/orgs/<org>")
@require_oauth(ADMIN)
@operation("Show an organization", sc.OrgSchema, tag="orgs")
def get_org(org: str) -> Response:
    """Return one organization by its id."""
    session = get_session()
    return _dump(sc.OrgSchema, _org_view(_admin(session), session, org))


@bp.patch("/orgs/<org>")
@require_oauth(ADMIN)
@operation("Rename and/or re-key an organization", sc.OrgSchema, body=sc.OrgEditSchema, tag="orgs")
def edit_org(org: str) -> Response:
    """A re-key is recorded in the event log (``org.rekeyed``) with before/after."""
    data = _body(sc.OrgEditSchema)
    with unit_of_work() as session:
        admin = _admin(session)
        row = admin.edit(admin.require(org, for_update=True), name=data.get("name"), org_id=data.get("org_id"),
                         expected_version=data.get("version"))
        view = _org_view(admin, session, row.id)
    return _dump(sc.OrgSchema, view)


@bp.delete("/orgs/<org>")
@require_oauth(ADMIN)
@operation("Delete an organization (manual or orphaned only)", None, status=204, tag="orgs")
def delete_org(org: str) -> Response:
    """Refused (409 ``refused``) for an org a live group manages."""
    with unit_of_work() as session:
        admin = _admin(session)
        admin.delete(admin.require(org, for_update=True))
    return Response(status=204)


@bp.get("/orgs/<org>/members")
@require_oauth(ADMIN)
@operation("List an organization's members", sc.MemberPageSchema, tag="orgs", params=PAGING)
def list_members(org: str) -> Response:
    """Each member says how they got there: ``idp`` (a group), ``manual``, or both."""
    offset, limit = _paging()
    return _dump(sc.MemberPageSchema, sc.page_dict(_admin(get_session()).members(org, offset, limit)))


@bp.post("/orgs/<org>/members")
@require_oauth(ADMIN)
@operation("Assign a user by hand", sc.OrgSchema, status=201, body=sc.AssignSchema, tag="orgs")
def assign_member(org: str) -> Response:
    """The membership is ``manual``: IdP syncs leave it alone."""
    data = _body(sc.AssignSchema)
    with unit_of_work() as session:
        admin = _admin(session)
        row = admin.require(org, for_update=True)
        admin.assign(row, admin.require_user(data["user"]))
        view = _org_view(admin, session, row.id)
    return _dump(sc.OrgSchema, view, 201)


@bp.delete("/orgs/<org>/members/<user>")
@require_oauth(ADMIN)
@operation("Remove a manual membership", None, status=204, tag="orgs")
def unassign_member(org: str, user: str) -> Response:
    """A membership the IdP manages (through a group) is refused with 409 ``refused``."""
    with unit_of_work() as session:
        admin = _admin(session)
        admin.unassign(admin.require(org, for_update=True), admin.require_user(user))
    return Response(status=204)


@bp.put("/orgs/<org>/group")
@require_oauth(ADMIN)
@operation("Link an organization to a SCIM group", sc.OrgSchema, body=sc.LinkSchema, tag="orgs")
def link_group(org: str) -> Response:
    """The group's members (also through nested groups) get the org."""
    data = _body(sc.LinkSchema)
    with unit_of_work() as session:
        admin = _admin(session)
        row = admin.require(org, for_update=True)
        admin.link(row, admin.require_group(data["group"]))
        view = _org_view(admin, session, row.id)
    return _dump(sc.OrgSchema, view)


@bp.delete("/orgs/<org>/group")
@require_oauth(ADMIN)
@operation("Unlink an organization from its group", sc.OrgSchema, tag="orgs")
def unlink_group(org: str) -> Response:
    """The IdP memberships the group gave go; manual memberships stay."""
    with unit_of_work() as session:
        admin = _admin(session)
        row = admin.require(org, for_update=True)
        admin.unlink(row)
        view = _org_view(admin, session, row.id)
    return _dump(sc.OrgSchema, view)


# -- users -----------------------------------------------------------------------------------------

@bp.get("/users")
@require_oauth(ADMIN)
@operation("List users with their org and role", sc.UserPageSchema, tag="users", params=PAGING + ["q"])
def list_users() -> Response:
    """Search by userName or displayName."""
    offset, limit = _paging()
    page = _admin(get_session()).users(request.args.get("q") or None, offset, limit)
    return _dump(sc.UserPageSchema, sc.page_dict(page))


@bp.get("/users/<user>")
@require_oauth(ADMIN)
@operation("Show a user: memberships and variables", sc.UserSchema, tag="users")
def get_user(user: str) -> Response:
    """By id or userName."""
    return _dump(sc.UserSchema, _admin(get_session()).user(user))


# -- reconciliation --------------------------------------------------------------------------------

@bp.get("/reconcile/report")
@require_oauth(ADMIN)
@operation("The reconciliation report", sc.ReportSchema, tag="reconcile")
def report() -> Response:
    """Findings per kind with counts and a suggested action each."""
    return _dump(sc.ReportSchema, sc.report_dict(_reconcile(get_session()).report(), SECTIONS))


@bp.post("/reconcile/actions")
@require_oauth(ADMIN)
@operation("Run a suggested action of the report", sc.ActionResultSchema, body=sc.SuggestionRunSchema,
           tag="reconcile")
def run_action() -> Response:
    """``action`` and ``params`` as the report's suggestion gives them."""
    data = _body(sc.SuggestionRunSchema)
    with unit_of_work() as session:
        message = run_suggestion(_admin(session), data["action"], dict(data["params"]))
    return jsonify(message=message)


@bp.post("/reconcile/plans")
@require_oauth(ADMIN)
@operation("Make a plan from an IAM org list (a dry run)", sc.PlanSchema, status=201, tag="reconcile",
           params=["name", "format"], upload=True)
def make_plan() -> Response:
    """Body: the IAM export as ``text/csv`` (``org_id,name``) or JSON, or a multipart ``file``."""
    content, filename = _upload()
    fmt, entries = parse_iam_orgs(content, request.args.get("format"), filename)
    with unit_of_work() as session:
        service = _plans(session)
        plan = service.make(entries, request.args.get("name") or filename, fmt)
        body = sc.plan_dict(plan, service.lines(plan))
    return _dump(sc.PlanSchema, body, 201)


def _upload() -> tuple[bytes, str | None]:
    if request.files:
        file = request.files.get("file") or next(iter(request.files.values()))
        return file.read(), file.filename
    data = request.get_data(cache=False)
    if not data:
        raise InvalidInput("send the IAM org list as the body (text/csv or application/json) or as a multipart file")
    kind = (request.mimetype or "").lower()
    return data, "upload.json" if kind.endswith("json") else "upload.csv" if "csv" in kind else None


@bp.get("/reconcile/plans")
@require_oauth(ADMIN)
@operation("List plans, newest first", sc.PlanPageSchema, tag="reconcile", params=PAGING)
def list_plans() -> Response:
    """Plans and their outcome are kept."""
    offset, limit = _paging()
    page = _plans(get_session()).list(offset, limit)
    body = sc.page_dict(page) | {"items": [sc.plan_dict(p) for p in page.items]}
    return _dump(sc.PlanPageSchema, body)


@bp.get("/reconcile/plans/<plan>")
@require_oauth(ADMIN)
@operation("Show a plan with its lines", sc.PlanSchema, tag="reconcile")
def get_plan(plan: str) -> Response:
    """Each line has its reason and, once applied, its status."""
    service = _plans(get_session())
    row = service.get(plan)
    return _dump(sc.PlanSchema, sc.plan_dict(row, service.lines(row)))


@bp.post("/reconcile/plans/<plan>/apply")
@require_oauth(ADMIN)
@operation("Apply a plan, all or nothing", sc.PlanSchema, tag="reconcile")
def apply_plan(plan: str) -> Response:
    """409 ``stale_plan`` when the data changed since the plan was made, ``plan_failed`` when a line failed."""
    with unit_of_work() as session:
        service = _plans(session)
        row = service.apply(plan)
        body = sc.plan_dict(row, service.lines(row))
    if row.status == "refused":
        return error_response(409, "stale_plan", row.outcome or "", {"plan": sc.PlanSchema().dump(body)})
    if row.status == "failed":
        return error_response(409, "plan_failed", row.outcome or "", {"plan": sc.PlanSchema().dump(body)})
    return _dump(sc.PlanSchema, body)


# -- logs ------------------------------------------------------------------------------------------

@bp.get("/events")
@require_oauth(ADMIN)
@operation("Read the event log after a cursor", sc.EventPageSchema, tag="logs", params=["after", "limit"])
def events() -> Response:
    """Oldest first; store ``nextCursor`` and pass it as ``after`` next time."""
    after = _int_arg("after", 0, 0)
    limit = _int_arg("limit", context.settings().default_page_size, 1, context.settings().max_page_size)
    items = read_events(get_session(), context.tenant().tenant_id, after, limit)
    return _dump(sc.EventPageSchema, {"items": items, "next_cursor": items[-1]["cursor"] if items else after})


@bp.get("/audit")
@require_oauth(ADMIN)
@operation("Read the audit log, newest first", sc.AuditPageSchema, tag="logs",
           params=["before", "limit", "action", "outcome"])
def audit_log() -> Response:
    """``action`` matches itself and its prefix (``org`` matches ``org.create``, ...)."""
    limit = _int_arg("limit", context.settings().default_page_size, 1, context.settings().max_page_size)
    before = _int_arg("before", 0, 0) or None
    outcome = request.args.get("outcome") or None
    flt = audit.AuditFilter(context.tenant().tenant_id, action=request.args.get("action") or None,
                            outcome=outcome, before_id=before)
    rows = audit.query(get_session(), flt, limit)
    items = [audit.to_dict(row) for row in rows]
    return _dump(sc.AuditPageSchema, {"items": items,
                                      "next_before": rows[-1].id if len(rows) == limit else None})


# -- the document ----------------------------------------------------------------------------------

@bp.get("/openapi.json")
@require_oauth(ADMIN)
@operation("This OpenAPI 3 document", None, tag="meta")
def openapi_document() -> Response:
    """Generated from the marshmallow schemas the views use."""
    return jsonify(openapi.document(bp.name, PREFIX))

