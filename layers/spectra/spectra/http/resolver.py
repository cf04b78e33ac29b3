"""The resolver every API function uses: org context, access check, body checks, problem+json.

Order of work for a request, before the route body runs:

1. the org context is built from the authorizer context (nothing else can name the org);
2. a token is taken from the org's bucket for the route's tier (429 when there is none); this
   comes before the scope check so that requests a key may not make still cost it, and so that
   every response carries the ``RateLimit-*`` headers of its tier;
3. the route's declared action and resource are checked against the key's scopes (403);
4. the body is checked: size (413), media type (415), UTF-8 and JSON (400);
5. Powertools validates path, query and body against the route's pydantic models (400 here,
   not Powertools' default 422, with every problem in ``errors[]``);
6. POST routes honour ``Idempotency-Key`` (see ``spectra.http.idempotency``).

After the route (or the refusal) has its response, the audit event is appended for routes that
change something and for refused requests (see ``spectra.http.audit``).

Every failure, including unknown routes (404), wrong methods (405) and unexpected exceptions
(500 with the request id and nothing else), is ``application/problem+json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder, Route
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError, ResponseValidationError
from aws_lambda_powertools.event_handler.request import Request

from spectra.audit.trail import AuditTrail
from spectra.auth.scopes import scopes_may_allow
from spectra.config import get_settings
from spectra.errors import (
    PROBLEM_CONTENT_TYPE,
    FieldError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    ScopeDenied,
    SpectraError,
    ValidationFailed,
)
from spectra.http.access import route_access
from spectra.http.audit import request_record
from spectra.http.body import check_request_body
from spectra.http.idempotency import REPLAYED_HEADER
from spectra.observability import logger
from spectra.ratelimits.bucket import Admission
from spectra.ratelimits.limiter import RateLimiter, refusal
from spectra.tenancy.context import OrgContext

ORG_CONTEXT_KEY = "org"
RATE_LIMIT_CONTEXT_KEY = "rateLimit"


class SpectraResolver(APIGatewayRestResolver):
    """``APIGatewayRestResolver`` with Spectra's tenancy, access and error rules built in."""

    def __init__(
        self,
        *,
        max_body_bytes: int | None = None,
        rate_limiter: Callable[[], RateLimiter | None] = lambda: None,
        audit_trail: Callable[[], AuditTrail | None] = lambda: None,
    ) -> None:
        # A response that breaks its own model is our bug: 500, never a 400 blaming the caller.
        super().__init__(enable_validation=True, response_validation_error_http_code=HTTPStatus.INTERNAL_SERVER_ERROR)
        self._max_body_bytes = max_body_bytes
        self._rate_limiter = rate_limiter
        self._audit_trail = audit_trail
        self.exception_handler(SpectraError)(self._handle_spectra_error)
        self.exception_handler(RequestValidationError)(self._handle_validation_error)
        self.exception_handler(ResponseValidationError)(self._handle_invalid_response)
        self.exception_handler(NotFoundError)(self._handle_unknown_route)
        self.exception_handler(Exception)(self._handle_unexpected_error)

    def limit_with(self, rate_limiter: Callable[[], RateLimiter | None]) -> None:
        """Use another rate limiter (``lambda: None``: none), e.g. to measure what it costs."""
        self._rate_limiter = rate_limiter

    # -- route registry -----------------------------------------------------------------------

    def registered_routes(self) -> list[Route]:
        """Every route this resolver serves (the security tests build their matrices from it)."""
        return [*self._static_routes, *self._dynamic_routes]

    # -- request pipeline ---------------------------------------------------------------------

    def _call_route(self, route: Route, route_arguments: dict[str, str]) -> ResponseBuilder[Any]:
        builder: ResponseBuilder[Any] | None = None
        if route in self.registered_routes():
            try:
                self._admit(route, route_arguments)
            except SpectraError as error:
                builder = self._response_builder_class(
                    response=self.problem(error), serializer=self._serializer, route=route
                )
        if builder is None:
            builder = super()._call_route(route, route_arguments)
        self._audit(route, route_arguments, builder.response)
        return self._with_rate_limit_headers(builder)

    def _audit(self, route: Route, route_arguments: dict[str, str], response: Response[Any]) -> None:
        """Append the request's audit event, if it is one the audit log records."""
        org = self.context.get(ORG_CONTEXT_KEY)
        declared = route_access(route.func)
        trail = self._audit_trail()
        if not isinstance(org, OrgContext) or declared is None or trail is None:
            return
        headers = response.headers or {}
        if headers.get(REPLAYED_HEADER) == "true":
            return  # a replay changes nothing; the original request was recorded
        location = headers.get("Location")
        record = request_record(
            org,
            declared=declared,
            method=self.current_event.http_method,
            route_path=route.path,
            path_arguments=route_arguments,
            status=response.status_code,
            location=location if isinstance(location, str) else None,
            body=self._body_text(),
        )
        if record is not None:
            trail.record(org, record)

    def _with_rate_limit_headers(self, builder: ResponseBuilder[Any]) -> ResponseBuilder[Any]:
        admission = self.context.get(RATE_LIMIT_CONTEXT_KEY)
        if isinstance(admission, Admission):
            builder.response.headers.update(admission.headers())
        return builder

    def _admit(self, route: Route, route_arguments: dict[str, str]) -> None:
        """Everything that must hold before validation and the route body run."""
        event = self.current_event
        request_context = event.raw_event.get("requestContext") or {}
        org = OrgContext.from_authorizer(
            request_context.get("authorizer"),
            request_id=str(request_context.get("requestId", "")),
            source_ip=str((request_context.get("identity") or {}).get("sourceIp", "")),
        )
        self.context[ORG_CONTEXT_KEY] = org
        logger.append_keys(org_id=org.org_id, key_id=org.key_id)

        declared = route_access(route.func)
        if declared is None:
            logger.error("Route has no access declaration; refusing it", route=route.path)
            raise InternalError()
        limiter = self._rate_limiter()
        admission = limiter.admit(org, declared.tier) if limiter is not None else None
        if admission is not None:
            self.context[RATE_LIMIT_CONTEXT_KEY] = admission
            if not admission.allowed:
                raise refusal(admission)
        if declared.action is not None and not scopes_may_allow(
            org.scopes, declared.action, declared.paths(route_arguments)
        ):
            raise ScopeDenied(f"This API key's scopes do not allow '{declared.action.value}' here.")

        check_request_body(
            method=event.http_method,
            body=event.body,
            is_base64_encoded=bool(event.is_base64_encoded),
            content_type=event.headers.get("content-type") or event.headers.get("Content-Type"),
            max_bytes=self._max_body_bytes or get_settings().max_body_bytes,
        )

    def _body_text(self) -> str | None:
        """The request body as text, or ``None`` (absent, or not text: then no field names)."""
        try:
            return self.current_event.decoded_body if self.current_event.body else None
        except (UnicodeDecodeError, ValueError):
            return None

    # -- problem+json -------------------------------------------------------------------------

    def problem(self, error: SpectraError) -> Response[str]:
        """The problem+json response for ``error`` in the current request."""
        request_context = self.current_event.raw_event.get("requestContext") or {}
        body = error.problem(
            request_id=request_context.get("requestId"),
            instance=self.current_event.path,
        )
        return Response(
            status_code=error.status,
            content_type=PROBLEM_CONTENT_TYPE,
            body=json.dumps(body),
            headers=dict(error.headers),
        )

    def _handle_spectra_error(self, error: SpectraError) -> Response[str]:
        if error.status >= 500:
            logger.error("Request failed", code=error.code)
        return self.problem(error)

    def _handle_validation_error(self, error: RequestValidationError) -> Response[str]:
        return self.problem(ValidationFailed([_field_error(item) for item in error.errors()]))

    def _handle_invalid_response(self, error: ResponseValidationError) -> Response[str]:
        logger.error("Response does not match its model", errors=[e.get("loc") for e in error.errors()])
        return self.problem(InternalError("An internal error occurred; quote the requestId to support."))

    def _handle_unknown_route(self, _error: NotFoundError) -> Response[str]:
        path = self._remove_prefix(self.current_event.path)
        allowed = sorted({r.method for r in self.registered_routes() if r.rule.match(path)})
        if allowed:
            return self.problem(
                MethodNotAllowed(
                    f"{self.current_event.http_method} is not allowed here.",
                    headers={"Allow": ", ".join(allowed)},
                )
            )
        return self.problem(NotFound("No such route."))

    def _handle_unexpected_error(self, _error: Exception) -> Response[str]:
        logger.exception("Unhandled error")
        return self.problem(InternalError("An internal error occurred; quote the requestId to support."))


def _field_error(item: dict[str, Any]) -> FieldError:
    location = [str(part) for part in item.get("loc", ())]
    source = location[0] if location else "body"
    parts = location[1:] if source in {"body", "query", "path", "header"} else location
    field = ""
    for part in parts:
        field += f"[{part}]" if part.isdigit() else (f".{part}" if field else part)
    kind = item.get("type", "")
    if kind == "extra_forbidden":
        message = "Unknown field."
    elif kind == "missing" and not field:
        message = "A JSON request body is required."
    else:
        message = str(item.get("msg", "Invalid value."))
    return FieldError(field or source, message)


def current_org(request: Request) -> OrgContext:
    """The calling org, as the resolver established it (for ``Depends``)."""
    org = request.context.get(ORG_CONTEXT_KEY)
    if not isinstance(org, OrgContext):
        raise InternalError()
    return org


CurrentOrg = Annotated[OrgContext, Depends(current_org)]
"""Route parameter type that injects the calling org: ``def route(org: CurrentOrg)``."""


def current_admission(request: Request) -> Admission | None:
    """The rate-limit decision the resolver made for this request (``None`` if it failed open)."""
    admission = request.context.get(RATE_LIMIT_CONTEXT_KEY)
    return admission if isinstance(admission, Admission) else None


CurrentAdmission = Annotated[Admission | None, Depends(current_admission)]
"""Route parameter type that injects this request's rate-limit decision."""
