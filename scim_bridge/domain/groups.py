"""Group service: SCIM Groups of one tenant and their memberships."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scim_bridge.domain.errors import InvalidValue
from scim_bridge.domain.errors import NotFound
from scim_bridge.domain.errors import Uniqueness
from scim_bridge.domain.mapping import MemberRef
from scim_bridge.domain.mapping import fold
from scim_bridge.domain.mapping import to_scim_group
from scim_bridge.domain.orgs import MemberDelta
from scim_bridge.domain.orgs import OrgSync
from scim_bridge.domain.query import ListQuery
from scim_bridge.domain.query import ListResult
from scim_bridge.mappings.model import Profile
from scim_bridge.scim import schema as s
from scim_bridge.scim.etag import require_match
from scim_bridge.scim.patch import MemberChange
from scim_bridge.scim.patch import apply_patch
from scim_bridge.scim.patch import parse_patch_request
from scim_bridge.scim.patch import single_member_change
from scim_bridge.scim.projection import Projection
from scim_bridge.scim.rendered import RenderedArray
from scim_bridge.scim.resource import Options
from scim_bridge.scim.resource import normalize
from scim_bridge.storage import scim_sql
from scim_bridge.storage.base import new_id
from scim_bridge.storage.base import utcnow
from scim_bridge.storage.models import Group
from scim_bridge.storage.prepared import PlannedRead
from scim_bridge.storage.repositories.common import parse_id
from scim_bridge.storage.repositories.groups import GroupRepository
from scim_bridge.storage.repositories.orgs import GroupInfo
from scim_bridge.storage.repositories.orgs import OrgRepository
from scim_bridge.storage.repositories.users import UserRepository

RESOURCE = s.GROUP_RESOURCE


class MemberSet:
    """Member ids split by kind, resolved against the tenant."""

    def __init__(self, user_ids: list[uuid.UUID], group_ids: list[uuid.UUID],
                 displays: dict[uuid.UUID, str] | None = None) -> None:
        self.user_ids = user_ids
        self.group_ids = group_ids
        self.displays = displays or {}

    @property
    def all_ids(self) -> set[uuid.UUID]:
        """Return every member id."""
        return set(self.user_ids) | set(self.group_ids)


class GroupService:
    """SCIM Groups of one tenant. Services flush; the unit of work commits."""

    def __init__(self, session: Session, tenant_id: uuid.UUID, base_url: str,
                 options: Options | None = None, profile: Profile | None = None,
                 request_id: str | None = None) -> None:
        """*profile* (the tenant's mapping profile) turns on the org sync; *request_id* goes into its events."""
        self._session = session
        self._tenant_id = tenant_id
        self._base_url = base_url
        self._options = options or Options()
        self._groups = GroupRepository(session, tenant_id)
        self._users = UserRepository(session, tenant_id)
        self._orgs = OrgRepository(session, tenant_id)
        self._sync = OrgSync(session, tenant_id, profile, request_id) if profile is not None else None

    # -- reads ---------------------------------------------------------------------------------

    def get(self, group_id: str, projection: Projection | None = None) -> dict[str, Any]:
        """Return the group as a SCIM resource; members are loaded only when projected."""
        return self.render(self.load(group_id), projection)

    def load(self, group_id: str, projection: Projection | None = None) -> Any:  # noqa: ARG002
        """Return the columns of the group *group_id* of this tenant, or raise 404 (members are read when rendering).

        A read-only view, by column name like the mapped :class:`Group`: reads run on the request's
        read lease (storage.prepared), writes load the mapped group for update.
        """
        parsed = parse_id(group_id)
        group = self._groups.read(parsed) if parsed is not None else None
        if group is None:
            raise NotFound(f"Group {group_id} not found")
        return group

    def list(self, query: ListQuery) -> ListResult:
        """Return one page of groups matching the query."""
        where = scim_sql.compile_filter(RESOURCE, query.filter) if query.filter is not None else None
        total = self._groups.count(where)
        if query.count == 0 or total == 0:
            return ListResult(total, query.start_index, [])
        order = scim_sql.order_by_clause(RESOURCE, query.sort_by, query.descending)
        rows = self._groups.page(where, order, query.start_index - 1, query.count)
        return ListResult(total, query.start_index, self.render_many(rows, query.projection(RESOURCE)))

    def render(self, group: Group, projection: Projection | None = None) -> dict[str, Any]:
        """Render one group (members in one query, only when projected)."""
        return self.render_many([group], projection)[0]

    def render_written(self, group: Group, projection: Projection | None = None) -> dict[str, Any]:
        """Render a group this service just wrote (as :meth:`render`; the views call this after writes)."""
        return self.render(group, projection)

    def render_many(self, groups: list[Group], projection: Projection | None = None) -> list[dict[str, Any]]:
        """Render several groups; all their members come from a single query."""
        projection = projection or Projection(RESOURCE)
        ids = [g.id for g in groups]
        members: dict[uuid.UUID, list[MemberRef] | RenderedArray] = {}
        if projection.wants_whole("members"):
            # Whole members (the default): the database renders their JSON, Python never sees a member.
            members = {gid: RenderedArray(items)
                       for gid, items in self._groups.rendered_members(ids, self._base_url).items()}
        elif projection.wants("members"):
            # Some sub-attributes only (attributes=members.value): rendered here, then trimmed.
            members = {gid: [MemberRef(mid, kind, display) for mid, kind, display in rows]
                       for gid, rows in self._groups.members_of(ids).items()}
        # The linked orgs of the whole page in one query, only when the extension is projected.
        orgs = self._orgs.by_groups(ids) if _wants_org(projection) else {}
        return [projection.apply(to_scim_group(group, self._base_url, members.get(group.id), orgs.get(group.id)))
                for group in groups]

    # -- writes --------------------------------------------------------------------------------

    def prepare_create(self, body: Any) -> Any:
        """Return the POST body as it is: a group is checked inside its write (its members are resolved there)."""
        return body

    def create(self, body: Any) -> Group:
        """Create a group from a POST body, with its initial members."""
        data = normalize(body, RESOURCE, self._options)
        self._check_unique(data, None)
        members = self.resolve_members(data.get("members") or [], None)
        now = utcnow()
        group = Group(id=new_id(), tenant_id=self._tenant_id, version=1, created=now, last_modified=now,
                      display_name=data["displayName"], display_name_key=fold(data["displayName"]) or "",
                      external_id=data.get("externalId"), iam_org_id=_iam_org_id(data))
        self._groups.add(group)
        self._flush()
        self._groups.add_members(group.id, members.user_ids, members.group_ids, members.displays)
        if self._sync is not None:
            self._sync.group_created(group, MemberDelta(users_added=frozenset(members.user_ids),
                                                        groups_added=frozenset(members.group_ids)))
            self._flush()
        return group

    def replace(self, group_id: str, body: Any, if_match: str | None = None) -> Group:
        """Replace a group from a PUT body: name, externalId and the exact member set."""
        group = self._load_for_update(group_id)
        require_match(if_match, group.version)
        data = normalize(body, RESOURCE, self._options)
        self._check_unique(data, group.id)
        before = to_scim_group(group, self._base_url, None)
        group.display_name = data["displayName"]
        group.display_name_key = fold(group.display_name) or ""
        group.external_id = data.get("externalId")
        group.iam_org_id = _iam_org_id(data)
        members = self.resolve_members(data.get("members") or [], group.id)
        delta = self._set_members(group, members)
        self.touch(group)
        self._flush()
        self._follow(group, before, delta)
        return group

    def patch(self, group_id: str, body: Any, if_match: str | None = None) -> Group:
        """Apply a PatchOp atomically. Members are never loaded: each change costs O(its members).

        A PATCH that adds or removes one member (what IdPs send, one after another, to one group)
        does not hold the group's write lock while it works: it reads the group ``FOR KEY SHARE``
        (no delete, no other writer's ``FOR UPDATE`` meanwhile), changes the membership, runs the
        org sync, and only then bumps the version (the write lock, until commit), before its
        events. Such PATCHes of one group run side by side; each locks one membership row, then
        the org states of the users it touches (in user id order), then the group, then the
        tenant's event log, always in this order, so they cannot deadlock. Every other PATCH
        (another attribute, several members, ``replace``, removing all, ``If-Match``) locks the
        group ``FOR UPDATE`` first, as PUT does.
        """
        operations = parse_patch_request(body)
        shared = if_match is None and single_member_change(operations)
        above: list[GroupInfo] | None = None
        if shared:
            group, above = self._load_shared_with_groups_above(group_id)
        else:
            group = self._load_for_update(group_id)
        require_match(if_match, group.version)
        current = to_scim_group(group, self._base_url, None)
        result = apply_patch(current, operations, RESOURCE, ignore_unknown=self._options.ignore_unknown)
        changed = False
        before: dict[str, Any] | None = None
        if result.changed_attributes - {"members"}:
            data = normalize(result.resource, RESOURCE, self._options)
            self._check_unique(data, group.id)
            before = current
            group.display_name = data["displayName"]
            group.display_name_key = fold(group.display_name) or ""
            group.external_id = data.get("externalId")
            group.iam_org_id = _iam_org_id(data)
            changed = True
        delta = MemberDelta()
        for change in result.member_changes:
            change_made, change_delta = self._apply_member_change(group, change)
            changed = change_made or changed
            delta = delta.merge(change_delta)
        if changed and shared:
            self._bump_last(group, delta, above)
        elif changed:
            self.touch(group)
            self._flush()
            self._follow(group, before, delta)
        return group

    def _bump_last(self, group: Group, delta: MemberDelta, above: list[GroupInfo] | None) -> None:
        """Finish a membership change made under the shared lock: org sync, then version, then events.

        *above*: the groups above this one, read with it (a member change does not move them).
        """
        if self._sync is None:
            self._groups.bump(group)
            return
        with self._sync.events_together():  # the events (the tenant's lock) after the group's lock
            self._sync.members_changed(group, delta, above)
            self._groups.bump(group)

    def _apply_member_change(self, group: Group, change: MemberChange) -> tuple[bool, MemberDelta]:
        """Apply one membership change in SQL; return whether anything changed, and who came and went.

        Who went comes back from the DELETE itself (``RETURNING``): O(members removed), never O(members).
        """
        if change.op == "add":
            fast = self._add_one_user(group, change)
            if fast is not None:
                return True, fast
            members = self.resolve_members(change.values, group.id)
            added = self._groups.add_members(group.id, members.user_ids, members.group_ids, members.displays) > 0
            return added, MemberDelta(users_added=frozenset(members.user_ids),
                                      groups_added=frozenset(members.group_ids))
        if change.op == "remove":
            ids = [i for i in (parse_id(v) for v in change.ids) if i is not None]
            gone = self._groups.remove_members(group.id, ids)  # who went, from the DELETE itself
            return bool(gone[0] or gone[1]), _removed(gone)
        if change.op == "remove_all":
            gone = self._groups.remove_all_members(group.id)
            return bool(gone[0] or gone[1]), _removed(gone)
        if change.op == "replace":
            delta = self._set_members(group, self.resolve_members(change.values, group.id))
            return bool(delta), delta
        if change.op == "remove_where" and change.filter is not None:
            where = scim_sql.compile_member_filter(change.filter)
            gone = self._groups.remove_members_where(group.id, where)
            return bool(gone[0] or gone[1]), _removed(gone)
        raise InvalidValue(f"unsupported member change '{change.op}'")

    def _add_one_user(self, group: Group, change: MemberChange) -> MemberDelta | None:
        """Add the one member of *change* as a user in one statement, when it is a user not yet in the group.

        ``None`` when that did not add it (already a member, a group, unknown, not a UUID): the
        caller resolves the member as for any other add, errors and nested groups included.
        """
        if len(change.values) != 1 or change.values[0].get("type") not in (None, "User"):
            return None
        member = change.values[0]
        user_id = parse_id(member["value"])
        display = member.get("display")
        if user_id is None or user_id == group.id or not self._groups.add_user_member(
                group.id, user_id, display if isinstance(display, str) else None):
            return None
        return MemberDelta(users_added=frozenset((user_id,)))

    def delete(self, group_id: str, if_match: str | None = None) -> None:
        """Delete a group and every membership that names it; its org is detached or deleted per the profile."""
        group = self._load_for_update(group_id)
        require_match(if_match, group.version)
        pending = self._sync.group_deleting(group) if self._sync is not None else None
        self._groups.delete(group)
        self._session.flush()
        if self._sync is not None and pending is not None:
            self._sync.group_deleted(pending)
            self._session.flush()

    def set_members(self, group: Group, members: MemberSet) -> bool:
        """Make the member set exactly *members*: only the difference is written."""
        return bool(self._set_members(group, members))

    def _set_members(self, group: Group, members: MemberSet) -> MemberDelta:
        current_users, current_groups = self._groups.split_members(group.id)
        current = current_users | current_groups
        wanted = members.all_ids
        self._groups.remove_members(group.id, list(current - wanted))
        added_users = [u for u in members.user_ids if u not in current]
        added_groups = [g for g in members.group_ids if g not in current]
        self._groups.add_members(group.id, added_users, added_groups, members.displays)
        return MemberDelta(users_added=frozenset(added_users), users_removed=frozenset(current_users - wanted),
                           groups_added=frozenset(added_groups), groups_removed=frozenset(current_groups - wanted))

    def _follow(self, group: Group, before: dict[str, Any] | None, delta: MemberDelta) -> None:
        """Run the org sync for a flushed change: the group's own attributes, then its members."""
        if self._sync is None:
            return
        if before is not None and _identity(before) != _identity(to_scim_group(group, self._base_url, None)):
            self._sync.group_changed(group, before)
        self._sync.members_changed(group, delta)
        self._flush()

    def resolve_members(self, members: Iterable[dict[str, Any]], group_id: uuid.UUID | None) -> MemberSet:
        """Check that every member exists in this tenant; 400 ``invalidValue`` naming those that do not."""
        wanted: dict[uuid.UUID, str | None] = {}
        displays: dict[uuid.UUID, str] = {}
        unknown: list[str] = []
        for member in members:
            raw = member.get("value")
            parsed = parse_id(raw)
            if parsed is None:
                unknown.append(str(raw))
                continue
            kind = member.get("type")
            if kind is not None and kind not in ("User", "Group"):
                raise InvalidValue(f"member type must be 'User' or 'Group', not '{kind}'")
            wanted[parsed] = kind
            if isinstance(member.get("display"), str):
                displays.setdefault(parsed, member["display"])
        if group_id is not None and group_id in wanted:
            raise InvalidValue("a group cannot be a member of itself")
        ids = list(wanted)
        user_ids = self._users.existing_ids([i for i in ids if wanted[i] != "Group"])
        group_ids = self._groups.existing_ids([i for i in ids if wanted[i] != "User" and i not in user_ids])
        unknown += [str(i) for i in ids if i not in user_ids and i not in group_ids]
        if unknown:
            shown = ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else "")
            raise InvalidValue(f"unknown member(s): {shown}")
        nested = [i for i in ids if i in group_ids]
        if group_id is not None and nested and self._orgs.reaches(nested, group_id):
            # Walk down from the new member groups: finding this group there closes a cycle.
            raise InvalidValue(f"adding these member groups would create a cycle: group {group_id} is already "
                               "nested inside one of them")
        return MemberSet([i for i in ids if i in user_ids], nested, displays)

    def touch(self, group: Group) -> None:
        """Record a change: bump the version and lastModified."""
        group.version = group.version + 1
        group.last_modified = utcnow()

    # -- helpers -------------------------------------------------------------------------------

    def _load_shared_with_groups_above(self, group_id: str) -> tuple[Group, list[GroupInfo]]:
        parsed = parse_id(group_id)
        group, above = self._orgs.group_shared_with_groups_above(parsed) if parsed is not None else (None, [])
        if group is None:
            raise NotFound(f"Group {group_id} not found")
        return group, above

    def _load_for_update(self, group_id: str) -> Group:
        parsed = parse_id(group_id)
        group = self._groups.get_for_update(parsed) if parsed is not None else None
        if group is None:
            raise NotFound(f"Group {group_id} not found")
        return group

    def _check_unique(self, data: dict[str, Any], own_id: uuid.UUID | None) -> None:
        other = self._groups.id_by_display_name(data["displayName"])
        if other is not None and other != own_id:
            raise Uniqueness(f"displayName '{data['displayName']}' is already in use")
        external_id = data.get("externalId")
        if external_id is not None:
            other = self._groups.id_by_external_id(external_id)
            if other is not None and other != own_id:
                raise Uniqueness(f"externalId '{external_id}' is already in use by another Group")

    def _flush(self) -> None:
        try:
            self._session.flush()
        except IntegrityError as exc:
            raise Uniqueness("displayName or externalId is already in use") from exc


def _removed(gone: tuple[set[uuid.UUID], set[uuid.UUID]]) -> MemberDelta:
    return MemberDelta(users_removed=frozenset(gone[0]), groups_removed=frozenset(gone[1]))


def _iam_org_id(data: dict[str, Any]) -> str | None:
    """Return the Infinity extension's ``iamOrgId`` from canonical *data*."""
    value = (data.get(s.INFINITY_GROUP_SCHEMA) or {}).get("iamOrgId")
    return value if isinstance(value, str) else None


def _identity(resource: dict[str, Any]) -> tuple[Any, ...]:
    """Return what the org mapping reads of a group: its names and the pushed IAM org ID."""
    return (resource.get("displayName"), resource.get("externalId"),
            (resource.get(s.INFINITY_GROUP_SCHEMA) or {}).get("iamOrgId"))


def _wants_org(projection: Projection) -> bool:
    return any(projection.wants(name, s.INFINITY_GROUP_SCHEMA) for name in ("orgId", "orgName", "managed", "orphaned"))


def group_read(group_id: str) -> PlannedRead | None:
    """How :meth:`GroupService.load` reads *group_id* (``None`` for an id that cannot exist).

    Known before the tenant is, so that the token's statement can read it along
    (``require_oauth(..., along=...)``).
    """
    parsed = parse_id(group_id)
    return GroupRepository.row_read(parsed) if parsed is not None else None
