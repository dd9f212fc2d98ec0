"""Parse SCIM filters, PATCH paths and attribute lists into the AST of :mod:`.ast`.

Grammar: ``grammar.lark`` next to this module (RFC 7644 §3.4.2.2, §3.5.2, §3.9/§3.10). The Lark
LALR parser is built once at import; the AST is built by an inline transformer while parsing, so
no parse tree is kept and nothing recurses over the input.

Every failure is a :class:`~scim_bridge.scim.errors.ScimError` whose detail names the character
position (1-based) and what was expected there; Lark exceptions never escape.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from typing import Any
from typing import NoReturn

from lark import Lark
from lark import Token
from lark import Transformer
from lark.exceptions import UnexpectedCharacters
from lark.exceptions import UnexpectedInput
from lark.exceptions import UnexpectedToken

from scim_bridge.scim.errors import InvalidFilter
from scim_bridge.scim.errors import InvalidPath
from scim_bridge.scim.errors import InvalidValue
from scim_bridge.scim.errors import ScimError
from scim_bridge.scim.filter.ast import And
from scim_bridge.scim.filter.ast import AttrPath
from scim_bridge.scim.filter.ast import Compare
from scim_bridge.scim.filter.ast import Filter
from scim_bridge.scim.filter.ast import Literal
from scim_bridge.scim.filter.ast import Not
from scim_bridge.scim.filter.ast import Or
from scim_bridge.scim.filter.ast import PatchPath
from scim_bridge.scim.filter.ast import Present
from scim_bridge.scim.filter.ast import ValuePath

# Limits on untrusted input. The LALR parser itself does not recurse, but every consumer of the
# AST (SQL compilation, PATCH evaluation, SQLAlchemy's own compiler) does.
MAX_FILTER_LENGTH = 4096
MAX_NESTING_DEPTH = 50

__all__ = [
    "MAX_FILTER_LENGTH",
    "MAX_NESTING_DEPTH",
    "parse_attribute_list",
    "parse_filter",
    "parse_path",
]

# What to call each terminal in "expected ..." messages, in the order they are listed.
_EXPECTED_NAMES = {
    "ATTR_PATH": "an attribute name",
    "_NOT": "'not'",
    "LPAR": "'('",
    "COMPARE_OP": "an operator (eq, ne, co, sw, ew, gt, ge, lt, le)",
    "_PR": "'pr'",
    "LSQB": "'['",
    "STRING": "a string",
    "NUMBER": "a number",
    "TRUE": "true",
    "FALSE": "false",
    "NULL": "null",
    "BARE_VALUE": "",
    "_AND": "'and'",
    "_OR": "'or'",
    "RPAR": "')'",
    "RSQB": "']'",
    "SUB_ATTR": "'.' and a sub-attribute",
    "COMMA": "','",
    "$END": "end of input",
}


class _ToAst(Transformer[Token, Any]):
    """Build AST nodes bottom-up as the LALR parser reduces (used inline, so stateless)."""

    def or_exp(self, children: list[Filter]) -> Filter:
        return _balanced(Or, children)

    def and_exp(self, children: list[Filter]) -> Filter:
        return _balanced(And, children)

    val_or_exp = or_exp
    val_and_exp = and_exp

    def not_exp(self, children: list[Filter]) -> Filter:
        return Not(children[0])

    def present(self, children: list[Token]) -> Filter:
        return Present(_attr_path(children[0]))

    def compare(self, children: list[Any]) -> Filter:
        path, op, value = children
        return Compare(_attr_path(path), str(op).lower(), value)

    def value_path(self, children: list[Any]) -> Filter:
        token, inner = children
        path = _attr_path(token)
        if path.sub is not None:
            _fail_at(token, f"a value filter applies to a multi-valued attribute, not to '{path}'")
        return ValuePath(path, inner)

    def false(self, _children: list[Token]) -> Literal:
        return False

    def true(self, _children: list[Token]) -> Literal:
        return True

    def null(self, _children: list[Token]) -> Literal:
        return None

    def number(self, children: list[Token]) -> Literal:
        text = str(children[0])
        if any(c in text for c in ".eE"):
            number = float(text)
            if not math.isfinite(number):
                _fail_at(children[0], f"the number {text} is out of range")
            return number
        return int(text)

    def bare(self, children: list[Token]) -> Literal:
        # The lenient unquoted form (see BARE_VALUE in the grammar) is a string.
        return str(children[0])

    def string(self, children: list[Token]) -> Literal:
        token = children[0]
        # The terminal only admits valid JSON strings, so json.loads cannot fail; it does accept
        # lone surrogates ("\ud800"), which no database can store or compare.
        value: str = json.loads(str(token))
        if any("\ud800" <= c <= "\udfff" for c in value):
            _fail_at(token, "the string contains an unpaired UTF-16 surrogate escape")
        return value

    def path(self, children: list[Any]) -> PatchPath:
        if len(children) == 1:
            return PatchPath(_attr_path(children[0]))
        token, inner, sub = children
        path = _attr_path(token)
        if path.sub is not None:
            _fail_at(token, f"a value filter applies to a multi-valued attribute, not to '{path}'")
        return PatchPath(path, inner, str(sub)[1:] if sub is not None else None)

    def attr_list(self, children: list[Token]) -> list[AttrPath]:
        return [_attr_path(token) for token in children]


class _PositionedError(Exception):
    """A semantic error found while building the AST, at a token's position."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message


def _fail_at(token: Token, message: str) -> NoReturn:
    raise _PositionedError((token.start_pos or 0) + 1, message)


def _attr_path(token: Token) -> AttrPath:
    """Split an ATTR_PATH token: the URN ends at the last ":", the sub-attribute follows a "."."""
    text = str(token)
    schema, _, rest = text.rpartition(":")
    attr, _, sub = rest.partition(".")
    return AttrPath(schema or None, attr, sub or None)


def _balanced(cls: type[And] | type[Or], items: list[Filter]) -> Filter:
    """Fold a chain ``a op b op c ...`` into a balanced tree (depth log2(n), not n).

    ``and``/``or`` are associative, so the shape does not change the meaning; a left-deep tree of
    a few hundred terms would make every recursive consumer of the AST overflow the stack. Short
    chains keep the familiar left-associative shape: ``a or b or c`` is ``Or(Or(a, b), c)``.
    """
    if len(items) == 1:
        return items[0]
    middle = (len(items) + 1) // 2
    return cls(_balanced(cls, items[:middle]), _balanced(cls, items[middle:]))


_GRAMMAR = resources.files("scim_bridge.scim.filter").joinpath("grammar.lark").read_text(encoding="utf-8")
_PARSER = Lark(
    _GRAMMAR,
    parser="lalr",
    lexer="contextual",
    start=["filter", "path", "attr_list"],
    transformer=_ToAst(),
    maybe_placeholders=True,
)


def parse_filter(text: str) -> Filter:
    """Parse a ``filter`` (RFC 7644 §3.4.2.2) into an AST; raise InvalidFilter with the position.

    Filters that differ only in their string values (``userName eq "…"``, what IdPs send on every
    lookup) share one parse: the strings are cut out, the remaining template is parsed once and
    cached, and the values are put back into a copy of its AST. Anything unusual (an invalid
    string, a lone surrogate) goes through the full parse, which also words every error.
    """
    cut = _templated(text)
    if cut is not None:
        template, values = cut
        try:
            return _fill(_parse_template(template), values)  # type: ignore[no-any-return]
        except ScimError:
            pass  # the full parse words the error
    return _parse(text, "filter", InvalidFilter, "filter")  # type: ignore[no-any-return]


def _templated(text: str) -> tuple[str, dict[str, str]] | None:
    """Cut the strings out of *text*: its template (strings as placeholders) and their values.

    ``None`` for anything unusual (too long, blank, a NUL, a quote outside a valid string, a lone
    surrogate), which goes through the full parse instead.
    """
    if len(text) > MAX_FILTER_LENGTH or not text.strip() or "\x00" in text:
        return None
    literals: list[str] = []

    def cut(match: re.Match[str]) -> str:
        literals.append(match.group(0))
        return f'"\\u0000{len(literals) - 1}"'

    template = _STRING.sub(cut, text)
    if template.count('"') != 2 * len(literals):
        return None  # a quote outside any valid string
    # A string without escapes is its text between the quotes (the STRING terminal allows no
    # control character or bare quote in it); only escaped ones need the JSON decoder.
    values = {f"\x00{i}": json.loads(literal) if "\\" in literal else literal[1:-1]
              for i, literal in enumerate(literals)}
    if any(_SURROGATE.search(value) for value in values.values()):
        return None
    return template, values


@lru_cache(maxsize=1024)
def _parse_template(template: str) -> Filter:
    """Parse a filter whose strings are placeholders (cached: it is immutable and shared)."""
    return _parse(template, "filter", InvalidFilter, "filter")  # type: ignore[no-any-return]


@lru_cache(maxsize=1024)
def _parse_path_template(template: str) -> PatchPath:
    """Parse a PATCH path whose strings are placeholders (cached, as :func:`_parse_template`)."""
    return _parse(template, "path", InvalidPath, "path")  # type: ignore[no-any-return]


_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"')
"""The grammar's STRING terminal."""
_SURROGATE = re.compile("[\ud800-\udfff]")
"""A lone surrogate (from the text or a ``\\u`` escape): not a character PostgreSQL can store."""


def _fill(node: Any, values: dict[str, str]) -> Any:
    """Return *node* with every placeholder string replaced by its value (nodes are frozen: copies)."""
    if isinstance(node, str):
        return values.get(node, node)
    if isinstance(node, Compare):
        return Compare(node.path, node.op, _fill(node.value, values))
    if isinstance(node, And | Or):
        return type(node)(_fill(node.left, values), _fill(node.right, values))
    if isinstance(node, Not):
        return Not(_fill(node.expr, values))
    if isinstance(node, ValuePath):
        return ValuePath(node.path, _fill(node.filter, values))
    return node  # Present, and literals that are not strings


def parse_path(text: str) -> PatchPath:
    """Parse a PATCH ``path`` (RFC 7644 §3.5.2); raise InvalidPath with the position.

    Paths that differ only in their filter's strings (``members[value eq "…"]``, what IdPs send
    to remove a member) share one parse, as filters do (:func:`parse_filter`).
    """
    cut = _templated(text)
    if cut is not None:
        template, values = cut
        try:
            shape = _parse_path_template(template)
        except ScimError:
            pass  # the full parse words the error
        else:
            if shape.filter is None:
                return shape
            return PatchPath(shape.path, _fill(shape.filter, values), shape.sub_attr)
    return _parse(text, "path", InvalidPath, "path")  # type: ignore[no-any-return]


def parse_attribute_list(text: str) -> list[AttrPath]:
    """Parse ``attributes``/``excludedAttributes`` (RFC 7644 §3.9) into paths; raise InvalidValue.

    An empty or blank value is an empty list (the parameter was given without names).
    """
    if not text.strip():
        return []
    return list(_parse_attribute_list(text))


@lru_cache(maxsize=256)
def _parse_attribute_list(text: str) -> tuple[AttrPath, ...]:
    """Parse one attribute list once per process: clients send the same few on every request.

    The paths are immutable; a failed parse raises, and errors are not cached.
    """
    return tuple(_parse(text, "attr_list", InvalidValue, "attribute list"))


def _parse(text: str, start: str, error: type[ScimError], what: str) -> Any:
    if len(text) > MAX_FILTER_LENGTH:
        raise error(f"Invalid {what}: it is {len(text)} characters long; the limit is {MAX_FILTER_LENGTH}")
    if not text.strip():
        raise error(f"Invalid {what}: it is empty")
    _check_nesting(text, error, what)
    try:
        return _PARSER.parse(text, start=start)
    except _PositionedError as exc:
        raise error(f"Invalid {what} at position {exc.position}: {exc.message}") from None
    except UnexpectedInput as exc:
        raise error(_describe(exc, text, what, start)) from None


def _check_nesting(text: str, error: type[ScimError], what: str) -> None:
    """Reject more than MAX_NESTING_DEPTH nested "(" / "[" before parsing (strings skipped)."""
    depth = 0
    for index, (char, in_string) in enumerate(_scan(text)):
        if in_string:
            continue
        if char in "([":
            depth += 1
            if depth > MAX_NESTING_DEPTH:
                raise error(
                    f"Invalid {what} at position {index + 1}: parentheses and brackets are nested more "
                    f"than {MAX_NESTING_DEPTH} levels deep"
                )
        elif char in ")]":
            depth -= 1


def _describe(exc: UnexpectedInput, text: str, what: str, start: str) -> str:
    """Turn a Lark error into "Invalid filter at position N: unexpected X; expected Y"."""
    if isinstance(exc, UnexpectedCharacters):
        index = exc.pos_in_stream
        if text[index] == '"':
            return (
                f"Invalid {what} at position {index + 1}: malformed string (a missing closing quote, an "
                "invalid escape or a control character; strings use JSON syntax)"
            )
        found = _excerpt(text, index)
    elif isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        index = exc.token.start_pos or 0
        found = _excerpt(text, index)
    else:
        index = len(text)
        found = "end of input"
    expected = _expected(_acceptable(exc, text[:index], start))
    if found.startswith("'["):
        expected += ' (a value filter "[...]" cannot be nested or used here)'
    return f"Invalid {what} at position {index + 1}: unexpected {found}; expected {expected}"


# Terminals that may follow a complete input of each start rule.
_COMPLETE = {"filter": {"_AND", "_OR", "$END"}, "path": {"SUB_ATTR", "$END"}, "attr_list": {"COMMA", "$END"}}


def _acceptable(exc: UnexpectedInput, before: str, start: str) -> set[str]:
    """Return the terminals the parser would have accepted after *before*, where it failed."""
    state = getattr(exc, "state", None)
    try:
        actions = state.parse_conf.parse_table.states[state.position]  # type: ignore[union-attr]
    except (AttributeError, KeyError, TypeError):
        actions = None
    if actions is not None:
        # Terminals are upper-case (optionally "_"-prefixed); rule names are lower-case.
        names = {name for name in actions if name == "$END" or name.lstrip("_")[:1].isupper()}
        # An empty action table is the accept state: the input was complete before this token.
        names = names or set(_COMPLETE[start])
    else:
        expected = getattr(exc, "expected", None) or getattr(exc, "allowed", None) or set()
        names = {"$END" if name == "<END-OF-FILE>" else name for name in expected}
    # LALR merges look-ahead sets of similar states, so ")" or "]" can be listed where nothing is
    # open; drop them unless one is actually open at the error.
    open_parens, open_brackets = _open_groups(before)
    if not open_parens:
        names.discard("RPAR")
    if not open_brackets:
        names.discard("RSQB")
    if open_parens or open_brackets:
        names.discard("$END")
    return names


def _open_groups(text: str) -> tuple[int, int]:
    """Count the "(" and "[" left open in *text*, ignoring quoted strings."""
    parens = brackets = 0
    for char, in_string in _scan(text):
        if in_string:
            continue
        if char == "(":
            parens += 1
        elif char == ")":
            parens -= 1
        elif char == "[":
            brackets += 1
        elif char == "]":
            brackets -= 1
    return max(parens, 0), max(brackets, 0)


def _scan(text: str) -> Iterator[tuple[str, bool]]:
    """Yield each character with whether it lies inside a JSON string (quotes count as inside)."""
    in_string = escaped = False
    for char in text:
        if in_string:
            yield char, True
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        else:
            in_string = char == '"'
            yield char, in_string


def _excerpt(text: str, index: int) -> str:
    """Quote the input from *index*, up to the next whitespace (at most 20 characters)."""
    rest = text[index:]
    word = rest.split(None, 1)[0] if rest.strip() else rest
    if len(word) > 20:
        word = word[:20] + "..."
    return repr(word)


def _expected(names: set[str] | frozenset[str]) -> str:
    known = [label for name, label in _EXPECTED_NAMES.items() if name in names and label]
    unknown = sorted(name for name in names if name not in _EXPECTED_NAMES)
    labels = known + unknown
    if not labels:
        return "nothing more"
    if len(labels) == 1:
        return labels[0]
    return ", ".join(labels[:-1]) + " or " + labels[-1]
