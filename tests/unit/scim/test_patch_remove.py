"""``remove`` operations (RFC 7644 §3.5.2.2) and the value-filter evaluator they rely on."""

from __future__ import annotations

from typing import Any

import pytest

from scim_bridge.scim.errors import InvalidValue
from scim_bridge.scim.errors import NoTarget
from scim_bridge.scim.patch import PatchResult
from scim_bridge.scim.patch import apply_patch
from scim_bridge.scim.patch import parse_patch_request
from scim_bridge.scim.schema import ENTERPRISE_USER_SCHEMA as ENT
from scim_bridge.scim.schema import PATCH_OP_SCHEMA
from scim_bridge.scim.schema import USER_RESOURCE
from scim_bridge.scim.schema import USER_SCHEMA
from tests.unit.scim.patch_fixtures import ENTERPRISE
from tests.unit.scim.patch_fixtures import HOME
from tests.unit.scim.patch_fixtures import NAME
from tests.unit.scim.patch_fixtures import WORK
from tests.unit.scim.patch_fixtures import base_user
from tests.unit.scim.patch_fixtures import run_one


def remove(path: str, resource: dict[str, Any] | None = None, **extra: Any) -> PatchResult:
    """Apply one ``remove`` operation to *resource* (default: the base user)."""
    return run_one("remove", {"path": path, **extra}, resource)


REMOVE_CASES = [
    pytest.param("displayName", "displayName", None, id="string"),
    pytest.param("active", "active", None, id="boolean"),
    pytest.param("externalId", "externalId", None, id="absent-is-no-op"),
    pytest.param("name.givenName", "name", {"familyName": "Jensen"}, id="sub-attribute"),
    pytest.param("name.middleName", "name", NAME, id="absent-sub-attribute-no-op"),
    pytest.param("name", "name", None, id="complex"),
    pytest.param("emails", "emails", None, id="multi-valued-all"),
    pytest.param("emails.primary", "emails", [{"value": WORK["value"], "type": "work"}, HOME],
                 id="sub-of-all-elements"),
    pytest.param("phoneNumbers.value", "phoneNumbers", [{"type": "work"}], id="sub-of-all-keeps-nonempty"),
    pytest.param('emails[type eq "work"]', "emails", [HOME], id="filter-elements"),
    pytest.param('emails[type eq "other"]', "emails", [WORK, HOME], id="filter-no-match-no-op"),
    pytest.param('emails[type eq "work"].primary', "emails", [{"value": WORK["value"], "type": "work"}, HOME],
                 id="filter-sub-attribute"),
    pytest.param('phoneNumbers[type eq "work"]', "phoneNumbers", None, id="filter-last-element-drops-attribute"),
    pytest.param('addresses[type eq "work"].locality', "addresses", [{"type": "work", "streetAddress": "1 Main St"}],
                 id="filter-address-sub"),
    pytest.param(f"{ENT}:department", ENT, {"manager": {"value": "m1"}}, id="extension-attribute"),
    pytest.param(f"{ENT}:manager.value", ENT, {"department": "Sales"}, id="extension-sub-empties-complex"),
    pytest.param(f"{ENT}:costCenter", ENT, ENTERPRISE, id="extension-absent-no-op"),
    pytest.param(ENT, ENT, None, id="whole-extension"),
    pytest.param("manager", ENT, {"department": "Sales"}, id="unqualified-extension-name"),
]


@pytest.mark.parametrize(("path", "key", "expected"), REMOVE_CASES)
def test_remove(path: str, key: str, expected: Any) -> None:
    """Each remove takes away exactly its target (RFC 7644 §3.5.2.2)."""
    before = base_user()
    result = remove(path)
    assert result.resource.get(key) == expected
    others = {k: v for k, v in result.resource.items() if k not in (key, "schemas")}
    assert others == {k: v for k, v in before.items() if k not in (key, "schemas")}


def test_remove_whole_extension_drops_its_schema() -> None:
    """Removing the extension also drops its URN from ``schemas``."""
    result = remove(ENT)
    assert result.resource["schemas"] == [USER_SCHEMA]
    assert result.changed_attributes == {f"{ENT}:department", f"{ENT}:manager"}


def test_remove_extension_attribute_from_user_without_extension() -> None:
    """Nothing to remove: nothing changes, no empty extension object appears."""
    result = remove(f"{ENT}:department", {"userName": "x"})
    assert result.resource == {"userName": "x"}
    assert result.changed_attributes == frozenset()


def test_remove_multi_valued_with_value_removes_only_those() -> None:
    """A value list on remove selects the elements to remove (lenient, as for members, Q5)."""
    result = remove("emails", value=[{"value": "BABS@home.example", "type": "home"}])
    assert result.resource["emails"] == [WORK]


def test_remove_without_path_is_no_target() -> None:
    """RFC 7644 §3.5.2.2: remove without a path fails with noTarget."""
    body = {"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "remove", "value": {"displayName": None}}]}
    with pytest.raises(NoTarget):
        apply_patch(base_user(), parse_patch_request(body), USER_RESOURCE)


@pytest.mark.parametrize("path", ["userName", "USERNAME", f"{USER_SCHEMA}:userName"])
def test_remove_required_attribute_fails(path: str) -> None:
    """``userName`` is required (RFC 7643 §4.1.1): removing it is 400 invalidValue."""
    with pytest.raises(InvalidValue, match="required"):
        remove(path)


# The evaluator: each filter is applied with remove, the remaining values tell what matched.
EMAILS = [
    {"value": "Ann@Example.com", "type": "work", "primary": True},
    {"value": "ann@home.example", "type": "home"},
    {"value": "ann@other.example", "type": "Other", "display": "x"},
]
PHOTOS = [{"value": "https://x.example/A.jpg", "type": "photo"}, {"value": "https://x.example/a.jpg"}]


@pytest.mark.parametrize(("filter_text", "removed"), [
    pytest.param('type eq "work"', [0], id="eq"),
    pytest.param('TYPE EQ "WORK"', [0], id="eq-case-insensitive-name-op-value"),
    pytest.param('value eq "ann@example.com"', [0], id="eq-caseExact-false"),
    pytest.param('type eq "other"', [2], id="eq-stored-value-case"),
    pytest.param('type ne "work"', [1, 2], id="ne"),
    pytest.param('display ne "x"', [0, 1], id="ne-absent-matches"),
    pytest.param('value co "HOME"', [1], id="co"),
    pytest.param('value sw "ann@"', [0, 1, 2], id="sw"),
    pytest.param('value ew ".example"', [1, 2], id="ew"),
    pytest.param("display pr", [2], id="pr"),
    pytest.param("primary pr", [0], id="pr-boolean"),
    pytest.param("primary eq true", [0], id="eq-boolean"),
    pytest.param('primary eq "true"', [0], id="eq-boolean-string-Q2"),
    pytest.param("primary eq false", [], id="eq-boolean-false-absent"),
    pytest.param("primary ne true", [1, 2], id="ne-boolean"),
    pytest.param('type gt "other"', [0], id="gt"),
    pytest.param('type ge "other"', [0, 2], id="ge"),
    pytest.param('type lt "other"', [1], id="lt"),
    pytest.param('type le "home"', [1], id="le"),
    pytest.param('type eq "work" or type eq "home"', [0, 1], id="or"),
    pytest.param('value sw "ann" and type eq "home"', [1], id="and"),
    pytest.param('not (type eq "work")', [1, 2], id="not"),
    pytest.param('(type eq "work" or display pr) and not (primary eq true)', [2], id="grouping"),
    pytest.param("type eq null", [], id="eq-null-none-absent"),
    pytest.param("display eq null", [0, 1], id="eq-null-absent"),
    pytest.param('value eq 5', [], id="type-mismatch-no-match"),
    pytest.param('emails.type eq "home"', [1], id="qualified-sub-attribute"),
])
def test_value_filter_evaluation(filter_text: str, removed: list[int]) -> None:
    """The in-Python evaluator honours RFC 7644 §3.4.2.2 operators and caseExact (RFC 7643 §2.2)."""
    user = {"userName": "ann", "emails": [dict(e) for e in EMAILS]}
    remaining = remove(f"emails[{filter_text}]", user).resource.get("emails", [])
    assert remaining == [e for i, e in enumerate(EMAILS) if i not in removed]


@pytest.mark.parametrize(("filter_text", "removed"), [
    pytest.param('value eq "https://x.example/a.jpg"', [1], id="caseExact-eq"),
    pytest.param('value co "A.jpg"', [0], id="caseExact-co"),
    pytest.param('type eq "PHOTO"', [0], id="canonical-type-not-caseExact"),
])
def test_value_filter_case_exact(filter_text: str, removed: list[int]) -> None:
    """``photos.value`` is caseExact: comparisons respect case."""
    user = {"userName": "ann", "photos": [dict(p) for p in PHOTOS]}
    remaining = remove(f"photos[{filter_text}]", user).resource.get("photos", [])
    assert remaining == [p for i, p in enumerate(PHOTOS) if i not in removed]
