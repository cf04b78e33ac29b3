"""Errors: one problem+json shape (RFC 9457) with a stable code for every failure."""

from __future__ import annotations

import pytest

from spectra.errors import (
    BadRequest,
    Conflict,
    FieldError,
    IdempotencyKeyReused,
    InternalError,
    InvalidPageToken,
    MalformedBody,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ScopeDenied,
    SpectraError,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)

REQUEST_ID = "c0ffee00-0000-4000-8000-000000000001"
INSTANCE = "/v2/things/9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"


def test_problem_has_every_documented_member() -> None:
    problem = NotFound("No such thing.").problem(request_id=REQUEST_ID, instance=INSTANCE)
    assert problem == {
        "type": "urn:spectra:problem:not_found",
        "title": "Not Found",
        "status": 404,
        "detail": "No such thing.",
        "code": "not_found",
        "instance": INSTANCE,
        "requestId": REQUEST_ID,
    }


def test_problem_omits_unknown_instance_and_request_id() -> None:
    problem = Conflict("Name taken.").problem(request_id=None, instance=None)
    assert "instance" not in problem
    assert "requestId" not in problem


def test_detail_defaults_to_the_title() -> None:
    error = ScopeDenied()
    assert error.detail == "Forbidden"
    assert str(error) == "Forbidden"
    assert error.problem(request_id=None, instance=None)["detail"] == "Forbidden"


def test_extra_members_are_added_to_the_problem() -> None:
    error = RateLimited("Slow down.", extra={"tier": "standard", "limit": 60, "retryAfterSeconds": 3})
    problem = error.problem(request_id=REQUEST_ID, instance=None)
    assert problem["tier"] == "standard"
    assert problem["limit"] == 60
    assert problem["retryAfterSeconds"] == 3


def test_headers_are_carried_for_the_response() -> None:
    assert RateLimited(headers={"Retry-After": "3"}).headers == {"Retry-After": "3"}


def test_validation_failed_lists_every_field_error() -> None:
    error = ValidationFailed([FieldError("name", "is required"), FieldError("scopes[0].action", "unknown action")])
    problem = error.problem(request_id=REQUEST_ID, instance=INSTANCE)
    assert problem["status"] == 400
    assert problem["code"] == "validation_failed"
    assert problem["errors"] == [
        {"field": "name", "message": "is required"},
        {"field": "scopes[0].action", "message": "unknown action"},
    ]


def test_validation_failed_for_one_field_names_it_in_the_detail() -> None:
    error = ValidationFailed.single("limit", "must be between 1 and 100")
    assert error.detail == "limit: must be between 1 and 100"
    assert error.errors == [FieldError("limit", "must be between 1 and 100")]
    assert error.problem(request_id=None, instance=None)["errors"] == [
        {"field": "limit", "message": "must be between 1 and 100"}
    ]


def test_internal_error_says_nothing_more_than_its_title() -> None:
    problem = InternalError().problem(request_id=REQUEST_ID, instance=None)
    assert problem == {
        "type": "urn:spectra:problem:internal_error",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "Internal Server Error",
        "code": "internal_error",
        "requestId": REQUEST_ID,
    }


@pytest.mark.parametrize(
    ("error_class", "status", "code"),
    [
        (SpectraError, 500, "internal_error"),
        (InternalError, 500, "internal_error"),
        (BadRequest, 400, "bad_request"),
        (MalformedBody, 400, "malformed_body"),
        (InvalidPageToken, 400, "invalid_continuation_token"),
        (Unauthorized, 401, "unauthorized"),
        (ScopeDenied, 403, "forbidden_scope"),
        (NotFound, 404, "not_found"),
        (MethodNotAllowed, 405, "method_not_allowed"),
        (Conflict, 409, "conflict"),
        (IdempotencyKeyReused, 409, "idempotency_key_reused"),
        (PayloadTooLarge, 413, "payload_too_large"),
        (UnsupportedMediaType, 415, "unsupported_media_type"),
        (RateLimited, 429, "rate_limited"),
    ],
)
def test_error_status_and_code(error_class: type[SpectraError], status: int, code: str) -> None:
    problem = error_class("detail").problem(request_id=None, instance=None)
    assert (problem["status"], problem["code"], problem["type"]) == (status, code, f"urn:spectra:problem:{code}")


def test_validation_failed_status_and_code() -> None:
    problem = ValidationFailed([]).problem(request_id=None, instance=None)
    assert (problem["status"], problem["code"]) == (400, "validation_failed")


@pytest.mark.parametrize("error_class", [ValidationFailed, MalformedBody, InvalidPageToken])
def test_bad_request_family_is_caught_as_bad_request(error_class: type[SpectraError]) -> None:
    assert issubclass(error_class, BadRequest)
