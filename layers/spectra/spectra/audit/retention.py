"""The retention job's share of the audit log: what is past retention, and whether what is kept
still verifies.

No role may delete an audit event (that is what keeps the log append-only), so the deletion
itself is DynamoDB's TTL on ``expiresAt``, which each event gets at append (its time plus the
audit retention, ``AuditRetentionDays``). The API stops showing an event the moment it is past
retention, whether or not TTL has removed it yet. Once a day per org, the job counts the events
still stored past retention and recomputes the kept chain, so a tampered log raises an alarm
(``AuditChainBroken``) without anyone having to ask for a verification.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_lambda_powertools.metrics import MetricUnit

from spectra.audit.chain import verify_kept
from spectra.audit.store import AuditLog
from spectra.observability import logger, metrics
from spectra.tenancy.context import OrgContext

CHAIN_BROKEN_METRIC = "AuditChainBroken"


@dataclass(frozen=True)
class AuditCheck:
    """One org's audit log as the retention job found it."""

    checked: int
    awaiting_expiry: int
    """Events past retention that TTL has not removed yet (hidden from the API already)."""
    valid: bool
    first_broken_event_id: str | None = None


def check_audit_log(log: AuditLog, org: OrgContext) -> AuditCheck:
    """Count what retention has yet to remove, and verify what it keeps (alarming if broken)."""
    awaiting_expiry = log.expired(org)
    verification = verify_kept(log.events(org), now=int(log.now().timestamp()))
    if not verification.valid:
        metrics.add_metric(name=CHAIN_BROKEN_METRIC, unit=MetricUnit.Count, value=1)
        logger.error(
            "Audit chain does not verify",
            org_id=org.org_id,
            first_broken_event_id=verification.first_broken_event_id,
        )
    return AuditCheck(
        checked=verification.checked,
        awaiting_expiry=awaiting_expiry,
        valid=verification.valid,
        first_broken_event_id=verification.first_broken_event_id,
    )
