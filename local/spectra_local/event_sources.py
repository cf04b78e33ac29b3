"""SQS event sources of the template's functions, delivered locally as Lambda's poller would.

A function with a ``Type: SQS`` event gets batches of up to ``BatchSize`` messages from its
queue as an SQS event. Messages it reports in ``batchItemFailures`` (or all of them, when it
raises) stay on the queue and come back after the visibility timeout, then move to the
dead-letter queue of the redrive policy; the rest are deleted. The runtime delivers in the
background; the tests and the CLI's ``--local`` deliver right after the command that queued.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spectra_local.functions import LocalFunction
from spectra_local.template import IntrinsicResolver

log = logging.getLogger("spectra_local.event_sources")
MAX_BATCHES_PER_DELIVERY = 100


@dataclass(frozen=True)
class QueueSource:
    function: LocalFunction
    queue_url: str
    queue_arn: str
    batch_size: int
    reports_failures: bool


def queue_sources(functions: Mapping[str, LocalFunction], resolver: IntrinsicResolver) -> list[QueueSource]:
    """Every ``Type: SQS`` event of the template's functions."""
    sources = []
    for function in functions.values():
        for event in function.spec.queue_events:
            queue = event["Queue"]
            logical_id = queue["Fn::GetAtt"][0] if isinstance(queue, dict) and "Fn::GetAtt" in queue else None
            if logical_id is None:
                raise ValueError(f"{function.spec.logical_id}: SQS event queue must be !GetAtt <Queue>.Arn")
            sources.append(
                QueueSource(
                    function=function,
                    queue_url=str(resolver.refs[logical_id]),
                    queue_arn=str(resolver.resolve(queue)),
                    batch_size=int(event.get("BatchSize", 10)),
                    reports_failures="ReportBatchItemFailures" in (event.get("FunctionResponseTypes") or []),
                )
            )
    return sources


def deliver(sources: list[QueueSource], *, sqs: Any, region: str) -> int:
    """Deliver what is waiting on each queue now; returns how many messages were handled."""
    handled = 0
    for source in sources:
        for _batch in range(MAX_BATCHES_PER_DELIVERY):
            messages = sqs.receive_message(
                QueueUrl=source.queue_url,
                MaxNumberOfMessages=min(source.batch_size, 10),
                AttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not messages:
                break
            failed = _invoke(source, messages, region)
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                sqs.delete_message_batch(
                    QueueUrl=source.queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
            handled += len(done)
    return handled


def _invoke(source: QueueSource, messages: list[dict[str, Any]], region: str) -> set[str]:
    """Run the function on one batch; the ids of the messages that failed."""
    event = {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": hashlib.md5(m["Body"].encode("utf-8")).hexdigest(),  # noqa: S324 - SQS's own checksum
                "eventSource": "aws:sqs",
                "eventSourceARN": source.queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }
    try:
        result = source.function.invoke(event)
    except Exception:
        log.exception("%s failed on a batch of %d", source.function.spec.logical_id, len(messages))
        return {m["MessageId"] for m in messages}
    if not source.reports_failures or not isinstance(result, dict):
        return set()
    return {str(item["itemIdentifier"]) for item in result.get("batchItemFailures", [])}
