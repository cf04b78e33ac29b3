"""Audit events and chain verification as the API shows them."""

from __future__ import annotations

from pydantic import Field

from spectra.models.common import Page, ResponseModel, Timestamp


class AuditEvent(ResponseModel):
    eventId: str
    sequence: int = Field(description="Position in the org's chain, from 1")
    time: Timestamp
    actorKeyId: str
    action: str
    resourceType: str
    resourceId: str | None = None
    outcome: str
    requestId: str = ""
    sourceIp: str = ""
    changes: list[str] = Field(default_factory=list, description="Names of the fields that changed (never values)")
    expiresAt: int | None = Field(default=None, description="When retention removes it (epoch seconds)")
    hash: str = Field(description="SHA-256 of this event")
    previousHash: str = Field(description="SHA-256 of the event before it (64 zeros for the first)")
    previousExpiresAt: int | None = Field(
        default=None, description="When the event before it expires: until then, its absence is tampering"
    )


AuditEventPage = Page[AuditEvent]


class AuditVerification(ResponseModel):
    valid: bool
    checked: int = Field(description="Events recomputed")
    firstBrokenEventId: str | None = Field(default=None, description="The first event that does not verify")
