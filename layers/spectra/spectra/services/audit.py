"""Reading an org's audit log: filtered pages, newest first, and verification of its chain."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from spectra.audit.chain import verify_kept
from spectra.audit.store import AuditLog
from spectra.errors import ValidationFailed
from spectra.models.audit import AuditEvent, AuditEventPage, AuditVerification
from spectra.models.common import from_iso
from spectra.pagination import PageRequest, PageTokens
from spectra.services.listing import list_page
from spectra.tenancy.context import OrgContext

FILTER_FIELDS = ("action", "resourceType", "resourceId", "actorKeyId")


def _window(start: datetime | None, end: datetime | None) -> None:
    if start and end and start > end:
        raise ValidationFailed.single("from", "from must not be after to")


def _within(event: Mapping[str, Any], start: datetime | None, end: datetime | None) -> bool:
    moment = from_iso(str(event["time"]))
    return (start is None or moment >= start) and (end is None or moment <= end)


class AuditService:
    def __init__(self, log: AuditLog, *, page_tokens: PageTokens) -> None:
        self._log = log
        self._page_tokens = page_tokens

    def list_events(
        self,
        org: OrgContext,
        *,
        start: datetime | None,
        end: datetime | None,
        filters: Mapping[str, str | None],
        page: PageRequest,
    ) -> AuditEventPage:
        """The org's events newest first, those matching every filter given."""
        _window(start, end)
        wanted = {name: value for name, value in filters.items() if value is not None}

        def keep(event: dict[str, Any]) -> bool:
            return _within(event, start, end) and all(event.get(name) == value for name, value in wanted.items())

        listed = list_page(
            org,
            self._page_tokens,
            route="audit-events",
            filters={**wanted, "from": start.isoformat() if start else None, "to": end.isoformat() if end else None},
            page=page,
            query=self._log.page,
            keep=keep,
        )
        return listed.to(AuditEventPage, lambda event: AuditEvent.model_validate(event))

    def verify(self, org: OrgContext, *, start: datetime | None, end: datetime | None) -> AuditVerification:
        """Recompute the chain over the events in ``[start, end]``, each linked to the one before
        it (the event just before the range included). Once older events have expired, the oldest
        one kept starts the chain, if the event before it has expired too."""
        _window(start, end)
        previous: dict[str, Any] | None = None
        stretch: list[dict[str, Any]] = []
        for event in self._log.events(org):
            if start is not None and from_iso(str(event["time"])) < start and not stretch:
                previous = event
                continue
            if end is not None and from_iso(str(event["time"])) > end:
                break
            stretch.append(event)
        result = verify_kept(stretch, now=int(self._log.now().timestamp()), previous=previous)
        return AuditVerification(
            valid=result.valid, checked=result.checked, firstBrokenEventId=result.first_broken_event_id
        )
