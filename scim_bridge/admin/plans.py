"""Reconciliation plans: from the enterprise's IAM org list to a reviewed, atomically applied change set.

An admin uploads the export of their IAM system, ``org_id,name`` as CSV (a header row is optional;
with one, the columns may be anywhere, so an export of this service reads back) or JSON (a list of
``{"org_id"|"orgId"|"id", "name"}``, the same under ``"orgs"``, or an ``{org_id: name}`` object).
:meth:`PlanService.make` turns it into a plan, each line with its reason:

1. an org with the entry's org_id exists: ``rename`` it when the names differ;
2. otherwise exactly one org has the entry's name (case-insensitively) and an org_id the file does
   not list: ``rekey`` it to the IAM org ID (its members and group stay);
3. otherwise ``create`` it;
4. ``unlink`` an org from a group that carries another listed IAM org ID, and ``link`` each org that
   has no group to the one free group carrying its org_id (or, failing that, its name).

Ambiguities (two orgs or two groups that could be meant) are never guessed: they become notes.
A plan is a dry run until applied: :meth:`PlanService.apply` refuses it when the tenant's orgs or
groups changed since (``state_hash``), else runs every line in one SAVEPOINT, all or nothing, and
keeps the outcome on the plan and on each line.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scim_bridge.admin.errors import AdminError
from scim_bridge.admin.errors import Conflict
from scim_bridge.admin.errors import InvalidInput
from scim_bridge.admin.errors import NotFound
from scim_bridge.admin.orgs_admin import MAX_NAME
from scim_bridge.admin.orgs_admin import MAX_ORG_ID
from scim_bridge.admin.orgs_admin import OrgAdmin
from scim_bridge.admin.orgs_admin import OrgView
from scim_bridge.admin.orgs_admin import Page
from scim_bridge.admin.reconcile import GroupMapping
from scim_bridge.admin.reconcile import analyse_group
from scim_bridge.domain import audit
from scim_bridge.mappings.model import Profile
from scim_bridge.scim.errors import ScimError
from scim_bridge.storage.base import utcnow
from scim_bridge.storage.models import Group
from scim_bridge.storage.models import Org
from scim_bridge.storage.models import ReconcilePlan
from scim_bridge.storage.models import ReconcilePlanLine
from scim_bridge.storage.repositories.common import parse_id

MAX_ENTRIES = 50_000
ACTIONS = ("unlink", "rekey", "create", "rename", "link")
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class IamOrg:
    """One entry of the IAM export: an org_id, its name, and where it was in the file."""

    org_id: str
    name: str
    line: int


@dataclass(slots=True)
class PlannedLine:
    """A line of a plan before it is stored."""

    action: str
    reason: str
    org_pk: uuid.UUID | None = None
    org_id: str | None = None
    new_org_id: str | None = None
    name: str | None = None
    new_name: str | None = None
    group_id: uuid.UUID | None = None
    group_name: str | None = None


# -- parsing ---------------------------------------------------------------------------------------


def detect_format(content: bytes | str, fmt: str | None = None, filename: str | None = None) -> str:
    """Return ``csv`` or ``json``: as told, else from the file name, else from the first character."""
    if fmt:
        if fmt.lower() not in ("csv", "json"):
            raise InvalidInput(f"unknown format {fmt!r} (csv or json)")
        return fmt.lower()
    suffix = PurePath(filename).suffix.lower() if filename else ""
    if suffix in (".csv", ".json"):
        return suffix[1:]
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    return "json" if text.lstrip("\ufeff \t\r\n")[:1] in ("[", "{") else "csv"


def parse_iam_orgs(content: bytes | str, fmt: str | None = None,
                   filename: str | None = None) -> tuple[str, list[IamOrg]]:
    """Return the format and the entries of an IAM export; :class:`InvalidInput` lists the problems."""
    kind = detect_format(content, fmt, filename)
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput("the file is not UTF-8 text") from exc
    raw = _parse_json(content) if kind == "json" else _parse_csv(content)
    problems: list[str] = []
    entries: list[IamOrg] = []
    seen: dict[str, int] = {}
    for line, org_id, name in raw:
        org_id, name = (org_id or "").strip(), (name or "").strip()
        where = f"line {line}" if kind == "csv" else f"entry {line}"
        if not org_id:
            problems.append(f"{where}: the org_id is empty")
        elif len(org_id) > MAX_ORG_ID or any(ord(c) < 32 for c in org_id):
            problems.append(f"{where}: the org_id must be 1-{MAX_ORG_ID} printable characters")
        elif not name:
            problems.append(f"{where}: org_id {org_id!r} has no name")
        elif len(name) > MAX_NAME:
            problems.append(f"{where}: the name is longer than {MAX_NAME} characters")
        elif org_id in seen:
            problems.append(f"{where}: org_id {org_id!r} is listed twice (also {where.split()[0]} {seen[org_id]})")
        else:
            seen[org_id] = line
            entries.append(IamOrg(org_id, name, line))
    if problems:
        shown = problems[:10] + ([f"... and {len(problems) - 10} more"] if len(problems) > 10 else [])
        raise InvalidInput("the IAM org list has problems: " + "; ".join(shown), {"problems": problems[:100]})
    if not entries:
        raise InvalidInput("the IAM org list is empty")
    if len(entries) > MAX_ENTRIES:
        raise InvalidInput(f"the IAM org list has {len(entries)} entries; at most {MAX_ENTRIES} per plan")
    return kind, entries


def _parse_csv(text: str) -> list[tuple[int, str | None, str | None]]:
    rows = [(n, row) for n, row in enumerate(csv.reader(io.StringIO(text)), start=1)
            if row and any(c.strip() for c in row) and not row[0].lstrip().startswith("#")]
    if not rows:
        return []
    header = [c.strip().lower().replace(" ", "_") for c in rows[0][1]]
    id_col, name_col = 0, 1
    if "name" in header and ({"org_id", "orgid", "id"} & set(header)):
        id_col = next(header.index(k) for k in ("org_id", "orgid", "id") if k in header)
        name_col = header.index("name")
        rows = rows[1:]
    out: list[tuple[int, str | None, str | None]] = []
    for n, row in rows:
        out.append((n, row[id_col] if len(row) > id_col else None, row[name_col] if len(row) > name_col else None))
    return out


def _parse_json(text: str) -> list[tuple[int, str | None, str | None]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the file is not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    if isinstance(data, dict):
        for key in ("orgs", "organizations", "items", "Resources"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
        else:
            if all(isinstance(v, str) for v in data.values()):
                return [(n, str(k), v) for n, (k, v) in enumerate(data.items(), start=1)]
            raise InvalidInput('expected a list of {"org_id", "name"} objects, or an {org_id: name} object')
    if not isinstance(data, list):
        raise InvalidInput('expected a list of {"org_id", "name"} objects')
    out: list[tuple[int, str | None, str | None]] = []
    for n, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            raise InvalidInput(f"entry {n} is not an object")
        org_id = next((item[k] for k in ("org_id", "orgId", "id") if item.get(k) is not None), None)
        name = item.get("name", item.get("displayName"))
        out.append((n, None if org_id is None else str(org_id), None if name is None else str(name)))
    return out


# -- state fingerprint -----------------------------------------------------------------------------


def state_hash(session: Session, tenant_id: uuid.UUID, profile: Profile) -> str:
    """Fingerprint what a plan depends on: the tenant's orgs and groups (not memberships) and its profile."""
    digest = hashlib.sha256(f"profile={profile.name}\n".encode())
    for row in session.execute(select(Org.id, Org.org_id, Org.name, Org.source, Org.group_id, Org.orphaned)
                               .where(Org.tenant_id == tenant_id).order_by(Org.id)):
        digest.update(("org\x1f" + "\x1f".join(str(v) for v in row) + "\n").encode())
    for row in session.execute(select(Group.id, Group.display_name, Group.external_id, Group.iam_org_id)
                               .where(Group.tenant_id == tenant_id).order_by(Group.id)):
        digest.update(("group\x1f" + "\x1f".join(str(v) for v in row) + "\n").encode())
    return digest.hexdigest()


# -- planning --------------------------------------------------------------------------------------


def _fold(text: str | None) -> str:
    return (text or "").strip().casefold()


def _keys(group: Group, mapping: GroupMapping) -> set[str]:
    return {k for k in (mapping.org_id, group.external_id, group.iam_org_id) if k}


def compute_plan(entries: list[IamOrg], orgs: list[Org], groups: list[Group],
                 mappings: dict[uuid.UUID, GroupMapping], profile: Profile) -> tuple[list[PlannedLine], list[str]]:
    """Return the lines (in the order they run) and the notes of a plan; pure, no I/O."""
    notes: list[str] = []
    by_id = {o.org_id: o for o in orgs}
    by_name: dict[str, list[Org]] = defaultdict(list)
    for org in orgs:
        by_name[_fold(org.name)].append(org)
    file_ids = {e.org_id for e in entries}
    names_by_id = {e.org_id: e.name for e in entries}
    groups_by_id = {g.id: g for g in groups}
    pattern = profile.orgs.org_id.validate
    unlinks: list[PlannedLine] = []
    rekeys: list[PlannedLine] = []
    creates: list[PlannedLine] = []
    renames: list[PlannedLine] = []
    links: list[PlannedLine] = []
    target: dict[str, Org | None] = {}
    claimed: set[uuid.UUID] = set()

    valid = []
    for e in entries:
        if pattern is not None and not pattern.regex.fullmatch(e.org_id):
            notes.append(f"skipped {e.org_id!r} ({e.name}): it does not match /{pattern.text}/ of profile "
                         f"'{profile.name}'")
        else:
            valid.append(e)
    for e in valid:
        org = by_id.get(e.org_id)
        if org is not None:
            target[e.org_id] = org
            claimed.add(org.id)
            if org.name != e.name:
                renames.append(PlannedLine("rename", f"the IAM system names org {e.org_id} {e.name!r}", org.id,
                                           org.org_id, None, org.name, e.name))
    for e in valid:
        if e.org_id in target:
            continue
        candidates = [o for o in by_name.get(_fold(e.name), []) if o.id not in claimed and o.org_id not in file_ids]
        if len(candidates) == 1:
            org = candidates[0]
            target[e.org_id] = org
            claimed.add(org.id)
            rekeys.append(PlannedLine("rekey", f"organization {org.name!r} has org_id {org.org_id!r}, which the IAM "
                                               f"list does not know; the IAM list calls {e.org_id!r} {e.name!r}",
                                      org.id, org.org_id, e.org_id, org.name))
            if org.name != e.name:
                renames.append(PlannedLine("rename", f"the IAM system names org {e.org_id} {e.name!r}", org.id,
                                           e.org_id, None, org.name, e.name))
        elif len(candidates) > 1:
            notes.append(f"skipped {e.org_id!r} ({e.name}): {len(candidates)} organizations have that name "
                         f"({', '.join(o.org_id for o in candidates)}); re-key the right one by hand")
            target[e.org_id] = None
        else:
            target[e.org_id] = None
            creates.append(PlannedLine("create", f"the IAM system lists org {e.org_id} {e.name!r}, which has no "
                                                 "organization", None, None, e.org_id, None, e.name))
    created = {line.new_org_id for line in creates}

    # Groups: which are free (no live org), and which this plan frees.
    live = {o.group_id: o for o in orgs if o.group_id is not None and not o.orphaned}
    freed: set[uuid.UUID] = set()
    for e in valid:
        org = target.get(e.org_id)
        if org is None or org.group_id is None or org.orphaned:
            continue
        group = groups_by_id.get(org.group_id)
        if group is None:
            continue
        keys = _keys(group, mappings[group.id])
        others = sorted(k for k in keys if k in file_ids and k != e.org_id)
        if e.org_id not in keys and others:
            unlinks.append(PlannedLine("unlink", f"group {group.display_name!r} carries IAM org ID {others[0]!r} "
                                                 f"({names_by_id[others[0]]}), not {e.org_id!r}", org.id,
                                       org.org_id, None, org.name, None, group.id, group.display_name))
            freed.add(group.id)
    taken: set[uuid.UUID] = set()
    free = [g for g in groups if (g.id not in live or g.id in freed) and mappings[g.id].status != "role"]
    for e in valid:
        org = target.get(e.org_id)
        if e.org_id not in created and org is None:
            continue
        if org is not None and org.group_id is not None and not org.orphaned and org.group_id not in freed:
            continue
        by_key = [g for g in free if g.id not in taken and e.org_id in _keys(g, mappings[g.id])]
        by_name_match = [g for g in free if g.id not in taken
                         and _fold(e.name) in {_fold(g.display_name), _fold(mappings[g.id].name)}]
        matches, how = (by_key, "carries org_id") if by_key else (by_name_match, "is named")
        if len(matches) > 1:
            notes.append(f"org {e.org_id!r}: {len(matches)} groups could be meant "
                         f"({', '.join(g.display_name for g in matches)}); link one by hand")
            continue
        if not matches:
            continue
        group = matches[0]
        taken.add(group.id)
        what = repr(e.org_id) if by_key else repr(e.name)
        links.append(PlannedLine("link", f"group {group.display_name!r} {how} {what} and is linked to no "
                                         "organization", org.id if org is not None else None,
                                 org.org_id if org is not None else None, e.org_id, e.name, None, group.id,
                                 group.display_name))
    return unlinks + rekeys + creates + renames + links, notes


# -- the service -----------------------------------------------------------------------------------


class PlanService:
    """Make, list, show and apply the plans of one tenant. Services flush; the unit of work commits."""

    def __init__(self, session: Session, tenant_id: uuid.UUID, profile: Profile, actor: str,
                 request_id: str | None = None) -> None:
        self._session = session
        self._tenant_id = tenant_id
        self._profile = profile
        self._actor = actor
        self._request_id = request_id

    def make(self, entries: list[IamOrg], source_name: str | None, source_format: str) -> ReconcilePlan:
        """Compute and store a plan (a dry run: nothing else changes)."""
        orgs = list(self._session.scalars(select(Org).where(Org.tenant_id == self._tenant_id)))
        groups = list(self._session.scalars(select(Group).where(Group.tenant_id == self._tenant_id)
                                            .order_by(Group.display_name_key)))
        mappings = {g.id: analyse_group(self._profile, g) for g in groups}
        lines, notes = compute_plan(entries, orgs, groups, mappings, self._profile)
        summary = {action: sum(1 for line in lines if line.action == action) for action in ACTIONS}
        plan = ReconcilePlan(id=uuid.uuid4(), tenant_id=self._tenant_id, created=utcnow(), created_by=self._actor,
                             source_name=(source_name or None) and source_name[:255], source_format=source_format,
                             entry_count=len(entries), state_hash=state_hash(self._session, self._tenant_id,
                                                                             self._profile),
                             status="planned", summary=summary, notes={"notes": notes})
        self._session.add(plan)
        self._session.flush()
        for position, line in enumerate(lines, start=1):
            self._session.add(ReconcilePlanLine(plan_id=plan.id, position=position, action=line.action,
                                                org_pk=line.org_pk, org_id=line.org_id, new_org_id=line.new_org_id,
                                                name=line.name, new_name=line.new_name, group_id=line.group_id,
                                                group_name=line.group_name, reason=line.reason[:1024],
                                                status="pending"))
        self._session.flush()
        self._audit("plan.create", plan, audit.SUCCESS,
                    f"{len(entries)} entries, {len(lines)} change(s)" + (f", {len(notes)} note(s)" if notes else ""))
        return plan

    def get(self, plan_id: uuid.UUID | str, for_update: bool = False) -> ReconcilePlan:
        """Return a plan of this tenant or raise :class:`NotFound`."""
        parsed = parse_id(plan_id)
        plan = None
        if parsed is not None:
            stmt = select(ReconcilePlan).where(ReconcilePlan.tenant_id == self._tenant_id, ReconcilePlan.id == parsed)
            plan = self._session.scalars(stmt.with_for_update() if for_update else stmt).one_or_none()
        if plan is None:
            raise NotFound(f"no plan {plan_id}")
        return plan

    def lines(self, plan: ReconcilePlan) -> list[ReconcilePlanLine]:
        """Return the lines of a plan, in the order they run."""
        stmt = (select(ReconcilePlanLine).where(ReconcilePlanLine.plan_id == plan.id)
                .order_by(ReconcilePlanLine.position))
        return list(self._session.scalars(stmt))

    def list(self, offset: int = 0, limit: int = 50) -> Page[ReconcilePlan]:
        """Return one page of plans, newest first."""
        stmt = select(ReconcilePlan).where(ReconcilePlan.tenant_id == self._tenant_id)
        total = self._session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = list(self._session.scalars(stmt.order_by(ReconcilePlan.created.desc(), ReconcilePlan.id)
                                          .offset(offset).limit(limit)))
        return Page(rows, total, offset, limit)

    def apply(self, plan_id: uuid.UUID | str, progress: Progress | None = None) -> ReconcilePlan:
        """Apply a plan all or nothing; return it with its outcome (``applied``, ``refused`` or ``failed``).

        A plan is applied at most once. It is refused (and stays refused) when the tenant's orgs or
        groups changed since it was made. Any error rolls back every line; the outcome is kept.
        """
        plan = self.get(plan_id, for_update=True)
        if plan.status != "planned":
            raise Conflict(f"plan {plan.id} is {plan.status}, not a pending dry run; make a new plan")
        plan.applied_at, plan.applied_by = utcnow(), self._actor
        if state_hash(self._session, self._tenant_id, self._profile) != plan.state_hash:
            plan.status = "refused"
            plan.outcome = ("refused: the organizations or groups changed since the plan was made; make a new plan "
                            "and review it")
            self._session.flush()
            self._audit("plan.apply", plan, audit.FAILURE, "stale plan")
            return plan
        lines = self.lines(plan)
        admin = OrgAdmin(self._session, self._tenant_id, self._profile, self._actor, self._request_id, audited=False)
        current: ReconcilePlanLine | None = None
        try:
            with self._session.begin_nested():
                for done, line in enumerate(lines, start=1):
                    current = line
                    self._run(admin, line)
                    line.status = "applied"
                    if progress is not None:
                        progress(done, len(lines))
                self._session.flush()
        except (AdminError, ScimError, IntegrityError) as exc:
            message = exc.message if isinstance(exc, AdminError) else (
                exc.detail if isinstance(exc, ScimError) else "a uniqueness rule of the database was violated")
            failed_at = current.position if current is not None else 0
            for line in lines:
                line.status = "failed" if line.position == failed_at else "not_applied"
            plan.status = "failed"
            plan.outcome = f"failed at line {failed_at} ({current.action if current else '?'}): {message}; " \
                           "nothing was applied"
            self._session.flush()
            self._audit("plan.apply", plan, audit.FAILURE, plan.outcome)
            return plan
        plan.status = "applied"
        plan.outcome = f"applied {len(lines)} change(s)"
        self._session.flush()
        self._audit("plan.apply", plan, audit.SUCCESS, plan.outcome)
        return plan

    def _run(self, admin: OrgAdmin, line: ReconcilePlanLine) -> None:
        if line.action == "create":
            admin.create(line.new_org_id or "", line.new_name or "")
            return
        org = admin.require(line.org_pk, for_update=True) if line.org_pk else admin.by_org_id(line.new_org_id or "")
        if line.action == "rename":
            admin.edit(org, name=line.new_name)
        elif line.action == "rekey":
            admin.edit(org, org_id=line.new_org_id)
        elif line.action == "unlink":
            admin.unlink(org)
        elif line.action == "link":
            admin.link(org, admin.require_group(line.group_id or ""))
        else:
            raise InvalidInput(f"unknown plan action {line.action!r}")

    def _audit(self, action: str, plan: ReconcilePlan, outcome: str, detail: str | None) -> None:
        audit.record(self._session, action, outcome, tenant_id=self._tenant_id, client=self._actor,
                     resource_type="plan", resource_id=str(plan.id), detail=detail, request_id=self._request_id)


# -- export ----------------------------------------------------------------------------------------

EXPORT_COLUMNS = ("org_id", "name", "source", "group_id", "group_name", "members", "orphaned", "conflict")


def export_rows(views: list[OrgView]) -> list[dict[str, Any]]:
    """Return every org as a flat row (the CSV and JSON exports; the CSV reads back as an IAM list)."""
    return [{"org_id": v.org_id, "name": v.name, "source": v.source,
             "group_id": str(v.group_id) if v.group_id else None, "group_name": v.group_name,
             "members": v.member_count, "orphaned": v.orphaned, "conflict": v.conflict} for v in views]


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Render export rows as CSV with a header row."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(EXPORT_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row[k] is None else str(row[k]).lower() if isinstance(row[k], bool) else row[k])
                         for k in EXPORT_COLUMNS})
    return out.getvalue()
