"""Filters and sortBy compiled to SQL, run on every backend (RFC 7644 §3.4.2.2, §3.4.2.3).

Each test builds its own tenant with the same small population, then compares the set (or, for
sorting, the order) of matching names with the expectation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from scim_bridge.scim.errors import InvalidFilter
from scim_bridge.scim.errors import InvalidValue
from scim_bridge.scim.filter.ast import AttrPath
from scim_bridge.scim.filter.ast import Compare
from scim_bridge.scim.filter.ast import Present
from scim_bridge.scim.filter.ast import ValuePath
from scim_bridge.scim.filter.parser import parse_attribute_list
from scim_bridge.scim.filter.parser import parse_filter
from scim_bridge.scim.schema import GROUP_RESOURCE
from scim_bridge.scim.schema import USER_RESOURCE
from scim_bridge.storage.models import Group
from scim_bridge.storage.models import GroupMember
from scim_bridge.storage.models import Tenant
from scim_bridge.storage.models import User
from scim_bridge.storage.models import UserValue
from scim_bridge.storage.scim_sql import MEMBER_GROUP
from scim_bridge.storage.scim_sql import compile_filter
from scim_bridge.storage.scim_sql import compile_member_filter
from scim_bridge.storage.scim_sql import order_by_clause

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MANAGER_ID = "26118915-6090-4610-87e4-49d8ca9f808d"
EVERYONE = {"bjensen", "jsmith", "arger", "percent", "plain", "nobody"}


def at(text: str) -> datetime:
    """Parse an RFC 3339 timestamp."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# The population: short name -> (columns, multi-valued rows). userName keys are lowered as the
# domain layer does (str.lower); value_key likewise.
USERS: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {
    "bjensen": (
        dict(user_name="BJensen@Example.com", external_id="ext-1", display_name="Babs Jensen", nick_name="Babs",
             title="Tour Guide", user_type="Employee", active=True, locale="en-US",
             profile_url="https://login.example.com/bjensen", name_formatted="Ms. Barbara J Jensen III",
             name_given_name="Barbara", name_family_name="Jensen", employee_number="701984", cost_center="4130",
             organization="Universal Studios", division="Theme Park", department="Tour Operations",
             manager_value=MANAGER_ID, manager_display_name="John Smith", version=3,
             created=at("2020-01-01T00:00:00Z")),
        [
            dict(attribute="emails", value="bjensen@example.com", type="work", primary=True),
            dict(attribute="emails", value="babs@jensen.org", type="home"),
            dict(attribute="phoneNumbers", value="555-555-5555", type="work"),
            dict(attribute="addresses", type="work", street_address="100 Universal City Plaza",
                 locality="Hollywood", region="CA", postal_code="91608", country="US", primary=True),
        ],
    ),
    "jsmith": (
        dict(user_name="jsmith", external_id="EXT-2", display_name="John Smith", active=False,
             name_given_name="John", name_family_name="Smith", department="Engineering", employee_number="100",
             created=at("2021-06-15T12:00:00Z")),
        [
            dict(attribute="emails", value="john.smith@example.org", type="work"),
            dict(attribute="emails", value="JS@Example.COM", type="other", primary=True),
        ],
    ),
    "arger": (
        dict(user_name="ÄRGER", display_name="Ärger Ölmann", title="Ärgerlich", name_family_name="Ölmann",
             created=at("2022-03-01T08:30:00Z")),
        [dict(attribute="emails", value="ärger@beispiel.de", type="home")],
    ),
    "percent": (
        dict(user_name="50%_off", display_name="Percent Person", title="50% off_sale",
             created=at("2022-12-31T23:59:59Z")),
        [dict(attribute="emails", value="under_score@example.com", type="work")],
    ),
    # Would match "50% off_sale" if % and _ were not escaped in LIKE patterns.
    "plain": (
        dict(user_name="p.like", display_name="", title="50X offYsale", created=at("2023-01-01T00:00:00Z")),
        [],
    ),
    "nobody": (dict(user_name="nobody", created=at("2023-06-01T00:00:00Z")), []),
}


@dataclass
class World:
    """One tenant's population and the ids the filters refer to."""

    tenant: Tenant
    ids: dict[str, uuid.UUID]
    names: dict[str, str]          # userName / displayName -> short name

    def format(self, text: str) -> str:
        """Substitute ``{short}`` (id) and ``{short_upper}`` (upper-case id) placeholders."""
        values = {name: str(i) for name, i in self.ids.items()}
        values.update({f"{name}_upper": str(i).upper() for name, i in self.ids.items()})
        values.update({f"{name}_prefix": str(i)[:9] for name, i in self.ids.items()})
        return text.format(**values)


@pytest.fixture
def world(db_session: Session, tenant: Tenant) -> World:
    """Create the population in a fresh tenant (the tenant scopes every query)."""
    ids: dict[str, uuid.UUID] = {}
    names: dict[str, str] = {}
    for short, (columns, values) in USERS.items():
        user = User(tenant_id=tenant.id, user_name_key=columns["user_name"].lower(), **columns)
        db_session.add(user)
        db_session.flush()
        for position, row in enumerate(values):
            row = {"primary": False, **row}
            value_key = row["value"].lower() if row.get("value") is not None else None
            db_session.add(UserValue(tenant_id=tenant.id, user_id=user.id, position=position, value_key=value_key,
                                     **row))
        ids[short] = user.id
        names[user.user_name] = short
    groups = {
        "eng": Group(tenant_id=tenant.id, display_name="Engineering", display_name_key="engineering",
                     external_id="g-ext-1", created=at("2020-02-01T00:00:00Z")),
        "tour": Group(tenant_id=tenant.id, display_name="Tour Guides", display_name_key="tour guides",
                      created=at("2020-03-01T00:00:00Z")),
        "empty": Group(tenant_id=tenant.id, display_name="Empty", display_name_key="empty",
                       created=at("2020-04-01T00:00:00Z")),
    }
    db_session.add_all(groups.values())
    db_session.flush()
    for short, group in groups.items():
        ids[short] = group.id
        names[group.display_name] = short
    db_session.add_all([
        GroupMember(tenant_id=tenant.id, group_id=ids["eng"], user_id=ids["jsmith"], display="John Smith"),
        GroupMember(tenant_id=tenant.id, group_id=ids["eng"], user_id=ids["bjensen"], display="Babs Jensen"),
        GroupMember(tenant_id=tenant.id, group_id=ids["tour"], user_id=ids["bjensen"], display="Babs Jensen"),
        GroupMember(tenant_id=tenant.id, group_id=ids["tour"], member_group_id=ids["eng"], display="Engineering"),
    ])
    db_session.commit()
    return World(tenant, ids, names)


def users_matching(session: Session, world: World, text: str) -> set[str]:
    """Return the short names of the tenant's users matching the filter *text*."""
    where = compile_filter(USER_RESOURCE, parse_filter(world.format(text)))
    stmt = select(User.user_name).where(User.tenant_id == world.tenant.id, where)
    return {world.names[name] for name in session.scalars(stmt)}


def groups_matching(session: Session, world: World, text: str) -> set[str]:
    """Return the short names of the tenant's groups matching the filter *text*."""
    where = compile_filter(GROUP_RESOURCE, parse_filter(world.format(text)))
    stmt = select(Group.display_name).where(Group.tenant_id == world.tenant.id, where)
    return {world.names[name] for name in session.scalars(stmt)}


USER_CASES: list[tuple[str, set[str]]] = [
    # userName: caseExact=false, compared through the lowered, indexed user_name_key
    ('userName eq "bjensen@example.com"', {"bjensen"}),
    ('userName eq "BJENSEN@EXAMPLE.COM"', {"bjensen"}),
    ('USERNAME EQ "JSmith"', {"jsmith"}),
    ('userName ne "jsmith"', EVERYONE - {"jsmith"}),
    ('userName co "EXAMPLE"', {"bjensen"}),
    ('userName sw "J"', {"jsmith"}),
    ('userName ew ".COM"', {"bjensen"}),
    ('userName lt "c"', {"bjensen", "percent"}),
    ('userName gt "n"', {"nobody", "plain", "arger"}),
    ('userName ge "p.like"', {"plain", "arger"}),
    ('userName le "jsmith"', {"bjensen", "percent", "jsmith"}),
    # title: caseExact=false, lower() on both sides
    ('title eq "tour guide"', {"bjensen"}),
    ('title co "GUIDE"', {"bjensen"}),
    ('title sw "tour"', {"bjensen"}),
    ('title ew "Guide"', {"bjensen"}),
    ('title ne "Tour Guide"', EVERYONE - {"bjensen"}),
    ('not (title eq "tour guide")', EVERYONE - {"bjensen"}),
    ('title gt "Tour"', {"bjensen", "arger"}),
    ('title ge "tour guide"', {"bjensen", "arger"}),
    ('title lt "a"', {"percent", "plain"}),
    ('title le "50% off_sale"', {"percent"}),
    ("title eq null", {"jsmith", "nobody"}),
    ("title ne null", {"bjensen", "arger", "percent", "plain"}),
    ("title pr", {"bjensen", "arger", "percent", "plain"}),
    ("not (title pr)", {"jsmith", "nobody"}),
    ("displayName pr", {"bjensen", "jsmith", "arger", "percent"}),  # "" is not present
    ('displayName eq "john smith"', {"jsmith"}),
    ('nickName eq "BABS"', {"bjensen"}),
    ('locale sw "en"', {"bjensen"}),
    # LIKE metacharacters in the literal are literal
    ('title co "50% off_"', {"percent"}),
    ('title sw "50%"', {"percent"}),
    ('title ew "_sale"', {"percent"}),
    ('userName co "%_"', {"percent"}),
    ('userName co "_"', {"percent"}),
    ('title co "%"', {"percent"}),
    ('profileUrl co "//login"', {"bjensen"}),
    ('profileUrl co "/bjensen"', {"bjensen"}),
    # non-ASCII case folding
    ('userName eq "ärger"', {"arger"}),
    ('userName sw "Ä"', {"arger"}),
    ('title sw "ÄRGER"', {"arger"}),
    ('displayName co "ÖLMANN"', {"arger"}),
    ('name.familyName eq "ölmann"', {"arger"}),
    ('emails.value eq "ÄRGER@BEISPIEL.DE"', {"arger"}),
    # externalId: caseExact=true
    ('externalId eq "ext-1"', {"bjensen"}),
    ('externalId eq "EXT-1"', set()),
    ('externalId sw "EXT"', {"jsmith"}),
    ('externalId co "xt"', {"bjensen"}),
    ('externalId ne "ext-1"', EVERYONE - {"bjensen"}),
    ("externalId eq jyoung", set()),  # unquoted value (lenient)
    # booleans
    ("active eq true", EVERYONE - {"jsmith"}),
    ("active eq false", {"jsmith"}),
    ("active ne true", {"jsmith"}),
    ('active eq "False"', {"jsmith"}),
    ("not (active eq true)", {"jsmith"}),
    ("active pr", EVERYONE),
    # dateTime
    ('meta.created gt "2021-01-01T00:00:00Z"', EVERYONE - {"bjensen"}),
    ('meta.created lt "2021-06-15T12:00:00Z"', {"bjensen"}),
    ('meta.created le "2021-06-15T12:00:00Z"', {"bjensen", "jsmith"}),
    ('meta.created eq "2021-06-15T12:00:00Z"', {"jsmith"}),
    ('meta.created eq "2021-06-15T14:00:00+02:00"', {"jsmith"}),
    ('meta.created eq "2021-06-15T12:00:00"', {"jsmith"}),
    ('meta.created ge "2022-12-31T23:59:59Z"', {"percent", "plain", "nobody"}),
    ('meta.created ne "2020-01-01T00:00:00Z"', EVERYONE - {"bjensen"}),
    ('meta.lastModified gt "2100-01-01T00:00:00Z"', set()),
    ('meta.created gt "2021-01-01T00:00:00Z" and meta.created lt "2022-12-31T00:00:00Z"', {"jsmith", "arger"}),
    # id (a Uuid column)
    ('id eq "{bjensen}"', {"bjensen"}),
    ('id eq "{bjensen_upper}"', {"bjensen"}),
    ("id eq {jsmith}", {"jsmith"}),
    ('id eq "not-a-uuid"', set()),
    ('id ne "not-a-uuid"', EVERYONE),
    ('id ne "{bjensen}"', EVERYONE - {"bjensen"}),
    ('id sw "{bjensen_prefix}"', {"bjensen"}),
    ('id co "{jsmith}"', {"jsmith"}),
    ("id pr", EVERYONE),
    # meta.version and meta.resourceType
    ('meta.version eq "W/\\"3\\""', {"bjensen"}),
    ('meta.version ne "W/\\"3\\""', EVERYONE - {"bjensen"}),
    ('meta.version eq "3"', set()),
    ('meta.resourceType eq "User"', EVERYONE),
    ('meta.resourceType eq "Group"', set()),
    ("meta pr", EVERYONE),
    # multi-valued attributes: any element matches; "value" stands for the attribute
    ('emails co "example.com"', {"bjensen", "jsmith", "percent"}),
    ('emails.value sw "JOHN"', {"jsmith"}),
    ('emails.type eq "home"', {"bjensen", "arger"}),
    ('emails[type eq "work" and value co "example.com"]', {"bjensen", "percent"}),
    ('emails.type eq "work" and emails.value co "example.com"', {"bjensen", "jsmith", "percent"}),
    ('emails[type eq "work" or primary eq true]', {"bjensen", "jsmith", "percent"}),
    ('emails[not (type eq "work")]', {"bjensen", "jsmith", "arger"}),
    ("emails[primary eq true]", {"bjensen", "jsmith"}),
    ('emails[value ew "@EXAMPLE.COM" and primary eq false]', {"percent"}),
    ("emails pr", {"bjensen", "jsmith", "arger", "percent"}),
    ("not (emails pr)", {"plain", "nobody"}),
    ("emails.value eq null", {"plain", "nobody"}),
    ('emails ne "bjensen@example.com"', EVERYONE - {"bjensen"}),
    ('emails.type ne "work"', {"arger", "plain", "nobody"}),
    ('phoneNumbers.value eq "555-555-5555"', {"bjensen"}),
    ("phoneNumbers pr", {"bjensen"}),
    ('addresses[type eq "work" and locality eq "hollywood"]', {"bjensen"}),
    ('addresses.postalCode sw "916"', {"bjensen"}),
    ('addresses.country eq "us"', {"bjensen"}),
    ("addresses.streetAddress pr", {"bjensen"}),
    # complex single-valued attributes
    ('name.givenName eq "barbara"', {"bjensen"}),
    ("name pr", {"bjensen", "jsmith", "arger"}),
    ('name[givenName sw "J" and familyName eq "smith"]', {"jsmith"}),
    ('name.formatted co "III"', {"bjensen"}),
    ("name.givenName pr and not (name.formatted pr)", {"jsmith"}),
    # enterprise extension, URN-qualified (URNs are case-insensitive)
    (f'{ENT}:employeeNumber eq "701984"', {"bjensen"}),
    (f'{ENT.upper()}:Department eq "engineering"', {"jsmith"}),
    (f'{ENT}:manager.value eq "{MANAGER_ID}"', {"bjensen"}),
    (f'{ENT}:manager eq "{MANAGER_ID}"', {"bjensen"}),
    (f'{ENT}:manager.displayName co "smith"', {"bjensen"}),
    (f"{ENT}:manager pr", {"bjensen"}),
    (f'{ENT}:costCenter pr or {ENT}:department sw "Eng"', {"bjensen", "jsmith"}),
    (f'{ENT}:organization eq "universal studios" and {ENT}:division ew "park"', {"bjensen"}),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "jsmith"', {"jsmith"}),
    ('urn:ietf:params:scim:schemas:core:2.0:User:name.familyName eq "jensen"', {"bjensen"}),
    # groups of a user (direct memberships)
    ('groups.display eq "engineering"', {"bjensen", "jsmith"}),
    ('groups eq "{tour}"', {"bjensen"}),
    ('groups.value eq "{eng}"', {"bjensen", "jsmith"}),
    ("groups pr", {"bjensen", "jsmith"}),
    ("not (groups pr)", EVERYONE - {"bjensen", "jsmith"}),
    ('groups[display sw "Tour"]', {"bjensen"}),
    ('groups.type eq "direct"', {"bjensen", "jsmith"}),
    ('groups ne "{tour}"', EVERYONE - {"bjensen"}),
    # and / or / not, precedence and grouping
    ('userName eq "jsmith" or userName eq "ärger"', {"jsmith", "arger"}),
    ("title pr and active eq true", {"bjensen", "arger", "percent", "plain"}),
    ("title pr or active eq false and name pr", {"bjensen", "arger", "percent", "plain", "jsmith"}),
    ("(title pr or active eq false) and name pr", {"bjensen", "jsmith", "arger"}),
    ('not (not (userName eq "jsmith"))', {"jsmith"}),
    ('not (title eq "tour guide" or title eq null)', {"arger", "percent", "plain"}),
    ('not (title co "o") and not (emails pr)', {"nobody"}),
    ('userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")', {"bjensen"}),
    (" or ".join(f"userName eq {n}" for n in ["jsmith", "nobody", "p.like"] * 50), {"jsmith", "nobody", "plain"}),
]


@pytest.mark.parametrize(("text", "expected"), USER_CASES, ids=[text[:80] for text, _ in USER_CASES])
def test_user_filter(db_session: Session, world: World, text: str, expected: set[str]) -> None:
    """The filter selects exactly the expected users."""
    assert users_matching(db_session, world, text) == expected


GROUP_CASES: list[tuple[str, set[str]]] = [
    ('displayName eq "ENGINEERING"', {"eng"}),
    ('displayName co "guide"', {"tour"}),
    ('displayName sw "e"', {"eng", "empty"}),
    ('displayName ne "Empty"', {"eng", "tour"}),
    ('externalId eq "g-ext-1"', {"eng"}),
    ("externalId pr", {"eng"}),
    ('members.value eq "{bjensen}"', {"eng", "tour"}),
    ('members eq "{eng}"', {"tour"}),
    ('members.value eq "{bjensen_upper}"', {"eng", "tour"}),
    ('members.value sw "{jsmith_prefix}"', {"eng"}),
    ('members.type eq "group"', {"tour"}),
    ('members.display co "smith"', {"eng"}),
    ('members.display eq "engineering"', {"tour"}),
    ("members pr", {"eng", "tour"}),
    ("not (members pr)", {"empty"}),
    ('members[type eq "User" and display sw "babs"]', {"eng", "tour"}),
    ('members[type eq "Group" and value eq "{eng}"]', {"tour"}),
    ('members.value ne "{jsmith}"', {"tour", "empty"}),
    ('meta.resourceType eq "Group"', {"eng", "tour", "empty"}),
    ('meta.created lt "2020-03-15T00:00:00Z"', {"eng", "tour"}),
    ('id eq "{tour}" or id eq "{empty}"', {"tour", "empty"}),
]


@pytest.mark.parametrize(("text", "expected"), GROUP_CASES, ids=[text for text, _ in GROUP_CASES])
def test_group_filter(db_session: Session, world: World, text: str, expected: set[str]) -> None:
    """The filter selects exactly the expected groups."""
    assert groups_matching(db_session, world, text) == expected


MEMBER_CASES: list[tuple[str, set[str]]] = [
    ('value eq "{bjensen}"', {"bjensen"}),
    ('value eq "{jsmith}"', set()),
    ('type eq "group"', {"eng"}),
    ('value eq "{jsmith}" or value eq "{eng}"', {"eng"}),
    ('not (type eq "User")', {"eng"}),
    ('display sw "BABS"', {"bjensen"}),
    ("display pr", {"bjensen", "eng"}),
    ("value eq not-a-uuid", set()),
    ('value ne "{bjensen}"', {"eng"}),
]


@pytest.mark.parametrize(("text", "expected"), MEMBER_CASES, ids=[text for text, _ in MEMBER_CASES])
def test_member_filter(db_session: Session, world: World, text: str, expected: set[str]) -> None:
    """``members[...]`` of a PATCH path selects member rows of Tour Guides (bjensen and Engineering)."""
    ast = parse_filter(world.format(text))
    stmt = (
        select(User.user_name, MEMBER_GROUP.display_name)
        .select_from(GroupMember)
        .outerjoin(User, User.id == GroupMember.user_id)
        .outerjoin(MEMBER_GROUP, MEMBER_GROUP.id == GroupMember.member_group_id)
        .where(GroupMember.group_id == world.ids["tour"], compile_member_filter(ast))
    )
    found = {world.names[user or group] for user, group in db_session.execute(stmt)}
    assert found == expected


SORT_CASES: list[tuple[str | None, bool, list[str]]] = [
    (None, False, ["bjensen", "jsmith", "arger", "percent", "plain", "nobody"]),
    ("userName", False, ["percent", "bjensen", "jsmith", "nobody", "plain", "arger"]),
    ("USERNAME", True, ["arger", "plain", "nobody", "jsmith", "bjensen", "percent"]),
    ("title", False, ["percent", "plain", "bjensen", "arger", "jsmith", "nobody"]),
    ("title", True, ["jsmith", "nobody", "arger", "bjensen", "plain", "percent"]),
    ("emails", False, ["bjensen", "jsmith", "percent", "arger", "plain", "nobody"]),
    ("emails.value", True, ["plain", "nobody", "arger", "percent", "jsmith", "bjensen"]),
    ("emails.type", False, ["arger", "jsmith", "bjensen", "percent", "plain", "nobody"]),
    ("meta.created", True, ["nobody", "plain", "percent", "arger", "jsmith", "bjensen"]),
    ("meta.lastModified", False, ["bjensen", "jsmith", "arger", "percent", "plain", "nobody"]),
    ("externalId", False, ["jsmith", "bjensen", "arger", "percent", "plain", "nobody"]),
    ("name.familyName", False, ["bjensen", "jsmith", "arger", "percent", "plain", "nobody"]),
    ("active", False, ["jsmith", "bjensen", "arger", "percent", "plain", "nobody"]),
    ("meta.resourceType", True, ["bjensen", "jsmith", "arger", "percent", "plain", "nobody"]),
    (f"{ENT}:employeeNumber", False, ["jsmith", "bjensen", "arger", "percent", "plain", "nobody"]),
    ("groups.display", False, ["bjensen", "jsmith", "arger", "percent", "plain", "nobody"]),
    ("groups.display", True, ["arger", "percent", "plain", "nobody", "bjensen", "jsmith"]),
]


@pytest.mark.parametrize(("sort_by", "descending", "expected"), SORT_CASES,
                         ids=[f"{s}-{'desc' if d else 'asc'}" for s, d, _ in SORT_CASES])
def test_user_sort(db_session: Session, world: World, sort_by: str | None, descending: bool,
                   expected: list[str]) -> None:
    """sortBy orders users; missing values last ascending, first descending; created, id break ties."""
    path = parse_attribute_list(sort_by)[0] if sort_by else None
    stmt = (select(User.user_name).where(User.tenant_id == world.tenant.id)
            .order_by(*order_by_clause(USER_RESOURCE, path, descending)))
    assert [world.names[name] for name in db_session.scalars(stmt)] == expected


@pytest.mark.parametrize(
    ("sort_by", "descending", "expected"),
    [
        ("displayName", False, ["empty", "eng", "tour"]),
        ("displayName", True, ["tour", "eng", "empty"]),
        ("externalId", False, ["eng", "tour", "empty"]),
        ("members.display", False, ["tour", "eng", "empty"]),
    ],
)
def test_group_sort(db_session: Session, world: World, sort_by: str, descending: bool, expected: list[str]) -> None:
    """sortBy on groups (members: the first member)."""
    path = parse_attribute_list(sort_by)[0]
    stmt = (select(Group.display_name).where(Group.tenant_id == world.tenant.id)
            .order_by(*order_by_clause(GROUP_RESOURCE, path, descending)))
    assert [world.names[name] for name in db_session.scalars(stmt)] == expected


INVALID_USER_FILTERS: list[tuple[str, str]] = [
    ('foo eq "x"', "unknown attribute 'foo'"),
    ('name.nickname eq "x"', "unknown attribute 'name.nickname'"),
    ('employeeNumber eq "1"', "unknown attribute 'employeeNumber'"),  # extension attrs need the URN
    (f"{ENT}:foo pr", "unknown attribute"),
    ('urn:example:unknown:1.0:User:title pr', "unknown attribute"),
    ('name eq "x"', "'name' is a complex attribute"),
    ('addresses eq "x"', "has no 'value' sub-attribute"),
    ("title gt 5", "compare it with a string, not 5"),
    ('title eq true', "compare it with a string, not true"),
    ("active gt true", "only eq, ne and pr apply"),
    ('active co "t"', "only eq, ne and pr apply"),
    ('active eq "yes"', 'compare it with true or false, not "yes"'),
    ('meta.created co "2020"', "applies only to strings"),
    ('meta.created gt "yesterday"', "not an RFC 3339 date-time"),
    ("meta.created eq 5", "not an RFC 3339 date-time"),
    ('meta.version gt "W/\\"1\\""', "supports only eq, ne and pr"),
    ('meta.location eq "https://x/Users/1"', "cannot be used in a filter"),
    ('password eq "secret"', "cannot be used in a filter"),
    ("password pr", "cannot be used in a filter"),
    ('groups.$ref eq "x"', "cannot be used in a filter"),
    ("title co null", "only eq and ne compare with null"),
    ("emails gt null", "only eq and ne compare with null"),
    ('title[value eq "x"]', "is not a complex attribute"),
    ('emails[foo eq "x"]', "unknown attribute 'emails.foo'"),
    ('emails[emails.type eq "x"]', "name a sub-attribute of 'emails'"),
    ("id eq 5", "compare it with a string, not 5"),
]


@pytest.mark.parametrize(("text", "message"), INVALID_USER_FILTERS, ids=[t for t, _ in INVALID_USER_FILTERS])
def test_invalid_user_filter(text: str, message: str) -> None:
    """Semantic errors raise InvalidFilter naming the attribute (no database needed)."""
    with pytest.raises(InvalidFilter) as caught:
        compile_filter(USER_RESOURCE, parse_filter(text))
    assert message in caught.value.detail


def test_nested_value_path_in_ast_is_rejected() -> None:
    """A ValuePath inside a ValuePath (built directly; the parser rejects it earlier)."""
    inner = ValuePath(AttrPath(None, "emails"), Present(AttrPath(None, "type")))
    with pytest.raises(InvalidFilter, match="cannot be nested"):
        compile_filter(USER_RESOURCE, ValuePath(AttrPath(None, "emails"), inner))


def test_unknown_operator_in_ast_is_rejected() -> None:
    """An operator outside RFC 7644 Table 3 (built directly) is InvalidFilter."""
    with pytest.raises(InvalidFilter, match="unknown operator"):
        compile_filter(USER_RESOURCE, Compare(AttrPath(None, "title"), "like", "x"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('members.$ref eq "x"', "cannot be used in a filter"),
        ('userName eq "x"', "unknown attribute 'userName'"),
        ('displayName gt 1', "compare it with a string"),
    ],
)
def test_invalid_group_filter(text: str, message: str) -> None:
    """Group filters are resolved against the Group schema."""
    with pytest.raises(InvalidFilter) as caught:
        compile_filter(GROUP_RESOURCE, parse_filter(text))
    assert message in caught.value.detail


@pytest.mark.parametrize(
    ("sort_by", "message"),
    [
        ("foo", "unknown attribute 'foo'"),
        ("name", "sort by one of its sub-attributes"),
        ("addresses", "has no 'value' sub-attribute"),
        ("meta.location", "cannot be sorted on"),
        ("password", "cannot be sorted on"),
    ],
)
def test_invalid_sort(sort_by: str, message: str) -> None:
    """sortBy errors raise InvalidValue."""
    with pytest.raises(InvalidValue) as caught:
        order_by_clause(USER_RESOURCE, parse_attribute_list(sort_by)[0], False)
    assert message in caught.value.detail


@pytest.mark.parametrize(
    "text",
    [
        " or ".join(["title pr"] * 340),  # close to the 4096-character limit
        "not (" * 50 + "title pr" + ")" * 50,
        "(" * 25 + " and ".join(['not (emails[type eq "work" or value co "x"])'] * 3) + ")" * 25,
        "not (" * 24 + 'title pr and not (emails[not (type eq "w" or not (value pr))])' + ")" * 24,
    ],
    ids=["wide-or", "deep-not", "deep-parentheses", "deep-not-value-path"],
)
def test_filters_at_the_size_limits_run(db_session: Session, world: World, text: str) -> None:
    """The largest filters the parser accepts compile and run on the database (no depth errors)."""
    assert len(text) <= 4096
    users_matching(db_session, world, text)


ALTERNATING_LEAVES = [
    "title pr",
    'emails[(type eq "work" or (value co "x" and (primary eq true or (display pr and (value sw "a" '
    'or type pr)))))]',
    'id sw "abc" or groups[display co "x" and value ew "1"]',
]


@pytest.mark.parametrize("leaf", ALTERNATING_LEAVES, ids=["simple", "value-path", "uuid-text"])
def test_deepest_accepted_alternation_runs(db_session: Session, world: World, leaf: str) -> None:
    """and/or alternating as deeply as compile_filter allows still runs (SQLite's parser stack)."""
    deepest = None
    for depth in range(1, 60):
        text = leaf
        for level in range(depth):
            text = f'title eq "a" {"and" if level % 2 else "or"} ({text})'
        try:
            compile_filter(USER_RESOURCE, parse_filter(text))
        except InvalidFilter as error:
            assert "alternate more than" in error.detail
            break
        deepest = text
    assert deepest is not None and depth > 1
    users_matching(db_session, world, deepest)
