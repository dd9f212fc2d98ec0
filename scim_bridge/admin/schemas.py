"""Wire shapes of the admin API (marshmallow, camelCase only as ``data_key``).

The same classes validate requests, render responses and generate the OpenAPI 3 document
(``/admin/api/v1/openapi.json``, through apispec's MarshmallowPlugin), so the document cannot drift
from what the API does.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema
from marshmallow import fields
from marshmallow import validate

from scim_bridge.admin.orgs_admin import MAX_NAME
from scim_bridge.admin.orgs_admin import MAX_ORG_ID


class ErrorSchema(Schema):
    """Every error of the admin API: a stable code, a message for a person, optional details."""

    error = fields.String(required=True, metadata={"description": "stable code: invalid_request, not_found, "
                                                                  "conflict, refused, stale_plan, plan_failed, "
                                                                  "invalid_token, insufficient_scope, ..."})
    error_description = fields.String(required=True)
    details = fields.Dict(metadata={"description": "field errors or extra context"})


class OrgSchema(Schema):
    """An organization with where it came from, its group, member count and flags."""

    id = fields.UUID(required=True, metadata={"description": "stable id (the org_id may change)"})
    org_id = fields.String(data_key="orgId", required=True, metadata={"description": "the IAM org ID"})
    name = fields.String(required=True)
    source = fields.String(required=True, metadata={"enum": ["idp", "manual"]})
    group_id = fields.UUID(data_key="groupId", allow_none=True)
    group_name = fields.String(data_key="groupName", allow_none=True)
    member_count = fields.Integer(data_key="memberCount")
    manual_member_count = fields.Integer(data_key="manualMemberCount")
    orphaned = fields.Boolean()
    conflict = fields.Boolean(metadata={"description": "named by a conflicting finding of the reconciliation report"})
    conflicts = fields.List(fields.String(), metadata={"description": "kinds of those findings"})
    name_locked = fields.Boolean(data_key="nameLocked", metadata={"description": "an admin edited the name"})
    deletable = fields.Boolean()
    version = fields.Integer()
    created = fields.DateTime()
    last_modified = fields.DateTime(data_key="lastModified")


class OrgCreateSchema(Schema):
    """Create an organization by hand."""

    org_id = fields.String(data_key="orgId", required=True, validate=validate.Length(1, MAX_ORG_ID))
    name = fields.String(required=True, validate=validate.Length(1, MAX_NAME))


class OrgEditSchema(Schema):
    """Rename and/or re-key an organization; ``version`` guards against lost updates."""

    org_id = fields.String(data_key="orgId", validate=validate.Length(1, MAX_ORG_ID))
    name = fields.String(validate=validate.Length(1, MAX_NAME))
    version = fields.Integer(metadata={"description": "the version you read; 409 when it changed"})


class MemberSchema(Schema):
    """A member of an organization and how they got there."""

    user_id = fields.UUID(data_key="userId")
    user_name = fields.String(data_key="userName")
    display_name = fields.String(data_key="displayName", allow_none=True)
    active = fields.Boolean()
    sources = fields.List(fields.String(), metadata={"description": "idp, manual or both"})
    primary = fields.Boolean(metadata={"description": "this org is the user's primary org"})


class AssignSchema(Schema):
    """Assign a user by hand: their id or userName."""

    user = fields.String(required=True, validate=validate.Length(1, 512))


class LinkSchema(Schema):
    """Link to a SCIM group: its id or displayName."""

    group = fields.String(required=True, validate=validate.Length(1, 512))


class MembershipSchema(Schema):
    """One org membership of a user."""

    org = fields.UUID()
    org_id = fields.String(data_key="orgId")
    org_name = fields.String(data_key="orgName")
    source = fields.String()
    primary = fields.Boolean()


class UserSchema(Schema):
    """A user as Infinity sees them: primary org, every org, role, and (on one user) variables."""

    id = fields.UUID()
    user_name = fields.String(data_key="userName")
    display_name = fields.String(data_key="displayName", allow_none=True)
    active = fields.Boolean()
    org_id = fields.String(data_key="orgId", allow_none=True)
    org_name = fields.String(data_key="orgName", allow_none=True)
    org_ids = fields.List(fields.String(), data_key="orgIds")
    role = fields.String(allow_none=True)
    primary_org_conflict = fields.Boolean(data_key="primaryOrgConflict")
    memberships = fields.List(fields.Nested(MembershipSchema))
    variables = fields.Dict()


class SuggestionSchema(Schema):
    """What to do about a finding; ``action`` other than ``review`` is an operation."""

    action = fields.String(metadata={"enum": ["link", "rename", "delete", "unassign", "create_link", "review"]})
    label = fields.String()
    params = fields.Dict(keys=fields.String(), values=fields.String())


class FindingSchema(Schema):
    """One finding of the reconciliation report."""

    kind = fields.String()
    reason = fields.String()
    message = fields.String()
    suggestion = fields.Nested(SuggestionSchema)
    org = fields.Dict(allow_none=True)
    group = fields.Dict(allow_none=True)
    user = fields.Dict(allow_none=True)
    extra = fields.Dict()


class SectionSchema(Schema):
    """The findings of one kind."""

    kind = fields.String()
    title = fields.String()
    count = fields.Integer()
    items = fields.List(fields.Nested(FindingSchema))


class ReportSchema(Schema):
    """The reconciliation report of the tenant."""

    profile = fields.String()
    generated_at = fields.DateTime(data_key="generatedAt")
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    total = fields.Integer()
    sections = fields.List(fields.Nested(SectionSchema))


class SuggestionRunSchema(Schema):
    """Run one suggestion of the report."""

    action = fields.String(required=True, validate=validate.OneOf(["link", "rename", "delete", "unassign",
                                                                   "create_link"]))
    params = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)


class PlanLineSchema(Schema):
    """One action of a plan, with its reason and outcome."""

    position = fields.Integer()
    action = fields.String(metadata={"enum": ["unlink", "rekey", "create", "rename", "link"]})
    org_pk = fields.UUID(data_key="org", allow_none=True)
    org_id = fields.String(data_key="orgId", allow_none=True)
    new_org_id = fields.String(data_key="newOrgId", allow_none=True)
    name = fields.String(allow_none=True)
    new_name = fields.String(data_key="newName", allow_none=True)
    group_id = fields.UUID(data_key="groupId", allow_none=True)
    group_name = fields.String(data_key="groupName", allow_none=True)
    reason = fields.String()
    status = fields.String(metadata={"enum": ["pending", "applied", "failed", "not_applied"]})


class PlanSchema(Schema):
    """A reconciliation plan: a dry run until applied; its outcome is kept."""

    id = fields.UUID()
    created = fields.DateTime()
    created_by = fields.String(data_key="createdBy")
    source_name = fields.String(data_key="sourceName", allow_none=True)
    source_format = fields.String(data_key="sourceFormat")
    entry_count = fields.Integer(data_key="entryCount")
    status = fields.String(metadata={"enum": ["planned", "applied", "refused", "failed"]})
    summary = fields.Dict(keys=fields.String(), values=fields.Integer())
    notes = fields.List(fields.String())
    applied_at = fields.DateTime(data_key="appliedAt", allow_none=True)
    applied_by = fields.String(data_key="appliedBy", allow_none=True)
    outcome = fields.String(allow_none=True)
    lines = fields.List(fields.Nested(PlanLineSchema))


class IamOrgSchema(Schema):
    """One entry of an IAM export (JSON form); CSV is ``org_id,name``."""

    org_id = fields.String(required=True)
    name = fields.String(required=True)


class EventSchema(Schema):
    """One change of Infinity-facing state; ``cursor`` orders them."""

    cursor = fields.Integer()
    type = fields.String()
    subject = fields.String()
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)
    request_id = fields.String(data_key="requestId", allow_none=True)
    occurred_at = fields.String(data_key="occurredAt")


class AuditEventSchema(Schema):
    """One audited action (never a secret)."""

    id = fields.Integer()
    time = fields.String()
    client = fields.String(allow_none=True)
    action = fields.String()
    resource_type = fields.String(data_key="resourceType", allow_none=True)
    resource_id = fields.String(data_key="resourceId", allow_none=True)
    outcome = fields.String()
    status = fields.Integer(allow_none=True)
    detail = fields.String(allow_none=True)
    request_id = fields.String(data_key="requestId", allow_none=True)
    remote_addr = fields.String(data_key="remoteAddr", allow_none=True)


def page_of(item: type[Schema], name: str) -> type[Schema]:
    """Return the paged envelope of *item*: ``items``, ``total``, ``offset``, ``limit``, ``nextOffset``."""
    return Schema.from_dict({
        "items": fields.List(fields.Nested(item)),
        "total": fields.Integer(),
        "offset": fields.Integer(),
        "limit": fields.Integer(),
        "next_offset": fields.Integer(data_key="nextOffset", allow_none=True),
    }, name=name)


OrgPageSchema = page_of(OrgSchema, "OrgPage")
MemberPageSchema = page_of(MemberSchema, "MemberPage")
UserPageSchema = page_of(UserSchema, "UserPage")
PlanPageSchema = page_of(PlanSchema, "PlanPage")
EventPageSchema = Schema.from_dict({
    "items": fields.List(fields.Nested(EventSchema)),
    "next_cursor": fields.Integer(data_key="nextCursor", metadata={"description": "pass as ?after= to go on"}),
}, name="EventPage")
AuditPageSchema = Schema.from_dict({
    "items": fields.List(fields.Nested(AuditEventSchema)),
    "next_before": fields.Integer(data_key="nextBefore", allow_none=True,
                                  metadata={"description": "pass as ?before= for older events"}),
}, name="AuditPage")
ActionResultSchema = Schema.from_dict({"message": fields.String()}, name="ActionResult")


def page_dict(page: Any) -> dict[str, Any]:
    """Return a :class:`~scim_bridge.admin.orgs_admin.Page` as the envelope's attributes."""
    return {"items": page.items, "total": page.total, "offset": page.offset, "limit": page.limit,
            "next_offset": page.next_offset}


def plan_dict(plan: Any, lines: list[Any] | None = None) -> dict[str, Any]:
    """Return a stored plan (and its lines) as :class:`PlanSchema` attributes."""
    body = {name: getattr(plan, name) for name in ("id", "created", "created_by", "source_name", "source_format",
                                                   "entry_count", "status", "summary", "applied_at", "applied_by",
                                                   "outcome")}
    body["notes"] = list((plan.notes or {}).get("notes", []))
    if lines is not None:
        body["lines"] = lines
    return body


def report_dict(report: Any, sections: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """Return a report as :class:`ReportSchema` attributes, sections in their fixed order."""
    return {"profile": report.profile, "generated_at": report.generated_at, "counts": report.counts,
            "total": report.total,
            "sections": [{"kind": kind, "title": title, "count": len(report.findings.get(kind, [])),
                          "items": report.findings.get(kind, [])} for kind, title in sections]}
