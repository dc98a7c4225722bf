"""Enqueue log objects for the ingest function: one S3-notification-shaped message per object
(``alblake.aws.events.notification_body``), sent in batches of ten."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from alblake.errors import ServiceError

BATCH_SIZE = 10  # SendMessageBatch takes at most 10 entries (botocore model, SQS API reference)
_SEND_ATTEMPTS = 5


class EnqueueError(ServiceError):
    """SQS refused messages after retries (the message names the first failure)."""


def queue_url(sqs: Any, queue: str) -> str:
    """A queue URL as given, or the URL of the queue with that name."""
    if queue.startswith(("https://", "http://")):
        return queue
    return str(sqs.get_queue_url(QueueName=queue)["QueueUrl"])


class QueueSender:
    """Sends bodies in batches of 10; entries SQS reports as failed are resent (sender faults are not)."""

    def __init__(self, sqs: Any, url: str, *, sleep: Any = time.sleep) -> None:
        self._sqs = sqs
        self._url = url
        self._sleep = sleep

    def send(self, bodies: Sequence[str]) -> None:
        for start in range(0, len(bodies), BATCH_SIZE):
            self._send_batch(bodies[start : start + BATCH_SIZE])

    def _send_batch(self, bodies: Sequence[str]) -> None:
        pending = {str(i): body for i, body in enumerate(bodies)}
        for attempt in range(_SEND_ATTEMPTS):
            entries = [{"Id": i, "MessageBody": body} for i, body in pending.items()]
            response = self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries)
            failed = response.get("Failed", [])
            if not failed:
                return
            fatal = [f for f in failed if f.get("SenderFault")]
            if fatal:
                raise EnqueueError(f"SQS refused a message: {fatal[0].get('Code')}: {fatal[0].get('Message')}")
            pending = {f["Id"]: pending[f["Id"]] for f in failed}
            self._sleep(min(2.0, 0.1 * 2**attempt))
        raise EnqueueError(f"SQS kept failing {len(pending)} message(s) after {_SEND_ATTEMPTS} attempts")
