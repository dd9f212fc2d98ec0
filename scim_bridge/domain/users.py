"""User service: create, read, replace, delete and list SCIM Users within one tenant."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scim_bridge.domain.errors import NotFound
from scim_bridge.domain.errors import Uniqueness
from scim_bridge.domain.mapping import MULTI_VALUED
from scim_bridge.domain.mapping import GroupRef
from scim_bridge.domain.mapping import apply_scim_user
from scim_bridge.domain.mapping import to_scim_user
from scim_bridge.domain.mapping import user_values_from_scim
from scim_bridge.domain.orgs import OrgSync
from scim_bridge.domain.passwords import hash_password
from scim_bridge.domain.query import ListQuery
from scim_bridge.domain.query import ListResult
from scim_bridge.domain.query import page_total
from scim_bridge.mappings.model import Profile
from scim_bridge.scim import schema as s
from scim_bridge.scim.etag import require_match
from scim_bridge.scim.patch import apply_patch
from scim_bridge.scim.patch import parse_patch_request
from scim_bridge.scim.projection import Projection
from scim_bridge.scim.resource import Options
from scim_bridge.scim.resource import normalize
from scim_bridge.storage import scim_sql
from scim_bridge.storage.base import utcnow
from scim_bridge.storage.models import User
from scim_bridge.storage.repositories.common import parse_id
from scim_bridge.storage.repositories.orgs import OrgRepository
from scim_bridge.storage.repositories.users import UserReadView
from scim_bridge.storage.repositories.users import UserRepository

RESOURCE = s.USER_RESOURCE


class UserService:
    """SCIM Users of one tenant. Services flush; the unit of work commits."""

    def __init__(self, session: Session, tenant_id: uuid.UUID, base_url: str,
                 options: Options | None = None, profile: Profile | None = None,
                 request_id: str | None = None) -> None:
        """*profile* (the tenant's mapping profile) turns on the org sync; *request_id* goes into its events."""
        self._session = session
        self._tenant_id = tenant_id
        self._base_url = base_url
        self._options = options or Options()
        self._users = UserRepository(session, tenant_id)
        self._orgs = OrgRepository(session, tenant_id)
        self._sync = OrgSync(session, tenant_id, profile, request_id) if profile is not None else None

    # -- reads ---------------------------------------------------------------------------------

    def get(self, user_id: str, projection: Projection | None = None) -> dict[str, Any]:
        """Return the user *user_id* as a SCIM resource, or raise 404."""
        return self.render(self.load(user_id), projection)

    def load(self, user_id: str, projection: Projection | None = None) -> UserReadView:
        """Return the stored user *user_id* of this tenant with what *projection* needs, or raise 404.

        One statement: the row, and its multi-valued attributes and groups when they are projected.
        """
        projection = projection or Projection(RESOURCE)
        parsed = parse_id(user_id)
        user = (self._users.read(parsed, with_values=_wants_values(projection),
                                 with_groups=projection.wants("groups")) if parsed is not None else None)
        if user is None:
            raise NotFound(f"User {user_id} not found")
        return user

    def list(self, query: ListQuery) -> ListResult:
        """Return one page of users matching the query (filtering, sorting and paging in SQL)."""
        where = scim_sql.compile_filter(RESOURCE, query.filter) if query.filter is not None else None
        projection = query.projection(RESOURCE)
        if query.count == 0:
            return ListResult(self._users.count(where), query.start_index, [])
        order = scim_sql.order_by_clause(RESOURCE, query.sort_by, query.descending)
        offset = query.start_index - 1
        rows = self._users.read_page(where, order, offset, query.count,
                                     with_values=_wants_values(projection), with_groups=projection.wants("groups"))
        return ListResult(page_total(offset, query.count, len(rows), lambda: self._users.count(where)),
                          query.start_index, self.render_many(rows, projection))

    def render(self, user: User | UserReadView, projection: Projection | None = None) -> dict[str, Any]:
        """Render one user, loading only what the projection needs."""
        return self.render_many([user], projection)[0]

    def render_many(self, users: Sequence[User | UserReadView], projection: Projection | None = None
                    ) -> list[dict[str, Any]]:
        """Render several users with one query per related table (never one per user).

        Read views (:meth:`load`, :meth:`list`) carry their values and groups already; mapped users
        (just written) get theirs here.
        """
        projection = projection or Projection(RESOURCE)
        wants_values, wants_groups = _wants_values(projection), projection.wants("groups")
        written = [u.id for u in users if not isinstance(u, UserReadView)]
        values = self._users.values_of(written) if wants_values and written else {}
        groups = self._users.groups_of(written) if wants_groups and written else {}
        # Org, orgs and role of the whole page in one query, only when the extension is projected.
        orgs = self._orgs.views_of([u.id for u in users]) if _wants_org(projection) else {}
        rendered = []
        for user in users:
            if isinstance(user, UserReadView):
                row, own_values, own_groups = user.row, user.values or [], user.groups or []
            else:
                row, own_values, own_groups = user, values.get(user.id, []), groups.get(user.id, [])
            refs = [GroupRef(gid, display) for gid, display in own_groups] if wants_groups else None
            body = to_scim_user(row, self._base_url, refs, own_values, orgs.get(user.id))
            rendered.append(projection.apply(body))
        return rendered

    # -- writes --------------------------------------------------------------------------------

    def create(self, body: Any) -> User:
        """Create a user from a POST body (RFC 7644 §3.3)."""
        data = normalize(body, RESOURCE, self._options)
        self._check_unique(data, None)
        now = utcnow()
        user = User(id=uuid.uuid4(), tenant_id=self._tenant_id, version=1, created=now, last_modified=now)
        apply_scim_user(user, data)
        self._resolve_manager(user)
        self._set_password(user, data)
        self._users.add(user)
        self._users.add_values(user, user_values_from_scim(data, self._tenant_id))
        self._flush()
        if self._sync is not None:
            self._sync.user_created(user, data)
            self._flush()
        return user

    def replace(self, user_id: str, body: Any, if_match: str | None = None) -> User:
        """Replace a user from a PUT body (RFC 7644 §3.5.1); readOnly attributes are kept."""
        user = self._load(user_id, for_update=True)
        require_match(if_match, user.version)
        data = normalize(body, RESOURCE, self._options)
        self._check_unique(data, user.id)
        apply_scim_user(user, data)
        self._resolve_manager(user)
        self._set_password(user, data)
        self._users.replace_values(user, user_values_from_scim(data, self._tenant_id))
        self.touch(user)
        self._flush()
        if self._sync is not None:
            self._sync.user_updated(user, data)
            self._flush()
        return user

    def patch(self, user_id: str, body: Any, if_match: str | None = None) -> User:
        """Apply a PatchOp (RFC 7644 §3.5.2) atomically; only a real change bumps the version."""
        operations = parse_patch_request(body)
        user = self._load(user_id, for_update=True)
        require_match(if_match, user.version)
        values = self._users.values_of([user.id]).get(user.id, [])
        current = to_scim_user(user, self._base_url, None, values)
        result = apply_patch(current, operations, RESOURCE, ignore_unknown=self._options.ignore_unknown)
        if not result.changed_attributes:
            return user
        data = normalize(result.resource, RESOURCE, self._options)
        self._check_unique(data, user.id)
        apply_scim_user(user, data, defaults=False)
        self._resolve_manager(user)
        if result.password:
            user.password_hash = hash_password(result.password)
        if any(name in MULTI_VALUED for name in result.changed_attributes):
            self._users.replace_values(user, user_values_from_scim(data, self._tenant_id))
        self.touch(user)
        self._flush()
        if self._sync is not None:
            self._sync.user_updated(user, data)
            self._flush()
        return user

    def delete(self, user_id: str, if_match: str | None = None) -> None:
        """Delete a user; it leaves every group and org it was a member of."""
        user = self._load(user_id, for_update=True)
        require_match(if_match, user.version)
        if self._sync is not None:
            self._sync.user_deleting(user)
        self._users.delete(user)
        self._session.flush()

    def touch(self, user: User) -> None:
        """Record a change: bump the version and lastModified."""
        user.version = user.version + 1
        user.last_modified = utcnow()

    # -- helpers -------------------------------------------------------------------------------

    def _load(self, user_id: str, for_update: bool = False) -> User:
        parsed = parse_id(user_id)
        user = None
        if parsed is not None:
            user = self._users.get_for_update(parsed) if for_update else self._users.get(parsed)
        if user is None:
            raise NotFound(f"User {user_id} not found")
        return user

    def _check_unique(self, data: dict[str, Any], own_id: uuid.UUID | None) -> None:
        """Refuse a userName (case-insensitive) or externalId held by another user: one query for both."""
        external_id = data.get("externalId")
        for other_id, user_name_key, other_external_id in self._users.holders_of(data["userName"], external_id):
            if other_id == own_id:
                continue
            if user_name_key == data["userName"].lower():
                raise Uniqueness(f"userName '{data['userName']}' is already in use")
            if external_id is not None and other_external_id == external_id:
                raise Uniqueness(f"externalId '{external_id}' is already in use by another User")

    def _resolve_manager(self, user: User) -> None:
        """Fill the readOnly ``manager.displayName`` from the referenced user, when it is one of ours."""
        manager_id = parse_id(user.manager_value)
        manager = self._users.get(manager_id) if manager_id is not None else None
        user.manager_display_name = (manager.display_name or manager.user_name) if manager is not None else None

    def _set_password(self, user: User, data: dict[str, Any]) -> None:
        password = data.get("password")
        if password:
            user.password_hash = hash_password(password)

    def _flush(self) -> None:
        try:
            self._session.flush()
        except IntegrityError as exc:
            # A concurrent request won the race for a unique value after our check.
            raise Uniqueness("userName or externalId is already in use") from exc


def _wants_org(projection: Projection) -> bool:
    return any(projection.wants(name, s.INFINITY_USER_SCHEMA)
               for name in ("orgId", "orgIds", "role", "primaryOrgConflict"))


def _wants_values(projection: Projection) -> bool:
    return any(projection.wants(attr) for attr in MULTI_VALUED)
