"""Plans from an IAM org list (issue 6 §3): parsing, every action with its reason, atomic apply, staleness."""

from __future__ import annotations

import pytest

from scim_bridge.admin import orgs_admin
from scim_bridge.admin.errors import Conflict
from scim_bridge.admin.errors import InvalidInput
from scim_bridge.admin.plans import export_rows
from scim_bridge.admin.plans import parse_iam_orgs
from scim_bridge.admin.plans import to_csv


def actions(lines):
    return [(line.action, line.org_id, line.new_org_id, line.new_name, line.group_name) for line in lines]


# -- parsing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "fmt"), [
    ("org_id,name\n4711,ACME Berlin\n4712, ACME Paris \n", "csv"),
    ("4711,ACME Berlin\n\n# a comment\n4712,ACME Paris\n", "csv"),
    ("name,members,org_id\nACME Berlin,3,4711\nACME Paris,1,4712\n", "csv"),
    ('[{"org_id": "4711", "name": "ACME Berlin"}, {"orgId": 4712, "name": "ACME Paris"}]', "json"),
    ('{"orgs": [{"id": "4711", "name": "ACME Berlin"}, {"id": "4712", "name": "ACME Paris"}]}', "json"),
    ('{"4711": "ACME Berlin", "4712": "ACME Paris"}', "json"),
])
def test_parse_iam_lists(text, fmt):
    kind, entries = parse_iam_orgs(text.encode())
    assert kind == fmt and [(e.org_id, e.name) for e in entries] == [("4711", "ACME Berlin"), ("4712", "ACME Paris")]


@pytest.mark.parametrize(("text", "message"), [
    ("4711,A\n4711,B\n", "line 2: org_id '4711' is listed twice (also line 1)"),
    ("4711,\n", "line 1: org_id '4711' has no name"),
    (",A\n", "line 1: the org_id is empty"),
    ("org_id,name\n", "the IAM org list is empty"),
    ("[1, 2]", "entry 1 is not an object"),
    ("{not json", "not valid JSON"),
])
def test_parse_errors_name_the_line(text, message):
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_iam_orgs(text)


# -- planning and applying -------------------------------------------------------------------------


def test_every_action_with_its_reason_then_apply(admin_tenancy):
    a = admin_tenancy("t-link")
    alice = a.user("alice")
    a.admin(lambda s: s.create("4711", "ACME Berlin (old)"))  # rename
    a.admin(lambda s: s.create("legacy-9", "ACME Paris"))  # rekey to 4712 by name
    a.group("ACME Rome", None, (alice["id"],))  # a free group: linked to the created 4713 by name
    a.group("Vienna", "W-1")  # not in the IAM list: left alone
    wrong = a.group("Madrid team", "4715")  # IdP org 4715 ...
    a.admin(lambda s: s.edit(s.by_org_id("4715"), org_id="4716"))  # ... re-keyed to 4716 by mistake
    plan, lines = a.plan("org_id,name\n4711,ACME Berlin\n4712,ACME Paris\n4713,ACME Rome\n4715,ACME Madrid\n"
                         "4716,ACME Lisbon\n")
    assert plan.status == "planned" and plan.entry_count == 5
    assert actions(lines) == [
        ("unlink", "4716", None, None, "Madrid team"),
        ("rekey", "legacy-9", "4712", None, None),
        ("create", None, "4713", "ACME Rome", None),
        ("create", None, "4715", "ACME Madrid", None),
        ("rename", "4711", None, "ACME Berlin", None),
        ("rename", "4716", None, "ACME Lisbon", None),
        ("link", None, "4713", None, "ACME Rome"),
        ("link", None, "4715", None, "Madrid team"),
    ]
    reasons = {(line.action, line.new_org_id or line.org_id): line.reason for line in lines}
    assert reasons[("unlink", "4716")] == "group 'Madrid team' carries IAM org ID '4715' (ACME Madrid), not '4716'"
    assert reasons[("rekey", "4712")].startswith("organization 'ACME Paris' has org_id 'legacy-9'")
    assert reasons[("create", "4713")] == "the IAM system lists org 4713 'ACME Rome', which has no organization"
    assert reasons[("link", "4713")] == "group 'ACME Rome' is named 'ACME Rome' and is linked to no organization"
    assert reasons[("link", "4715")] == "group 'Madrid team' carries org_id '4715' and is linked to no organization"
    assert plan.summary == {"unlink": 1, "rekey": 1, "create": 2, "rename": 2, "link": 2}
    assert a.orgs()["4711"]["name"] == "ACME Berlin (old)"  # a plan is a dry run

    cursor = a.t.cursor()
    applied, lines = a.apply(plan.id)
    assert applied.status == "applied" and applied.outcome == "applied 8 change(s)"
    assert {line.status for line in lines} == {"applied"}
    orgs = a.orgs()
    assert {k: (v["name"], v["group"]) for k, v in orgs.items()} == {
        "4711": ("ACME Berlin", None), "4712": ("ACME Paris", None), "4713": ("ACME Rome", orgs["4713"]["group"]),
        "4715": ("ACME Madrid", wrong["id"]), "4716": ("ACME Lisbon", None), "W-1": ("Vienna", orgs["W-1"]["group"])}
    assert orgs["4716"]["orphaned"] is True and orgs["4713"]["group"] is not None
    assert a.t.variables("alice")["org_id"] == "4713"
    types = a.t.types(cursor)
    assert "org.rekeyed" in types and types.count("org.created") == 2 and types.count("org.renamed") == 2
    # Applying twice is refused; the same list again plans nothing but W-1/Vienna's absence changes nothing.
    with pytest.raises(Conflict, match="is applied"):
        a.apply(plan.id)
    again, lines = a.plan("4711,ACME Berlin\n4712,ACME Paris\n4713,ACME Rome\n4715,ACME Madrid\n4716,ACME Lisbon\n")
    assert lines == [] and again.summary == {"unlink": 0, "rekey": 0, "create": 0, "rename": 0, "link": 0}


def test_ambiguities_become_notes(admin_tenancy):
    a = admin_tenancy("t-link")
    a.admin(lambda s: s.create("x-1", "Twins"))
    a.admin(lambda s: s.create("x-2", "twins"))
    a.group("Solo", None)
    a.group("solo team", None, **{"urn:scim-bridge:params:scim:schemas:extension:infinity:2.0:Group":
                                  {"iamOrgId": "ignored"}})
    plan, lines = a.plan("9,Twins\n")
    assert lines == [] and plan.notes["notes"] == [
        "skipped '9' (Twins): 2 organizations have that name (x-1, x-2); re-key the right one by hand"]
    okta = admin_tenancy("okta")
    plan, lines = okta.plan("ACME,Not a number\n")
    assert lines == [] and "does not match /^\\d{1,18}$/" in plan.notes["notes"][0]


def test_stale_plan_is_refused_and_kept(admin_tenancy):
    a = admin_tenancy("t-link")
    a.admin(lambda s: s.create("4711", "Old"))
    plan, _lines = a.plan("4711,New\n4712,Other\n")
    a.admin(lambda s: s.edit(s.by_org_id("4711"), name="Changed meanwhile"))
    refused, lines = a.apply(plan.id)
    assert refused.status == "refused" and "changed since the plan was made" in refused.outcome
    assert {line.status for line in lines} == {"pending"}
    assert set(a.orgs()) == {"4711"} and a.orgs()["4711"]["name"] == "Changed meanwhile"
    with pytest.raises(Conflict, match="is refused"):
        a.apply(plan.id)
    # Membership changes do not make a plan stale: only orgs and groups do.
    fresh, _lines = a.plan("4711,New\n")
    user = a.user("m")
    a.admin(lambda s: s.assign(s.by_org_id("4711"), s.require_user(user["id"])))
    assert a.apply(fresh.id)[0].status == "applied"


def test_a_failing_line_rolls_everything_back(admin_tenancy, monkeypatch):
    a = admin_tenancy("t-link")
    a.group("Rome", None)
    plan, lines = a.plan("1,Created\n2,Rome\n")
    assert [line.action for line in lines] == ["create", "create", "link"]

    def refuse(self, org, group):
        raise Conflict("simulated race")

    monkeypatch.setattr(orgs_admin.OrgAdmin, "link", refuse)
    failed, lines = a.apply(plan.id)
    assert failed.status == "failed"
    assert failed.outcome == "failed at line 3 (link): simulated race; nothing was applied"
    assert [line.status for line in lines] == ["not_applied", "not_applied", "failed"]
    assert a.orgs() == {} and not [e for e in a.t.events() if e["type"] == "org.created"]


def test_export_reads_back_as_an_iam_list(admin_tenancy):
    a = admin_tenancy("t-link")
    a.group("Sales, EMEA", "S-1", (a.user("x")["id"],))
    a.admin(lambda s: s.create("M-1", 'Quote "Q"'))
    rows = export_rows(a.admin(lambda s: s.all()))
    assert [(r["org_id"], r["members"], r["source"]) for r in rows] == [("M-1", 0, "manual"), ("S-1", 1, "idp")]
    text = to_csv(rows)
    assert text.splitlines()[0] == "org_id,name,source,group_id,group_name,members,orphaned,conflict"
    plan, lines = a.plan(text)
    assert plan.entry_count == 2 and lines == []
