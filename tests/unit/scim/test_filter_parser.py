"""Parser tests: filter text, PATCH paths and attribute lists to AST (RFC 7644 §3.4.2.2, §3.5.2, §3.9)."""

from __future__ import annotations

import re

import pytest

from scim_bridge.scim.errors import InvalidFilter
from scim_bridge.scim.errors import InvalidPath
from scim_bridge.scim.errors import InvalidValue
from scim_bridge.scim.filter.ast import And
from scim_bridge.scim.filter.ast import AttrPath
from scim_bridge.scim.filter.ast import Compare
from scim_bridge.scim.filter.ast import Filter
from scim_bridge.scim.filter.ast import Not
from scim_bridge.scim.filter.ast import Or
from scim_bridge.scim.filter.ast import PatchPath
from scim_bridge.scim.filter.ast import Present
from scim_bridge.scim.filter.ast import ValuePath
from scim_bridge.scim.filter.parser import MAX_FILTER_LENGTH
from scim_bridge.scim.filter.parser import MAX_NESTING_DEPTH
from scim_bridge.scim.filter.parser import parse_attribute_list
from scim_bridge.scim.filter.parser import parse_filter
from scim_bridge.scim.filter.parser import parse_path

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"


def p(attr: str, sub: str | None = None, schema: str | None = None) -> AttrPath:
    """Build an AttrPath tersely."""
    return AttrPath(schema, attr, sub)


A, B, C = Present(p("a")), Present(p("b")), Present(p("c"))
TS = "2011-05-13T04:42:34Z"
WORK = Compare(p("type"), "eq", "work")
AT_EXAMPLE = Compare(p("value"), "co", "@example.com")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # every comparison operator (RFC 7644 §3.4.2.2, Table 3)
        ('userName eq "bjensen"', Compare(p("userName"), "eq", "bjensen")),
        ('title ne "x"', Compare(p("title"), "ne", "x")),
        ('name.familyName co "O\'Malley"', Compare(p("name", "familyName"), "co", "O'Malley")),
        ('userName sw "J"', Compare(p("userName"), "sw", "J")),
        ('userName ew "n"', Compare(p("userName"), "ew", "n")),
        (f'meta.lastModified gt "{TS}"', Compare(p("meta", "lastModified"), "gt", TS)),
        (f'meta.lastModified ge "{TS}"', Compare(p("meta", "lastModified"), "ge", TS)),
        (f'meta.lastModified lt "{TS}"', Compare(p("meta", "lastModified"), "lt", TS)),
        (f'meta.lastModified le "{TS}"', Compare(p("meta", "lastModified"), "le", TS)),
        ("title pr", Present(p("title"))),
        # operators, keywords and literals are case-insensitive; names keep the client's spelling
        ('USERNAME EQ "x"', Compare(p("USERNAME"), "eq", "x")),
        ('userName Eq "x"', Compare(p("userName"), "eq", "x")),
        ("title PR", Present(p("title"))),
        ("a pr AND b pr", And(A, B)),
        ("a pr Or b pr", Or(A, B)),
        ("NOT (a pr)", Not(A)),
        ("active eq TRUE", Compare(p("active"), "eq", True)),
        ("active eq False", Compare(p("active"), "eq", False)),
        ("title eq NULL", Compare(p("title"), "eq", None)),
        # precedence: not > and > or; left-associative chains
        ("a pr or b pr and c pr", Or(A, And(B, C))),
        ("a pr and b pr or c pr", Or(And(A, B), C)),
        ("a pr or b pr or c pr", Or(Or(A, B), C)),
        ("a pr and b pr and c pr", And(And(A, B), C)),
        ("not (a pr) and b pr", And(Not(A), B)),
        ("not (a pr or b pr)", Not(Or(A, B))),
        ("not(a pr)", Not(A)),
        # parentheses
        ("(a pr or b pr) and c pr", And(Or(A, B), C)),
        ("a pr and (b pr or c pr)", And(A, Or(B, C))),
        ("((a pr))", A),
        ("( a pr )", A),
        ("not ((a pr) and (b pr))", Not(And(A, B))),
        # value paths
        ('emails[type eq "work"]', ValuePath(p("emails"), Compare(p("type"), "eq", "work"))),
        ('emails[type eq "work" and value co "@example.com"]', ValuePath(p("emails"), And(WORK, AT_EXAMPLE))),
        (
            'userType eq "Employee" and emails[type eq "work" and value co "@example.com"]',
            And(
                Compare(p("userType"), "eq", "Employee"),
                ValuePath(p("emails"), And(WORK, AT_EXAMPLE)),
            ),
        ),
        (
            'emails[not (type eq "work") or primary eq true]',
            ValuePath(p("emails"), Or(Not(Compare(p("type"), "eq", "work")), Compare(p("primary"), "eq", True))),
        ),
        ('emails [type eq "work"]', ValuePath(p("emails"), Compare(p("type"), "eq", "work"))),
        (
            f'{ENTERPRISE}:manager[value eq "x"]',
            ValuePath(p("manager", schema=ENTERPRISE), Compare(p("value"), "eq", "x")),
        ),
        # URN-qualified attributes: the last ":" before the name ends the URN
        (f'{ENTERPRISE}:employeeNumber eq "701984"', Compare(p("employeeNumber", schema=ENTERPRISE), "eq", "701984")),
        (f'{ENTERPRISE}:manager.value eq "x"', Compare(p("manager", "value", ENTERPRISE), "eq", "x")),
        (f"{ENTERPRISE.upper()}:department pr", Present(p("department", schema=ENTERPRISE.upper()))),
        (f'{CORE}:name.givenName eq "B"', Compare(p("name", "givenName", CORE), "eq", "B")),
        (f"{CORE}:userName pr", Present(p("userName", schema=CORE))),
        # $ref and names with - and _
        ("members.$ref pr", Present(p("members", "$ref"))),
        ("$ref pr", Present(p("$ref"))),
        ("x-custom_attr2 pr", Present(p("x-custom_attr2"))),
        # names that start with a keyword are names
        ("notes pr", Present(p("notes"))),
        ("organization pr and order pr", And(Present(p("organization")), Present(p("order")))),
        ("prefix eq 1", Compare(p("prefix"), "eq", 1)),
        # literals (RFC 8259 numbers and strings)
        ("x eq 0", Compare(p("x"), "eq", 0)),
        ("x eq -12", Compare(p("x"), "eq", -12)),
        ("x eq 1.5", Compare(p("x"), "eq", 1.5)),
        ("x eq 2E3", Compare(p("x"), "eq", 2000.0)),
        ("x eq -1.25e-2", Compare(p("x"), "eq", -0.0125)),
        ('x eq ""', Compare(p("x"), "eq", "")),
        (r'x eq "a\"b"', Compare(p("x"), "eq", 'a"b')),
        (r'x eq "back\\slash"', Compare(p("x"), "eq", "back\\slash")),
        (r'x eq "\/\b\f\n\r\t"', Compare(p("x"), "eq", "/\b\f\n\r\t")),
        (r'x eq "\u00c4rger \u00e9"', Compare(p("x"), "eq", "Ärger é")),
        (r'x eq "\ud83d\ude00"', Compare(p("x"), "eq", "\U0001f600")),
        ('x eq "Ärger ☃"', Compare(p("x"), "eq", "Ärger ☃")),
        ('x eq "a and b or not (c)"', Compare(p("x"), "eq", "a and b or not (c)")),
        ('x eq "[pr]"', Compare(p("x"), "eq", "[pr]")),
        # lenient: unquoted values are strings (Microsoft's documented examples)
        ("externalId eq jyoung", Compare(p("externalId"), "eq", "jyoung")),
        (
            "id eq 54D382A4-2050-4C03-94D1-E769F1D15682 and manager eq 2819c223",
            And(
                Compare(p("id"), "eq", "54D382A4-2050-4C03-94D1-E769F1D15682"),
                Compare(p("manager"), "eq", "2819c223"),
            ),
        ),
        ("x eq truely", Compare(p("x"), "eq", "truely")),
        ('emails[type eq work]', ValuePath(p("emails"), Compare(p("type"), "eq", "work"))),
        # whitespace is flexible
        ('  userName   eq\t"x"  ', Compare(p("userName"), "eq", "x")),
        ('a eq "x"and b pr', And(Compare(p("a"), "eq", "x"), B)),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_parse_filter(text: str, expected: Filter) -> None:
    """Each filter parses to the expected AST."""
    assert parse_filter(text) == expected


def test_long_chains_are_balanced() -> None:
    """A chain of 500 "or" terms parses into a shallow tree (no RecursionError downstream)."""
    text = " or ".join(["a pr"] * 500)
    assert len(text) <= MAX_FILTER_LENGTH
    tree = parse_filter(text)

    def depth(node: Filter) -> int:
        if isinstance(node, And | Or):
            return 1 + max(depth(node.left), depth(node.right))
        return 1

    assert depth(tree) <= 10
    assert repr(tree)  # no recursion problem rendering it either


def test_nesting_at_the_limit_parses() -> None:
    """Exactly MAX_NESTING_DEPTH parentheses are fine."""
    text = "(" * MAX_NESTING_DEPTH + "a pr" + ")" * MAX_NESTING_DEPTH
    assert parse_filter(text) == A


def test_deep_not_nesting_at_the_limit_parses() -> None:
    """not( nested to the limit builds a Not chain of that depth."""
    text = "not (" * MAX_NESTING_DEPTH + "a pr" + ")" * MAX_NESTING_DEPTH
    node = parse_filter(text)
    for _ in range(MAX_NESTING_DEPTH):
        assert isinstance(node, Not)
        node = node.expr
    assert node == A


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("title", 6, "expected an operator"),
        ("title eq", 9, "expected a string, a number, true, false or null"),
        ('title xx "a"', 7, "unexpected 'xx'"),
        ('title eqx "a"', 7, "unexpected 'eqx'"),
        ('title eq "unterminated', 10, "malformed string"),
        (r'title eq "bad \x escape"', 10, "malformed string"),
        ("title eq 'single'", 10, "unexpected \"'single'\""),
        ("(title pr", 10, "expected ')'"),
        ("title pr)", 9, "unexpected ')'; expected 'and', 'or' or end of input"),
        ('title eq "a" and', 17, "unexpected end of input"),
        ("a pr or or b pr", 9, "unexpected 'or'; expected an attribute name, 'not' or '('"),
        ("and pr", 1, "unexpected 'and'"),
        ("title eq and", 10, "unexpected 'and'"),
        ("not a pr", 5, "expected '('"),
        ('emails[type eq "w" and x[y pr]]', 25, "cannot be nested"),
        ('emails[type eq "w"', 19, "expected 'and', 'or' or ']'"),
        ('emails[type eq "w"]]', 20, "unexpected ']'"),
        ("name.givenName[x pr]", 1, "applies to a multi-valued attribute"),
        ("title eq 1e999", 10, "out of range"),
        (r'title eq "\ud800"', 10, "unpaired UTF-16 surrogate"),
        ('title eq "a" #', 14, "unexpected '#'"),
        ("urn:ietf:params:scim:schemas:core:2.0:User: pr", 43, "unexpected ':'"),
        ("title.given.name pr", 12, "unexpected '.name'"),
        ("(" * (MAX_NESTING_DEPTH + 1) + "a pr" + ")" * (MAX_NESTING_DEPTH + 1), MAX_NESTING_DEPTH + 1,
         "nested more than 50 levels"),
    ],
)
def test_invalid_filter_names_the_position(text: str, position: int, fragment: str) -> None:
    """Syntax errors raise InvalidFilter saying where and what was expected."""
    with pytest.raises(InvalidFilter) as caught:
        parse_filter(text)
    detail = caught.value.detail
    assert f"at position {position}:" in detail
    assert fragment in detail
    assert "Traceback" not in detail and "Token(" not in detail and "__" not in detail


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_filter_is_invalid(text: str) -> None:
    """An empty filter is an error, not "everything"."""
    with pytest.raises(InvalidFilter, match="empty"):
        parse_filter(text)


def test_too_long_filter_is_rejected() -> None:
    """Filters over MAX_FILTER_LENGTH characters are rejected before parsing."""
    text = 'title eq "' + "x" * MAX_FILTER_LENGTH + '"'
    with pytest.raises(InvalidFilter, match=re.escape(f"the limit is {MAX_FILTER_LENGTH}")):
        parse_filter(text)


def test_parentheses_inside_strings_do_not_count_towards_nesting() -> None:
    """The nesting check skips quoted strings."""
    text = 'title eq "' + "(" * 100 + '\\"' + "[" * 100 + '"'
    assert parse_filter(text) == Compare(p("title"), "eq", "(" * 100 + '"' + "[" * 100)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("members", PatchPath(p("members"))),
        ("name.givenName", PatchPath(p("name", "givenName"))),
        ("members.$ref", PatchPath(p("members", "$ref"))),
        (
            'members[value eq "2819c223-7f76-453a-919d-413861904646"]',
            PatchPath(p("members"), Compare(p("value"), "eq", "2819c223-7f76-453a-919d-413861904646")),
        ),
        ('emails[type eq "work"].value', PatchPath(p("emails"), Compare(p("type"), "eq", "work"), "value")),
        ('Emails[Type EQ "work"].Value', PatchPath(p("Emails"), Compare(p("Type"), "eq", "work"), "Value")),
        ("phoneNumbers[primary eq true].value",
         PatchPath(p("phoneNumbers"), Compare(p("primary"), "eq", True), "value")),
        (
            'addresses[type eq "work" and primary eq true].formatted',
            PatchPath(p("addresses"), And(Compare(p("type"), "eq", "work"), Compare(p("primary"), "eq", True)),
                      "formatted"),
        ),
        (f"{ENTERPRISE}:manager.value", PatchPath(p("manager", "value", ENTERPRISE))),
        (f"{ENTERPRISE}:department", PatchPath(p("department", schema=ENTERPRISE))),
        ('members[not (type eq "Group")]', PatchPath(p("members"), Not(Compare(p("type"), "eq", "Group")))),
    ],
)
def test_parse_path(text: str, expected: PatchPath) -> None:
    """PATCH paths: attrPath / valuePath [subAttr] (RFC 7644 §3.5.2)."""
    assert parse_path(text) == expected


@pytest.mark.parametrize(("text", "expected"), test_parse_path.pytestmark[0].args[1])
def test_path_template_parse_equals_the_full_parse(text: str, expected: PatchPath) -> None:
    """Every path of the table gives the same result through the template cache, twice (miss, hit)."""
    from scim_bridge.scim.filter.parser import _parse

    assert parse_path(text) == _parse(text, "path", InvalidPath, "path") == expected
    assert parse_path(text) == expected


def test_paths_of_the_same_shape_share_one_parse() -> None:
    # What an IdP sends to remove a member: the same path but for the id, parsed once per process.
    from scim_bridge.scim.filter.parser import _parse_path_template

    parse_path('members[value eq "2819c223-7f76-453a-919d-413861904646"]')
    hits = _parse_path_template.cache_info().hits
    second = parse_path(r'members[value eq "a \"quoted\" \\ \u00000 id"]')
    assert second == PatchPath(p("members"), Compare(p("value"), "eq", 'a "quoted" \\ \x000 id'))
    assert _parse_path_template.cache_info().hits == hits + 1
    assert parse_path('emails[type eq "home"].value') == PatchPath(p("emails"), Compare(p("type"), "eq", "home"),
                                                                   "value")


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("", None, "empty"),
        ("a b", 3, "unexpected 'b'"),
        ('emails[type eq "w"].value.x', 26, "unexpected '.x'; expected end of input"),
        ('members[value eq "x"] extra', 23, "unexpected 'extra'"),
        ('members[value eq "x"', 21, "expected 'and', 'or' or ']'"),
        ("members[]", 9, "unexpected ']'"),
        ("name.givenName[x pr]", 1, "applies to a multi-valued attribute"),
        ('emails[type eq "a"]members', 20, "unexpected 'members'"),
    ],
)
def test_invalid_path(text: str, position: int | None, fragment: str) -> None:
    """Path errors raise InvalidPath with the position."""
    with pytest.raises(InvalidPath) as caught:
        parse_path(text)
    if position is not None:
        assert f"at position {position}:" in caught.value.detail
    assert fragment in caught.value.detail


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("userName", [p("userName")]),
        ("userName,emails", [p("userName"), p("emails")]),
        (" userName , name.givenName ,emails.value ", [p("userName"), p("name", "givenName"), p("emails", "value")]),
        (f"{ENTERPRISE}:employeeNumber,id", [p("employeeNumber", schema=ENTERPRISE), p("id")]),
        (f"{ENTERPRISE}:manager.displayName", [p("manager", "displayName", ENTERPRISE)]),
        ("members.$ref", [p("members", "$ref")]),
        ("", []),
        ("  ", []),
    ],
)
def test_parse_attribute_list(text: str, expected: list[AttrPath]) -> None:
    """``attributes``/``excludedAttributes`` (RFC 7644 §3.9)."""
    assert parse_attribute_list(text) == expected


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("a,,b", 3, "expected an attribute name"),
        ("a,", 3, "unexpected end of input"),
        ("a b", 3, "expected ',' or end of input"),
        ('emails[type eq "work"]', 7, "cannot be nested or used here"),
        ("name.givenName.x", 15, "unexpected '.x'"),
    ],
)
def test_invalid_attribute_list(text: str, position: int, fragment: str) -> None:
    """Attribute-list errors raise InvalidValue with the position."""
    with pytest.raises(InvalidValue) as caught:
        parse_attribute_list(text)
    assert f"at position {position}:" in caught.value.detail
    assert fragment in caught.value.detail


# -- filters that differ only in their strings share one parse ---------------------------------

def _full_parse(text: str) -> Filter:
    from scim_bridge.scim.filter.parser import _parse

    return _parse(text, "filter", InvalidFilter, "filter")  # type: ignore[no-any-return]


@pytest.mark.parametrize(("text", "expected"), test_parse_filter.pytestmark[0].args[1])
def test_template_parse_equals_the_full_parse(text: str, expected: Filter) -> None:
    """Every filter of the table gives the same AST through the template cache, twice (miss, hit)."""
    assert parse_filter(text) == _full_parse(text) == expected
    assert parse_filter(text) == expected


def test_same_shape_different_values_share_one_template() -> None:
    from scim_bridge.scim.filter.parser import _parse_template

    parse_filter('userName eq "first@example.com"')
    hits = _parse_template.cache_info().hits
    second = parse_filter('userName eq "sécond \\"quoted\\" \\\\ @example.com"')
    assert second == Compare(p("userName"), "eq", 'sécond "quoted" \\ @example.com')
    assert _parse_template.cache_info().hits == hits + 1
    both = parse_filter('emails[type eq "work" and value co "@x"] or userName eq "y"')
    assert both == Or(ValuePath(p("emails"), And(Compare(p("type"), "eq", "work"), Compare(p("value"), "co", "@x"))),
                      Compare(p("userName"), "eq", "y"))


@pytest.mark.parametrize(("text", "value"), [
    ('title eq "\\u00000"', "\x000"),            # a value that looks like a placeholder
    ('title eq "\\u0000"', "\x00"),
    ('title eq ""', ""),
    ('title eq "a\\/b\\n"', "a/b\n"),
])
def test_values_that_look_like_placeholders_stay_values(text: str, value: str) -> None:
    assert parse_filter(text) == Compare(p("title"), "eq", value)


def test_bare_values_are_not_mistaken_for_placeholders() -> None:
    # A raw NUL never reaches the template path; the full parse reads it as a bare word.
    text = 'title eq "abc" or nick eq \x000'
    assert parse_filter(text) == _full_parse(text)
