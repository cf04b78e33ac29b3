"""Scheduled retention: every org's telemetry kept exactly as long as its current window, and
its audit log checked (events past retention hidden and left to TTL, the kept chain verified).

EventBridge starts a pass each day at ``RetentionPassHourUtc`` and nudges the job every 15 minutes, so a pass that one
invocation cannot finish continues from its checkpoint; once a day's pass is done for every org,
an invocation only purges the telemetry of things deleted since (the ``ThingDeleted`` queue).
Operators run it on demand with ``spectra schedule run retention --local`` or by invoking the
function. A failed org fails the invocation: retried, then dead-lettered, which raises an alarm.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from spectra.config import get_settings
from spectra.deployment import audit_log, organization_repository, telemetry_tables, thing_events, thing_repository
from spectra.observability import logger, metrics, tracer
from spectra.repositories.organizations import OrganizationRegistry
from spectra.repositories.retention import RetentionCheckpoints
from spectra.telemetry.retention import Budget, RetentionJob

settings = get_settings()
# The function's own role reaches only the org registry and the job's checkpoints; every org's
# records and telemetry are reached with that org's credentials.
dynamodb = boto3.client("dynamodb")
sqs = boto3.client("sqs")
job = RetentionJob(
    registry=OrganizationRegistry(dynamodb, settings.records_table),
    checkpoints=RetentionCheckpoints(dynamodb, settings.records_table),
    organizations=organization_repository(),
    things=thing_repository(),
    events=thing_events(),
    tables=telemetry_tables(),
    sqs=sqs,
    queue_url=settings.thing_events_queue_url,
    pass_hour_utc=settings.retention_pass_hour_utc,
    audit=audit_log() if settings.audit_table else None,
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(schedule=event.resources[0] if event.resources else "on demand")
    report = job.run(Budget(context.get_remaining_time_in_millis))
    return report.as_dict()
