"""The reconciliation report (issue 6 §2): every kind of finding, its reason and its suggested action."""

from __future__ import annotations

import pytest

from scim_bridge.admin.errors import InvalidInput
from scim_bridge.admin.reconcile import SECTIONS
from scim_bridge.admin.reconcile import run_suggestion


def only(findings):
    assert len(findings) == 1, findings
    return findings[0]


def test_clean_tenant_has_no_findings(admin_tenancy):
    a = admin_tenancy("t-link")
    a.group("Sales", "S-1", (a.user("u")["id"],))
    report = a.report()
    assert report.total == 0 and report.counts == {kind: 0 for kind, _title in SECTIONS}


def test_unmapped_groups_pattern_mismatch_and_no_org_id(admin_tenancy):
    okta = admin_tenancy("okta")
    okta.group("Test SCIMv2")
    finding = only(okta.findings("unmapped_groups"))
    assert (finding.reason, finding.group["display_name"]) == ("pattern_mismatch", "Test SCIMv2")
    assert "/^ORG-\\d+ /" in finding.message and finding.suggestion.action == "review"
    okta.group("Infinity Admins")  # a role group is not an org on purpose: not reported
    assert len(okta.findings("unmapped_groups")) == 1

    generic = admin_tenancy("generic")
    generic.group("No external id")
    finding = only(generic.findings("unmapped_groups"))
    assert finding.reason == "no_org_id" and "externalId is empty" in finding.message


def test_unmapped_groups_invalid_org_id_after_a_profile_change(admin_tenancy):
    a = admin_tenancy("generic")
    a.group("ORG-1234567890123456789 Too long")  # generic: no externalId, a plain group
    a.set_profile("okta")  # okta derives org_id 1234567890123456789 (19 digits > 18)
    finding = only(a.findings("unmapped_groups"))
    assert finding.reason == "invalid_org_id" and "does not match the pattern" in finding.message
    assert finding.extra == {"org_id": "1234567890123456789"}


def test_unmapped_groups_duplicate_and_unapplied(admin_tenancy):
    a = admin_tenancy("t-iam")  # org_id from iamOrgId: groups with only an externalId stay plain
    sales = a.group("Sales", "S-1")
    a.group("Ops", "O-1")
    a.admin(lambda s: s.create("S-1", "Sales (typed in)"))
    a.set_profile("t-reject")  # now externalId is the org_id, and a taken one is rejected
    by_group = {f.group["display_name"]: f for f in a.findings("unmapped_groups")}
    assert by_group["Sales"].reason == "duplicate" and "rejects as a duplicate" in by_group["Sales"].message
    assert by_group["Sales"].suggestion.action == "link"
    assert by_group["Ops"].reason == "unapplied"
    assert (by_group["Ops"].suggestion.action, by_group["Ops"].suggestion.params["org_id"]) == ("create_link", "O-1")
    # The manual org is also a link candidate (same org_id), and in conflict in the org list.
    candidate = only(a.findings("link_candidates"))
    assert candidate.reason == "org_id_match" and candidate.group["id"] == sales["id"]
    conflicts = a.report().org_conflicts()
    assert set(conflicts[next(iter(conflicts))]) == {"unmapped_groups", "link_candidates"}
    # One click each: link the manual org, create-and-link Ops.
    for finding in (by_group["Sales"], by_group["Ops"]):
        a.admin(lambda s, f=finding: run_suggestion(s, f.suggestion.action, f.suggestion.params))
    assert {kind for kind, n in a.report().counts.items() if n} == {"name_drift"}  # 'Sales (typed in)'
    assert a.orgs()["S-1"]["group"] == sales["id"] and a.orgs()["O-1"]["source"] == "manual"


def test_link_candidates_by_name_with_one_click_link(admin_tenancy):
    a = admin_tenancy("generic")
    user = a.user("nm")
    acme = a.group("ACME", None, (user["id"],))
    a.admin(lambda s: s.create("4711", "acme"))
    candidate = only(a.findings("link_candidates"))
    assert candidate.reason == "name_match" and candidate.suggestion.action == "link"
    assert candidate.suggestion.params == {"org": a.org_pk("4711"), "group": acme["id"]}
    message = a.admin(lambda s: run_suggestion(s, "link", candidate.suggestion.params))
    assert message == "linked 'acme' to group 'ACME'" and a.t.variables("nm")["org_id"] == "4711"
    assert a.findings("link_candidates") == []


def test_link_candidate_whose_group_is_linked_elsewhere_needs_review(admin_tenancy):
    a = admin_tenancy("generic")
    a.admin(lambda s: s.create("4712", "ACME"))
    a.group("ACME", "acme-hq")  # the IdP created its own org acme-hq "ACME"
    candidate = only(a.findings("link_candidates"))
    assert candidate.suggestion.action == "review" and "linked to organization 'ACME' (acme-hq)" in candidate.message
    duplicate = only(a.findings("duplicate_names"))
    assert {duplicate.org["org_id"], duplicate.extra["orgs"][0]["org_id"]} == {"4712", "acme-hq"}
    assert set(a.report().org_conflicts()) == {__import__("uuid").UUID(a.org_pk("4712")),
                                              __import__("uuid").UUID(a.org_pk("acme-hq"))}


def test_orphaned_orgs(admin_tenancy):
    a = admin_tenancy("t-link")
    user = a.user("orph")
    gone = a.group("Gone", "G-1", (user["id"],))
    kept = a.group("Kept", "K-1")
    a.admin(lambda s: s.assign(s.by_org_id("K-1"), s.require_user("orph")))
    a.t.scim.delete(f"/Groups/{gone['id']}")
    a.t.scim.delete(f"/Groups/{kept['id']}")
    by_org = {f.org["org_id"]: f for f in a.findings("orphaned_orgs")}
    assert by_org["G-1"].suggestion.action == "delete" and by_org["G-1"].extra == {"manual_members": 0}
    assert by_org["K-1"].suggestion.action == "review" and "1 manual member" in by_org["K-1"].suggestion.label
    a.admin(lambda s: run_suggestion(s, "delete", by_org["G-1"].suggestion.params))
    assert set(a.orgs()) == {"K-1"}
    # A free group matching an orphan by org_id is suggested for a link.
    a.set_profile("t-iam")
    a.group("Kept again", "K-1")
    (finding,) = a.findings("orphaned_orgs")
    assert finding.suggestion.action == "link"


def test_name_drift(admin_tenancy):
    a = admin_tenancy("t-link")
    a.group("Finance", "F-1")
    a.admin(lambda s: s.edit(s.by_org_id("F-1"), name="Finance (legacy)"))
    finding = only(a.findings("name_drift"))
    assert finding.reason == "admin_edited" and finding.extra == {"expected_name": "Finance"}
    assert finding.suggestion.params == {"org": a.org_pk("F-1"), "name": "Finance"}
    a.admin(lambda s: run_suggestion(s, "rename", finding.suggestion.params))
    assert a.orgs()["F-1"]["name"] == "Finance" and a.findings("name_drift") == []


def test_ambiguous_primary_org(admin_tenancy):
    single = admin_tenancy("t-single")
    user = single.user("amb")
    single.group("Branch B", "B-2", (user["id"],))
    single.group("Branch A", "A-1", (user["id"],))
    finding = only(single.findings("ambiguous_primary"))
    assert finding.user["user_name"] == "amb" and finding.extra == {"candidates": ["A-1", "B-2"], "chosen": "B-2"}
    multi = admin_tenancy("t-link")  # multi: orgId is still one of them, picked by tie-break
    user = multi.user("many")
    multi.group("One", "O-1", (user["id"],))
    multi.group("Two", "O-2", (user["id"],))
    assert only(multi.findings("ambiguous_primary")).extra == {"candidates": ["O-1", "O-2"], "chosen": "O-1"}


def test_unknown_manual_memberships(admin_tenancy):
    a = admin_tenancy("t-link")
    inside = a.user("inside")
    a.user("outside")
    a.group("Linked", "L-1", (inside["id"],))
    a.admin(lambda s: s.create("M-1", "Manual"))
    for org_id, user in (("L-1", "inside"), ("L-1", "outside"), ("M-1", "inside")):
        a.admin(lambda s, o=org_id, u=user: s.assign(s.by_org_id(o), s.require_user(u)))
    found = {(f.org["org_id"], f.user["user_name"]): f for f in a.findings("unknown_manual_memberships")}
    assert set(found) == {("L-1", "outside"), ("M-1", "inside")}  # inside is in L-1's group: the IdP knows
    assert found[("L-1", "outside")].reason == "not_in_group" and found[("M-1", "inside")].reason == "org_not_linked"
    a.admin(lambda s: run_suggestion(s, "unassign", found[("L-1", "outside")].suggestion.params))
    assert a.t.variables("outside")["org_ids"] == []


def test_invalid_org_ids(admin_tenancy):
    a = admin_tenancy("generic")
    a.admin(lambda s: s.create("ACME-1", "ACME"))
    assert a.findings("invalid_org_ids") == []
    a.set_profile("okta")
    finding = only(a.findings("invalid_org_ids"))
    assert finding.org["org_id"] == "ACME-1" and "/^\\d{1,18}$/" in finding.message


def test_unknown_suggestion_is_refused(admin_tenancy):
    a = admin_tenancy("t-link")
    with pytest.raises(InvalidInput, match="unknown action"):
        a.admin(lambda s: run_suggestion(s, "explode", {}))
