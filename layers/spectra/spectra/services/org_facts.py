"""Org facts that every API key record carries: changed on the profile, then on every key.

The authorizer answers from one read of a key record, so the org's status, plan, rate-limit
overrides and usage identifier are copied onto each of the org's keys. A change goes to the
profile first (compare-and-set on ``orgFactsVersion``), then to every key; a key minted
meanwhile is refused by its insert's condition on that version, so no key keeps stale facts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from spectra.errors import Conflict, NotFound
from spectra.models.common import to_iso, utc_now
from spectra.repositories.api_keys import ApiKeyRepository
from spectra.repositories.organizations import OrganizationRepository
from spectra.services.api_keys import org_facts
from spectra.tenancy.context import OrgContext

ATTEMPTS = 5


class OrgFacts:
    def __init__(
        self,
        organizations: OrganizationRepository,
        keys: ApiKeyRepository,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._organizations = organizations
        self._keys = keys
        self._clock = clock

    def change(self, org: OrgContext, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Apply ``changes`` to the profile and copy the result onto every key of the org."""
        for _attempt in range(ATTEMPTS):
            profile = self._organizations.get(org)
            if profile is None:
                raise NotFound("No such organization.")
            updated = self._organizations.change_facts(
                org,
                changes,
                to_iso(self._clock()),
                expected_version=int(profile.get("orgFactsVersion", 0)),
            )
            if updated is not None:
                self.copy_to_keys(org, updated)
                return updated
        raise Conflict("The organization changed while this ran; run it again.")

    def copy_to_keys(self, org: OrgContext, profile: Mapping[str, Any]) -> None:
        facts = org_facts(profile)
        for key in self._keys.all(org):
            self._keys.set_org_attributes(org, str(key["keyId"]), facts)
