"""Infinity organizations: the org sync that follows SCIM writes, and the admin :class:`OrgService`.

:class:`OrgSync` is called by :class:`~scim_bridge.domain.groups.GroupService` and
:class:`~scim_bridge.domain.users.UserService` inside the transaction of the SCIM request, after
their flush, with exactly what changed. It applies the tenant's mapping profile:

* a mapped group gets an org (created, or linked to an existing one), which follows the group's
  renames and org_id changes and is detached (orphaned) or deleted when the group goes;
* org memberships, primary org and role are recomputed only for the users a change touched,
  found by walking group nesting from the change (recursive CTEs), never by scanning a tenant;
* every change to Infinity-facing state is appended to the event log in the same transaction.

Variables are not stored: they are derived on read from the user's state and orgs, so renaming
or re-keying an org costs O(1) whatever its size (the ``org.renamed`` / ``org.rekeyed`` event
tells consumers that the members' ``org_name`` / ``org_id`` changed).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from collections.abc import Iterator
from contextlib import AbstractContextManager
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from scim_bridge.domain import events as ev
from scim_bridge.domain.errors import Uniqueness
from scim_bridge.domain.mapping import to_scim_group
from scim_bridge.domain.mapping import to_scim_user
from scim_bridge.mappings.model import OrgCandidate
from scim_bridge.mappings.model import OrgDecision
from scim_bridge.mappings.model import Profile
from scim_bridge.scim.errors import ScimError
from scim_bridge.storage.base import new_id
from scim_bridge.storage.base import utcnow
from scim_bridge.storage.models import Group
from scim_bridge.storage.models import Org
from scim_bridge.storage.models import User
from scim_bridge.storage.models import UserOrgState
from scim_bridge.storage.prepared import BoundRows
from scim_bridge.storage.repositories.common import unindexed
from scim_bridge.storage.repositories.orgs import GroupInfo
from scim_bridge.storage.repositories.orgs import MembershipRow
from scim_bridge.storage.repositories.orgs import OrgRepository
from scim_bridge.storage.repositories.users import UserRepository

IDP = "idp"
MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class MemberDelta:
    """Members a group gained and lost in one write, by kind."""

    users_added: frozenset[uuid.UUID] = frozenset()
    users_removed: frozenset[uuid.UUID] = frozenset()
    groups_added: frozenset[uuid.UUID] = frozenset()
    groups_removed: frozenset[uuid.UUID] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.users_added or self.users_removed or self.groups_added or self.groups_removed)

    def merge(self, other: MemberDelta) -> MemberDelta:
        """Return the union of two deltas."""
        return MemberDelta(self.users_added | other.users_added, self.users_removed | other.users_removed,
                           self.groups_added | other.groups_added, self.groups_removed | other.groups_removed)


@dataclass(frozen=True, slots=True)
class NewUserState:
    """A new user's org state, built before the write (:meth:`OrgSync.prepare_user`)."""

    fields: dict[str, Any]
    role: str | None
    row: BoundRows


@dataclass(slots=True)
class PendingGroupDelete:
    """What :meth:`OrgSync.group_deleting` saw before the group row went."""

    users: set[uuid.UUID] = field(default_factory=set)
    doomed: list[Org] = field(default_factory=list)


class OrgSync:
    """Keep orgs, org memberships, roles and the event log in step with SCIM writes of one tenant."""

    def __init__(self, session: Session, tenant_id: uuid.UUID, profile: Profile,
                 request_id: str | None = None) -> None:
        self._session = session
        self._tenant_id = tenant_id
        self._profile = profile
        self._orgs = OrgRepository(session, tenant_id)
        self._events = ev.EventLog(session, tenant_id, request_id)

    @property
    def profile(self) -> Profile:
        """Return the tenant's mapping profile."""
        return self._profile

    def events_together(self) -> AbstractContextManager[None]:
        """Write the events that hooks run inside the block queue once, when it ends (see ``EventLog.held``)."""
        return self._events.held()

    # -- users -------------------------------------------------------------------------------------

    def prepare_user(self, user: User, data: dict[str, Any]) -> NewUserState:
        """Build a new user's state row and its event's content, writing nothing (before the write lock).

        For :meth:`user_created` of a user inserted at once (a single create, after ``insert_new``).
        """
        fields = self._fields(user, data)
        role = self._profile.roles.default
        row = self._orgs.bind_state({"user_id": user.id, "tenant_id": self._tenant_id, "role": role,
                                     "primary_org_pk": None, "primary_org_conflict": False,
                                     "user_fields": fields, "updated": utcnow()})
        return NewUserState(fields, role, row)

    def user_created(self, user: User, data: dict[str, Any], *, prepared: NewUserState | None = None) -> None:
        """Record a provisioned user: its Infinity fields and the default role (it is in no group yet).

        With *prepared* (from :meth:`prepare_user`; the user's row is in the database already) the
        state row is inserted at once; otherwise it is staged for the next flush, after the user's.
        """
        with self._hook():
            if prepared is not None:
                fields, role = prepared.fields, prepared.role
                self._orgs.insert_state(prepared.row)
            else:
                fields = self._fields(user, data)
                role = self._profile.roles.default
                self._orgs.add_state(UserOrgState(user_id=user.id, tenant_id=self._tenant_id, role=role,
                                                  primary_org_pk=None, primary_org_conflict=False,
                                                  user_fields=fields, updated=utcnow()))
            self._events.append(ev.USER_PROVISIONED, ev.user_subject(user.id), None, {**fields, "role": role})

    def user_updated(self, user: User, data: dict[str, Any]) -> None:
        """Record changed Infinity fields; deactivation keeps memberships (the user is reported inactive)."""
        state = self._orgs.states([user.id]).get(user.id)
        if state is None:
            self.user_created(user, data)
            return
        with self._hook():
            fields = self._fields(user, data)
            old = dict(state.user_fields or {})
            changed = sorted(k for k in old.keys() | fields.keys() if old.get(k) != fields.get(k))
            if not changed:
                return
            subject = ev.user_subject(user.id)
            others = [k for k in changed if k != "active"]
            if others:
                self._events.append(ev.USER_UPDATED, subject, {k: old.get(k) for k in others},
                                    {k: fields.get(k) for k in others})
            if "active" in changed:
                kind = ev.USER_DEACTIVATED if not fields["active"] else ev.USER_REACTIVATED
                self._events.append(kind, subject, {"active": old.get("active")},
                                    {"active": fields["active"], "user_name": fields.get("user_name")})
            state.user_fields = fields
            state.updated = utcnow()

    def user_deleting(self, user: User) -> None:
        """Remove every org membership of a user about to be deleted, with events."""
        with self._hook():
            state = self._orgs.states([user.id]).get(user.id)
            fields = dict(state.user_fields or {}) if state is not None else {"user_name": user.user_name}
            subject = ev.user_subject(user.id)
            for row in self._orgs.memberships_of([user.id]).get(user.id, []):
                self._events.append(ev.MEMBERSHIP_REMOVED, subject, self._membership_payload(row, fields), None)
            self._orgs.remove_user_memberships(user.id)
            self._events.append(ev.USER_DELETED, subject,
                                {**fields, "role": state.role if state is not None else None}, None)
            if state is not None:
                self._session.delete(state)

    # -- groups ------------------------------------------------------------------------------------

    def group_created(self, group: Group, delta: MemberDelta) -> None:
        """Create or link the org of a newly mapped group; give its initial members their orgs and roles."""
        with self._hook():
            decision = self._profile.decide(self._group_resource(group))
            if decision is not None:
                self._attach(group, decision)
            grants = self._profile.roles.granted_by(group.display_name, group.external_id)
            if delta and (decision is not None or grants):
                self.recompute(self._touched(delta))

    def group_changed(self, group: Group, before: dict[str, Any]) -> None:
        """Follow a rename / re-key of a group (its attributes, not its members) per the profile."""
        with self._hook():
            try:
                old = self._profile.decide(before)
            except ScimError:
                old = None  # what it was no longer validates (e.g. the profile changed): treat as unmapped
            new = self._profile.decide(self._group_resource(group))
            org = self._orgs.by_group(group.id, for_update=True)
            affected = False
            doomed: list[Org] = []
            if org is None or org.orphaned:
                if new is not None:
                    self._attach(group, new)
                    affected = True
            elif new is None:
                # The profile mapped the group neither before nor now: an admin linked it by hand
                # (admin/orgs_admin.py), and an IdP rename must not undo that.
                if old is not None:
                    doomed = self._unmap(org, group_gone=False)
                    affected = True
            else:
                previous = old.org_id if old is not None else org.org_id
                if previous != new.org_id and self._profile.orgs.on_org_id_change == "follow":
                    self._rekey(org, new.org_id)
                if old is None or old.name != new.name:
                    self._rename_from_idp(org, new.name)
            roles = self._profile.roles
            if roles.granted_by(before.get("displayName"), before.get("externalId")) != roles.granted_by(
                    group.display_name, group.external_id):
                affected = True
            if affected:
                self.recompute(self._orgs.users_below_groups([group.id]))
                self._reap(doomed)

    def members_changed(self, group: Group, delta: MemberDelta, above: list[GroupInfo] | None = None) -> None:
        """Recompute the users a membership change touched (only when an org or role is at stake).

        *above*: the groups above *group* when already read in this transaction
        (``OrgRepository.group_shared_with_groups_above``), else they are read here.
        """
        with self._hook():
            if delta and self._matters(group.id, above):
                self.recompute(self._touched(delta))

    def group_deleting(self, group: Group) -> PendingGroupDelete:
        """Detach (or doom) the group's org and note the users inside it, before the group row goes."""
        with self._hook():
            pending = PendingGroupDelete()
            if self._matters(group.id):
                pending.users = self._orgs.users_below_groups([group.id])
            org = self._orgs.by_group(group.id, for_update=True)
            if org is not None:
                if org.orphaned:
                    org.group_id = None
                else:
                    pending.doomed = self._unmap(org, group_gone=True)
            self._session.flush()
        return pending

    def group_deleted(self, pending: PendingGroupDelete) -> None:
        """Recompute the users that were inside the deleted group; delete doomed orgs."""
        with self._hook():
            self.recompute(pending.users)
            self._reap(pending.doomed)

    @contextmanager
    def _hook(self) -> Iterator[None]:
        """Write the events a hook queued when it succeeds; forget them when it fails.

        A failed change rolls back (a Bulk operation to its savepoint) while the service, and this
        sync, may serve the next operation: nothing queued by the failure may leak into it.
        """
        try:
            yield
            self._events.flush()
        except BaseException:
            self._events.discard()
            raise

    # -- recomputation -----------------------------------------------------------------------------

    def recompute(self, user_ids: Iterable[uuid.UUID]) -> None:
        """Recompute org memberships, primary org and role of exactly these users.

        Cost: a constant number of statements per 1,000 users, each proportional to the groups
        above those users (never to the size of the groups).
        """
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return
        # Lock first, walk second: on PostgreSQL (READ COMMITTED) a concurrent change to the same
        # users commits before the walk starts, so the walk sees its memberships.
        states = self._orgs.states(ids, for_update=True)
        above = self._orgs.groups_above_users(ids)
        missing = [uid for uid in ids if uid not in states]
        if missing:
            states.update(self._backfill(missing))
        memberships = self._orgs.memberships_of(ids)
        adds: list[tuple[uuid.UUID, uuid.UUID, str]] = []
        removes: list[int] = []
        for uid in ids:
            state = states.get(uid)
            if state is not None:
                self._recompute_one(uid, state, above.get(uid, []), memberships.get(uid, []), adds, removes)
        self._orgs.remove_memberships(removes)
        self._orgs.add_memberships(adds)

    def _backfill(self, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, UserOrgState]:
        """Create the state of users provisioned before org mapping existed (fields from their rows)."""
        users = UserRepository(self._session, self._tenant_id)
        rows = self._session.scalars(select(User).where(unindexed(User.tenant_id) == self._tenant_id,
                                                        User.id.in_(user_ids)))
        found = list(rows)
        values = users.values_of([u.id for u in found])
        created: dict[uuid.UUID, UserOrgState] = {}
        for user in found:
            fields = self._fields(user, to_scim_user(user, "", None, values.get(user.id, [])))
            state = UserOrgState(user_id=user.id, tenant_id=self._tenant_id, role=None, primary_org_pk=None,
                                 primary_org_conflict=False, user_fields=fields, updated=utcnow())
            self._orgs.add_state(state)
            created[user.id] = state
        return created

    def resync(self) -> None:
        """Re-apply the profile to every group and user of the tenant (after ``set-profile``, or an upgrade).

        O(tenant): an admin operation, never run by a SCIM request.
        """
        with self._hook():
            doomed: list[Org] = []
            for group in self._orgs.all_groups():
                decision = self._profile.decide(self._group_resource(group))
                org = self._orgs.by_group(group.id, for_update=True)
                if org is None or org.orphaned:
                    if decision is not None:
                        self._attach(group, decision)
                elif decision is None:
                    doomed += self._unmap(org, group_gone=False)
                else:
                    if org.org_id != decision.org_id and self._profile.orgs.on_org_id_change == "follow":
                        self._rekey(org, decision.org_id)
                    self._rename_from_idp(org, decision.name)
            self._session.flush()
            user_ids = self._orgs.all_user_ids()
            for start in range(0, len(user_ids), 1000):
                self.recompute(user_ids[start:start + 1000])
            self._reap(doomed)

    def _recompute_one(self, uid: uuid.UUID, state: UserOrgState, above: list[Any], rows: list[MembershipRow],
                       adds: list[tuple[uuid.UUID, uuid.UUID, str]], removes: list[int]) -> None:
        profile = self._profile
        fields = dict(state.user_fields or {})
        subject = ev.user_subject(uid)
        candidates = {g.org_pk: OrgCandidate(g.org_pk, g.org_id, g.org_name) for g in above if g.active_org}
        granted = [role for g in above for role in profile.roles.granted_by(g.display_name, g.external_id)]
        idp = {row.org_pk: row for row in rows if row.source == IDP}
        manual = {row.org_pk: row for row in rows if row.source == MANUAL}
        known = {row.org_pk: row.org_id for row in rows} | {pk: c.org_id for pk, c in candidates.items()}

        primary = profile.membership.pick_primary(candidates.values(), state.primary_org_pk)
        if primary is None and manual:
            primary = profile.membership.pick_primary(
                [OrgCandidate(pk, r.org_id, r.org_name) for pk, r in manual.items()], state.primary_org_pk)
        single = profile.membership.mode == "single"
        if single:
            desired = {primary.key} if primary is not None and primary.key in candidates else set()
        else:
            desired = set(candidates)
        for pk in sorted(idp.keys() - desired, key=lambda k: idp[k].org_id):
            removes.append(idp[pk].id)
            self._events.append(ev.MEMBERSHIP_REMOVED, subject, self._membership_payload(idp[pk], fields), None)
        for pk in sorted(desired - idp.keys(), key=lambda k: candidates[k].org_id):
            adds.append((uid, pk, IDP))
            c = candidates[pk]
            self._events.append(ev.MEMBERSHIP_ADDED, subject, None, {
                "org": str(pk), "org_id": c.org_id, "org_name": c.name, "source": IDP,
                "user_name": fields.get("user_name"), "email": fields.get("email")})

        changed = False
        new_primary = primary.key if primary is not None else None
        if new_primary != state.primary_org_pk:
            self._events.append(ev.PRIMARY_ORG_CHANGED, subject,
                                {"org_id": known.get(state.primary_org_pk) if state.primary_org_pk else None},
                                {"org_id": primary.org_id if primary is not None else None,
                                 "org": str(new_primary) if new_primary else None})
            state.primary_org_pk = new_primary
            changed = True
        conflict = single and len(candidates) > 1
        if conflict != state.primary_org_conflict or (conflict and changed):
            after: dict[str, Any] = {"conflict": conflict}
            if conflict and primary is not None:
                after |= {"candidates": sorted(c.org_id for c in candidates.values()), "chosen": primary.org_id}
            self._events.append(ev.PRIMARY_ORG_CONFLICT, subject, {"conflict": state.primary_org_conflict}, after)
            state.primary_org_conflict = conflict
            changed = True
        role = profile.roles.resolve(granted)
        if role != state.role:
            self._events.append(ev.ROLE_CHANGED, subject, {"role": state.role},
                                {"role": role, "user_name": fields.get("user_name")})
            state.role = role
            changed = True
        if changed:
            state.updated = utcnow()

    # -- org lifecycle -----------------------------------------------------------------------------

    def _attach(self, group: Group, decision: OrgDecision) -> Org:
        """Give a mapped group an org: restore its orphaned one, link an existing one, or create one."""
        linked = self._orgs.by_group(group.id, for_update=True)
        if linked is not None:  # orphaned while the group stopped mapping; it maps again
            if linked.org_id != decision.org_id and self._profile.orgs.on_org_id_change == "follow":
                self._rekey(linked, decision.org_id)
            linked.orphaned = False
            self._touch(linked)
            self._events.append(ev.ORG_LINKED, ev.org_subject(linked.id), {"group": str(group.id), "orphaned": True},
                                {"group": str(group.id), "orphaned": False, "org_id": linked.org_id})
            self._rename_from_idp(linked, decision.name)
            return linked
        existing = self._orgs.by_org_id(decision.org_id, for_update=True)
        if existing is None:
            now = utcnow()
            org = Org(id=new_id(), tenant_id=self._tenant_id, org_id=decision.org_id, name=decision.name,
                      source=IDP, group_id=group.id, name_locked=False, orphaned=False, version=1, created=now,
                      last_modified=now)
            self._orgs.add(org)
            self._events.append(ev.ORG_CREATED, ev.org_subject(org.id), None, {
                "org_id": org.org_id, "name": org.name, "source": IDP, "group": str(group.id)})
            return org
        if self._profile.orgs.on_existing_org_id == "reject":
            raise Uniqueness(f"org_id '{decision.org_id}' is already used by organization '{existing.name}'"
                             f"{self._linked_to(existing)}; the tenant's mapping profile rejects a second one")
        if existing.group_id is not None and not existing.orphaned:
            raise Uniqueness(f"org_id '{decision.org_id}' belongs to organization '{existing.name}'"
                             f"{self._linked_to(existing)}; an organization links to one group only")
        before = {"group": str(existing.group_id) if existing.group_id else None, "orphaned": existing.orphaned}
        existing.group_id = group.id
        existing.orphaned = False
        self._touch(existing)
        self._events.append(ev.ORG_LINKED, ev.org_subject(existing.id), before,
                            {"group": str(group.id), "orphaned": False, "org_id": existing.org_id})
        self._rename_from_idp(existing, decision.name)
        return existing

    def _unmap(self, org: Org, group_gone: bool) -> list[Org]:
        """The group was deleted or stopped mapping: detach (orphan) or doom the org, per the profile.

        Only orgs the IdP created are deleted; an org an admin created is always detached. Return
        the orgs to delete once their members are recomputed.
        """
        if self._profile.orgs.on_group_delete == "delete" and org.source == IDP:
            org.group_id = None
            return [org]
        before = {"orphaned": False, "group": str(org.group_id) if org.group_id else None}
        if group_gone:
            org.group_id = None
        org.orphaned = True
        self._touch(org)
        self._events.append(ev.ORG_ORPHANED, ev.org_subject(org.id), before,
                            {"orphaned": True, "org_id": org.org_id, "name": org.name})
        return []

    def _reap(self, doomed: list[Org]) -> None:
        """Delete doomed orgs, once their IdP memberships have been recomputed away."""
        for org in doomed:
            self._delete_org(org)

    def _delete_org(self, org: Org) -> None:
        rows = [row for rows in self._orgs.memberships_of(self._orgs.member_user_ids(org.id)).values()
                for row in rows if row.org_pk == org.id]
        states = self._orgs.states([row.user_id for row in rows])
        for row in rows:
            fields = dict(states[row.user_id].user_fields or {}) if row.user_id in states else {}
            self._events.append(ev.MEMBERSHIP_REMOVED, ev.user_subject(row.user_id),
                                self._membership_payload(row, fields), None)
        self._events.append(ev.ORG_DELETED, ev.org_subject(org.id), {"org_id": org.org_id, "name": org.name}, None)
        affected = self._orgs.users_with_primary(org.id)
        self._orgs.delete(org)
        self._session.flush()
        self.recompute(affected)

    def _rekey(self, org: Org, org_id: str) -> None:
        if org.org_id == org_id:
            return
        other = self._orgs.by_org_id(org_id)
        if other is not None and other.id != org.id:
            raise Uniqueness(f"cannot re-key organization '{org.name}' from org_id '{org.org_id}' to '{org_id}': "
                             f"organization '{other.name}' has that org_id")
        before = org.org_id
        org.org_id = org_id
        self._touch(org)
        self._events.append(ev.ORG_REKEYED, ev.org_subject(org.id), {"org_id": before}, {"org_id": org_id})

    def _rename_from_idp(self, org: Org, name: str) -> None:
        """Apply an IdP rename, unless an admin edited the name and the profile protects that."""
        if org.name == name:
            return
        if org.name_locked and not self._profile.orgs.name.idp_renames_override_admin:
            return
        before = org.name
        org.name = name
        org.name_locked = False
        self._touch(org)
        self._events.append(ev.ORG_RENAMED, ev.org_subject(org.id), {"name": before},
                            {"name": name, "org_id": org.org_id})

    # -- helpers -----------------------------------------------------------------------------------

    def _matters(self, group_id: uuid.UUID, above: list[GroupInfo] | None = None) -> bool:
        """Tell whether membership of the group can affect orgs or roles (it or a group above it does)."""
        roles = self._profile.roles
        return any(g.active_org or roles.granted_by(g.display_name, g.external_id)
                   for g in (above if above is not None else self._orgs.groups_above_group(group_id)))

    def _touched(self, delta: MemberDelta) -> set[uuid.UUID]:
        touched = set(delta.users_added | delta.users_removed)
        nested = delta.groups_added | delta.groups_removed
        if nested:
            touched |= self._orgs.users_below_groups(nested)
        return touched

    def _fields(self, user: User, data: dict[str, Any]) -> dict[str, Any]:
        return self._profile.user.extract({**data, "userName": user.user_name, "active": user.active})

    def _group_resource(self, group: Group) -> dict[str, Any]:
        return to_scim_group(group, "", None)

    def _linked_to(self, org: Org) -> str:
        if org.group_id is None:
            return " (created by an admin)" if org.source == MANUAL else " (orphaned)"
        name = self._orgs.group_names([org.group_id]).get(org.group_id)
        return f" (linked to group '{name}')" if name else ""

    def _membership_payload(self, row: MembershipRow, fields: dict[str, Any]) -> dict[str, Any]:
        return {"org": str(row.org_pk), "org_id": row.org_id, "org_name": row.org_name, "source": row.source,
                "user_name": fields.get("user_name"), "email": fields.get("email")}

    def _touch(self, org: Org) -> None:
        org.version = (org.version or 1) + 1
        org.last_modified = utcnow()

    def flush_events(self) -> None:
        """Write queued events (the hooks do; exposed for admin operations)."""
        self._events.flush()

    def append_event(self, type_: str, subject: str, before: dict[str, Any] | None,
                     after: dict[str, Any] | None) -> None:
        """Queue an event (admin operations)."""
        self._events.append(type_, subject, before, after)

    def create_manual(self, org_id: str, name: str) -> Org:
        """Add an org created by hand (``source = manual``, name admin-edited), with its event.

        The caller has checked *org_id* and *name* (the CLI and the admin surfaces check differently).
        """
        now = utcnow()
        org = Org(id=new_id(), tenant_id=self._tenant_id, org_id=org_id, name=name, source=MANUAL,
                  group_id=None, name_locked=True, orphaned=False, version=1, created=now, last_modified=now)
        self._orgs.add(org)
        self._events.append(ev.ORG_CREATED, ev.org_subject(org.id), None,
                            {"org_id": org_id, "name": name, "source": MANUAL, "group": None})
        return org

    def rekey(self, org: Org, org_id: str) -> None:
        """Change an org's org_id (uniqueness checked), with an event."""
        self._rekey(org, org_id)

    def delete_org(self, org: Org) -> None:
        """Delete an org with its memberships; its members' primary orgs are recomputed."""
        if org.group_id is not None:
            org.group_id = None
            self._session.flush()
        self._delete_org(org)


class OrgError(ValueError):
    """An admin operation on orgs was refused (clear message for the CLI)."""


class OrgService:
    """Admin operations on the orgs of one tenant, and the variables of a user."""

    def __init__(self, session: Session, tenant_id: uuid.UUID, profile: Profile,
                 request_id: str | None = None) -> None:
        self._session = session
        self._tenant_id = tenant_id
        self._profile = profile
        self._orgs = OrgRepository(session, tenant_id)
        self._sync = OrgSync(session, tenant_id, profile, request_id)

    def list(self) -> list[Org]:
        """Return every org of the tenant, by org_id."""
        return self._orgs.all()

    def require(self, org_id: str) -> Org:
        """Return the org with *org_id* or raise :class:`OrgError`."""
        org = self._orgs.by_org_id(org_id, for_update=True)
        if org is None:
            raise OrgError(f"no organization with org_id {org_id!r}")
        return org

    def create(self, org_id: str, name: str) -> Org:
        """Create an org by hand (``source = manual``); its name counts as admin-edited."""
        org_id, name = org_id.strip(), name.strip()
        if not org_id or not name:
            raise OrgError("an organization needs a non-empty org_id and name")
        if self._orgs.by_org_id(org_id) is not None:
            raise OrgError(f"org_id {org_id!r} is already used")
        org = self._sync.create_manual(org_id, name)
        self._flush()
        return org

    def rename(self, org_id: str, name: str) -> Org:
        """Rename an org as an admin: IdP renames then leave the name alone (unless the profile overrides)."""
        org = self.require(org_id)
        if not name.strip():
            raise OrgError("the name cannot be empty")
        if org.name != name.strip():
            self._sync.append_event(ev.ORG_RENAMED, ev.org_subject(org.id), {"name": org.name},
                                    {"name": name.strip(), "org_id": org.org_id})
            org.name = name.strip()
            org.version += 1
            org.last_modified = utcnow()
        org.name_locked = True
        self._flush()
        return org

    def set_org_id(self, org_id: str, new_org_id: str) -> Org:
        """Change an org's org_id as an admin (the IdP re-keys it again only when its source changes)."""
        org = self.require(org_id)
        if not new_org_id.strip():
            raise OrgError("the org_id cannot be empty")
        try:
            self._sync.rekey(org, new_org_id.strip())
        except ScimError as exc:
            raise OrgError(exc.detail) from exc
        self._flush()
        return org

    def delete(self, org_id: str) -> None:
        """Delete an org; its memberships go (with events) and members' primary orgs are recomputed."""
        self._sync.delete_org(self.require(org_id))
        self._flush()

    def resync(self) -> None:
        """Re-apply the tenant's profile to every group and user (after a profile change or an upgrade)."""
        try:
            self._sync.resync()
        except ScimError as exc:
            raise OrgError(exc.detail) from exc
        self._flush()

    def variables(self, user_name: str) -> dict[str, Any]:
        """Return the resolved variables of the user *user_name* (case-insensitive)."""
        user = self._session.scalars(select(User).where(User.tenant_id == self._tenant_id,
                                                        User.user_name_key == user_name.lower())).one_or_none()
        if user is None:
            raise OrgError(f"no user {user_name!r}")
        state = self._orgs.states([user.id]).get(user.id)
        rows = self._orgs.memberships_of([user.id]).get(user.id, [])
        fields = dict(state.user_fields or {}) if state is not None else {}
        primary = next((r for r in rows if state is not None and r.org_pk == state.primary_org_pk), None)
        variables = self._profile.variables(
            fields, primary.org_id if primary else None, primary.org_name if primary else None,
            sorted({r.org_id for r in rows}), state.role if state is not None else self._profile.roles.default)
        variables["active"] = bool(user.active is not False)
        if user.iam_org_id is not None:
            variables["iam_org_id"] = user.iam_org_id
        return variables

    def _flush(self) -> None:
        self._sync.flush_events()
        self._session.flush()
