"""SCIM protocol errors (RFC 7644 §3.12), each with its HTTP status and ``scimType``."""

from __future__ import annotations

from typing import ClassVar

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    """Base of every error the SCIM layer reports to a client."""

    status: ClassVar[int] = 400
    scim_type: ClassVar[str | None] = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def to_body(self) -> dict[str, object]:
        """Render the RFC 7644 §3.12 error body (``status`` is a string)."""
        body: dict[str, object] = {"schemas": [ERROR_SCHEMA], "status": str(self.status), "detail": self.detail}
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body


class InvalidFilter(ScimError):
    """The filter syntax was invalid or the filter names an unknown attribute."""

    scim_type = "invalidFilter"


class TooMany(ScimError):
    """The filter yields more results than the server is willing to compute."""

    scim_type = "tooMany"


class Uniqueness(ScimError):
    """One or more unique attribute values are already in use."""

    status = 409
    scim_type = "uniqueness"


class Mutability(ScimError):
    """The request tries to change a readOnly or immutable attribute."""

    scim_type = "mutability"


class InvalidSyntax(ScimError):
    """The request body structure was invalid or did not conform to the schema."""

    scim_type = "invalidSyntax"


class InvalidPath(ScimError):
    """The path attribute was invalid or malformed."""

    scim_type = "invalidPath"


class NoTarget(ScimError):
    """The path did not yield an attribute or value that could be operated on."""

    scim_type = "noTarget"


class InvalidValue(ScimError):
    """A required value was missing, or the value was not compatible with the attribute."""

    scim_type = "invalidValue"


class InvalidVersion(ScimError):
    """The specified SCIM protocol version is not supported."""

    scim_type = "invalidVers"


class Sensitive(ScimError):
    """The request cannot be completed because of sensitive information in the URI."""

    status = 403
    scim_type = "sensitive"


class NotFound(ScimError):
    """The resource does not exist (or belongs to another tenant, which is the same to the client)."""

    status = 404


class PreconditionFailed(ScimError):
    """``If-Match`` did not match the resource's current version."""

    status = 412
    scim_type = "preconditionFailed"


class TooLarge(ScimError):
    """The request body exceeds the configured limit."""

    status = 413
    scim_type = "tooLarge"


class Unauthorized(ScimError):
    """Authentication is missing or invalid."""

    status = 401


class Forbidden(ScimError):
    """The credential is valid but lacks the required scope."""

    status = 403


class UnsupportedMediaType(ScimError):
    """The request body's Content-Type is not JSON."""

    status = 415
    scim_type = "invalidSyntax"
