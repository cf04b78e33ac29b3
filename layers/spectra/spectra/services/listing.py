"""Paging a list the same way everywhere: signed tokens bound to the org and the query."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from spectra.pagination import PageRequest, PageTokens, query_fingerprint
from spectra.repositories.dynamo import QueryPage
from spectra.tenancy.context import OrgContext


class PagedQuery(Protocol):
    def __call__(
        self,
        org: OrgContext,
        *,
        limit: int,
        start_after: Mapping[str, str] | None,
        keep: Callable[[dict[str, Any]], bool],
    ) -> QueryPage: ...


PageModel = TypeVar("PageModel", bound=BaseModel)


@dataclass(frozen=True)
class ListedPage:
    items: list[dict[str, Any]]
    continuation_token: str | None
    has_more: bool

    def to(self, page_type: type[PageModel], item: Callable[[dict[str, Any]], Any]) -> PageModel:
        """The API's ``{items, continuationToken, hasMore}`` with each record shown by ``item``."""
        return page_type.model_validate(
            {
                "items": [item(record) for record in self.items],
                "continuationToken": self.continuation_token,
                "hasMore": self.has_more,
            }
        )


def list_page(
    org: OrgContext,
    tokens: PageTokens,
    *,
    route: str,
    filters: Mapping[str, Any],
    page: PageRequest,
    query: PagedQuery,
    keep: Callable[[dict[str, Any]], bool],
) -> ListedPage:
    """One page of ``query``: the caller's token is checked before any read, the next one issued."""
    fingerprint = query_fingerprint(route, dict(filters))
    start = tokens.read(org, fingerprint, page.continuation_token) if page.continuation_token else None
    result = query(org, limit=page.limit, start_after=start, keep=keep)
    token = tokens.issue(org, fingerprint, result.resume_after) if result.resume_after else None
    return ListedPage(items=result.items, continuation_token=token, has_more=result.has_more)
