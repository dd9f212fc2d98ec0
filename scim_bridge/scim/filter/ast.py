"""The filter AST (RFC 7644 §3.4.2.2), produced by the parser and compiled to SQL by storage.

Names are exactly as the client spelled them; resolution against a schema (case-insensitive)
happens in the consumer, which is where unknown attributes are reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# A JSON literal from the filter: string, number, boolean or null.
Literal = str | int | float | bool | None

COMPARE_OPERATORS = ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le")


@dataclass(frozen=True, slots=True)
class AttrPath:
    """``[URI ":"]ATTRNAME["." subAttr]`` (RFC 7644 ABNF ``attrPath``)."""

    schema: str | None
    attr: str
    sub: str | None = None

    def __str__(self) -> str:
        text = f"{self.schema}:{self.attr}" if self.schema else self.attr
        return f"{text}.{self.sub}" if self.sub else text


@dataclass(frozen=True, slots=True)
class Compare:
    """``attrPath compareOp compValue``; ``op`` is lower-case."""

    path: AttrPath
    op: str
    value: Literal


@dataclass(frozen=True, slots=True)
class Present:
    """``attrPath "pr"``."""

    path: AttrPath


@dataclass(frozen=True, slots=True)
class And:
    """``filter "and" filter``."""

    left: Filter
    right: Filter


@dataclass(frozen=True, slots=True)
class Or:
    """``filter "or" filter``."""

    left: Filter
    right: Filter


@dataclass(frozen=True, slots=True)
class Not:
    """``"not" "(" filter ")"``."""

    expr: Filter


@dataclass(frozen=True, slots=True)
class ValuePath:
    """``attrPath "[" valFilter "]"``: *filter* applies to each element of the multi-valued *path*.

    Inside *filter*, paths are relative to the element (``emails[type eq "work"]`` holds
    ``AttrPath(None, "type")``).
    """

    path: AttrPath
    filter: Filter


Filter = Compare | Present | And | Or | Not | ValuePath


@dataclass(frozen=True, slots=True)
class PatchPath:
    """A PATCH ``path`` (RFC 7644 §3.5.2 ``PATH = attrPath / valuePath [subAttr]``).

    ``members``                      -> PatchPath(AttrPath(None, "members"))
    ``name.givenName``               -> PatchPath(AttrPath(None, "name", "givenName"))
    ``members[value eq "x"]``        -> PatchPath(AttrPath(None, "members"), filter=...)
    ``emails[type eq "work"].value`` -> PatchPath(AttrPath(None, "emails"), filter=..., sub_attr="value")
    """

    path: AttrPath
    filter: Filter | None = None
    sub_attr: str | None = None


def parse_datetime(text: str) -> datetime | None:
    """Parse an RFC 3339 / xsd:dateTime string; ``None`` if it is not one."""
    candidate = text.strip()
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(candidate)
    except ValueError:
        return None
