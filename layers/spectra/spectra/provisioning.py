"""Organization lifecycle: create, list, suspend, resume, plan and limits — ``spectra org …``.

The operator CLI and the ``provisioning`` function both run this module. Creating an org makes
its profile, its telemetry store and its first admin key (returned once), and queues the org
for its usage identifier (an API Gateway key in the usage plan of the org's plan, which the
authorizer hands back so the edge rate-limits per org; see ``spectra.ratelimits.identifiers``).
All of the org's records are written with the org's own scoped credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import boto3
from pydantic import BaseModel, ConfigDict, Field

from spectra.audit.chain import AuditRecord
from spectra.audit.store import AuditLog
from spectra.audit.trail import AuditTrail
from spectra.auth.credentials import ApiKeyCredential, KeyType
from spectra.auth.scopes import Action, ResourceFilter, Scope
from spectra.config import Settings
from spectra.errors import Conflict, NotFound, ValidationFailed
from spectra.identifiers import is_guid, new_guid
from spectra.models.common import to_iso, utc_now
from spectra.models.organization import (
    DEFAULT_RETENTION_DAYS,
    ORG_ACTIVE,
    ORG_DELETED,
    ORG_SUSPENDED,
    retention_days,
)
from spectra.platform_secrets import platform_secret
from spectra.ratelimits.identifiers import UsageIdentifierRequests
from spectra.ratelimits.plans import (
    DEFAULT_PLAN,
    MAX_BURST,
    MAX_RATE_PER_MINUTE,
    Tier,
    TierLimit,
    check_overrides_fit,
    overrides_document,
    parse_overrides,
    plan_named,
)
from spectra.repositories.api_keys import REVOKED_STATE, ApiKeyRepository
from spectra.repositories.organizations import OrganizationRegistry, OrganizationRepository
from spectra.services.api_keys import new_key_record
from spectra.services.org_facts import OrgFacts
from spectra.telemetry_store import TelemetryStores
from spectra.tenancy.context import OrgContext
from spectra.tenancy.sessions import OrgSessions

ACTIVE = ORG_ACTIVE
SUSPENDED = ORG_SUSPENDED
DELETED = ORG_DELETED
FIRST_KEY_NAME = "Initial admin key"


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateOrg(_Command):
    action: Literal["create_org"] = "create_org"
    name: str = Field(min_length=1, max_length=200)
    plan: str = DEFAULT_PLAN


class ListOrgs(_Command):
    action: Literal["list_orgs"] = "list_orgs"


class OrgAction(_Command):
    action: Literal["describe_org", "suspend_org", "resume_org", "reconcile_org"]
    orgId: str


class SetPlan(_Command):
    action: Literal["set_plan"] = "set_plan"
    orgId: str
    plan: str


class TierLimitOverride(_Command):
    ratePerMinute: int = Field(ge=1, le=MAX_RATE_PER_MINUTE)
    burst: int = Field(ge=1, le=MAX_BURST)


class SetLimits(_Command):
    """Per-tier overrides of the org's plan; a tier set to ``null`` goes back to its plan's."""

    action: Literal["set_limits"] = "set_limits"
    orgId: str
    limits: dict[Tier, TierLimitOverride | None]


class DeleteOrg(_Command):
    action: Literal["delete_org"] = "delete_org"
    orgId: str
    confirm: str = Field(description="The org id again")


OrgCommand = CreateOrg | ListOrgs | OrgAction | DeleteOrg | SetPlan | SetLimits


class ProvisioningCommand(BaseModel):
    """What an operator asks of provisioning (the CLI's commands, the function's event)."""

    command: Annotated[OrgCommand, Field(discriminator="action")]


@dataclass(frozen=True)
class CreatedOrganization:
    orgId: str
    name: str
    plan: str
    status: str
    createdAt: str
    adminKeyId: str
    adminKey: str

    def as_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


def _public_profile(profile: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "orgId": profile["orgId"],
        "name": profile["name"],
        "plan": profile.get("plan", DEFAULT_PLAN),
        "status": profile.get("status", ACTIVE),
        "telemetryRetentionDays": retention_days(profile),
        "limitOverrides": profile.get("limitOverrides") or {},
        # Whether the edge knows the org yet (the worker attaches it within seconds).
        "usageIdentifier": "attached" if profile.get("usageApiKeyId") else "pending",
        "createdAt": profile["createdAt"],
        "updatedAt": profile.get("updatedAt", profile["createdAt"]),
    }


class Provisioner:
    """Creates and manages organizations for operators."""

    def __init__(
        self,
        *,
        organizations: OrganizationRepository,
        keys: ApiKeyRepository,
        registry: OrganizationRegistry,
        pepper: Callable[[], bytes],
        identifiers: UsageIdentifierRequests | None,
        stores: TelemetryStores | None = None,
        audit: AuditTrail | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._stores = stores
        self._audit = audit
        self._organizations = organizations
        self._keys = keys
        self._registry = registry
        self._pepper = pepper
        self._identifiers = identifiers
        self._facts = OrgFacts(organizations, keys, clock=clock)
        self._clock = clock

    def create_org(self, name: str, plan: str = DEFAULT_PLAN) -> CreatedOrganization:
        """A new org with its first admin key (whose secret is returned here, once)."""
        name = (name or "").strip()
        if not 1 <= len(name) <= 200:
            raise ValidationFailed.single("name", "must be 1-200 characters")
        plan_named(plan)

        org = OrgContext.for_operator(new_guid(), actor="operator")
        now = self._clock()
        store = self._stores.create(org.org_id) if self._stores else None
        profile = {
            "entity": "Organization",
            "orgId": org.org_id,
            "name": name,
            "plan": plan,
            "status": ACTIVE,
            "telemetryRetentionDays": DEFAULT_RETENTION_DAYS,
            "createdAt": to_iso(now),
            "updatedAt": to_iso(now),
            "createdBy": org.actor,
            "telemetryTableName": store.table_name if store else None,
            "telemetryRoleArn": store.role_arn if store else None,
        }
        credential = ApiKeyCredential.generate(KeyType.ADMIN)
        first_key = new_key_record(
            org,
            credential,
            pepper=self._pepper(),
            name=FIRST_KEY_NAME,
            scopes=[Scope(Action.ALL, ResourceFilter(()))],
            allowed_ip_cidrs=[],
            expires_at=None,
            org_profile=profile,
            now=now,
        )
        try:
            self._organizations.create(org, profile, first_key)
        except Exception:
            if self._stores and store:
                self._stores.delete(org.org_id)
            raise
        self._request_identifier(org.org_id)
        self._record(org, "organization.create", ("name", "plan"))
        return CreatedOrganization(
            orgId=org.org_id,
            name=name,
            plan=plan,
            status=ACTIVE,
            createdAt=to_iso(now),
            adminKeyId=credential.key_id,
            adminKey=credential.reveal(),
        )

    def set_plan(self, org_id: str, plan: str) -> dict[str, Any]:
        """Move the org to ``plan``: its exact limits at once (within the authorizer's cache
        period), its usage identifier to the plan's usage plan through the worker."""
        new_plan = plan_named(plan)
        org = self._org(org_id)
        profile = self._profile(org)
        self._refuse_deleted(profile)
        check_overrides_fit(new_plan, parse_overrides(profile.get("limitOverrides")))
        updated = self._facts.change(org, {"plan": new_plan.name})
        self._request_identifier(org_id)
        self._record(org, "organization.changePlan", ("plan",))
        return _public_profile(updated)

    def set_limits(self, org_id: str, limits: Mapping[Tier, TierLimitOverride | None]) -> dict[str, Any]:
        """Override (or, with ``None``, restore) the plan's limit of some tiers for this org."""
        org = self._org(org_id)
        profile = self._profile(org)
        self._refuse_deleted(profile)
        overrides = parse_overrides(profile.get("limitOverrides"))
        for tier, limit in limits.items():
            if limit is None:
                overrides.pop(tier, None)
            else:
                overrides[tier] = TierLimit(rate_per_minute=limit.ratePerMinute, burst=limit.burst)
        check_overrides_fit(plan_named(str(profile.get("plan", DEFAULT_PLAN))), overrides)
        updated = self._facts.change(org, {"limitOverrides": overrides_document(overrides) or None})
        self._record(org, "organization.setLimits", tuple(f"limitOverrides.{tier.value}" for tier in limits))
        return _public_profile(updated)

    def reconcile(self, org_id: str) -> dict[str, Any]:
        """Queue the org for the usage identifier worker again (after a queueing failure, or an
        identifier someone changed by hand); the worker's run is idempotent."""
        profile = self._profile(self._org(org_id))
        self._request_identifier(org_id)
        return _public_profile(profile)

    def _request_identifier(self, org_id: str) -> None:
        if self._identifiers is not None:
            self._identifiers.request(org_id)

    def run(self, command: OrgCommand) -> dict[str, Any]:
        """Carry out one operator command and return its JSON result."""
        if isinstance(command, CreateOrg):
            return self.create_org(command.name, command.plan).as_dict()
        if isinstance(command, SetPlan):
            return self.set_plan(command.orgId, command.plan)
        if isinstance(command, SetLimits):
            return self.set_limits(command.orgId, command.limits)
        if isinstance(command, DeleteOrg):
            return self.delete_org(command.orgId, confirm=command.confirm)
        if isinstance(command, ListOrgs):
            return {"items": self.list_orgs()}
        if command.action == "suspend_org":
            return self.suspend(command.orgId)
        if command.action == "resume_org":
            return self.resume(command.orgId)
        if command.action == "reconcile_org":
            return self.reconcile(command.orgId)
        return self.describe(command.orgId)

    def list_orgs(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """Every org, oldest id first (the registry is queried, never scanned)."""
        orgs: list[dict[str, Any]] = []
        start: Mapping[str, str] | None = None
        while True:
            page = self._registry.page(limit=limit, start_after=start)
            orgs.extend(_public_profile(item) for item in page.items)
            if page.resume_after is None:
                return orgs
            start = page.resume_after

    def describe(self, org_id: str) -> dict[str, Any]:
        return _public_profile(self._profile(self._org(org_id)))

    def delete_org(self, org_id: str, *, confirm: str) -> dict[str, Any]:
        """Revoke every key, then remove the org's telemetry table and role (no undo).

        ``confirm`` must repeat the org id: deleting an org's data is never one typo away.
        """
        if confirm != org_id:
            raise ValidationFailed.single("confirm", "repeat the org id to confirm the deletion")
        org = self._org(org_id)
        self._profile(org)  # 404 for an unknown org
        now = to_iso(self._clock())
        updated = self._facts.change(org, {"status": DELETED})
        for key in self._keys.all(org):
            if key.get("state") != REVOKED_STATE:
                self._keys.revoke_with_org(org, key["keyId"], org_status=DELETED, at=now, actor=org.actor)
        self._request_identifier(org_id)
        if self._stores:
            self._stores.delete(org_id)
        self._record(org, "organization.delete", ("status",))
        return {**_public_profile(updated), "telemetryStoreDeleted": self._stores is not None}

    def suspend(self, org_id: str) -> dict[str, Any]:
        """Every key of the org stops working (401) once authorizer caches expire."""
        return self._set_status(org_id, SUSPENDED)

    def resume(self, org_id: str) -> dict[str, Any]:
        return self._set_status(org_id, ACTIVE)

    def _set_status(self, org_id: str, status: str) -> dict[str, Any]:
        org = self._org(org_id)
        profile = self._profile(org)
        self._refuse_deleted(profile)
        # The profile first: a key created from now on sees the new status (its creation checks
        # the profile), and every existing key is then brought in line.
        updated = self._facts.change(org, {"status": status})
        self._request_identifier(org_id)
        self._record(org, "organization.suspend" if status == SUSPENDED else "organization.resume", ("status",))
        return _public_profile(updated)

    def _record(self, org: OrgContext, action: str, changes: tuple[str, ...]) -> None:
        """The org's audit log records what an operator changed (the actor is the operator)."""
        if self._audit is not None:
            self._audit.record(
                org,
                AuditRecord(
                    action=action,
                    resource_type="organization",
                    resource_id=org.org_id,
                    outcome="success",
                    actor_key_id=org.key_id,
                    changes=changes,
                ),
            )

    @staticmethod
    def _refuse_deleted(profile: Mapping[str, Any]) -> None:
        if profile.get("status") == DELETED:
            raise Conflict("The organization was deleted; it cannot be changed.")

    @staticmethod
    def _org(org_id: str) -> OrgContext:
        if not is_guid(org_id):
            raise NotFound("No such organization.")
        return OrgContext.for_operator(org_id)

    def _profile(self, org: OrgContext) -> dict[str, Any]:
        profile = self._organizations.get(org)
        if profile is None:
            raise NotFound("No such organization.")
        return profile


def build_provisioner(settings: Settings, session: boto3.Session | None = None) -> Provisioner:
    """A provisioner wired to a deployment (the function's environment or a stack's outputs)."""
    session = session or boto3.Session()
    sessions = OrgSessions(settings.org_data_role_arn, sts_client=session.client("sts"))
    identifiers = (
        UsageIdentifierRequests(session.client("sqs"), settings.usage_identifier_queue_url)
        if settings.usage_identifier_queue_url
        else None
    )
    stores = (
        TelemetryStores(
            session.client("dynamodb"),
            session.client("iam"),
            settings,
            regional_dynamodb=lambda region: session.client("dynamodb", region_name=region),
        )
        if settings.telemetry_table_prefix
        else None
    )
    return Provisioner(
        stores=stores,
        organizations=OrganizationRepository(sessions, settings.records_table),
        keys=ApiKeyRepository(sessions, settings.records_table),
        registry=OrganizationRegistry(session.client("dynamodb"), settings.records_table),
        pepper=lambda: platform_secret(settings.api_key_pepper_secret_arn),
        identifiers=identifiers,
        audit=AuditTrail(lambda: AuditLog.of(sessions, settings)),
    )
