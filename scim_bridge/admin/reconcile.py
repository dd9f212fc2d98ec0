"""The reconciliation report: where hand-typed orgs and IdP-pushed groups agree, and where they do not.

One call reads the tenant's orgs, groups, memberships and resolved user state, and lists per kind,
with counts, what is wrong and a suggested action each (the console turns the suggestions whose
``action`` is an operation into one-click buttons, :func:`run_suggestion` performs them):

``unmapped_groups``
    groups that map to no org, and why: ``pattern_mismatch`` (the profile's selection pattern),
    ``no_org_id`` (nothing to derive an org_id from), ``invalid_org_id`` (the derived org_id fails
    the profile's ``validate`` pattern), ``duplicate`` (the org_id belongs to an org the group cannot
    take: rejected by the profile, or linked to another group), ``unapplied`` (the profile would map
    it, but no org exists yet: pushed under another profile).
``link_candidates``
    manual orgs whose org_id or name matches a group that is not linked to them.
``orphaned_orgs``
    orgs whose group was deleted or stopped mapping.
``name_drift``
    linked orgs whose name differs from what the profile derives from the group's displayName.
``ambiguous_primary``
    users whose primary org is ambiguous (several mapped groups tie).
``unknown_manual_memberships``
    manual memberships the IdP does not know about (the user is not in the org's group).
``invalid_org_ids``
    orgs whose org_id fails the profile's validation pattern.
``duplicate_names``
    orgs sharing a name (case-insensitively): Infinity users cannot tell them apart.

The report costs a few queries over the tenant (orgs, groups, memberships), never one per row,
except one nesting walk per org that has manual members.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from scim_bridge.admin.errors import InvalidInput
from scim_bridge.admin.orgs_admin import OrgAdmin
from scim_bridge.domain.mapping import to_scim_group
from scim_bridge.domain.orgs import IDP
from scim_bridge.domain.orgs import MANUAL
from scim_bridge.mappings.model import OrgCandidate
from scim_bridge.mappings.model import Profile
from scim_bridge.scim.errors import ScimError
from scim_bridge.storage.base import utcnow
from scim_bridge.storage.models import Group
from scim_bridge.storage.models import Org
from scim_bridge.storage.models import OrgMembership
from scim_bridge.storage.models import User
from scim_bridge.storage.models import UserOrgState
from scim_bridge.storage.repositories.orgs import OrgRepository

SECTIONS: tuple[tuple[str, str], ...] = (
    ("unmapped_groups", "Groups that map to no organization"),
    ("link_candidates", "Manual organizations that match a group not linked to them"),
    ("orphaned_orgs", "Orphaned organizations"),
    ("name_drift", "Organization names that drifted from their group"),
    ("ambiguous_primary", "Users whose primary organization is ambiguous"),
    ("unknown_manual_memberships", "Manual memberships the identity provider does not know about"),
    ("invalid_org_ids", "Org IDs the mapping profile does not accept"),
    ("duplicate_names", "Organizations sharing a name"),
)
# Findings that make an org "in conflict" in the org list.
CONFLICT_KINDS = frozenset({"link_candidates", "invalid_org_ids", "duplicate_names", "unmapped_groups"})
# Suggested actions that are operations (one click in the console); "review" needs a person.
ACTIONS = ("link", "rename", "delete", "unassign", "create_link")


@dataclass(frozen=True, slots=True)
class Suggestion:
    """What to do about a finding: an operation with its parameters, or ``review`` with advice."""

    action: str
    label: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the admin should look at."""

    kind: str
    reason: str
    message: str
    suggestion: Suggestion
    org: dict[str, Any] | None = None
    group: dict[str, Any] | None = None
    user: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Report:
    """The whole report: findings per kind, with counts."""

    profile: str
    generated_at: datetime
    findings: dict[str, list[Finding]]

    @property
    def counts(self) -> dict[str, int]:
        """Return the number of findings per kind (every kind, zeros included)."""
        return {kind: len(self.findings.get(kind, [])) for kind, _title in SECTIONS}

    @property
    def total(self) -> int:
        """Return the number of findings."""
        return sum(self.counts.values())

    def org_conflicts(self) -> dict[uuid.UUID, list[str]]:
        """Return, per org id, the kinds of the conflicting findings that name it."""
        conflicts: dict[uuid.UUID, list[str]] = defaultdict(list)
        for kind in CONFLICT_KINDS:
            for finding in self.findings.get(kind, []):
                refs = [finding.org] + list(finding.extra.get("orgs", []))
                for ref in refs:
                    if ref and ref.get("id") and kind not in conflicts[uuid.UUID(ref["id"])]:
                        conflicts[uuid.UUID(ref["id"])].append(kind)
        return dict(conflicts)


@dataclass(frozen=True, slots=True)
class GroupMapping:
    """What the profile makes of a group: ``maps`` (with org_id and name), or why it does not."""

    status: str
    org_id: str | None = None
    name: str | None = None
    detail: str | None = None


def analyse_group(profile: Profile, group: Group) -> GroupMapping:
    """Return what *profile* makes of *group* (never raises: invalid org_ids are a status)."""
    if profile.roles.granted_by(group.display_name, group.external_id):
        return GroupMapping("role")
    rules = profile.orgs
    if not rules.selects(group.display_name, group.external_id):
        patterns = [p.text for p in (rules.display_name_pattern, rules.external_id_pattern) if p is not None]
        return GroupMapping("pattern_mismatch", detail=" and ".join(f"/{p}/" for p in patterns))
    resource = to_scim_group(group, "", None)
    try:
        org_id = rules.org_id.derive(resource)
    except ScimError as exc:
        return GroupMapping("invalid_org_id", org_id=rules.org_id.raw(resource), detail=exc.detail)
    if org_id is None:
        return GroupMapping("no_org_id", detail=rules.org_id.source())
    return GroupMapping("maps", org_id, rules.name.derive(group.display_name))


def _fold(text: str | None) -> str:
    return (text or "").strip().casefold()


def org_ref(org: Org) -> dict[str, Any]:
    """Return the reference of an org inside a finding."""
    return {"id": str(org.id), "org_id": org.org_id, "name": org.name, "source": org.source,
            "orphaned": org.orphaned}


def group_ref(group: Group) -> dict[str, Any]:
    """Return the reference of a group inside a finding."""
    return {"id": str(group.id), "display_name": group.display_name, "external_id": group.external_id,
            "iam_org_id": group.iam_org_id}


class ReconcileService:
    """Build the reconciliation report of one tenant, and run its one-click suggestions."""

    def __init__(self, session: Session, tenant_id: uuid.UUID, profile: Profile) -> None:
        self._session = session
        self._tenant_id = tenant_id
        self._profile = profile
        self._repo = OrgRepository(session, tenant_id)

    def report(self) -> Report:
        """Return the report (read-only)."""
        orgs = self._repo.all()
        groups = list(self._session.scalars(select(Group).where(Group.tenant_id == self._tenant_id)
                                            .order_by(Group.display_name_key)))
        mappings = {g.id: analyse_group(self._profile, g) for g in groups}
        by_group = {o.group_id: o for o in orgs if o.group_id is not None}
        findings: dict[str, list[Finding]] = {kind: [] for kind, _title in SECTIONS}
        findings["unmapped_groups"] = self._unmapped(groups, mappings, orgs, by_group)
        findings["link_candidates"] = self._link_candidates(groups, mappings, orgs, by_group)
        findings["orphaned_orgs"] = self._orphaned(orgs, groups, mappings, by_group)
        findings["name_drift"] = self._name_drift(groups, mappings, by_group)
        findings["ambiguous_primary"] = self._ambiguous()
        findings["unknown_manual_memberships"] = self._unknown_manual(orgs)
        findings["invalid_org_ids"] = self._invalid(orgs)
        findings["duplicate_names"] = self._duplicate_names(orgs)
        return Report(self._profile.name, utcnow(), findings)

    # -- sections ------------------------------------------------------------------------------------

    def _unmapped(self, groups: list[Group], mappings: dict[uuid.UUID, GroupMapping], orgs: list[Org],
                  by_group: dict[uuid.UUID, Org]) -> list[Finding]:
        by_org_id = {o.org_id: o for o in orgs}
        out = []
        for group in groups:
            linked = by_group.get(group.id)
            if linked is not None and not linked.orphaned:
                continue
            m = mappings[group.id]
            link_here = Suggestion("review", "link it to an organization by hand (Organizations → the org → "
                                             "Link group), or fix the group in the identity provider")
            if m.status == "role":
                continue
            if m.status == "pattern_mismatch":
                out.append(Finding("unmapped_groups", "pattern_mismatch",
                                   f"group {group.display_name!r} does not match the profile's selection "
                                   f"pattern {m.detail}: it is a plain group", link_here, group=group_ref(group)))
            elif m.status == "no_org_id":
                out.append(Finding("unmapped_groups", "no_org_id",
                                   f"group {group.display_name!r} has no org_id to derive ({m.detail} is empty)",
                                   Suggestion("review", f"set {m.detail} on the group in the identity provider, "
                                                        "or link it to an organization by hand"),
                                   group=group_ref(group)))
            elif m.status == "invalid_org_id":
                out.append(Finding("unmapped_groups", "invalid_org_id", f"group {group.display_name!r}: {m.detail}",
                                   Suggestion("review", "correct the org_id in the identity provider, or adjust "
                                                        "the profile's validate pattern"),
                                   group=group_ref(group), extra={"org_id": m.org_id}))
            elif m.status == "maps" and m.org_id is not None:
                out.append(self._unmapped_but_mapping(group, m, by_org_id.get(m.org_id), linked))
        return out

    def _unmapped_but_mapping(self, group: Group, m: GroupMapping, existing: Org | None,
                              linked: Org | None) -> Finding:
        ref = group_ref(group)
        if existing is None:
            return Finding("unmapped_groups", "unapplied",
                           f"group {group.display_name!r} maps onto org_id {m.org_id!r} under profile "
                           f"'{self._profile.name}', but no organization exists",
                           Suggestion("create_link", f"create organization {m.org_id} {m.name!r} and link it",
                                      {"group": str(group.id), "org_id": m.org_id or "", "name": m.name or ""}),
                           group=ref, extra={"org_id": m.org_id})
        if existing.group_id is not None and existing.group_id != group.id and not existing.orphaned:
            return Finding("unmapped_groups", "duplicate",
                           f"group {group.display_name!r} carries org_id {m.org_id!r}, which belongs to "
                           f"organization {existing.name!r}, linked to another group",
                           Suggestion("review", "give the group its own org_id in the identity provider"),
                           org=org_ref(existing), group=ref)
        rejected = self._profile.orgs.on_existing_org_id == "reject"
        reason = "duplicate" if rejected else "unapplied"
        message = (f"group {group.display_name!r} carries org_id {m.org_id!r} of organization {existing.name!r}"
                   + (", which the profile rejects as a duplicate" if rejected else ", but is not linked to it"))
        return Finding("unmapped_groups", reason, message,
                       Suggestion("link", f"link {existing.name!r} to group {group.display_name!r}",
                                  {"org": str(existing.id), "group": str(group.id)}),
                       org=org_ref(existing), group=ref)

    def _link_candidates(self, groups: list[Group], mappings: dict[uuid.UUID, GroupMapping], orgs: list[Org],
                         by_group: dict[uuid.UUID, Org]) -> list[Finding]:
        by_key: dict[str, list[Group]] = defaultdict(list)
        by_name: dict[str, list[Group]] = defaultdict(list)
        for group in groups:
            m = mappings[group.id]
            if m.status == "role":
                continue
            for key in {m.org_id, group.external_id, group.iam_org_id} - {None}:
                by_key[str(key)].append(group)
            for name in {_fold(group.display_name), _fold(m.name)} - {""}:
                by_name[name].append(group)
        out = []
        for org in orgs:
            if org.source != MANUAL or (org.group_id is not None and not org.orphaned):
                continue
            seen: set[uuid.UUID] = set()
            for match, candidates in (("org_id", by_key.get(org.org_id, [])),
                                      ("name", by_name.get(_fold(org.name), []))):
                for group in candidates:
                    if group.id in seen or group.id == org.group_id:
                        continue
                    seen.add(group.id)
                    out.append(self._candidate(org, group, match, by_group.get(group.id)))
        return out

    def _candidate(self, org: Org, group: Group, match: str, other: Org | None) -> Finding:
        what = f"org_id {org.org_id!r}" if match == "org_id" else f"name {org.name!r}"
        message = f"manual organization {org.name!r} ({org.org_id}) and group {group.display_name!r} share the {what}"
        if other is None or other.orphaned:
            suggestion = Suggestion("link", f"link {org.name!r} to group {group.display_name!r}",
                                    {"org": str(org.id), "group": str(group.id)})
            if other is not None:
                suggestion = Suggestion("review", f"the group is still attached to orphaned organization "
                                                  f"{other.name!r} ({other.org_id}): delete or unlink that one, "
                                                  "then link")
        else:
            message += f"; the group is linked to organization {other.name!r} ({other.org_id})"
            suggestion = Suggestion("review", f"decide which organization the group stands for: re-key "
                                              f"{other.name!r} to {org.org_id!r} after deleting {org.name!r} "
                                              "(moving its manual members), or rename one of them")
        return Finding("link_candidates", f"{match}_match", message, suggestion, org=org_ref(org),
                       group=group_ref(group),
                       extra={"orgs": [org_ref(other)] if other is not None else [], "match": match})

    def _orphaned(self, orgs: list[Org], groups: list[Group], mappings: dict[uuid.UUID, GroupMapping],
                  by_group: dict[uuid.UUID, Org]) -> list[Finding]:
        orphans = [o for o in orgs if o.orphaned]
        if not orphans:
            return []
        manual = self._manual_counts([o.id for o in orphans])
        free = [g for g in groups if g.id not in by_group and mappings[g.id].status != "role"]
        out = []
        for org in orphans:
            count = manual.get(org.id, 0)
            match = next((g for g in free if org.org_id in {mappings[g.id].org_id, g.external_id, g.iam_org_id}
                          or _fold(org.name) in {_fold(g.display_name), _fold(mappings[g.id].name)}), None)
            if match is not None:
                suggestion = Suggestion("link", f"link it to group {match.display_name!r}",
                                        {"org": str(org.id), "group": str(match.id)})
            elif count == 0:
                suggestion = Suggestion("delete", f"delete {org.name!r} (no manual members)", {"org": str(org.id)})
            else:
                suggestion = Suggestion("review", f"{count} manual member(s): link it to a group, or unassign "
                                                  "them and delete it")
            out.append(Finding("orphaned_orgs", "orphaned",
                               f"organization {org.name!r} ({org.org_id}) has no group any more",
                               suggestion, org=org_ref(org), extra={"manual_members": count}))
        return out

    def _name_drift(self, groups: list[Group], mappings: dict[uuid.UUID, GroupMapping],
                    by_group: dict[uuid.UUID, Org]) -> list[Finding]:
        out = []
        for group in groups:
            org = by_group.get(group.id)
            if org is None or org.orphaned:
                continue
            expected = mappings[group.id].name or self._profile.orgs.name.derive(group.display_name)
            if org.name == expected:
                continue
            reason = "admin_edited" if org.name_locked else "drift"
            why = " (edited by an admin, so IdP renames leave it alone)" if org.name_locked else ""
            out.append(Finding("name_drift", reason,
                               f"organization {org.name!r}{why} is linked to group {group.display_name!r}, "
                               f"which names it {expected!r}",
                               Suggestion("rename", f"rename it {expected!r}", {"org": str(org.id), "name": expected}),
                               org=org_ref(org), group=group_ref(group), extra={"expected_name": expected}))
        return out

    def _ambiguous(self) -> list[Finding]:
        rows = self._session.execute(
            select(OrgMembership.user_id, Org.id, Org.org_id, Org.name)
            .join(Org, Org.id == OrgMembership.org_pk)
            .where(OrgMembership.tenant_id == self._tenant_id, OrgMembership.source == IDP))
        idp: dict[uuid.UUID, list[OrgCandidate]] = defaultdict(list)
        for user_id, pk, org_id, name in rows:
            idp[user_id].append(OrgCandidate(pk, org_id, name))
        states = {s.user_id: s for s in self._session.scalars(
            select(UserOrgState).where(UserOrgState.tenant_id == self._tenant_id))}
        membership = self._profile.membership
        flagged = {uid for uid, s in states.items() if s.primary_org_conflict}
        if membership.mode == "multi":
            for uid, candidates in idp.items():
                ranks = sorted(membership.rank(c) for c in candidates)
                if len(ranks) > 1 and ranks[0] == ranks[1]:
                    flagged.add(uid)
        if not flagged:
            return []
        above = self._repo.groups_above_users(sorted(flagged))
        users = {u.id: u for u in self._session.scalars(select(User).where(User.id.in_(sorted(flagged))))}
        out = []
        for uid in sorted(flagged, key=lambda u: users[u].user_name_key if u in users else ""):
            if uid not in users:
                continue
            candidates = sorted({g.org_id for g in above.get(uid, []) if g.active_org and g.org_id})
            state = states.get(uid)
            chosen = next((c.org_id for c in idp.get(uid, []) if state and c.key == state.primary_org_pk), None)
            out.append(Finding("ambiguous_primary", "several_mapped_groups",
                               f"{users[uid].user_name} is in {len(candidates)} mapped groups "
                               f"({', '.join(candidates)}); primary org chosen by tie-break: {chosen}",
                               Suggestion("review", f"add a precedence rule to mapping profile "
                                                    f"'{self._profile.name}', or keep the user in one mapped group"),
                               user={"id": str(uid), "user_name": users[uid].user_name},
                               extra={"candidates": candidates, "chosen": chosen}))
        return out

    def _unknown_manual(self, orgs: list[Org]) -> list[Finding]:
        by_pk = {o.id: o for o in orgs}
        rows = self._session.execute(
            select(OrgMembership.org_pk, User.id, User.user_name)
            .join(User, User.id == OrgMembership.user_id)
            .where(OrgMembership.tenant_id == self._tenant_id, OrgMembership.source == MANUAL)
            .order_by(OrgMembership.org_pk, User.user_name_key))
        per_org: dict[uuid.UUID, list[tuple[uuid.UUID, str]]] = defaultdict(list)
        for org_pk, user_id, user_name in rows:
            per_org[org_pk].append((user_id, user_name))
        out = []
        for org_pk, members in per_org.items():
            org = by_pk.get(org_pk)
            if org is None:
                continue
            live = org.group_id is not None and not org.orphaned
            known = self._repo.users_below_groups([org.group_id]) if live and org.group_id else set()
            group_name = self._repo.group_names([org.group_id]).get(org.group_id) if live and org.group_id else None
            for user_id, user_name in members:
                if user_id in known:
                    continue
                why = (f"is not in its group {group_name!r}" if live
                       else "has no group, so the identity provider knows nothing of it")
                out.append(Finding("unknown_manual_memberships", "not_in_group" if live else "org_not_linked",
                                   f"{user_name} was assigned to {org.name!r} ({org.org_id}) by hand; the org {why}",
                                   Suggestion("unassign", f"remove {user_name}'s manual membership",
                                              {"org": str(org.id), "user": str(user_id)}),
                                   org=org_ref(org), user={"id": str(user_id), "user_name": user_name}))
        return out

    def _invalid(self, orgs: list[Org]) -> list[Finding]:
        pattern = self._profile.orgs.org_id.validate
        if pattern is None:
            return []
        return [Finding("invalid_org_ids", "pattern_mismatch",
                        f"org_id {org.org_id!r} of {org.name!r} does not match /{pattern.text}/ of profile "
                        f"'{self._profile.name}'",
                        Suggestion("review", "re-key it to an org_id the profile accepts (the IAM org ID)"),
                        org=org_ref(org)) for org in orgs if not pattern.regex.fullmatch(org.org_id)]

    def _duplicate_names(self, orgs: list[Org]) -> list[Finding]:
        by_name: dict[str, list[Org]] = defaultdict(list)
        for org in orgs:
            by_name[_fold(org.name)].append(org)
        out = []
        for same in by_name.values():
            if len(same) < 2:
                continue
            ids = ", ".join(o.org_id for o in same)
            out.append(Finding("duplicate_names", "same_name",
                               f"{len(same)} organizations are called {same[0].name!r} (org_ids {ids})",
                               Suggestion("review", "rename one of them, or link the manual one to its group"),
                               org=org_ref(same[0]), extra={"orgs": [org_ref(o) for o in same[1:]]}))
        return out

    def _manual_counts(self, org_pks: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        stmt = (select(OrgMembership.org_pk, func.count()).where(OrgMembership.org_pk.in_(org_pks),
                                                                 OrgMembership.source == MANUAL)
                .group_by(OrgMembership.org_pk))
        return {pk: int(n) for pk, n in self._session.execute(stmt)}


def run_suggestion(admin: OrgAdmin, action: str, params: dict[str, str]) -> str:
    """Perform a one-click suggestion of the report; return what was done, for a person."""
    if action == "link":
        org, group = admin.require(params.get("org", ""), for_update=True), admin.require_group(params.get("group", ""))
        admin.link(org, group)
        return f"linked {org.name!r} to group {group.display_name!r}"
    if action == "rename":
        org = admin.require(params.get("org", ""), for_update=True)
        admin.edit(org, name=params.get("name", ""))
        return f"renamed organization {org.org_id} to {org.name!r}"
    if action == "delete":
        org = admin.require(params.get("org", ""), for_update=True)
        admin.delete(org)
        return f"deleted organization {org.name!r} ({org.org_id})"
    if action == "unassign":
        org, user = admin.require(params.get("org", ""), for_update=True), admin.require_user(params.get("user", ""))
        admin.unassign(org, user)
        return f"removed {user.user_name} from {org.name!r}"
    if action == "create_link":
        group = admin.require_group(params.get("group", ""))
        org = admin.create(params.get("org_id", ""), params.get("name", "") or group.display_name)
        admin.link(org, group)
        return f"created organization {org.org_id} {org.name!r} and linked it to group {group.display_name!r}"
    raise InvalidInput(f"unknown action {action!r} (one of: {', '.join(ACTIONS)})")
