"""The integration types Spectra supports, per direction, and the properties each one takes.

A property is plain (stored on the integration, shown in responses) or secret (stored only in
the org's secret in Secrets Manager, never shown). ``editable`` plain properties may change
with PATCH; the others are fixed at creation (they identify the remote account). Secrets change
only as a whole set, through ``PUT …/secret-properties``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Direction(StrEnum):
    INGRESS = "INGRESS"
    EGRESS = "EGRESS"


@dataclass(frozen=True)
class PropertySpec:
    name: str
    required: bool
    editable: bool = True
    secret: bool = False
    pattern: str | None = None
    """A regular expression plain values must match in full (URLs, ids)."""


@dataclass(frozen=True)
class IntegrationType:
    direction: Direction
    type: str
    display_name: str
    properties: tuple[PropertySpec, ...]

    @property
    def plain(self) -> dict[str, PropertySpec]:
        return {p.name: p for p in self.properties if not p.secret}

    @property
    def secrets(self) -> dict[str, PropertySpec]:
        return {p.name: p for p in self.properties if p.secret}


HTTPS_URL = r"https://[^\s/$.?#][^\s]{0,2047}"

CATALOG: tuple[IntegrationType, ...] = (
    IntegrationType(
        Direction.INGRESS,
        "Telematics",
        "Vehicle telematics provider",
        (
            PropertySpec("providerUrl", required=True, pattern=HTTPS_URL),
            PropertySpec("accountId", required=True, editable=False, pattern=r"[A-Za-z0-9_\-]{1,128}"),
            PropertySpec("pollIntervalMinutes", required=False, pattern=r"[1-9][0-9]{0,3}"),
            PropertySpec("apiKey", required=True, secret=True),
        ),
    ),
    IntegrationType(
        Direction.INGRESS,
        "UtilityMeterData",
        "Utility meter data (Green Button style)",
        (
            PropertySpec("utilityName", required=True),
            PropertySpec("serviceAccountId", required=True, editable=False, pattern=r"[A-Za-z0-9_\-]{1,128}"),
            PropertySpec("username", required=True, secret=True),
            PropertySpec("password", required=True, secret=True),
        ),
    ),
    IntegrationType(
        Direction.EGRESS,
        "Webhook",
        "HTTPS webhook (signed with HMAC-SHA-256)",
        (
            PropertySpec("url", required=True, pattern=HTTPS_URL),
            PropertySpec("contentType", required=False, pattern=r"application/(json|cloudevents\+json)"),
            PropertySpec("signingSecret", required=True, secret=True),
        ),
    ),
    IntegrationType(
        Direction.EGRESS,
        "Mqtt",
        "MQTT broker (TLS)",
        (
            PropertySpec("brokerHost", required=True, pattern=r"[A-Za-z0-9.\-]{1,253}"),
            PropertySpec("port", required=False, pattern=r"[1-9][0-9]{0,4}"),
            PropertySpec("topicPrefix", required=True),
            PropertySpec("clientId", required=True, editable=False, pattern=r"[A-Za-z0-9_\-]{1,128}"),
            PropertySpec("username", required=False, secret=True),
            PropertySpec("password", required=False, secret=True),
        ),
    ),
)


def find_type(direction: str, type_name: str) -> IntegrationType | None:
    for entry in CATALOG:
        if entry.direction == direction and entry.type == type_name:
            return entry
    return None
