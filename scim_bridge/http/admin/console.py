"""The admin web console (``/admin``): server-rendered pages over the same services as the admin API.

Hardening:

* sign-in with an admin credential (:mod:`scim_bridge.auth.console`), re-checked on every request;
  the cookie holds only a random id (signed, ``HttpOnly``, ``SameSite=Lax``, ``Path=/admin``,
  ``Secure`` on https or as configured) and expires with the session;
* every form carries a per-session random CSRF token, compared with :func:`hmac.compare_digest`;
  any POST without it is refused (403) before anything else runs, sign-in included;
* sign-in attempts count against the address like the OAuth endpoints (429 beyond);
* pages are ``no-store`` with a strict Content-Security-Policy (no script at all) and no framing.

Only the sign-in page and the static files answer without a session; every other route redirects
to sign-in (GET) and declares ``required_scope = "admin"`` plus ``console_session = True``.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint
from flask import Flask
from flask import Request
from flask import Response
from flask import abort
from flask import flash
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask.sessions import SecureCookieSessionInterface
from flask.sessions import SessionMixin
from werkzeug.exceptions import HTTPException

from scim_bridge.admin.errors import AdminError
from scim_bridge.admin.orgs_admin import OrgAdmin
from scim_bridge.admin.orgs_admin import OrgQuery
from scim_bridge.admin.plans import PlanService
from scim_bridge.admin.plans import parse_iam_orgs
from scim_bridge.admin.reconcile import SECTIONS
from scim_bridge.admin.reconcile import ReconcileService
from scim_bridge.admin.reconcile import run_suggestion
from scim_bridge.auth import console as console_auth
from scim_bridge.auth import ratelimit
from scim_bridge.auth.console import ConsoleIdentity
from scim_bridge.auth.tokens import ADMIN
from scim_bridge.domain import audit
from scim_bridge.domain.events import read_events
from scim_bridge.http import context
from scim_bridge.settings import Settings
from scim_bridge.storage.session import get_session
from scim_bridge.storage.session import unit_of_work

bp = Blueprint("admin_console", __name__, url_prefix="/admin", template_folder="templates",
               static_folder="static", static_url_path="/static")
PUBLIC_ENDPOINTS = ("admin_console.sign_in", "admin_console.static")
COOKIE = "scim_bridge_console"
PAGE = 50
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, ``Secure`` per request when configured as ``auto``.

    Only the console has a session: its cookie's path is ``/admin``, so no other request carries
    one, and every other request (SCIM, the token endpoint, the admin API) gets Flask's null
    session instead of a signing serializer built and a cookie looked for on each request.
    """

    def __init__(self, secure: str) -> None:
        self._secure = secure.strip().lower()

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        """Open the console's session; other paths get the null session (nothing to read or save)."""
        if request.path != bp.url_prefix and not request.path.startswith(f"{bp.url_prefix}/"):
            return self.make_null_session(app)
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        """Return whether the cookie gets ``Secure``: always, never, or when the request is https."""
        if self._secure in ("1", "true", "yes", "on"):
            return True
        if self._secure in ("0", "false", "no", "off"):
            return False
        return request.is_secure


def init_app(app: Flask, settings: Settings) -> None:
    """Configure the console cookie and register the blueprint."""
    app.config.update(SESSION_COOKIE_NAME=COOKIE, SESSION_COOKIE_PATH="/admin", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax",
                      PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.console_session_lifetime_seconds))
    app.session_interface = ConsoleSessionInterface(settings.console_cookie_secure)
    app.register_blueprint(bp)


# -- request pipeline ------------------------------------------------------------------------------

@bp.before_request
def _load() -> Response | None:
    if request.endpoint == "admin_console.static":
        return None
    session.permanent = True
    session.setdefault("csrf", secrets.token_urlsafe(32))
    if request.method == "POST" and not _csrf_ok():
        abort(403, "the form is missing its CSRF token or it does not match your session; reload the page")
    g.console = None
    raw = session.get("sid")
    if raw:
        settings = context.settings()
        with unit_of_work() as db:
            g.console = console_auth.resume(db, raw, timedelta(seconds=settings.console_idle_timeout_seconds))
        if g.console is None:
            session.pop("sid", None)
            flash("Your session ended (expired, signed out, or its credential was revoked). Sign in again.", "error")
    return None


def _csrf_ok() -> bool:
    sent = request.form.get("csrf_token", "")
    expected = session.get("csrf", "")
    return bool(sent) and bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


@bp.after_request
def _harden(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "admin_console.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> tuple[str, int]:
    return render_template("admin/error.html", status=error.code, message=error.description), error.code or 500


@bp.context_processor
def _template_globals() -> dict[str, Any]:
    return {"csrf_token": lambda: session.get("csrf", ""), "console": g.get("console")}


def signed_in(view: Callable[..., Any]) -> Callable[..., Any]:
    """Require a live console session (redirect to sign-in otherwise); declare the admin scope."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.get("console") is None:
            target = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("admin_console.sign_in", next=target))
        return view(*args, **kwargs)

    wrapper.required_scope = ADMIN  # type: ignore[attr-defined]
    wrapper.console_session = True  # type: ignore[attr-defined]
    return wrapper


def who() -> ConsoleIdentity:
    """Return the signed-in identity."""
    identity: ConsoleIdentity = g.console
    return identity


def _profile() -> Any:
    name = who().tenant_profile
    found = context.profiles().get(name)
    if found is None:
        abort(500, f"the tenant's mapping profile '{name}' is not loaded on this server")
    return found


def _admin(db: Any) -> OrgAdmin:
    return OrgAdmin(db, who().tenant_id, _profile(), who().actor, context.current_request_id())


def _plans(db: Any) -> PlanService:
    return PlanService(db, who().tenant_id, _profile(), who().actor, context.current_request_id())


def _conflicts(db: Any) -> dict[Any, list[str]]:
    return ReconcileService(db, who().tenant_id, _profile()).report().org_conflicts()


def _act(action: Callable[[Any], str | None], back: str) -> Response:
    """Run a write in one unit of work; flash its message or its refusal; redirect (post/redirect/get)."""
    try:
        with unit_of_work() as db:
            message = action(db)
        if message:
            flash(message, "ok")
    except AdminError as exc:
        flash(exc.message, "error")
    return redirect(back)


def _page() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


# -- sign-in ---------------------------------------------------------------------------------------

@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    """Sign in with an admin token, or an OAuth client id and secret with the admin scope."""
    if request.method == "GET":
        if g.get("console") is not None:
            return redirect(url_for("admin_console.orgs"))
        return render_template("admin/sign_in.html", next=request.args.get("next", ""))
    settings = context.settings()
    limit = settings.token_rate_limit_per_minute
    if limit > 0:
        with unit_of_work() as db:
            decision = ratelimit.hit(db, f"console-addr:{request.remote_addr or 'unknown'}", limit)
        if not decision.allowed:
            abort(429, f"too many sign-in attempts; retry in {decision.retry_after} s")
    form = request.form
    try:
        with unit_of_work() as db:
            raw, identity = console_auth.sign_in(
                db, form.get("token") or None, form.get("client_id") or None, form.get("client_secret") or None,
                timedelta(seconds=settings.console_session_lifetime_seconds), context.current_request_id(),
                request.remote_addr)
    except console_auth.ConsoleAuthError as exc:
        with unit_of_work() as db:
            console_auth.record_failure(db, exc, context.current_request_id(), request.remote_addr)
        return render_template("admin/sign_in.html", error=str(exc), next=form.get("next", "")), 401
    session.clear()  # a fresh session (and CSRF token) on every sign-in: no fixation
    session.permanent = True
    session["sid"] = raw
    session["csrf"] = secrets.token_urlsafe(32)
    flash(f"Signed in to {identity.tenant_name} ({identity.tenant_slug}).", "ok")
    return redirect(_safe_next(form.get("next", "")) or url_for("admin_console.orgs"))


def _safe_next(target: str) -> str | None:
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin/") or target.startswith("//"):
        return None
    return target


@bp.post("/sign-out")
@signed_in
def sign_out() -> Response:
    """End the session here and in the database."""
    with unit_of_work() as db:
        console_auth.sign_out(db, session.get("sid", ""), context.current_request_id(), request.remote_addr)
    session.clear()
    flash("Signed out.", "ok")
    return redirect(url_for("admin_console.sign_in"))


@bp.get("/")
@signed_in
def home() -> Response:
    """Start on the organizations."""
    return redirect(url_for("admin_console.orgs"))


# -- organizations ---------------------------------------------------------------------------------

@bp.get("/orgs")
@signed_in
def orgs() -> str:
    """List, search and filter organizations; add one."""
    page, args = _page(), request.args
    show = args.get("show", "")
    query = OrgQuery(args.get("q") or None, args.get("source") or None, True if show == "orphaned" else None, None,
                     True if show == "conflict" else None, (page - 1) * PAGE, PAGE)
    db = get_session()
    result = _admin(db).list(query, _conflicts(db))
    return render_template("admin/orgs.html", page=result, number=page, args=args)


@bp.post("/orgs")
@signed_in
def create_org() -> Response:
    """Add an organization by hand."""
    def create(db: Any) -> str:
        org = _admin(db).create(request.form.get("org_id", ""), request.form.get("name", ""))
        return f"Created organization {org.org_id} ({org.name})."

    return _act(create, url_for("admin_console.orgs"))


@bp.get("/orgs/<org>")
@signed_in
def org_detail(org: str) -> str:
    """One organization: edit it, its members, assign users, link a group."""
    db = get_session()
    admin = _admin(db)
    try:
        view = admin.get(org, _conflicts(db))
    except AdminError as exc:
        abort(404, exc.message)
    members = admin.members(view.id, (_page() - 1) * PAGE, PAGE)
    return render_template("admin/org.html", org=view, members=members, number=_page())


@bp.post("/orgs/<org>/edit")
@signed_in
def edit_org(org: str) -> Response:
    """Rename and/or re-key."""
    form = request.form

    def edit(db: Any) -> str:
        admin = _admin(db)
        row = admin.edit(admin.require(org, for_update=True), name=form.get("name"), org_id=form.get("org_id"),
                         expected_version=int(form["version"]) if form.get("version", "").isdigit() else None)
        return f"Saved organization {row.org_id} ({row.name})."

    return _act(edit, url_for("admin_console.org_detail", org=org))


@bp.post("/orgs/<org>/delete")
@signed_in
def delete_org(org: str) -> Response:
    """Delete (manual or orphaned only)."""
    def delete(db: Any) -> str:
        admin = _admin(db)
        row = admin.require(org, for_update=True)
        label = f"{row.org_id} ({row.name})"
        admin.delete(row)
        return f"Deleted organization {label}."

    try:
        with unit_of_work() as db:
            flash(delete(db), "ok")
    except AdminError as exc:
        flash(exc.message, "error")
        return redirect(url_for("admin_console.org_detail", org=org))
    return redirect(url_for("admin_console.orgs"))


@bp.post("/orgs/<org>/assign")
@signed_in
def assign(org: str) -> Response:
    """Assign a user by hand."""
    def run(db: Any) -> str:
        admin = _admin(db)
        user = admin.require_user(request.form.get("user", "").strip())
        admin.assign(admin.require(org, for_update=True), user)
        return f"Assigned {user.user_name} by hand."

    return _act(run, url_for("admin_console.org_detail", org=org))


@bp.post("/orgs/<org>/unassign")
@signed_in
def unassign(org: str) -> Response:
    """Remove a manual membership."""
    def run(db: Any) -> str:
        admin = _admin(db)
        user = admin.require_user(request.form.get("user", ""))
        admin.unassign(admin.require(org, for_update=True), user)
        return f"Removed {user.user_name}'s manual membership."

    return _act(run, url_for("admin_console.org_detail", org=org))


@bp.post("/orgs/<org>/link")
@signed_in
def link(org: str) -> Response:
    """Link to a SCIM group."""
    def run(db: Any) -> str:
        admin = _admin(db)
        group = admin.require_group(request.form.get("group", "").strip())
        admin.link(admin.require(org, for_update=True), group)
        return f"Linked to group {group.display_name}."

    return _act(run, url_for("admin_console.org_detail", org=org))


@bp.post("/orgs/<org>/unlink")
@signed_in
def unlink(org: str) -> Response:
    """Unlink from its group."""
    def run(db: Any) -> str:
        admin = _admin(db)
        group = admin.unlink(admin.require(org, for_update=True))
        return f"Unlinked from group {group.display_name}."

    return _act(run, url_for("admin_console.org_detail", org=org))


# -- reconciliation --------------------------------------------------------------------------------

@bp.get("/reconcile")
@signed_in
def reconcile() -> str:
    """The report with one-click actions, plan upload, recent plans."""
    db = get_session()
    report = ReconcileService(db, who().tenant_id, _profile()).report()
    plans = _plans(db).list(0, 10).items
    return render_template("admin/reconcile.html", report=report, sections=SECTIONS, plans=plans)


@bp.post("/reconcile/act")
@signed_in
def act() -> Response:
    """Run one suggested action of the report."""
    form = request.form
    params = {key[len("p_"):]: value for key, value in form.items() if key.startswith("p_")}
    return _act(lambda db: run_suggestion(_admin(db), form.get("action", ""), params) + ".",
                url_for("admin_console.reconcile"))


@bp.post("/reconcile/plans")
@signed_in
def upload_plan() -> Response:
    """Make a plan (a dry run) from an uploaded or pasted IAM list."""
    file = request.files.get("file")
    content: bytes = file.read() if file is not None and file.filename else request.form.get("text", "").encode()
    name = file.filename if file is not None and file.filename else "pasted list"
    try:
        fmt, entries = parse_iam_orgs(content, request.form.get("format") or None, name)
        with unit_of_work() as db:
            plan = _plans(db).make(entries, name, fmt)
    except AdminError as exc:
        flash(exc.message, "error")
        return redirect(url_for("admin_console.reconcile"))
    return redirect(url_for("admin_console.plan", plan=plan.id))


@bp.get("/reconcile/plans/<plan>")
@signed_in
def plan(plan: str) -> str:
    """Preview a plan (or see its outcome)."""
    service = _plans(get_session())
    try:
        row = service.get(plan)
    except AdminError as exc:
        abort(404, exc.message)
    return render_template("admin/plan.html", plan=row, lines=service.lines(row))


@bp.post("/reconcile/plans/<plan>/apply")
@signed_in
def apply_plan(plan: str) -> Response:
    """Apply a plan, all or nothing; refused when the data changed since."""
    def run(db: Any) -> None:
        row = _plans(db).apply(plan)
        flash(row.outcome or row.status, "ok" if row.status == "applied" else "error")

    return _act(run, url_for("admin_console.plan", plan=plan))


# -- users, events, audit --------------------------------------------------------------------------

@bp.get("/users")
@signed_in
def users() -> str:
    """Users with their org and role."""
    page = _page()
    result = _admin(get_session()).users(request.args.get("q") or None, (page - 1) * PAGE, PAGE)
    return render_template("admin/users.html", page=result, number=page, args=request.args)


@bp.get("/users/<user>")
@signed_in
def user(user: str) -> str:
    """One user: memberships and variables."""
    try:
        view = _admin(get_session()).user(user)
    except AdminError as exc:
        abort(404, exc.message)
    return render_template("admin/user.html", user=view)


@bp.get("/events")
@signed_in
def events() -> str:
    """The event log, oldest first from a cursor."""
    try:
        after = max(0, int(request.args.get("after", "0")))
    except ValueError:
        after = 0
    items = read_events(get_session(), who().tenant_id, after, PAGE)
    return render_template("admin/events.html", items=items, after=after,
                           next_cursor=items[-1]["cursor"] if len(items) == PAGE else None)


@bp.get("/audit")
@signed_in
def audit_log() -> str:
    """The audit log, newest first."""
    try:
        before = int(request.args.get("before", "0")) or None
    except ValueError:
        before = None
    action = request.args.get("action") or None
    rows = audit.query(get_session(), audit.AuditFilter(who().tenant_id, action=action, before_id=before), PAGE)
    return render_template("admin/audit.html", items=[audit.to_dict(r) for r in rows], action=action or "",
                           next_before=rows[-1].id if len(rows) == PAGE else None)
