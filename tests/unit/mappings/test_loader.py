"""Mapping profiles load into typed data, and every invalid profile names its file, key and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from scim_bridge.mappings.loader import check_files
from scim_bridge.mappings.loader import load_profile
from scim_bridge.mappings.loader import load_profiles
from scim_bridge.mappings.loader import parse_profile
from scim_bridge.mappings.model import MappingError
from scim_bridge.mappings.model import MembershipRules
from scim_bridge.mappings.model import OrgCandidate
from scim_bridge.mappings.model import Pattern
from scim_bridge.mappings.model import PrecedenceRule
from scim_bridge.scim.errors import InvalidValue

SHIPPED = Path(__file__).resolve().parents[3] / "mappings"
ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
INF_GROUP = "urn:scim-bridge:params:scim:schemas:extension:infinity:2.0:Group"


def test_shipped_profiles_load():
    profiles = load_profiles(SHIPPED)
    assert set(profiles) == {"okta", "entra", "generic"}
    okta, entra, generic = profiles["okta"], profiles["entra"], profiles["generic"]
    assert okta.orgs.groups == "matching" and okta.membership.mode == "single"
    assert okta.orgs.org_id.display_name_regex is not None and okta.orgs.on_group_delete == "detach"
    assert entra.orgs.groups == "all" and entra.membership.mode == "multi"
    assert entra.orgs.org_id.path is not None and entra.orgs.org_id.path.text == "externalId"
    assert entra.orgs.on_org_id_change == "keep"
    assert generic.orgs.on_existing_org_id == "reject" and generic.roles.default == "Viewer"
    assert check_files(sorted(SHIPPED.glob("*.toml"))) == []


def test_okta_profile_decides_from_the_display_name():
    okta = load_profile(SHIPPED / "okta.toml")
    decision = okta.decide({"displayName": "ORG-4711 ACME Berlin"})
    assert decision is not None and (decision.org_id, decision.name) == ("4711", "ACME Berlin")
    assert okta.decide({"displayName": "Test SCIMv2"}) is None  # not selected: a plain group
    assert okta.decide({"displayName": "Infinity Admins"}) is None  # a role group is never an org
    assert okta.roles.granted_by("Infinity Admins", None) == ("Admin",)


def test_entra_profile_normalises_and_validates_the_object_id():
    entra = load_profile(SHIPPED / "entra.toml")
    decision = entra.decide({"displayName": "Sales", "externalId": " 8AA1A0C0-C4C3-4BC0-B4A5-2EF676900159 "})
    assert decision is not None and decision.org_id == "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"
    assert entra.decide({"displayName": "No external id"}) is None  # when_missing = "skip"
    with pytest.raises(InvalidValue, match="does not match the pattern"):
        entra.decide({"displayName": "Bad", "externalId": "not-a-guid"})


def test_user_fields_follow_scim_paths():
    profile = load_profile(SHIPPED / "entra.toml")
    user = {
        "userName": "jdoe", "active": False, "name": {"givenName": "Jane", "familyName": "Doe"},
        "emails": [{"value": "home@x.test", "type": "home", "primary": True},
                   {"value": "other-work@x.test", "type": "work"}, {"value": "work@x.test", "type": "work",
                                                                   "primary": True}],
        ENT: {"organization": "R&D", "employeeNumber": "701984"},
    }
    fields = profile.user.extract(user)
    assert fields["email"] == "work@x.test"  # the primary of the matching elements
    assert (fields["first_name"], fields["last_name"], fields["department"]) == ("Jane", "Doe", "R&D")
    assert fields["employee_number"] == "701984" and fields["active"] is False
    assert profile.user.extract({"userName": "only-name"})["email"] == "only-name"


def test_org_id_from_an_extension_attribute():
    profile = parse_profile({"orgs": {"org_id": {"path": f"{INF_GROUP}:iamOrgId", "normalize": "upper"}}}, "x")
    decision = profile.decide({"displayName": "G", INF_GROUP: {"iamOrgId": "ab-12"}})
    assert decision is not None and decision.org_id == "AB-12"


def test_reject_when_the_org_id_is_missing():
    profile = parse_profile({"orgs": {"org_id": {"when_missing": "reject"}}}, "strict")
    with pytest.raises(InvalidValue, match="org_id .externalId. is empty"):
        profile.decide({"displayName": "No id"})


def test_primary_org_precedence_and_tie_break():
    a, b, hq = OrgCandidate(1, "200", "B"), OrgCandidate(2, "100", "A"), OrgCandidate(3, "HQ-1", "Head office")
    rules = MembershipRules("single", (PrecedenceRule(org_id=_pattern("^HQ-")),), "current")
    assert rules.pick_primary([a, b, hq], current=1) is hq  # precedence beats the current org
    assert rules.pick_primary([a, b], current=1) is a  # a tie keeps the current org
    assert rules.pick_primary([a, b], current=None) is b  # else the lowest org_id
    assert MembershipRules("single", (), "org_id").pick_primary([a, b], current=1) is b
    assert rules.pick_primary([], current=1) is None


def test_role_precedence():
    profile = load_profile(SHIPPED / "generic.toml")
    assert profile.roles.resolve(["Viewer", "Admin", "Editor"]) == "Admin"
    assert profile.roles.resolve([]) == "Viewer"


def _pattern(text: str) -> Pattern:
    import re

    return Pattern(text, re.compile(text))


INVALID = [
    ('orgs = { groups = "some" }', "orgs.groups", "is not one of: all, matching"),
    ('orgs = { groups = "matching" }', "orgs.groups", "needs display_name_pattern"),
    ("orgs = { display_name_pattern = '^x' }", "orgs.display_name_pattern", 'only apply with groups = "matching"'),
    ("orgs = { groups = 'matching', display_name_pattern = '(' }", "orgs.display_name_pattern",
     "invalid regular expression"),
    ('orgs = { on_existing_org_id = "merge" }', "orgs.on_existing_org_id", "is not one of: link, reject"),
    ('orgs = { on_org_id_change = "ignore" }', "orgs.on_org_id_change", "is not one of: follow, keep"),
    ('orgs = { on_group_delete = "archive" }', "orgs.on_group_delete", "is not one of: detach, delete"),
    ('orgs = { colour = "blue" }', "orgs.colour", "unknown key"),
    ("[orgs.org_id]\ndisplay_name_regex = '^ORG-(\\d+)'", "orgs.org_id.display_name_regex", "(?P<org_id>"),
    ("[orgs.org_id]\npath = 'externalId'\ndisplay_name_regex = '(?P<org_id>x)'", "orgs.org_id.display_name_regex",
     "not both"),
    ("[orgs.org_id]\npath = 'nickName'", "orgs.org_id.path", "unknown attribute for resource type Group"),
    ("[orgs.org_id]\npath = 'members'", "orgs.org_id.path", "members cannot hold an org_id"),
    (f"[orgs.org_id]\npath = '{INF_GROUP}:orgId'", "orgs.org_id.path", "derived from the org itself"),
    ("[orgs.org_id]\npath = 'displayName eq'", "orgs.org_id.path", "Invalid path"),
    ("[orgs.org_id]\nnormalize = ['trim']", "orgs.org_id.normalize", "unknown step 'trim'"),
    ("[orgs.org_id]\nnormalize = ['upper', 'lower']", "orgs.org_id.normalize", "contradict"),
    ("[orgs.org_id]\nvalidate = '['", "orgs.org_id.validate", "invalid regular expression"),
    ("[orgs.org_id]\nwhen_missing = 'ignore'", "orgs.org_id.when_missing", "is not one of: skip, reject"),
    ("[orgs.name]\nidp_renames_override_admin = 'yes'", "orgs.name.idp_renames_override_admin",
     "expected true or false"),
    ('membership = { mode = "both" }', "membership.mode", "is not one of: single, multi"),
    ("membership = { precedence = [{ colour = 'x' }] }", "membership.precedence[0].colour", "unknown key"),
    ("membership = { precedence = [{}] }", "membership.precedence[0]", "needs org_id and/or org_name"),
    ('membership = { tie_break = "random" }', "membership.tie_break", "is not one of: current, org_id"),
    ("roles = { precedence = [] }", "roles.precedence", "at least one role"),
    ("roles = { precedence = ['Admin', 'Admin'] }", "roles.precedence", "listed once"),
    ("roles = { default = '' }", "roles.default", "cannot be empty"),
    ("[[roles.rules]]\ndisplay_name = '^Admins$'", "roles.rules[0].role", "missing"),
    ("[[roles.rules]]\ndisplay_name = '^Chiefs$'\nrole = 'Chief'", "roles.rules[0].role",
     "'Chief' is not listed in roles.precedence"),
    ("[[roles.rules]]\nrole = 'Admin'", "roles.rules[0]", "needs display_name and/or external_id"),
    ("[user]\nemail = 'emails[kind eq \"work\"].value'", "user.email", "'kind' is not a sub-attribute"),
    ("[user]\nfirst_name = 'name.nickname'", "user.first_name", "unknown attribute"),
    ("[user]\nlast_name = 'name'", "user.last_name", "is complex"),
    ("[user]\nemail = 'password'", "user.email", "never readable"),
    ("[user]\nemail = []", "user.email", "non-empty list"),
    ("[user]\ndepartment = 'userName[value eq \"x\"]'", "user.department", "multi-valued complex attribute"),
    ("[user.extra]\nRole = 'title'", "user.extra.Role", "lower-case"),
    ("[user.extra]\nrole = 'title'", "user.extra.role", "built-in field"),
    (f"[user.extra]\ncost = '{ENT}:costcentre'", "user.extra.cost", "unknown attribute"),
    ('description = 3', "description", "expected a string"),
    ('colour = "blue"', "colour", "unknown key"),
]


@pytest.mark.parametrize(("text", "key", "reason"), INVALID, ids=[key for _t, key, _r in INVALID])
def test_invalid_profile_names_file_and_key(tmp_path, text, key, reason):
    path = tmp_path / "broken.toml"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        load_profile(path)
    error = caught.value
    assert error.file == str(path) and error.key == key, str(error)
    assert reason in error.reason, str(error)
    assert str(error).startswith(f"{path}: {key}: ")


def test_not_toml_and_bad_name(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("orgs = [", encoding="utf-8")
    with pytest.raises(MappingError, match="not valid TOML") as caught:
        load_profile(path)
    assert caught.value.file == str(path)
    bad_name = tmp_path / "Bad Name.toml"
    bad_name.write_text("", encoding="utf-8")
    with pytest.raises(MappingError, match="profile name"):
        load_profile(bad_name)


def test_directory_errors(tmp_path):
    with pytest.raises(MappingError, match="does not exist"):
        load_profiles(tmp_path / "missing")
    with pytest.raises(MappingError, match="no mapping profile"):
        load_profiles(tmp_path)
    (tmp_path / "good.toml").write_text("", encoding="utf-8")
    (tmp_path / "bad.toml").write_text('membership = { mode = "x" }', encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        load_profiles(tmp_path)
    assert caught.value.file.endswith("bad.toml") and caught.value.key == "membership.mode"
    errors = check_files([tmp_path / "good.toml", tmp_path / "bad.toml"])
    assert [e.file for e in errors] == [str(tmp_path / "bad.toml")]


def test_an_empty_profile_has_working_defaults():
    profile = parse_profile({}, "empty")
    assert profile.orgs.groups == "all" and profile.orgs.org_id.source() == "externalId"
    decision = profile.decide({"displayName": "Sales", "externalId": "S-1"})
    assert decision is not None and (decision.org_id, decision.name) == ("S-1", "Sales")
    assert profile.membership.mode == "multi" and profile.roles.default == "Viewer"
