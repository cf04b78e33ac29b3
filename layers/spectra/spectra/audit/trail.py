"""Recording what a request or an operator did, without letting the audit log fail the work.

The change an event describes has already happened when the event is appended, so a failed
append must not turn a success into an error (the caller would retry a change that was made).
Instead the failure is counted (``AuditAppendFailed``, alarmed on in the template) and the
event's fields, which never hold values, are logged so an operator can tell what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from spectra.audit.chain import AuditRecord
from spectra.audit.store import AuditLog
from spectra.observability import logger, metrics
from spectra.tenancy.context import OrgContext

APPEND_FAILED_METRIC = "AuditAppendFailed"


class AuditTrail:
    """Appends events to each org's chain on behalf of the request path and operator tools."""

    def __init__(self, log: Callable[[], AuditLog | None]) -> None:
        self._log = log

    def record(self, org: OrgContext, record: AuditRecord) -> dict[str, Any] | None:
        """Append ``record`` to ``org``'s chain; the sealed event, or ``None`` if it failed."""
        try:
            log = self._log()
            if log is None:
                raise RuntimeError("no audit table is configured for this function")
            return log.append(org, record)
        except Exception as error:
            metrics.add_metric(name=APPEND_FAILED_METRIC, unit=MetricUnit.Count, value=1)
            logger.error(
                "Audit event not appended",
                error=type(error).__name__,
                audit_action=record.action,
                audit_resource_type=record.resource_type,
                audit_resource_id=record.resource_id,
                audit_outcome=record.outcome,
                audit_changes=list(record.changes),
            )
            return None
