"""Response helpers shared by every route: 201 with ``Location``, and list paging parameters."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel

from spectra.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

Limit = Annotated[
    int | None,
    Query(ge=1, le=MAX_PAGE_SIZE, description=f"Page size, 1-{MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})."),
]
PageLimit = Annotated[int | None, Query(ge=1, le=MAX_PAGE_SIZE, description="Alias of limit.")]
ContinuationToken = Annotated[
    str | None,
    Query(min_length=1, max_length=4096, description="Token from the previous page's response."),
]


def documented_created(model: type[BaseModel]) -> dict[int, OpenAPIResponse]:
    """The OpenAPI ``responses`` of a create route: 201 with ``model``."""
    return {201: {"description": "Created", "content": {"application/json": {"model": model}}}}


def created(resource: BaseModel, location: str) -> Response[Any]:
    """201 Created with the full resource and its ``Location``."""
    return Response(
        status_code=201,
        content_type="application/json",
        body=resource,
        headers={"Location": location},
    )


def no_content() -> Response[Any]:
    """204 No Content."""
    return Response(status_code=204, content_type=None, body=None)
