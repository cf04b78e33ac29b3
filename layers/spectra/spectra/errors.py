"""One error format: RFC 9457 problem+json, for every failure the API can return.

Domain code raises the typed exceptions below; ``spectra.http`` is the one place that turns them
into responses. A problem carries a stable ``code`` for machines, a human ``detail`` that never
holds a secret, a stack trace or another organization's id, and the request id for support.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

PROBLEM_CONTENT_TYPE = "application/problem+json"


@dataclass(frozen=True)
class FieldError:
    """One invalid input: where it is (``field``) and what is wrong with it."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class SpectraError(Exception):
    """Base of every error that becomes a problem+json response."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal Server Error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra or {}
        self.headers = headers or {}

    def problem(self, *, request_id: str | None, instance: str | None) -> dict[str, Any]:
        """The problem document for this error."""
        body: dict[str, Any] = {
            "type": f"urn:spectra:problem:{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance:
            body["instance"] = instance
        if request_id:
            body["requestId"] = request_id
        body.update(self.extra)
        return body


class BadRequest(SpectraError):
    status = 400
    code = "bad_request"
    title = "Bad Request"


class ValidationFailed(BadRequest):
    """The request is well-formed but its content breaks a rule; ``errors`` lists every problem."""

    code = "validation_failed"
    title = "Validation Failed"

    def __init__(self, errors: list[FieldError], detail: str | None = None) -> None:
        self.errors = errors
        super().__init__(
            detail or "The request has invalid fields; see errors.",
            extra={"errors": [error.as_dict() for error in errors]},
        )

    @classmethod
    def single(cls, field: str, message: str) -> ValidationFailed:
        """A validation failure about one field."""
        return cls([FieldError(field, message)], detail=f"{field}: {message}")


class MalformedBody(BadRequest):
    code = "malformed_body"
    title = "Malformed Request Body"


class InvalidPageToken(BadRequest):
    code = "invalid_continuation_token"
    title = "Invalid Continuation Token"


class Unauthorized(SpectraError):
    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class ScopeDenied(SpectraError):
    """The key is valid but its scopes do not cover this action on this resource."""

    status = 403
    code = "forbidden_scope"
    title = "Forbidden"


class NotFound(SpectraError):
    """Missing, malformed id, or another organization's resource: indistinguishable on purpose."""

    status = 404
    code = "not_found"
    title = "Not Found"


class MethodNotAllowed(SpectraError):
    status = 405
    code = "method_not_allowed"
    title = "Method Not Allowed"


class Conflict(SpectraError):
    status = 409
    code = "conflict"
    title = "Conflict"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


class PayloadTooLarge(SpectraError):
    status = 413
    code = "payload_too_large"
    title = "Payload Too Large"


class UnsupportedMediaType(SpectraError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported Media Type"


class RateLimited(SpectraError):
    status = 429
    code = "rate_limited"
    title = "Too Many Requests"


class InternalError(SpectraError):
    """Anything unexpected: the response says nothing more than the request id."""
