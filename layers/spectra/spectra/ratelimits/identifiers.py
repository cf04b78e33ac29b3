"""Each org's usage identifier: an API Gateway API key in the usage plan of the org's plan.

The authorizer returns the identifier as ``usageIdentifierKey``, so API Gateway throttles each
org by its own plan (the edge backstop of the exact buckets). API Gateway's management API is
slow and tightly rate-limited per account (``CreateApiKey``: 5 requests a second), so nothing on a
request path calls it: provisioning queues the org id (a FIFO group per org), and at most two
paced workers bring the identifier in line with the org's profile at a pace the account allows:

- no identifier yet → create the API key (or adopt the one a crashed run left) and record it;
- the key sits in exactly the usage plan of the org's plan (moved on ``spectra org set-plan``);
- the key is enabled while the org is active, disabled while suspended, deleted with the org.

Reconciling is idempotent, so a retried or repeated message does no harm.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from spectra.auth.credentials import BASE62
from spectra.models.organization import ORG_ACTIVE, ORG_DELETED
from spectra.ratelimits.plans import DEFAULT_PLAN, PLANS
from spectra.repositories.organizations import OrganizationRepository
from spectra.services.org_facts import OrgFacts
from spectra.tenancy.context import OrgContext

IDENTIFIER_LENGTH = 40
ACTOR = "usage-identifiers"


def identifier_name(org_id: str) -> str:
    """The org's API key name: how a run finds a key an interrupted one created."""
    return f"spectra-org-{org_id}"


class ControlPlanePacer:
    """Spaces calls at least ``1 / calls_per_second`` apart (for one worker at a time)."""

    def __init__(
        self,
        calls_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if calls_per_second <= 0:
            raise ValueError("calls_per_second must be positive")
        self._interval = 1.0 / calls_per_second
        self._clock = clock
        self._sleep = sleep
        self._next_at = float("-inf")
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Return once the next call may be made (sleeping if the last was too recent)."""
        with self._lock:
            now = self._clock()
            if now < self._next_at:
                self._sleep(self._next_at - now)
                now = self._next_at
            self._next_at = now + self._interval


class UsageIdentifierRequests:
    """Queues an org for the worker (what provisioning does instead of calling API Gateway)."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def request(self, org_id: str) -> None:
        """Queue the org; its messages form one FIFO group (in order, one worker at a time), and
        each is distinct, so a change right after another is never taken for a duplicate."""
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=json.dumps({"orgId": org_id}),
            MessageGroupId=org_id,
            MessageDeduplicationId=uuid.uuid4().hex,
        )


class UsageIdentifiers:
    """The worker's reconciliation of one org's identifier with its profile."""

    def __init__(
        self,
        apigateway: Any,
        plan_ids: Mapping[str, str],
        organizations: OrganizationRepository,
        facts: OrgFacts,
        pacer: ControlPlanePacer,
    ) -> None:
        missing = sorted(set(PLANS) - set(plan_ids))
        if missing:
            raise ValueError(f"no usage plan id for plan(s) {', '.join(missing)}")
        self._apigateway = apigateway
        self._plan_ids = dict(plan_ids)
        self._organizations = organizations
        self._facts = facts
        self._pacer = pacer

    def reconcile(self, org_id: str) -> dict[str, Any]:
        """Make the org's identifier match its profile; returns what was done.

        The identifier is recorded (and copied onto the org's keys) only once it is in its usage
        plan and enabled, so "attached" means the edge accepts it. Every run also finishes any
        copy of the org's facts onto its keys that a previous run left half done.
        """
        org = OrgContext.for_operator(org_id, actor=ACTOR)
        profile = self._organizations.get(org)
        if profile is None:
            return {"orgId": org_id, "done": ["nothing: no such org"]}
        done: list[str] = []
        recorded_id = profile.get("usageApiKeyId")
        key = self._existing_key(str(recorded_id)) if recorded_id else None
        if profile.get("status") == ORG_DELETED:
            # The recorded key, and any an interrupted run created without recording it.
            leftovers = [item for item in self._keys_named(org_id) if key is None or item["id"] != key["id"]]
            for doomed in ([key] if key is not None else []) + leftovers:
                self._call("delete_api_key", apiKey=doomed["id"])
                done.append("deleted")
            if recorded_id:
                profile = self._facts.change(org, {"usageApiKeyId": None, "usageIdentifierKey": None})
            self._facts.copy_to_keys(org, profile)
            return {"orgId": org_id, "done": done}
        if key is None:
            # None yet, or the recorded one is gone (deleted by hand, or a restored local state):
            # the same value again keeps every key record's copy of it valid.
            key, how = self._find_or_create_key(org_id, profile.get("usageIdentifierKey"))
            done.append(how)
        done.extend(self._place_in_plan(str(key["id"]), self._plan_ids[str(profile.get("plan", DEFAULT_PLAN))]))
        done.extend(self._set_enabled(key, profile.get("status") == ORG_ACTIVE))
        if (recorded_id, profile.get("usageIdentifierKey")) != (key["id"], key["value"]):
            profile = self._facts.change(org, {"usageApiKeyId": key["id"], "usageIdentifierKey": key["value"]})
            done.append("recorded")
        self._facts.copy_to_keys(org, profile)
        return {"orgId": org_id, "done": done}

    def _call(self, operation: str, **arguments: Any) -> Any:
        self._pacer.wait()
        return getattr(self._apigateway, operation)(**arguments)

    def _existing_key(self, api_key_id: str) -> dict[str, Any] | None:
        try:
            return dict(self._call("get_api_key", apiKey=api_key_id, includeValue=True))
        except self._apigateway.exceptions.NotFoundException:
            return None

    def _keys_named(self, org_id: str) -> list[dict[str, Any]]:
        """The API keys named for this org (``nameQuery`` matches a prefix: keep exact names)."""
        name = identifier_name(org_id)
        found = self._call("get_api_keys", nameQuery=name, includeValues=True, limit=500)
        return [dict(item) for item in found.get("items", []) if item.get("name") == name]

    def _find_or_create_key(self, org_id: str, value: str | None) -> tuple[dict[str, Any], str]:
        """The org's API key: one a previous, interrupted run created, else a new one."""
        for item in self._keys_named(org_id):
            if item.get("value"):
                return item, "adopted"
        value = value or "".join(secrets.choice(BASE62) for _ in range(IDENTIFIER_LENGTH))
        created = self._call(
            "create_api_key", name=identifier_name(org_id), enabled=True, value=value, tags={"org": org_id}
        )
        return {"id": created["id"], "value": value, "enabled": True}, "created"

    def _place_in_plan(self, api_key_id: str, wanted_plan_id: str) -> list[str]:
        """Exactly one usage plan. A key may be in one plan per stage, so it leaves the old plan
        first; if it cannot join the new one it goes back, so a failed move changes nothing."""
        plans = self._call("get_usage_plans", keyId=api_key_id, limit=500).get("items", [])
        current = sorted({str(plan["id"]) for plan in plans})
        if current == [wanted_plan_id]:
            return []
        for plan_id in current:
            self._call("delete_usage_plan_key", usagePlanId=plan_id, keyId=api_key_id)
        try:
            self._call("create_usage_plan_key", usagePlanId=wanted_plan_id, keyId=api_key_id, keyType="API_KEY")
        except Exception:
            for plan_id in current:
                self._call("create_usage_plan_key", usagePlanId=plan_id, keyId=api_key_id, keyType="API_KEY")
            raise
        return [f"left usage plan {plan_id}" for plan_id in current if plan_id != wanted_plan_id] + [
            f"joined usage plan {wanted_plan_id}"
        ]

    def _set_enabled(self, key: dict[str, Any], enabled: bool) -> list[str]:
        if bool(key.get("enabled")) == enabled:
            return []
        self._call(
            "update_api_key",
            apiKey=key["id"],
            patchOperations=[{"op": "replace", "path": "/enabled", "value": "true" if enabled else "false"}],
        )
        return ["enabled" if enabled else "disabled"]
