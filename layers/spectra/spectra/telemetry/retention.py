"""The retention job: each org's telemetry kept exactly as long as its current window.

One *pass* per org per day (days begin at the daily schedule's UTC hour), and again whenever
the org's retention changes:
- every frame older than now minus the org's retention is deleted: TTL alone is not exact (AWS
  deletes expired items within days, not at the moment they expire), so the job is what keeps
  the promise; reads never show such frames either way;
- after a lengthening (the profile carries ``telemetryRestampSince``), every frame still inside
  the window gets ``expiresAt`` = its time + the new retention, so TTL cannot delete it early;
- ``ThingDeleted`` events left in the org's outbox are sent again.
Every invocation also drains the ``ThingDeleted`` queue, purging each deleted thing's telemetry.

The job reads with Query only, and never relies on one invocation finishing an unbounded
amount of work: it checkpoints after every page of things and stops when its time budget is
spent; the next invocation continues from the checkpoint. Everything it does is idempotent,
so a run that dies midway loses nothing but time.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.exceptions import BotoCoreError, ClientError

from spectra.audit.retention import check_audit_log
from spectra.audit.store import AuditLog
from spectra.errors import SpectraError
from spectra.events import THING_DELETED, ThingEvents
from spectra.identifiers import is_guid
from spectra.models.common import epoch_millis, utc_now
from spectra.models.organization import ORG_DELETED, retention_days
from spectra.observability import logger
from spectra.repositories.organizations import OrganizationRegistry, OrganizationRepository
from spectra.repositories.retention import RetentionCheckpoints
from spectra.repositories.things import ThingRepository
from spectra.telemetry.table import BATCH_SIZE, OrgTelemetryTable, TelemetryTables
from spectra.tenancy.context import OrgContext

THINGS_PER_CHECKPOINT = 25
REGISTRY_PAGE = 100
LEASE_SECONDS = 900
QUEUE_BATCH = 10
FUTURE_MARGIN_MS = 10 * 60_000  # ingest accepts frames up to 10 minutes ahead
ORG_FAILURES = (ClientError, BotoCoreError, SpectraError)
"""What makes one org's pass fail without stopping the others (store errors, retries spent)."""
ORG_DIMENSION = "orgId"


class Budget:
    """Time left for this invocation; work stops (and checkpoints) before it runs out."""

    def __init__(self, remaining_ms: Callable[[], int], *, reserve_ms: int = 30_000) -> None:
        self._remaining_ms = remaining_ms
        self._reserve_ms = reserve_ms

    @classmethod
    def unlimited(cls) -> Budget:
        return cls(lambda: 2**31, reserve_ms=0)

    def spent(self) -> bool:
        return self._remaining_ms() <= self._reserve_ms


@dataclass
class OrgPass:
    """The work done for one org in this invocation."""

    org_id: str
    purged: int = 0
    restamped: int = 0
    things: int = 0
    outbox_resent: int = 0
    audit_awaiting_expiry: int = 0
    audit_chain_broken: bool = False
    audit_check_skipped: bool = False
    complete: bool = False
    failed: bool = False
    duration_ms: float = 0.0


@dataclass
class RetentionReport:
    """What an invocation did (returned to the caller and logged)."""

    pass_date: str
    orgs_checked: int = 0
    orgs_completed: int = 0
    orgs_pending: int = 0
    orgs_failed: list[str] = field(default_factory=list)
    items_purged: int = 0
    items_restamped: int = 0
    deleted_things_purged: int = 0
    deleted_thing_items_purged: int = 0
    outbox_resent: int = 0
    audit_events_awaiting_expiry: int = 0
    audit_chains_broken: int = 0
    audit_checks_skipped: int = 0

    @property
    def complete(self) -> bool:
        return not self.orgs_pending and not self.orgs_failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "passDate": self.pass_date,
            "complete": self.complete,
            "orgsChecked": self.orgs_checked,
            "orgsCompleted": self.orgs_completed,
            "orgsPending": self.orgs_pending,
            "orgsFailed": len(self.orgs_failed),
            "itemsPurged": self.items_purged,
            "itemsRestamped": self.items_restamped,
            "deletedThingsPurged": self.deleted_things_purged,
            "deletedThingItemsPurged": self.deleted_thing_items_purged,
            "outboxResent": self.outbox_resent,
            "auditEventsAwaitingExpiry": self.audit_events_awaiting_expiry,
            "auditChainsBroken": self.audit_chains_broken,
            "auditChecksSkipped": self.audit_checks_skipped,
        }


class BudgetSpent(Exception):
    """The invocation's time is nearly up: stop where we are; the checkpoint says where that is."""


class RetentionFailed(Exception):
    """Some orgs could not be brought up to date; the invocation fails so it is retried and,
    past the retries, lands in the dead-letter queue (which raises an alarm)."""


class RetentionJob:
    """One invocation's worth of retention work over every org (see the module docstring)."""

    def __init__(
        self,
        *,
        registry: OrganizationRegistry,
        checkpoints: RetentionCheckpoints,
        organizations: OrganizationRepository,
        things: ThingRepository,
        events: ThingEvents,
        tables: TelemetryTables,
        sqs: Any,
        queue_url: str,
        pass_hour_utc: int = 0,
        audit: AuditLog | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._registry = registry
        self._audit = audit
        self._pass_offset = timedelta(hours=pass_hour_utc)
        self._checkpoints = checkpoints
        self._organizations = organizations
        self._things = things
        self._events = events
        self._tables = tables
        self._sqs = sqs
        self._queue_url = queue_url
        self._clock = clock
        self._owner = str(uuid.uuid4())

    def run(self, budget: Budget) -> RetentionReport:
        """Drain deleted things, then bring every org's pass for today as far as time allows."""
        now = self._clock()
        report = RetentionReport(pass_date=(now - self._pass_offset).date().isoformat())
        self._drain_deleted_things(budget, report)
        checkpoints = self._checkpoints.all()
        for profile in self._profiles():
            org_id = str(profile.get("orgId", ""))
            if not is_guid(org_id) or profile.get("status") == ORG_DELETED:
                continue
            report.orgs_checked += 1
            pass_key = self._pass_key(report.pass_date, profile)
            checkpoint = checkpoints.get(org_id, {})
            if checkpoint.get("passKey") == pass_key and checkpoint.get("done"):
                continue
            if budget.spent():
                report.orgs_pending += 1
                continue
            result = self._run_org(OrgContext.for_operator(org_id, actor="retention"), profile, pass_key, budget)
            self._record(result, report)
        logger.info("Retention run", extra=report.as_dict())
        if report.orgs_failed:
            raise RetentionFailed(f"{len(report.orgs_failed)} organization(s) failed; see the logs")
        return report

    # -- one org ----------------------------------------------------------------------------

    def _run_org(self, org: OrgContext, profile: Mapping[str, Any], pass_key: str, budget: Budget) -> OrgPass:
        started = time.monotonic()
        result = OrgPass(org_id=org.org_id)
        try:
            self._advance(org, profile, pass_key, budget, result)
        except ORG_FAILURES:
            logger.exception("Retention failed for an organization", org_id=org.org_id)
            result.failed = True
        result.duration_ms = (time.monotonic() - started) * 1000
        self._emit(result)
        return result

    def _advance(
        self, org: OrgContext, profile: Mapping[str, Any], pass_key: str, budget: Budget, result: OrgPass
    ) -> None:
        now = self._clock()
        checkpoint = self._checkpoints.claim(org, self._owner, int(now.timestamp()), LEASE_SECONDS)
        if checkpoint is None:
            logger.info("Another run holds this organization's pass", org_id=org.org_id)
            return
        window_days = retention_days(profile)
        restamp_since = profile.get("telemetryRestampSince")
        if checkpoint.get("passKey") != pass_key:
            checkpoint = {
                "passKey": pass_key,
                "retentionDays": window_days,
                "cutoff": epoch_millis(now - timedelta(days=window_days)),
                "restampSince": restamp_since,
                "resumeAfter": None,
                "done": False,
                "startedAt": now.isoformat(),
                "purged": 0,
                "restamped": 0,
            }
            result.outbox_resent = self._resend_outbox(org)
        counted = {"purged": int(checkpoint.get("purged", 0)), "restamped": int(checkpoint.get("restamped", 0))}

        def save(*, release: bool = False) -> None:
            checkpoint["purged"] = counted["purged"] + result.purged
            checkpoint["restamped"] = counted["restamped"] + result.restamped
            lease_until = 0 if release else int(self._clock().timestamp()) + LEASE_SECONDS
            if not self._checkpoints.save(org, self._owner, checkpoint, lease_until=lease_until):
                logger.warning("Lost the organization's lease to another run", org_id=org.org_id)

        table = self._tables.of(org)
        cutoff = int(checkpoint["cutoff"])
        restamp = bool(checkpoint.get("restampSince"))
        resume_after = checkpoint.get("resumeAfter")
        try:
            while True:
                if budget.spent():
                    save(release=True)
                    return
                page = self._things.page(
                    org, limit=THINGS_PER_CHECKPOINT, start_after=resume_after, keep=lambda _thing: True
                )
                for thing in page.items:
                    thing_id = str(thing["thingId"])
                    self._purge_older(table, thing_id, cutoff, result, budget)
                    if restamp:
                        self._restamp(table, thing_id, cutoff, window_days, result, budget)
                    result.things += 1
                resume_after = page.resume_after
                if resume_after is None:
                    break
                checkpoint["resumeAfter"] = resume_after
                save()
        except BudgetSpent:
            # Mid-page: what was deleted is gone for good, so redoing the page costs only reads.
            save(release=True)
            return
        except ORG_FAILURES:
            save(release=True)  # the last finished page stays the place to resume from
            raise
        if restamp and checkpoint.get("restampSince"):
            self._organizations.restamp_done(org, str(checkpoint["restampSince"]), window_days)
        checkpoint["done"] = True
        checkpoint["finishedAt"] = self._clock().isoformat()
        result.complete = True
        save(release=True)
        self._check_audit_log(org, budget, result)

    def _check_audit_log(self, org: OrgContext, budget: Budget, result: OrgPass) -> None:
        """Once the org's telemetry pass is saved: its audit log's check. It neither holds the
        org's lease nor fails the pass; a check that cannot run now is logged and counted."""
        if self._audit is None:
            return
        if budget.spent():
            logger.warning("Audit log not checked: out of time in this invocation", org_id=org.org_id)
            result.audit_check_skipped = True
            return
        try:
            audit = check_audit_log(self._audit, org)
        except ORG_FAILURES:
            logger.exception("Audit log check failed", org_id=org.org_id)
            result.audit_check_skipped = True
            return
        result.audit_awaiting_expiry = audit.awaiting_expiry
        result.audit_chain_broken = not audit.valid

    @staticmethod
    def _purge_older(table: OrgTelemetryTable, thing_id: str, cutoff: int, result: OrgPass, budget: Budget) -> None:
        """Delete the thing's frames older than ``cutoff`` (a key-condition Query, keys only),
        and the latest values that are older still (a metric not reported inside the window)."""

        def counted(deleted: int) -> None:
            result.purged += deleted

        _delete_all(table, table.frames(thing_id, 0, cutoff, keys_only=True), budget, counted)
        table.prune_latest_values(thing_id, cutoff)

    def _restamp(
        self,
        table: OrgTelemetryTable,
        thing_id: str,
        cutoff: int,
        window_days: int,
        result: OrgPass,
        budget: Budget,
    ) -> None:
        """Give every frame inside the window the expiry the current retention implies, oldest
        first (those are the ones TTL would take soonest)."""
        horizon = epoch_millis(self._clock()) + FUTURE_MARGIN_MS + 1
        projection = ("thingId", "timestamp", "expiresAt")
        for index, frame in enumerate(table.frames(thing_id, cutoff, horizon, projection=projection)):
            if index % BATCH_SIZE == 0 and budget.spent():
                raise BudgetSpent
            wanted = int(frame["timestamp"]) // 1000 + window_days * 86_400
            if int(frame.get("expiresAt", 0)) < wanted and table.restamp(thing_id, int(frame["timestamp"]), wanted):
                result.restamped += 1

    def _resend_outbox(self, org: OrgContext) -> int:
        """Send ``ThingDeleted`` events whose first send failed (the outbox keeps them)."""
        resent = 0
        while True:
            pending = self._events.pending_thing_deletions(org)
            sent = sum(1 for thing_id in pending if self._events.publish_thing_deleted(org, thing_id))
            resent += sent
            if not pending or not sent:
                return resent

    # -- deleted things ---------------------------------------------------------------------

    def _drain_deleted_things(self, budget: Budget, report: RetentionReport) -> None:
        """Purge the telemetry of each deleted thing announced on the queue, then delete the
        message; a message that cannot be handled stays, and after its retries goes to the DLQ."""
        if not self._queue_url:
            return
        while not budget.spent():
            # Hidden for as long as this invocation may run, so no message is handled twice at once.
            messages = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=QUEUE_BATCH,
                WaitTimeSeconds=0,
                VisibilityTimeout=LEASE_SECONDS,
            ).get("Messages", [])
            if not messages:
                return
            for message in messages:
                purged = self._purge_deleted_thing(message, budget)
                if purged is None:
                    continue
                report.deleted_things_purged += 1
                report.deleted_thing_items_purged += purged
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _purge_deleted_thing(self, message: Mapping[str, Any], budget: Budget) -> int | None:
        try:
            event = json.loads(message.get("Body", ""))
        except json.JSONDecodeError:
            event = None
        if (
            not isinstance(event, dict)
            or event.get("type") != THING_DELETED
            or not is_guid(str(event.get("orgId")))
            or not is_guid(str(event.get("thingId")))
        ):
            logger.error("Unreadable thing event left for the dead-letter queue", message_id=message.get("MessageId"))
            return None
        org = OrgContext.for_operator(str(event["orgId"]), actor="retention")
        thing_id = str(event["thingId"])
        try:
            profile = self._organizations.get(org)
            if profile is None or profile.get("status") == ORG_DELETED:
                return 0  # the org's table and role went with the org: nothing left to purge
            if self._things.get(org, thing_id) is not None:
                logger.warning("A thing announced as deleted still exists; its data is kept", thing_id=thing_id)
                return 0
            table = self._tables.of(org)
            return _delete_all(table, table.all_keys(thing_id), budget)
        except BudgetSpent:
            return None  # what was deleted stays deleted; the message comes back for the rest
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return 0  # the org's table is gone (org deleted): nothing left to purge
            logger.exception("Purging a deleted thing failed; the message will be retried", thing_id=thing_id)
            return None
        except ORG_FAILURES:
            logger.exception("Purging a deleted thing failed; the message will be retried", thing_id=thing_id)
            return None

    # -- helpers ----------------------------------------------------------------------------

    def _profiles(self) -> Iterable[dict[str, Any]]:
        start: Mapping[str, str] | None = None
        while True:
            page = self._registry.page(limit=REGISTRY_PAGE, start_after=start)
            yield from page.items
            if page.resume_after is None:
                return
            start = page.resume_after

    @staticmethod
    def _pass_key(pass_date: str, profile: Mapping[str, Any]) -> str:
        """A new pass each day, and whenever the retention changes (a lengthening, which is
        what marks data for re-stamping, always changes it)."""
        days = retention_days(profile)
        return f"{pass_date}/{days}d"

    @staticmethod
    def _record(result: OrgPass, report: RetentionReport) -> None:
        report.items_purged += result.purged
        report.items_restamped += result.restamped
        report.outbox_resent += result.outbox_resent
        report.audit_events_awaiting_expiry += result.audit_awaiting_expiry
        report.audit_chains_broken += int(result.audit_chain_broken)
        report.audit_checks_skipped += int(result.audit_check_skipped)
        if result.failed:
            report.orgs_failed.append(result.org_id)
        elif result.complete:
            report.orgs_completed += 1
        else:
            report.orgs_pending += 1

    @staticmethod
    def _emit(result: OrgPass) -> None:
        """Per-org figures: purged and re-stamped items, and how long the org took."""
        figures = (
            ("RetentionItemsPurged", MetricUnit.Count, result.purged),
            ("RetentionItemsRestamped", MetricUnit.Count, result.restamped),
            ("RetentionDuration", MetricUnit.Milliseconds, result.duration_ms),
        )
        for name, unit, value in figures:
            with single_metric(name=name, unit=unit, value=value) as metric:
                metric.add_dimension(name=ORG_DIMENSION, value=result.org_id)


def _delete_all(
    table: OrgTelemetryTable,
    keys: Iterable[Mapping[str, Any]],
    budget: Budget,
    counted: Callable[[int], None] = lambda _n: None,
) -> int:
    """Delete the items at ``keys`` in batches as they are read; ``counted`` hears of each batch
    as it is done (so a run that fails later still reports what it removed). Returns how many;
    raises ``BudgetSpent`` between batches when the invocation's time is nearly up."""
    deleted = 0
    batch: list[Mapping[str, Any]] = []
    for key in keys:
        batch.append(key)
        if len(batch) == BATCH_SIZE:
            if budget.spent():
                raise BudgetSpent
            table.delete_frames(batch)
            deleted += len(batch)
            counted(len(batch))
            batch = []
    if batch:
        table.delete_frames(batch)
        deleted += len(batch)
        counted(len(batch))
    return deleted
