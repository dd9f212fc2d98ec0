"""User service: create, read, replace, delete and list SCIM Users within one tenant."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scim_bridge.domain import user_json
from scim_bridge.domain.errors import NotFound
from scim_bridge.domain.errors import Uniqueness
from scim_bridge.domain.mapping import MULTI_VALUED
from scim_bridge.domain.mapping import GroupRef
from scim_bridge.domain.mapping import apply_scim_user
from scim_bridge.domain.mapping import to_scim_user
from scim_bridge.domain.mapping import user_values_from_scim
from scim_bridge.domain.orgs import NewUserState
from scim_bridge.domain.orgs import OrgSync
from scim_bridge.domain.passwords import hash_password
from scim_bridge.domain.query import ListQuery
from scim_bridge.domain.query import ListResult
from scim_bridge.domain.query import page_total
from scim_bridge.mappings.model import Profile
from scim_bridge.scim import schema as s
from scim_bridge.scim.errors import ScimError
from scim_bridge.scim.etag import require_match
from scim_bridge.scim.filter.ast import Compare
from scim_bridge.scim.patch import apply_patch
from scim_bridge.scim.patch import parse_patch_request
from scim_bridge.scim.projection import Projection
from scim_bridge.scim.rendered import RenderedObject
from scim_bridge.scim.resource import Options
from scim_bridge.scim.resource import normalize
from scim_bridge.storage import scim_sql
from scim_bridge.storage.base import new_id
from scim_bridge.storage.base import utcnow
from scim_bridge.storage.models import User
from scim_bridge.storage.models import UserValue
from scim_bridge.storage.prepared import PlannedRead
from scim_bridge.storage.repositories.common import dialect_name
from scim_bridge.storage.repositories.common import parse_id
from scim_bridge.storage.repositories.orgs import OrgRepository
from scim_bridge.storage.repositories.users import Holder
from scim_bridge.storage.repositories.users import NewUserRows
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
        self._batch: _CreateBatch | None = None
        self._written: _Written | None = None

    # -- reads ---------------------------------------------------------------------------------

    def get(self, user_id: str, projection: Projection | None = None) -> dict[str, Any] | RenderedObject:
        """Return the user *user_id* as a SCIM resource, or raise 404."""
        return self.render(self.load(user_id), projection)

    def load(self, user_id: str, projection: Projection | None = None) -> UserReadView | user_json.RenderedUser:
        """Return the stored user *user_id* of this tenant with what *projection* needs, or raise 404.

        One statement: the row, and its multi-valued attributes and groups when they are projected.
        """
        projection = projection or Projection(RESOURCE)
        user: UserReadView | user_json.RenderedUser | None = None
        rendered = rendered_user_read(user_id, projection, self._base_url, dialect_name(self._session))
        if rendered is not None:
            # Rendered by the database, as list pages are (render() splices the text).
            rows = rendered.rows(self._session, self._tenant_id)
            user = user_json.RenderedUser(*rows[0]) if rows else None
        elif (parsed := parse_id(user_id)) is not None:
            user = self._users.read(parsed, with_values=_wants_values(projection),
                                    with_groups=projection.wants("groups"))
        if user is None:
            raise NotFound(f"User {user_id} not found")
        return user

    def list(self, query: ListQuery) -> ListResult:
        """Return one page of users matching the query (filtering, sorting and paging in SQL)."""
        projection = query.projection(RESOURCE)
        keyed = _unique_key_of(query)
        if keyed is not None:
            # ``userName eq`` / ``externalId eq`` on the first page, what IdPs send before every
            # create: at most one user matches, through a statement built once per process.
            column, key = keyed
            found: Sequence[UserReadView | user_json.RenderedUser]
            if projection.is_default:
                rendered = _keyed_read(column, key, self._base_url, dialect_name(self._session))
                found = [user_json.RenderedUser(*row) for row in rendered.rows(self._session, self._tenant_id)]
            else:
                found = self._users.read_by_unique(column, key, with_values=_wants_values(projection),
                                                   with_groups=projection.wants("groups"))
            return ListResult(len(found), query.start_index, self.render_many(found, projection))
        where = scim_sql.compile_filter(RESOURCE, query.filter) if query.filter is not None else None
        if query.count == 0:
            return ListResult(self._users.count(where), query.start_index, [])
        order = scim_sql.order_by_clause(RESOURCE, query.sort_by, query.descending)
        offset = query.start_index - 1
        users: Sequence[UserReadView | user_json.RenderedUser]
        if projection.is_default:
            # The database renders each user's JSON (render_many splices it; no dict per user).
            dialect, params = dialect_name(self._session), user_json.base_params(self._base_url)
            if where is None and query.sort_by is None:
                rows = self._users.prepared_rows(user_json.unfiltered_page(dialect),
                                                 {**params, "offset": offset, "limit": query.count})
            else:
                rows = self._users.select_page(user_json.statement(dialect), where, order, offset, query.count,
                                               params)
            users = [user_json.RenderedUser(*row) for row in rows]
        else:
            users = self._users.read_page(where, order, offset, query.count, with_values=_wants_values(projection),
                                          with_groups=projection.wants("groups"))
        resources = self.render_many(users, projection)
        return ListResult(page_total(offset, query.count, len(resources), lambda: self._users.count(where)),
                          query.start_index, resources)

    def render(self, user: User | UserReadView | user_json.RenderedUser,
               projection: Projection | None = None) -> dict[str, Any] | RenderedObject:
        """Render one user, loading only what the projection needs."""
        return self.render_many([user], projection)[0]

    def render_many(self, users: Sequence[User | UserReadView | user_json.RenderedUser],
                    projection: Projection | None = None) -> list[dict[str, Any] | RenderedObject]:
        """Render several users with one query per related table (never one per user).

        Read views (:meth:`load`, :meth:`list`) carry their values and groups already; mapped users
        (just written) get theirs here. Users the database rendered (default projection only) are
        spliced into text with their Infinity extension.
        """
        projection = projection or Projection(RESOURCE)
        wants_values, wants_groups = _wants_values(projection), projection.wants("groups")
        written = [u.id for u in users if isinstance(u, User)]
        values = self._users.values_of(written) if wants_values and written else {}
        groups = self._users.groups_of(written) if wants_groups and written else {}
        # Org, orgs and role of the whole page in one query, only when the extension is projected.
        orgs = (self._orgs.views_of([u.key if isinstance(u, user_json.RenderedUser) else u.id for u in users])
                if _wants_org(projection) else {})
        rendered: list[dict[str, Any] | RenderedObject] = []
        for user in users:
            if isinstance(user, user_json.RenderedUser):
                if not projection.is_default:
                    raise ValueError("a user rendered by the database only has the default projection")
                rendered.append(RenderedObject(user_json.compose(user, orgs.get(user.key) if orgs else None,
                                                                        self._base_url)))
                continue
            if isinstance(user, UserReadView):
                row, own_values, own_groups = user.row, user.values or [], user.groups or []
            else:
                row, own_values, own_groups = user, values.get(user.id, []), groups.get(user.id, [])
            refs = [GroupRef(gid, display) for gid, display in own_groups] if wants_groups else None
            body = to_scim_user(row, self._base_url, refs, own_values, orgs.get(user.id))
            rendered.append(projection.apply(body))
        return rendered

    # -- writes --------------------------------------------------------------------------------

    def prepare_create(self, body: Any) -> PreparedUser:
        """Check a POST body and build its user and its rows, writing nothing (before the write transaction).

        Validation, the manager lookup, password hashing and the binding of the INSERTs happen
        here, so that a request holds the write's locks only to send them; on SQLite the
        uniqueness query too (a conflict found inside the write would have held the database's
        one write lock). On PostgreSQL the unique constraints are the check: the user's INSERT
        goes with the rest of the write in one statement (``storage.prepared.InsertQueue``), which
        a taken userName or externalId fails whole, answered 409 with the check's own detail
        (:func:`_taken`); a query first would cost every create a round trip. A userName or
        externalId taken by a concurrent create after SQLite's check fails the same way.
        """
        user, values, data = self._build_new(body, check_unique=dialect_name(self._session) == "sqlite")
        return PreparedUser(user, values, data, self._users.bind_new(user, values),
                            self._sync.prepare_user(user, data) if self._sync is not None else None)

    def create(self, body: Any) -> User:
        """Create a user from a POST body (RFC 7644 §3.3), or from what :meth:`prepare_create` built."""
        prepared = body if isinstance(body, PreparedUser) else self.prepare_create(body)
        with self._events_together():
            self._stage(prepared)  # the user, its values and its org state, inserted at once
            self._flush()  # anything a hook staged; then its event
        return prepared.user

    def create_together(self, bodies: list[Any]) -> list[User] | int:
        """Create several users as :meth:`create` would one by one, with far fewer statements (Bulk).

        One query finds every holder of the bodies' userNames and externalIds, the users are
        checked against it and against each other, and all their rows (users, values, org states,
        then events) are written by one flush. Return the users, or the position of the first
        body that fails with a SCIM error; then nothing is written, and the caller rolls back
        its savepoint and runs the bodies one by one (for the exact per-operation outcome). A
        uniqueness race lost at the final flush raises :class:`Uniqueness` for the same reason.
        """
        self._batch = batch = _CreateBatch.prefetch(self._users, bodies)
        users: list[User] = []
        try:
            with self._events_together():
                for position, body in enumerate(bodies):
                    try:
                        users.append(self._stage_new(batch, body))
                    except ScimError as error:
                        raise _BatchStopped(position) from error
                self._flush()
                # Their values go in with one executemany (the ORM would insert them one by one
                # on SQLite, to read back each generated id).
                self._users.insert_values(batch.values)
        except _BatchStopped as stopped:
            return stopped.position
        except IntegrityError as exc:
            # An autoflush (a query of a later body: its manager, say) lost the race instead.
            raise Uniqueness("userName or externalId is already in use") from exc
        finally:
            self._batch = None
        return users

    def replace(self, user_id: str, body: Any, if_match: str | None = None) -> User:
        """Replace a user from a PUT body (RFC 7644 §3.5.1); readOnly attributes are kept."""
        user = self._load(user_id, for_update=True)
        require_match(if_match, user.version)
        data = normalize(body, RESOURCE, self._options)
        self._check_unique(data, user)
        # Read before anything changes, so that the read does not autoflush a first UPDATE.
        current = self._users.values_of([user.id]).get(user.id, [])
        apply_scim_user(user, data)
        self._resolve_manager(user)
        self._set_password(user, data)
        values = self._users.replace_values_if_changed(user, current, user_values_from_scim(data, self._tenant_id))
        self.touch(user)
        user_json.store_rendering(user, values)
        self._flush()
        if self._sync is not None:
            self._sync.user_updated(user, data)
            self._flush()
        self._written = _Written(user.id, values, fresh=False)
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
            self._written = _Written(user.id, values, fresh=False)
            return user
        data = normalize(result.resource, RESOURCE, self._options)
        self._check_unique(data, user)
        apply_scim_user(user, data, defaults=False)
        self._resolve_manager(user)
        if result.password:
            user.password_hash = hash_password(result.password)
        if any(name in MULTI_VALUED for name in result.changed_attributes):
            values = user_values_from_scim(data, self._tenant_id)
            self._users.replace_values(user, values)
        self.touch(user)
        user_json.store_rendering(user, values)
        self._flush()
        if self._sync is not None:
            self._sync.user_updated(user, data)
            self._flush()
        self._written = _Written(user.id, values, fresh=False)
        return user

    def render_written(self, user: User | UserReadView | user_json.RenderedUser,
                       projection: Projection | None = None) -> dict[str, Any] | RenderedObject:
        """Render the user this service just created, replaced or patched, without re-reading its values.

        The write holds the user's multi-valued rows (those it stored, or read and kept), and a
        user it created is in no group yet; only what it does not know (groups of an existing
        user, the Infinity extension when projected) is read. Any other user: :meth:`render`.
        """
        written = self._written
        if written is None or written.user_id != user.id:
            return self.render(user, projection)
        projection = projection or Projection(RESOURCE)
        if written.fresh and projection.is_default and isinstance(user, User) and not _wants_org(projection):
            # A new user is in no group and its default rendering was stored with it: splice it.
            composed = user_json.stored_user(user, self._base_url)
            if composed is not None:
                return composed
        refs = None
        if projection.wants("groups"):
            pairs = [] if written.fresh else self._users.groups_of([user.id]).get(user.id, [])
            refs = [GroupRef(gid, display) for gid, display in pairs]
        org = self._orgs.views_of([user.id]).get(user.id) if _wants_org(projection) else None
        return projection.apply(to_scim_user(user, self._base_url, refs, written.values, org))

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

    def _build_new(self, body: Any, *, check_unique: bool = True) -> tuple[User, list[UserValue], dict[str, Any]]:
        """Check a new user's body; return the user, its multi-valued rows and the normalized body.

        *check_unique*: query who holds its userName and externalId (else the INSERT's
        constraints decide).
        """
        data = normalize(body, RESOURCE, self._options)
        if check_unique:
            self._check_unique(data, None)
        now = utcnow()
        user = User(id=new_id(), tenant_id=self._tenant_id, version=1, created=now, last_modified=now)
        apply_scim_user(user, data)
        self._resolve_manager(user)
        self._set_password(user, data)
        values = user_values_from_scim(data, self._tenant_id)
        user_json.store_rendering(user, values)
        return user, values, data

    def _stage_new(self, batch: _CreateBatch, body: Any) -> User:
        """Check a new user of a batch and stage it, its values and its org state for the batch's flush (Bulk).

        Its event is queued.
        """
        user, values, data = self._build_new(body)
        self._users.add(user)
        batch.claim(user, values)
        if self._sync is not None:
            self._sync.user_created(user, data)
        return user

    def _stage(self, prepared: PreparedUser) -> None:
        """Write a prepared user, its values and its org state now, and queue its event (a single create).

        Plain INSERTs of the rows :meth:`prepare_create` bound, not the ORM's unit of work (which
        cost about half of a create's write transaction): nothing reads the new rows back as
        mapped objects in this request, and only sending them is left for the time the write
        holds its locks.
        """
        # Taken userName or externalId: by another user already (PostgreSQL, no check before), or
        # by a concurrent create since the check (SQLite).
        self._users.insert_new(prepared.rows, conflict=lambda error: _taken(prepared.data, error))
        self._users.insert_new_values(prepared.rows)
        self._written = _Written(prepared.user.id, prepared.values, fresh=True)
        if self._sync is not None:
            self._sync.user_created(prepared.user, prepared.data, prepared=prepared.state)

    def _events_together(self) -> AbstractContextManager[None]:
        """Write the org-sync events queued inside the block when it ends (after the rows they describe)."""
        return self._sync.events_together() if self._sync is not None else nullcontext()

    def _check_unique(self, data: dict[str, Any], own: User | None) -> None:
        """Refuse a userName (case-insensitive) or externalId held by another user: one query for both.

        A user keeping its own userName (up to case) and externalId needs no query: the unique
        constraints guarantee that nobody else holds them.
        """
        external_id = data.get("externalId")
        user_name_key = data["userName"].lower()
        if own is not None and own.user_name_key == user_name_key and external_id in (None, own.external_id):
            return
        own_id = own.id if own is not None else None
        if self._batch is not None and self._batch.covers(user_name_key, external_id):
            holders = self._batch.holders(user_name_key, external_id)
        else:
            holders = self._users.holders_of(data["userName"], external_id)
        for other_id, other_name_key, other_external_id in holders:
            if other_id == own_id:
                continue
            if other_name_key == user_name_key:
                raise _user_name_taken(data)
            if external_id is not None and other_external_id == external_id:
                raise _external_id_taken(data)

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


def _taken(data: dict[str, Any], error: IntegrityError) -> Uniqueness:
    """The answer to a new user's INSERT that a constraint refused: what :meth:`UserService._check_unique` says.

    The constraint is named by PostgreSQL (``uq_users_tenant_id_external_id``) and in SQLite's
    message (``UNIQUE constraint failed: users.tenant_id, users.external_id``).
    """
    diagnostics = getattr(error.orig, "diag", None)
    named = getattr(diagnostics, "constraint_name", None) or str(error.orig)
    if "external_id" in named and data.get("externalId") is not None:
        return _external_id_taken(data)
    if "user_name_key" in named:
        return _user_name_taken(data)
    return Uniqueness("userName or externalId is already in use")


def _user_name_taken(data: dict[str, Any]) -> Uniqueness:
    return Uniqueness(f"userName '{data['userName']}' is already in use")


def _external_id_taken(data: dict[str, Any]) -> Uniqueness:
    return Uniqueness(f"externalId '{data['externalId']}' is already in use by another User")


@dataclass(frozen=True, slots=True)
class PreparedUser:
    """A checked new user, built but not yet added to the session (see ``UserService.prepare_create``)."""

    user: User
    values: list[UserValue]
    data: dict[str, Any]
    """The normalized body (the org sync reads it)."""
    rows: NewUserRows
    """The INSERTs of the user and its values, bound (a single create sends them)."""
    state: NewUserState | None
    """Its org state row and event content (a single create inserts it; ``None`` without org sync)."""

    @property
    def resource_id(self) -> str:
        """The new user's id (what the write's audit record names)."""
        return str(self.user.id)


@dataclass(frozen=True, slots=True)
class _Written:
    """The user a write just stored, with its multi-valued rows (``fresh``: created, so in no group)."""

    user_id: uuid.UUID
    values: list[UserValue]
    fresh: bool


class _BatchStopped(Exception):
    """A body of :meth:`UserService.create_together` failed; the batch stops there."""

    def __init__(self, position: int) -> None:
        super().__init__(position)
        self.position = position


class _CreateBatch:
    """The userName keys and externalIds that a batch of creates may take, known up front.

    :meth:`prefetch` reads every holder of the bodies' userNames and externalIds in one query;
    each staged user then claims its own, so a later body of the batch sees it as a holder.
    """

    def __init__(self, names: dict[str, list[Holder]], external_ids: dict[str, list[Holder]]) -> None:
        self._names = names
        self._external_ids = external_ids
        self.values: list[UserValue] = []

    @classmethod
    def prefetch(cls, users: UserRepository, bodies: list[Any]) -> _CreateBatch:
        """Read the holders of every userName and externalId that *bodies* carry."""
        names = {body["userName"].lower(): [] for body in bodies
                 if isinstance(body, dict) and isinstance(body.get("userName"), str)}
        external_ids = {body["externalId"]: [] for body in bodies
                        if isinstance(body, dict) and isinstance(body.get("externalId"), str)}
        batch = cls(names, external_ids)
        for holder in users.holders_of_many(list(names), list(external_ids)):
            batch._add(holder)
        return batch

    def covers(self, user_name_key: str, external_id: str | None) -> bool:
        """Tell whether the holders of this userName key and externalId are known."""
        return user_name_key in self._names and (external_id is None or external_id in self._external_ids)

    def holders(self, user_name_key: str, external_id: str | None) -> list[Holder]:
        """Return the known holders of this userName key or externalId."""
        found = list(self._names[user_name_key])
        if external_id is not None:
            found += [h for h in self._external_ids[external_id] if h not in found]
        return found

    def claim(self, user: User, values: list[UserValue]) -> None:
        """Record a staged user as the holder of its userName key and externalId; keep its values."""
        self._add((user.id, user.user_name_key, user.external_id))
        for row in values:
            row.user_id = user.id
        self.values.extend(values)

    def _add(self, holder: Holder) -> None:
        if holder[1] in self._names:
            self._names[holder[1]].append(holder)
        if holder[2] is not None and holder[2] in self._external_ids:
            self._external_ids[holder[2]].append(holder)


def _wants_org(projection: Projection) -> bool:
    return any(projection.wants(name, s.INFINITY_USER_SCHEMA)
               for name in ("orgId", "orgIds", "role", "primaryOrgConflict"))


def _wants_values(projection: Projection) -> bool:
    return any(projection.wants(attr) for attr in MULTI_VALUED)


_UNIQUE_KEYS = {"username": "user_name_key", "externalid": "external_id"}


def rendered_user_read(user_id: str, projection: Projection, base_url: str, dialect: str) -> PlannedRead | None:
    """How :meth:`UserService.load` reads *user_id* when the database renders it (the default projection).

    ``None`` for any other projection or an id that cannot exist. Known before the tenant is, so
    that the token's statement can read it along (``require_oauth(..., along=...)``).
    """
    if not projection.is_default or (parsed := parse_id(user_id)) is None:
        return None
    return PlannedRead(user_json.one_user(dialect), {"id": parsed, **user_json.base_params(base_url)})


def keyed_user_read(query: ListQuery, base_url: str, dialect: str) -> PlannedRead | None:
    """How :meth:`UserService.list` reads a ``userName eq`` / ``externalId eq`` page in the default projection.

    ``None`` for any other query (see :func:`rendered_user_read`).
    """
    keyed = _unique_key_of(query)
    if keyed is None or not query.projection(RESOURCE).is_default:
        return None
    return _keyed_read(*keyed, base_url, dialect)


def _keyed_read(column: str, key: str, base_url: str, dialect: str) -> PlannedRead:
    """The database-rendered user whose unique *column* is *key*."""
    return PlannedRead(user_json.by_unique(dialect, column), {"key": key, **user_json.base_params(base_url)})


def _unique_key_of(query: ListQuery) -> tuple[str, str] | None:
    """Return (column, value) when *query* is ``userName eq "…"`` or ``externalId eq "…"`` on page one.

    Both are unique per tenant, so the page holds the whole result. userName is caseExact=false
    (matched through its lowered key, as the general filter does); externalId is caseExact=true.
    """
    found = query.filter
    if (not isinstance(found, Compare) or found.op != "eq" or not isinstance(found.value, str)
            or found.path.sub is not None or query.start_index != 1 or query.count < 1):
        return None
    if found.path.schema is not None and found.path.schema.lower() != s.USER_SCHEMA.lower():
        return None
    column = _UNIQUE_KEYS.get(found.path.attr.lower())
    if column is None:
        return None
    return column, found.value.lower() if column == "user_name_key" else found.value
