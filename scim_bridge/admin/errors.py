"""Errors of admin operations: each carries an HTTP status, a stable code and a CLI exit code."""

from __future__ import annotations

from typing import Any
from typing import ClassVar


class AdminError(Exception):
    """An admin operation was refused; ``message`` is meant for a person, ``code`` for a script."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "invalid_request"
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidInput(AdminError):
    """The request itself is wrong (an empty name, a malformed file, an org_id the profile refuses)."""


class NotFound(AdminError):
    """The org, user, group or plan does not exist in this tenant."""

    status = 404
    code = "not_found"
    exit_code = 3


class Conflict(AdminError):
    """The change collides with the current state (a taken org_id, an existing link)."""

    status = 409
    code = "conflict"


class Refused(AdminError):
    """A rule forbids the change (deleting an IdP-managed org, removing an IdP membership by hand)."""

    status = 409
    code = "refused"


class StalePlan(AdminError):
    """The data changed since the plan was made: make a new plan and review it."""

    status = 409
    code = "stale_plan"
    exit_code = 4


class PlanFailed(AdminError):
    """Applying the plan failed part-way; nothing of it was kept."""

    status = 409
    code = "plan_failed"
