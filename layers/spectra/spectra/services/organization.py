"""The caller's organization and the key it is calling with (``GET /organization``)."""

from __future__ import annotations

from spectra.errors import NotFound
from spectra.models.organization import DEFAULT_RETENTION_DAYS, CallingKey, Organization
from spectra.repositories.api_keys import ApiKeyRepository
from spectra.repositories.organizations import OrganizationRepository
from spectra.tenancy.context import OrgContext


class OrganizationService:
    def __init__(self, organizations: OrganizationRepository, keys: ApiKeyRepository) -> None:
        self._organizations = organizations
        self._keys = keys

    def describe(self, org: OrgContext) -> Organization:
        """The org's profile with the calling key's id, type, name and scopes."""
        profile = self._organizations.get(org)
        key = self._keys.get(org, org.key_id)
        if profile is None or key is None:
            raise NotFound("No such organization.")
        return Organization(
            orgId=profile["orgId"],
            name=profile["name"],
            plan=profile.get("plan", "standard"),
            status=profile.get("status", "Active"),
            telemetryRetentionDays=int(profile.get("telemetryRetentionDays", DEFAULT_RETENTION_DAYS)),
            createdAt=profile["createdAt"],
            key=CallingKey(
                keyId=key["keyId"],
                type=key["type"],
                name=key["name"],
                scopes=key.get("scopes", []),
            ),
        )
