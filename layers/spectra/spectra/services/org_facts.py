"""Org facts that every API key record carries: changed on the profile, then on every key.

The authorizer answers from one read of a key record, so the org's status, plan, rate-limit
overrides and usage identifier are copied onto each of the org's keys. A change goes to the
profile first (compare-and-set on ``orgFactsVersion``, which every change bumps), then to every
key, each copy conditional on being newer than the key's; a key minted meanwhile is refused by
its insert's condition on that version, and the key list is read consistently, so no key keeps
stale facts and a slow writer never puts old ones back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from spectra.errors import Conflict, NotFound
from spectra.models.common import to_iso, utc_now
from spectra.ratelimits.plans import DEFAULT_PLAN
from spectra.repositories.api_keys import ApiKeyRepository
from spectra.repositories.organizations import OrganizationRepository
from spectra.tenancy.context import OrgContext

ATTEMPTS = 5


def org_facts(profile: Mapping[str, Any]) -> dict[str, Any]:
    """What every key record copies from its org's profile, so the authorizer's one read knows
    the org's status, plan, rate-limit overrides and usage identifier. ``orgFactsVersion`` ties
    the copy to the profile it came from: a key is only inserted while the profile still has it,
    and a copy only ever replaces an older one.
    """
    return {
        "orgStatus": profile.get("status", "Active"),
        "plan": profile.get("plan", DEFAULT_PLAN),
        "usageIdentifierKey": profile.get("usageIdentifierKey"),
        "limitOverrides": profile.get("limitOverrides") or None,
        "orgFactsVersion": int(profile.get("orgFactsVersion", 0)),
    }


class OrgFacts:
    """Changes org facts (status, plan, limit overrides, usage identifier) where keys see them."""

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
        """Bring every key of the org up to ``profile``'s facts (keys with a newer copy keep it);
        safe to repeat, so a run that stopped half-way is finished by the next."""
        facts = org_facts(profile)
        for key in self._keys.all(org):
            if int(key.get("orgFactsVersion", 0)) < facts["orgFactsVersion"]:
                self._keys.copy_org_facts(org, str(key["keyId"]), facts)
